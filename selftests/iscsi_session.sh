#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# iSCSI normal sessions (demo mode: generate_node_acls=1): open-iscsi logs in over the guest's
# loopback, fio writes and verifies through the LUN (4k random with immediate data, 256k
# sequential with R2Ts), then logs out, on rtarget and on C LIO (iscsi_target_mod) in the same
# boot. Then on rtarget: a raw-PDU session (well-behaved and abused commands, Data-Out, task
# management, broken connections), demo_mode_write_protect, login refusals, reinstatement, a
# connection dropped under fio and recovered, the portal removed under fio; no splat; unload.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
PDU="python3 $HERE/iscsi_pdu.py"
IQN=iqn.2003-01.org.rtarget.test:session
I=$CFG/iscsi/$IQN/tpgt_1
DEV=$CFG/core/rd_mcp_1/r0
OUT=/tmp/iscsi_session; rm -rf $OUT; mkdir -p $OUT
tap_plan 24
unload_all; dmesg_mark
iscsid_up $OUT
INITIATOR=$(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi)

# stack MODULE...: a 64 MiB ramdisk as LUN 0 of $IQN on 127.0.0.1:3260, demo mode, writable.
stack() {
    modprobe -a "$@" && mkdir -p "$DEV" && echo rd_pages=16384 > "$DEV/control" && echo 1 > "$DEV/enable" &&
        mkdir -p "$I/lun/lun_0" "$I/np/127.0.0.1:3260" && ln -s "$DEV" "$I/lun/lun_0/l0" &&
        echo 1 > "$I/attrib/generate_node_acls" && echo 0 > "$I/attrib/authentication" &&
        echo 0 > "$I/attrib/demo_mode_write_protect" && echo 1 > "$I/enable"
}
# login: discovery and login by open-iscsi (recovery given up after 10 s); waits for the disk.
login() {
    iscsiadm -m discovery -t sendtargets -p 127.0.0.1:3260 -o new > /dev/null &&
        iscsiadm -m node -T $IQN -p 127.0.0.1:3260 -o update -n node.session.timeo.replacement_timeout -v 10 &&
        timeout 60 iscsiadm -m node -T $IQN -p 127.0.0.1:3260 --login > /dev/null && disk > /dev/null
}
# disk: the /dev node of LUN 0 of the iSCSI session (waits up to 20 s).
disk() {
    local i b
    for i in $(seq 100); do
        for b in /sys/class/iscsi_session/session*/device/target*/*:0:0:0/block/*; do
            [ -e "$b" ] && [ -e "/dev/${b##*/}" ] && { echo "/dev/${b##*/}"; return 0; }
        done
        sleep 0.2
    done
    return 1
}
logout() { timeout 60 iscsiadm -m node -T $IQN -p 127.0.0.1:3260 --logout > /dev/null; }
forget() { iscsiadm -m node -o delete > /dev/null 2>&1; true; }
fio_verify() { # NAME BS RW SIZE [SECONDS]
    timeout 300 fio --name="$1" --filename="$(disk)" --direct=1 --ioengine=libaio --bs="$2" --rw="$3" \
        --size="$4" --iodepth=16 --verify=crc32c --verify_fatal=1 --verify_state_save=0 \
        ${5:+--runtime=$5 --time_based} --output="$OUT/$1.fio" && grep -q 'err= 0' "$OUT/$1.fio"
}

for side in "rtarget rtarget_core rtarget_iscsi" "C-LIO target_core_mod iscsi_target_mod"; do
    set -- $side
    name=$1; shift
    check "$name: demo-mode target, open-iscsi logs in and LUN 0 appears" eval "stack $* && login"
    check "$name: fio 4k random writes (immediate data), crc32c verified" fio_verify "$name-4k" 4k randwrite 16M
    check "$name: fio 256k sequential writes (R2Ts), crc32c verified" fio_verify "$name-256k" 256k write 32M
    check "$name: logout" logout
    forget; teardown_iscsi; teardown_lun; unload_all
