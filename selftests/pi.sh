#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# T10 protection information on rtarget and on C LIO in the same boot: the configfs rules of
# pi_prot_type / pi_prot_format / pi_prot_verify, then an rd_mcp LUN of type 1 and a fileio LUN
# of type 3 through the loopback fabric, whose disks get an integrity profile (DIX): what
# INQUIRY, VPD 86h, READ CAPACITY(16) and the control page advertise, data written and read
# back through the disks with the block layer generating and checking the tuples, and tuples
# corrupted by hand (WRPROTECT=3) caught with LIO's sense (ABORTED COMMAND 10/01, 10/03, the
# LBA in INFORMATION). Type 2 (which LIO refuses) on rtarget only: sd's READ(32) and WRITE(32)
# through the disk, the expected reference and application tags of the 32-byte CDBs.
. "$(dirname "$0")/lib.sh"
OP="python3 $(dirname "$0")/cfsop.py"
SGIO="$(dirname "$0")/sgio.py"
W=/tmp/pi; rm -rf $W; mkdir -p $W
PER_SIDE=39
TYPE2=16 KEEPS=14
tap_plan $((2 * PER_SIDE + 3 + TYPE2 + KEEPS))
unload_all; dmesg_mark
sgio_up
check "scratch storage" scratch_up

is() { # ERRNO OP ARGS...: the configfs operation answers ERRNO (or OK)
    local want=$1 got; shift
    got=$($OP "$@"); [ "$got" = "$want" ] || { echo "expected $want, got $got"; return 1; }
}
# answer SG CDB [ARGS]: "good", or "KEY/ASC/ASCQ info=N" (INFORMATION when VALID is set).
answer() {
    local out s
    out=$(sgio "$@" 2>&1)
    case "$out" in
        "status=00 host=00"*) echo good ;;
        status=02*) s=${out#*sense=}; s=${s%% *}
            if [ $((0x${s:0:2} & 0x80)) -ne 0 ]; then
                echo "${s:5:1}/${s:24:2}/${s:26:2} info=$((0x${s:6:8}))"
            else
                echo "${s:5:1}/${s:24:2}/${s:26:2}"
            fi ;;
        *) echo "other: $out" ;;
    esac
}
expect() { # DESC WANT SG CDB [ARGS]
    local desc=$1 want=$2 got; shift 2
    got=$(answer "$@")
    if [ "$got" = "$want" ]; then tap_ok "$desc"; else tap_not_ok "$desc (got $got)"; fi
}
# One block of 0x5a at LBA 7, and of zeroes, as hex data-out.
FIVES=$(printf '5a%.0s' $(seq 512))
ZEROES=$(printf '00%.0s' $(seq 512))
A5S=$(printf 'a5%.0s' $(seq 512))
# w10 PROTECT LBA: a WRITE(10) of one block with WRPROTECT; r10 the same READ(10).
w10() { printf '2a%02x%08x000001 00' $(($1 << 5)) "$2"; }
r10() { printf '28%02x%08x000001 00' $(($1 << 5)) "$2"; }
# ei SG SPT GRD_CHK APP_CHK REF_CHK: sg_vpd's decoding of VPD 86h says so.
ei() {
    local out f v
    out=$(sg_vpd -p ei "$1") || return 1
    set -- "$2" "$3" "$4" "$5"
    for f in SPT GRD_CHK APP_CHK REF_CHK; do
        v=$1; shift
        echo "$out" | grep -Eq "(^| )$f[=:] ?$v( |$)" || { echo "$out"; echo "expected $f=$v"; return 1; }
    done
}
# attr SYSFS_FILE WANT: the file holds WANT.
attr() { [ "$(cat "$1")" = "$2" ] || { echo "$1: $(cat "$1"), expected $2"; return 1; }; }

