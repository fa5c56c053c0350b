#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The #[kunit_tests] suites inside our modules run on load; each must report ok.
. "$(dirname "$0")/lib.sh"
SUITES="rtarget_core_cdb rtarget_core_fabric rtarget_core_ua rtarget_live_ref rtarget_net rtarget_crypto rtarget_loop_bound"
tap_plan 8
unload_all

check "modprobe rtarget_loop (runs the suites)" modprobe rtarget_loop
for s in $SUITES; do
    r=/sys/kernel/debug/kunit/$s/results
    if [ -r "$r" ] && grep -qE '^ok [0-9]+ '"$s" "$r" && ! grep -q 'not ok' "$r"; then
        tap_ok "kunit suite $s: $(grep -cE '^ +ok ' "$r") cases passed"
    else
        tap_not_ok "kunit suite $s"
        { cat "$r" 2>/dev/null || echo "no results at $r"; } | tap_diag
    fi
done
unload_all
tap_done
