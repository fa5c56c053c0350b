#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Data integrity: fio writes with crc32c checksums and verifies; the data then survives the
# LUN being unlinked and linked again (the ramdisk keeps it while the module is loaded).
. "$(dirname "$0")/lib.sh"
tap_plan 7
unload_all; dmesg_mark
check "modprobe rtarget_core" modprobe rtarget_core
check "64 MiB ramdisk LUN" setup_lun 64
sd=$(lun_dev rtarget_loop block)
FIO="fio --name=v --filename=$sd --direct=1 --ioengine=libaio --bs=4k --iodepth=16 --size=48M"
FIO="$FIO --verify=crc32c --verify_state_save=0 --verify_fatal=1 --randrepeat=1 --output-format=terse --terse-version=3"
check "fio random writes then verify: no mismatch" sh -c "$FIO --rw=randwrite --do_verify=1"
check "relink the LUN" sh -c "rm $TPG/lun/lun_0/link0 && ln -s $CFG/core/rd_mcp_1/r0 $TPG/lun/lun_0/link0"
sd=$(lun_dev rtarget_loop block)
check "the data written before survives the relink (verify only)" sh -c "$FIO --rw=randwrite --verify_only=1"
check "a corrupted block is detected (the check can fail)" sh -c "
    dd if=/dev/urandom of=$sd bs=4k count=16 seek=100 oflag=direct conv=notrunc status=none &&
    ! $FIO --rw=randwrite --verify_only=1 >/dev/null 2>&1"
teardown_lun; rmmod rtarget_loop rtarget_core
check "no oops or warning in dmesg" dmesg_clean
tap_done
