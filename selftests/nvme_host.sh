#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# What Linux NVMe/TCP hosts do to a target, each a check, run on rtarget_nvme and then, in the
# same boot, on the in-kernel nvmet-tcp with the same commands below each tree's root (only
# the namespace's device differs: a symlink to a core device, or nvmet's device_path):
# dedicated write and poll queues; `nvme reset` and a controller delete during fio; the
# subsystem torn down and set up again three times under I/O, the host going from connecting
# back to live; an IPv6 port. Before them, on rtarget alone: a T10-PI device as a namespace
# (NVMe/TCP carries no metadata, as on nvmet-tcp: the core makes and checks the tuples).
. "$(dirname "$0")/lib.sh"
NQN=nqn.2026-12.org.rtarget:host
HOST=nqn.2014-08.org.nvmexpress:uuid:7e1d0000-0000-4000-8000-000000000003
UUID=7e1d0000-0000-4000-8000-00000000aa01
NVMET=/sys/kernel/config/nvmet
OUT=/tmp/nvme_host; rm -rf $OUT; mkdir -p $OUT
tap_plan 17
unload_all; dmesg_mark
trap nvme_cleanup EXIT

# side rtarget|nvmet: which target the next checks drive. Each has a 64 MiB namespace (an
# rd_mcp device, brd's /dev/ram0) and its own TCP ports.
side() {
    SIDE=$1
    case $1 in
        rtarget) ROOT=$CFG/nvme SVC=4420 SVC6=4430 ;;
        nvmet) ROOT=$NVMET SVC=4421 SVC6=4431 ;;
    esac
}
attach() { if [ $SIDE = rtarget ]; then ln -s "$DEV" "$1/dev"; else echo /dev/ram0 > "$1/device_path"; fi; }
detach() { if [ $SIDE = rtarget ]; then rm "$1/dev"; fi; }
# port_up ID ADRFAM TRADDR TRSVCID
port_up() { nvme_addr "$ROOT/ports/$1" "$2" "$3" "$4"; }
# The subsystem with namespace 1 (always the same UUID, as a restored configuration has), on port 1.
subsys_up() {
    local s=$ROOT/subsystems/$NQN
    mkdir "$s" && echo 1 > "$s/attr_allow_any_host" && echo rtarget-host > "$s/attr_serial" &&
        mkdir "$s/namespaces/1" && echo $UUID > "$s/namespaces/1/device_uuid" && attach "$s/namespaces/1" &&
        echo 1 > "$s/namespaces/1/enable" && ln -s "$s" "$ROOT/ports/1/subsystems/$NQN"
}
subsys_down() {
    local s=$ROOT/subsystems/$NQN
    rm "$ROOT/ports/1/subsystems/$NQN" && echo 0 > "$s/namespaces/1/enable" && detach "$s/namespaces/1" &&
        rmdir "$s/namespaces/1" "$s"
}
setup() { port_up 1 ipv4 127.0.0.1 $SVC && subsys_up && conn $NQN $HOST $SVC && ns_of $NQN 1 && nvme disconnect -n $NQN; }
# rtarget's I/O queues: one transmit thread each.
tx_threads() { pgrep -c -x rt_nvme_tx; }
# hctx_types DISK: the types of DISK's hardware queues, in order.
hctx_types() { cat /sys/kernel/debug/block/"${1##*/}"/hctx*/type | tr '\n' ' '; }
# Polled I/O itself is not run: the 7.3 host's nvme_tcp_poll takes the socket lock inside
# bio_poll's RCU read section (a "sleeping function called from invalid context" splat on
# any target), so the poll queue is checked as connected and mapped.
queues() {
    local c d
    fresh && conn $NQN $HOST $SVC --nr-io-queues=2 --nr-write-queues=2 --nr-poll-queues=1 && c=$(ctrl_of $NQN) &&
        d=$(ns_of $NQN 1) || return 1
    dmesg | grep "nvme $c: mapped" | tail -1 | tee /dev/stderr | grep -q 'mapped 2/2/1 default/read/poll' || return 1
    dmesg | grep "nvme $c: creating" | tail -1 | grep -q 'creating 5 I/O queues' || return 1
    echo "hardware queues: $(hctx_types "$d")"
    [ "$(hctx_types "$d")" = "default default read read poll " ] || return 1
    if [ $SIDE = rtarget ]; then
        echo "rtarget I/O queues: $(tx_threads)"; [ "$(tx_threads)" = 5 ] || return 1
    fi
    fio_verify "$d" && nvme disconnect -n $NQN && no_ctrl $NQN
}
# fresh: no controller of the host left on $NQN (a failed check may leave one).
fresh() { nvme disconnect -n $NQN > /dev/null 2>&1; no_ctrl $NQN; }
reset_under_io() {
    local c d pid rc r
    fresh && conn $NQN $HOST $SVC && c=$(ctrl_of $NQN) && d=$(ns_of $NQN 1) || return 1
    fio_bg "$d" reset; pid=$!
    sleep 2
    nvme reset "/dev/$c"; r=$?
    wait $pid; rc=$?
    tail -3 $OUT/fio_reset
    [ $r = 0 ] && [ $rc = 0 ] && ctrl_of $NQN > /dev/null && nvme disconnect -n $NQN && no_ctrl $NQN
}
delete_under_io() {
    local c d pid rc i
    fresh && conn $NQN $HOST $SVC && c=$(ctrl_of $NQN) && d=$(ns_of $NQN 1) || return 1
    timeout 90 fio --name=del --filename="$d" --rw=randread --bs=4k --size=32m --iodepth=16 --ioengine=libaio \
        --direct=1 --time_based --runtime=30 > $OUT/fio_del 2>&1 & pid=$!
    sleep 2
    echo 1 > "/sys/class/nvme/$c/delete_controller"
    wait $pid; rc=$?
    tail -2 $OUT/fio_del
    # fio ended (by errors, or its I/O held until its run time: the host's choice, the same
    # on nvmet), not by the timeout, and the controller is gone.
    echo "fio exit $rc"
    [ $rc != 124 ] && no_ctrl $NQN || return 1
    if [ $SIDE = rtarget ]; then
        for i in $(seq 1 50); do [ "$(tx_threads)" = 0 ] && break; sleep 0.2; done
        [ "$(tx_threads)" = 0 ] || { echo "rtarget queues left: $(tx_threads)"; return 1; }
    fi
    conn $NQN $HOST $SVC && d=$(ns_of $NQN 1) && fio_verify "$d" && nvme disconnect -n $NQN && no_ctrl $NQN
}
# wait_state CTRL REGEX SECONDS
wait_state() {
    local i
    for i in $(seq 1 $(($3 * 5))); do
        grep -qxE "$2" "/sys/class/nvme/$1/state" 2> /dev/null && return 0
        sleep 0.2
    done
    echo "$1: $(cat "/sys/class/nvme/$1/state" 2> /dev/null || echo gone), not $2"
    return 1
}
churn() {
    local c d pid r rc rounds=0
    fresh && CTRL_LOSS=120 conn $NQN $HOST $SVC && c=$(ctrl_of $NQN) && d=$(ns_of $NQN 1) || return 1
    rm -f $OUT/stop
    # The 7.3 host sends from the submitting task without MSG_NOSIGNAL: a send on a
    # connection the target has just closed raises SIGPIPE in fio (on any target), which
    # the host's own recovery makes harmless. fio ignores it.
    (trap '' PIPE; while [ ! -e $OUT/stop ]; do fio_verify "$d" || exit 1; done) & pid=$!
    for r in 1 2 3; do
        sleep 2
        subsys_down || { echo "round $r: teardown failed"; break; }
        wait_state "$c" 'connecting|resetting' 20 || break
        sleep 2
        subsys_up || { echo "round $r: setup failed"; break; }
        wait_state "$c" live 30 || break
        [ -b "$d" ] || { echo "round $r: $d is gone"; break; }
        echo "round $r: connecting, then live"
        rounds=$r
    done
    touch $OUT/stop
    wait $pid; rc=$?
    nvme disconnect -n $NQN > /dev/null; no_ctrl $NQN || return 1
    [ $rounds = 3 ] && [ $rc = 0 ] || { echo "fio exit $rc"; cat "$OUT/fio.$$" 2> /dev/null | tail -5; return 1; }
}
ipv6() {
    local d
    fresh && port_up 2 ipv6 ::1 $SVC6 && ln -s "$ROOT/subsystems/$NQN" "$ROOT/ports/2/subsystems/$NQN" &&
        TRADDR=::1 disc $HOST $SVC6 > $OUT/disc6 && grep -qE '^adrfam: +ipv6' $OUT/disc6 &&
        grep -qE '^traddr: +::1' $OUT/disc6 && TRADDR=::1 conn $NQN $HOST $SVC6 && d=$(ns_of $NQN 1) &&
        grep -q 'traddr=::1,' "/sys/class/nvme/$(ctrl_of $NQN)/address" && fio_verify "$d" 3 &&
        nvme disconnect -n $NQN && no_ctrl $NQN || { cat $OUT/disc6; return 1; }
    rm "$ROOT/ports/2/subsystems/$NQN" && rmdir "$ROOT/ports/2"
}
side_down() { fresh && subsys_down && rmdir "$ROOT/ports/1"; }

