#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# SBC commands beyond READ and WRITE, on every backend, through sg3_utils, with the data they
# leave checked by reading it back (O_DIRECT): WRITE SAME (a pattern block, NDOB, UNMAP),
# UNMAP (with and without emulate_tpu), VERIFY with BYTCHK 1 and 3 (match and MISCOMPARE),
# REPORT SUPPORTED OPERATION CODES agreeing with what is enabled, PRE-FETCH, START STOP UNIT,
# PREVENT ALLOW MEDIUM REMOVAL, REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS, GET LBA STATUS,
# COMPARE AND WRITE (including two racing writers), ORWRITE, WRITE AND VERIFY; WRITE ATOMIC(16)
# refused where the medium has no atomic writes, and served by iblock on a scsi_debug disk that
# has them (limits from the queue, as LIO's iblock takes them).
. "$(dirname "$0")/lib.sh"
W=/tmp/sbc; rm -rf $W; mkdir -p $W
HERE=$(cd "$(dirname "$0")" && pwd)
BACKENDS="rd_mcp|rd_pages=4096
fileio|fd_dev_name=$BK/sbc.img,fd_dev_size=16777216
iblock|udev_path=/dev/ram0"
PER=33
ATOMIC=6
tap_plan $(( $(echo "$BACKENDS" | wc -l) * PER + ATOMIC + 2 ))
unload_all; dmesg_mark
check "scratch storage" scratch_up
modprobe rtarget_core

# blocks DEV LBA COUNT OUT: read COUNT 512-byte blocks at LBA with O_DIRECT.
blocks() { dd if="$1" of="$4" bs=512 skip="$2" count="$3" iflag=direct status=none; }
# repeat FILE N OUT: FILE's bytes N times.
repeat() { for _ in $(seq "$2"); do cat "$1"; done > "$3"; }
export -f blocks
head -c 512 /dev/urandom > $W/block
head -c 512 /dev/urandom > $W/other
head -c $((64 * 512)) /dev/urandom > $W/pattern
head -c $((64 * 512)) /dev/zero > $W/zeros64

