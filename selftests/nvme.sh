#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The NVMe/TCP fabric (rtarget_nvme) under target/nvme, with nvmet's names, driven by nvme-cli
# and the kernel's nvme-tcp host on the guest's loopback: the configfs tree and its refusals,
# discovery, connect, Identify, log pages, I/O with fio verify, flush, write zeroes, dataset
# management, a read past the end; one rd_mcp device as a loopback SCSI LUN and an NVMe
# namespace at once (data both ways, VPD 83h NAA = NGUID); an iblock namespace;
# allowed_hosts; keep-alive on a persistent discovery controller; a referral, and the
# discovery change events masked until the log is read; a controller reset and a port
# unlink during fio. The in-kernel nvmet-tcp runs in the same boot (loaded all along,
# as test tools load it) for the checks that apply, so differences show.
. "$(dirname "$0")/lib.sh"
N=$CFG/nvme
NQN=nqn.2026-12.org.rtarget:sel
NQN2=nqn.2026-12.org.rtarget:closed
HOST=nqn.2014-08.org.nvmexpress:uuid:7e1d0000-0000-4000-8000-000000000001
HOST2=nqn.2014-08.org.nvmexpress:uuid:7e1d0000-0000-4000-8000-000000000002
DISC=nqn.2014-08.org.nvmexpress.discovery
OUT=/tmp/nvme; rm -rf $OUT; mkdir -p $OUT
tap_plan 38
unload_all; dmesg_mark
trap nvme_cleanup EXIT

