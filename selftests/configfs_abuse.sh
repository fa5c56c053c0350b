#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Bad configfs input gets a clear errno (LIO's where LIO has one) and never an oops or hang.
. "$(dirname "$0")/lib.sh"
OP="python3 $(dirname "$0")/cfsop.py"
DEV=$CFG/core/rd_mcp_1/r0
tap_plan 28
unload_all; dmesg_mark
is() { # ERRNO OP ARGS...: the operation answers ERRNO (or OK)
    local want=$1 got; shift
    got=$($OP "$@"); [ "$got" = "$want" ] || { echo "expected $want, got $got"; return 1; }
}

check "modprobe rtarget_core" modprobe rtarget_core
check "mkdir core/rd_mcp_1/r0" mkdir -p "$DEV"
check "enable before rd_pages: EINVAL" is EINVAL write "$DEV/enable" 1
check "control with an unknown key: EINVAL" is EINVAL write "$DEV/control" "rd_page=16"
check "control with a bad number: EINVAL" is EINVAL write "$DEV/control" "rd_pages=12x"
check "control with an overflowing number: ERANGE" is ERANGE write "$DEV/control" "rd_pages=99999999999"
check "rd_pages=0 then enable: EINVAL" sh -c "$OP write $DEV/control rd_pages=0 >/dev/null; [ \$($OP write $DEV/enable 1) = EINVAL ]"
check "enable 0: EINVAL" is EINVAL write "$DEV/enable" 0
check "block_size 123: EINVAL" is EINVAL write "$DEV/attrib/block_size" 123
check "hw_block_size is read-only: EACCES" is EACCES write "$DEV/attrib/hw_block_size" 512
check "vendor_id longer than 8: EOVERFLOW" is EOVERFLOW write "$DEV/wwn/vendor_id" ABCDEFGHI
check "pi_prot_type 5: EINVAL" is EINVAL write "$DEV/attrib/pi_prot_type" 5
check "rd_pages=16 and enable" sh -c "[ \$($OP write $DEV/control rd_pages=16) = OK ] && [ \$($OP write $DEV/enable 1) = OK ]"
check "enable twice: EEXIST" is EEXIST write "$DEV/enable" 1
check "mkdir core/nothba: EINVAL" is EINVAL mkdir "$CFG/core/nothba"
check "mkdir core/pscsi_0 (no pscsi plugin): EINVAL" is EINVAL mkdir "$CFG/core/pscsi_0"
check "mkdir loopback/bogus (no naa./fc./iqn.): EINVAL" sh -c "mkdir -p $CFG/loopback && [ \$($OP mkdir $CFG/loopback/bogus) = EINVAL ]"
check "mkdir tpgt_32 (tcm_loop allows 0-31): EINVAL" sh -c "mkdir $CFG/loopback/$WWN && [ \$($OP mkdir $CFG/loopback/$WWN/tpgt_32) = EINVAL ]"
check "mkdir lun/lun_x: EINVAL" sh -c "mkdir $TPG && [ \$($OP mkdir $TPG/lun/lun_x) = EINVAL ]"
check "nexus of the wrong protocol: EINVAL" is EINVAL write "$TPG/nexus" iqn.2003-01.org.example:x
check "nexus read before set: ENODEV" is ENODEV read "$TPG/nexus"
check "second nexus: EEXIST" sh -c "[ \$($OP write $TPG/nexus $NEXUS) = OK ] && [ \$($OP write $TPG/nexus $NEXUS) = EEXIST ]"
check "symlink a LUN to a non-device: EPERM" sh -c "mkdir $TPG/lun/lun_0 && [ \$($OP symlink $TPG $TPG/lun/lun_0/x) = EPERM ]"
check "second link in one LUN: EEXIST" sh -c "[ \$($OP symlink $DEV $TPG/lun/lun_0/a) = OK ] && [ \$($OP symlink $DEV $TPG/lun/lun_0/b) = EEXIST ]"
check "lun_00 is LUN 0 too: linking it as well is EEXIST" sh -c "mkdir $TPG/lun/lun_00 && [ \$($OP symlink $DEV $TPG/lun/lun_00/c) = EEXIST ] && rmdir $TPG/lun/lun_00"
check "block_size change while exported: EINVAL" is EINVAL write "$DEV/attrib/block_size" 4096

# Garbage into every writable file (dbroot excepted: it may legally change), in one process.
fuzz() { [ "$(timeout 300 $OP fuzz "$CFG")" = OK ]; }
check "garbage into every writable file: no hang, every file still readable" fuzz
check "no oops or warning in dmesg" dmesg_clean
unload_all
tap_done
