#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Both targetcli generations (Debian's 2.1.53 / rtslib-fb 2.1.75 and upstream 3.0.2 / rtslib-fb
# 2.2.4), unmodified, drive ramdisk, fileio and block backstores on rtarget: create, ls,
# saveconfig, clearconfig; data written through the fileio and block disks survives module
# unload and reload, and restoreconfig, whose saveconfig is identical to the first.
. "$(dirname "$0")/lib.sh"
TC3=${RTARGET_CACHE:-/root/.cache/rtarget}/targetcli3/bin/targetcli
tap_plan 39
unload_all; dmesg_mark
check "scratch storage" scratch_up
# (Its package metadata, not --version: each targetcli start costs tens of seconds here.)
check "upstream targetcli 3 is installed ($TC3)" sh -c "[ -x $TC3 ] && ls -d ${TC3%/bin/*}/lib/python3*/site-packages/targetcli-3.0.2.dist-info"
head -c 8M /dev/urandom > $BK/pattern

# Each targetcli start costs tens of seconds in the debug VM, so each step is one targetcli
# session fed on stdin (its interactive mode, as a user's script would); every command's own
# success message is one check.
session() { # LOG TARGETCLI COMMAND...
    local log=$1 tc=$2; shift 2
    printf '%s\n' "$@" | $tc > "$log" 2>&1
}
said() { # LOG TEXT: the session printed TEXT
    grep -qF -- "$2" "$1" || { grep -iE 'error|fail|exception' "$1" | head -10; false; }
}

# clearconfig leaves the fabric directories (target/loopback, and target/iscsi that rtslib
# creates when it lists fabrics), which pin their modules as in LIO: remove them first.
unload_rt() {
    rmdir "$CFG/loopback" "$CFG/iscsi" 2>/dev/null
    # targetcli lists iscsi/, which autoloads rtarget_iscsi.
    if loaded rtarget_iscsi; then rmmod_wait rtarget_iscsi || return 1; fi
    rmmod_wait rtarget_loop rtarget_core
}
reload_core() { unload_rt && modprobe rtarget_core; }
teardown_and_unload() { teardown_lun && unload_rt; }

generation() { # LABEL TARGETCLI
    local g=$1 tc=$2 sd0 sd1 log=/tmp/$1-session.txt
    rm -f /tmp/$g-1.json /tmp/$g-2.json $BK/ext4/$g.img
    check "$g: modprobe rtarget_core" modprobe rtarget_core
    session "$log" "$tc" "/backstores/ramdisk create name=r0 size=64M" \
        "/backstores/fileio create name=f1 file_or_dev=$BK/ext4/$g.img size=64M" \
        "/backstores/block create name=b1 dev=/dev/ram0" "/loopback create $WWN" \
        "/loopback/$WWN/luns create /backstores/ramdisk/r0" "/loopback/$WWN/luns create /backstores/fileio/f1" \
        "/loopback/$WWN/luns create /backstores/block/b1" "ls" "saveconfig /tmp/$g-1.json"
    check "$g: /backstores/ramdisk create (64M)" said "$log" "Created ramdisk r0 with size"
    check "$g: /backstores/fileio create (64M file on ext4)" said "$log" "Created fileio f1 with size 67108864"
    check "$g: /backstores/block create (/dev/ram0)" said "$log" "Created block storage object b1 using /dev/ram0."
    check "$g: /loopback create" said "$log" "Created target $WWN."
    check "$g: luns create: LUNs 0, 1 and 2" sh -c "grep -qF 'Created LUN 0.' $log && grep -qF 'Created LUN 1.' $log && grep -qF 'Created LUN 2.' $log"
    check "$g: ls shows the three activated, and their LUNs" sh -c "grep -q 'r0 .*(64.0MiB) activated' $log &&
        grep -q 'f1 .*$g.img (64.0MiB) write-back activated' $log && grep -q 'b1 .*/dev/ram0 (64.0MiB) write-thru activated' $log &&
        grep -q 'lun0 .*ramdisk/r0 (default_tg_pt_gp)' $log && grep -q 'lun2 .*block/b1 (/dev/ram0) (default_tg_pt_gp)' $log ||
        { cat $log; false; }"
    check "$g: saveconfig" said "$log" "Configuration saved to /tmp/$g-1.json"
    sd0=$(lun_dev rtarget_loop block 0)
    check "$g: lsscsi shows the ramdisk (model alias r0)" sh -c "lsscsi | grep -E 'disk +LIO-ORG +r0 +4.0 +$sd0'"
    check "$g: the JSON holds the backstores and LUNs as rtslib reads them" python3 -c "
import json; c = json.load(open('/tmp/$g-1.json'))
so = {s['name']: s for s in c['storage_objects']}
r, f, b = so['r0'], so['f1'], so['b1']
assert (r['plugin'], r['size']) == ('ramdisk', 67108864), r
assert r['attributes']['block_size'] == 512 and r['attributes']['queue_depth'] == 128, r
assert (f['plugin'], f['dev'], f['size'], f['write_back']) == ('fileio', '$BK/ext4/$g.img', 67108864, True), f
assert (b['plugin'], b['dev'], b['readonly']) == ('block', '/dev/ram0', False), b
assert b.get('exclusive', True) is True, b
t, = c['targets']
assert (t['fabric'], t['wwn']) == ('loopback', '$WWN'), t
assert [l['storage_object'] for l in sorted(t['tpgs'][0]['luns'], key=lambda l: l['index'])] == \
    ['/backstores/ramdisk/r0', '/backstores/fileio/f1', '/backstores/block/b1'], t"
    sd0=$(lun_dev rtarget_loop block 1); sd1=$(lun_dev rtarget_loop block 2)
    check "$g: write a pattern through the fileio and block disks" sh -c "dd if=$BK/pattern of=$sd0 bs=1M oflag=direct status=none &&
        dd if=$BK/pattern of=$sd1 bs=1M oflag=direct status=none && sync"
    check "$g: clearconfig" $tc clearconfig confirm=True
    check "$g: clearconfig left no backstore, target or disk" sh -c "! ls -d $CFG/core/*_*/* $CFG/loopback/naa.* 2>/dev/null | grep -q . &&
        ! lsscsi | grep -q 'LIO-ORG'"
    check "$g: unload and reload the modules" reload_core
    session "$log" "$tc" "restoreconfig /tmp/$g-1.json" "saveconfig /tmp/$g-2.json"
    check "$g: restoreconfig" said "$log" "Configuration restored from /tmp/$g-1.json"
    check "$g: saveconfig after restore is identical" sh -c "grep -qF 'Configuration saved to /tmp/$g-2.json' $log &&
        diff -u /tmp/$g-1.json /tmp/$g-2.json"
    sd0=$(lun_dev rtarget_loop block 1); sd1=$(lun_dev rtarget_loop block 2)
    check "$g: the pattern reads back from the fileio and block disks" sh -c "cmp -n 8388608 $BK/pattern $sd0 && cmp -n 8388608 $BK/pattern $sd1"
    # clearconfig is checked above; here plain configfs removal is enough.
    check "$g: teardown and unload" teardown_and_unload
}
mkdir -p /etc/rtslib-fb-target /etc/target
generation debian targetcli
generation upstream "$TC3"
scratch_down
check "no oops or warning in dmesg" dmesg_clean
tap_done
