#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Persistent reservations between two nexuses to one ramdisk (two loopback TPGs): the same
# PERSISTENT RESERVE IN / OUT sequence on rtarget and on C LIO in the same boot, each step
# checked on both (registration, keys and generation, the reservation types' conflicts for
# READ and WRITE, PREEMPT and its unit attention, READ FULL STATUS, the holder unregistering,
# CLEAR, SPC-2 RESERVE beside registrations, emulate_pr); then bad input on rtarget.
. "$(dirname "$0")/lib.sh"
STEPS=41
BAD=6
ABORT=12
tap_plan $((2 * STEPS + ABORT + BAD + 1))
unload_all; dmesg_mark
sgio_up

SGIO="$(dirname "$0")/sgio.py"
# res SG CDB [ARGS]: good, conflict, check:K/ASC/ASCQ (hex), host:XX (the initiator's host
# byte, e.g. 08 after a reset), or other.
# SGIO_DIRECT=1: its own sgio.py process (a command sent while another is in flight).
res() {
    local out s
    if [ -n "${SGIO_DIRECT:-}" ]; then out=$(python3 "$SGIO" "$@" 2>&1); else out=$(sgio "$@" 2>&1); fi
    case "$out" in
        status=??\ host=0[1-9a-f]*) s=${out#*host=}; echo "host:${s:0:2}" ;;
        status=18*) echo conflict ;;
        status=00*) echo good ;;
        status=02*) s=${out#*sense=}; echo "check:${s:5:1}/${s:24:2}/${s:26:2}" ;;
        *) echo "other: $out" ;;
    esac
}
# data SG CDB ARGS: the data-in, in hex.
data() { sgio "$@" | sed -n 's/.*data=\([0-9a-f]*\).*/\1/p'; }
# expect DESC WANT SG CDB [ARGS]
expect() {
    local desc=$1 want=$2 got; shift 2
    got=$(res "$@")
    if [ "$got" = "$want" ]; then tap_ok "$desc"; else tap_not_ok "$desc (got $got, want $want)"; fi
}
# expect_data DESC WANT SG CDB ARGS: the data-in, in hex, equals WANT.
expect_data() {
    local desc=$1 want=$2 got; shift 2
    got=$(data "$@")
    if [ "$got" = "$want" ]; then tap_ok "$desc"; else tap_not_ok "$desc (got '$got', want '$want')"; fi
}
hex16() { printf '%016x' "$1"; }
# prout SA TYPE KEY SARK [FLAGS] [LEN]: a PERSISTENT RESERVE OUT CDB and its parameter list.
prout() {
    printf '5f%02x%02x0000%08x00 --out %s%s00000000%02x000000' "$1" "$2" "${6:-24}" \
        "$(hex16 "$3")" "$(hex16 "$4")" "${5:-0}"
}
prin() { printf '5e%02x0000000000%04x00 --in %d' "$1" "$2" "$2"; }
TUR=000000000000
READ10="28000000000100000100 --in 512"
WRITE10="2a000000000100000100 --out $(printf '%01024d' 0)"