side() { # CORE_MODULE PROC_NAME NAME
    local n=$3 r=$CFG/core/rd_mcp_1/p0 f=$CFG/core/fileio_1/p1 b=$CFG/core/iblock_1/p2 s0 s1 d0 d1
    rm -f $BK/pi.img $BK/pi.img.protection
    check "$n: modprobe" modprobe "$1"
    mkdir -p $r $f $b $CFG/core/rd_mcp_1/off
    check "$n: pi_prot_type of a disabled rd_mcp: ENODEV" is ENODEV write $CFG/core/rd_mcp_1/off/attrib/pi_prot_type 1
    echo rd_pages=8192 > $r/control; echo 1 > $r/enable
    echo fd_dev_name=$BK/pi.img,fd_dev_size=33554432 > $f/control; echo 1 > $f/enable
    echo udev_path=/dev/ram0 > $b/control; echo 1 > $b/enable
    if [ "$n" = rtarget ]; then
        check "$n: pi_prot_type 2 is taken (LIO: ENOSYS), and 0 again" bash -c \
            "echo 2 > $r/attrib/pi_prot_type && [ \$(cat $r/attrib/pi_prot_type) = 2 ] && echo 0 > $r/attrib/pi_prot_type"
    else
        check "$n: pi_prot_type 2: ENOSYS" is ENOSYS write $r/attrib/pi_prot_type 2
    fi
    check "$n: pi_prot_type 4: EINVAL" is EINVAL write $r/attrib/pi_prot_type 4
    check "$n: iblock stores no protection information: ENOSYS" is ENOSYS write $b/attrib/pi_prot_type 1
    check "$n: pi_prot_verify stays 0 without protection information" bash -c \
        "echo 1 > $r/attrib/pi_prot_verify && [ \$(cat $r/attrib/pi_prot_verify) = 0 ]"
    check "$n: rd_mcp pi_prot_type 1, and pi_prot_verify follows" bash -c \
        "echo 1 > $r/attrib/pi_prot_type && [ \$(cat $r/attrib/pi_prot_type) = 1 ] && [ \$(cat $r/attrib/pi_prot_verify) = 1 ]"
    check "$n: rd_mcp has nothing to format: ENOSYS" is ENOSYS write $r/attrib/pi_prot_format 1
    check "$n: fileio pi_prot_type 3, then pi_prot_format" bash -c \
        "echo 3 > $f/attrib/pi_prot_type && echo 1 > $f/attrib/pi_prot_format && [ \$(cat $f/attrib/pi_prot_format) = 0 ]"
    check "$n: the format wrote all ones to pi.img.protection, 8 bytes a block" bash -c \
        "[ \$(stat -c %s $BK/pi.img.protection) -ge 524288 ] && [ -z \"\$(head -c 524288 $BK/pi.img.protection | tr -d '\\377' | head -c 1)\" ]"
    echo 6f9a2b3c-1d2e-4f50-8a9b-0c1d2e3f4a50 > $r/wwn/vpd_unit_serial
    echo 7f9a2b3c-1d2e-4f50-8a9b-0c1d2e3f4a51 > $f/wwn/vpd_unit_serial
    check "$n: rd_mcp and fileio linked as LUNs 0 and 1" bash -c "$(declare -f link_dev); TPG=$TPG NEXUS=$NEXUS; link_dev $r 0 && link_dev $f 1"
    check "$n: pi_prot_type of an exported device: EINVAL" is EINVAL write $r/attrib/pi_prot_type 0
    if [ "$n" = rtarget ]; then want=EBUSY; else want=OK; fi
    check "$n: growing the protected fileio device: $want (LIO grows it with no tuples)" is $want write $f/control fd_dev_size=67108864
    s0=$(lun_dev "$2" scsi_generic 0); s1=$(lun_dev "$2" scsi_generic 1)
    d0=$(lun_dev "$2" block 0); d1=$(lun_dev "$2" block 1)
    for s in $s0 $s1; do sg_turs "$s" >/dev/null 2>&1; sg_turs "$s" >/dev/null 2>&1; done
    udevadm settle 2>/dev/null
    check "$n: the disks carry T10-DIF-TYPE1-CRC and T10-DIF-TYPE3-CRC" bash -c \
        "$(declare -f attr); attr /sys/block/${d0#/dev/}/integrity/format T10-DIF-TYPE1-CRC && attr /sys/block/${d1#/dev/}/integrity/format T10-DIF-TYPE3-CRC"
    check "$n: INQUIRY: PROTECT" bash -c "sg_inq $s0 | grep -q 'Protect=1'"
    check "$n: READ CAPACITY(16): prot_en=1, p_type 0 and 2" bash -c \
        "sg_readcap -l $s0 | grep -q 'prot_en=1, p_type=0' && sg_readcap -l $s1 | grep -q 'prot_en=1, p_type=2'"
    check "$n: VPD 86h: SPT=3, GRD_CHK, REF_CHK for type 1 only" bash -c \
        "$(declare -f ei); ei $s0 3 1 0 1 && ei $s1 3 1 0 0"
    check "$n: control page: ATO (and TAS)" bash -c "python3 $SGIO $s0 1a080a00ff00 --in 255 | grep -Eq 'data=.{18}c0'"
    head -c $((4 << 20)) /dev/urandom > $W/pattern
    for d in $d0 $d1; do
        check "$n: 4 MiB written through $d (the block layer makes the tuples) and read back" bash -c \
            "dd if=$W/pattern of=$d bs=64k oflag=direct status=none && dd if=$d of=$W/got bs=64k count=64 iflag=direct status=none && cmp $W/got $W/pattern"
    done
    expect "$n: WRITE WRPROTECT=1 of a block without its tuple (zeroes): 10/01 at LBA 7" "b/10/01 info=7" $s0 "$(w10 1 7)" --out $FIVES
    expect "$n: WRITE WRPROTECT=3 stores the zero tuple unchecked" good $s0 "$(w10 3 7)" --out $FIVES
    expect "$n: READ RDPROTECT=0 of LBA 7: LOGICAL BLOCK GUARD CHECK FAILED, INFORMATION 7" "b/10/01 info=7" $s0 "$(r10 0 7)" --in 512
    check "$n: reading LBA 7 through the disk fails with EILSEQ" bash -c \
        "dd if=$d0 of=/dev/null bs=512 skip=7 count=1 iflag=direct status=none 2>&1 | grep -q 'Invalid or incomplete multibyte'"
    expect "$n: a zero block stored with the zero tuple at LBA 9 (WRPROTECT=3)" good $s0 "$(w10 3 9)" --out $ZEROES
    expect "$n: READ of LBA 9: 10/03, INFORMATION 9" "b/10/03 info=9" $s0 "$(r10 0 9)" --in 512
    expect "$n: type 3 checks no reference tag: READ of a zero block with the zero tuple" good $s1 "$(w10 3 9)" --out $ZEROES
    expect "$n: ... reads back GOOD" good $s1 "$(r10 0 9)" --in 512
    expect "$n: RDPROTECT=6: INVALID FIELD IN CDB" 5/24/00 $s0 "$(r10 6 0)" --in 512
    # rtarget only: C LIO 7.3 oopses on a protected WRITE of no blocks (sgl_alloc_order from
    # transport_generic_new_cmd, with a protection length computed from nothing).
    [ "$n" = rtarget ] && expect "$n: a WRITE WRPROTECT=1 of no blocks: GOOD" good $s0 2a200000000700000000
    # WRITE(6) has no WRPROTECT: rtarget generates its tuples, LIO leaves the old ones.
    expect "$n: WRITE(6) of a new block at LBA 11" good $s0 0a00000b0100 --out $FIVES
    if [ "$n" = rtarget ]; then want="good"; else want="b/10/01 info=11"; fi
    expect "$n: READ of LBA 11: $want (rtarget: tuples made by WRITE(6); LIO: stale)" "$want" $s0 "$(r10 0 11)" --in 512
    check "$n: blocks rewritten through the disk read back" bash -c \
        "dd if=$W/pattern of=$d0 bs=512 count=16 oflag=direct status=none && dd if=$d0 of=$W/got bs=512 count=16 iflag=direct status=none && cmp -n 8192 $W/got $W/pattern"
    # rtarget keeps the tuples of the blocks WRITE SAME writes; LIO refuses it on a protected
    # device (INVALID FIELD IN CDB).
    if [ "$n" = rtarget ]; then want=good; else want=5/24/00; fi
    expect "$n: WRITE SAME(16) of a zero block on the protected rd_mcp: $want" $want $s0 \
        93000000000000000000000000010000 --out $ZEROES
    [ "$n" = rtarget ] && keeps_tuples "$s0" "$r"
    check "$n: mkfs.ext4 on the type 1 disk, then fsck finds it clean" bash -c \
        "mkfs.ext4 -q -F $d0 && fsck.ext4 -fn $d0"
    # fabric_prot_type: a device without protection information, protected by the fabric for
    # the nexuses made after it is set (TPG 2).
    mkdir -p $CFG/core/rd_mcp_1/p3 $TPG2/lun/lun_0
    echo rd_pages=8192 > $CFG/core/rd_mcp_1/p3/control; echo 1 > $CFG/core/rd_mcp_1/p3/enable
    echo 8f9a2b3c-1d2e-4f50-8a9b-0c1d2e3f4a52 > $CFG/core/rd_mcp_1/p3/wwn/vpd_unit_serial
    check "$n: fabric_prot_type 2: EINVAL" is EINVAL write $TPG2/attrib/fabric_prot_type 2
    check "$n: fabric_prot_type 1 on TPG 2, then its nexus and a plain rd_mcp LUN" bash -c \
        "echo 1 > $TPG2/attrib/fabric_prot_type && [ \$(cat $TPG2/attrib/fabric_prot_type) = 1 ] &&
         echo $NEXUS2 > $TPG2/nexus && ln -s $CFG/core/rd_mcp_1/p3 $TPG2/lun/lun_0/link0"
    s3=$(lun_dev "$2" scsi_generic 0 2); d3=$(lun_dev "$2" block 0 2)
    sg_turs "$s3" >/dev/null 2>&1; sg_turs "$s3" >/dev/null 2>&1; udevadm settle 2>/dev/null
    check "$n: its disk carries T10-DIF-TYPE1-CRC, READ CAPACITY(16) says type 1" bash -c \
        "$(declare -f attr); attr /sys/block/${d3#/dev/}/integrity/format T10-DIF-TYPE1-CRC && sg_readcap -l $s3 | grep -q 'prot_en=1, p_type=0'"
    check "$n: 4 MiB through it (tuples checked and dropped on WRITE, made on READ)" bash -c \
        "dd if=$W/pattern of=$d3 bs=64k oflag=direct status=none && dd if=$d3 of=$W/got bs=64k count=64 iflag=direct status=none && cmp $W/got $W/pattern"
    expect "$n: its WRITE WRPROTECT=1 of a block without its tuple: 10/01 at LBA 7" "b/10/01 info=7" $s3 "$(w10 1 7)" --out $FIVES
    [ "$n" = rtarget ] && type2 "$2" "$s0"
    unload_all
}

