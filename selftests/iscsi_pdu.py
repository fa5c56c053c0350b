#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A minimal iSCSI initiator over raw TCP, for what open-iscsi will not send.

  iscsi_pdu.py discover HOST PORT        discovery session: SendTargets=All, one pair a line
  iscsi_pdu.py normal HOST PORT TARGET   a normal session's login: prints its status (hex)
  iscsi_pdu.py abuse HOST PORT           malformed PDUs; prints "ok NAME" / "not ok NAME: why"
  iscsi_pdu.py idle HOST PORT SECONDS    a discovery session that sits idle (for rmdir tests)
"""
import socket
import struct
import sys

INITIATOR = b"iqn.2026-12.org.rtarget:selftest"
ISID = bytes([0x80, 0x00, 0x01, 0x02, 0x03, 0x04])


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def keys(*pairs):
    return b"".join(k + b"=" + v + b"\0" for k, v in pairs)


def bhs(opcode, flags, data=b"", itt=1, b2=0, b3=0, lun=0, f20=0, cmdsn=0, expstatsn=0, rest=b"", ahs=0, dlen=None):
    dlen = len(data) if dlen is None else dlen
    h = struct.pack(">BBBBB", opcode, flags, b2, b3, ahs) + dlen.to_bytes(3, "big")
    h += lun.to_bytes(8, "big") if isinstance(lun, int) else lun
    h += struct.pack(">IIII", itt, f20, cmdsn, expstatsn) + rest.ljust(16, b"\0")
    return h[:48]


def login_pdu(text, csg, nsg, transit, itt=1, cmdsn=0, tsih=0, cont=False):
    flags = (0x80 if transit else 0) | (0x40 if cont else 0) | (csg << 2) | (nsg if transit else 0)
    lun = ISID + tsih.to_bytes(2, "big")
    return bhs(0x43, flags, text, itt=itt, lun=lun, cmdsn=cmdsn) + pad4(text)


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        c = s.recv(n - len(out))
        if not c:
            raise EOFError("closed after %d of %d bytes" % (len(out), n))
        out += c
    return out


def recv_pdu(s):
    h = recv_exact(s, 48)
    dlen = int.from_bytes(h[5:8], "big")
    data = recv_exact(s, (dlen + 3) & ~3)[:dlen] if dlen else b""
    return h, data


def pairs(data):
    return [p for p in data.split(b"\0") if p]


def connect(host, port):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def discovery_login(s):
    """Security then operational stage of a discovery session; returns StatSN."""
    s.sendall(login_pdu(keys((b"InitiatorName", INITIATOR), (b"SessionType", b"Discovery"),
                             (b"AuthMethod", b"None")), 0, 1, True))
    h, d = recv_pdu(s)
    if h[0] != 0x23 or h[36:38] != b"\0\0":
        raise RuntimeError("security stage: opcode %#x status %s %r" % (h[0], h[36:38].hex(), d))
    s.sendall(login_pdu(keys((b"HeaderDigest", b"None"), (b"DataDigest", b"None"),
                             (b"MaxRecvDataSegmentLength", b"262144")), 1, 3, True))
    h, d = recv_pdu(s)
    if h[0] != 0x23 or h[36:38] != b"\0\0" or h[1] & 0x83 != 0x83:
        raise RuntimeError("operational stage: %s %r" % (h[:8].hex(), d))
    return int.from_bytes(h[24:28], "big")


def send_targets(s, statsn, cmdsn=0):
    text = keys((b"SendTargets", b"All"))
    out, ttt = b"", 0xFFFFFFFF
    while True:
        s.sendall(bhs(0x04, 0x80, text, itt=2, f20=ttt, cmdsn=cmdsn, expstatsn=statsn + 1) + pad4(text))
        h, d = recv_pdu(s)
        if h[0] != 0x24:
            raise RuntimeError("Text: answered with opcode %#x" % h[0])
        out += d
        statsn = int.from_bytes(h[24:28], "big")
        if not h[1] & 0x40:
            return out, statsn
        text, ttt, cmdsn = b"", int.from_bytes(h[20:24], "big"), cmdsn + 1


def logout(s, statsn, cmdsn):
    s.sendall(bhs(0x46, 0x80, itt=3, cmdsn=cmdsn, expstatsn=statsn + 1))
    h, _ = recv_pdu(s)
    if h[0] != 0x26 or h[2] != 0:
        raise RuntimeError("Logout: %s" % h[:4].hex())


def discover(host, port):
    s = connect(host, port)
    statsn = discovery_login(s)
    data, statsn = send_targets(s, statsn)
    for p in pairs(data):
        print(p.decode())
    logout(s, statsn, 1)


def normal(host, port, target):
    s = connect(host, port)
    s.sendall(login_pdu(keys((b"InitiatorName", INITIATOR), (b"SessionType", b"Normal"),
                             (b"TargetName", target.encode()), (b"AuthMethod", b"None")), 0, 1, True))
    h, _ = recv_pdu(s)
    print(h[36:38].hex())


def closed(s, wait=5.0):
    """The target closed the connection (EOF or reset) within `wait` seconds."""
    s.settimeout(wait)
    try:
        while s.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def abuse(host, port):
    results = []

    def case(name, fn):
        try:
            why = fn()
        except Exception as e:  # a failure of the check, not of the target
            why = "%s: %s" % (type(e).__name__, e)
        results.append(why is None)
        print("ok %s" % name if why is None else "not ok %s: %s" % (name, why))

    def first_pdu_unknown():
        s = connect(host, port)
        s.sendall(bhs(0x1C, 0x80))
        return None if closed(s) else "still open"

    def scsi_command_during_login():
        s = connect(host, port)
        s.sendall(bhs(0x01, 0x81, cmdsn=0))
        return None if closed(s) else "still open"

    def login_not_immediate():
        s = connect(host, port)
        s.sendall(bhs(0x03, 0x81, keys((b"InitiatorName", INITIATOR))) + pad4(keys((b"InitiatorName", INITIATOR))))
        return None if closed(s) else "still open"

    def login_segment_too_long():
        s = connect(host, port)
        s.sendall(bhs(0x43, 0x81, dlen=0xFFFFFF))
        h, _ = recv_pdu(s)
        if h[0] != 0x23 or h[36:38] != b"\x02\x00":
            return "answer %s" % h[:8].hex() + " status " + h[36:38].hex()
        return None if closed(s) else "still open after the failure"

    def login_garbage_text():
        s = connect(host, port)
        s.sendall(login_pdu(b"no equals sign\0", 0, 1, True))
        h, _ = recv_pdu(s)
        return None if h[36:38] == b"\x02\x00" and closed(s) else "status " + h[36:38].hex()

    def login_missing_initiator_name():
        s = connect(host, port)
        s.sendall(login_pdu(keys((b"SessionType", b"Discovery")), 0, 1, True))
        h, _ = recv_pdu(s)
        return None if h[36:38] == b"\x02\x07" else "status " + h[36:38].hex()

    def login_bad_version():
        s = connect(host, port)
        p = bytearray(login_pdu(keys((b"InitiatorName", INITIATOR), (b"SessionType", b"Discovery")), 0, 1, True))
        p[3] = 1  # VersionMin 1
        s.sendall(bytes(p))
        h, _ = recv_pdu(s)
        return None if h[36:38] == b"\x02\x05" else "status " + h[36:38].hex()

    def half_bhs():
        s = connect(host, port)
        s.sendall(bhs(0x43, 0x81)[:20])
        s.close()
        return None

    def command_in_discovery():
        s = connect(host, port)
        statsn = discovery_login(s)
        s.sendall(bhs(0x01, 0x81, cmdsn=0, expstatsn=statsn + 1, rest=b"\x00" * 6))
        h, d = recv_pdu(s)
        if h[0] != 0x3F or h[2] != 0x04 or len(d) != 48:
            return "answer %s" % h[:8].hex()
        return None

    def unknown_opcode_in_discovery():
        s = connect(host, port)
        statsn = discovery_login(s)
        s.sendall(bhs(0x1D, 0x80, expstatsn=statsn + 1))
        h, d = recv_pdu(s)
        if h[0] != 0x3F or h[2] != 0x05 or d[:1] != b"\x1d":
            return "answer %s" % h[:8].hex()
        # The session goes on.
        data, _ = send_targets(s, int.from_bytes(h[24:28], "big"))
        return None if b"TargetName=" in data else "no SendTargets after the Reject"

    def nop_ping():
        s = connect(host, port)
        statsn = discovery_login(s)
        ping = b"ping-data"
        s.sendall(bhs(0x40, 0x80, ping, itt=9, f20=0xFFFFFFFF, expstatsn=statsn + 1) + pad4(ping))
        h, d = recv_pdu(s)
        return None if h[0] == 0x20 and d == ping and h[16:20] == b"\0\0\0\x09" else "answer %s %r" % (h[:8].hex(), d)

    def many_connections():
        socks = [connect(host, port) for _ in range(200)]
        for s in socks:
            s.close()
        s = connect(host, port)
        statsn = discovery_login(s)
        data, _ = send_targets(s, statsn)
        return None if b"TargetName=" in data else "no answer after 200 connections"

    for name, fn in [("unknown opcode as the first PDU: closed", first_pdu_unknown),
                     ("SCSI command during login: closed", scsi_command_during_login),
                     ("Login Request without the I bit: closed", login_not_immediate),
                     ("login data segment of 16 MiB: initiator error 0200h, closed", login_segment_too_long),
                     ("login text without '=': initiator error 0200h, closed", login_garbage_text),
                     ("login without InitiatorName: missing parameter 0207h", login_missing_initiator_name),
                     ("login with VersionMin 1: unsupported version 0205h", login_bad_version),
                     ("half a BHS, then close", half_bhs),
                     ("SCSI command in a discovery session: Reject, protocol error", command_in_discovery),
                     ("unknown opcode in full feature phase: Reject, not supported; session goes on",
                      unknown_opcode_in_discovery),
                     ("NOP-Out ping: NOP-In with the same data", nop_ping),
                     ("200 connections opened and dropped, then discovery works", many_connections)]:
        case(name, fn)
    return 0 if all(results) else 1


def idle(host, port, seconds):
    s = connect(host, port)
    discovery_login(s)
    print("logged in", flush=True)
    s.settimeout(float(seconds))
    try:
        print("closed by target" if not s.recv(1) else "data")
    except socket.timeout:
        print("timeout")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        if cmd == "discover":
            discover(*args)
        elif cmd == "normal":
            normal(*args)
        elif cmd == "abuse":
            sys.exit(abuse(*args))
        elif cmd == "idle":
            idle(*args)
        else:
            sys.exit(__doc__)
    except Exception as e:
        print("error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
