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
  iscsi_pdu.py session HOST PORT TARGET  a normal session's full feature phase, well-behaved and
                                         abused; prints "ok NAME" / "not ok NAME: why"
  iscsi_pdu.py reinstate HOST PORT TARGET
                                         the same initiator port twice: the first session ends
  iscsi_pdu.py abuse HOST PORT           malformed PDUs; prints "ok NAME" / "not ok NAME: why"
  iscsi_pdu.py ping HOST PORT TARGET INITIATOR
                                         NOP-In pings (ACL timers at 3 s): one answered, one
                                         not; the connection ends
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


def normal(host, port, target, initiator=INITIATOR):
    """Prints the status of a normal login of INITIATOR (default: this tool's name) without
    authentication."""
    if isinstance(initiator, str):
        initiator = initiator.encode()
    s = connect(host, port)
    s.sendall(login_pdu(keys((b"InitiatorName", initiator), (b"SessionType", b"Normal"),
                             (b"TargetName", target.encode()), (b"AuthMethod", b"None")), 0, 1, True))
    h, _ = recv_pdu(s)
    print(h[36:38].hex())


class Session:
    """A normal session of one connection, demo mode: login, then SCSI commands by hand."""

    def __init__(self, host, port, target, initiator=INITIATOR, isid=ISID, immediate=True):
        global ISID
        self.s = connect(host, port)
        DIGESTS["header"] = DIGESTS["data"] = False
        saved, ISID = ISID, isid
        try:
            login_step(self.s, keys((b"InitiatorName", initiator), (b"SessionType", b"Normal"),
                                    (b"TargetName", target.encode()), (b"AuthMethod", b"None")),
                       0, 1, True, "security stage")
            h, got = login_step(self.s, keys(
                (b"HeaderDigest", b"None"), (b"DataDigest", b"None"),
                (b"InitialR2T", b"Yes"), (b"ImmediateData", b"Yes" if immediate else b"No"),
                (b"MaxRecvDataSegmentLength", b"262144"), (b"FirstBurstLength", b"65536"),
                (b"MaxBurstLength", b"262144"), (b"MaxOutstandingR2T", b"1"),
                (b"ErrorRecoveryLevel", b"0")), 1, 3, True, "operational stage")
        finally:
            ISID = saved
        if h[1] & 0x83 != 0x83:
            raise RuntimeError("no full feature phase: %s" % h[:4].hex())
        self.agreed = got
        self.statsn = int.from_bytes(h[24:28], "big")
        self.cmdsn = int.from_bytes(h[28:32], "big")
        self.maxcmdsn = int.from_bytes(h[32:36], "big")
        self.itt = 0x100

    def next_itt(self):
        self.itt += 1
        return self.itt

    def command(self, cdb, edtl=0, read=False, write=False, data=b"", final=True, lun=0,
                cmdsn=None, immediate=False):
        """Sends a SCSI Command; returns its ITT. Advances CmdSN unless told otherwise."""
        itt = self.next_itt()
        flags = (0x80 if final else 0) | (0x40 if read else 0) | (0x20 if write else 0) | 1
        sn = self.cmdsn if cmdsn is None else cmdsn
        if cmdsn is None and not immediate:
            self.cmdsn += 1
        h = bhs(0x01 | (0x40 if immediate else 0), flags, data, itt=itt, lun=lun << 48, f20=edtl,
                cmdsn=sn, expstatsn=self.statsn + 1, rest=cdb)
        self.s.sendall(frame(h, data))
        return itt

    def data_out(self, itt, ttt, offset, data, datasn=0, final=True):
        # ExpStatSN at 24, DataSN at 36, BufferOffset at 40.
        h = bhs(0x05, 0x80 if final else 0, data, itt=itt, f20=ttt, cmdsn=self.statsn + 1,
                rest=struct.pack(">IIII", 0, datasn, offset, 0))
        self.s.sendall(frame(h, data))

    def recv(self):
        h, d = recv_pdu(self.s)
        if h[0] & 0x3F in (0x21, 0x22, 0x24, 0x26, 0x3F, 0x20) or (h[0] == 0x25 and h[1] & 1):
            self.statsn = int.from_bytes(h[24:28], "big")
        self.maxcmdsn = int.from_bytes(h[32:36], "big")
        return h, d

    def response(self, itt):
        """Collects a command's answer: (status, sense key or None, data)."""
        data = b""
        while True:
            h, d = self.recv()
            op = h[0] & 0x3F
            if int.from_bytes(h[16:20], "big") != itt:
                raise RuntimeError("answer for ITT %#x while waiting for %#x: %s" % (
                    int.from_bytes(h[16:20], "big"), itt, h[:4].hex()))
            if op == 0x25:
                data += d
                if h[1] & 1:
                    return h[3], None, data
            elif op == 0x21:
                key = d[4] & 0x0F if len(d) > 4 else None
                return h[3], key, data
            else:
                raise RuntimeError("unexpected opcode %#x" % op)

    def ready(self):
        """TEST UNIT READY until GOOD: the unit attentions of a new nexus are taken."""
        for _ in range(8):
            if self.response(self.command(bytes(6)))[0] == 0:
                return self
        raise RuntimeError("TEST UNIT READY never GOOD")

    def nop(self):
        itt = self.next_itt()
        self.s.sendall(frame(bhs(0x40, 0x80, b"ping", itt=itt, f20=0xFFFFFFFF, cmdsn=self.cmdsn,
                                 expstatsn=self.statsn + 1), b"ping"))
        h, d = self.recv()
        if h[0] != 0x20 or int.from_bytes(h[16:20], "big") != itt or d != b"ping":
            raise RuntimeError("NOP-Out answered with %s %r" % (h[:4].hex(), d))

    def tmf(self, function, rtt=0xFFFFFFFF, lun=0):
        itt = self.next_itt()
        # Immediate, as open-iscsi sends it: CmdSN does not advance.
        h = bhs(0x42, 0x80 | function, itt=itt, lun=lun << 48, f20=rtt, cmdsn=self.cmdsn,
                expstatsn=self.statsn + 1, rest=struct.pack(">II", self.cmdsn - 1, 0))
        self.s.sendall(frame(h))
        h, _ = self.recv()
        if h[0] != 0x22 or int.from_bytes(h[16:20], "big") != itt:
            raise RuntimeError("TMF answered with %s" % h[:4].hex())
        return h[2]

    def logout(self):
        self.s.sendall(frame(bhs(0x46, 0x80, itt=self.next_itt(), cmdsn=self.cmdsn,
                                 expstatsn=self.statsn + 1)))
        h, _ = self.recv()
        if h[0] != 0x26 or h[2] != 0:
            raise RuntimeError("Logout: %s" % h[:4].hex())


