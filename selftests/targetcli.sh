#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The unmodified Debian targetcli drives rtarget: create, list, save, clear, restore.
. "$(dirname "$0")/lib.sh"
tap_plan 14
unload_all; dmesg_mark
tc() { targetcli "$@" 2>&1; }
# targetcli wants a clean rtslib state dir and a system D-Bus (guest-setup starts one).
mkdir -p /etc/rtslib-fb-target
rm -f /tmp/rt1.json /tmp/rt2.json

check "modprobe rtarget_core" modprobe rtarget_core
check "/backstores/ramdisk create r0 64M" tc /backstores/ramdisk create name=r0 size=64M
check "/loopback create $WWN" tc /loopback create "$WWN"
check "luns create /backstores/ramdisk/r0" tc "/loopback/$WWN/luns" create /backstores/ramdisk/r0
check "ls shows the activated ramdisk and its LUN" sh -c "targetcli ls > /tmp/ls.txt 2>&1; cat /tmp/ls.txt;
    grep -q 'r0 .*(64.0MiB) activated' /tmp/ls.txt && grep -q 'lun0 .*ramdisk/r0 (default_tg_pt_gp)' /tmp/ls.txt"
sd=$(lun_dev rtarget_loop block)
check "lsscsi shows the disk (model alias r0)" sh -c "lsscsi | grep -E 'disk +LIO-ORG +r0 +4.0 +$sd'"
check "saveconfig" tc saveconfig /tmp/rt1.json
check "the saved JSON has the ramdisk and the loopback LUN" python3 -c "
import json; c = json.load(open('/tmp/rt1.json'))
so, = c['storage_objects']; t, = c['targets']
assert (so['plugin'], so['name'], so['size']) == ('ramdisk', 'r0', 67108864), so
assert so['attributes']['block_size'] == 512 and so['attributes']['queue_depth'] == 128, so
assert (t['fabric'], t['wwn']) == ('loopback', '$WWN'), t
assert t['tpgs'][0]['luns'][0]['storage_object'] == '/backstores/ramdisk/r0', t"
check "clearconfig" tc clearconfig confirm=True
check "clearconfig left no backstore, target or disk" sh -c "! ls -d $CFG/core/rd_mcp_* $CFG/loopback/naa.* 2>/dev/null | grep -q . &&
    ! lsscsi | grep -q 'LIO-ORG'"
check "restoreconfig" tc restoreconfig /tmp/rt1.json
check "saveconfig after restore" tc saveconfig /tmp/rt2.json
check "the restored configuration is identical" diff -u /tmp/rt1.json /tmp/rt2.json
tc clearconfig confirm=True >/dev/null
rmmod rtarget_loop rtarget_core 2>/dev/null
check "no oops or warning in dmesg" dmesg_clean
tap_done
