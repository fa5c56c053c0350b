#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Node ACLs and mapped LUNs over iSCSI, on rtarget and on C LIO (iscsi_target_mod) in the same
# boot: an initiator without an ACL is refused; open-iscsi sees exactly the LUNs mapped to it,
# under their mapped numbers, with their write protection (changed live); a mapping added
# while logged in raises REPORTED LUNS DATA HAS CHANGED and a rescan finds it; CHAP one-way
# and mutual from the ACL's auth/, a wrong secret refused; a PR registration goes with its LUN's
# mapping; rmdir of the ACL ends its session.
# The TPG's attrib/, auth/ and param/ read as C LIO's, take and refuse the same values, and
# reach logins: demo mode with CHAP from the TPG's auth/, ImmediateData and
# MaxRecvDataSegmentLength from its param/.
# Then both targetcli generations build, save, clear and restore such a target on rtarget, and
# the second save equals the first.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
PDU="python3 $HERE/iscsi_pdu.py"
TC3=${RTARGET_CACHE:-/root/.cache/rtarget}/targetcli3/bin/targetcli
IQN=iqn.2003-01.org.rtarget.test:acl
I=$CFG/iscsi/$IQN/tpgt_1
R0=$CFG/core/rd_mcp_1/r0
R1=$CFG/core/rd_mcp_1/r1
OUT=/tmp/iscsi_acl; rm -rf $OUT; mkdir -p $OUT
tap_plan 49
unload_all; dmesg_mark
iscsid_up $OUT
INITIATOR=$(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi)
A=$I/acls/$INITIATOR
ALGS=SHA3-256,SHA256,SHA1,MD5

