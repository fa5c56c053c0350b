#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Unit attentions per I_T nexus, seen through SG_IO with sd kept off the disks (so nothing
# consumes them first): POWER ON for each new I_T_L nexus (a new session, or a LUN added to
# one), REPORTED LUNS DATA HAS CHANGED on the other LUNs at LUN add
# and remove, BUS DEVICE RESET after a LUN reset, I_T NEXUS LOSS after a target reset,
# CAPACITY DATA HAS CHANGED on a fileio resize; INQUIRY, REPORT LUNS and REQUEST SENSE pass
# through them; REQUEST SENSE reports and clears; emulate_ua_intlck_ctrl=1 keeps them.
. "$(dirname "$0")/lib.sh"
SGIO="$(dirname "$0")/sgio.py"
tap_plan 27
unload_all; dmesg_mark
sgio_up
AUTOPROBE=/sys/bus/scsi/drivers_autoprobe
old_autoprobe=$(cat $AUTOPROBE)
echo 0 > $AUTOPROBE
trap 'echo $old_autoprobe > $AUTOPROBE' EXIT

TUR=000000000000
# expect SG DESC CDB STATUS [ASC ASCQ]: status (and for 02, UNIT ATTENTION with ASC/ASCQ).
expect() {
    local sg=$1 desc=$2 cdb=$3 want=$4 out
    out=$(sgio "$sg" "$cdb" 2>&1)
    case "$want" in
        00) grep -q '^status=00 host=00' <<< "$out" ;;
        02) grep -qE "^status=02 host=00 .*sense=70000600000000..00000000$5$6" <<< "$out" ;;
    esac && tap_ok "$desc" || { tap_not_ok "$desc"; echo "$out" | tap_diag; }
}
lun_rd() { # NAME LUN [ATTR=VALUE]: a 16 MiB ramdisk linked as LUN
    local dev
    dev=$(setup_dev rd_mcp "$1" rd_pages=4096) || return 1
    [ -z "$3" ] || echo "${3#*=}" > "$dev/attrib/${3%%=*}" || return 1
    link_dev "$dev" "$2"
}
check "modprobe rtarget_core; LUN 0 (ramdisk) and the nexus" sh -c "modprobe rtarget_core"
check "LUN 0 (ramdisk) and the nexus" lun_rd r0 0
sg0=$(lun_dev rtarget_loop scsi_generic 0)
expect "$sg0" "new nexus: INQUIRY passes through the pending unit attention" 120000002400 00
expect "$sg0" "new nexus: TEST UNIT READY gets POWER ON, RESET (29h/00h)" $TUR 02 29 00
expect "$sg0" "the unit attention was cleared by being reported" $TUR 00

check "LUN 1 linked (a second ramdisk)" lun_rd r1 1
sg1=$(lun_dev rtarget_loop scsi_generic 1)
expect "$sg1" "the LUN added to the nexus reports POWER ON, RESET (29h/00h)" $TUR 02 29 00
expect "$sg0" "LUN add: REPORT LUNS passes through on LUN 0" a00000000000000001000000 00
check "LUN add: REQUEST SENSE on LUN 0 reports REPORTED LUNS DATA HAS CHANGED (3Fh/0Eh)" sh -c \
    "python3 $SGIO $sg0 030000001200 --in 18 | grep -q 'data=700006000000000a000000003f0e'"
expect "$sg0" "REQUEST SENSE cleared it" $TUR 00

check "LUN 1 unlinked" sh -c "rm $TPG/lun/lun_1/link1 && rmdir $TPG/lun/lun_1"
expect "$sg0" "LUN remove: LUN 0 reports REPORTED LUNS DATA HAS CHANGED" $TUR 02 3f 0e
expect "$sg0" "and only once" $TUR 00

check "sg_reset -d (LOGICAL UNIT RESET)" sg_reset -d "$sg0"
expect "$sg0" "after a LUN reset: BUS DEVICE RESET FUNCTION OCCURRED (29h/03h)" $TUR 02 29 03
check "sg_reset -t (target reset: I_T NEXUS RESET)" sg_reset -t "$sg0"
expect "$sg0" "after a target reset: I_T NEXUS LOSS OCCURRED (29h/07h)" $TUR 02 29 07
expect "$sg0" "cleared" $TUR 00

refuse "emulate_ua_intlck_ctrl cannot change while exported" sh -c "echo 1 > $CFG/core/rd_mcp_1/r0/attrib/emulate_ua_intlck_ctrl"
teardown_lun
check "LUN 0 again with emulate_ua_intlck_ctrl=1" lun_rd r0 0 emulate_ua_intlck_ctrl=1
sg0=$(lun_dev rtarget_loop scsi_generic 0)
expect "$sg0" "intlck 1: the unit attention is reported" $TUR 02 29 00
expect "$sg0" "intlck 1: and reported again (not cleared)" $TUR 02 29 00
check "intlck 1: REQUEST SENSE clears it" sh -c "python3 $SGIO $sg0 030000001200 --in 18 | grep -q 'data=700006000000000a00000000290' &&
    python3 $SGIO $sg0 $TUR | grep -q '^status=00'"
teardown_lun

# fileio resize: fd_dev_size= on an enabled device grows it and raises 2Ah/09h.
lun_file() {
    local dev
    scratch_up && dev=$(setup_dev fileio f1 fd_dev_name=$BK/ua.img,fd_dev_size=8388608) && link_dev "$dev" 0 &&
    python3 "$SGIO" "$(lun_dev rtarget_loop scsi_generic 0)" $TUR >/dev/null
}
check "scratch storage; a fileio LUN (its POWER ON consumed)" lun_file
sg0=$(lun_dev rtarget_loop scsi_generic 0)
check "resize: fd_dev_size=16777216 is accepted" sh -c "echo fd_dev_size=16777216 > $CFG/core/fileio_1/f1/control"
expect "$sg0" "resize: CAPACITY DATA HAS CHANGED (2Ah/09h)" $TUR 02 2a 09
teardown_lun; scratch_down
rmmod rtarget_loop rtarget_core 2>/dev/null
check "no oops or warning in dmesg" dmesg_clean
tap_done
