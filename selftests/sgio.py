#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Send one CDB with SG_IO and print what came back, exactly.

    sgio.py DEV CDB_HEX [--in N] [--out HEX]

Prints one line: status=XX host=XX resid=N sense=HEX data=HEX (data-in bytes actually
transferred). Exit status 0 unless the ioctl itself fails.
"""
import ctypes, fcntl, os, sys

SG_IO = 0x2285
SG_DXFER_NONE, SG_DXFER_TO_DEV, SG_DXFER_FROM_DEV = -1, -2, -3


class SgIoHdr(ctypes.Structure):
    _fields_ = [
        ("interface_id", ctypes.c_int), ("dxfer_direction", ctypes.c_int),
        ("cmd_len", ctypes.c_ubyte), ("mx_sb_len", ctypes.c_ubyte),
        ("iovec_count", ctypes.c_ushort), ("dxfer_len", ctypes.c_uint),
        ("dxferp", ctypes.c_void_p), ("cmdp", ctypes.c_void_p), ("sbp", ctypes.c_void_p),
        ("timeout", ctypes.c_uint), ("flags", ctypes.c_uint), ("pack_id", ctypes.c_int),
        ("usr_ptr", ctypes.c_void_p), ("status", ctypes.c_ubyte),
        ("masked_status", ctypes.c_ubyte), ("msg_status", ctypes.c_ubyte),
        ("sb_len_wr", ctypes.c_ubyte), ("host_status", ctypes.c_ushort),
        ("driver_status", ctypes.c_ushort), ("resid", ctypes.c_int),
        ("duration", ctypes.c_uint), ("info", ctypes.c_uint),
    ]


def sgio(dev, cdb, din=0, dout=b""):
    cdb_buf = ctypes.create_string_buffer(bytes(cdb), len(cdb))
    sense = ctypes.create_string_buffer(96)
    if dout:
        buf, direction, n = ctypes.create_string_buffer(bytes(dout), len(dout)), SG_DXFER_TO_DEV, len(dout)
    elif din:
        buf, direction, n = ctypes.create_string_buffer(din), SG_DXFER_FROM_DEV, din
    else:
        buf, direction, n = None, SG_DXFER_NONE, 0
    h = SgIoHdr(interface_id=ord("S"), dxfer_direction=direction, cmd_len=len(cdb),
                mx_sb_len=96, dxfer_len=n, dxferp=ctypes.cast(buf, ctypes.c_void_p) if buf else None,
                cmdp=ctypes.cast(cdb_buf, ctypes.c_void_p), sbp=ctypes.cast(sense, ctypes.c_void_p),
                timeout=20000)
    fd = os.open(dev, os.O_RDWR)
    try:
        fcntl.ioctl(fd, SG_IO, h)
    finally:
        os.close(fd)
    got = max(0, n - h.resid) if direction == SG_DXFER_FROM_DEV else 0
    return {
        "status": h.status, "host": h.host_status, "resid": h.resid,
        "sense": sense.raw[: h.sb_len_wr], "data": buf.raw[:got] if got else b"",
    }


def main():
    args = sys.argv[1:]
    dev, cdb = args[0], bytes.fromhex(args[1])
    din, dout = 0, b""
    if "--in" in args:
        din = int(args[args.index("--in") + 1])
    if "--out" in args:
        dout = bytes.fromhex(args[args.index("--out") + 1])
    r = sgio(dev, cdb, din, dout)
    print("status=%02x host=%02x resid=%d sense=%s data=%s"
          % (r["status"], r["host"], r["resid"], r["sense"].hex(), r["data"].hex()))


if __name__ == "__main__":
    main()