# keeps_tuples SG DEV_DIR: the commands besides READ and WRITE that change data make the
# tuples of what they write, or all ones for deallocated blocks (rtarget only). Each command
# changes blocks whose tuples were made for other data, so a READ after it (type 1: guard and
# reference tag checked) fails if the tuples did not follow.
keeps_tuples() {
    local s=$1 lba
    echo 1 > "$2/attrib/emulate_tpu"
    expect "rtarget: WRITE SAME(16) of a 5Ah block over LBAs 40-47: GOOD" good $s \
        "$(printf '9300%016x%08x0000' 40 8)" --out $FIVES
    for lba in 40 47; do
        expect "rtarget: ... READ of LBA $lba checks the tuple made: GOOD" good $s "$(r10 0 $lba)" --in 512
    done
    expect "rtarget: UNMAP of LBAs 40-41: GOOD" good $s "$(printf '42000000000000%04x00' 24)" \
        --out 0016001000000000$(printf '%016x%08x00000000' 40 2)
    expect "rtarget: ... READ of LBA 40 (zeroes now; all-ones tuple, checks off): GOOD" good $s "$(r10 0 40)" --in 512
    expect "rtarget: COMPARE AND WRITE at LBA 44 (5Ah, then zeroes): GOOD" good $s \
        "$(printf '8900%016x00000001%04x' 44 0)" --out $FIVES$ZEROES
    expect "rtarget: ... READ of LBA 44: GOOD" good $s "$(r10 0 44)" --in 512
    expect "rtarget: ORWRITE(16) of A5h onto 5Ah at LBA 45: GOOD" good $s "$(printf '8b00%016x00000001%04x' 45 0)" --out $A5S
    expect "rtarget: ... READ of LBA 45: GOOD" good $s "$(r10 0 45)" --in 512
    expect "rtarget: WRITE AND VERIFY(10) of zeroes at LBA 46: GOOD" good $s "2e00$(printf '%08x' 46)00000100" --out $ZEROES
    expect "rtarget: ... READ of LBA 46: GOOD" good $s "$(r10 0 46)" --in 512
    expect "rtarget: WRITE SAME(16) NDOB at LBA 47: GOOD" good $s "$(printf '9301%016x%08x0000' 47 1)"
    expect "rtarget: ... READ of LBA 47: GOOD" good $s "$(r10 0 47)" --in 512
    expect "rtarget: EXTENDED COPY is still not offered: INVALID COMMAND OPERATION CODE" 5/20/00 $s \
        83000000000000000000000000000000
}

