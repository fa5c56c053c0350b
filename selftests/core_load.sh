#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# rtarget_core owns /sys/kernel/config/target, with LIO's `version` attribute.
. "$(dirname "$0")/lib.sh"
tap_plan 9
unload_all; dmesg_mark

check "modprobe rtarget_core" modprobe rtarget_core
check "configfs subsystem target exists" test -d "$CFG"
re="^Target Engine Core ConfigFS Infrastructure v5\.0 on Linux/$(uname -m) on $(uname -r)\$"
check "version reads like LIO's" grep -qx "$re" "$CFG/version"
refuse "version is read-only" sh -c "echo x > $CFG/version"
refuse "mkdir of an unknown fabric fails" mkdir "$CFG/nosuchfabric"
refuse "C LIO cannot load while rtarget owns target/" modprobe target_core_mod
check "rmmod rtarget_core" rmmod rtarget_core
refuse "target/ is gone" test -e "$CFG"
check "no oops or warning in dmesg" dmesg_clean
tap_done
