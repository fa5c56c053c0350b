#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Conformance: libiscsi's iscsi-test-cu (every test of its ALL family, -d -S, verbose) over the
# loopback LUNs' /dev/sg nodes, on each backend, for rtarget and then C LIO in the same boot;
# and over iscsi:// to each stack's iSCSI target on 127.0.0.1:3260 (fileio_iscsi: a fileio LUN
# mapped in node ACLs for both of the tool's initiator names).
# Each stack exports its backends at once (LUN i of two loopback TPGs, so the tests that need a
# second initiator, reservations and multipath, get one) and runs the suites on all of them in
# parallel: the debug VM has two CPUs and each run keeps about one busy. Each backend's rtarget
# outcomes are held to libiscsi.expect: a test that got worse fails the check; the table of
# differences with C LIO is printed. LIBISCSI_PRINT=1 prints every outcome in the
# expectations' format. LIBISCSI_LIO lists the backends C LIO runs on too (default "fileio
# fileio_iscsi": one backend per transport, which keeps make check within CI's time; "all";
# "none" for none).
# Outcomes: pass, fail, notimpl (the target lacks the command), skip. LIBISCSI_BACKENDS and
# LIBISCSI_SUITES narrow a developer's run; LIBISCSI_LOG=1 prints the log of every failed test
# (a regression prints its backend's always); LIBISCSI_SCSI_LOG=1 logs every SCSI command too.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=/tmp/libiscsi; rm -rf $OUT; mkdir -p $OUT

# NAME|PLUGIN|CONTROL|ATTRIBUTES (written where the stack accepts them)|SUITES (a regex of
# suites or tests; all if empty). Thin provisioning on, where the stack accepts it (C LIO's
# rd_mcp does not), so the thin-provisioning tests run instead of skipping. No medium of the
# three has atomic writes, so WriteAtomic16 also runs on iblock over a scsi_debug disk that has
# them (@atomic). Sanitize.Reset needs an OVERWRITE still running after its four seconds of
# sleeps, ABORT TASK, resets and a new login: it runs on iblock over a slow device (@slow: 64
# MiB of null_blk behind dm-delay, 250 ms per I/O), as real media are.
TP="emulate_tpu=1 emulate_tpws=1"
# Over iscsi:// every test logs in again and the debug VM is slow: the iSCSI suites and those
# that exercise the transfer paths (R2T, immediate data, Data-In, residuals), task management
# and a second session. The SCSI emulation behind them is the core's, which the loopback rows
# run whole. LIBISCSI_ISCSI_SUITES=".*" runs every suite over iSCSI too.
ISCSI_SUITES="iSCSI[a-zA-Z]*|TestUnitReady|Inquiry|Mandatory|ReadCapacity16|Read10|Read16|Write10|Write16|WriteVerify10|CompareAndWrite|WriteSame10|Unmap|Reserve6|ProutRegister|ProutReserve|PrinReadKeys|ReportSupportedOpcodes|MultipathIO|ExtendedCopy|Sanitize"
# fileio runs every suite; rd_mcp and iblock those whose answers depend on the backend (the
# rest is the core's emulation, the same on every backend), which keeps make check within
# CI's time. LIBISCSI_SUITES=".*" widens them again.
MEDIUM_SUITES="CompareAndWrite|ExtendedCopy|GetLBAStatus|OrWrite|Prefetch1[06]|Read(6|1[026])|ReadCapacity16|Unmap|Verify1[026]|Write1[026]|WriteSame1[06]|WriteVerify1[026]"
BACKENDS="rd_mcp|rd_mcp|rd_pages=16384|$TP|${LIBISCSI_SUITES:-$MEDIUM_SUITES}
fileio|fileio|fd_dev_name=$BK/conf.img,fd_dev_size=67108864|$TP|
iblock|iblock|udev_path=/dev/ram0|$TP|${LIBISCSI_SUITES:-$MEDIUM_SUITES}
iblock_atomic|iblock|udev_path=@atomic||WriteAtomic16
iblock_slow_iscsi|iblock|udev_path=@slow||Sanitize\\.Reset
fileio_iscsi|fileio|fd_dev_name=$BK/iscsi.img,fd_dev_size=67108864|$TP|${LIBISCSI_ISCSI_SUITES:-$ISCSI_SUITES}"
# The iSCSI target of the *_iscsi backends.
IQN=iqn.2003-01.org.rtarget.test:libiscsi
ITPG=$CFG/iscsi/$IQN/tpgt_1
if [ -n "${LIBISCSI_BACKENDS:-}" ]; then
    sel=$(tr ' ,' '||' <<< "$LIBISCSI_BACKENDS")
    BACKENDS=$(grep -E "^($sel)\|" <<< "$BACKENDS") || { echo "LIBISCSI_BACKENDS=$LIBISCSI_BACKENDS names no backend" >&2; exit 1; }
fi
nb=$(echo "$BACKENDS" | wc -l)
iscsi-test-cu -l | awk -F. 'NF == 3 && $1 == "ALL" { print $2 "." $3 }' |
    grep -E "^(${LIBISCSI_SUITES:-.*})(\.|$)" > $OUT/tests