while IFS='|' read -r plugin control; do
    t0=$SECONDS
    rm -f $BK/sbc.img
    dev=$(setup_dev "$plugin" sbc "$control")
    discard=1
    [ "$plugin" = iblock ] && [ "$(cat /sys/block/ram0/queue/discard_max_bytes)" = 0 ] && discard=0
    if [ $discard = 1 ]; then
        check "$plugin: emulate_tpu=1 and emulate_tpws=1 accepted" bash -c "echo 1 > $dev/attrib/emulate_tpu && echo 1 > $dev/attrib/emulate_tpws"
        check "$plugin: max_unmap_* filled from the backend" bash -c "[ \$(cat $dev/attrib/max_unmap_lba_count) -gt 0 ] && [ \$(cat $dev/attrib/max_unmap_block_desc_count) -gt 0 ]"
    else
        refuse "$plugin: emulate_tpu=1 refused: the device has no discard" bash -c "echo 1 > $dev/attrib/emulate_tpu"
        tap_ok "$plugin: (no discard: nothing to configure)"
    fi
    link_dev "$dev" >/dev/null
    sg=$(lun_dev rtarget_loop scsi_generic); sd=$(lun_dev rtarget_loop block)
    check "$plugin: LUN is up ($sd)" test -b "$sd"
    if [ $discard = 1 ]; then
        check "$plugin: sg_vpd lbpv: LBPU, LBPWS and LBPWS10" bash -c "sg_vpd -p lbpv $sg | tee /dev/stderr | grep -q 'Unmap command supported (LBPU): 1' &&
            sg_vpd -p lbpv $sg | grep -q 'Write same (16) with unmap bit supported (LBPWS): 1'"
        check "$plugin: sg_readcap -l: LBPME" bash -c "sg_readcap -l $sg | grep -q 'lbpme=1'"
    else
        check "$plugin: sg_vpd lbpv: no LBPU" bash -c "sg_vpd -p lbpv $sg | grep -q 'Unmap command supported (LBPU): 0'"
        check "$plugin: sg_readcap -l: no LBPME" bash -c "sg_readcap -l $sg | grep -q 'lbpme=0'"
    fi
    check "$plugin: write a 64-block pattern at LBA 0" dd if=$W/pattern of="$sd" bs=512 oflag=direct status=none

    # WRITE SAME of a pattern block: every block of the range holds it, its neighbours don't change.
    check "$plugin: sg_write_same --10 of a random block over LBAs 8-23" sg_write_same --10 --in=$W/block --lba=8 --num=16 "$sg"
    repeat $W/block 16 $W/want16
    check "$plugin: LBAs 8-23 hold the block, 7 and 24 are untouched" bash -c "blocks $sd 8 16 $W/got16 && cmp $W/got16 $W/want16 &&
        blocks $sd 7 1 $W/b7 && cmp $W/b7 <(dd if=$W/pattern bs=512 skip=7 count=1 status=none) &&
        blocks $sd 24 1 $W/b24 && cmp $W/b24 <(dd if=$W/pattern bs=512 skip=24 count=1 status=none)"
    check "$plugin: sg_write_same --16 of 3000 blocks (several chunks)" sg_write_same --16 --in=$W/other --lba=1000 --num=3000 "$sg"
    check "$plugin: the last of those 3000 blocks holds the block" bash -c "blocks $sd 3999 1 $W/last && cmp $W/last $W/other"
    check "$plugin: sg_write_same --16 --ndob zeroes LBAs 32-47" bash -c "sg_write_same --16 --ndob --lba=32 --num=16 $sg &&
        blocks $sd 32 16 $W/z && cmp $W/z <(head -c 8192 /dev/zero)"
    # WRITE SAME of 0 blocks (WSNZ 0): from the LBA to the end of the medium.
    nb=$(blockdev --getsz "$sd")
    repeat $W/other 5 $W/want5
    check "$plugin: WRITE SAME(16) of 0 blocks at LBA $((nb - 5)) fills the last 5 blocks, not the one before" bash -c "
        sg_raw -s 512 -i $W/other $sg 93 00 $(printf '%016x' $((nb - 5)) | sed 's/../& /g') 00 00 00 00 00 00 &&
        blocks $sd $((nb - 5)) 5 $W/end5 && cmp $W/end5 $W/want5 && blocks $sd $((nb - 6)) 1 $W/before && ! cmp -s $W/before $W/other"
    check "$plugin: WRITE SAME(10) of 0 blocks at LBA $nb: LBA OUT OF RANGE" bash -c "sg_raw -s 512 -i $W/block $sg 41 00 $(printf '%08x' $nb | sed 's/../& /g') 00 00 00 00 2>&1 | grep -qi 'address out of range'"
    check "$plugin: WRITE SAME with ANCHOR: INVALID FIELD IN CDB" bash -c "sg_raw -s 512 -i $W/block $sg 41 10 00 00 00 00 00 00 01 00 2>&1 | grep -q 'Invalid field in cdb'"

    # UNMAP: the range reads back as zeroes where the backend says so (LBPRZ).
    if [ $discard = 1 ]; then
        check "$plugin: sg_unmap of LBAs 40-63" sg_unmap --force --lba=40 --num=24 "$sg"
        if [ "$(cat $dev/attrib/unmap_zeroes_data)" = 1 ]; then
            check "$plugin: LBAs 40-63 read back as zeroes (LBPRZ)" bash -c "blocks $sd 40 24 $W/u && cmp $W/u <(head -c $((24 * 512)) /dev/zero)"
        else
            tap_ok "$plugin: (no LBPRZ: unmapped data is undefined)"
        fi
        if [ "$plugin" = iblock ]; then
            check "$plugin: GET LBA STATUS: a block device has no holes to report (mapped)" bash -c "sg_get_lba_status -b --lba=40 $sg | tee /dev/stderr | grep -qE '^0x0*28 +0x[0-9a-f]+ +0 '"
        else
            check "$plugin: GET LBA STATUS: LBA 40 deallocated, LBA 8 mapped" bash -c "sg_get_lba_status -b --lba=40 $sg | tee /dev/stderr | grep -qE '^0x0*28 +0x[0-9a-f]+ +1 ' &&
                sg_get_lba_status -b --lba=8 $sg | grep -qE '^0x0*8 +0x[0-9a-f]+ +0 '"
        fi
        check "$plugin: UNMAP past the end: LBA OUT OF RANGE" bash -c "sg_unmap --force --lba=4294967040 --num=2 $sg 2>&1 | grep -qi 'out of range'"
    else
        check "$plugin: UNMAP without emulate_tpu: invalid opcode" bash -c "sg_unmap --force --lba=40 --num=24 $sg 2>&1 | grep -qi 'invalid opcode\|Invalid command operation code\|not supported'"
        tap_ok "$plugin: (no discard: nothing to read back)"
        tap_ok "$plugin: (no discard: no deallocated blocks)"
        tap_ok "$plugin: (no discard: no UNMAP range check)"
    fi

    # VERIFY: BYTCHK 1 compares the data, BYTCHK 3 one block against every block.
    blocks "$sd" 0 8 $W/first8
    check "$plugin: sg_verify BYTCHK=1 of LBAs 0-7 with the right data" sg_verify --ebytchk=1 --lba=0 --count=8 --ndo=4096 --in=$W/first8 "$sg"
    cp $W/first8 $W/bad8; printf '\xa5' | dd of=$W/bad8 bs=1 seek=1000 conv=notrunc status=none
    check "$plugin: sg_verify BYTCHK=1 with one byte changed: MISCOMPARE at offset 1000" bash -c "sg_raw -s 4096 -i $W/bad8 $sg 2f 02 00 00 00 00 00 00 08 00 2>&1 | tee /dev/stderr |
        grep -qi 'Miscompare' && sg_raw -s 4096 -i $W/bad8 $sg 2f 02 00 00 00 00 00 00 08 00 2>&1 | grep -qi 'info fld=0x3e8'"
    check "$plugin: sg_verify BYTCHK=3: LBAs 8-23 all hold the block" sg_verify --ebytchk=3 --lba=8 --count=16 --ndo=512 --in=$W/block "$sg"
    check "$plugin: sg_verify BYTCHK=3 over 7-23: MISCOMPARE" bash -c "! sg_verify --ebytchk=3 --lba=7 --count=17 --ndo=512 --in=$W/block $sg"

    # COMPARE AND WRITE: swaps on a match, refuses (MISCOMPARE, medium unchanged) otherwise,
    # and is atomic: two racing counters lose no increment.
    dd if=$W/block of="$sd" bs=512 seek=100 oflag=direct status=none
    cat $W/block $W/other > $W/caw1
    check "$plugin: sg_compare_and_write swaps LBA 100 when it matches" bash -c "sg_compare_and_write --in=$W/caw1 --lba=100 $sg &&
        blocks $sd 100 1 $W/b100 && cmp $W/b100 $W/other"
    check "$plugin: a second identical COMPARE AND WRITE miscompares (exit 14), the block stays" bash -c "sg_compare_and_write -q --in=$W/caw1 --lba=100 $sg; [ \$? = 14 ] &&
        blocks $sd 100 1 $W/b100 && cmp $W/b100 $W/other"
    dd if=/dev/zero of="$sd" bs=512 seek=200 count=1 oflag=direct status=none
    check "$plugin: two racing COMPARE AND WRITE counters: 2 x 40 increments, none lost" bash -c "python3 $HERE/caw_race.py $sg 200 40 > $W/r1 & p=\$!;
        python3 $HERE/caw_race.py $sg 200 40 > $W/r2 || exit 1; wait \$p || exit 1; echo retries \$(cat $W/r1) \$(cat $W/r2);
        blocks $sd 200 1 $W/c && [ \$(od -An -tx1 -N8 $W/c | tr -d ' ') = 0000000000000050 ]"

    # ORWRITE(16) ORs into the medium; WRITE AND VERIFY(10) with BYTCHK writes and compares.
    head -c 512 /dev/zero | tr '\0' '\017' > $W/x0f; head -c 512 /dev/zero | tr '\0' '\360' > $W/xf0
    head -c 512 /dev/zero | tr '\0' '\377' > $W/xff
    dd if=$W/x0f of="$sd" bs=512 seek=300 oflag=direct status=none
    check "$plugin: ORWRITE(16) of 0xf0 onto 0x0f at LBA 300 leaves 0xff" bash -c "sg_raw -s 512 -i $W/xf0 $sg 8b 00 00 00 00 00 00 00 01 2c 00 00 00 01 00 00 &&
        blocks $sd 300 1 $W/b300 && cmp $W/b300 $W/xff"
    check "$plugin: WRITE AND VERIFY(10) BYTCHK=1 at LBA 320, read back" bash -c "sg_raw -s 512 -i $W/block $sg 2e 02 00 00 01 40 00 00 01 00 &&
        blocks $sd 320 1 $W/b320 && cmp $W/b320 $W/block"

    # Transfer length: VPD B0h advertises hw_max_sectors (248 blocks for brd); fileio and
    # iblock take up to 8 MiB in one command (iblock's bios are split to the queue's limits, as
    # LIO's are), and refuse more with INVALID FIELD IN CDB.
    check "$plugin: READ(10) of 256 blocks (VPD B0h's maximum: $(sg_vpd -p bl $sg | sed -n 's/.*Maximum transfer length: //p')) returns the data" bash -c "sg_raw -r 131072 -o $W/r256 $sg 28 00 00 00 00 00 00 01 00 00 &&
        blocks $sd 0 256 $W/d256 && cmp $W/r256 $W/d256"
    if [ "$plugin" = rd_mcp ]; then
        tap_ok "$plugin: (hw_max_sectors is 4 GiB: no transfer is too long)"
    else
        check "$plugin: READ(16) of 16385 blocks (8 MiB + 1 block): INVALID FIELD IN CDB" bash -c "sg_raw -r 512 $sg 88 00 00 00 00 00 00 00 00 00 00 00 40 01 00 00 2>&1 | grep -q 'Invalid field in cdb'"
    fi

    # The opcode report and the dispatch agree.
    check "$plugin: sg_opcodes lists WRITE SAME(10/16), VERIFY, PRE-FETCH" bash -c "sg_opcodes -n $sg > $W/ops && grep -q '^ *41 ' $W/ops && grep -q '^ *93 ' $W/ops &&
        grep -q '^ *2f ' $W/ops && grep -q '^ *34 ' $W/ops"
    if [ $discard = 1 ]; then
        check "$plugin: sg_opcodes lists UNMAP with emulate_tpu=1, and not after emulate_tpu=0" bash -c "grep -q '^ *42 ' $W/ops &&
            echo 0 > $dev/attrib/emulate_tpu && ! sg_opcodes -n $sg | grep -q '^ *42 ' && ! sg_unmap --force --lba=0 --num=1 $sg"
    else
        check "$plugin: sg_opcodes does not list UNMAP" bash -c "! grep -q '^ *42 ' $W/ops"
    fi
    check "$plugin: no atomic writes: WRITE ATOMIC(16) is an invalid opcode, sg_opcodes omits it" bash -c "[ \$(cat $dev/attrib/atomic_max_len) = 0 ] &&
        sg_raw -s 512 -i $W/block $sg 9c 00 00 00 00 00 00 00 00 08 00 00 00 01 00 00 2>&1 | grep -q 'Invalid command operation code' && ! grep -q '^ *9c ' $W/ops"
    check "$plugin: PRE-FETCH(10), START STOP UNIT (start), PREVENT ALLOW (0 and 1), sg_opcodes --tmf" bash -c "sg_raw $sg 34 00 00 00 00 00 00 00 10 00 &&
        sg_start --start $sg && sg_prevent --prevent=1 $sg && sg_prevent --allow $sg && sg_opcodes --tmf $sg | grep -q 'Logical unit reset'"
    teardown_lun
    echo "# $plugin took $((SECONDS - t0))s"