# stack MODULE...: ramdisks r0 and r1 as TPG LUNs 0 and 1 of $IQN on 127.0.0.1:3260, no demo
# mode; open-iscsi's initiator has an ACL mapping TPG LUN 1 as LUN 5, write-protected.
stack() {
    local d
    # C LIO writes its APTPL file under dbroot/pr on every REGISTER and fails the PROUT if it
    # cannot: both stacks get a scratch dbroot.
    mkdir -p $OUT/db/pr && modprobe -a "$@" && echo $OUT/db > $CFG/dbroot || return 1
    for d in $R0 $R1; do
        mkdir -p "$d" && echo rd_pages=4096 > "$d/control" && echo 1 > "$d/enable" || return 1
    done
    mkdir -p "$I/lun/lun_0" "$I/lun/lun_1" "$I/np/127.0.0.1:3260" && ln -s $R0 "$I/lun/lun_0/l0" &&
        ln -s $R1 "$I/lun/lun_1/l1" && echo 0 > "$I/attrib/generate_node_acls" &&
        echo 0 > "$I/attrib/authentication" && mkdir -p "$A/lun_5" && ln -s "$I/lun/lun_1" "$A/lun_5/m5" &&
        echo 1 > "$A/lun_5/write_protect" && echo 1 > "$I/enable"
}
node() { iscsiadm -m node -T $IQN -p 127.0.0.1:3260 "$@"; }
login() {
    iscsiadm -m discovery -t sendtargets -p 127.0.0.1:3260 -o new > /dev/null &&
        node -o update -n node.session.timeo.replacement_timeout -v 10 &&
        timeout 60 iscsiadm -m node -T $IQN -p 127.0.0.1:3260 --login > $OUT/login 2>&1
}
logout() { timeout 60 iscsiadm -m node -T $IQN -p 127.0.0.1:3260 --logout > /dev/null; }
forget() { iscsiadm -m node -o delete > /dev/null 2>&1; true; }
chap() { # USER SECRET [USER_IN SECRET_IN]: open-iscsi's CHAP settings for the node (digests:
    # $ALGS, all those LIO offers by default; this kernel's crypto API has no MD5)
    node -o update -n node.session.auth.authmethod -v CHAP && node -o update -n node.session.auth.chap_algs -v "$ALGS" &&
        node -o update -n node.session.auth.username -v "$1" && node -o update -n node.session.auth.password -v "$2" &&
        node -o update -n node.session.auth.username_in -v "${3:-}" && node -o update -n node.session.auth.password_in -v "${4:-}"
}
# luns: the LUN numbers of the session's SCSI devices, once the scan has settled (the bounds
# here are for a slow TCG guest).
luns() {
    local i l prev=x
    for i in $(seq 150); do
        l=$(ls -d /sys/class/iscsi_session/session*/device/target*/*:*:*:* 2>/dev/null | sed 's/.*://' | sort -n | xargs)
        [ -n "$l" ] && [ "$l" = "$prev" ] && { echo "$l"; return 0; }
        prev=$l; sleep 0.3
    done
    echo "$l"
}
disk() { # LUN: its /dev node
    local i b
    for i in $(seq 300); do
        for b in /sys/class/iscsi_session/session*/device/target*/*:0:0:$1/block/*; do
            [ -e "$b" ] && [ -e "/dev/${b##*/}" ] && { echo "/dev/${b##*/}"; return 0; }
        done
        sleep 0.2
    done
    return 1
}
sg_of() { local g; g=$(ls /sys/class/iscsi_session/session*/device/target*/*:0:0:$1/scsi_generic/ 2>/dev/null) && echo "/dev/$g"; }
# write10 LUN: a WRITE(10) of block 8 through the SCSI generic node (the disk of a
# write-protected LUN is read-only to the block layer).
write10() { sg_raw -s 512 -i /dev/zero "$(sg_of $1)" 2a 00 00 00 00 08 00 00 01 00 > $OUT/w10 2>&1; }
protected() {
    local d; d=$(disk 5) || return 1
    dd if="$d" of=/dev/null bs=4k count=8 iflag=direct 2>/dev/null || return 1
    if write10 5 || ! grep -qi 'data protect' $OUT/w10; then cat $OUT/w10; return 1; fi
    sg_modes -p 0x3f "$d" > $OUT/modes && grep -q 'WP=1' $OUT/modes || { cat $OUT/modes; false; }
}
writable() {
    echo 0 > "$A/lun_5/write_protect" && [ "$(cat "$A/lun_5/write_protect")" = 0 ] || return 1
    write10 5 || { cat $OUT/w10; false; }
}
remapped() {
    local d mark i; d=$(disk 5) || return 1
    mark="rtarget-selftests: remap $$.$RANDOM$RANDOM"; echo "$mark" > /dev/kmsg
    mkdir "$A/lun_7" && ln -s "$I/lun/lun_0" "$A/lun_7/m7" || return 1
    # The next command on the nexus gets the unit attention. (C LIO's was once not seen on a
    # slow CI run: there it is only reported; the check is of rtarget.)
    for i in $(seq 10); do
        dd if="$d" of=/dev/null bs=4k count=1 iflag=direct skip=9 2>/dev/null
        dmesg | sed -n "/$mark/,\$p" | grep -q 'LUN assignments on this target have changed' && break
        if [ $i = 10 ]; then
            echo "# $name: no REPORTED LUNS DATA HAS CHANGED"
            [ $name = rtarget ] && return 1
        fi
        sleep 0.5
    done
    iscsiadm -m session --rescan > /dev/null && [ "$(luns)" = "5 7" ]
}
# pr_unmapped: a PR registration made through LUN 7 goes when the ACL's mapping of it is
# removed (as LIO); mapped again, the LUN shows no key.
pr_unmapped() {
    local sg i; sg=$(sg_of 7) || return 1
    sg_persist -n --out --register --param-sark=0xabc "$sg" > $OUT/keys 2>&1 &&
        sg_persist -n -k "$sg" > $OUT/keys 2>&1 && grep -q 0xabc $OUT/keys || { cat $OUT/keys; return 1; }
    find "$A/lun_7" -maxdepth 1 -type l -delete && rmdir "$A/lun_7" && mkdir "$A/lun_7" &&
        ln -s "$I/lun/lun_0" "$A/lun_7/m7" || return 1
    # The first answer may be the unit attention of the new mapping.
    for i in 1 2 3; do sg_persist -n -k "$sg" > $OUT/keys 2>&1 && break; sleep 0.5; done
    grep -q 'there are NO registered reservation keys' $OUT/keys || { cat $OUT/keys; false; }
}
fio_verify() {
    timeout 300 fio --name=acl --filename="$(disk 7)" --direct=1 --ioengine=libaio --bs=4k --rw=randwrite \
        --size=8M --iodepth=16 --verify=crc32c --verify_fatal=1 --verify_state_save=0 --output=$OUT/fio &&
        grep -q 'err= 0' $OUT/fio
}
creds() { # USER SECRET [USER_MUTUAL SECRET_MUTUAL], written as rtslib does (no newline)
    printf %s "$1" > "$A/auth/userid" && printf %s "$2" > "$A/auth/password" &&
        printf %s "${3:-NULL}" > "$A/auth/userid_mutual" && printf %s "${4:-NULL}" > "$A/auth/password_mutual"
}
# refused: open-iscsi's login fails with an authorization failure (exit 24), not otherwise.
refused() { local r; login; r=$?; [ $r -eq 24 ] || { echo "iscsiadm exit $r"; cat $OUT/login; false; }; }
# session_ended: no session of open-iscsi is logged in any more (it retries and is refused).
session_ended() {
    local i
    for i in $(seq 300); do
        grep -qs LOGGED_IN /sys/class/iscsi_session/session*/state || return 0
        sleep 0.2
    done
    cat /sys/class/iscsi_session/session*/state; false
}
# acl_files SIDE: every file of the ACL as NAME=VALUE (before any login), for the comparison.
acl_files() {
    local f
    for f in "$A"/attrib/* "$A"/auth/* "$A"/param/* "$A"/cmdsn_depth "$A"/tag "$A"/lun_5/write_protect; do
        printf '%s=%s\n' "${f#$A/}" "$(cat "$f" 2>&1)"
    done > $OUT/$1.acl
    [ -s $OUT/$1.acl ]
}
# tpg_files SIDE: the TPG's attrib/, auth/ and param/ as NAME=VALUE.
tpg_files() {
    local f
    for f in "$I"/attrib/* "$I"/auth/* "$I"/param/*; do
        printf '%s=%s\n' "${f#$I/}" "$(cat "$f" 2>&1)"
    done > $OUT/$1.tpg
    [ "$(grep -c '^param/' $OUT/$1.tpg)" = 21 ]
}
stack_and_files() { local side=$1; shift; stack "$@" && acl_files $side && tpg_files $side; }
# tpg_stores SIDE: writes to a second TPG's param/, auth/ and attrib/authentication, each
# with whether it was taken and what the file reads then (the bounds and lists LIO checks).
tpg_stores() {
    local T=$CFG/iscsi/$IQN/tpgt_2 kv k v r
    mkdir "$T" || return 1
    for kv in HeaderDigest=None HeaderDigest=CRC32 DataDigest=None,CRC32C AuthMethod=SRP,CHAP,None \
        AuthMethod=bogus AuthMethod=CHAP,,None MaxRecvDataSegmentLength=511 MaxRecvDataSegmentLength=16777215 \
        MaxRecvDataSegmentLength=16777216 MaxBurstLength=512 FirstBurstLength=abc MaxConnections=0 \
        MaxConnections=65535 ErrorRecoveryLevel=3 ErrorRecoveryLevel=2 InitialR2T=No InitialR2T=yes \
        "TargetAlias=my alias" TargetAlias=a,b DefaultTime2Wait=3600 DefaultTime2Wait=3601 \
        DefaultTime2Retain=0 OFMarkInt=2048~65535 IFMarker=Yes MaxOutstandingR2T=8 DataPDUInOrder=No; do
        k=${kv%%=*} v=${kv#*=}
        printf %s "$v" > "$T/param/$k" 2>/dev/null; r=$?
        echo "param/$k <- $v: $r, reads $(cat "$T/param/$k")"
    done > $OUT/$1.stores
    echo 8192 > "$T/param/MaxRecvDataSegmentLength" && echo "echo: $(cat "$T/param/MaxRecvDataSegmentLength")" >> $OUT/$1.stores
    for v in 1 0 2; do
        echo $v > "$T/attrib/authentication" 2>/dev/null; r=$?
        echo "authentication <- $v: $r, AuthMethod $(cat "$T/param/AuthMethod")"
    done >> $OUT/$1.stores
    for kv in userid=tu password=tp userid_mutual=tm password_mutual=tmp userid_mutual=NULL; do
        printf %s "${kv#*=}" > "$T/auth/${kv%%=*}"
        echo "auth/${kv%%=*} <- ${kv#*=}: userid $(cat "$T/auth/userid") authenticate_target $(cat "$T/auth/authenticate_target")"
    done >> $OUT/$1.stores
    rmdir "$T" && [ "$(wc -l < $OUT/$1.stores)" = 35 ]
}
# demo_chap: demo mode with authentication; CHAP with the TPG's credentials, and param/'s
# ImmediateData=No and 64 KiB segments in the session open-iscsi negotiates. (C LIO declares
# its MaxXmitDataSegmentLength as what it receives when the initiator declares its own, rtarget
# its MaxRecvDataSegmentLength: both are set.)
demo_chap() {
    printf %s No > "$I/param/ImmediateData" && printf %s 65536 > "$I/param/MaxRecvDataSegmentLength" &&
        printf %s 65536 > "$I/param/MaxXmitDataSegmentLength" &&
        chap u-demo secret-demo-1 && login && [ "$(luns)" = "0 1" ] &&
        iscsiadm -m session -P 2 > $OUT/session.txt && grep -q 'ImmediateData: No' $OUT/session.txt &&
        grep -q 'MaxXmitDataSegmentLength: 65536' $OUT/session.txt && logout ||
        { cat $OUT/session.txt 2>/dev/null; logout; false; }
}
pinged() { # the ACL's NOP-In timers at 3 s: a ping answered, the next one not: the connection ends
    local r
    echo 3 > "$A/attrib/nopin_timeout" && echo 3 > "$A/attrib/nopin_response_timeout" || return 1
    r=$($PDU ping 127.0.0.1 3260 $IQN "$INITIATOR"); echo "$r"
    echo 15 > "$A/attrib/nopin_timeout"; echo 30 > "$A/attrib/nopin_response_timeout"
    [ "$r" = ok ]
}
acl_removed() { # [SIDE]: C LIO's session is logged out first (see below)
    local m
    login && [ "$(luns)" = "5 7" ] || return 1
    [ "${1:-}" = C-LIO ] && { logout || return 1; }
    for m in "$A"/lun_*/; do find "$m" -maxdepth 1 -type l -delete; rmdir "$m" || return 1; done
    timeout 60 rmdir "$A" || return 1
    session_ended || return 1
    timeout 60 iscsiadm -m node -T $IQN -p 127.0.0.1:3260 --logout > /dev/null 2>&1
    # Open-iscsi's own name is now refused.
    [ "$($PDU normal 127.0.0.1 3260 $IQN "$INITIATOR")" = 0202 ]
}

for side in "rtarget rtarget_core rtarget_iscsi" "C-LIO target_core_mod iscsi_target_mod"; do
    set -- $side
    name=$1; shift
    check "$name: target with two LUNs, an ACL mapping LUN 1 as 5 (write-protected)" stack_and_files $name "$@"
    check "$name: an initiator without an ACL: FORBIDDEN (0202h)" eval '[ "$($PDU normal 127.0.0.1 3260 $IQN)" = 0202 ]'
    check "$name: open-iscsi logs in under its ACL and sees exactly LUN 5" eval 'login && [ "$(luns)" = 5 ]'
    check "$name: LUN 5 refuses WRITE(10) (DATA PROTECT), MODE SENSE says WP, reads work" protected
    check "$name: write_protect=0 while logged in: the same WRITE(10) succeeds" writable
    check "$name: TPG LUN 0 mapped as 7 while logged in: REPORTED LUNS DATA HAS CHANGED, a rescan finds 5 and 7" remapped
    [ $name = rtarget ] && check "$name: fio crc32c verify through LUN 7" fio_verify
    check "$name: a PR registration through LUN 7 goes with its mapping (mapped again: no key)" pr_unmapped
    check "$name: logout" logout
    # rtarget only: C LIO leaves this raw login in the operational stage (T bit clear).
    [ $name = rtarget ] && check "$name: an idle session gets NOP-In pings (nopin_timeout 3); one unanswered for nopin_response_timeout (3 s) ends it" pinged
    echo 1 > "$I/attrib/authentication"
    [ $name = rtarget ] && check "$name: CHAP required, no credentials in the ACL: login refused" eval 'chap u1 secret-one-1 && refused'
    creds u1 secret-one-1
    check "$name: CHAP with a wrong secret: login refused" eval 'chap u1 wrong-secret-1 && refused'
    check "$name: one-way CHAP: login, LUNs 5 and 7, logout" eval 'chap u1 secret-one-1 && login && [ "$(luns)" = "5 7" ] && logout'
    if [ $name = rtarget ]; then
        check "$name: one-way CHAP with MD5 only (as Windows and VMware initiators): the kernel's MD5 library stands in" \
            eval '! grep -qE "^name +: md5$" /proc/crypto && ALGS=MD5 chap u1 secret-one-1 && login && logout'
    fi
    creds u1 secret-one-1 t1 secret-two-22
    check "$name: mutual CHAP: the target proves its secret; login and logout" eval 'chap u1 secret-one-1 t1 secret-two-22 && login && logout'
    [ $name = rtarget ] && check "$name: mutual CHAP, the initiator expects another target secret: refused" eval 'chap u1 secret-one-1 t1 other-secret-3 && ! login'
    chap u1 secret-one-1 t1 secret-two-22
    # C LIO's session that ends without a logout trips lockdep in its time2retain handler
    # (se_tpg->session_lock against tpg_state_lock), so on C LIO the ACL goes after a logout.
    check "$name: rmdir of the ACL (rtarget: while logged in) ends the session, no hang; the initiator is then refused" acl_removed $name
    check "$name: a second TPG's param/, auth/ and authentication take and refuse values" tpg_stores $name
    echo 1 > "$I/attrib/generate_node_acls"
    printf %s u-demo > "$I/auth/userid"; printf %s secret-demo-1 > "$I/auth/password"
    check "$name: demo mode with authentication: CHAP from the TPG's auth/; LUNs 0 and 1; param/ reaches the session" demo_chap
    check "$name: demo mode with authentication, a wrong secret: refused" eval 'chap u-demo wrong-secret-1 && refused'
    forget; teardown_iscsi; teardown_lun; unload_all
done

check "the ACL's files (attrib/, auth/, param/, cmdsn_depth, tag, write_protect) read as C LIO's" \
    eval 'diff -u $OUT/C-LIO.acl $OUT/rtarget.acl && wc -l < $OUT/rtarget.acl'

check "the TPG's attrib/, auth/ and param/ read as C LIO's" eval 'diff -u $OUT/C-LIO.tpg $OUT/rtarget.tpg && wc -l < $OUT/rtarget.tpg'
check "the TPG's stores are taken, refused and read back as on C LIO" eval 'diff -u $OUT/C-LIO.stores $OUT/rtarget.stores'

# Both targetcli generations on rtarget: portals, an ACL with CHAP and two mapped LUNs.
session() { # LOG TARGETCLI COMMAND...
    local log=$1 tc=$2; shift 2
    printf '%s\n' "$@" | $tc > "$log" 2>&1
}
generation() { # LABEL TARGETCLI
    local g=$1 tc=$2 log=$OUT/$1.txt t=/iscsi/$IQN/tpg1
    rm -f $OUT/$g-1.json $OUT/$g-2.json
    check "$g: modprobe rtarget_core" modprobe rtarget_core
    session $log "$tc" "/backstores/ramdisk create name=r0 size=16M" "/iscsi create $IQN" \
        "$t/portals delete 0.0.0.0 3260" "$t/portals delete ::0 3260" "$t/portals create 127.0.0.1 3260" \
        "$t/luns create /backstores/ramdisk/r0" "$t/acls create $INITIATOR" \
        "$t/acls/$INITIATOR create 9 lun0 write_protect=1" "$t/acls/$INITIATOR set auth userid=u1 password=secret-one-1" \
        "$t/acls/$INITIATOR set attribute dataout_timeout=10" "$t set auth userid=tu password=tp" \
        "$t set parameter MaxBurstLength=131072" "ls" "saveconfig $OUT/$g-1.json" \
        "clearconfig confirm=True" "restoreconfig $OUT/$g-1.json" "saveconfig $OUT/$g-2.json" "clearconfig confirm=True"
    check "$g: ls shows the ACL and its mapped LUNs 0 and 9 (9 read-only)" sh -c "
        grep -q 'acls .*\[ACLs: 1\]' $log && grep -q 'mapped_lun0 .*lun0 ramdisk/r0 (rw)' $log &&
        grep -q 'mapped_lun9 .*lun0 ramdisk/r0 (ro)' $log || { cat $log; false; }"
    check "$g: the saved JSON holds the ACL, CHAP, the attribute, both mapped LUNs, the TPG's CHAP and parameters" python3 -c "
import json; c = json.load(open('$OUT/$g-1.json'))
t = [t for t in c['targets'] if t['wwn'] == '$IQN'][0]['tpgs'][0]
a = [a for a in t['node_acls'] if a['node_wwn'] == '$INITIATOR'][0]
m = sorted((l['index'], l['tpg_lun'], l['write_protect']) for l in a['mapped_luns'])
assert m == [(0, 0, False), (9, 0, True)], m
assert a['chap_userid'] == 'u1' and a['chap_password'] == 'secret-one-1', a
assert a['attributes']['dataout_timeout'] == 10, a['attributes']
assert [p['ip_address'] for p in t['portals']] == ['127.0.0.1'], t['portals']
assert t['chap_userid'] == 'tu' and t['chap_password'] == 'tp', t
p = t['parameters']
assert p['MaxBurstLength'] == '131072' and p['AuthMethod'] == 'CHAP,None' and len(p) == 21, p"
    check "$g: clearconfig and restoreconfig: the second saveconfig equals the first" \
        cmp $OUT/$g-1.json $OUT/$g-2.json
    check "$g: clearconfig leaves nothing behind; the modules unload" eval \
        '! ls -d $CFG/core/*_*/* $CFG/iscsi/iqn.* 2>/dev/null | grep -q . && rmdir $CFG/iscsi &&
         { rmdir $CFG/loopback 2>/dev/null; unload_all; ! loaded rtarget_core; }'
}
generation targetcli-2 targetcli
generation targetcli-3 "$TC3"
check "no oops, warning or lockdep report" dmesg_clean
tap_done
