#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# SANITIZE on every backend (thin, so BLOCK ERASE is offered), through the loopback LUN: an
# OVERWRITE leaves its pattern in the first and last blocks, as does INVERT with two passes;
# BLOCK ERASE leaves zeroes and deallocated blocks; bad CDBs and parameter lists get INVALID
# FIELD; while an OVERWRITE of several passes runs, TEST UNIT READY gets NOT READY, SANITIZE IN
# PROGRESS, INQUIRY still passes and REQUEST SENSE reports the progress; with IMMED the command
# is answered at once and the operation goes on; a LUN reset does not stop it. (C LIO has no
# SANITIZE.)
. "$(dirname "$0")/lib.sh"
W=/tmp/sanitize; rm -rf $W; mkdir -p $W
BACKENDS="rd_mcp|rd_pages=4096
fileio|fd_dev_name=$BK/sanitize.img,fd_dev_size=16777216"
PER=12
unload_all; dmesg_mark
scratch_up >/dev/null 2>&1
# iblock on the scratch RAM disk, when it can deallocate.
[ "$(cat /sys/block/ram0/queue/discard_max_bytes 2>/dev/null)" -gt 0 ] 2>/dev/null &&
    BACKENDS="$BACKENDS
iblock|udev_path=/dev/ram0"
tap_plan $(( $(echo "$BACKENDS" | wc -l) * PER + 2 ))
check "scratch storage" scratch_up
sgio_up
modprobe rtarget_core

OVERWRITE=48010000000000000800
BLOCK_ERASE=48020000000000000000
# pattern HEX4 INVERT: 512 bytes of the 4-byte pattern, inverted or not.
pattern() {
    local p=$1
    [ "$2" = 1 ] && p=$(printf '%08x' $(( ~0x$1 & 0xffffffff )))
    for _ in $(seq 128); do printf '%s' "$p"; done | xxd -r -p
}
# holds SD LBA FILE: the block at LBA (O_DIRECT) is FILE's 512 bytes.
holds() { dd if="$1" bs=512 skip="$2" count=1 iflag=direct status=none | cmp - "$3"; }
# answer_is SG CDB ARGS...: the answer matches the ERE in $want.
answer_is() { local out; out=$(sgio "$@"); echo "$out"; [[ $out =~ $want ]]; }
GOOD='^status=00'
INVALID_CDB='^status=02 .*sense=700005[0-9a-f]{18}2400'
INVALID_PARAM='^status=02 .*sense=700005[0-9a-f]{18}2600'
IN_PROGRESS='^status=02 .*sense=700002[0-9a-f]{18}041b'

