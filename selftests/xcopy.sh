#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# EXTENDED COPY (LID1) and RECEIVE COPY RESULTS, on rtarget and on C LIO in the same boot, with
# sg3_utils' sg_xcopy as the initiator: copies between rd_mcp, fileio and iblock LUNs of one
# nexus (sent to the destination and to the source), checked by reading the data back; a copy
# to or from a device the nexus cannot reach (CVE-2020-28374: another TPG's LUN) and a device
# with emulate_3pc=0 are refused and leave the data alone. Then, rtarget only: malformed
# parameter lists get the sense SPC-4 gives them, and INQUIRY's 3PC and REPORT SUPPORTED
# OPERATION CODES follow emulate_3pc.
. "$(dirname "$0")/lib.sh"
SGIO="$(dirname "$0")/sgio.py"
W=/tmp/xcopy; rm -rf $W; mkdir -p $W
PER_SIDE=13
OWN=18
tap_plan $((2 * PER_SIDE + OWN + 2))
unload_all; dmesg_mark
sgio_up
check "scratch storage" scratch_up

# blocks DEV LBA COUNT OUT: COUNT 512-byte blocks at LBA, read with O_DIRECT.
blocks() { dd if="$1" of="$4" bs=512 skip="$2" count="$3" iflag=direct status=none; }
# same DEV LBA COUNT FILE [FILE_LBA]: the blocks equal FILE's from FILE_LBA (default 0).
same() { blocks "$1" "$2" "$3" $W/got && cmp $W/got <(dd if="$4" bs=512 skip="${5:-0}" count="$3" status=none); }
head -c $((16384 * 512)) /dev/urandom > $W/pattern
head -c $((2048 * 512)) /dev/urandom > $W/other

# Four devices with their own serials (the designators XCOPY names them by, from the serial's
# first 25 hex digits): x0 rd_mcp, x1
# fileio, x2 iblock (brd) as LUNs 0-2 of TPG 1; x3 rd_mcp as the only LUN of TPG 2.
setup() { # CORE_MODULE
    local d i=0
    modprobe "$1" || return 1
    for d in "rd_mcp x0 rd_pages=8192" "fileio x1 fd_dev_name=$BK/xcopy.img,fd_dev_size=33554432" \
             "iblock x2 udev_path=/dev/ram0" "rd_mcp x3 rd_pages=8192"; do
        set -- $d
        mkdir -p "$CFG/core/${1}_1/$2" && echo "$3" > "$CFG/core/${1}_1/$2/control" &&
            echo 1 > "$CFG/core/${1}_1/$2/enable" &&
            echo "${i}f9a2b3c-1d2e-4f50-8a9b-0c1d2e3f4a5b" > "$CFG/core/${1}_1/$2/wwn/vpd_unit_serial" || return 1
        i=$((i + 1))
    done
    link_dev $CFG/core/rd_mcp_1/x0 0 && link_dev $CFG/core/fileio_1/x1 1 &&
        link_dev $CFG/core/iblock_1/x2 2 &&
        mkdir -p $TPG2/lun/lun_0 && echo $NEXUS2 > $TPG2/nexus &&
        ln -s $CFG/core/rd_mcp_1/x3 $TPG2/lun/lun_0/link0
}

# xcopy ARGS...: sg_xcopy, quiet.
xcopy() { sg_xcopy "$@" 2>&1; }

