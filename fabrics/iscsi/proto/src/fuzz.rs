//! Fuzzing entry points: each takes arbitrary bytes, drives a codec with them and asserts the
//! invariants that must hold for any input. `tests/corpus.rs` replays the committed corpus
//! through them; `fuzz/` runs them under libFuzzer.

use crate::pdu::{self, Framing, Request, Response, BHS_LEN};
use crate::text::{self, Declared, Negotiation, Params, SessionType, Writer};

/// An initiator BHS (the first 48 bytes; shorter inputs are padded with zeroes).
pub fn pdu(data: &[u8]) {
    let mut b = [0u8; BHS_LEN];
    let n = data.len().min(BHS_LEN);
    b[..n].copy_from_slice(&data[..n]);
    let f = Framing::of(&b, data.len() % 2 == 1, data.len() % 3 == 1);
    assert!(f.tail_len() >= f.data_at() + f.data);
    assert!(f.tail_len() <= 1020 + 4 + (1 << 24) + 4);
    match pdu::parse(&b) {
        Ok(p) => {
            assert_eq!(p.data_len, pdu::data_len(&b));
            assert_eq!(p.ahs_len, usize::from(b[4]) * 4);
            let op = pdu::opcode(&b);
            let kind = match p.request {
                Request::Nop(_) => pdu::op::NOP_OUT,
                Request::Command(c) => {
                    assert_eq!(&c.cdb[..], &b[32..48]);
                    pdu::op::SCSI_COMMAND
                }
                Request::TaskMgmt(_) => pdu::op::TASK_MGMT,
                Request::Login(l) => {
                    assert!(p.immediate && !(l.transit && l.continue_));
                    assert!(l.csg != pdu::Stage::FullFeature);
                    pdu::op::LOGIN
                }
                Request::Text(t) => {
                    assert!(!(t.final_ && t.continue_));
                    pdu::op::TEXT
                }
                Request::DataOut(_) => pdu::op::DATA_OUT,
                Request::Logout(_) => pdu::op::LOGOUT,
                Request::Snack(_) => pdu::op::SNACK,
            };
            assert_eq!(op, kind);
        }
        Err(r) => assert!((r.byte as usize) < BHS_LEN),
    }
    // What follows the BHS as its AHS: a SCSI Command's whole CDB, 16 to 32 bytes.
    let mut cdb = [0u8; 32];
    let head: [u8; 16] = core::array::from_fn(|i| b[32 + i]);
    if let Some(n) = pdu::full_cdb(&head, data.get(BHS_LEN..).unwrap_or(&[]), &mut cdb) {
        assert!((16..=32).contains(&n));
        assert_eq!(cdb[..16], head);
    }
    // The same bytes as a target response's fields: the encoding keeps its opcode and length.
    let word = |i: usize| {
        let mut w = [0u8; 4];
        for (j, x) in w.iter_mut().enumerate() {
            *x = b[(4 * i + j) % BHS_LEN];
        }
        u32::from_be_bytes(w)
    };
    let responses = [
        Response::NopIn {
            lun: u64::from(word(2)) << 32,
            itt: word(3),
            ttt: word(4),
        },
        Response::Scsi {
            itt: word(3),
            response: b[2],
            status: b[3],
            exp_datasn: word(5),
            residual: pdu::Residual::of(word(6), word(7)),
        },
        Response::DataIn {
            final_: b[1] & 1 != 0,
            status: (b[1] & 2 != 0).then_some(b[3]),
            lun: 0,
            itt: word(3),
            datasn: word(8),
            offset: word(9),
            residual: pdu::Residual::of(word(10), word(11)),
        },
        Response::R2t {
            lun: 0,
            itt: word(3),
            ttt: word(4),
            r2tsn: word(5),
            offset: word(6),
            length: word(7),
        },
    ];
    for r in &responses {
        let mut out = [0u8; BHS_LEN];
        pdu::encode(r, pdu::Sn::default(), word(1), &mut out);
        assert_eq!(pdu::data_len(&out), word(1).min(pdu::MAX_DATA_SEGMENT));
        assert!(
            pdu::parse(&out).is_err(),
            "a target PDU is never taken as a request"
        );
    }
}

