#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The iSCSI fabric, first stage (discovery): LIO's configfs tree for iscsi/<iqn>/tpgt_N
# (enable, attrib/ with LIO's defaults and bounds, np/ portals on IPv4, IPv6 and dual-stack
# [::0]); discovery sessions, with and without CRC32C digests and CHAP (one-way and mutual,
# discovery_auth/), from open-iscsi's iscsiadm and from a raw-PDU client, whose
# SendTargets answer must equal C LIO's (iscsi_target_mod) in the same boot; a normal login
# without an ACL refused (iscsi_session.sh covers sessions); a malformed-PDU battery while a good session keeps
# working; a portal removed under a live session.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
PDU="python3 $HERE/iscsi_pdu.py"
IQN=iqn.2003-01.org.rtarget.test:disc
IQN2=iqn.2003-01.org.rtarget.test:hidden
I=$CFG/iscsi/$IQN
I2=$CFG/iscsi/$IQN2
OUT=/tmp/iscsi; rm -rf $OUT; mkdir -p $OUT
tap_plan 39
unload_all; dmesg_mark
iscsid_up $OUT

# side CORE FABRIC_MODULE OUT: the same configfs writes on either stack, then SendTargets from
# the raw client: one enabled target on 127.0.0.1:3260, one TPG on 127.0.0.2:3260 not enabled.
side() {
    modprobe "$1" && mkdir -p "$I/tpgt_1/np/127.0.0.1:3260" "$I2/tpgt_1/np/127.0.0.2:3260" &&
        [ -d "/sys/module/$2" ] && echo 1 > "$I/tpgt_1/enable" &&
        $PDU discover 127.0.0.1 3260 > "$3"
}

check "rtarget: mkdir target/iscsi loads rtarget_iscsi" sh -c "modprobe rtarget_core && mkdir $CFG/iscsi && [ -d /sys/module/rtarget_iscsi ]"
refuse "a target name without iqn., eui. or naa. is refused" mkdir "$CFG/iscsi/bogus.example"
check "mkdir $IQN/tpgt_1" mkdir -p "$I/tpgt_1"
check "attrib/ has LIO's defaults" sh -c "cd $I/tpgt_1/attrib && [ \$(cat authentication) = 1 ] &&
    [ \$(cat default_cmdsn_depth) = 64 ] && [ \$(cat demo_mode_discovery) = 1 ] && [ \$(cat login_timeout) = 15 ] &&
    [ \$(cat generate_node_acls) = 0 ] && [ \$(cat tpg_enabled_sendtargets) = 1 ] && [ \$(cat ../enable) = 0 ]"
refuse "default_cmdsn_depth 0 is refused" sh -c "echo 0 > $I/tpgt_1/attrib/default_cmdsn_depth"
refuse "login_timeout 31 is refused" sh -c "echo 31 > $I/tpgt_1/attrib/login_timeout"
refuse "enable 2 is refused" sh -c "echo 2 > $I/tpgt_1/enable"
refuse "a portal without a port is refused" mkdir "$I/tpgt_1/np/127.0.0.1"
refuse "a malformed IPv6 portal is refused" mkdir "$I/tpgt_1/np/[::1:3260"
check "portals 127.0.0.1:3260, [::1]:3261 and [::0]:3262 listen" sh -c "mkdir $I/tpgt_1/np/127.0.0.1:3260 &&
    mkdir '$I/tpgt_1/np/[::1]:3261' && mkdir '$I/tpgt_1/np/[::0]:3262' && ss -ltn > $OUT/ss &&
    grep -q '127.0.0.1:3260 ' $OUT/ss && grep -q '\[::1\]:3261 ' $OUT/ss && grep -qE '(\*|\[::\]):3262 ' $OUT/ss"