side() { # CORE_MODULE PROC_NAME NAME
    local s0 s1 s2 s3 d0 d1 d2 d3 n=$3
    rm -f $BK/xcopy.img
    check "$n: rd_mcp, fileio and iblock in TPG 1, another rd_mcp in TPG 2" setup "$1"
    s0=$(lun_dev "$2" scsi_generic 0); s1=$(lun_dev "$2" scsi_generic 1); s2=$(lun_dev "$2" scsi_generic 2)
    s3=$(lun_dev "$2" scsi_generic 0 2)
    d0=$(lun_dev "$2" block 0); d1=$(lun_dev "$2" block 1); d2=$(lun_dev "$2" block 2); d3=$(lun_dev "$2" block 0 2)
    for s in $s0 $s1 $s2 $s3; do sg_turs "$s" >/dev/null 2>&1; sg_turs "$s" >/dev/null 2>&1; done
    check "$n: patterns written to rd_mcp (TPG 1) and rd_mcp (TPG 2)" bash -c \
        "dd if=$W/pattern of=$d0 bs=1M oflag=direct status=none && dd if=$W/other of=$d3 bs=1M oflag=direct status=none"
    check "$n: sg_copy_results --params: one segment, two CSCDs" bash -c \
        "sg_copy_results --params $s0 | tee /dev/stderr | grep -Eiq 'maximum (target|cscd) descriptor count: 2' &&
         sg_copy_results --params $s0 | grep -Eiq 'maximum segment descriptor count: 1'"
    check "$n: sg_xcopy rd_mcp -> fileio (sent to the destination), 2048 blocks" xcopy if=$s0 of=$s1 bs=512 count=2048
    check "$n: fileio holds the copy" same "$d1" 0 2048 $W/pattern
    # 1000-block commands: brd's 248-block hw_max_sectors splits each into chunks, the last
    # one short, and the count leaves a short last command.
    check "$n: sg_xcopy fileio -> iblock at LBA 100 (sent to the source), 2500 blocks in several chunks" xcopy if=$s1 of=$s2 bs=512 count=2500 seek=100 bpt=1000 --on_src
    check "$n: iblock LBAs 100-2599 hold fileio's 0-2499, the pattern first" bash -c "$(declare -f blocks); blocks $d1 0 2500 $W/src &&
        blocks $d2 100 2500 $W/dst && cmp $W/src $W/dst && cmp -n 1048576 $W/src $W/pattern"
    check "$n: sg_xcopy within rd_mcp, 16384 blocks in 4 MiB commands" xcopy if=$s0 of=$s0 bs=512 count=16384 seek=16384 bpt=8192
    check "$n: rd_mcp LBAs 16384-32767 hold LBAs 0-16383" same "$d0" 16384 16384 $W/pattern
    # CVE-2020-28374: TPG 2's nexus does not reach x0, so it may neither read nor overwrite it.
    refuse "$n: XCOPY from TPG 2's nexus reading TPG 1's rd_mcp is refused" xcopy if=$s0 of=$s3 bs=512 count=2048
    refuse "$n: XCOPY from TPG 2's nexus writing TPG 1's rd_mcp is refused" xcopy if=$s3 of=$s0 bs=512 count=2048 --on_src
    check "$n: neither device changed" bash -c "$(declare -f blocks same); W=$W; same $d3 0 2048 $W/other && same $d0 0 2048 $W/pattern"
    echo 0 > $CFG/core/iblock_1/x2/attrib/emulate_3pc
    # sg_xcopy stops at the device's RECEIVE COPY RESULTS, an invalid opcode with emulate_3pc=0
    # (the EXTENDED COPY itself is refused in the hand-built checks below).
    refuse "$n: sg_xcopy refuses a destination with emulate_3pc=0" xcopy if=$s0 of=$s2 bs=512 count=8 seek=5000 --on_src
    unload_all
}

side rtarget_core rtarget_loop rtarget
side target_core_mod tcm_loopback LIO

