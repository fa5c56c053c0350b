#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# NVMe reservations on the device's one reservation state, which its SCSI LUN shares: two
# NVMe hosts (two host NQNs, so two block devices) and a loopback SCSI nexus on one rd_mcp
# device. Reservation commands are refused without resv_enable; a host registers and takes
# Write Exclusive, the other host and the SCSI nexus see it (Report, READ KEYS, READ
# RESERVATION) and meet Reservation Conflict on writes; the SCSI nexus preempts the NVMe
# host, which sees that and finds it in its reservation notification log; CLEAR frees the
# device for everyone. The NVMe-only steps run on the in-kernel nvmet-tcp too (same boot,
# brd) and their Reports and notifications must read the same.
. "$(dirname "$0")/lib.sh"
N=$CFG/nvme
NQN=nqn.2026-12.org.rtarget:resv
HOST=nqn.2014-08.org.nvmexpress:uuid:7e1d0000-0000-4000-8000-0000000000a1
HOST2=nqn.2014-08.org.nvmexpress:uuid:7e1d0000-0000-4000-8000-0000000000a2
NVMET=/sys/kernel/config/nvmet
OUT=/tmp/nvme_resv; rm -rf $OUT; mkdir -p $OUT
tap_plan 17
unload_all; dmesg_mark
trap nvme_cleanup EXIT

# report DEV: the extended Report: "rtype T regctl N gen G", then one "rcsts rkey hostid" line
# per registrant.
report() {
    nvme resv-report "$1" -n 1 -e -o json | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("rtype", r["rtype"], "regctl", r["regctl"], "gen", r["gen"])
for e in r.get("regctlext", []):
    print(e["rcsts"], hex(e["rkey"]), e["hostid"])'
}
# conflict CMD...: CMD fails with Reservation Conflict.
conflict() { ! "$@" > $OUT/err 2>&1 && grep -q "Reservation Conflict" $OUT/err || { cat $OUT/err; return 1; }; }
wr() { nvme write "$1" -n 1 -s 0 -c 0 -z 512 -d $OUT/blk; }
rd() { nvme read "$1" -n 1 -s 0 -c 0 -z 512 -d /dev/null; }
hostid() { echo "${1##*uuid:}" | tr -d -; }
# other_ns NQN DEV: namespace 1 of NQN through the host's other controller (up to 20 s).
other_ns() {
    local i d c
    for i in $(seq 1 100); do
        for d in /sys/class/nvme/nvme*/nvme*n1; do
            c=${d%/*}
            [ "$(cat "$c/subsysnqn" 2> /dev/null)" = "$1" ] && [ "/dev/${d##*/}" != "$2" ] &&
                [ -b "/dev/${d##*/}" ] && { echo "/dev/${d##*/}"; return 0; }
        done
        sleep 0.2
    done
    return 1
}
# two_hosts ROOT SVC SVC2: host A ($HOST) connected to $NQN through port 1 at SVC, host B
# ($HOST2) through a port 2 made at SVC2 (nvme-cli takes a second connect to one address for
# a duplicate); sets A and B.
two_hosts() {
    local p=$1/ports/2
    mkdir -p $p && echo tcp > $p/addr_trtype && echo ipv4 > $p/addr_adrfam && echo 127.0.0.1 > $p/addr_traddr &&
        echo "$3" > $p/addr_trsvcid && ln -s "$1/subsystems/$NQN" "$p/subsystems/$NQN" &&
        conn $NQN $HOST "$2" > /dev/null && A=$(ns_of $NQN 1) && conn $NQN $HOST2 "$3" > /dev/null && B=$(other_ns $NQN "$A")
}
# notice CTRL: the oldest entry of CTRL's reservation notification log (80h), read and so
# removed, as "type nsid more".
notice() {
    nvme get-log "$1" --log-id=0x80 --log-len=64 -b | python3 -c '
import struct, sys
d = sys.stdin.buffer.read()
print(d[8], struct.unpack_from("<I", d, 12)[0], d[9])'
}
# notices DEV: DEV's controller's first reservation notification (waiting up to 5 s for the
# target to log it), then the next read, which must find the log empty.
notices() {
    local i n
    for i in $(seq 1 25); do
        n=$(notice "${1%n1}") || return 1
        [ "${n%% *}" != 0 ] && break
        sleep 0.2
    done
    echo "$n" && notice "${1%n1}"
}
# steps NAME: the NVMe-only sequence from A and B, its Reports kept in $OUT/NAME.
steps() {
    nvme resv-register "$A" -n 1 --nrkey=0xa1 --rrega=0 > /dev/null &&
        nvme resv-acquire "$A" -n 1 --crkey=0xa1 --rtype=1 --racqa=0 > /dev/null &&
        report "$B" > $OUT/$1 && conflict wr "$B" && rd "$B" > /dev/null && wr "$A" > /dev/null &&
        nvme resv-register "$B" -n 1 --nrkey=0xb2 --rrega=0 > /dev/null &&
        conflict nvme resv-acquire "$B" -n 1 --crkey=0xb2 --rtype=1 --racqa=0 &&
        conflict nvme resv-register "$B" -n 1 --crkey=0xbad --nrkey=0xb3 --rrega=2 &&
        nvme resv-acquire "$B" -n 1 --crkey=0xb2 --prkey=0xa1 --rtype=2 --racqa=1 > /dev/null &&
        report "$A" >> $OUT/$1 && conflict wr "$A" && conflict rd "$A" && notices "$A" > $OUT/$1.notice &&
        nvme resv-release "$B" -n 1 --crkey=0xb2 --rtype=2 --rrela=1 > /dev/null && report "$A" >> $OUT/$1 &&
        wr "$A" > /dev/null
    local r=$?
    cat $OUT/$1
    return $r
}
# preempted: host A registers and reserves (Write Exclusive), host B registers and preempts
# it, then clears (so A gets one Registration Preempted notice, unless masked).
preempted() {
    nvme resv-register "$A" -n 1 --nrkey=0xa1 --rrega=0 > /dev/null &&
        nvme resv-acquire "$A" -n 1 --crkey=0xa1 --rtype=1 --racqa=0 > /dev/null &&
        nvme resv-register "$B" -n 1 --nrkey=0xb2 --rrega=0 > /dev/null &&
        nvme resv-acquire "$B" -n 1 --crkey=0xb2 --prkey=0xa1 --rtype=1 --racqa=1 > /dev/null &&
        nvme resv-release "$B" -n 1 --crkey=0xb2 --rtype=1 --rrela=1 > /dev/null
}
# mask_steps NAME: host A hides Registration Preempted notices of namespace 1 (Set Features
# 82h) and reads the mask back; a reserved bit and a namespace that does not exist are
# refused; A is preempted and its log stays empty (after 3 s); A clears its mask, is
# preempted again and finds the notice. "mask M, masked: T N M, unmasked: T N M" in
# $OUT/NAME.mask. A and B are found again: nvmet's hosts connected in a check's subshell.
mask_steps() {
    local c m r
    A=$(ns_of $NQN 1) && B=$(other_ns $NQN "$A") && c=${A%n1} || return 1
    nvme set-feature "$c" -f 0x82 -n 1 -v 2 > /dev/null &&
        m=$(nvme get-feature "$c" -f 0x82 -n 1 | sed -n 's/.*value: *\(0x[0-9a-f]*\).*/\1/p') && [ -n "$m" ] &&
        ! nvme set-feature "$c" -f 0x82 -n 1 -v 1 > /dev/null 2>&1 &&
        ! nvme set-feature "$c" -f 0x82 -n 7 -v 2 > /dev/null 2>&1 &&
        preempted && sleep 3 && echo "mask $((m)), masked: $(notice "$c")" > $OUT/$1.mask &&
        nvme set-feature "$c" -f 0x82 -n 1 -v 0 > /dev/null &&
        preempted && echo "unmasked: $(notices "$A" | head -1)" >> $OUT/$1.mask
    r=$?
    # Whatever failed, the next steps start with no mask and no registrations.
    [ $r = 0 ] || { nvme set-feature "$c" -f 0x82 -n 1 -v 0; nvme resv-register "$B" -n 1 --nrkey=0xb2 --rrega=0;
        nvme resv-release "$B" -n 1 --crkey=0xb2 --rtype=1 --rrela=1; } > /dev/null 2>&1
    cat $OUT/$1.mask
    return $r
}
head -c 512 /dev/urandom > $OUT/blk