refuse "tpgt_01 beside tpgt_1 is refused (the same tag)" mkdir "$I/tpgt_01"
refuse "a second TPG on a portal in use is refused" mkdir -p "$I2/tpgt_1/np/127.0.0.1:3260"
check "enable tpgt_1" sh -c "echo 1 > $I/tpgt_1/enable"
check "raw client: SendTargets over IPv4 lists the target and its three portals" sh -c "$PDU discover 127.0.0.1 3260 | tee $OUT/st4 &&
    grep -qx 'TargetName=$IQN' $OUT/st4 && grep -qx 'TargetAddress=127.0.0.1:3260,1' $OUT/st4 &&
    grep -qx 'TargetAddress=\[::1\]:3261,1' $OUT/st4 && grep -qx 'TargetAddress=127.0.0.1:3262,1' $OUT/st4"
check "the wildcard portal is reported as the address reached: [::1] over IPv6, 127.0.0.1 over IPv4 to [::0]" sh -c "
    $PDU discover ::1 3262 | tee $OUT/st6 && grep -qx 'TargetAddress=\[::1\]:3262,1' $OUT/st6 &&
    $PDU discover 127.0.0.1 3262 | tee $OUT/st46 && grep -qx 'TargetAddress=127.0.0.1:3262,1' $OUT/st46"
check "raw client with CRC32C header and data digests: the same SendTargets" sh -c "$PDU discover 127.0.0.1 3260 crc32c > $OUT/stc &&
    diff $OUT/st4 $OUT/stc"
check "a wrong data digest gets a Reject (02h) and the session goes on; a wrong header digest ends it" \
    $PDU digest-errors 127.0.0.1 3260
DA=$CFG/iscsi/discovery_auth
check "enforce_discovery_auth=1 without credentials: discovery refused, AUTHENTICATION FAILURE (0201h)" sh -c "
    echo 1 > $DA/enforce_discovery_auth && ! $PDU discover 127.0.0.1 3260 > $OUT/nochap; cat $OUT/nochap;
    grep -qx 'login failed: 0201' $OUT/nochap"
check "discovery CHAP with SHA-256, SHA-1 and SHA3-256 (the kernel's digests); without CHAP refused" sh -c "
    echo alice > $DA/userid && echo secret12secret > $DA/password && [ \$(cat $DA/authenticate_target) = 0 ] &&
    for a in 7 6 8; do r=\$($PDU chap 127.0.0.1 3260 alice secret12secret \$a); echo \"CHAP_A=\$a: \$r\"; [ \"\$r\" = ok ] || exit 1; done &&
    ! $PDU discover 127.0.0.1 3260"
check "a wrong CHAP secret or user name: AUTHENTICATION FAILURE (0201h)" sh -c "
    [ \$($PDU chap 127.0.0.1 3260 alice wrong-secret 7) = 0201 ] && [ \$($PDU chap 127.0.0.1 3260 bob secret12secret 7) = 0201 ]"
check "mutual CHAP: the target answers the initiator's challenge with userid_mutual's secret" sh -c "
    echo target1 > $DA/userid_mutual && echo mutualsecret12 > $DA/password_mutual && [ \$(cat $DA/authenticate_target) = 1 ] &&
    [ \$($PDU chap 127.0.0.1 3260 alice secret12secret 7 target1 mutualsecret12) = ok ]"
check "enforce_discovery_auth=0: discovery without CHAP again" sh -c "
    echo 0 > $DA/enforce_discovery_auth && $PDU discover 127.0.0.1 3260 > /dev/null"
check "iscsiadm discovery (open-iscsi) finds the target on each portal" sh -c "
    iscsiadm -m discovery -t sendtargets -p 127.0.0.1:3260 -o nonpersistent > $OUT/adm 2>&1; cat $OUT/adm;
    grep -q '^127.0.0.1:3260,1 $IQN\$' $OUT/adm && grep -q '^\[::1\]:3261,1 $IQN\$' $OUT/adm"