# The in-kernel nvmet: brd's /dev/ram0 as namespace 1 of $NQN on port 4421.
NVMET=/sys/kernel/config/nvmet
nvmet_up() {
    modprobe brd rd_nr=1 rd_size=65536 && modprobe nvmet-tcp && nvme_export $NVMET $NQN 4421 /dev/ram0
}
# disc_events ROOT PORT TRSVCID: a persistent discovery controller on the port at TRSVCID;
# a referral under ROOT/ports/PORT enabled, disabled and enabled again, 2 s apart (three
# discovery changes); its discovery log read (RAE clear); the referral disabled once more.
# Prints the discovery change events the host counted before and after the read, and
# whether the log listed the referral (subtype 1, 127.0.0.2:4430).
disc_events() {
    local r=$1/ports/$2/referrals/peer T=/sys/kernel/tracing dc e n1 n2 listed
    nvme_addr "$r" ipv4 127.0.0.2 4430 || return 1
    nvme connect -t tcp -a 127.0.0.1 -s "$3" -n $DISC --hostnqn=$HOST --hostid=${HOST##*uuid:} \
        --keep-alive-tmo=5 > /dev/null && dc=$(ctrl_of $DISC) || { rmdir "$r"; return 1; }
    mountpoint -q $T || mount -t tracefs tracefs $T 2> /dev/null
    echo > $T/trace; echo 1 > $T/events/nvme/nvme_async_event/enable
    sleep 2
    for e in 1 0 1; do echo $e > "$r/enable"; sleep 2; done
    n1=$(grep -c "$dc: NVME_AEN=0x70f002" $T/trace)
    nvme get-log /dev/$dc --log-id=0x70 --log-len=8192 --raw-binary > $OUT/disclog.$3
    listed=$(python3 -c '
import sys
b = open(sys.argv[1], "rb").read()
for i in range(1024, len(b) - 1023, 1024):
    e = b[i:i + 1024]
    if e[2] == 1 and e[32:64].rstrip(b"\0 ") == b"4430" and e[512:768].rstrip(b"\0 ") == b"127.0.0.2":
        print("listed")' $OUT/disclog.$3)
    echo 0 > "$r/enable"
    # (Up to 10 s for the event; then 2 s more, in which no other may come.)
    for e in $(seq 1 50); do [ "$(grep -c "$dc: NVME_AEN=0x70f002" $T/trace)" -gt "$n1" ] && break; sleep 0.2; done
    sleep 2
    n2=$(grep -c "$dc: NVME_AEN=0x70f002" $T/trace)
    echo 0 > $T/events/nvme/nvme_async_event/enable
    nvme disconnect -d $dc > /dev/null; rmdir "$r"
    echo "$n1 $n2 ${listed:-unlisted}"
}
# The NAA designator of VPD 83h (32 hex digits) of SCSI disk $1.
vpd_naa() {
    sg_vpd -p di -r "$1" | python3 -c '
import sys
b = sys.stdin.buffer.read(); i = 4
while i + 4 <= len(b):
    n = b[i + 3]
    if b[i + 1] & 0x0f == 3 and b[i + 1] & 0x30 == 0 and n == 16:
        print(b[i + 4:i + 20].hex()); break
    i += 4 + n'
}

# The checks' shells see the helpers.
export -f conn disc no_ctrl ns_of ctrl_of fio_verify vpd_naa link_dev lun_dev setup_dev nvmet_up nvme_export nvme_addr tap_diag loaded
export CFG TPG NEXUS SERIAL OUT HOST NVMET NQN
modprobe nvmet && modprobe nvme-tcp
check "mkdir target/nvme loads rtarget_nvme while nvmet.ko is loaded; nvmet's names below it" bash -c "
    modprobe rtarget_core && mkdir $N && loaded rtarget_nvme && loaded nvmet &&
    [ -d $N/subsystems ] && [ -d $N/ports ] && [ -d $N/hosts ] && [ \$(cat $N/discovery_nqn) = $DISC ]"
DEV=$(setup_dev rd_mcp r0 "rd_pages=16384")
S=$N/subsystems/$NQN
check "a subsystem with nvmet's attributes and defaults" bash -c "mkdir $S &&
    [ \$(cat $S/attr_allow_any_host) = 0 ] && [ \$(cat $S/attr_version) = 1.3 ] &&
    [ \$(cat $S/attr_cntlid_min) = 1 ] && [ \$(cat $S/attr_cntlid_max) = 65519 ] &&
    [ \$(cat $S/attr_model) = Linux ] && [ \$(cat $S/attr_qid_max) = 128 ] &&
    echo 1 > $S/attr_allow_any_host && echo rtarget-sel > $S/attr_serial && mkdir $S/namespaces/1"
refuse "bad values are refused: attr_version 1.x, attr_cntlid_min 0, attr_qid_max 0, addr_trtype bogus" bash -c "
    echo 1.x > $S/attr_version || echo 0 > $S/attr_cntlid_min || echo 0 > $S/attr_qid_max ||
    { mkdir -p $N/ports/9 && echo bogus > $N/ports/9/addr_trtype; }"
rmdir $N/ports/9 2> /dev/null
refuse "a namespace without a device cannot be enabled" bash -c "echo 1 > $S/namespaces/1/enable"
refuse "a namespace link to a disabled device is refused" bash -c "mkdir $CFG/core/rd_mcp_1/off &&
    ln -s $CFG/core/rd_mcp_1/off $S/namespaces/1/dev"
rmdir $CFG/core/rd_mcp_1/off 2> /dev/null
echo 1 > "$DEV/attrib/emulate_tpu"
check "the namespace links the device, which counts as exported (block_size refused)" bash -c "
    ln -s $DEV $S/namespaces/1/dev && ! echo 4096 > $DEV/attrib/block_size &&
    echo 1 > $S/namespaces/1/enable && [ \$(cat $S/namespaces/1/enable) = 1 ]"
refuse "a second device link on the namespace is refused" bash -c "mkdir $CFG/core/rd_mcp_1/r9 &&
    echo rd_pages=256 > $CFG/core/rd_mcp_1/r9/control && echo 1 > $CFG/core/rd_mcp_1/r9/enable &&
    ln -s $CFG/core/rd_mcp_1/r9 $S/namespaces/1/dev9"
rmdir $CFG/core/rd_mcp_1/r9 2> /dev/null
P=$N/ports/1
check "port 1 on 127.0.0.1:4420 listens once a subsystem is linked; its address is then fixed" bash -c "
    mkdir $P && echo tcp > $P/addr_trtype && echo ipv4 > $P/addr_adrfam && echo 127.0.0.1 > $P/addr_traddr &&
    echo 4420 > $P/addr_trsvcid && ! ss -ltn | grep -q '127.0.0.1:4420 ' && ln -s $S $P/subsystems/$NQN &&
    ss -ltn | grep -q '127.0.0.1:4420 ' && ! echo 4421 > $P/addr_trsvcid"
check "nvme discover: the discovery subsystem and $NQN" bash -c "disc $HOST | tee $OUT/disc && grep -q 'subnqn: *$NQN' $OUT/disc && grep -q 'subnqn: *$DISC' $OUT/disc &&
    grep -q 'trsvcid: *4420' $OUT/disc"
check "nvme connect; nvme list shows the namespace with the subsystem's serial" bash -c "conn $NQN &&
    D=\$(ns_of $NQN 1) && nvme list | tee $OUT/list && grep \$D $OUT/list | grep -q rtarget-sel"
D=$(ns_of $NQN 1)
C=$(ctrl_of $NQN)
check "id-ctrl: model, serial, subnqn, MDTS 8, SQES/CQES, a controller ID within the range" bash -c "
    nvme id-ctrl /dev/$C > $OUT/idc && grep -qE '^mn +: Linux' $OUT/idc && grep -qE '^sn +: rtarget-sel' $OUT/idc &&
    grep -qE '^subnqn +: $NQN' $OUT/idc && grep -qE '^mdts +: 8' $OUT/idc && grep -qE '^sqes +: 0x66' $OUT/idc &&
    grep -qE '^cntlid +: 0x[0-9a-f]+' $OUT/idc"
check "id-ns: the device's 64 MiB in 512-byte blocks" bash -c "nvme id-ns $D > $OUT/idns &&
    grep -qE '^nsze +: 0x20000' $OUT/idns && grep -q 'lbads:9' $OUT/idns && [ \$(blockdev --getsize64 $D) = 67108864 ]"
check "fio randwrite, CRC32C verified, through NVMe/TCP" fio_verify "$D"
check "flush; write-zeroes reads back zeroes; dsm deallocate succeeds" bash -c "nvme flush $D -n 1 &&
    dd if=/dev/urandom of=$D bs=4k count=1 oflag=direct 2> /dev/null && nvme write-zeroes $D -n 1 -s 0 -c 7 &&
    cmp -n 4096 <(dd if=$D bs=4k count=1 iflag=direct 2> /dev/null) /dev/zero && nvme dsm $D -n 1 -d -s 8 -b 8"
check "nvme write and read of 511, 512 and 1025 blocks compare" bash -c "for n in 511 512 1025; do
    head -c \$((n * 512)) /dev/urandom > $OUT/w && nvme write $D -n 1 -s 1000 -c \$((n - 1)) -z \$((n * 512)) -d $OUT/w > /dev/null &&
    nvme read $D -n 1 -s 1000 -c \$((n - 1)) -z \$((n * 512)) -d $OUT/r > /dev/null && cmp $OUT/w $OUT/r || exit 1; done"
refuse "a read past the end fails" nvme read "$D" -n 1 -s 131072 -c 0 -z 512 -d /dev/null
check "log pages: smart, effects, firmware, error, ANA; features: number of queues, keep-alive" bash -c "
    for c in smart-log effects-log fw-log error-log; do nvme \$c /dev/$C > /dev/null || { echo \$c; exit 1; }; done &&
    nvme ana-log /dev/$C | tee $OUT/ana && grep -q 'optimized' $OUT/ana &&
    nvme get-feature /dev/$C -f 7 && nvme get-feature /dev/$C -f 0x0f"
check "ANA group 1 inaccessible: I/O fails with ANA Inaccessible, the ANA log says so; optimized again, I/O works" bash -c "
    echo inaccessible > $P/ana_groups/1/ana_state && nvme ana-log /dev/$C | grep -q inaccessible &&
    ! nvme read $D -n 1 -s 0 -c 0 -z 512 -d /dev/null 2> $OUT/ana_err; cat $OUT/ana_err;
    grep -qi 'inaccessible' $OUT/ana_err && echo optimized > $P/ana_groups/1/ana_state &&
    nvme read $D -n 1 -s 0 -c 0 -z 512 -d /dev/null"
check "namespace 1 in ANA group 2, which port 1 lacks: the ANA log's change count moves, it logs the group inaccessible, I/O fails; the group made on the port: optimized, I/O works" bash -c "
    n0=\$(nvme ana-log /dev/$C | awk '/^chgcnt/ {print \$NF; exit}') && echo 2 > $S/namespaces/1/ana_grpid &&
    nvme ana-log /dev/$C | tee $OUT/ana2 && n1=\$(awk '/^chgcnt/ {print \$NF; exit}' $OUT/ana2) && [ -n \"\$n0\" ] && [ \"\$n0\" != \"\$n1\" ] &&
    grep -A3 'grpid.*2' $OUT/ana2 | grep -q inaccessible &&
    ! nvme read $D -n 1 -s 0 -c 0 -z 512 -d /dev/null 2> /dev/null && mkdir $P/ana_groups/2 &&
    nvme read $D -n 1 -s 0 -c 0 -z 512 -d /dev/null && echo 1 > $S/namespaces/1/ana_grpid && rmdir $P/ana_groups/2 &&
    nvme read $D -n 1 -s 0 -c 0 -z 512 -d /dev/null"
check "one device, two protocols: VPD 83h NAA (loopback LUN) = the namespace's NGUID; data both ways" bash -c "
    modprobe rtarget_loop && link_dev $DEV && SD=\$(lun_dev rtarget_loop block) && naa=\$(vpd_naa \$SD) &&
    nguid=\$(nvme ns-descs $D | sed -n 's/^nguid *: *//p') && echo \"naa \$naa nguid \$nguid\" && [ -n \"\$naa\" ] &&
    [ \"\$naa\" = \"\$nguid\" ] && head -c 1048576 /dev/urandom > $OUT/a && dd if=$OUT/a of=$D bs=1M seek=8 oflag=direct &&
    cmp -n 1048576 $OUT/a <(dd if=\$SD bs=1M skip=8 count=1 iflag=direct) &&
    head -c 1048576 /dev/urandom > $OUT/b && dd if=$OUT/b of=\$SD bs=1M seek=9 oflag=direct &&
    cmp -n 1048576 $OUT/b <(dd if=$D bs=1M skip=9 count=1 iflag=direct)"
check "ns-descs: the UUID of device_uuid, the NGUID of device_nguid" bash -c "nvme ns-descs $D > $OUT/desc &&
    grep -q \"uuid *: \$(cat $S/namespaces/1/device_uuid)\" $OUT/desc &&
    grep -q \"nguid *: \$(tr -d - < $S/namespaces/1/device_nguid)\" $OUT/desc"
check "an iblock namespace (null_blk) added live: found by ns-rescan, fio verified" bash -c "
    { loaded null_blk || modprobe null_blk nr_devices=1 gb=1; } && IB=\$(setup_dev iblock nb udev_path=/dev/nullb0) &&
    echo 7e1d-nullb0 > \$IB/wwn/vpd_unit_serial && echo /dev/nullb0 > \$IB/udev_path && mkdir $S/namespaces/2 && ln -s \$IB $S/namespaces/2/dev &&
    echo 1 > $S/namespaces/2/enable && nvme ns-rescan /dev/$C && D2=\$(ns_of $NQN 2) &&
    fio --name=n --filename=\$D2 --rw=randwrite --bs=4k --size=8m --iodepth=8 --ioengine=libaio --direct=1 > /dev/null &&
    [ \$(cat $S/namespaces/2/device_path) = /dev/nullb0 ]"
check "a namespace disabled live disappears from the host (its asynchronous event)" bash -c "
    D2=\$(ns_of $NQN 2) && echo 0 > $S/namespaces/2/enable &&
    for i in \$(seq 1 50); do [ -b \$D2 ] || exit 0; sleep 0.2; done; exit 1"
S2=$N/subsystems/$NQN2
mkdir -p "$S2/namespaces/1" && ln -s "$DEV" "$S2/namespaces/1/dev" && echo 1 > "$S2/namespaces/1/enable" &&
    ln -s "$S2" "$P/subsystems/$NQN2"
refuse "allowed_hosts: a host not allowed cannot connect" conn "$NQN2" "$HOST2"
check "allowed_hosts: linked from hosts/, the host connects; discovery lists it only for that host" bash -c "
    mkdir $N/hosts/$HOST2 && ln -s $N/hosts/$HOST2 $S2/allowed_hosts/$HOST2 && conn $NQN2 $HOST2 &&
    ctrl_of $NQN2 > /dev/null && disc $HOST2 | grep -q $NQN2 && ! disc $HOST | grep -q $NQN2 && nvme disconnect -n $NQN2"
check "keep-alive: a persistent discovery controller (kato 2 s) stays live over 10 s" bash -c "
    nvme connect -t tcp -a 127.0.0.1 -s 4420 -n $DISC --hostnqn=$HOST --hostid=${HOST##*uuid:} --keep-alive-tmo=2 && DC=\$(ctrl_of $DISC) &&
    sleep 10 && [ \$(cat /sys/class/nvme/\$DC/state) = live ] && nvme disconnect -d \$DC"
check "discovery changes: a referral is listed; one event until the log is read, then one more (as nvmet)" \
    eval 'r=$(disc_events $N 1 4420); echo "events before the read, after; the referral: $r"; [ "$r" = "1 2 listed" ]'
check "a controller reset during fio: the host reconnects and fio's data verifies" bash -c "
    fio --name=r --filename=$D --rw=randwrite --bs=4k --size=16m --iodepth=16 --ioengine=libaio --direct=1 \
        --verify=crc32c --verify_fatal=1 > $OUT/fio_reset 2>&1 & pid=\$!; sleep 2;
    echo 1 > /sys/class/nvme/$C/reset_controller; wait \$pid; rc=\$?; cat $OUT/fio_reset | tail -3;
    [ \$rc = 0 ] && ctrl_of $NQN > /dev/null"
check "nvme disconnect" bash -c "nvme disconnect -n $NQN && no_ctrl $NQN"
check "header and data digests (CRC32C): connect with both, fio verify, disconnect" bash -c "
    conn $NQN $HOST 4420 --hdr-digest --data-digest && D=\$(ns_of $NQN 1) && fio_verify \$D &&
    nvme disconnect -n $NQN && no_ctrl $NQN"
# The port unlinked under fio: the host's I/O fails (its controller loses the path), fio ends.
unlink_under_io() {
    local d pid rc
    conn $NQN && d=$(ns_of $NQN 1) || return 1
    timeout 90 fio --name=u --filename="$d" --rw=randread --bs=4k --size=16m --iodepth=16 --ioengine=libaio \
        --direct=1 --time_based --runtime=30 > $OUT/fio_unlink 2>&1 & pid=$!
    sleep 2
    rm "$P/subsystems/$NQN" || return 1
    wait $pid; rc=$?
    tail -3 $OUT/fio_unlink
    # fio ended early, by errors, not by the 90 s timeout.
    [ $rc != 124 ] && [ $rc != 0 ]
}
check "the port unlinked during fio: fio ends with errors, nothing hangs" unlink_under_io
ln -s "$S" "$P/subsystems/$NQN" 2> /dev/null
nvme disconnect-all > /dev/null 2>&1
check "nvmet-tcp in the same boot: discover and connect (port 4421, brd)" bash -c "nvmet_up &&
    disc $HOST 4421 | grep -q $NQN && conn $NQN $HOST 4421 && ns_of $NQN 1"
ND=$(ns_of "$NQN" 1)
NC=$(ctrl_of "$NQN")
check "nvmet-tcp: id-ns of its 64 MiB device reports what rtarget's does for its own" bash -c "
    nvme id-ns $ND | grep -E '^(nsze|ncap|nlbaf|flbas|nmic) ' > $OUT/idns_nvmet &&
    grep -E '^(nsze|ncap|nlbaf|flbas|nmic) ' $OUT/idns | diff - $OUT/idns_nvmet"
check "nvmet-tcp: the same fio verify" fio_verify "$ND"
check "nvmet-tcp: the same discovery changes, events and referral" \
    eval 'r=$(disc_events $NVMET 1 4421); echo "events before the read, after; the referral: $r"; [ "$r" = "1 2 listed" ]'
nvme id-ctrl /dev/$NC > $OUT/idc_nvmet
echo "# id-ctrl, rtarget (<) against nvmet-tcp (>):"
diff $OUT/idc $OUT/idc_nvmet | grep '^[<>]' | tap_diag
same_fields() {
    local f
    for f in sqes cqes kas; do
        [ "$(grep -E "^$f " $OUT/idc)" = "$(grep -E "^$f " $OUT/idc_nvmet)" ] || { echo "$f differs"; return 1; }
    done
}
check "id-ctrl: SQES, CQES and KAS as nvmet-tcp's" same_fields
nvme disconnect-all > /dev/null 2>&1
check "teardown: links, namespaces, subsystems, port and target/nvme removed; rtarget_nvme unloads" bash -c "
    trap - EXIT; rm -f $P/subsystems/* $S2/allowed_hosts/* $S/namespaces/*/dev $S2/namespaces/*/dev &&
    rmdir $S/namespaces/* $S2/namespaces/* $S $S2 $P $N/hosts/* $N && rmmod rtarget_nvme && ! loaded rtarget_nvme"
check "no splat or hang in the kernel log" dmesg_clean
tap_done