# Each backend's tests: those of its suites.
while IFS='|' read -r b _ _ _ suites; do
    grep -E "^(${suites:-.*})(\.|$)" $OUT/tests > $OUT/$b.tests
done <<< "$BACKENDS"
LIO_ON=${LIBISCSI_LIO:-fileio fileio_iscsi}
tap_plan $((nb + 3))
unload_all
check "scratch storage" scratch_up

# suites SG1 SG2 OUT TESTS: every suite of TESTS, one iscsi-test-cu run each: a test that crashes the tool
# (some do over SG_IO, on any target) costs only itself: the tests of its suite that had not
# started then run one by one. The log goes to OUT.log, each suite's time to OUT.times.
suites() {
    local suite t0 rc t d a
    : > "$3.log"; : > "$3.times"
    # Whole suites in one run each; a suite only some of whose tests are listed, test by test.
    for suite in $(cut -d. -f1 "$4" | uniq | while read -r suite; do
        if [ "$(grep -c "^$suite\." "$4")" = "$(grep -c "^$suite\." $OUT/tests)" ]; then
            echo "$suite"
        else
            grep "^$suite\." "$4"
        fi
    done); do
        # A suite that changes a mode page leaves MODE PARAMETERS CHANGED pending on the
        # other nexus (SPC-4 7.5.2); the next suite expects a quiet one.
        for d in "$1" "$2"; do
            [ -c "$d" ] && for a in $(seq 8); do sg_turs "$d" >/dev/null 2>&1 && break; done
        done
        echo "### iscsi-test-cu ALL.$suite" >> "$3.log"
        t0=$SECONDS
        timeout 300 iscsi-test-cu -d -S ${LIBISCSI_SCSI_LOG:+-V} -t "ALL.$suite" "$1" "$2" >> "$3.log" 2>&1
        rc=$?
        [ $rc -ge 124 ] && echo "Suite $suite: iscsi-test-cu ended by signal or timeout (exit $rc)" | tee -a "$3.log" >&2
        if [ $rc -gt 124 ]; then
            # Killed by a signal (not timed out): the suite's tests that had not started yet
            # get a run each.
            for t in $(grep "^$suite\." "$4"); do
                sed -n "/^### iscsi-test-cu ALL.$suite\$/,\$p" "$3.log" | grep -q "Test: ${t#*.} \.\.\." && continue
                echo "### iscsi-test-cu ALL.$t" >> "$3.log"
                timeout 300 iscsi-test-cu -d -S ${LIBISCSI_SCSI_LOG:+-V} -t "ALL.$t" "$1" "$2" >> "$3.log" 2>&1
            done
        fi
        echo "$((SECONDS - t0)) $suite" >> "$3.times"
    done
}