thin_lun() { echo 1 > "$1/attrib/emulate_tpu" && echo 1 > "$1/attrib/emulate_tpws" && link_dev "$1"; }
# overwrites SG PARAMS SD LAST EXPECTED: SANITIZE OVERWRITE; the first and last blocks hold
# EXPECTED.
overwrites() {
    want=$GOOD answer_is "$1" $OVERWRITE --out "$2" && holds "$3" 0 "$5" && holds "$3" "$4" "$5"
}
# erased SG SD LAST: zeroes in the first and last blocks; LBA 0 deallocated (GET LBA STATUS,
# but on iblock, where the core cannot ask the block device).
erased() {
    local out d
    holds "$2" 0 $W/zero && holds "$2" "$3" $W/zero || return 1
    [ "$plugin" = iblock ] && return 0
    out=$(sgio "$1" 9e120000000000000000000000200000 --in 32); echo "$out"
    d=${out#*data=}; [ "${d:40:2}" = 01 ]
}
bad_cdbs() {
    answer_is "$1" 48410000000000000800 --out 01000004deadbeef &&
        answer_is "$1" 48020000000000000800 --out 01000004deadbeef
}
bad_lists() {
    answer_is "$1" $OVERWRITE --out 00000004deadbeef &&
        answer_is "$1" 48010000000000020400 --out "01000204$(printf '00%.0s' $(seq 512))"
}
# in_progress SG SD: an OVERWRITE of about 512 MiB in all (2 to 31 passes; SG_IO waits 120 s)
# in the background; TEST UNIT READY polled until it says SANITIZE IN PROGRESS, INQUIRY passes
# meanwhile, and REQUEST SENSE, sampled while it runs, says SANITIZE IN PROGRESS with a
# progress that never goes back and moves; then the OVERWRITE ends GOOD and REQUEST SENSE
# says NO SENSE.
in_progress() {
    local bg seen=0 out p first=-1 last=-1 n=0
    SGIO_TIMEOUT_MS=120000 python3 "$_sgio_py" "$1" $OVERWRITE --out "$(passes "$2")000004a5a5a5a5" > $W/bg &
    bg=$!
    for _ in $(seq 2000); do
        out=$(sgio "$1" 000000000000)
        [[ $out =~ $IN_PROGRESS ]] && { seen=1; break; }
        kill -0 $bg 2>/dev/null || break
    done
    if [ $seen = 1 ]; then
        out=$(sgio "$1" 120000002400 --in 36)
        [[ $out == status=00* ]] || { echo "INQUIRY during SANITIZE: $out"; seen=0; }
        while kill -0 $bg 2>/dev/null; do
            # Once the OVERWRITE has ended (its tool may still be exiting), NO SENSE.
            out=$(sgio "$1" 030000001200 --in 18)
            if [[ $out =~ ^status=00.*data=700002000000000a00000000041b0080([0-9a-f]{4})$ ]]; then
                p=$((16#${BASH_REMATCH[1]})); n=$((n + 1))
                [ $first -ge 0 ] || first=$p
                [ $p -ge $last ] || { echo "REQUEST SENSE: progress $last, then $p"; seen=0; }
                last=$p
            elif ! [[ $out =~ ^status=00.*data=700000 ]]; then
                echo "REQUEST SENSE during SANITIZE: $out"; seen=0
            fi
        done
    fi
    wait $bg
    echo "SANITIZE: $(cat $W/bg); REQUEST SENSE: $n samples, progress $first to $last (of 65536)"
    [ $seen = 1 ] && [ $n -ge 2 ] && [ $last -gt $first ] && grep -q '^status=00' $W/bg &&
        [[ $(sgio "$1" 000000000000) == status=00* ]] &&
        [[ $(sgio "$1" 030000001200 --in 18) =~ ^status=00.*data=700000 ]]
}

# passes SD: the OVERWRITE COUNT that writes about 512 MiB in all (2 to 31).
passes() {
    local n=$(( (512 << 20) / $(blockdev --getsize64 "$1") ))
    printf '%02x' $(( n < 2 ? 2 : n > 31 ? 31 : n ))
}
# not_ready_then_done SG SD LAST PATTERN: TEST UNIT READY says SANITIZE IN PROGRESS (after
# any unit attention), then GOOD within 120 s; the first and last blocks then hold PATTERN.
not_ready_then_done() {
    local out i
    for i in 1 2 3 4; do
        out=$(sgio "$1" 000000000000)
        [[ $out =~ sense=700006 ]] || break
    done
    [[ $out =~ $IN_PROGRESS ]] || { echo "TEST UNIT READY after the start: $out"; return 1; }
    for i in $(seq 1200); do
        out=$(sgio "$1" 000000000000)
        [[ $out == status=00* ]] && break
        [[ $out =~ $IN_PROGRESS ]] || { echo "TEST UNIT READY: $out"; return 1; }
        sleep 0.1
    done
    echo "TEST UNIT READY at the end: $out"
    # A reset makes sd read the capacity again, which NOT READY left at 0.
    echo 1 > "/sys/block/${2##*/}/device/rescan"
    pattern "$4" 0 > $W/p_end
    [[ $out == status=00* ]] && holds "$2" 0 $W/p_end && holds "$2" "$3" $W/p_end
}
# immed SG SD LAST: an OVERWRITE with IMMED is answered GOOD while it runs.
immed() {
    local out
    out=$(sgio "$1" 48810000000000000800 --out "$(passes "$2")0000045a5a5a5a"); echo "SANITIZE: $out"
    [[ $out == status=00* ]] && not_ready_then_done "$@" 5a5a5a5a
}
# survives_reset SG SD LAST: an OVERWRITE without IMMED running, a LUN reset (sg_reset -d)
# succeeds at once and the operation goes on to its end.
survives_reset() {
    local bg out i rc
    SGIO_TIMEOUT_MS=120000 python3 "$_sgio_py" "$1" $OVERWRITE --out "$(passes "$2")0000043c3c3c3c" > $W/bg &
    bg=$!
    for i in $(seq 2000); do
        out=$(sgio "$1" 000000000000)
        [[ $out =~ $IN_PROGRESS ]] && break
    done
    [[ $out =~ $IN_PROGRESS ]] || { echo "never in progress: $out"; kill $bg; return 1; }
    timeout 30 sg_reset -d "$2"; rc=$?
    wait $bg
    echo "sg_reset: exit $rc; the SANITIZE: $(cat $W/bg)"
    [ $rc = 0 ] && not_ready_then_done "$@" 3c3c3c3c
}
# stops_when_gone SG SD DEV: with an OVERWRITE (IMMED) running, the LUN and the device go
# within 60 s, and the operation says it stopped.
stops_when_gone() {
    local out
    out=$(sgio "$1" 48810000000000000800 --out "$(passes "$2")000004c3c3c3c3"); echo "SANITIZE: $out"
    [[ $out == status=00* ]] || return 1
    out=$(sgio "$1" 000000000000); echo "TEST UNIT READY: $out"
    [[ $out =~ $IN_PROGRESS ]] || return 1
    teardown_lun &
    local td=$! i
    for i in $(seq 600); do kill -0 $td 2>/dev/null || break; sleep 0.1; done
    kill -0 $td 2>/dev/null && { echo "teardown still running after 60 s"; return 1; }
    wait $td
    [ ! -e "$3" ] && dmesg_new | grep 'SANITIZE stopped: the device goes'
}

while IFS='|' read -r plugin control; do
    rm -f $BK/sanitize.img
    dev=$(setup_dev "$plugin" sanitize "$control")
    check "$plugin: a thin device on a LUN" thin_lun "$dev"
    sg=$(lun_dev rtarget_loop scsi_generic); sd=$(lun_dev rtarget_loop block)
    sgio "$sg" 000000000000 >/dev/null   # the power-on attention
    last=$(( $(blockdev --getsz "$sd") - 1 ))
    head -c 512 /dev/urandom > $W/random
    dd if=$W/random of="$sd" bs=512 seek=$last oflag=direct status=none
    pattern deadbeef 0 > $W/p; pattern 0f0f0f0f 0 > $W/last_pass; head -c 512 /dev/zero > $W/zero
    check "$plugin: OVERWRITE with deadbeef: the first and last blocks hold it" \
        overwrites "$sg" 01000004deadbeef "$sd" $last $W/p
    check "$plugin: OVERWRITE, INVERT, two passes: the last pass leaves the pattern as sent" \
        overwrites "$sg" 820000040f0f0f0f "$sd" $last $W/last_pass
    want=$GOOD check "$plugin: BLOCK ERASE" answer_is "$sg" $BLOCK_ERASE
    check "$plugin: after BLOCK ERASE: zeroes, and GET LBA STATUS says deallocated" erased "$sg" "$sd" $last
    want=$INVALID_CDB check "$plugin: CRYPTO ERASE (not offered): INVALID FIELD IN CDB" \
        answer_is "$sg" 48030000000000000000
    want=$INVALID_CDB check "$plugin: a reserved bit, BLOCK ERASE with a parameter list: INVALID FIELD IN CDB" \
        bad_cdbs "$sg"
    want=$INVALID_PARAM check "$plugin: OVERWRITE COUNT 0, a pattern longer than a block: INVALID FIELD IN PARAMETER LIST" \
        bad_lists "$sg"
    check "$plugin: while an OVERWRITE runs: NOT READY, SANITIZE IN PROGRESS; INQUIRY passes; REQUEST SENSE shows progress" in_progress "$sg" "$sd"
    check "$plugin: with IMMED: GOOD at once, NOT READY until the OVERWRITE ends, then its pattern" \
        immed "$sg" "$sd" $last
    check "$plugin: a LUN reset during an OVERWRITE succeeds; the OVERWRITE goes on to its end" \
        survives_reset "$sg" "$sd" $last
    check "$plugin: the LUN and device go during an OVERWRITE, which stops" stops_when_gone "$sg" "$sd" "$dev"
done <<< "$BACKENDS"
check "no oops, warning or leak" dmesg_clean
tap_done
