#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Side by side with C LIO in the same boot: the same LUN (same serial, WWN, size) on each
# backend (rd_mcp, fileio on tmpfs, iblock on brd and on a scsi_debug disk with atomic writes),
# set up with the same configfs writes, must answer the same commands with the same bytes.
# Allowed differences are listed in ALLOWED_* with their reason.
. "$(dirname "$0")/lib.sh"
SGIO="$(dirname "$0")/sgio.py"

# name|cdb|args
CMDS='inquiry|12000000ff00|--in 255
vpd00|120100 00ff00|--in 255
vpd80|120180 00ff00|--in 255
vpd83|120183 040000|--in 1024
vpd86|120186 00ff00|--in 255
vpdb0|1201b0 00ff00|--in 255
vpdb1|1201b1 00ff00|--in 255
vpdb2|1201b2 00ff00|--in 255
vpdb3|1201b3 00ff00|--in 255
inquiry_short|120000002400|--in 36
readcap10|25000000000000000000|--in 8
readcap16|9e100000000000000000000000200000|--in 32
modesense6_all|1a003f00ff00|--in 255
modesense10_all|5a003f00000000010000|--in 256
modesense6_caching|1a000800ff00|--in 255
modesense6_control|1a000a00ff00|--in 255
modesense6_changeable|1a007f00ff00|--in 255
reportluns|a0000000000000000100 0000|--in 256
requestsense|030000001200|--in 18
tur|000000000000|
read10|28000000000000000100|--in 512
sync_cache10|35000000000000000000|
bad_opcode|ff0000000000|
bad_lba|28000002000000000100|--in 512
bad_vpd|1201ee00ff00|--in 255
bad_modepage|1a000300ff00|--in 255
bad_rc16_sa|9e1f0000000000000000000000200000|--in 32
fua_write_no_wce|2a080000000000000100|--out ZERO512
bad_long_read|28000000000000001000|--in 512'
# rtarget adds SPC-4 sense-key-specific field pointers (bytes 15-17); LIO sends none.
# For errors, compare status and sense bytes 0-14 only.
ALLOWED_SENSE_SKS='bad_opcode bad_vpd bad_modepage bad_rc16_sa bad_long_read'
# A READ longer than its buffer fails on both sides; LIO also reports the CDB's overflow
# (8192-512) as residual, which makes SG_IO show no data. rtarget, like LIO for every other
# failed command, leaves the residual at 0.
ALLOWED_RESID='bad_long_read'
# A WRITE with FUA on a device without a write cache: SBC-4 gives FUA no condition and
# rtarget writes it (GOOD); LIO refuses it (INVALID FIELD IN CDB).
ALLOWED_GOOD_WHERE_LIO_FAILS='fua_write_no_wce'
# MODE SENSE of the changeable values: rtarget lets MODE SELECT change WCE where the write cache
# is emulated (caching page byte 2 is 04h) and SWP (control page byte 4 is 08h); nothing is
# changeable in LIO.
ALLOWED_CHANGEABLE='modesense6_changeable'
# MODE SENSE's DPOFUA (device-specific parameter 10h): rtarget honours DPO and FUA on every
# backend, write cache or not; LIO claims them only with a write cache.
ALLOWED_DPOFUA='modesense6_all modesense10_all modesense6_caching modesense6_control modesense6_changeable'
# Standard INQUIRY byte 5, TPGS: LIO claims 3 (ALUA); rtarget claims 0 until it implements
# ALUA. The other bits of the byte (3PC among them) must match.
ALLOWED_INQ_TPGS='inquiry inquiry_short'
# VPD B0h byte 4, WSNZ: rtarget writes to the end of the medium for a WRITE SAME of zero
# blocks (WSNZ 0); LIO refuses it (WSNZ 1).
ALLOWED_WSNZ='vpdb0'

