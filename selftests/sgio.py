#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Send one CDB with SG_IO and print what came back, exactly.

    sgio.py DEV CDB_HEX [--in N] [--out HEX]
    sgio.py DEV --batch OUTDIR < LINES      (each line: NAME|CDB_HEX|[--in N] [--out HEX])
    sgio.py --serve REQ RESP SHELL_PID      (lib.sh's sgio: each line, TAG DEV CDB_HEX [ARGS]
                                             apart by US (1Fh), read from the FIFO REQ is
                                             answered on RESP as TAG US ANSWER)

Prints one line: status=XX host=XX resid=N sense=HEX data=HEX (data-in bytes actually
transferred). Exit status 0 unless the ioctl itself fails. SG_IO's timeout is 20 s, or
SGIO_TIMEOUT_MS. In batch mode each command's line
goes to OUTDIR/NAME, or "ioctl failed: ..." if the ioctl failed; one process sends them all.
A server answers "ioctl failed: ..." too, and ends with the shell that started it.
"""
import ctypes, fcntl, os, select, sys

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
                timeout=int(os.environ.get("SGIO_TIMEOUT_MS", "20000")))
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


def run(dev, cdb_hex, args):
    din, dout = 0, b""
    if "--in" in args:
        din = int(args[args.index("--in") + 1])
    if "--out" in args:
        dout = bytes.fromhex(args[args.index("--out") + 1])
    r = sgio(dev, bytes.fromhex(cdb_hex.replace(" ", "")), din, dout)
    return ("status=%02x host=%02x resid=%d sense=%s data=%s"
            % (r["status"], r["host"], r["resid"], r["sense"].hex(), r["data"].hex()))


def serve(req, resp, shell):
    # Both FIFOs are opened read-write, here as in the shell, so no open blocks and no request
    # is lost; the server ends when the shell (its parent) does. Each answer starts with its
    # request's tag, so a caller that gave up on an answer cannot take it for another's.
    r = os.open(req, os.O_RDWR)
    w = os.open(resp, os.O_RDWR)
    buf = b""
    while os.getppid() == shell:
        if not select.select([r], [], [], 1.0)[0]:
            continue
        buf += os.read(r, 65536)
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            tag = ""
            try:
                tag, *parts = line.decode().split("\x1f")
                out = run(parts[0], parts[1], parts[2:])
            except Exception as e:  # one answer per request, whatever happened
                out = "ioctl failed: %s" % e
            os.write(w, (str(tag) + "\x1f" + out + "\n").encode())


def main():
    args = sys.argv[1:]
    if len(args) == 4 and args[0] == "--serve":
        return serve(args[1], args[2], int(args[3]))
    if len(args) == 3 and args[1] == "--batch":
        os.makedirs(args[2], exist_ok=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            name, cdb_hex, rest = (line.rstrip("\n").split("|") + [""])[:3]
            try:
                out = run(args[0], cdb_hex, rest.split())
            except OSError as e:
                out = "ioctl failed: %s" % e
            with open(os.path.join(args[2], name), "w") as f:
                f.write(out + "\n")
        return
    print(run(args[0], args[1], args[2:]))


if __name__ == "__main__":
    main()