# A type 1 device as namespace 1 of its own subsystem on port 1 (4424) and as loopback LUN 0:
# what NVMe writes carries tuples the core made, which the loopback disk's block layer
# verifies on read; a tuple spoilt through SCSI (WRPROTECT=3) fails the NVMe read.
NQN_PI=nqn.2026-12.org.rtarget:pi
pi_namespace() {
    local dev d sd sg
    dev=$(setup_dev rd_mcp pi "rd_pages=16384") && echo 1 > $dev/attrib/pi_prot_type &&
        nvme_export $CFG/nvme $NQN_PI 4424 "$dev" && conn $NQN_PI $HOST 4424 > /dev/null && d=$(ns_of $NQN_PI 1) || return 1
    nvme id-ns "$d" | grep -E '^(dps|nlbaf|flbas) ' && nvme id-ns "$d" | grep -qE '^dps +: 0' || return 1
    head -c $((4 << 20)) /dev/urandom > $OUT/pattern
    dd if=$OUT/pattern of="$d" bs=64k oflag=direct status=none && link_dev "$dev" > /dev/null &&
        sd=$(lun_dev rtarget_loop block) && sg=$(lun_dev rtarget_loop scsi_generic) || return 1
    udevadm settle 2> /dev/null
    grep -qx T10-DIF-TYPE1-CRC /sys/block/${sd#/dev/}/integrity/format &&
        dd if="$sd" of=$OUT/got bs=64k count=64 iflag=direct status=none && cmp $OUT/got $OUT/pattern || return 1
    nvme read "$d" -n 1 -s 7 -c 0 -z 512 -d /dev/null > /dev/null &&
        sgio "$sg" "2a6000000007000001 00" --out "$(printf '5a%.0s' $(seq 512))" | tee /dev/stderr | grep -q '^status=00' &&
        ! nvme read "$d" -n 1 -s 7 -c 0 -z 512 -d /dev/null 2> $OUT/guard && cat $OUT/guard && grep -qi guard $OUT/guard
}

modprobe nvmet && modprobe nvmet-tcp && modprobe nvme-tcp && modprobe brd rd_nr=1 rd_size=65536 &&
    modprobe rtarget_core && modprobe rtarget_loop && mkdir $CFG/nvme
sgio_up
check "rtarget: a T10-PI type 1 namespace: no metadata over TCP; NVMe writes carry the core's tuples (the loopback disk verifies them); a spoilt tuple fails the NVMe read (guard check)" pi_namespace
pi_down() {
    nvme disconnect -n $NQN_PI > /dev/null; no_ctrl $NQN_PI && rm "$CFG/nvme/ports/1/subsystems/$NQN_PI" &&
        rm "$CFG/nvme/subsystems/$NQN_PI/namespaces/1/dev" && rmdir "$CFG/nvme/subsystems/$NQN_PI/namespaces/1" \
        "$CFG/nvme/subsystems/$NQN_PI" "$CFG/nvme/ports/1" && teardown_lun && [ ! -d $CFG/core/rd_mcp_1/pi ]
}
check "rtarget: that subsystem, port and LUN removed" pi_down
DEV=$(setup_dev rd_mcp r0 "rd_pages=16384")
ip -6 addr show dev lo | grep -q '::1/128' || echo "# lo has no ::1"
for s in rtarget nvmet; do
    side $s
    check "$s: subsystem, namespace 1 and port 1 (127.0.0.1:$SVC) with nvmet's names; the host connects" setup
    check "$s: 2 read, 2 write and 1 poll queue: 5 I/O queues, mapped 2/2/1 (default, read, poll); fio verifies" queues
    check "$s: nvme reset during fio: the host reconnects, fio's data verifies" reset_under_io
    check "$s: the controller deleted during fio: fio ends, the target's queues end; a new connect verifies" delete_under_io
    check "$s: the subsystem torn down and set up again 3 times under fio: connecting, then live; data verifies" churn
    check "$s: an IPv6 port ([::1]:$SVC6): discovery says ipv6, connect, fio verify" ipv6
    check "$s: teardown of the subsystem and port" side_down
done
check "no splat or hang in the kernel log" dmesg_clean
tap_done
