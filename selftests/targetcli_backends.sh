#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Both targetcli generations (Debian's 2.1.53 / rtslib-fb 2.1.75 and upstream 3.0.2 / rtslib-fb
# 2.2.4) drive fileio and block backstores on rtarget: create, ls, saveconfig, and data written
# through the disks survives clearconfig, module unload and reload, and restoreconfig, whose
# saveconfig is identical to the first.
. "$(dirname "$0")/lib.sh"
TC3=${RTARGET_CACHE:-/root/.cache/rtarget}/targetcli3/bin/targetcli
tap_plan 29
unload_all; dmesg_mark
check "scratch storage" scratch_up
check "upstream targetcli 3 is installed ($TC3)" sh -c "$TC3 --version 2>&1 | grep -q 'version 3.0.2'"
head -c 8M /dev/urandom > $BK/pattern

generation() { # LABEL TARGETCLI SAVEDIR
    local g=$1 tc=$2 save=$3 sd0 sd1
    mkdir -p "$save"; rm -f /tmp/$g-1.json /tmp/$g-2.json $BK/ext4/$g.img
    check "$g: modprobe rtarget_core" modprobe rtarget_core
    check "$g: /backstores/fileio create (64M file on ext4)" $tc /backstores/fileio create name=f1 file_or_dev=$BK/ext4/$g.img size=64M
    check "$g: /backstores/block create (/dev/ram0)" $tc /backstores/block create name=b1 dev=/dev/ram0
    check "$g: loopback target with both as LUNs" sh -c "$tc /loopback create $WWN && $tc /loopback/$WWN/luns create /backstores/fileio/f1 &&
        $tc /loopback/$WWN/luns create /backstores/block/b1"
    check "$g: ls shows both activated" sh -c "$tc ls > /tmp/$g-ls.txt 2>&1; cat /tmp/$g-ls.txt;
        grep -q 'f1 .*$g.img (64.0MiB) write-back activated' /tmp/$g-ls.txt && grep -q 'b1 .*/dev/ram0 (64.0MiB) write-thru activated' /tmp/$g-ls.txt"
    check "$g: saveconfig" $tc saveconfig /tmp/$g-1.json
    check "$g: the JSON holds both backstores as rtslib reads them" python3 -c "
import json; c = json.load(open('/tmp/$g-1.json'))
so = {s['name']: s for s in c['storage_objects']}
f, b = so['f1'], so['b1']
assert (f['plugin'], f['dev'], f['size'], f['write_back']) == ('fileio', '$BK/ext4/$g.img', 67108864, True), f
assert (b['plugin'], b['dev'], b['readonly']) == ('block', '/dev/ram0', False), b
assert b.get('exclusive', True) is True, b
assert f['attributes']['hw_max_sectors'] == 16384 if 'hw_max_sectors' in f['attributes'] else True"
    sd0=$(lun_dev rtarget_loop block 0); sd1=$(lun_dev rtarget_loop block 1)
    check "$g: write a pattern through both disks" sh -c "dd if=$BK/pattern of=$sd0 bs=1M oflag=direct status=none &&
        dd if=$BK/pattern of=$sd1 bs=1M oflag=direct status=none && sync"
    check "$g: clearconfig, unload and reload the modules" sh -c "$tc clearconfig confirm=True && rmmod rtarget_loop &&
        rmmod rtarget_core && modprobe rtarget_core"
    check "$g: restoreconfig" $tc restoreconfig /tmp/$g-1.json
    check "$g: saveconfig after restore is identical" sh -c "$tc saveconfig /tmp/$g-2.json && diff -u /tmp/$g-1.json /tmp/$g-2.json"
    sd0=$(lun_dev rtarget_loop block 0); sd1=$(lun_dev rtarget_loop block 1)
    check "$g: the pattern reads back from both disks" sh -c "cmp -n 8388608 $BK/pattern $sd0 && cmp -n 8388608 $BK/pattern $sd1"
    check "$g: clearconfig and unload" sh -c "$tc clearconfig confirm=True && rmmod rtarget_loop && rmmod rtarget_core"
}
mkdir -p /etc/rtslib-fb-target /etc/target
generation debian targetcli /etc/rtslib-fb-target
generation upstream "$TC3" /etc/target
scratch_down
check "no oops or warning in dmesg" dmesg_clean
tap_done
