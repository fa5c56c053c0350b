#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Ports are independent: 256 subsystems linked to 256 ports by 4 processes at once, while
# rtarget_nvme's test hook (port_enable_delay_ms=1000) makes every port's enable take 1 s.
# Each process's share is 64 enables, so the wall time must stay near 64 s; one lock over all
# ports (nvmet's nvmet_config_sem, held across nvmet_enable_port) would make it 256 s. The
# same links without the delay are timed on rtarget and on nvmet in the same boot and
# reported (nvmet has no such hook; its figure is the undelayed one).
. "$(dirname "$0")/lib.sh"
N=$CFG/nvme
NVMET=/sys/kernel/config/nvmet
COUNT=256
PROCS=4
tap_plan 6
unload_all; dmesg_mark
cleanup() {
    teardown_nvme
    [ -d $NVMET ] && { rm -f $NVMET/ports/*/subsystems/*; rmdir $NVMET/ports/* $NVMET/subsystems/* 2> /dev/null; }
    for m in nvmet_tcp nvmet rtarget_nvme; do loaded $m && rmmod $m 2> /dev/null; done
}
trap cleanup EXIT

# make_tree ROOT BASEPORT: COUNT subsystems (any host) and COUNT TCP ports on 127.0.0.1.
make_tree() {
    local i p
    for i in $(seq 1 $COUNT); do
        mkdir "$1/subsystems/nqn.2026-12.org.rtarget:p$i" && echo 1 > "$1/subsystems/nqn.2026-12.org.rtarget:p$i/attr_allow_any_host" &&
            p=$1/ports/$i && mkdir "$p" && echo tcp > "$p/addr_trtype" && echo ipv4 > "$p/addr_adrfam" &&
            echo 127.0.0.1 > "$p/addr_traddr" && echo $(($2 + i)) > "$p/addr_trsvcid" || return 1
    done
}
# link_all ROOT: PROCS processes link subsystem i to port i, each a 1/PROCS share; prints
# the wall time in seconds.
link_all() {
    local t0 t1 k
    t0=$(date +%s.%N)
    for k in $(seq 1 $PROCS); do
        (for i in $(seq $k $PROCS $COUNT); do
            ln -s "$1/subsystems/nqn.2026-12.org.rtarget:p$i" "$1/ports/$i/subsystems/" || exit 1
        done) &
    done
    wait
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{ printf "%.1f\n", $2 - $1 }'
}
unlink_all() { rm -f "$1"/ports/*/subsystems/*; }

check "rtarget_nvme with a 1 s port enable: $COUNT subsystems and $COUNT ports" sh -c "modprobe rtarget_core &&
    modprobe rtarget_nvme port_enable_delay_ms=1000 && mkdir $N"
make_tree $N 6000 || echo "# make_tree failed"
wall=$(link_all $N)
echo "# rtarget, 1 s per port enable: $COUNT links from $PROCS processes in ${wall} s (share $((COUNT / PROCS)) s, one lock: $COUNT s)"
check "the links took close to one process's share (< 1.5 x $((COUNT / PROCS)) s), not $COUNT s" \
    awk -v w="$wall" -v s=$((COUNT / PROCS)) 'BEGIN { exit !(w > 0 && w < 1.5 * s) }'
check "every port listens" sh -c "[ \$(ss -ltn | grep -cE '127.0.0.1:6[0-9]{3} ') -ge $COUNT ]"
unlink_all $N
teardown_nvme
rmmod rtarget_nvme
modprobe rtarget_nvme && mkdir $N && make_tree $N 6000 || echo "# make_tree failed"
fast=$(link_all $N)
echo "# rtarget, no delay: $COUNT links from $PROCS processes in ${fast} s"
check "without the delay every port listens too" sh -c "[ \$(ss -ltn | grep -cE '127.0.0.1:6[0-9]{3} ') -ge $COUNT ]"
unlink_all $N
teardown_nvme
modprobe nvmet-tcp && make_tree $NVMET 7000 || echo "# nvmet make_tree failed"
nv=$(link_all $NVMET)
echo "# nvmet, no delay: $COUNT links from $PROCS processes in ${nv} s"
check "nvmet in the same boot: the same links, every port listens" sh -c "
    [ \$(ss -ltn | grep -cE '127.0.0.1:7[0-9]{3} ') -ge $COUNT ]"
unlink_all $NVMET
check "no splat or hang in the kernel log" dmesg_clean
tap_done
