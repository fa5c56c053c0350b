#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Unloading: the core is refused while a fabric holds it; in order, unload is clean, repeatedly.
. "$(dirname "$0")/lib.sh"
tap_plan 6
unload_all; dmesg_mark

check "modprobe rtarget_loop" modprobe rtarget_loop
refuse "rmmod rtarget_core is refused while rtarget_loop holds it" rmmod rtarget_core
check "rtarget_core is still loaded and serving configfs" test -r "$CFG/version"
check "rmmod rtarget_loop then rtarget_core" sh -c "rmmod rtarget_loop && rmmod rtarget_core"
check "five load/unload cycles" sh -c 'for i in 1 2 3 4 5; do modprobe rtarget_loop && rmmod rtarget_loop rtarget_core || exit 1; done'
check "no oops or warning in dmesg" dmesg_clean
tap_done
