#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""COMPARE AND WRITE as a lock-free counter: read block LBA (an 8-byte counter, then
padding), COMPARE AND WRITE it from N to N+1, retry on MISCOMPARE; stop after COUNT
increments. Run several at once: if COMPARE AND WRITE is atomic the final counter is the
sum of their counts, else increments are lost.

    caw_race.py DEV LBA COUNT      prints the number of MISCOMPARE retries
"""
import os, struct, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sgio import sgio

BS = 512


def block(n):
    return struct.pack(">Q", n) + b"\0" * (BS - 8)


def main():
    dev, lba, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    read16 = bytes([0x88, 0]) + struct.pack(">Q", lba) + struct.pack(">I", 1) + b"\0\0"
    caw = bytes([0x89, 0]) + struct.pack(">Q", lba) + b"\0\0\0" + bytes([1, 0, 0])
    done = retries = 0
    while done < count:
        r = sgio(dev, read16, din=BS)
        if r["status"] != 0:
            sys.exit("READ(16) failed: status %#x sense %s" % (r["status"], r["sense"].hex()))
        cur = struct.unpack(">Q", r["data"][:8])[0]
        r = sgio(dev, caw, dout=block(cur) + block(cur + 1))
        if r["status"] == 0:
            done += 1
        elif r["status"] == 2 and len(r["sense"]) > 13 and r["sense"][2] & 0xf == 0xe and r["sense"][12] == 0x1d:
            retries += 1
        else:
            sys.exit("COMPARE AND WRITE: status %#x sense %s" % (r["status"], r["sense"].hex()))
    print(retries)


if __name__ == "__main__":
    main()
