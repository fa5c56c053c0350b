#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# fileio (write-through O_DIRECT and buffered, on tmpfs and on ext4) and iblock (brd, null_blk)
# through plain configfs writes: LIO's info and attribute values, fio crc32c verification with
# plain and FUA writes, read-only iblock, and bad control writes refused.
. "$(dirname "$0")/lib.sh"
tap_plan 50
unload_all; dmesg_mark

check "scratch storage: tmpfs, ext4 on loop, brd, null_blk" scratch_up
check "modprobe rtarget_core" modprobe rtarget_core

# NAME|PLUGIN|CONTROL|INFO_REGEX|ATTRS (name=value ...)
CASES="fd_tmpfs|fileio|fd_dev_name=$BK/f1.img,fd_dev_size=67108864|TCM FILEIO ID: 0        File: $BK/f1.img  Size: 67108864  Mode: O_DSYNC Async: 0|hw_block_size=512 hw_max_sectors=16384 hw_queue_depth=128 emulate_write_cache=0
fd_tmpfs_wb|fileio|fd_dev_name=$BK/f2.img,fd_dev_size=67108864,fd_buffered_io=1|Mode: Buffered-WCE Async: 0|emulate_write_cache=1 optimal_sectors=16384
fd_ext4|fileio|fd_dev_name=$BK/ext4/f3.img,fd_dev_size=67108864|File: $BK/ext4/f3.img  Size: 67108864  Mode: O_DSYNC|emulate_write_cache=0
fd_ext4_wb|fileio|fd_dev_name=$BK/ext4/f4.img,fd_dev_size=67108864,fd_buffered_io=1|Mode: Buffered-WCE|emulate_write_cache=1
ib_brd|iblock|udev_path=/dev/ram0|iBlock device: ram0  UDEV PATH: /dev/ram0  readonly: 0|hw_block_size=512 emulate_write_cache=0
ib_null|iblock|udev_path=/dev/nullb0|iBlock device: nullb0  UDEV PATH: /dev/nullb0  readonly: 0|hw_block_size=512"

FIO="--direct=1 --ioengine=libaio --bs=4k --iodepth=16 --numjobs=1 --size=12M --verify=crc32c
     --verify_state_save=0 --verify_fatal=1 --randrepeat=1 --output-format=terse --terse-version=3"
attrs_are() { # DEV ATTRS...
    local dev=$1 a; shift
    for a in "$@"; do
        [ "$(cat "$dev/attrib/${a%%=*}")" = "${a#*=}" ] || { echo "${a%%=*}=$(cat "$dev/attrib/${a%%=*}"), want ${a#*=}"; return 1; }
    done
}
while IFS='|' read -r name plugin control info attrs; do
    dev=$(setup_dev "$plugin" "$name" "$control")
    check "$name: created and enabled" test -n "$dev"
    check "$name: info as LIO prints it" sh -c "cat $dev/info; tr -s ' \n' ' ' < $dev/info | grep -qF '$(echo "$info" | tr -s ' ' ' ')'"
    # shellcheck disable=SC2086
    check "$name: attributes as LIO sets them" attrs_are "$dev" $attrs
    link_dev "$dev" && sd=$(lun_dev rtarget_loop block)
    # shellcheck disable=SC2086
    check "$name: fio random writes then verify" fio --name=v --filename="$sd" --rw=randwrite $FIO
    # With WCE=1 the disk does FUA: O_DSYNC direct writes go out as WRITE with FUA.
    # shellcheck disable=SC2086
    check "$name: fio sync (FUA) writes then verify" fio --name=f --filename="$sd" --rw=randwrite --sync=1 --offset=16M $FIO --size=3M
    teardown_lun
done <<< "$CASES"

# A read-only iblock device: reads work, writes fail with DATA PROTECT.
dev=$(setup_dev iblock ro "udev_path=/dev/ram0,readonly=1")
check "iblock readonly=1: info says so" grep -q 'readonly: 1' "$dev/info"
link_dev "$dev" && sg=$(lun_dev rtarget_loop scsi_generic)
check "iblock readonly=1: a READ works" sg_raw -r 512 "$sg" 28 00 00 00 00 00 00 00 01 00
check "iblock readonly=1: a WRITE gets DATA PROTECT, WRITE PROTECTED" sh -c \
    "out=\$(sg_raw -s 512 -i /dev/zero $sg 2a 00 00 00 00 00 00 00 01 00 2>&1); echo \"\$out\";
     echo \"\$out\" | tr '\\n' ' ' | grep -qi 'Sense key: Data protect.*Write protected'"
teardown_lun

# Exclusive open (O_EXCL on a block device): refused while rtarget claims it, unless
# exclusive=0.
excl_open() { python3 -c "import os; os.close(os.open('$1', os.O_RDONLY | os.O_EXCL))"; }
dev=$(setup_dev iblock excl "udev_path=/dev/ram0")
check "iblock exclusive (default): info says exclusive: 1" grep -q 'exclusive: 1' "$dev/info"
refuse "iblock exclusive: another exclusive open of the device fails" excl_open /dev/ram0
check "iblock: udev_path= after enable is refused (EEXIST)" sh -c "! echo udev_path=/dev/nullb0 > $dev/control"
teardown_lun
dev=$(setup_dev iblock shared "udev_path=/dev/ram0,exclusive=0")
check "iblock exclusive=0: another exclusive open succeeds" excl_open /dev/ram0
teardown_lun

# Bad control writes get clear errors.
dev=$CFG/core/fileio_1/bad; mkdir -p "$dev"
refuse "fileio: fd_buffered_io=0 is refused, as in LIO" sh -c "echo fd_buffered_io=0 > $dev/control"
refuse "fileio: a malformed fd_dev_size is refused" sh -c "echo fd_dev_size=12abc > $dev/control"
refuse "fileio: an unknown key is refused" sh -c "echo fd_bogus=1 > $dev/control"
refuse "fileio: enable without fd_dev_name fails" sh -c "echo 1 > $dev/enable"
echo "fd_dev_name=$BK/nosize.img" > "$dev/control"
refuse "fileio: a regular file without fd_dev_size cannot be enabled" sh -c "echo 1 > $dev/enable"
refuse "fileio: a directory is not a backing file" sh -c "echo fd_dev_name=$BK,fd_dev_size=1048576 > $dev/control && echo 1 > $dev/enable"
rmdir "$dev"
dev=$CFG/core/iblock_1/bad; mkdir -p "$dev"
refuse "iblock: enable without udev_path fails" sh -c "echo 1 > $dev/enable"
refuse "iblock: a missing device cannot be enabled" sh -c "echo udev_path=/dev/nonexistent > $dev/control && echo 1 > $dev/enable"
refuse "iblock: a regular file is not a block device" sh -c "echo udev_path=$BK/f1.img > $dev/control && echo 1 > $dev/enable"
rmdir "$dev"
teardown_lun
check "unload" sh -c "rmmod rtarget_loop 2>/dev/null; rmmod rtarget_core"
scratch_down
check "no oops or warning in dmesg" dmesg_clean
tap_done
