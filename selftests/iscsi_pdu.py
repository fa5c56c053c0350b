#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A minimal iSCSI initiator over raw TCP, for what open-iscsi will not send.

  iscsi_pdu.py discover HOST PORT [crc32c]  discovery session (CRC32C digests): SendTargets=All,
                                         one pair a line
  iscsi_pdu.py digest-errors HOST PORT   wrong data digest: Reject; wrong header digest: closed
  iscsi_pdu.py chap HOST PORT USER SECRET ALG [MUSER MSECRET]
                                         discovery with CHAP (CHAP_A ALG; mutual): "ok" or
                                         the login status
  iscsi_pdu.py normal HOST PORT TARGET   a normal session's login: prints its status (hex)
  iscsi_pdu.py abuse HOST PORT           malformed PDUs; prints "ok NAME" / "not ok NAME: why"
  iscsi_pdu.py idle HOST PORT SECONDS    a discovery session that sits idle (for rmdir tests)
  iscsi_pdu.py trickle HOST PORT         a login kept open by C-bit requests: seconds until closed
"""
import hashlib
import socket
import struct
import sys
import time

INITIATOR = b"iqn.2026-12.org.rtarget:selftest"
ISID = bytes([0x80, 0x00, 0x01, 0x02, 0x03, 0x04])


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


# CRC32C digests (RFC 7143 13.1), once a login agreed on them: header and data.
DIGESTS = {"header": False, "data": False}
_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data, crc=0xFFFFFFFF):
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def digest(data):
    return struct.pack("<I", crc32c(data) ^ 0xFFFFFFFF)


def frame(header, data=b"", corrupt=None):
    """A PDU on the wire: header (BHS), its digest, padded data and its digest. corrupt names
    a digest to get wrong."""
    out = header
    if DIGESTS["header"]:
        d = digest(header)
        out += bytes([d[0] ^ 1]) + d[1:] if corrupt == "header" else d
    out += pad4(data)
    if DIGESTS["data"] and data:
        d = digest(pad4(data))
        out += bytes([d[0] ^ 1]) + d[1:] if corrupt == "data" else d
    return out


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
    if DIGESTS["header"] and recv_exact(s, 4) != digest(h):
        raise RuntimeError("wrong header digest from the target")
    dlen = int.from_bytes(h[5:8], "big")
    padded = recv_exact(s, (dlen + 3) & ~3) if dlen else b""
    if DIGESTS["data"] and dlen and recv_exact(s, 4) != digest(padded):
        raise RuntimeError("wrong data digest from the target")
    return h, padded[:dlen]


def pairs(data):
    return [p for p in data.split(b"\0") if p]


def connect(host, port):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class LoginFailed(RuntimeError):
    def __init__(self, stage, status, data):
        super().__init__("%s: status %s %r" % (stage, status, data))
        self.status = status


CHAP_HASHES = {5: hashlib.md5, 6: hashlib.sha1, 7: hashlib.sha256, 8: hashlib.sha3_256}


def chap_binary(v):
    v = v.decode()
    return bytes.fromhex(v[2:]) if v[:2].lower() == "0x" else __import__("base64").b64decode(v[2:])


def login_step(s, text, csg, nsg, transit, stage):
    s.sendall(login_pdu(text, csg, nsg, transit))
    h, d = recv_pdu(s)
    if h[0] != 0x23 or h[36:38] != b"\0\0":
        raise LoginFailed(stage, h[36:38].hex(), d)
    return h, dict(p.split(b"=", 1) for p in pairs(d))


def chap_security(s, chap):
    """CHAP in the security stage: chap = (user, secret, alg, mutual (user, secret) or None)."""
    user, secret, alg, mutual = chap
    names = keys((b"InitiatorName", INITIATOR), (b"SessionType", b"Discovery"), (b"AuthMethod", b"CHAP,None"))
    _, got = login_step(s, names, 0, 0, False, "AuthMethod")
    if got.get(b"AuthMethod") != b"CHAP":
        raise RuntimeError("AuthMethod answered %r" % got)
    _, got = login_step(s, keys((b"CHAP_A", str(alg).encode())), 0, 0, False, "CHAP_A")
    if int(got[b"CHAP_A"]) != alg:
        raise RuntimeError("CHAP_A answered %r" % got)
    ident, challenge = int(got[b"CHAP_I"]), chap_binary(got[b"CHAP_C"])
    h = CHAP_HASHES[alg]
    if len(challenge) != h().digest_size:
        raise RuntimeError("challenge of %d bytes" % len(challenge))
    resp = h(bytes([ident]) + secret + challenge).hexdigest().encode()
    text = keys((b"CHAP_N", user), (b"CHAP_R", b"0x" + resp))
    mine = bytes(range(16, 48))
    if mutual:
        text += keys((b"CHAP_I", b"77"), (b"CHAP_C", b"0x" + mine.hex().encode()))
    _, got = login_step(s, text, 0, 1, True, "CHAP_R")
    if mutual:
        want = h(bytes([77]) + mutual[1] + mine).digest()
        if got.get(b"CHAP_N") != mutual[0] or chap_binary(got[b"CHAP_R"]) != want:
            raise RuntimeError("the target's mutual CHAP response is wrong: %r" % got)


def discovery_login(s, digests=False, chap=None):
    """Security then operational stage of a discovery session; returns StatSN."""
    DIGESTS["header"] = DIGESTS["data"] = False
    if chap:
        chap_security(s, chap)
    else:
        login_step(s, keys((b"InitiatorName", INITIATOR), (b"SessionType", b"Discovery"),
                           (b"AuthMethod", b"None")), 0, 1, True, "security stage")
    want = b"CRC32C" if digests else b"None"
    s.sendall(login_pdu(keys((b"HeaderDigest", want), (b"DataDigest", want),
                             (b"MaxRecvDataSegmentLength", b"262144")), 1, 3, True))
    h, d = recv_pdu(s)
    if h[0] != 0x23 or h[36:38] != b"\0\0" or h[1] & 0x83 != 0x83:
        raise RuntimeError("operational stage: %s %r" % (h[:8].hex(), d))
    got = dict(p.split(b"=", 1) for p in pairs(d))
    if got.get(b"HeaderDigest") != want or got.get(b"DataDigest") != want:
        raise RuntimeError("digests not agreed: %r" % d)
    DIGESTS["header"] = DIGESTS["data"] = digests
    return int.from_bytes(h[24:28], "big")


def send_targets(s, statsn, cmdsn=0):
    text = keys((b"SendTargets", b"All"))
    out, ttt = b"", 0xFFFFFFFF
    while True:
        s.sendall(frame(bhs(0x04, 0x80, text, itt=2, f20=ttt, cmdsn=cmdsn, expstatsn=statsn + 1), text))
        h, d = recv_pdu(s)
        if h[0] != 0x24:
            raise RuntimeError("Text: answered with opcode %#x" % h[0])
        out += d
        statsn = int.from_bytes(h[24:28], "big")
        if not h[1] & 0x40:
            return out, statsn
        text, ttt, cmdsn = b"", int.from_bytes(h[20:24], "big"), cmdsn + 1


def logout(s, statsn, cmdsn):
    s.sendall(frame(bhs(0x46, 0x80, itt=3, cmdsn=cmdsn, expstatsn=statsn + 1)))
    h, _ = recv_pdu(s)
    if h[0] != 0x26 or h[2] != 0:
        raise RuntimeError("Logout: %s" % h[:4].hex())


def discover(host, port, digests=""):
    s = connect(host, port)
    try:
        statsn = discovery_login(s, digests == "crc32c")
    except LoginFailed as e:
        print("login failed: %s" % e.status)
        sys.exit(2)
    data, statsn = send_targets(s, statsn)
    for p in pairs(data):
        print(p.decode())
    logout(s, statsn, 1)


def chap(host, port, user, secret, alg, muser=None, msecret=None):
    """A discovery session authenticated by CHAP (mutual with MUSER, MSECRET): prints "ok",
    or the login status if the target refuses it."""
    s = connect(host, port)
    mutual = (muser.encode(), msecret.encode()) if muser else None
    try:
        statsn = discovery_login(s, chap=(user.encode(), secret.encode(), int(alg), mutual))
    except LoginFailed as e:
        print(e.status)
        return
    data, statsn = send_targets(s, statsn)
    print("ok" if b"TargetName=" in data else "no SendTargets")


def digest_errors(host, port):
    """With CRC32C agreed: a wrong data digest gets a Reject (reason 02h) and the session goes
    on; a wrong header digest ends the connection."""
    s = connect(host, port)
    statsn = discovery_login(s, True)
    text = keys((b"SendTargets", b"All"))
    s.sendall(frame(bhs(0x04, 0x80, text, itt=2, f20=0xFFFFFFFF, expstatsn=statsn + 1), text, corrupt="data"))
    h, d = recv_pdu(s)
    if h[0] != 0x3F or h[2] != 0x02:
        raise RuntimeError("wrong data digest: answer %s" % h[:8].hex())
    data, statsn = send_targets(s, int.from_bytes(h[24:28], "big"))
    if b"TargetName=" not in data:
        raise RuntimeError("no SendTargets after the data digest error")
    s.sendall(frame(bhs(0x40, 0x80, itt=9, f20=0xFFFFFFFF, expstatsn=statsn + 1), corrupt="header"))
    if not closed(s):
        raise RuntimeError("a wrong header digest did not end the connection")
    print("ok")


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


def trickle(host, port):
    """Login Requests with the C bit, one a second, that never finish the login: prints how
    many seconds passed before the target closed the connection."""
    s = connect(host, port)
    t0 = time.time()
    try:
        for _ in range(20):
            s.sendall(login_pdu(keys((b"InitiatorName", INITIATOR)), 0, 0, False, cont=True))
            recv_pdu(s)
            time.sleep(1)
        print("still open")
    except (EOFError, ConnectionResetError, BrokenPipeError, socket.timeout):
        print(int(time.time() - t0))


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
        elif cmd == "chap":
            chap(*args)
        elif cmd == "digest-errors":
            digest_errors(*args)
        elif cmd == "normal":
            normal(*args)
        elif cmd == "abuse":
            sys.exit(abuse(*args))
        elif cmd == "trickle":
            trickle(*args)
        elif cmd == "idle":
            idle(*args)
        else:
            sys.exit(__doc__)
    except Exception as e:
        print("error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
