#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# nvme-tcp's native multipath across two ports of one subsystem, on rtarget_nvme and then, in
# the same boot, on the in-kernel nvmet-tcp with the same commands below each tree's root.
# The host's nvme_core is reloaded with multipath=Y (every other test runs with multipath=N,
# from the kernel command line). Port 1 is ANA optimized and port 2 non-optimized: the host
# makes one head device with two paths, sends I/O down the optimized one, fails over to port
# 2 when port 1's group turns inaccessible under fio, and keeps going on port 1 when port 2's
# link to the subsystem goes, still under fio.
. "$(dirname "$0")/lib.sh"
NQN=nqn.2026-12.org.rtarget:mpath
HOST=nqn.2014-08.org.nvmexpress:uuid:7e1d0000-0000-4000-8000-000000000005
NVMET=/sys/kernel/config/nvmet
OUT=/tmp/nvme_mpath; rm -rf $OUT; mkdir -p $OUT
tap_plan 15
unload_all; dmesg_mark
host_off() { nvme disconnect-all > /dev/null 2>&1; modprobe -r nvme_tcp nvme_fabrics nvme_core 2> /dev/null; ! loaded nvme_core; }
trap 'nvme_cleanup; host_off' EXIT

side() {
    SIDE=$1
    case $1 in
        rtarget) ROOT=$CFG/nvme SVC1=4420 SVC2=4422 ;;
        nvmet) ROOT=$NVMET SVC1=4421 SVC2=4423 ;;
    esac
}
# port_up ID TRSVCID
port_up() { nvme_addr "$ROOT/ports/$1" ipv4 127.0.0.1 "$2"; }
ana() { echo "$2" > "$ROOT/ports/$1/ana_groups/1/ana_state"; }
setup() {
    local s=$ROOT/subsystems/$NQN
    mkdir "$s" && echo 1 > "$s/attr_allow_any_host" && mkdir "$s/namespaces/1" &&
        if [ $SIDE = rtarget ]; then ln -s "$DEV" "$s/namespaces/1/dev"; else echo /dev/ram0 > "$s/namespaces/1/device_path"; fi &&
        echo 1 > "$s/namespaces/1/enable" && port_up 1 $SVC1 && port_up 2 $SVC2 && ana 2 non-optimized &&
        ln -s "$s" "$ROOT/ports/1/subsystems/$NQN" && ln -s "$s" "$ROOT/ports/2/subsystems/$NQN" &&
        CTRL_LOSS=2 conn $NQN $HOST $SVC1 > /dev/null && CTRL_LOSS=2 conn $NQN $HOST $SVC2 > /dev/null
}
# ctrl_on SVC: the host's controller of $NQN connected to port SVC.
ctrl_on() {
    local c
    for c in /sys/class/nvme/nvme*; do
        [ "$(cat "$c/subsysnqn" 2> /dev/null)" = $NQN ] && grep -q "trsvcid=$1\b" "$c/address" 2> /dev/null &&
            { echo "${c##*/}"; return 0; }
    done
    return 1
}
# head_dev: the multipath block device of $NQN's namespace 1 (its name is the subsystem's).
head_dev() {
    local i s d
    for i in $(seq 1 50); do
        for s in /sys/class/nvme-subsystem/nvme-subsys*; do
            [ "$(cat "$s/subsysnqn" 2> /dev/null)" = $NQN ] || continue
            for d in "$s"/nvme*n*; do
                [ -e "$d/nsid" ] && [ "$(cat "$d/nsid")" = 1 ] && [ -b "/dev/${d##*/}" ] && { echo "${d##*/}"; return 0; }
            done
        done
        sleep 0.2
    done
    return 1
}
# (each check runs in a subshell: each finds the head again)
# path SVC: the head's path through the controller on port SVC (nvmeXcYn1).
path() { local c; c=$(ctrl_on "$1") && basename "$(ls -d /sys/block/"$HEAD"/multipath/*c"${c#nvme}"n* 2> /dev/null)"; }
# path_state SVC STATE: that path's ANA state, as the host sees it, becomes STATE (within 10 s).
path_state() {
    local i p
    for i in $(seq 1 50); do
        p=$(path "$1") && [ "$(cat "/sys/block/$p/ana_state" 2> /dev/null)" = "$2" ] && return 0
        sleep 0.2
    done
    echo "path via $1: $(cat "/sys/block/$p/ana_state" 2> /dev/null || echo none), not $2"
    return 1
}
# ios SVC: reads and writes completed on the path through port SVC.
ios() { awk '{print $1 + $5}' "/sys/block/$(path "$1")/stat"; }
one_head() {
    HEAD=$(head_dev) || return 1
    echo "head /dev/$HEAD, paths: $(ls /sys/block/$HEAD/multipath | tr '\n' ' ')"
    [ "$(ls /sys/block/$HEAD/multipath | wc -l)" = 2 ] && [ -n "$(path $SVC1)" ] && [ -n "$(path $SVC2)" ] &&
        [ ! -b "/dev/$(path $SVC1)" ] && path_state $SVC1 optimized && path_state $SVC2 non-optimized &&
        nvme list-subsys "/dev/$HEAD" | tee /dev/stderr | grep -c ' live' | grep -qx 2
}
optimized_path() {
    local n1 n2
    HEAD=$(head_dev) || return 1
    n1=$(ios $SVC1) n2=$(ios $SVC2)
    fio_verify "/dev/$HEAD" 3 || return 1
    n1=$(($(ios $SVC1) - n1)) n2=$(($(ios $SVC2) - n2))
    echo "I/Os via port 1: $n1, via port 2: $n2"
    [ $n1 -gt 1000 ] && [ $n2 = 0 ]
}
failover() {
    local pid rc n2
    HEAD=$(head_dev) || return 1
    fio_bg /dev/$HEAD failover --loops=2; pid=$!
    sleep 2
    ana 1 inaccessible && path_state $SVC1 inaccessible || { kill $pid; wait $pid; return 1; }
    n2=$(ios $SVC2)
    sleep 2
    n2=$(($(ios $SVC2) - n2))
    wait $pid; rc=$?
    tail -2 $OUT/fio_failover
    echo "fio exit $rc; I/Os via port 2 with port 1 inaccessible: $n2"
    [ $rc = 0 ] && [ $n2 -gt 100 ]
}
path_lost() {
    local pid rc c2 i
    HEAD=$(head_dev) || return 1
    c2=$(ctrl_on $SVC2) && ana 1 optimized && path_state $SVC1 optimized || return 1
    fio_bg /dev/$HEAD lost --loops=2; pid=$!
    sleep 2
    rm "$ROOT/ports/2/subsystems/$NQN"
    # The controller on port 2 reconnects in vain until its loss timeout, then goes.
    for i in $(seq 1 75); do [ -e /sys/class/nvme/$c2 ] || break; sleep 0.2; done
    wait $pid; rc=$?
    tail -2 $OUT/fio_lost
    echo "fio exit $rc; paths left: $(ls /sys/block/$HEAD/multipath | tr '\n' ' ')"
    [ $rc = 0 ] && [ ! -e /sys/class/nvme/$c2 ] && [ "$(ls /sys/block/$HEAD/multipath | wc -l)" = 1 ]
}
side_down() {
    local s=$ROOT/subsystems/$NQN
    nvme disconnect -n $NQN > /dev/null; no_ctrl $NQN && rm "$ROOT/ports/1/subsystems/$NQN" &&
        echo 0 > "$s/namespaces/1/enable" && { [ $SIDE = nvmet ] || rm "$s/namespaces/1/dev"; } &&
        rmdir "$s/namespaces/1" "$s" "$ROOT/ports/1" "$ROOT/ports/2"
}

host_on() {
    host_off && modprobe nvme_core multipath=Y && modprobe nvme-tcp &&
        [ "$(cat /sys/module/nvme_core/parameters/multipath)" = Y ]
}
check "the host's nvme_core reloaded with multipath=Y" host_on
modprobe nvmet && modprobe nvmet-tcp && modprobe brd rd_nr=1 rd_size=65536 && modprobe rtarget_core && mkdir $CFG/nvme
DEV=$(setup_dev rd_mcp mp "rd_pages=16384")
for s in rtarget nvmet; do
    side $s
    check "$s: one subsystem on two ports (port 2 ANA non-optimized); the host connects through both" setup
    check "$s: one head device with two hidden paths, optimized and non-optimized, both live" one_head
    check "$s: fio verifies on the head; every I/O goes down the optimized path" optimized_path
    check "$s: port 1's group made inaccessible under fio: the host fails over to port 2; data verifies" failover
    check "$s: port 2 unlinked from the subsystem under fio: its path goes, I/O stays on port 1; data verifies" path_lost
    check "$s: teardown" side_down
done
check "the host's nvme_core unloaded (the next tests load it with multipath=N again)" host_off
check "no splat or hang in the kernel log" dmesg_clean
tap_done