side() { # CORE_MODULE PROC_NAME NAME
    local sg1 sg2 s db n=$3 g5=5 g6=7
    # SPC-4 counts every REGISTER in PRGENERATION; LIO does not count unregistering.
    [ "$1" = rtarget_core ] || { g5=4; g6=6; }
    # LIO writes its APTPL file (even with APTPL 0) under dbroot/pr and fails the PROUT
    # when it cannot: give both a scratch dbroot.
    db=$(mktemp -d) && mkdir "$db/pr"
    check "$n: dbroot in a scratch directory" bash -c "modprobe $1 && echo $db > $CFG/dbroot"
    check "$n: one ramdisk in two TPGs" two_tpgs "$1"
    sg1=$(lun_dev "$2" scsi_generic 0 1); sg2=$(lun_dev "$2" scsi_generic 0 2)
    # Consume the power-on unit attentions.
    for s in $sg1 $sg2; do res $s $TUR >/dev/null; res $s $TUR >/dev/null; done
    expect "$n: REGISTER key a from nexus 1" good $sg1 $(prout 0 0 0 0xa)
    expect "$n: REGISTER AND IGNORE EXISTING KEY b from nexus 2" good $sg2 $(prout 6 0 0 0xb)
    expect "$n: REGISTER from a registered nexus with the wrong key: CONFLICT" conflict $sg2 $(prout 0 0 0 0xc)
    expect_data "$n: READ KEYS: generation 2, keys a and b" \
        "0000000200000010$(hex16 0xa)$(hex16 0xb)" $sg1 $(prin 0 64)
    expect_data "$n: READ RESERVATION: none" 0000000200000000 $sg2 $(prin 1 64)
    expect "$n: RESERVE Write Exclusive from nexus 1" good $sg1 $(prout 1 1 0xa 0)
    expect_data "$n: READ RESERVATION: key a, type 1" \
        "0000000200000010$(hex16 0xa)0000000000010000" $sg2 $(prin 1 64)
    pr_files "$1" "$n"
    expect "$n: WE: WRITE from registered nexus 2: CONFLICT" conflict $sg2 $WRITE10
    expect "$n: WE: READ from nexus 2" good $sg2 $READ10
    expect "$n: WE: WRITE from the holder" good $sg1 $WRITE10
    expect "$n: RESERVE from nexus 2 while nexus 1 holds: CONFLICT" conflict $sg2 $(prout 1 1 0xb 0)
    expect "$n: SPC-2 RESERVE(6) beside registrations: CONFLICT" conflict $sg2 160000000000
    expect "$n: PREEMPT of key a by nexus 2, as Exclusive Access" good $sg2 $(prout 4 3 0xb 0xa)
    expect "$n: nexus 1 gets REGISTRATIONS PREEMPTED" check:6/2a/05 $sg1 $TUR
    expect "$n: EA: READ from unregistered nexus 1: CONFLICT" conflict $sg1 $READ10
    expect "$n: EA: INQUIRY from nexus 1 passes" good $sg1 120000002400 --in 36
    expect_data "$n: READ KEYS: generation 3, key b" "0000000300000008$(hex16 0xb)" $sg1 $(prin 0 64)
    # READ FULL STATUS: key b, R_HOLDER, type 3, a SAS TransportID of nexus 2 (the relative
    # port identifier, bytes 26-27, differs: LIO numbers its TPGs).
    s=$(data $sg2 $(prin 3 128))
    if [ "${s:0:52}" = "0000000300000030$(hex16 0xb)00000000010300000000" ] &&
        [ "${s:56}" = "00000018060000005001405f00000002000000000000000000000000" ]; then
        tap_ok "$n: READ FULL STATUS: holder b, type 3, TransportID of nexus 2"
    else
        tap_not_ok "$n: READ FULL STATUS: got $s"
    fi
    expect "$n: RELEASE with another type: CONFLICT or INVALID RELEASE" "$([ $1 = rtarget_core ] && echo check:5/26/04 || echo conflict)" \
        $sg2 $(prout 2 1 0xb 0)
    expect "$n: RELEASE by the holder" good $sg2 $(prout 2 3 0xb 0)
    expect_data "$n: READ RESERVATION: none again" 0000000300000000 $sg1 $(prin 1 64)
    expect "$n: REGISTER key d from nexus 1" good $sg1 $(prout 0 0 0 0xd)
    expect "$n: RESERVE Write Exclusive, Registrants Only from nexus 2" good $sg2 $(prout 1 5 0xb 0)
    expect "$n: WERO: WRITE from registrant nexus 1" good $sg1 $WRITE10
    expect "$n: the holder unregisters" good $sg2 $(prout 0 0 0xb 0)
    expect "$n: nexus 1 gets RESERVATIONS RELEASED" check:6/2a/04 $sg1 $TUR
    expect_data "$n: READ RESERVATION: released with its holder" 0000000${g5}00000000 $sg1 $(prin 1 64)
    expect "$n: REGISTER key f from nexus 2" good $sg2 $(prout 0 0 0 0xf)
    expect "$n: CLEAR from nexus 1" good $sg1 $(prout 3 0 0xd 0)
    expect "$n: nexus 2 gets RESERVATIONS PREEMPTED" check:6/2a/03 $sg2 $TUR
    expect_data "$n: READ KEYS: none, generation $g6" 0000000${g6}00000000 $sg2 $(prin 0 64)
    expect "$n: SPC-2 RESERVE(6) with no registration" good $sg1 160000000000
    expect "$n: PRIN while an SPC-2 reservation is held, even from its holder: CONFLICT" conflict $sg1 $(prin 0 64)
    expect "$n: RELEASE(6)" good $sg1 170000000000
    expect "$n: REGISTER key e from nexus 2" good $sg2 $(prout 0 0 0 0xe)
    check "$n: nexus 2's LUN unlinked: its registration goes" bash -c "rm $TPG2/lun/lun_0/link0 &&
        python3 $SGIO $sg1 $(prin 0 64) | grep -Eq 'data=[0-9a-f]{8}00000000\$'"
    check "$n: emulate_pr 0" bash -c "echo 0 > $CFG/core/rd_mcp_1/r0/attrib/emulate_pr"
    expect "$n: emulate_pr 0: PRIN is INVALID COMMAND OPERATION CODE" check:5/20/00 $sg1 $(prin 0 64)
    [ "$1" = rtarget_core ] && bad_input "$sg1"
    unload_all
}
# pr_files CORE_MODULE NAME: the device's pr/ files while nexus 1 holds Write Exclusive, with
# keys a and b: rtarget's must say so, LIO's must say the same.
PRF="res_holder res_pr_all_tgt_pts res_pr_generation res_pr_registered_i_pts res_pr_type res_type res_aptpl_active"
pr_files() {
    local f d=$CFG/core/rd_mcp_1/r0/pr
    for f in $PRF; do echo "$f: $(cat $d/$f)"; done > /tmp/pr_files.$1
    if [ "$1" = rtarget_core ]; then
        check "$2: pr/ names the holder, its type, both registrations and the generation" bash -c "
            grep -qx 'res_holder: SPC-3 Reservation: loopback Initiator: $NEXUS' /tmp/pr_files.$1 &&
            grep -qx 'res_pr_type: SPC-3 Reservation Type: Write Exclusive Access' /tmp/pr_files.$1 &&
            grep -qx 'res_pr_generation: 0x00000002' /tmp/pr_files.$1 &&
            grep -qx 'loopback Node: $NEXUS2 Key: 0x000000000000000b PRgen: 0x00000001' /tmp/pr_files.$1 &&
            grep -q 'Target Node Endpoint: $WWN' $d/res_pr_holder_tg_port &&
            grep -q 'Portal Group Tag: 1 loopback Logical Unit: 0' $d/res_pr_holder_tg_port"
    else
        check "$2: pr/ reads as rtarget's" diff /tmp/pr_files.rtarget_core /tmp/pr_files.$1
    fi
}
bad_input() { # SG
    echo 1 > $CFG/core/rd_mcp_1/r0/attrib/emulate_pr
    expect "rtarget: PROUT with a 23-byte list: PARAMETER LIST LENGTH ERROR" check:5/1a/00 $1 $(prout 0 0 0 0xa 0 23)
    expect "rtarget: PRIN service action 4: INVALID FIELD IN CDB" check:5/24/00 $1 $(prin 4 64)
    expect "rtarget: PROUT service action 8: INVALID FIELD IN CDB" check:5/24/00 $1 $(prout 8 0 0 0xa)
    expect "rtarget: REGISTER with SPEC_I_PT: INVALID FIELD IN PARAMETER LIST" check:5/26/00 $1 $(prout 0 0 0 0xa 8)
    expect "rtarget: REGISTER with APTPL (not offered): INVALID FIELD IN PARAMETER LIST" check:5/26/00 $1 $(prout 0 0 0 0xa 1)
    res $1 $(prout 0 0 0 0xa) >/dev/null
    expect "rtarget: RESERVE with element scope: INVALID FIELD IN CDB" check:5/24/00 $1 $(prout 1 0x21 0xa 0)
}
# preempt_abort CORE_MODULE PROC_NAME NAME: a WRITE of nexus 1 in flight on a null_blk that
# takes 3 s per I/O when nexus 2 preempts its key: PREEMPT lets it finish GOOD; PREEMPT AND
# ABORT aborts it (the initiator sees DID_RESET).
SLOW=/sys/kernel/config/nullb/rtslow
# write_in_flight OUT: nexus 1's WRITE(10), in the background, once it has reached the slow
# device (its own sgio.py: the test's one answers a command at a time).
write_in_flight() {
    local i r w
    SGIO_DIRECT=1 res $sg1 $WRITE10 > "$1" & bg=$!
    for i in $(seq 150); do
        read -r r w < /sys/block/rtslow/inflight && [ "$w" -gt 0 ] && return 0
        sleep 0.2
    done
    # The checks that follow then fail.
    wait $bg; echo "never in flight" > "$1"
}
preempt_abort() {
    local sg1 sg2 s n=$3 w=/tmp/pr_write.$1 ours= bg
    loaded null_blk || ours=1
    check "$n: iblock on a slow null_blk in two TPGs" bash -c "modprobe null_blk nr_devices=0 &&
        mkdir -p $SLOW && echo 2 > $SLOW/irqmode && echo 3000000000 > $SLOW/completion_nsec &&
        echo 1 > $SLOW/power && udevadm settle && [ -b /dev/rtslow ]" &&
        check "$n: exported" two_tpgs "$1" iblock slow udev_path=/dev/rtslow
    sg1=$(lun_dev "$2" scsi_generic 0 1); sg2=$(lun_dev "$2" scsi_generic 0 2)
    for s in $sg1 $sg2; do res $s $TUR >/dev/null; res $s $TUR >/dev/null; done
    expect "$n: REGISTER a from nexus 1" good $sg1 $(prout 0 0 0 0xa)
    expect "$n: REGISTER b from nexus 2" good $sg2 $(prout 0 0 0 0xb)
    expect "$n: RESERVE Write Exclusive from nexus 1" good $sg1 $(prout 1 1 0xa 0)
    write_in_flight $w
    expect "$n: PREEMPT while nexus 1 writes" good $sg2 $(prout 4 1 0xb 0xa)
    wait $bg
    check "$n: PREEMPT: the WRITE in flight completes GOOD" grep -qx good $w
    res $sg1 $TUR >/dev/null
    expect "$n: RELEASE by nexus 2" good $sg2 $(prout 2 1 0xb 0)
    expect "$n: REGISTER c from nexus 1" good $sg1 $(prout 0 0 0 0xc)
    expect "$n: RESERVE Write Exclusive from nexus 1 again" good $sg1 $(prout 1 1 0xc 0)
    write_in_flight $w
    expect "$n: PREEMPT AND ABORT while nexus 1 writes" good $sg2 $(prout 5 1 0xb 0xc)
    wait $bg
    check "$n: PREEMPT AND ABORT: the WRITE in flight is aborted, the initiator sees a reset ($(cat $w))" grep -qx host:08 $w
    unload_all
    echo 0 > $SLOW/power; rmdir $SLOW
    [ -z "$ours" ] || rmmod null_blk
}
side rtarget_core rtarget_loop rtarget
preempt_abort rtarget_core rtarget_loop rtarget
side target_core_mod tcm_loopback "C LIO"
# (C LIO is not put through preempt_abort: its PREEMPT AND ABORT of a command in flight over
# tcm_loop never returns; core_tmr_lun_reset waits in flush_work from the submission
# workqueue, and the tasks stay in D state.)
check "no oops or warning in dmesg" dmesg_clean
tap_done