done

# status ATTR VALUE: the status of a raw login with attrib/ATTR (or enable) set to VALUE,
# which is set back after.
status() {
    local f=$I/attrib/$1 old r; [ "$1" = enable ] && f=$I/enable
    old=$(cat "$f") && echo "$2" > "$f" && r=$($PDU normal 127.0.0.1 3260 $IQN); echo "$old" > "$f"; echo "$r"
}
write_protected() {
    local d
    echo 1 > $I/attrib/demo_mode_write_protect && login && d=$(disk) &&
        dd if="$d" of=/dev/null bs=4k count=8 iflag=direct 2>/dev/null &&
        ! dd if=/dev/zero of="$d" bs=4k count=1 oflag=direct 2> $OUT/wp && cat $OUT/wp &&
        sg_modes -p 0x3f "$d" > $OUT/modes && grep -q 'WP=1' $OUT/modes
}
recovered() {
    local f
    login || return 1
    fio_verify recover 4k randwrite 16M 15 & f=$!
    sleep 4
    rmdir $I/np/127.0.0.1:3260 && sleep 1 && mkdir $I/np/127.0.0.1:3260 || { kill $f; return 1; }
    wait $f
}
portal_removed() {
    local d f r
    d=$(disk) || return 1
    timeout 120 fio --name=gone --filename="$d" --direct=1 --ioengine=libaio --bs=4k --rw=randwrite \
        --size=16M --iodepth=16 --runtime=60 --time_based --output=$OUT/gone.fio & f=$!
    sleep 3
    timeout 10 rmdir $I/np/127.0.0.1:3260 || return 1
    wait $f; r=$?
    grep -E 'err=|IOPS' $OUT/gone.fio
    [ $r -ne 0 ] && [ $r -ne 124 ]
}

check "rtarget again" stack rtarget_core rtarget_iscsi
check "raw session: commands, Data-Out, task management, abuse, broken connections" \
    $PDU session 127.0.0.1 3260 $IQN
check "an unknown target: NOT FOUND (0203h)" eval '[ "$($PDU normal 127.0.0.1 3260 $IQN.x)" = 0203 ]'
check "generate_node_acls=0 without ACLs: FORBIDDEN (0202h), as C LIO" eval '[ "$(status generate_node_acls 0)" = 0202 ]'
check "authentication=1 in demo mode without credentials: AUTHENTICATION FAILURE (0201h)" \
    eval '[ "$(status authentication 1)" = 0201 ]'
check "a TPG that is not enabled: SERVICE UNAVAILABLE (0301h)" eval '[ "$(status enable 0)" = 0301 ]'
check "demo_mode_write_protect=1: WRITE PROTECTED, MODE SENSE says WP, reads work" write_protected
check "dynamic_sessions lists the logged-in initiator" eval 'cat $I/dynamic_sessions | tee $OUT/dyn; grep -qx "$INITIATOR" $OUT/dyn'
check "logout; the session is gone from dynamic_sessions" eval 'logout && [ -z "$(cat $I/dynamic_sessions)" ]'
echo 0 > $I/attrib/demo_mode_write_protect
check "raw sessions: a second login of the same initiator port ends the first (reinstatement)" \
    $PDU reinstate 127.0.0.1 3260 $IQN
check "the target drops the connection during fio (portal removed and made again): open-iscsi recovers, fio verifies" recovered
check "rmdir of the portal during fio returns at once; the session ends and fio fails, no hang" portal_removed
check "open-iscsi logs out of the failed session" eval 'logout || iscsiadm -m session'
forget
refuse "rmmod of rtarget_iscsi while its tree exists" rmmod rtarget_iscsi
teardown_iscsi; teardown_lun
check "then every session, command and pool is gone: both modules unload" eval 'rmmod rtarget_iscsi && rmmod rtarget_core'
check "no oops, warning or lockdep report" dmesg_clean
dmesg_new | grep -iE 'iscsi|rtarget' | tail -20 | tap_diag
tap_done
