#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# TAP helpers for rtarget's selftests. Each test script prints "1..N" and one line per check.

CFG=/sys/kernel/config/target
_tap_n=0
_tap_fail=0

tap_plan() { echo "TAP version 13"; echo "1..$1"; }
tap_ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
tap_not_ok() { _tap_n=$((_tap_n + 1)); _tap_fail=$((_tap_fail + 1)); echo "not ok $_tap_n - $*"; }
tap_diag() { sed 's/^/# /'; }

# check DESC CMD...: ok if CMD succeeds; its output becomes diagnostics on failure.
check() {
    local desc=$1 out; shift
    if out=$("$@" 2>&1); then tap_ok "$desc"; else tap_not_ok "$desc"; printf '%s\n' "$out" | tap_diag; fi
}
# refuse DESC CMD...: ok if CMD fails.
refuse() {
    local desc=$1 out; shift
    if out=$("$@" 2>&1); then tap_not_ok "$desc (succeeded)"; printf '%s\n' "$out" | tap_diag; else tap_ok "$desc"; fi
}
tap_done() { [ "$_tap_fail" -eq 0 ]; exit $?; }

loaded() { [ -d "/sys/module/$1" ]; }
# Unload everything of ours and LIO's, quietly, so each test starts clean.
unload_all() {
    local d
    for d in "$CFG"/loopback; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
    for m in rtarget_loop rtarget_core tcm_loop target_core_mod; do
        loaded "$m" && rmmod "$m" 2>/dev/null
    done
    true
}
# Kernel log since the test started, for oops/warning checks.
dmesg_mark() { _dmesg_mark=$(dmesg | wc -l); }
dmesg_new() { dmesg | tail -n +"$((${_dmesg_mark:-0} + 1))"; }
dmesg_clean() { ! dmesg_new | grep -E 'BUG:|WARNING:|Oops|general protection|refcount_t:|UBSAN|KASAN|list_(add|del) corruption'; }