# rw32 SA PROTECT LBA EILBRT APP MASK: a READ(32) (SA 9) or WRITE(32) (SA b) of one block.
rw32() { printf '7f00000000000018000%s%02x00%016x%08x%04x%04x00000001' "$1" $(($2 << 5)) "$3" "$4" "$5" "$6"; }

type2() { # PROC_NAME TYPE1_SG: a type 2 rd_mcp as LUN 2 of TPG 1 (rtarget only)
    local p=$CFG/core/rd_mcp_1/p4 s d T=/sys/kernel/tracing
    mkdir -p $p; echo rd_pages=8192 > $p/control; echo 1 > $p/enable
    echo 9f9a2b3c-1d2e-4f50-8a9b-0c1d2e3f4a53 > $p/wwn/vpd_unit_serial
    check "type 2: rd_mcp pi_prot_type 2, linked as LUN 2" bash -c \
        "echo 2 > $p/attrib/pi_prot_type && $(declare -f link_dev); TPG=$TPG NEXUS=$NEXUS; link_dev $p 2"
    s=$(lun_dev "$1" scsi_generic 2); d=$(lun_dev "$1" block 2)
    sg_turs "$s" >/dev/null 2>&1; sg_turs "$s" >/dev/null 2>&1; udevadm settle 2>/dev/null
    check "type 2: the disk carries T10-DIF-TYPE1-CRC (sd's profile for type 2), READ CAPACITY(16) p_type 1" bash -c \
        "$(declare -f attr); attr /sys/block/${d#/dev/}/integrity/format T10-DIF-TYPE1-CRC && sg_readcap -l $s | grep -q 'prot_en=1, p_type=1'"
    check "type 2: VPD 86h: SPT=7, GRD_CHK, APP_CHK, REF_CHK" bash -c "$(declare -f ei); ei $s 7 1 1 1"
    sg_turs "$2" >/dev/null 2>&1
    check "type 2: REPORT SUPPORTED OPERATION CODES lists READ(32) and WRITE(32); type 1 does not" bash -c \
        "sg_opcodes $s | grep -qi 'read(32)' && sg_opcodes $s | grep -qi 'write(32)' && out=\$(sg_opcodes $2) && ! grep -qi 'read(32)' <<< \"\$out\""
    mountpoint -q $T || mount -t tracefs tracefs $T 2>/dev/null
    echo > $T/trace; echo 1 > $T/events/scsi/scsi_dispatch_cmd_start/enable
    check "type 2: 4 MiB written through the disk and read back" bash -c \
        "dd if=$W/pattern of=$d bs=64k oflag=direct status=none && dd if=$d of=$W/got bs=64k count=64 iflag=direct status=none && cmp $W/got $W/pattern"
    echo 0 > $T/events/scsi/scsi_dispatch_cmd_start/enable
    check "type 2: sd sent them as WRITE(32) and READ(32), the expected reference tag the LBA" bash -c \
        "grep -Eq 'WRITE_32 lba=([0-9]+) txlen=[0-9]+ protect=1 ei_lbrt=\\1\\b' $T/trace && grep -Eq 'READ_32 lba=([0-9]+) txlen=[0-9]+ protect=1 ei_lbrt=\\1\\b' $T/trace"
    # (Before the blocks below get tuples of their own, which the disk's reads would refuse.)
    check "type 2: mkfs.ext4 on the disk, then fsck finds it clean" bash -c "mkfs.ext4 -q -F $d && fsck.ext4 -fn $d"
    expect "type 2: WRITE(32) WRPROTECT=3 stores a zero block with the zero tuple at LBA 9" good $s "$(rw32 b 3 9 0 0 0)" --out $ZEROES
    expect "type 2: READ(32) RDPROTECT=1 expecting reference tag 0 (the tuple's): GOOD" good $s "$(rw32 9 1 9 0 0 0)" --in 512
    expect "type 2: READ(32) expecting reference tag 9: 10/03 at LBA 9" "b/10/03 info=9" $s "$(rw32 9 1 9 9 0 0)" --in 512
    expect "type 2: READ(32) expecting application tag 1234h under mask FFFFh: 10/02 at LBA 9" "b/10/02 info=9" $s "$(rw32 9 1 9 0 4660 65535)" --in 512
    expect "type 2: READ(10) with RDPROTECT: INVALID COMMAND OPERATION CODE" 5/20/00 $s "$(r10 1 9)" --in 512
    expect "type 2: READ(10) without RDPROTECT checks the guard only: GOOD" good $s "$(r10 0 9)" --in 512
    expect "type 2: WRITE(32) WRPROTECT=0 with application tag BEEFh: the tuple made carries it" good $s "$(rw32 b 0 12 500 48879 65535)" --out $FIVES
    expect "type 2: ... READ(32) expecting BEEFh and reference tag 500: GOOD" good $s "$(rw32 9 1 12 500 48879 65535)" --in 512
    expect "type 2: READ(32) on the type 1 disk: INVALID COMMAND OPERATION CODE" 5/20/00 $2 "$(rw32 9 0 9 0 0 0)" --in 512
}

side rtarget_core rtarget_loop rtarget
side target_core_mod tcm_loopback LIO
check "no oops or warning in dmesg" dmesg_clean
tap_done