modprobe nvmet && modprobe nvmet-tcp && modprobe nvme-tcp && modprobe brd rd_nr=1 rd_size=65536 &&
    modprobe rtarget_core && modprobe rtarget_loop && mkdir $N
DEV=$(setup_dev rd_mcp r0 "rd_pages=16384")
S=$N/subsystems/$NQN
nvme_export $N $NQN 4420 "$DEV"
A=$(conn $NQN $HOST > /dev/null && ns_of $NQN 1)
refuse "without resv_enable, a Report is refused (Invalid Command Opcode, as nvmet)" nvme resv-report "$A" -n 1 -e
nvme disconnect-all > /dev/null
set_resv() {
    ! echo 1 > $S/namespaces/1/resv_enable 2> /dev/null && echo 0 > $S/namespaces/1/enable &&
        echo 1 > $S/namespaces/1/resv_enable && echo 1 > $S/namespaces/1/enable
}
check "resv_enable is set while the namespace is disabled (refused while enabled)" set_resv
two_hosts $N 4420 4422
link_dev "$DEV" > /dev/null
SD=$(lun_dev rtarget_loop block)
echo "# hosts: $A $B; SCSI: $SD"
ids() {
    nvme id-ns "$A" | grep -E '^rescap ' && nvme id-ns "$A" | grep -qE '^rescap +: 0xfe' &&
        nvme id-ctrl "${A%n1}" | grep -qE '^oncs +: 0x2c'
}
check "id-ns: RESCAP (all six types, IEKEY) with resv_enable; ONCS says reservations" ids
check "rtarget: register, acquire Write Exclusive; the other host's write conflicts, its read works; preempt to Exclusive Access; clear" steps rtarget
check "rtarget: the Reports name each host by its host ID" bash -c "
    grep -qx '1 0xa1 $(hostid $HOST)' $OUT/rtarget && grep -qx '1 0xb2 $(hostid $HOST2)' $OUT/rtarget"