def cdb10(op, lba=0, blocks=0):
    return struct.pack(">BBIBHB", op, 0, lba, 0, blocks, 0)


def session_cases(host, port, target):
    """A normal session, demo mode, LUN 0 writable, 512-byte blocks."""
    results = []

    def case(name, fn):
        try:
            why = fn()
        except Exception as e:
            why = "%s: %s" % (type(e).__name__, e)
        results.append(why is None)
        print("ok %s" % name if why is None else "not ok %s: %s" % (name, why))

    s = Session(host, port, target)

    def unit_attention_then_ready():
        st, key, _ = s.response(s.command(bytes(6)))
        if (st, key) != (2, 6):
            return "first TEST UNIT READY: status %d key %s (want a unit attention)" % (st, key)
        st, key, _ = s.response(s.command(bytes(6)))
        return None if st == 0 else "then status %d key %s" % (st, key)

    def write_with_r2t_then_read():
        data = bytes(range(256)) * 4
        itt = s.command(cdb10(0x2A, 8, 2), edtl=1024, write=True)
        h, _ = s.recv()
        if h[0] != 0x31 or int.from_bytes(h[16:20], "big") != itt:
            return "no R2T: %s" % h[:4].hex()
        ttt = int.from_bytes(h[20:24], "big")
        off, length = struct.unpack(">II", h[40:48])
        if (off, length) != (0, 1024):
            return "R2T for %d bytes at %d" % (length, off)
        s.data_out(itt, ttt, 0, data[:512], 0, final=False)
        s.data_out(itt, ttt, 512, data[512:], 1, final=True)
        st, key, _ = s.response(itt)
        if st != 0:
            return "WRITE: status %d key %s" % (st, key)
        st, key, got = s.response(s.command(cdb10(0x28, 8, 2), edtl=1024, read=True))
        return None if st == 0 and got == data else "READ back: status %d, %d bytes" % (st, len(got))

    def immediate_data():
        data = b"\xa5" * 512
        st, key, _ = s.response(s.command(cdb10(0x2A, 20, 1), edtl=512, write=True, data=data))
        if st != 0:
            return "WRITE: status %d key %s" % (st, key)
        st, _, got = s.response(s.command(cdb10(0x28, 20, 1), edtl=512, read=True))
        return None if got == data else "read back differs"

    def data_out_for_unknown_task_is_dropped():
        s.data_out(0x7777, 0xFFFFFFFF, 0, b"x" * 512)
        s.nop()

    def cmdsn_outside_window_is_ignored():
        s.command(bytes(6), cmdsn=s.cmdsn + 1000)
        s.nop()

    def lun_not_mapped():
        st, key, _ = s.response(s.command(bytes(6), lun=77))
        return None if (st, key) == (2, 5) else "status %d key %s" % (st, key)

    def edtl_too_long():
        st, key, _ = s.response(s.command(cdb10(0x28, 0, 0xFFFF), edtl=64 << 20, read=True))
        return None if (st, key) == (2, 5) else "status %d key %s" % (st, key)

    def abort_task_waiting_for_data():
        itt = s.command(cdb10(0x2A, 30, 4), edtl=2048, write=True)
        h, _ = s.recv()
        if h[0] != 0x31:
            return "no R2T: %s" % h[:4].hex()
        r = s.tmf(1, rtt=itt)
        if r != 0:
            return "ABORT TASK: response %d" % r
        s.nop()  # and nothing came for the aborted task before the NOP-In

    def abort_unknown_task():
        r = s.tmf(1, rtt=0x5555)
        return None if r == 1 else "response %d (want 1, task does not exist)" % r

    def lun_reset():
        r = s.tmf(5)
        if r != 0:
            return "LUN RESET: response %d" % r
        st, key, _ = s.response(s.command(bytes(6)))
        return None if (st, key) == (2, 6) else "after the reset: status %d key %s" % (st, key)

    def unsupported_tmf():
        r = s.tmf(6)
        return None if r in (5, 255) else "TARGET WARM RESET: response %d" % r

    def snack_rejected():
        s.s.sendall(frame(bhs(0x10, 0x80, itt=0xFFFFFFFF, f20=0xFFFFFFFF, expstatsn=s.statsn + 1)))
        h, _ = s.recv()
        return None if h[0] == 0x3F else "answered %s" % h[:4].hex()

    def text_in_session():
        itt = s.next_itt()
        text = keys((b"SendTargets", b"All"))
        s.s.sendall(frame(bhs(0x04, 0x80, text, itt=itt, f20=0xFFFFFFFF, cmdsn=s.cmdsn,
                              expstatsn=s.statsn + 1), text))
        s.cmdsn += 1
        h, _ = s.recv()
        return None if h[0] == 0x24 and h[1] & 0x80 else "answered %s" % h[:4].hex()

    for name, fn in [("unit attention, then TEST UNIT READY is GOOD", unit_attention_then_ready),
                     ("WRITE with an R2T and two Data-Outs, READ back", write_with_r2t_then_read),
                     ("WRITE with immediate data, READ back", immediate_data),
                     ("a Data-Out for an unknown task is dropped", data_out_for_unknown_task_is_dropped),
                     ("a CmdSN outside the window is ignored", cmdsn_outside_window_is_ignored),
                     ("a LUN that is not mapped: ILLEGAL REQUEST", lun_not_mapped),
                     ("an expected length beyond 8 MiB: ILLEGAL REQUEST", edtl_too_long),
                     ("ABORT TASK of a WRITE waiting for its data", abort_task_waiting_for_data),
                     ("ABORT TASK of an unknown task: task does not exist", abort_unknown_task),
                     ("LOGICAL UNIT RESET, then a unit attention", lun_reset),
                     ("TARGET WARM RESET is not supported", unsupported_tmf),
                     ("SNACK at ErrorRecoveryLevel 0: Reject", snack_rejected),
                     ("Text in a normal session: a final answer", text_in_session)]:
        case(name, fn)
    case("Logout", s.logout)

    def broken_connections():
        # A WRITE waiting for data, a READ not yet read, then the connection goes: the target
        # cleans up and takes the next session.
        t = Session(host, port, target).ready()
        t.command(cdb10(0x2A, 40, 8), edtl=4096, write=True)
        t.command(cdb10(0x28, 0, 64), edtl=32768, read=True)
        t.s.close()
        u = Session(host, port, target)
        u.s.sendall(bhs(0x01, 0x81, dlen=0)[:20])  # half a PDU, then gone
        u.s.close()
        v = Session(host, port, target)
        v.response(v.command(bytes(6)))
        v.logout()

    def data_out_out_of_order_ends_connection():
        t = Session(host, port, target).ready()
        itt = t.command(cdb10(0x2A, 50, 2), edtl=1024, write=True)
        h, _ = t.recv()
        if h[0] != 0x31:
            return "no R2T: %s" % h[:4].hex()
        ttt = int.from_bytes(h[20:24], "big")
        t.data_out(itt, ttt, 512, b"y" * 512, 0)
        h, _ = t.recv()
        if h[0] != 0x3F:
            return "answered %s" % h[:4].hex()
        return None if closed(t.s) else "still open"

    def immediate_data_beyond_first_burst():
        t = Session(host, port, target)
        t.command(cdb10(0x2A, 0, 160), edtl=81920, write=True, data=b"z" * 81920, final=True)
        h, _ = t.recv()
        return None if h[0] == 0x3F else "answered %s" % h[:4].hex()

    def rejected_command_cmdsn_used_again():
        t = Session(host, port, target)
        # A READ with immediate data: Reject (protocol error); the connection goes on.
        t.command(cdb10(0x28, 0, 1), edtl=512, read=True, data=b"r" * 512)
        h, _ = t.recv()
        if h[0] != 0x3F:
            return "answered %s" % h[:4].hex()
        # The rejected command's CmdSN is not taken (RFC 7143 11.17.1): the initiator plugs
        # the gap with it.
        t.cmdsn -= 1
        if int.from_bytes(h[28:32], "big") != t.cmdsn:
            return "ExpCmdSN %d after the Reject, not %d" % (int.from_bytes(h[28:32], "big"), t.cmdsn)
        t.response(t.command(bytes(6)))  # any status: answered, not dropped as a duplicate
        return None

    def data_out_never_comes():
        t = Session(host, port, target).ready()
        t.command(cdb10(0x2A, 60, 2), edtl=1024, write=True)
        h, _ = t.recv()
        if h[0] != 0x31:
            return "no R2T: %s" % h[:4].hex()
        # dataout_timeout (3 s): ErrorRecoveryLevel 0 ends the connection.
        return None if closed(t.s, wait=12) else "still open"

    def extended_cdb():
        t = Session(host, port, target).ready()
        # READ(32) of one block: the last 16 bytes in an Extended CDB AHS (AHSLength 17).
        cdb = bytearray(32)
        cdb[0], cdb[7], cdb[9], cdb[31] = 0x7F, 0x18, 0x09, 1
        ext = bytes([0, 17, 1, 0]) + bytes(cdb[16:])
        itt = t.next_itt()
        t.s.sendall(frame(bhs(0x01, 0xC1, itt=itt, f20=512, cmdsn=t.cmdsn, expstatsn=t.statsn + 1,
                              rest=bytes(cdb[:16]), ahs=len(ext) // 4) + ext))
        t.cmdsn += 1
        h, d = t.recv()
        # Whole, it is refused as READ(32) is on a device without type 2 protection: INVALID
        # COMMAND OPERATION CODE (20h); cut to 16 bytes it would be INVALID FIELD IN CDB (24h).
        if h[0] != 0x21 or h[3] != 2 or len(d) < 16 or d[14] != 0x20:
            return "READ(32) answered %s, sense %s" % (h[:4].hex(), d.hex())
        # An AHS of length 0: Reject, and the CmdSN is used again.
        itt = t.next_itt()
        t.s.sendall(frame(bhs(0x01, 0x81, itt=itt, cmdsn=t.cmdsn, expstatsn=t.statsn + 1,
                              ahs=1) + bytes([0, 0, 1, 0])))
        h, _ = t.recv()
        if h[0] != 0x3F:
            return "a malformed AHS answered %s" % h[:4].hex()
        t.response(t.command(bytes(6)))
        return None

    case("a 32-byte CDB in an Extended CDB AHS reaches the core whole; a malformed AHS: Reject",
         extended_cdb)
    case("connections broken mid-command; the next session works", broken_connections)
    case("a WRITE whose Data-Out never comes: the connection ends (dataout_timeout)",
         data_out_never_comes)
    case("a Data-Out at the wrong offset: Reject, connection closed", data_out_out_of_order_ends_connection)
    case("immediate data beyond FirstBurstLength: Reject", immediate_data_beyond_first_burst)
    case("a rejected command's CmdSN is used again (immediate data on a READ)",
         rejected_command_cmdsn_used_again)
    return 0 if all(results) else 1


def reinstate(host, port, target):
    """Session reinstatement (RFC 7143 6.3.5): a second login of the same initiator port (name
    and ISID) ends the first session; a login with another ISID is a session of its own."""
    a = Session(host, port, target)
    a.response(a.command(bytes(6)))
    other = Session(host, port, target, isid=bytes([0x80, 0, 9, 9, 9, 9]))
    other.response(other.command(bytes(6)))
    b = Session(host, port, target)
    if not closed(a.s):
        raise RuntimeError("the first session is still open")
    b.response(b.command(bytes(6)))
    other.nop()
    b.logout()
    other.logout()
    print("ok")


def ping(host, port, target, initiator):
    """With the ACL's nopin_timeout and nopin_response_timeout at 3 s: an idle session gets a
    NOP-In ping, which is answered; the next one, unanswered, ends the connection."""
    t = Session(host, port, target, initiator=initiator.encode())
    t.s.settimeout(10)
    for answer in (True, False):
        h, _ = t.recv()
        ttt = int.from_bytes(h[20:24], "big")
        if h[0] & 0x3F != 0x20 or h[16:20] != b"\xff" * 4 or ttt == 0xFFFFFFFF:
            raise RuntimeError("not a NOP-In ping: %s" % h[:24].hex())
        if answer:
            t.s.sendall(frame(bhs(0x40, 0x80, itt=0xFFFFFFFF, f20=ttt, cmdsn=t.cmdsn,
                                  expstatsn=t.statsn + 1)))
    if not closed(t.s, wait=10):
        raise RuntimeError("still open 10 s after an unanswered ping")
    print("ok")


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
        elif cmd == "session":
            sys.exit(session_cases(*args))
        elif cmd == "reinstate":
            reinstate(*args)
        elif cmd == "abuse":
            sys.exit(abuse(*args))
        elif cmd == "trickle":
            trickle(*args)
        elif cmd == "ping":
            ping(*args)
        elif cmd == "idle":
            idle(*args)
        else:
            sys.exit(__doc__)
    except Exception as e:
        print("error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
