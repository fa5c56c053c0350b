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
    local desc=$1 out t0=$SECONDS; shift
    if out=$("$@" 2>&1); then tap_ok "$desc"; else tap_not_ok "$desc"; printf '%s\n' "$out" | tap_diag; fi
    [ -z "${RTARGET_TIME_CHECKS:-}" ] || echo "# ($((SECONDS - t0))s)"
}
# refuse DESC CMD...: ok if CMD fails.
refuse() {
    local desc=$1 out; shift
    if out=$("$@" 2>&1); then tap_not_ok "$desc (succeeded)"; printf '%s\n' "$out" | tap_diag; else tap_ok "$desc"; fi
}
tap_done() { [ "$_tap_fail" -eq 0 ]; exit $?; }

loaded() { [ -d "/sys/module/$1" ]; }

# sgio DEV CDB_HEX [--in N] [--out HEX]: one command through SG_IO, printed as sgio.py prints
# it; false if the ioctl failed. A Python start costs seconds in the debug guest, so one
# sgio.py per test (sgio_up, from the test's own shell) answers every call, through two
# FIFOs that shell holds open; subshells share it, one call at a time.
_sgio_py=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/sgio.py
sgio_up() {
    local d
    d=$(mktemp -d /tmp/sgio.XXXXXX) && mkfifo "$d/req" "$d/resp" || return 1
    python3 "$_sgio_py" --serve "$d/req" "$d/resp" $$ < /dev/null > /dev/null 2> "$d/log" &
    exec {_sgio_w}<>"$d/req" {_sgio_r}<>"$d/resp"
}
sgio() {
    local line tag=$BASHPID.$RANDOM
    [ -n "${_sgio_w:-}" ] || { echo "sgio: no server (sgio_up)"; return 1; }
    # One line per request: a tag, then the arguments, apart by US (a CDB may be given with
    # spaces). Answers to requests given up on (timed out) are skipped by their tags.
    (IFS=$'\x1f'; printf '%s\n' "$tag"$'\x1f'"$*") >&"$_sgio_w" || { echo "sgio: no server"; return 1; }
    while read -r -t 120 line <&"$_sgio_r"; do
        [ "${line%%$'\x1f'*}" = "$tag" ] || continue
        line=${line#*$'\x1f'}
        printf '%s\n' "$line"
        [[ $line != "ioctl failed"* ]]
        return
    done
    echo "sgio: no answer"; return 1
}

# The default test LUN: a ramdisk exported through loopback, the same for rtarget and LIO.
SERIAL=6f9a2b3c-1d2e-4f50-8a9b-0c1d2e3f4a5b
WWN=naa.5001405a1b2c3d4e
NEXUS=naa.5001405f00000001
TPG=$CFG/loopback/$WWN/tpgt_1
NEXUS2=naa.5001405f00000002
TPG2=$CFG/loopback/$WWN/tpgt_2

# setup_lun [SIZE_MB]: plain configfs writes, as LIO documents them.
setup_lun() {
    local dev=$CFG/core/rd_mcp_1/r0
    mkdir -p "$dev" &&
    echo "rd_pages=$(( ${1:-64} * 256 ))" > "$dev/control" &&
    echo 1 > "$dev/enable" &&
    echo "$SERIAL" > "$dev/wwn/vpd_unit_serial" &&
    mkdir -p "$TPG/lun/lun_0" &&
    echo "$NEXUS" > "$TPG/nexus" &&
    ln -s "$dev" "$TPG/lun/lun_0/link0"
}

# setup_dev PLUGIN NAME CONTROL: backstore core/PLUGIN_1/NAME, configured with CONTROL, enabled,
# with the test serial. Prints its configfs directory.
setup_dev() {
    local dev=$CFG/core/${1}_1/$2
    mkdir -p "$dev" && echo "$3" > "$dev/control" && echo 1 > "$dev/enable" &&
    echo "$SERIAL" > "$dev/wwn/vpd_unit_serial" && echo "$dev"
}

# link_dev DEVDIR [LUN]: export DEVDIR as LUN (default 0) of the test TPG, creating the nexus.
link_dev() {
    local lun=${2:-0}
    mkdir -p "$TPG/lun/lun_$lun" &&
    { [ -n "$(cat "$TPG/nexus" 2>/dev/null)" ] || echo "$NEXUS" > "$TPG/nexus"; } &&
    ln -s "$1" "$TPG/lun/lun_$lun/link$lun"
}

# two_tpgs CORE_MODULE [PLUGIN NAME CONTROL]: one device (default: a ramdisk, r0) exported as
# LUN 0 of both test TPGs: two nexuses ($NEXUS, $NEXUS2) to it.
two_tpgs() {
    local dev
    modprobe "$1" && dev=$(setup_dev "${2:-rd_mcp}" "${3:-r0}" "${4:-rd_pages=1024}") && link_dev "$dev" &&
        mkdir -p "$TPG2/lun/lun_0" && echo $NEXUS2 > "$TPG2/nexus" && ln -s "$dev" "$TPG2/lun/lun_0/link0"
}

# teardown_lun: remove every LUN, target, fabric and backstore, whoever made them.
teardown_lun() {
    local f
    [ -d "$CFG" ] || return 0
    for f in "$CFG"/*/*/tpgt_*/lun/lun_*/*; do [ -L "$f" ] && rm -f "$f"; done
    for f in "$CFG"/*/*/tpgt_*/lun/lun_* "$CFG"/*/*/tpgt_* "$CFG"/*/naa.* "$CFG"/*/iqn.* "$CFG"/*/fc.* \
             "$CFG"/core/*_*/* "$CFG"/core/*_* "$CFG"/loopback "$CFG"/iscsi; do
        [ -d "$f" ] && rmdir "$f" 2>/dev/null
    done
    true
}

# lun_dev PROC_NAME block|scsi_generic [LUN [TARGET]]: /dev node of TARGET (default 1: tpgt_1), LUN (default 0) on the
# host whose proc_name is PROC_NAME (rtarget_loop or tcm_loopback); waits up to 20 s for sd.
lun_dev() {
    local i h d
    for i in $(seq 1 100); do
        for h in /sys/class/scsi_host/host*; do
            [ "$(cat "$h/proc_name" 2>/dev/null)" = "$1" ] || continue
            for d in /sys/bus/scsi/devices/"${h##*host}":0:"${4:-1}":"${3:-0}"/"$2"/*; do
                [ -e "$d" ] && [ -e "/dev/${d##*/}" ] && { echo "/dev/${d##*/}"; return 0; }
            done
        done
        sleep 0.2
    done
    return 1
}
# Unload everything of ours and LIO's, quietly, so each test starts clean.
unload_all() {
    local d
    for d in "$CFG"/loopback; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
    # Namespaces first: a device a namespace exports cannot be removed.
    teardown_nvme
    teardown_lun
    teardown_iscsi
    # C LIO's iscsi_trx/iscsi_ttx finish a closed session after the logout; rmmod
    # iscsi_target_mod does not wait for them (an oops in CI), so we do.
    # They live until a restarted Time2Retain timer (20 s) ends their session: 30 s at most.
    for d in $(seq 150); do pgrep -x 'iscsi_(trx|ttx)' > /dev/null || break; sleep 0.2; done
    for m in rtarget_loop rtarget_iscsi rtarget_nvme rtarget_core tcm_loop iscsi_target_mod target_core_pscsi target_core_file target_core_iblock target_core_user target_core_mod; do
        loaded "$m" && rmmod "$m" 2>/dev/null
    done
    true
}
# teardown_nvme: rtarget's target/nvme tree (hosts disconnected first).
teardown_nvme() {
    local n=$CFG/nvme f
    [ -d "$n" ] || return 0
    command -v nvme > /dev/null && nvme disconnect-all > /dev/null 2>&1
    for f in "$n"/ports/*/subsystems/* "$n"/subsystems/*/allowed_hosts/* "$n"/subsystems/*/namespaces/*/*; do
        [ -L "$f" ] && rm -f "$f"
    done
    for f in "$n"/ports/*/ana_groups/* "$n"/ports/*/referrals/* "$n"/ports/* "$n"/subsystems/*/namespaces/* \
             "$n"/subsystems/* "$n"/hosts/* "$n"; do
        [ -d "$f" ] && rmdir "$f" 2> /dev/null
    done
    true
}
# iscsid_up DIR: open-iscsi's daemon (iscsiadm hands it discovery and logins) for this test,
# logging to DIR/iscsid.log, stopped when the test exits. Its own session: on SIGTERM iscsid
# signals its whole process group (killpg(0, SIGTERM)), which would otherwise be the test's.
iscsid_up() {
    setsid iscsid -f > "$1/iscsid.log" 2>&1 &
    _iscsid=$!
    trap 'kill $_iscsid 2>/dev/null' EXIT
}
# teardown_iscsi: every iSCSI target's portals, ACLs and their mapped LUNs, LUN links, TPGs,
# then target/iscsi itself.
teardown_iscsi() {
    local w t x a
    [ -d "$CFG/iscsi" ] || return 0
    for w in "$CFG"/iscsi/*/; do
        [ -d "$w/fabric_statistics" ] || continue
        for t in "$w"tpgt_*/; do
            [ -d "$t" ] || continue
            echo 0 > "$t/enable" 2>/dev/null
            for x in "$t"np/*/; do [ -d "$x" ] && rmdir "$x"; done
            for a in "$t"acls/*/; do
                [ -d "$a" ] || continue
                for x in "$a"lun_*/; do
                    [ -d "$x" ] || continue
                    find "$x" -maxdepth 1 -type l -delete
                    rmdir "$x"
                done
                rmdir "$a"
            done
            for x in "$t"lun/lun_*/; do
                [ -d "$x" ] || continue
                find "$x" -maxdepth 1 -type l -delete
                rmdir "$x"
            done
            rmdir "$t"
        done
        rmdir "$w"
    done
    rmdir "$CFG/iscsi" 2>/dev/null
    true
}
# atomic_disk [MAX_BLOCKS]: loads scsi_debug with atomic writes (atomic_wr=1, 64 MiB, up to
# MAX_BLOCKS blocks in one, default 128) and prints its disk's
# name (sda...), waiting up to 10 s for it; prints nothing if none appears.
atomic_disk() {
    local i d max=${1:-128}
    modprobe scsi_debug atomic_wr=1 dev_size_mb=64 atomic_wr_max_length=$max \
        atomic_wr_max_length_bndry=$max atomic_wr_max_bndry=$max || return 1
    for i in $(seq 50); do
        d=$(ls /sys/bus/pseudo/drivers/scsi_debug/adapter*/host*/target*/*/block 2>/dev/null | head -1)
        [ -n "$d" ] && [ -b "/dev/$d" ] && { echo "$d"; return 0; }
        sleep 0.2
    done
    return 1
}
# rmmod_wait MODULE...: unload, retrying for up to 30 s while the module is busy (a disk's
# last opener may still be closing it; a slow TCG guest). A module still pinned after that fails.
rmmod_wait() {
    local m i
    for m in "$@"; do
        for i in $(seq 150); do
            rmmod "$m" 2>/dev/null && continue 2
            sleep 0.2
        done
        rmmod "$m" || return 1
    done
}
# Kernel log since the test started, for oops/warning checks.
# dmesg_mark writes a mark into the kernel log; dmesg_new prints what came after it (all of
# the log if the mark has rotated out: counting lines would miss everything once the log
# buffer is full).
dmesg_mark() { _dmesg_mark="rtarget-selftests: mark $$.$RANDOM$RANDOM"; echo "$_dmesg_mark" > /dev/kmsg; }
dmesg_new() {
    dmesg | awk -v m="${_dmesg_mark:-}" '{ l[n++] = $0 } m != "" && index($0, m) { s = n }
        END { for (i = s + 0; i < n; i++) print l[i] }'
}
# known_lio: the kernel log with one known C LIO report defused: lockdep's irq lock inversion in
# C LIO's Time2Retain timer (iscsit_handle_time2retain_timeout takes se_tpg->session_lock in
# softirq, tpg_state_lock nests under it in process context). C LIO's iSCSI halves trip it at
# random when a closing session restarts that timer; it names C LIO's code, not ours.
known_lio() {
    awk '{ l[n++] = $0 }
        END {
            for (i = 0; i < n; i++) {
                if (l[i] ~ /possible irq lock inversion/)
                    for (j = i + 1; j < n && j <= i + 6; j++)
                        if (l[j] ~ /iscsit_handle_time2retain_timeout/) { sub(/WARNING:/, "C LIO, known:", l[i]); break }
                print l[i]
            }
        }'
}
dmesg_clean() { ! dmesg_new | known_lio | grep -E 'BUG:|WARNING:|Oops|general protection|refcount_t:|UBSAN|KASAN|KFENCE|list_(add|del) corruption|circular locking|blocked for more than|sleeping function called'; }

# Scratch storage for file and block backends: a tmpfs, an ext4 image on a loop device in it,
# brd (/dev/ram0, 64 MiB) and null_blk (/dev/nullb0, memory backed, 1 GiB).
BK=/tmp/rtarget-bk
scratch_up() {
    mkdir -p $BK && { mountpoint -q $BK || mount -t tmpfs -o size=1200m rtarget-bk $BK; } &&
    { [ -f $BK/ext4.img ] || { truncate -s 512M $BK/ext4.img && mkfs.ext4 -q -F $BK/ext4.img; }; } &&
    mkdir -p $BK/ext4 && { mountpoint -q $BK/ext4 || mount -o loop $BK/ext4.img $BK/ext4; } &&
    { [ -b /dev/ram0 ] || modprobe brd rd_nr=1 rd_size=65536; } &&
    { [ -b /dev/nullb0 ] || modprobe null_blk nr_devices=1 memory_backed=1 gb=1; } &&
    udevadm settle 2>/dev/null; [ -b /dev/ram0 ] && [ -b /dev/nullb0 ]
}
scratch_down() {
    mountpoint -q $BK/ext4 && umount $BK/ext4
    mountpoint -q $BK && umount $BK
    rmmod brd null_blk 2>/dev/null
    true
}

# The NVMe/TCP host side (nvme.sh, nvme_host.sh): the kernel's nvme-tcp driven by nvme-cli.
# ctrl_of NQN: the host's controller (nvmeX) connected to NQN, waiting up to 20 s.
ctrl_of() {
    local i c
    for i in $(seq 1 100); do
        for c in /sys/class/nvme/nvme*; do
            [ "$(cat "$c/subsysnqn" 2> /dev/null)" = "$1" ] &&
                [ "$(cat "$c/state" 2> /dev/null)" = live ] && { echo "${c##*/}"; return 0; }
        done
        sleep 0.2
    done
    return 1
}
# ns_of NQN NSID: /dev/nvmeXnY of namespace NSID of NQN's controller.
ns_of() {
    local c i d
    c=$(ctrl_of "$1") || return 1
    for i in $(seq 1 100); do
        for d in /sys/class/nvme/"$c"/nvme*n*; do
            [ -e "$d/nsid" ] && [ "$(cat "$d/nsid")" = "$2" ] && [ -b "/dev/${d##*/}" ] &&
                { echo "/dev/${d##*/}"; return 0; }
        done
        sleep 0.2
    done
    return 1
}
# conn NQN [HOSTNQN [PORT [OPTIONS]]]: connect as HOSTNQN (its host ID the NQN's UUID, as hosts
# pair them) to $TRADDR (default 127.0.0.1), giving up after $CTRL_LOSS seconds (default 3).
conn() {
    local h=${2:-$HOST}
    nvme connect -t tcp -a "${TRADDR:-127.0.0.1}" -s "${3:-4420}" -n "$1" --hostnqn="$h" --hostid="${h##*uuid:}" \
        --ctrl-loss-tmo="${CTRL_LOSS:-3}" --reconnect-delay=1 "${@:4}"
}
# disc HOSTNQN [PORT]: nvme discover as HOSTNQN, at $TRADDR.
disc() { nvme discover -t tcp -a "${TRADDR:-127.0.0.1}" -s "${2:-4420}" --hostnqn="$1" --hostid="${1##*uuid:}"; }
# no_ctrl NQN: no controller of the host is connected to NQN (after up to 5 s).
no_ctrl() {
    local i c found
    for i in $(seq 1 25); do
        found=0
        for c in /sys/class/nvme/nvme*; do
            [ "$(cat "$c/subsysnqn" 2> /dev/null)" = "$1" ] && found=1
        done
        [ $found = 0 ] && return 0
        sleep 0.2
    done
    return 1
}
# fio_verify DEV [SECONDS]: 4k random writes at QD16, each block checked by CRC32C (given up
# after 2 minutes: a stuck queue fails the check instead of holding the run).
fio_verify() {
    timeout 120 fio --name=v --filename="$1" --rw=randwrite --bs=4k --size=16m --iodepth=16 --ioengine=libaio \
        --direct=1 --verify=crc32c --verify_fatal=1 --runtime="${2:-5}" --time_based=0 > "$OUT/fio.$$" 2>&1 ||
        { cat "$OUT/fio.$$"; return 1; }
}
# nvme_export ROOT NQN TRSVCID DEVICE [buffered]: below rtarget's tree ($CFG/nvme) or nvmet's,
# the same names: subsystem NQN open to any host, its namespace 1 DEVICE (a core device's
# directory, linked, for rtarget; a path for nvmet, with buffered_io if asked), on port 1 at
# 127.0.0.1:TRSVCID.
nvme_export() {
    local s=$1/subsystems/$2 p=$1/ports/1
    mkdir -p "$s/namespaces/1" && echo 1 > "$s/attr_allow_any_host" &&
        if [ -d "$4" ]; then ln -s "$4" "$s/namespaces/1/dev"; else echo "$4" > "$s/namespaces/1/device_path"; fi &&
        { [ -z "${5:-}" ] || echo 1 > "$s/namespaces/1/buffered_io"; } && echo 1 > "$s/namespaces/1/enable" &&
        nvme_addr "$p" ipv4 127.0.0.1 "$3" && ln -s "$s" "$p/subsystems/$2"
}
# nvme_addr DIR ADRFAM TRADDR TRSVCID: a TCP address in a port's or a referral's directory
# (made if missing), in rtarget's tree or nvmet's.
nvme_addr() {
    mkdir -p "$1" && echo tcp > "$1/addr_trtype" && echo "$2" > "$1/addr_adrfam" &&
        echo "$3" > "$1/addr_traddr" && echo "$4" > "$1/addr_trsvcid"
}
# fio_bg FILE NAME [OPTIONS]: 32 MiB of 4k random writes, CRC32C verified, in the background
# ($! is fio; 2 minutes at most), its output in $OUT/fio_NAME.
fio_bg() {
    timeout 120 fio --name="$2" --filename="$1" --rw=randwrite --bs=4k --size=32m --iodepth=16 --ioengine=libaio \
        --direct=1 --verify=crc32c --verify_fatal=1 "${@:3}" > "$OUT/fio_$2" 2>&1 &
}
# teardown_nvmet: the in-kernel nvmet's tree emptied (its modules stay).
teardown_nvmet() {
    local n=/sys/kernel/config/nvmet
    [ -d $n ] || return 0
    rm -f $n/ports/*/subsystems/* 2> /dev/null
    rmdir $n/ports/* $n/subsystems/*/namespaces/* $n/subsystems/* 2> /dev/null
    true
}
# nvme_cleanup: a test's NVMe state gone: the host's controllers, both trees, nvmet's modules
# and brd, the LUNs.
nvme_cleanup() {
    local m
    nvme disconnect-all > /dev/null 2>&1
    teardown_nvme
    teardown_nvmet
    for m in nvmet_tcp nvmet brd; do loaded $m && rmmod $m 2> /dev/null; done
    teardown_lun
}
