#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Two nexuses (two loopback TPGs exporting one ramdisk): SPC-2 RESERVE / RELEASE, the same
# sequence on rtarget and on C LIO in the same boot, each step checked on both; then MODE
# SELECT of the caching page through sd's cache_type (rtarget: WCE is changeable on an
# emulated cache, and the other nexus gets MODE PARAMETERS CHANGED; LIO refuses any change).
. "$(dirname "$0")/lib.sh"
STEPS=10
tap_plan $((2 * (STEPS + 1) + 3 + 1))
unload_all; dmesg_mark
sgio_up

SGIO="$(dirname "$0")/sgio.py"
# status SG CDB [ARGS]: the SCSI status (good, conflict, check).
status() {
    local out
    out=$(sgio "$@" 2>&1)
    case "$out" in
        status=18*) echo conflict ;;
        status=02*) echo check ;;
        status=00*) echo good ;;
        *) echo "other: $out" ;;
    esac
}
# expect DESC WANT SG CDB...
expect() {
    local desc=$1 want=$2 got; shift 2
    got=$(status "$@")
    if [ "$got" = "$want" ]; then tap_ok "$desc"; else tap_not_ok "$desc (got $got)"; fi
}
TUR=000000000000; RESERVE=160000000000; RELEASE=170000000000
RESERVE10=56000000000000000000; INQ="120000002400 --in 36"

side() { # CORE_MODULE PROC_NAME NAME
    local sg1 sg2 sd1 s
    check "$3: one ramdisk in two TPGs" two_tpgs "$1"
    sg1=$(lun_dev "$2" scsi_generic 0 1); sg2=$(lun_dev "$2" scsi_generic 0 2); sd1=$(lun_dev "$2" block 0 1)
    # Consume the power-on unit attentions.
    for s in $sg1 $sg2; do status $s $TUR >/dev/null; status $s $TUR >/dev/null; done
    expect "$3: RESERVE(6) from nexus 1" good $sg1 $RESERVE
    expect "$3: TEST UNIT READY from nexus 2: RESERVATION CONFLICT" conflict $sg2 $TUR
    expect "$3: INQUIRY from nexus 2 passes" good $sg2 $INQ
    expect "$3: RESERVE(10) from nexus 2: RESERVATION CONFLICT" conflict $sg2 $RESERVE10
    expect "$3: RELEASE from nexus 2: GOOD, but the reservation stays" good $sg2 $RELEASE
    expect "$3: TEST UNIT READY from nexus 2 still conflicts" conflict $sg2 $TUR
    expect "$3: RESERVE again from the holder: GOOD" good $sg1 $RESERVE
    expect "$3: RELEASE from nexus 1" good $sg1 $RELEASE
    expect "$3: TEST UNIT READY from nexus 2 now GOOD" good $sg2 $TUR
    status $sg1 $RESERVE >/dev/null
    sg_reset -d "$sd1" >/dev/null 2>&1
    status $sg2 $TUR >/dev/null   # the reset's unit attention
    expect "$3: a LUN reset drops the reservation" good $sg2 $TUR
    [ "$1" = rtarget_core ] && mode_select "$sd1" "$sg2"
    unload_all
}
mode_select() { # SD_OF_NEXUS1 SG_OF_NEXUS2
    local disk=/sys/class/scsi_disk/$(basename "$(readlink -f /sys/block/${1#/dev/}/device)")
    check "rtarget: MODE SELECT through sd: cache_type 'write back'" bash -c "echo 'write back' > $disk/cache_type &&
        grep -q 'write back' $disk/cache_type && [ \$(cat $CFG/core/rd_mcp_1/r0/attrib/emulate_write_cache) = 1 ]"
    check "rtarget: the other nexus gets MODE PARAMETERS CHANGED" bash -c "python3 $SGIO $2 $TUR | grep -q 'sense=70000600000000..000000002a01'"
    check "rtarget: MODE SELECT back to write through" bash -c "echo 'write through' > $disk/cache_type &&
        [ \$(cat $CFG/core/rd_mcp_1/r0/attrib/emulate_write_cache) = 0 ]"
}
side rtarget_core rtarget_loop rtarget
side target_core_mod tcm_loopback "C LIO"
# (C LIO: nothing in its caching page is changeable; sd's MODE SELECT is refused there.)
check "no oops or warning in dmesg" dmesg_clean
tap_done
