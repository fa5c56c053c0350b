#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A ramdisk LUN through the loop fabric: real tools read it; malformed CDBs get exact sense.
. "$(dirname "$0")/lib.sh"
SGIO="$(dirname "$0")/sgio.py"
tap_plan 26
unload_all; dmesg_mark

check "modprobe rtarget_core" modprobe rtarget_core
check "64 MiB ramdisk LUN through plain configfs" setup_lun 64
sg=$(lun_dev rtarget_loop scsi_generic); sd=$(lun_dev rtarget_loop block)
check "the LUN appears as $sd and $sg" test -b "$sd" -a -c "$sg"
check "lsscsi lists it as an LIO-ORG RAMDISK-MCP disk" sh -c "lsscsi | grep -E 'disk +LIO-ORG +RAMDISK-MCP +4.0 +$sd'"
check "sg_inq: vendor, product, revision" sh -c "sg_inq $sg | grep -q 'Vendor identification: LIO-ORG' &&
    sg_inq $sg | grep -q 'Product identification: RAMDISK-MCP' && sg_inq $sg | grep -q 'Product revision level: 4.0'"
check "sg_vpd 0x80: the unit serial" sh -c "sg_vpd -p 0x80 $sg | grep -q 'Unit serial number: $SERIAL'"
check "sg_vpd 0x83: NAA 6 from the serial, the SAS target port" sh -c "sg_vpd -p 0x83 $sg > /tmp/vpd83 &&
    grep -qi '0x60014056f9a2b3c1d2e4f508a9b0c1d2' /tmp/vpd83 && grep -q '$WWN,t,0x0001' /tmp/vpd83" 
check "sg_vpd 0xb0: transfer limits" sh -c "sg_vpd -p 0xb0 $sg | grep -q 'Maximum transfer length: 4294967288'"
check "sg_readcap -l: 131072 blocks of 512 bytes" sh -c "sg_readcap -l $sg | grep -q 'Last LBA=131071' &&
    sg_readcap -l $sg | grep -q 'Logical block length=512 bytes'"
check "sg_luns: LUN 0" sh -c "sg_luns $sg | grep -q '0000000000000000'"
check "the block layer sees 64 MiB" test "$(blockdev --getsize64 "$sd")" = 67108864
rescan() {
    local h
    h=$(grep -lx rtarget_loop /sys/class/scsi_host/host*/proc_name) || return 1
    echo "- - -" > "${h%/proc_name}/scan" && [ "$(lsscsi | grep -c LIO-ORG)" = 1 ]
}
check "a user-triggered rescan returns and finds the same single disk" timeout 120 bash -c "$(declare -f rescan); rescan"

# Malformed CDBs through sg_raw, as sg3_utils decodes them.
sgraw() { # DESC EXPECTED_LINES... -- SG_RAW_ARGS
    local desc=$1 out want=(); shift
    while [ "$1" != -- ]; do want+=("$1"); shift; done; shift
    out=$(sg_raw "$@" 2>&1)
    for w in "${want[@]}"; do
        grep -qF "$w" <<< "$out" || { tap_not_ok "$desc"; echo "$out" | tap_diag; return; }
    done
    tap_ok "$desc"
}
sgraw "sg_raw: unknown opcode" "Sense key: Illegal Request" "Invalid command operation code" \
    "Error in Command: byte 0" -- "$sg" ff 00 00 00 00 00
sgraw "sg_raw: READ(10) past the end" "Sense key: Illegal Request" "Logical block address out of range" \
    -- -r 512 "$sg" 28 00 00 02 00 00 00 00 01 00
sgraw "sg_raw: READ(10) larger than its buffer" "Invalid field in cdb" "Error in Command: byte 7" \
    -- -r 512 "$sg" 28 00 00 00 00 00 00 00 10 00

# Malformed CDBs: exact fixed-format sense, with SPC-4 sense-key-specific field pointers.
# fixed_sense KEY ASC ASCQ [SKS]: the 18 bytes as hex.
fixed_sense() { printf '7000%02x000000000a00000000%02x%02x00%s' "$1" "$2" "$3" "${4:-000000}"; }
expect() { # DESC EXPECTED_SENSE_PREFIX CDB [ARGS]
    local desc=$1 want=$2; shift 2
    check "$desc" sh -c "out=\$(python3 $SGIO $sg $*) && echo \"\$out\" &&
        echo \"\$out\" | grep -q 'status=02 ' && echo \"\$out\" | grep -q 'sense=$want'"
}
expect "unknown opcode: ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE at byte 0" \
    "$(fixed_sense 5 0x20 0 c00000)" ff0000000000
expect "READ(10) past the end: LBA OUT OF RANGE" \
    "$(fixed_sense 5 0x21 0)" 28000002000000000100 --in 512
expect "READ(10) of 16 blocks into 512 bytes: INVALID FIELD IN CDB at byte 7" \
    "$(fixed_sense 5 0x24 0 c00007)" 28000000000000001000 --in 512
check "WRITE(10) with FUA and no write cache: GOOD (SBC-4 sets no condition; LIO refuses it)" sh -c "python3 $SGIO $sg 2a080000000000000100 --out $(printf '00%.0s' $(seq 512)) | grep -q '^status=00 '"
expect "VERIFY(10) with BYTCHK=2 (reserved): INVALID FIELD IN CDB at byte 1 bit 2" \
    "$(fixed_sense 5 0x24 0 ca0001)" 2f040000000000000100
expect "INQUIRY of an unknown VPD page: INVALID FIELD IN CDB at byte 2" \
    "$(fixed_sense 5 0x24 0 c00002)" 1201ee00ff00 --in 255
expect "MODE SENSE of an unknown page: INVALID FIELD IN CDB at byte 2 bit 5" \
    "$(fixed_sense 5 0x24 0 cd0002)" 1a000300ff00 --in 255
expect "READ CAPACITY(16) with a bad service action: INVALID FIELD at byte 1 bit 4" \
    "$(fixed_sense 5 0x24 0 cc0001)" 9e1f0000000000000000000000200000 --in 32
teardown_lun
refuse "teardown removed the LUN and the backstore" sh -c "test -e $TPG || test -e $CFG/core/rd_mcp_1"
check "rmmod rtarget_loop rtarget_core" rmmod rtarget_loop rtarget_core
check "no oops or warning in dmesg" dmesg_clean
tap_done
