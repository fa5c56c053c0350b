#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Teardown: idle deletion in order is clean; removals that would orphan a LUN are refused;
# unlinking a LUN under fio load waits for the I/O to drain, and nothing hangs or oopses.
. "$(dirname "$0")/lib.sh"
tap_plan 18
unload_all; dmesg_mark
host_count() { grep -lx rtarget_loop /sys/class/scsi_host/host*/proc_name 2>/dev/null | wc -l; }

setup() { modprobe rtarget_core && loaded rtarget_core && ! loaded target_core_mod && setup_lun 64; }
check "modprobe rtarget_core; set up a LUN" setup
sd=$(lun_dev rtarget_loop block)
refuse "rmdir of the exported backstore is refused" rmdir "$CFG/core/rd_mcp_1/r0"
refuse "rmdir of a LUN that holds a link is refused" rmdir "$TPG/lun/lun_0"
refuse "rmdir of the loopback fabric with a target in it is refused" rmdir "$CFG/loopback"
refuse "dropping the nexus while a LUN is linked is refused" sh -c "echo NULL > $TPG/nexus"
check "unlinking the LUN removes the disk" sh -c "rm $TPG/lun/lun_0/link0 && sleep 1 && ! test -e $sd"
remove_target() { rmdir "$TPG/lun/lun_0" "$TPG" "$CFG/loopback/$WWN" && [ "$(host_count)" = 0 ]; }
check "rmdir lun, tpgt and target removes the SCSI host" remove_target
check "rmdir backstore and HBA" rmdir "$CFG/core/rd_mcp_1/r0" "$CFG/core/rd_mcp_1"

check "set up the LUN again" setup_lun 64
sd=$(lun_dev rtarget_loop block)
fio --name=load --filename="$sd" --direct=1 --ioengine=libaio --rw=randrw --bs=4k --iodepth=32 \
    --numjobs=2 --time_based --runtime=30 >/tmp/fio-teardown.txt 2>&1 &
fio_pid=$!
sleep 3
refuse "under load: rmdir of the backstore is refused at once" timeout 10 rmdir "$CFG/core/rd_mcp_1/r0"
check "under load: unlinking the LUN drains the I/O and returns" timeout 60 rm "$TPG/lun/lun_0/link0"
check "fio ends (with I/O errors) instead of hanging" timeout 60 sh -c "while kill -0 $fio_pid 2>/dev/null; do sleep 0.5; done"
check "full teardown after the load" sh -c "rmdir $TPG/lun/lun_0 $TPG $CFG/loopback/$WWN $CFG/core/rd_mcp_1/r0 $CFG/core/rd_mcp_1"
# A disk held open across teardown pins the fabric module until it is closed.
check "set up a LUN and hold its disk open" setup_lun 64
sd=$(lun_dev rtarget_loop block)
exec 3< "$sd"
check "full teardown while the disk is open" sh -c "rm $TPG/lun/lun_0/link0 && rmdir $TPG/lun/lun_0 $TPG $CFG/loopback/$WWN $CFG/core/rd_mcp_1/r0 $CFG/core/rd_mcp_1 $CFG/loopback"
refuse "rmmod rtarget_loop is refused while the removed disk is still open" rmmod rtarget_loop
exec 3<&-
check "unload in order once it is closed" sh -c "rmmod rtarget_loop && rmmod rtarget_core"
check "no oops or warning in dmesg" dmesg_clean
tap_done