check "a TPG that is not enabled is not listed; with tpg_enabled_sendtargets=0 it is" sh -c "
    mkdir -p '$I2/tpgt_1/np/127.0.0.2:3260' && $PDU discover 127.0.0.1 3260 > $OUT/a && ! grep -q '$IQN2' $OUT/a &&
    echo 0 > $I2/tpgt_1/attrib/tpg_enabled_sendtargets && $PDU discover 127.0.0.2 3260 > $OUT/b && cat $OUT/b &&
    grep -qx 'TargetName=$IQN2' $OUT/b && grep -qx 'TargetAddress=127.0.0.2:3260,1' $OUT/b &&
    echo 1 > $I2/tpgt_1/attrib/tpg_enabled_sendtargets"
check "a normal session's login without an ACL (generate_node_acls 0) is refused: FORBIDDEN (0202h)" sh -c "
    [ \$($PDU normal 127.0.0.1 3260 $IQN) = 0202 ]"
check "malformed PDUs: each gets a Reject, a login failure or a closed connection" sh -c "$PDU abuse 127.0.0.1 3260"
check "a connection silent for login_timeout (5 s) is closed" sh -c "echo 5 > $I/tpgt_1/attrib/login_timeout &&
    python3 -c \"import socket, time
s = socket.create_connection(('127.0.0.1', 3260)); s.settimeout(12); t = time.time()
assert s.recv(1) == b'' and 4 < time.time() - t < 9, time.time() - t\" && echo 15 > $I/tpgt_1/attrib/login_timeout"
check "a login kept open by C-bit requests ends at login_timeout (5 s) all the same" sh -c "
    echo 5 > $I/tpgt_1/attrib/login_timeout && t=\$($PDU trickle 127.0.0.1 3260) && echo \$t &&
    [ \"\$t\" != 'still open' ] && [ \$t -ge 4 ] && [ \$t -le 8 ]; r=\$?; echo 15 > $I/tpgt_1/attrib/login_timeout; exit \$r"
check "and the target still answers discovery" sh -c "$PDU discover 127.0.0.1 3260 | grep -qx 'TargetName=$IQN'"
# A live session on the dual-stack portal, then its portal removed under it.
$PDU idle 127.0.0.1 3262 30 > $OUT/idle 2>&1 &
idle=$!
for _ in $(seq 50); do grep -q 'logged in' $OUT/idle && break; sleep 0.1; done
check "rmdir of a portal with a session logged in returns at once and ends the session" sh -c "
    grep -q 'logged in' $OUT/idle && timeout 10 rmdir '$I/tpgt_1/np/[::0]:3262' && wait $idle; cat $OUT/idle;
    grep -q 'closed by target' $OUT/idle && ! ss -ltn | grep -qE '(\*|\[::\]):3262 '"
teardown_iscsi
check "rmdir of the target's portals, TPGs and targets" test ! -d "$CFG/iscsi"
check "rmmod rtarget_iscsi and rtarget_core" sh -c "rmmod rtarget_iscsi && rmmod rtarget_core"
check "no listener is left" sh -c "! ss -ltn | grep -qE ':326[0-2] '"

# The same SendTargets from rtarget and from C LIO.
check "rtarget: SendTargets of the reference configuration" side rtarget_core rtarget_iscsi $OUT/rtarget
unload_all
check "C LIO: SendTargets of the same configuration" side target_core_mod iscsi_target_mod $OUT/lio
unload_all
check "C LIO really answered (iscsi_target_mod served the session)" grep -qx "TargetName=$IQN" $OUT/lio
check "rtarget's SendTargets answer is C LIO's, pair for pair" sh -c "diff $OUT/rtarget $OUT/lio"
check "rtarget: iscsiadm through the dual-stack portal again after a reload" sh -c "modprobe rtarget_core &&
    mkdir -p '$I/tpgt_1/np/[::0]:3260' && echo 1 > $I/tpgt_1/enable &&
    iscsiadm -m discovery -t st -p 127.0.0.1:3260 -o nonpersistent | grep -q '$IQN'"
unload_all
check "no oops or warning in dmesg" dmesg_clean
tap_done
