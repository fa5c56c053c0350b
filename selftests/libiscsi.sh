#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Conformance: libiscsi's iscsi-test-cu (every test of its ALL family, -d -S, verbose) over the
# loopback LUN's /dev/sg nodes, on each backend, for rtarget and then C LIO in the same boot.
# Two loopback TPGs export the same device, so the tests that need a second initiator
# (reservations, multipath) get one. Each backend's rtarget outcomes are held to
# libiscsi.expect: a test that got worse fails the check; the table of differences with
# C LIO is printed. LIBISCSI_PRINT=1 prints every outcome in the expectations' format.
# LIBISCSI_LIO lists the backends C LIO runs on too (default rd_mcp, to keep make check's time
# in bounds on the debug kernel; "all" for every backend). Outcomes: pass, fail, notimpl (the target lacks the command), skip.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=/tmp/libiscsi; rm -rf $OUT; mkdir -p $OUT
NEXUS2=naa.5001405f00000002
TPG2=$CFG/loopback/$WWN/tpgt_2

# NAME|PLUGIN|CONTROL|ATTRIBUTES (written where the stack accepts them)
# Thin provisioning on, where the stack accepts it (C LIO's rd_mcp does not), so the
# thin-provisioning tests run instead of skipping.
TP="emulate_tpu=1 emulate_tpws=1"
BACKENDS="rd_mcp|rd_mcp|rd_pages=16384|$TP
fileio|fileio|fd_dev_name=$BK/conf.img,fd_dev_size=67108864|$TP
iblock|iblock|udev_path=/dev/ram0|$TP"
nb=$(echo "$BACKENDS" | wc -l)
iscsi-test-cu -l | awk -F. 'NF == 3 && $1 == "ALL" { print $2 "." $3 }' > $OUT/tests
SUITES=$(cut -d. -f1 $OUT/tests | uniq)
LIO_ON=${LIBISCSI_LIO:-rd_mcp}
tap_plan $((nb * 3 + 1))
unload_all
check "scratch storage" scratch_up

side() { # CORE_MODULE PROC_NAME PLUGIN CONTROL ATTRS OUTFILE
    local dev sg1 sg2 a
    rm -f $BK/conf.img
    modprobe "$1" && dev=$(setup_dev "$3" conf "$4") || return 1
    for a in $5; do echo "${a#*=}" > "$dev/attrib/${a%%=*}" 2>/dev/null; done
    link_dev "$dev" && mkdir -p "$TPG2/lun/lun_0" && echo "$NEXUS2" > "$TPG2/nexus" &&
        ln -s "$dev" "$TPG2/lun/lun_0/link0" || return 1
    sg1=$(lun_dev "$2" scsi_generic 0 1) && sg2=$(lun_dev "$2" scsi_generic 0 2) || return 1
    # One run per suite: a test that crashes the tool (some do over SG_IO, on any target)
    # costs only its own suite, whose unfinished tests then count as failed.
    : > "$6.log"; : > "$6.times"
    for suite in $SUITES; do
        echo "### iscsi-test-cu ALL.$suite" >> "$6.log"
        t0=$SECONDS
        timeout 300 iscsi-test-cu -d -S -t "ALL.$suite" "$sg1" "$sg2" >> "$6.log" 2>&1
        rc=$?
        [ $rc -ge 124 ] && echo "Suite $suite: iscsi-test-cu ended by signal or timeout (exit $rc)" | tee -a "$6.log" >&2
        echo "$((SECONDS - t0)) $suite" >> "$6.times"
    done
    python3 "$HERE/libiscsi.py" parse "$6.log" $OUT/tests > "$6"
}
while IFS='|' read -r bname plugin control attrs; do
    check "$bname: rtarget: iscsi-test-cu ran its $(wc -l < $OUT/tests) tests" side rtarget_core rtarget_loop "$plugin" "$control" "$attrs" $OUT/$bname.rtarget
    unload_all
    echo "rtarget: $(awk '{ s += $1 } END { print s }' $OUT/$bname.rtarget.times) s; slowest suites: $(sort -rn $OUT/$bname.rtarget.times | head -6 | tr '\n' ' ')" | tap_diag
    lio=-
    if [ "$LIO_ON" = all ] || [[ " $LIO_ON " == *" $bname "* ]]; then
        check "$bname: C LIO: iscsi-test-cu ran its $(wc -l < $OUT/tests) tests" side target_core_mod tcm_loopback "$plugin" "$control" "$attrs" $OUT/$bname.lio
        unload_all
        lio=$OUT/$bname.lio
    else
        tap_ok "$bname: C LIO: not run on this backend (LIBISCSI_LIO=$LIO_ON)"
    fi
    report=$(python3 "$HERE/libiscsi.py" judge "$HERE/libiscsi.expect" "$bname" $OUT/$bname.rtarget $lio 2>&1); rc=$?
    printf '%s\n' "$report" | grep -v '^libiscsi-expect ' | tap_diag
    # The outcomes in libiscsi.expect's format, to update it from the log (grep 'libiscsi-expect').
    [ $rc -ne 0 ] || [ -n "${LIBISCSI_PRINT:-}" ] && printf '%s\n' "$report" | grep '^libiscsi-expect ' | tap_diag
    if [ $rc -eq 0 ]; then tap_ok "$bname: no test worse than libiscsi.expect"; else tap_not_ok "$bname: no test worse than libiscsi.expect"; fi
done <<< "$BACKENDS"
scratch_down
tap_done
