#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Two nexuses (two loopback TPGs exporting one ramdisk): SPC-2 RESERVE / RELEASE, the same
# sequence on rtarget and on C LIO in the same boot, each step checked on both; then MODE
# SELECT of the caching page through sd's cache_type (rtarget: WCE is changeable on an
# emulated cache, and the other nexus gets MODE PARAMETERS CHANGED; LIO refuses any change),
# and of the control page's SWP (rtarget: every nexus's writes refused while it is set).
. "$(dirname "$0")/lib.sh"
STEPS=10
tap_plan $((2 * (STEPS + 1) + 3 + 6 + 1))
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
    swp "$(lun_dev rtarget_loop scsi_generic 0 1)" "$2"
}
# The control page's current value (MODE SENSE(6), no block descriptor) with SWP set to $2, as
# MODE SELECT(6) parameter data.
control_page() { # SG SWP
    local d page b4
    d=$(sgio "$1" 1a080a00ff00 --in 255) || return 1
    page=${d#*data=}; page=${page:8:24}
    [ "${page:0:4}" = 0a0a ] || { echo "no control page: $d"; return 1; }
    b4=$(( (0x${page:8:2} & ~0x08) | $2 * 0x08 ))
    printf '00000000%s%02x%s' "${page:0:8}" $b4 "${page:10}"
}
swp_select() { # SG SWP: MODE SELECT(6), PF, the control page; GOOD expected
    local out
    out=$(sgio "$1" 151000001000 --out "$(control_page "$1" "$2")")
    [[ $out == status=00* ]] || { echo "$out"; return 1; }
}
BLOCK=$(printf '5a%.0s' $(seq 512))
WRITE10=2a000000000000000100
# answer_is SG CDB ARGS...: the answer matches the ERE in $want.
answer_is() { local out; out=$(sgio "$@"); echo "$out"; [[ $out =~ $want ]]; }
# SWP from nexus 1: nexus 2 gets MODE PARAMETERS CHANGED, then DATA PROTECT / WRITE PROTECTED
# on a WRITE, WP in MODE SENSE, and its READs; SWP cleared, the WRITE goes through.
swp() { # SG_OF_NEXUS1 SG_OF_NEXUS2
    status "$2" $TUR >/dev/null; status "$2" $TUR >/dev/null   # the WCE steps' attentions
    # A reported MODE PARAMETERS CHANGED makes the kernel send a uevent, and udev's rules then
    # read the second nexus's disk, which would take the next attention before the check:
    # let udev finish first.
    udevadm settle --timeout=10 2>/dev/null || true
    check "rtarget: MODE SELECT of the control page sets SWP" swp_select "$1" 1
    want='^status=02 .*sense=70000600000000..000000002a01' \
        check "rtarget: the other nexus gets MODE PARAMETERS CHANGED" answer_is "$2" $TUR
    want='^status=02 .*sense=700007[0-9a-f]{18}2700' \
        check "rtarget: SWP: a WRITE from the other nexus gets DATA PROTECT, WRITE PROTECTED" \
        answer_is "$2" $WRITE10 --out "$BLOCK"
    want='^status=00 .*data=[0-9a-f]{4}[89][0-9a-f]{3}0a0a[0-9a-f]{5}[89a-f]' \
        check "rtarget: SWP: MODE SENSE shows WP and SWP" answer_is "$2" 1a080a00ff00 --in 255
    check "rtarget: MODE SELECT clears SWP" swp_select "$1" 0
    status "$2" $TUR >/dev/null   # MODE PARAMETERS CHANGED again
    want='^status=00' check "rtarget: SWP cleared: the WRITE passes" answer_is "$2" $WRITE10 --out "$BLOCK"
}
side rtarget_core rtarget_loop rtarget
side target_core_mod tcm_loopback "C LIO"
# (C LIO: nothing in its caching page is changeable; sd's MODE SELECT is refused there.)
check "no oops or warning in dmesg" dmesg_clean
tap_done