/// A text data segment, negotiated as a leading login of both session types and as a later
/// connection; the same bytes as a portal name round-trip through `portal`.
pub fn text(data: &[u8]) {
    if let Some((ip, port)) = crate::portal::parse(data) {
        let mut b = [0u8; 64];
        let n = crate::portal::format(&ip, port, &mut b).expect("a parsed portal formats");
        assert_eq!(crate::portal::parse(&b[..n]), Some((ip, port)));
    }
    for p in text::pairs(data).flatten() {
        assert!(
            !p.0.is_empty()
                && p.0.len() <= text::MAX_KEY
                && !p.0.contains(&b'=')
                && !p.0.contains(&0)
        );
        assert!(!p.1.contains(&0));
    }
    let ours = Params::default();
    for (session, leading) in [
        (SessionType::Normal, true),
        (SessionType::Discovery, true),
        (SessionType::Normal, false),
    ] {
        let mut n = Negotiation::new(ours);
        let mut buf = [0u8; 8192];
        let mut w = Writer::new(&mut buf);
        let mut d = Declared::default();
        let mut ok = true;
        for p in text::pairs(data) {
            match p.and_then(|(k, v)| n.offer(k, v, session, leading, &mut d, &mut w)) {
                Ok(_) => {}
                Err(_) => {
                    ok = false;
                    break;
                }
            }
        }
        if ok && n.finish(&mut w).is_err() {
            ok = false;
        }
        // The response is itself a well-formed text segment.
        let written = w.len();
        assert!(text::pairs(&buf[..written]).all(|p| p.is_ok()));
        let a = n.agreed;
        // Agreed values never exceed what the target offered nor leave their ranges.
        assert!(a.max_burst_length <= ours.max_burst_length && a.max_burst_length >= 512);
        assert!(a.first_burst_length <= ours.first_burst_length);
        if ok {
            assert!(a.first_burst_length <= a.max_burst_length);
        }
        assert!(a.max_outstanding_r2t >= 1 && a.max_outstanding_r2t <= ours.max_outstanding_r2t);
        assert!(a.error_recovery_level <= ours.error_recovery_level);
        assert!(a.max_connections <= ours.max_connections);
        assert!(a.default_time2wait >= ours.default_time2wait && a.default_time2wait <= 3600);
        assert!(
            a.max_xmit_data_segment_length >= 512
                && a.max_xmit_data_segment_length <= ours.max_xmit_data_segment_length
        );
        assert!(a.initial_r2t || !ours.initial_r2t);
        assert!(!a.immediate_data || ours.immediate_data);
        if session == SessionType::Discovery || !leading {
            assert_eq!(a.max_burst_length, ours.max_burst_length);
        }
    }
}

/// A stand-in for the kernel's crypto in fuzzing: a keyed sum, counting random bytes.
struct FuzzCrypto(core::cell::Cell<u8>);

impl crate::chap::Crypto for FuzzCrypto {
    fn has(&self, _: crate::chap::Alg) -> bool {
        true
    }
    fn digest(&self, _: crate::chap::Alg, parts: &[&[u8]], out: &mut [u8]) -> bool {
        let sum = parts
            .iter()
            .flat_map(|p| p.iter())
            .fold(0u8, |a, b| a.wrapping_mul(3).wrapping_add(*b));
        out.fill(sum);
        true
    }
    fn random(&self, out: &mut [u8]) {
        for o in out {
            *o = self.0.get();
            self.0.set(self.0.get().wrapping_add(1));
        }
    }
}