# clear_bits ANSWER BYTE MASK: the answer with MASK's bits of data byte BYTE cleared.
clear_bits() {
    local d=${1#*data=} at=$(($2 * 2))
    [[ "$1" == *data=* ]] && [ ${#d} -ge $((at + 2)) ] || { echo "$1"; return; }
    printf '%sdata=%s%02x%s\n' "${1%%data=*}" "${d:0:at}" $((0x${d:at:2} & ~$3 & 0xff)) "${d:at+2}"
}

capture() { # OUTDIR PROC_NAME
    local sg
    sg=$(lun_dev "$2" scsi_generic) || return 1
    echo "${CMDS//ZERO512/$(printf '00%.0s' $(seq 512))}" | python3 "$SGIO" "$sg" --batch "$1"
}

n=$(echo "$CMDS" | wc -l)
# NAME|PLUGIN|CONTROL: the same backstore on both sides.
BACKENDS="rd_mcp|rd_mcp|rd_pages=16384
fileio|fileio|fd_dev_name=$BK/cmp.img,fd_dev_size=67108864
iblock|iblock|udev_path=/dev/ram0"
# iblock on a disk with atomic writes (scsi_debug): VPD B0h's atomic fields.
sdbg=$(atomic_disk)
BACKENDS="$BACKENDS
iblock_atomic|iblock|udev_path=/dev/${sdbg:-scsi_debug_has_no_disk}"
nb=$(echo "$BACKENDS" | wc -l)
tap_plan $((nb * (n + 3) + 3))
unload_all; dmesg_mark
rm -rf /tmp/cmp
check "scratch storage" scratch_up
side() { # CORE_MODULE PROC_NAME OUTDIR PLUGIN CONTROL
    local dev blk=${5#udev_path=}
    rm -f $BK/cmp.img
    # A block device starts zeroed on both sides: earlier tests leave data on brd, and the
    # commands write LBA 0, which the other side then reads.
    if [ "$blk" != "$5" ] && [ -b "$blk" ]; then
        dd if=/dev/zero of="$blk" bs=1M count=1 oflag=direct status=none || return 1
    fi
    modprobe "$1" && dev=$(setup_dev "$4" cmp "$5") && link_dev "$dev" && capture "$3" "$2"
}
while IFS='|' read -r bname plugin control; do
    check "$bname: rtarget: set up the LUN and capture $n answers" side rtarget_core rtarget_loop /tmp/cmp/$bname/rtarget "$plugin" "$control"
    unload_all
    check "$bname: C LIO: the same LUN and the same $n commands" side target_core_mod tcm_loopback /tmp/cmp/$bname/lio "$plugin" "$control"
    unload_all
    check "$bname: both sides answered every command" sh -c "[ \$(ls /tmp/cmp/$bname/rtarget | wc -l) = $n ] &&
        [ \$(ls /tmp/cmp/$bname/lio | wc -l) = $n ] && ! grep -l 'ioctl failed' /tmp/cmp/$bname/*/*"
    while IFS='|' read -r name _; do
        r=$(cat /tmp/cmp/$bname/rtarget/$name 2>/dev/null); l=$(cat /tmp/cmp/$bname/lio/$name 2>/dev/null)
        why=""
        if [[ " $ALLOWED_SENSE_SKS " == *" $name "* ]]; then
            # status, host, resid and sense bytes 0-14 (30 hex digits) must match
            strip() { sed -E 's/sense=([0-9a-f]{30})[0-9a-f]*/sense=\1/'; }
            r=$(echo "$r" | strip); l=$(echo "$l" | strip)
            why=" (sense-key-specific bytes allowed to differ)"
        fi
        if [[ " $ALLOWED_RESID " == *" $name "* ]]; then
            r=$(echo "$r" | sed -E 's/resid=[0-9-]+ //; s/data=.*//'); l=$(echo "$l" | sed -E 's/resid=[0-9-]+ //; s/data=.*//')
            why="$why (residual allowed to differ)"
        fi
        if [[ " $ALLOWED_GOOD_WHERE_LIO_FAILS " == *" $name "* ]]; then
            [[ "$r" == status=00* && "$l" == status=02*sense=70000500* ]] && l=$r
            why="$why (GOOD where LIO refuses: allowed)"
        fi
        if [[ " $ALLOWED_CHANGEABLE " == *" $name "* ]]; then
            [[ $r =~ data=([0-9a-f]{2})*0a0a00000800000000000000 ]] || r="$r (rtarget: SWP not changeable)"
            # (the control page after the caching page: masked first, while the bytes before are hex)
            mask() { sed -E 's/(data=([0-9a-f]{2})*0a0a[0-9a-f]{4})[0-9a-f]{2}/\1../; s/(data=([0-9a-f]{2})*0812)[0-9a-f]{2}/\1../'; }
            r=$(echo "$r" | mask); l=$(echo "$l" | mask)
            why="$why (caching page WCE and control page SWP changeable in rtarget: allowed)"
        fi
        if [[ " $ALLOWED_DPOFUA " == *" $name "* ]]; then
            at=$([[ $name == modesense10* ]] && echo 6 || echo 4)
            r=$(echo "$r" | sed -E "s/(data=[0-9a-f]{$at})[0-9a-f]{2}/\\1../"); l=$(echo "$l" | sed -E "s/(data=[0-9a-f]{$at})[0-9a-f]{2}/\\1../")
            why="$why (DPOFUA allowed to differ)"
        fi
        if [[ " $ALLOWED_INQ_TPGS " == *" $name "* ]]; then
            r=$(clear_bits "$r" 5 0x30); l=$(clear_bits "$l" 5 0x30)
            why="$why (INQUIRY TPGS allowed to differ)"
        fi
        if [[ " $ALLOWED_WSNZ " == *" $name "* ]]; then
            [[ "${r#*data=}" == 00b0????00* ]] || r="$r (rtarget sets WSNZ)"
            r=$(clear_bits "$r" 4 0x01); l=$(clear_bits "$l" 4 0x01)
            why="$why (WSNZ allowed to differ)"
        fi
        if [ -n "$r" ] && [ "$r" = "$l" ]; then
            tap_ok "$bname: $name: identical$why"
        else
            tap_not_ok "$bname: $name differs"
            { echo "rtarget: $r"; echo "lio:     $l"; } | tap_diag
        fi
    done <<< "$CMDS"
done <<< "$BACKENDS"
check "C LIO really answered (INQUIRY from LIO-ORG, 96 bytes)" grep -q 'data=000006025bb8' /tmp/cmp/rd_mcp/lio/inquiry
scratch_down
rmmod scsi_debug 2>/dev/null
check "no oops or warning in dmesg" dmesg_clean
tap_done