done <<< "$BACKENDS"

# WRITE ATOMIC(16) on a medium with atomic writes: iblock on scsi_debug (atomic_wr=1).
sdbg=$(atomic_disk)
q=/sys/block/$sdbg/queue
check "scsi_debug disk with atomic writes (/dev/$sdbg: $(cat $q/atomic_write_max_bytes 2>/dev/null) bytes at most)" bash -c "[ -b /dev/$sdbg ] && [ \$(cat $q/atomic_write_max_bytes) -gt 0 ]"
dev=$(setup_dev iblock atom udev_path=/dev/$sdbg)
amax=$(cat $dev/attrib/atomic_max_len); agran=$(cat $dev/attrib/atomic_granularity); aalign=$(cat $dev/attrib/atomic_alignment)
check "iblock atomic: atomic_max_len $amax, granularity $agran, alignment $aalign from the queue's limits" bash -c "
    [ $amax = \$(( \$(cat $q/atomic_write_max_bytes) / 512 )) ] && [ $agran = \$(( \$(cat $q/atomic_write_unit_min_bytes) / 512 )) ] && [ $aalign = $agran ] && [ $amax -gt 0 ]"
link_dev "$dev" >/dev/null
sg=$(lun_dev rtarget_loop scsi_generic); sd=$(lun_dev rtarget_loop block)
check "iblock atomic: VPD B0h and sg_opcodes advertise WRITE ATOMIC(16)" bash -c "sg_vpd -p bl $sg | tee /dev/stderr | grep -q 'Maximum atomic transfer length: $amax' &&
    sg_opcodes -n $sg | grep -q '^ *9c '"