# rtarget only: parameter lists built by hand, sense checked.
# sense SG CDB [ARGS]: "KEY/ASC/ASCQ" of the answer, or "good".
sense() {
    local out
    out=$(sgio "$@" 2>&1)
    case "$out" in
        status=00*) echo good ;;
        status=02*) out=${out#*sense=}; echo "${out:5:1}/${out:24:2}/${out:26:2}" ;;
        *) echo "other: $out" ;;
    esac
}
expect() { # DESC WANT SG CDB [ARGS]
    local desc=$1 want=$2 got; shift 2
    got=$(sense "$@")
    if [ "$got" = "$want" ]; then tap_ok "$desc"; else tap_not_ok "$desc (got $got)"; fi
}
# designator SG: the 16-byte NAA designator of VPD 83h, in hex.
designator() { sgio "$1" 12018300ff00 --in 255 | sed 's/.*data=//' | cut -c17-48; }
cscd() { echo "e4000000010300 10 $1 0000000000000000"; }
segment() { printf '020000 18 %04x %04x 0000 %04x %016x %016x' "$@"; } # STDI DTDI BLOCKS SRC DST
# plist CSCD_HEX SEGMENT_HEX: header + descriptors.
plist() {
    local c s
    c=$(echo "$1" | tr -d ' '); s=$(echo "$2" | tr -d ' ')
    printf '0018%04x00000000%08x00000000%s%s' $((${#c} / 2)) $((${#s} / 2)) "$c" "$s"
}
# xcdb LIST_HEX: the EXTENDED COPY CDB for it.
xcdb() { printf '83000000000000000000%08x0000' $((${#1} / 2)); }

rm -f $BK/xcopy.img
check "rtarget again: the same four devices" setup rtarget_core
s0=$(lun_dev rtarget_loop scsi_generic 0); s1=$(lun_dev rtarget_loop scsi_generic 1)
for s in $s0 $s1; do sg_turs "$s" >/dev/null 2>&1; sg_turs "$s" >/dev/null 2>&1; done
a=$(designator $s0); b=$(designator $s1)
check "designators read from VPD 83h ($a, $b)" test ${#a} = 32 -a ${#b} = 32 -a "$a" != "$b"
good=$(plist "$(cscd $a) $(cscd $b)" "$(segment 0 1 8 0 0)")
expect "a well-formed list by hand: GOOD" good $s0 "$(xcdb $good)" --out $good
bad=$(plist "$(cscd $a) $(cscd $b) $(cscd $a)" "$(segment 0 1 8 0 0)")
expect "three CSCD descriptors: TOO MANY TARGET DESCRIPTORS" 5/26/06 $s0 "$(xcdb $bad)" --out $bad
bad=$(plist "$(cscd $a) $(cscd $b)" "$(segment 0 1 8 0 0) $(segment 0 1 8 0 0)")
expect "two segments: TOO MANY SEGMENT DESCRIPTORS" 5/26/08 $s0 "$(xcdb $bad)" --out $bad
bad=$(plist "$(cscd $a) $(cscd $b)" "03${good: -54}")
expect "a block-to-stream segment: UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE" 5/26/09 $s0 "$(xcdb $bad)" --out $bad
bad=$(plist "e0${good:34:62} $(cscd $b)" "$(segment 0 1 8 0 0)")
expect "an N_Port CSCD: UNSUPPORTED TARGET DESCRIPTOR TYPE CODE" 5/26/07 $s0 "$(xcdb $bad)" --out $bad
expect "a list shorter than its lengths: PARAMETER LIST LENGTH ERROR" 5/1a/00 $s0 "$(xcdb ${good:0:100})" --out ${good:0:100}
bad=$(plist "$(cscd $a) $(cscd $b)" "$(segment 0 1 8 65530 0)")
expect "a segment past the end of the source: COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE" a/0d/02 $s0 "$(xcdb $bad)" --out $bad
bad=$(plist "$(cscd $a) $(cscd 6001405000000000000000000000abcd)" "$(segment 0 1 8 0 0)")
expect "an unknown designator: COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE" a/0d/02 $s0 "$(xcdb $bad)" --out $bad
expect "COPY STATUS of a list identifier never used: INVALID FIELD IN CDB" 5/24/00 $s0 84000500000000000000000000400000 --in 64
held=$(plist "$(cscd $a) $(cscd $b)" "$(segment 0 1 8 0 0)" | sed 's/^0018/0500/')
check "a copy held under list identifier 5, then its COPY STATUS: completed, 1 segment, 4096 bytes" bash -c \
    "python3 $SGIO $s0 $(xcdb $held) --out $held | grep -q '^status=00' &&
     python3 $SGIO $s0 84000500000000000000000000400000 --in 64 | tee /dev/stderr | grep -q 'data=000000080000010000001000$'"
echo 0 > $CFG/core/fileio_1/x1/attrib/emulate_3pc
expect "a destination with emulate_3pc=0: COPY TARGET DEVICE NOT REACHABLE" a/0d/02 $s0 "$(xcdb $good)" --out $good
echo 1 > $CFG/core/fileio_1/x1/attrib/emulate_3pc
expect "EXTENDED COPY(LID4): INVALID FIELD IN CDB" 5/24/00 $s0 83010000000000000000000000000000
expect "RECEIVE COPY RESULTS with a list identifier: INVALID FIELD IN CDB" 5/24/00 $s0 84030100000000000000000000400000 --in 64
check "standard INQUIRY: 3PC=1; REPORT SUPPORTED OPERATION CODES lists both commands" bash -c \
    "sg_inq $s0 | grep -q '3PC=1' && sg_opcodes $s0 | grep -q '^ *83 *0 ' && sg_opcodes $s0 | grep -q '^ *84 *3 '"
echo 0 > $CFG/core/rd_mcp_1/x0/attrib/emulate_3pc
check "emulate_3pc=0: 3PC=0, neither command listed" bash -c \
    "sg_inq $s0 | grep -q '3PC=0' && sg_opcodes $s0 > $W/rsoc && grep -q '^ *28 ' $W/rsoc && ! grep -Eq '^ *8[34] ' $W/rsoc"
expect "emulate_3pc=0: EXTENDED COPY is an invalid opcode" 5/20/00 $s0 "$(xcdb $good)" --out $good
unload_all

check "kernel log clean (no splat, no leak report)" dmesg_clean
tap_done