check "rtarget: the Reservation Notification Mask of namespace 1 hides host A's Registration Preempted notice; cleared, the next one is logged" \
    eval 'mask_steps rtarget && printf "mask 2, masked: 0 0 0\nunmasked: 1 1 0\n" | cmp - $OUT/rtarget.mask'
# One state for both protocols.
scsi_sees() {
    nvme resv-register "$A" -n 1 --nrkey=0xa1 --rrega=0 > /dev/null &&
        nvme resv-acquire "$A" -n 1 --crkey=0xa1 --rtype=1 > /dev/null &&
        sg_persist --in -k "$SD" | tee $OUT/keys && grep -q 0xa1 $OUT/keys &&
        sg_persist --in -r "$SD" | tee $OUT/res && grep -q 'Key=0xa1' $OUT/res && grep -qi 'Write Exclusive$' $OUT/res
}
check "NVMe host A acquires Write Exclusive: the SCSI nexus reads its key and the reservation (type 1)" scsi_sees
check "the SCSI nexus's WRITE meets RESERVATION CONFLICT; its READ works" bash -c "
    ! dd if=$OUT/blk of=$SD bs=512 count=1 oflag=direct 2> /dev/null && dd if=$SD of=/dev/null bs=512 count=1 iflag=direct"
scsi_preempts() {
    sg_persist --out --register --param-sark=0xc3 "$SD" && sg_persist --out --preempt --param-rk=0xc3 \
        --param-sark=0xa1 --prout-type=3 "$SD" && report "$A" | tee $OUT/r && head -1 $OUT/r | grep -q '^rtype 2 regctl 1 ' &&
        grep -qx '1 0xc3 00000000000000000000000000000000' $OUT/r && conflict rd "$A" &&
        notices "$A" | tee /dev/stderr | head -1 | grep -qx '1 1 0'
}
check "the SCSI nexus registers (0xc3) and preempts host A with Exclusive Access: host A's Report shows it, A conflicts, A's notification log says Registration Preempted" scsi_preempts
check "the SCSI nexus's CLEAR frees the device: host A writes, its Report is empty" bash -c "
    sg_persist --out --clear --param-rk=0xc3 $SD && nvme write $A -n 1 -s 0 -c 0 -z 512 -d $OUT/blk > /dev/null &&
    nvme resv-report $A -n 1 -e -o json | grep -q '\"regctl\" *: *0'"
survives() {
    nvme resv-register "$B" -n 1 --nrkey=0xb9 --rrega=0 > /dev/null && nvme disconnect-all > /dev/null &&
        conn $NQN $HOST > /dev/null && A=$(ns_of $NQN 1) && report "$A" | tee $OUT/r && grep -qx "0 0xb9 $(hostid $HOST2)" $OUT/r
}
check "a registration outlives its controller: host B disconnects, host A's Report still lists it" survives
nvme disconnect-all > /dev/null
rm -f "$N"/ports/*/subsystems/*
# nvmet, the same NVMe steps (port 4421, brd).
nvmet_steps() {
    mkdir -p $NVMET/subsystems/$NQN/namespaces/1 && echo 1 > $NVMET/subsystems/$NQN/namespaces/1/resv_enable &&
        nvme_export $NVMET $NQN 4421 /dev/ram0 && two_hosts $NVMET 4421 4423 && steps nvmet
}
check "nvmet-tcp: the same steps" nvmet_steps
check "nvmet-tcp: the same mask steps, with the same mask and log" eval 'mask_steps nvmet && cmp $OUT/rtarget.mask $OUT/nvmet.mask'
check "the Reports read the same on rtarget and nvmet (type, registrants, holders, keys, host IDs)" bash -c "
    diff <(sed 's/ gen [0-9]*\$//' $OUT/rtarget) <(sed 's/ gen [0-9]*\$//' $OUT/nvmet)"
check "host A, preempted, finds one Registration Preempted for namespace 1 in its reservation notification log, on rtarget as on nvmet" bash -c "
    cat $OUT/rtarget.notice && printf '1 1 0\n0 0 0\n' | cmp - $OUT/rtarget.notice && cmp $OUT/rtarget.notice $OUT/nvmet.notice"
nvme disconnect-all > /dev/null
check "teardown: rtarget_nvme and the loopback LUN go" bash -c "
    rm -f $S/namespaces/1/dev && rmdir $S/namespaces/1 $S $N/ports/* $N && rmmod rtarget_nvme"
check "no splat or hang in the kernel log" dmesg_clean
tap_done