n=$(( agran > 0 ? agran : 1 )); lba=$(( (aalign > 0 ? aalign : 1) * 8 ))
head -c $((n * 512)) /dev/urandom > $W/atomic
hex() { printf '%02x ' $(( ($1 >> 8) & 255 )) $(( $1 & 255 )); }
check "iblock atomic: WRITE ATOMIC(16) of $n blocks at LBA $lba, read back" bash -c "sg_raw -s $((n * 512)) -i $W/atomic $sg 9c 00 00 00 00 00 00 00 $(hex $lba) 00 00 $(hex $n) 00 00 &&
    blocks $sd $lba $n $W/atomic.got && cmp $W/atomic.got $W/atomic"
long=$(( amax + n ))
check "iblock atomic: WRITE ATOMIC(16) of $long blocks (over the maximum): INVALID FIELD IN CDB" bash -c "head -c $((long * 512)) /dev/zero > $W/long &&
    sg_raw -s $((long * 512)) -i $W/long $sg 9c 00 00 00 00 00 00 00 00 00 00 00 $(hex $long) 00 00 2>&1 | grep -q 'Invalid field in cdb'"
if [ "$aalign" -gt 1 ]; then
    check "iblock atomic: WRITE ATOMIC(16) at a misaligned LBA: INVALID FIELD IN CDB" bash -c "sg_raw -s $((n * 512)) -i $W/atomic $sg 9c 00 00 00 00 00 00 00 $(hex $((lba + 1))) 00 00 $(hex $n) 00 00 2>&1 | grep -q 'Invalid field in cdb'"
else
    check "iblock atomic: WRITE ATOMIC(16) with a boundary the device lacks: INVALID FIELD IN CDB" bash -c "sg_raw -s $((n * 512)) -i $W/atomic $sg 9c 00 00 00 00 00 00 00 $(hex $lba) 00 01 $(hex $n) 00 00 2>&1 | grep -q 'Invalid field in cdb'"
fi
teardown_lun
rmmod scsi_debug 2>/dev/null
scratch_down
check "no oops or warning in dmesg" dmesg_clean
tap_done
