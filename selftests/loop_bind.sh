#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The loop fabric binds to the core through the Fabric trait; configfs pins it while in use.
. "$(dirname "$0")/lib.sh"
tap_plan 10
unload_all; dmesg_mark

check "modprobe rtarget_loop" modprobe rtarget_loop
check "depmod pulled in rtarget_core" test -d /sys/module/rtarget_core
check "rtarget_core is held by rtarget_loop" test -e /sys/module/rtarget_core/holders/rtarget_loop
check "core read the fabric's version through its vtable" \
    sh -c "dmesg | grep -q 'rtarget_core: fabric loopback registered: TCM Loopback Fabric module'"
check "mkdir target/loopback binds the fabric" mkdir "$CFG/loopback"
refuse "rmmod rtarget_loop is refused while target/loopback exists" rmmod rtarget_loop
refuse "mkdir of an unregistered fabric fails" mkdir "$CFG/vhost"
check "rmdir target/loopback, then rmmod rtarget_loop" sh -c "rmdir $CFG/loopback && rmmod rtarget_loop"
check "mkdir target/loopback autoloads rtarget_loop" sh -c "mkdir $CFG/loopback && test -d /sys/module/rtarget_loop"
rmdir "$CFG/loopback"; rmmod rtarget_loop; rmmod rtarget_core
check "no oops or warning in dmesg" dmesg_clean
tap_done
