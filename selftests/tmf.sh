#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Task management on real slow I/O: an iblock LUN on a dm-delay device. LUN, target and host
# resets while fio writes and verifies; SCSI timeouts (the midlayer's error handler aborts
# commands the backend still holds); LUN removal and rmmod attempts during I/O. Nothing may
# hang (the debug kernel's hung-task detector fires at 10 s), the LUN answers afterwards and
# fio's data verifies.
. "$(dirname "$0")/lib.sh"
tap_plan 17
unload_all; dmesg_mark
slow() { # MS: every I/O of /dev/mapper/rtslow takes MS milliseconds
    local t="0 $(blockdev --getsz /dev/ram0) delay /dev/ram0 0 $1"
    if dmsetup info rtslow >/dev/null 2>&1; then
        dmsetup suspend rtslow && dmsetup reload rtslow --table "$t" && dmsetup resume rtslow
    else
        dmsetup create rtslow --table "$t"
    fi
}
slow_up() { scratch_up && modprobe dm-delay && slow 100; }
slow_lun() { local dev; modprobe rtarget_core && dev=$(setup_dev iblock slow udev_path=/dev/mapper/rtslow) && link_dev "$dev"; }
check "scratch storage; dm-delay over brd (100 ms per I/O)" slow_up
check "an iblock LUN on it" slow_lun
sd=$(lun_dev rtarget_loop block); sg=$(lun_dev rtarget_loop scsi_generic); sdname=${sd#/dev/}

FIO=(fio --name=t --filename="$sd" --direct=1 --ioengine=libaio --bs=4k --iodepth=16 --rw=randwrite
     --verify=crc32c --verify_state_save=0 --verify_fatal=1 --do_verify=1 --randrepeat=1 --output-format=terse)
# ended PID: the background job has exited (waits up to 60 s); its status is in $ended_rc.
ended() {
    local i
    for i in $(seq 600); do kill -0 "$1" 2>/dev/null || { wait "$1"; ended_rc=$?; return 0; }; sleep 0.1; done
    return 1
}
"${FIO[@]}" --size=4M > /tmp/tmf-fio1.txt 2>&1 & fio_pid=$!
sleep 2
check "sg_reset -d (LUN reset) during fio returns" timeout 30 sg_reset -d "$sg"
sleep 1
check "sg_reset -t (target reset) during fio returns" timeout 30 sg_reset -t "$sg"
sleep 1
check "sg_reset -H (host reset) during fio returns" timeout 30 sg_reset -H "$sg"
ended "$fio_pid"; fio_rc=${ended_rc:-timeout}
check "fio survives the resets and its data verifies" sh -c "tail -3 /tmp/tmf-fio1.txt; [ '$fio_rc' = 0 ]"
check "the LUN answers TEST UNIT READY" sg_turs "$sg"

# Timeouts: commands take 2.5 s, the midlayer gives them 1 s. Its error handler aborts them
# while the backend still holds them; each abort waits for the backend and succeeds.
before=$(cat /sys/block/$sdname/device/iotmo_cnt)
slow 2500
echo 1 > /sys/block/$sdname/device/timeout
dd if="$sd" of=/dev/null bs=4k count=8 iflag=direct 2>/dev/null & dd_pid=$!
sleep 5
slow 0
check "I/O that timed out ends once the device is fast again" ended "$dd_pid"
echo 30 > /sys/block/$sdname/device/timeout
after=$(cat /sys/block/$sdname/device/iotmo_cnt)
check "the midlayer did time commands out ($before -> $after)" test $((after)) -gt $((before))
check "the LUN answers TEST UNIT READY after the timeouts" sg_turs "$sg"
check "fio write + verify after the error handling" "${FIO[@]}" --size=2M

# LUN removal and rmmod attempts under slow I/O.
slow 100
"${FIO[@]}" --size=4M --time_based --runtime=60 > /tmp/tmf-fio3.txt 2>&1 & fio_pid=$!
sleep 2
refuse "rmmod rtarget_core during I/O is refused" rmmod rtarget_core
refuse "rmmod rtarget_loop during I/O is refused" rmmod rtarget_loop
check "unlinking the LUN during slow I/O returns" timeout 60 rm "$TPG/lun/lun_0/link0"
check "fio ends instead of hanging" ended "$fio_pid"
unload_rt() { teardown_lun; rmmod_wait rtarget_loop rtarget_core; }
check "teardown and unload" unload_rt
dmsetup remove rtslow 2>/dev/null; scratch_down
check "no oops, warning or hung task in dmesg" dmesg_clean
tap_done