/// A portal with one target (`iqn.t`, TPG 1) whose ACL of `iqn.i` needs CHAP (user `u`,
/// secret `s`, mutual `t`/`m`) when the input's first byte is odd.
struct FuzzPortal(bool);

impl crate::login::Portal for FuzzPortal {
    type Target = u8;
    fn target(&self, name: &[u8]) -> Result<u8, crate::login::Status> {
        if name == b"iqn.t" {
            Ok(1)
        } else {
            Err(pdu::login_status::NOT_FOUND)
        }
    }
    fn admit(
        &self,
        _: Option<u8>,
        initiator: &[u8],
    ) -> Result<crate::login::Auth<'_>, crate::login::Status> {
        use crate::chap::Secret;
        if initiator != b"iqn.i" {
            return Err(pdu::login_status::FORBIDDEN);
        }
        Ok(if self.0 {
            crate::login::Auth::Chap {
                secret: Secret {
                    user: b"u",
                    password: b"s",
                },
                mutual: Some(Secret {
                    user: b"t",
                    password: b"m",
                }),
            }
        } else {
            crate::login::Auth::None
        })
    }
    fn tpgt(&self, _: u8) -> u16 {
        1
    }
    fn params(&self, _: Option<u8>) -> Params {
        Params::default()
    }
}

/// A login: the input's first byte picks the portal's authentication (odd: CHAP), the rest is
/// a sequence of Login Requests separated by FFh bytes, each a flags byte (byte 1 of the BHS:
/// T, C, CSG, NSG) followed by its text.
pub fn login(data: &[u8]) {
    use crate::login::{Login, Step};
    let portal = FuzzPortal(data.first().is_some_and(|b| b & 1 == 1));
    let crypto = FuzzCrypto(core::cell::Cell::new(0));
    let mut login: Login<u8> = Login::new();
    for part in data.get(1..).unwrap_or_default().split(|&b| b == 0xff) {
        let Some((&flags, text)) = part.split_first() else {
            continue;
        };
        let mut b = [0u8; BHS_LEN];
        b[0] = 0x43;
        b[1] = flags;
        let Ok(pdu::Pdu {
            request: Request::Login(req),
            ..
        }) = pdu::parse(&b)
        else {
            continue;
        };
        let mut buf = [0u8; 4096];
        let mut w = Writer::new(&mut buf);
        let step = if req.continue_ {
            login.partial(&req)
        } else {
            login.step(&req, text, &portal, &crypto, &mut w)
        };
        let len = w.len();
        assert!(text::pairs(&buf[..len]).all(|p| p.is_ok()));
        match step {
            Step::Reply { transit, csg, nsg } => {
                assert!(!transit && csg == nsg || transit && (nsg as u8) > (csg as u8))
            }
            Step::FullFeature { .. } => {
                let a = login.agreed();
                assert!(a.first_burst_length <= a.max_burst_length);
                assert!(login.initiator.is_some());
                assert_eq!(login.target.is_some(), login.session == SessionType::Normal);
                return;
            }
            Step::Fail(s) => {
                assert!(s.0 == 2 || s.0 == 3);
                return;
            }
        }
    }
}