# stack CORE_MODULE PROC_NAME SIDE BACKEND...: export each BACKEND as LUN i of both TPGs, run
# the suites on all of them at once, parse each run into $OUT/BACKEND.SIDE. Each LUN added
# under a live nexus raises REPORTED LUNS DATA HAS CHANGED on the others, which the tests do
# not expect: TEST UNIT READY takes the unit attentions first, as an initiator's scan does.
stack() {
    local core=$1 proc=$2 side=$3 i=0 j=0 b plugin control attrs dev a sg1 sg2 rc=0
    shift 3
    rm -f $BK/conf.img $BK/iscsi.img
    # C LIO writes its APTPL file under dbroot/pr on every REGISTER and fails the PROUT if it
    # cannot: both stacks get a scratch dbroot.
    mkdir -p $OUT/db/pr
    modprobe "$core" && echo $OUT/db > $CFG/dbroot || return 1
    for b in "$@"; do
        IFS='|' read -r _ plugin control attrs _ <<< "$(grep "^$b|" <<< "$BACKENDS")"
        # WriteAtomic16 writes up to 256 blocks atomically (its only bound is the maximum
        # transfer length): scsi_debug's atomic writes reach that far.
        [[ $control == *@atomic* ]] && { a=$(atomic_disk 256) || return 1; control=${control/@atomic//dev/$a}; }
        [[ $control == *@slow* ]] && { slow_disk || return 1; control=${control/@slow//dev/mapper/$SLOW}; }
        dev=$(setup_dev "$plugin" "$b" "$control") || return 1
        for a in $attrs; do echo "${a#*=}" > "$dev/attrib/${a%%=*}" 2>/dev/null; done
        if [[ $b == *_iscsi ]]; then
            iscsi_lun "$dev" $j || return 1
            j=$((j + 1))
            continue
        fi
        link_dev "$dev" $i && mkdir -p "$TPG2/lun/lun_$i" &&
            { [ -n "$(cat "$TPG2/nexus")" ] || echo "$NEXUS2" > "$TPG2/nexus"; } &&
            ln -s "$dev" "$TPG2/lun/lun_$i/link$i" || return 1
        i=$((i + 1))
    done
    i=0 j=0
    for b in "$@"; do
        if [[ $b == *_iscsi ]]; then
            suites "iscsi://127.0.0.1:3260/$IQN/$j" "iscsi://127.0.0.1:3260/$IQN/$j" "$OUT/$b.$side" $OUT/$b.tests &
            j=$((j + 1))
            continue
        fi
        sg1=$(lun_dev "$proc" scsi_generic $i 1) && sg2=$(lun_dev "$proc" scsi_generic $i 2) || return 1
        for a in $(seq 8); do sg_turs "$sg1" && sg_turs "$sg2" && break; done >/dev/null 2>&1
        suites "$sg1" "$sg2" "$OUT/$b.$side" $OUT/$b.tests &
        i=$((i + 1))
    done
    wait
    for b in "$@"; do
        python3 "$HERE/libiscsi.py" parse "$OUT/$b.$side.log" $OUT/$b.tests > "$OUT/$b.$side" || rc=1
    done
    return $rc
}
# libiscsi's two initiator names (its second one for the multipath and reservation tests).
LIBISCSI_INITIATORS="iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test-2"
SLOW=rtarget_libiscsi_slow
slow_disk() {
    dmsetup info $SLOW >/dev/null 2>&1 ||
        { modprobe dm-delay && dmsetup create $SLOW --table "0 131072 delay /dev/nullb0 0 250"; }
}
# iscsi_lun DEV J: DEV as LUN J of $IQN, mapped as LUN J in a node ACL for each of libiscsi's
# initiator names (no demo mode, no authentication), the portal made on first use; the same
# writes on either stack.
iscsi_lun() {
    local n
    mkdir -p "$ITPG/lun/lun_$2" && ln -s "$1" "$ITPG/lun/lun_$2/l$2" || return 1
    # No NOP-In: a test that sleeps a minute without reading its socket (Sanitize.Reset's
    # wait) would lose its connection, and log in again to a new nexus, each time.
    for n in $LIBISCSI_INITIATORS; do
        mkdir -p "$ITPG/acls/$n/lun_$2" && ln -s "$ITPG/lun/lun_$2" "$ITPG/acls/$n/lun_$2/m$2" &&
            echo 0 > "$ITPG/acls/$n/attrib/nopin_timeout" || return 1
    done
    [ -d "$ITPG/np/127.0.0.1:3260" ] && return 0
    mkdir "$ITPG/np/127.0.0.1:3260" && echo 0 > "$ITPG/attrib/generate_node_acls" &&
        echo 0 > "$ITPG/attrib/authentication" && echo 1 > "$ITPG/enable"
}
times() { # SIDE BACKEND...
    local b side=$1; shift
    for b in "$@"; do
        echo "$b: $side: $(awk '{ s += $1 } END { print s }' "$OUT/$b.$side.times") s; slowest suites: $(sort -rn "$OUT/$b.$side.times" | head -6 | tr '\n' ' ')"
    done 2>/dev/null | tap_diag
}

names=$(cut -d'|' -f1 <<< "$BACKENDS" | tr '\n' ' ')
check "rtarget: iscsi-test-cu ran each backend's tests on $names" stack rtarget_core rtarget_loop rtarget $names
unload_all
times rtarget $names
[ "$LIO_ON" = all ] && LIO_ON=$names
# Only backends of this run.
LIO_ON=$(for b in $LIO_ON; do [[ " $names " == *" $b "* ]] && echo -n "$b "; done)
if [ -z "$LIO_ON" ] || [ "${LIBISCSI_LIO:-}" = none ]; then
    tap_ok "C LIO: not run (LIBISCSI_LIO=none)"
else
    check "C LIO: iscsi-test-cu ran each backend's tests on $LIO_ON" stack target_core_mod tcm_loopback lio $LIO_ON
    unload_all
    times lio $LIO_ON
fi
for bname in $names; do
    lio=-
    [[ " $LIO_ON " == *" $bname "* ]] && lio=$OUT/$bname.lio
    report=$(python3 "$HERE/libiscsi.py" judge "$HERE/libiscsi.expect" "$bname" $OUT/$bname.rtarget $lio 2>&1); rc=$?
    printf '%s\n' "$report" | grep -v '^libiscsi-expect ' | tap_diag
    # The outcomes in libiscsi.expect's format, to update it from the log (grep 'libiscsi-expect').
    [ $rc -ne 0 ] || [ -n "${LIBISCSI_PRINT:-}" ] && printf '%s\n' "$report" | grep '^libiscsi-expect ' | tap_diag
    [ $rc -ne 0 ] || [ -n "${LIBISCSI_LOG:-}" ] &&
        python3 "$HERE/libiscsi.py" show $OUT/$bname.rtarget.log $OUT/$bname.rtarget | tap_diag
    if [ $rc -eq 0 ]; then tap_ok "$bname: no test worse than libiscsi.expect"; else tap_not_ok "$bname: no test worse than libiscsi.expect"; fi
done
dmsetup remove $SLOW 2>/dev/null
scratch_down
rmmod scsi_debug 2>/dev/null
tap_done