/// A write's data: limits and the command from the first 16 bytes, then R2T requests and
/// Data-Out PDUs (9 bytes each: kind, TTT choice, DataSN, offset delta, length).
pub fn xfer(data: &[u8]) {
    use crate::xfer::{data_in, Limits, Write};
    if data.len() < 16 {
        return;
    }
    let w16 = |i: usize| u32::from(u16::from_be_bytes([data[i], data[i + 1]]));
    let limits = Limits {
        initial_r2t: data[0] & 1 != 0,
        immediate_data: data[0] & 2 != 0,
        first_burst: 512 + w16(1) * 8,
        max_burst: 512 + w16(3) * 8,
        max_outstanding_r2t: u32::from(data[5] % 20),
        max_recv_segment: 512 + w16(6),
        max_xmit_segment: 512 + w16(8),
    };
    let edtl = w16(10) * 16;
    let immediate = w16(12).min(edtl);
    let mut total = 0;
    for d in data_in(edtl, &limits) {
        assert_eq!(d.offset, total);
        assert!(d.len > 0 && d.len <= limits.max_xmit_segment.max(512));
        total += d.len;
        assert_eq!(d.last, total == edtl);
    }
    assert_eq!(total, edtl);
    let Ok(mut w) = Write::new(edtl, immediate, data[14] & 1 != 0, limits) else {
        return;
    };
    let mut ttts = [0u32; 64];
    let mut issued = 0;
    for op in data[16..].chunks(9) {
        if op.len() < 9 {
            break;
        }
        let before = w.received();
        if op[0] & 1 == 0 {
            if let Some(r) = w.next_r2t(issued as u32 + 1) {
                assert!(r.len > 0 && r.offset + r.len <= edtl && r.len <= limits.max_burst);
                ttts[issued % 64] = r.ttt;
                issued += 1;
            }
            continue;
        }
        let ttt = if op[1] == 0 {
            pdu::RESERVED_TAG
        } else {
            ttts[usize::from(op[1]) % 64]
        };
        let offset = if op[3] & 0x80 == 0 {
            before
        } else {
            u32::from_be_bytes([op[4], op[5], op[6], 0])
        };
        let len = u32::from(u16::from_be_bytes([op[7], op[8]]));
        let d = pdu::DataOut {
            final_: op[0] & 2 != 0,
            lun: 0,
            ttt,
            exp_statsn: 0,
            datasn: u32::from(op[2]),
            offset,
        };
        match w.data_out(&d, len) {
            // Taken data is the next in order and never goes past the command.
            Ok(()) => {
                assert!(offset == before && w.received() == before + len && w.received() <= edtl)
            }
            Err(_) => assert_eq!(w.received(), before),
        }
        assert_eq!(w.complete(), w.received() == edtl);
    }
}

/// A TPG's `param/`: writes `key=value` lines (and flips `authentication` on a line without
/// `=`), then checks what a file reads back and what a login would offer.
pub fn tpg_param(data: &[u8]) {
    use crate::tpg_param::{TpgParams, KEYS};
    let mut p = TpgParams::default();
    for line in data.split(|&c| c == b'\n') {
        let Some(eq) = line.iter().position(|&c| c == b'=') else {
            p.authentication(line.len() % 2 == 1);
            continue;
        };
        let (key, value) = (&line[..eq], &line[eq + 1..]);
        let mut out = [0u8; 300];
        if p.set(key, value).is_ok() {
            let n = p.show(key, &mut out).unwrap();
            let shown = &out[..n];
            match text::number(value) {
                Some(v) if !matches!(key, b"TargetAlias" | b"IFMarkInt" | b"OFMarkInt") => {
                    assert_eq!(text::number(shown), Some(v))
                }
                _ => assert_eq!(shown, value),
            }
        }
    }
    for (k, _) in KEYS {
        let mut out = [0u8; 300];
        let n = p.show(k, &mut out).unwrap();
        // What a file reads, written back, is taken unchanged.
        let mut q = p;
        assert!(q.set(k, &out[..n]).is_ok(), "{k:?}");
    }
    let o = p.offer();
    assert_eq!((o.max_connections, o.error_recovery_level), (1, 0));
    assert!(o.data_pdu_in_order && o.data_sequence_in_order);
    assert!((1..=crate::xfer::MAX_OUTSTANDING_R2T as u32).contains(&o.max_outstanding_r2t));
    for v in [
        o.max_recv_data_segment_length,
        o.max_xmit_data_segment_length,
        o.max_burst_length,
        o.first_burst_length,
    ] {
        assert!((512..=16777215).contains(&v));
    }
    assert!(o.header_digest[0].is_some() && o.data_digest[0].is_some());
}
