//! Fuzzing entry points: each takes arbitrary bytes, drives a codec with them and asserts the
//! invariants that must hold for any input. `tests/corpus.rs` replays the committed corpus
//! through them; `fuzz/` runs them under libFuzzer.

use crate::admin::{self, Admin};
use crate::capsule::{self, Cqe, Sqe, Status, Transfer};
use crate::features::{self, Features};
use crate::log;
use crate::nvm::{self, Nvm};
use crate::pdu::{self, Fatal, Framing, Negotiated, CH_LEN, DIGEST_LEN, SQE_LEN};
use crate::resv;

fn byte(data: &[u8], i: usize) -> u8 {
    data.get(i).copied().unwrap_or(0)
}

fn le32(data: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(core::array::from_fn(|j| byte(data, i + j)))
}

fn padded<const N: usize>(data: &[u8]) -> [u8; N] {
    core::array::from_fn(|i| byte(data, i))
}

/// A host PDU's common header (bytes 0-7) against a connection state drawn from bytes 8-16,
/// then its type's header decoded from the same bytes, and the controller's encoders fed
/// the numbers found there.
pub fn pdu(data: &[u8]) {
    let ch: [u8; CH_LEN] = padded(data);
    let sel = byte(data, 8);
    let n = Negotiated {
        hdgst: sel & 1 != 0,
        ddgst: sel & 2 != 0,
        cpda: sel >> 2 & 0x1f,
        inline_data: le32(data, 9) & 0xf_ffff,
        maxh2cdata: le32(data, 13) & 0xff_ffff | 4096,
    };
    let state = (sel & 0x80 == 0).then_some(&n);
    match pdu::frame(&ch, state) {
        Ok(f) => framed(&f, state),
        Err(Fatal { fei, .. }) => assert!(fei < 24),
    }

    let hdr: [u8; pdu::hlen::IC] = padded(data);
    if let Ok(req) = pdu::ic_req(&hdr) {
        assert!(req.hpda <= pdu::MAX_HPDA);
        let mut out = [0u8; pdu::hlen::IC];
        pdu::ic_resp(&n, &mut out);
        let h = pdu::Header::decode(&padded(&out));
        assert!(h.ty == pdu::ty::IC_RESP && h.hlen == 128 && h.plen == 128);
        assert_eq!(out[11], u8::from(n.hdgst) | u8::from(n.ddgst) << 1);
    }

    let short: [u8; pdu::hlen::SHORT] = padded(data);
    if let Ok(f) = pdu::frame(&ch, Some(&n)) {
        if let Ok(d) = pdu::h2c_data(&short, &f) {
            assert!(d.datal == f.data && d.datal > 0);
            let (r2to, r2tl, received) = (le32(data, 24), le32(data, 28), le32(data, 32));
            if pdu::h2c_in_r2t(&d, r2to, r2tl, received).is_ok() {
                assert_eq!(Some(d.datao), r2to.checked_add(received));
                assert!(u64::from(received) + u64::from(d.datal) <= u64::from(r2tl));
            }
        }
    }

    // The controller's PDUs frame the way a host reads them.
    let c2h = pdu::C2hData {
        cccid: le32(data, 20) as u16,
        datao: le32(data, 24),
        datal: le32(data, 28) & 0xff_ffff | 1,
        last: sel & 0x20 != 0,
        success: sel & 0x40 != 0,
    };
    let hpda = byte(data, 36) & 0x1f;
    let mut out = [0u8; pdu::hlen::SHORT];
    pdu::c2h_data(&c2h, &n, hpda, &mut out);
    let h = pdu::Header::decode(&padded(&out));
    let head = pdu::hlen::SHORT + if n.hdgst { DIGEST_LEN } else { 0 };
    let pdo = usize::from(h.pdo);
    assert!(pdo >= head && pdo % ((usize::from(hpda) + 1) * 4) == 0 && pdo < head + 128);
    let dd = if n.ddgst { DIGEST_LEN } else { 0 };
    assert_eq!(h.plen as usize, pdo + c2h.datal as usize + dd);
    assert_eq!(h.flags & pdu::flag::SUCCESS != 0, c2h.last && c2h.success);

    let mut term = [0u8; pdu::MAX_TERM_PLEN];
    let len = pdu::c2h_term_req(
        Fatal {
            fes: pdu::Fes::InvalidHeaderField,
            fei: le32(data, 0),
        },
        data,
        &mut term,
    );
    assert!((pdu::hlen::SHORT..=pdu::MAX_TERM_PLEN).contains(&len));
    assert_eq!(pdu::Header::decode(&padded(&term)).plen as usize, len);
}

/// Invariants of an accepted framing: the parts add up to PLEN and stay within the limits.
fn framed(f: &Framing, state: Option<&Negotiated>) {
    let digests = if f.ddgst { DIGEST_LEN } else { 0 };
    assert_eq!(
        f.header_rest() + f.pad as usize + f.data as usize + digests,
        f.tail_len()
    );
    match state {
        None => assert!(f.header.ty == pdu::ty::IC_REQ && f.header.plen == 128 && f.data == 0),
        Some(n) => match f.header.ty {
            pdu::ty::CAPSULE_CMD => {
                let max = n.inline_data.max(capsule::ADMIN_IN_CAPSULE);
                assert!(f.data <= max && f.hdgst == n.hdgst)
            }
            pdu::ty::H2C_DATA => assert!(f.data <= n.maxh2cdata && f.hdgst == n.hdgst),
            pdu::ty::H2C_TERM_REQ => assert!(f.header.plen as usize <= pdu::MAX_TERM_PLEN),
            t => panic!("type {t} accepted"),
        },
    }
    if f.data > 0 && f.header.ty != pdu::ty::H2C_TERM_REQ {
        assert_eq!(
            usize::from(f.header.pdo),
            f.header_rest() + CH_LEN + f.pad as usize
        );
    }
}

/// An SQE (bytes 0-63) with the in-capsule data length at bytes 64-67 and Connect's data
/// from byte 68.
pub fn capsule(data: &[u8]) {
    let raw: [u8; SQE_LEN] = padded(data);
    let sqe = Sqe::decode(&raw);
    let in_capsule = le32(data, 64) & 0xffff;
    let limits = capsule::Limits {
        in_capsule: le32(data, 74) & 0x3fff,
        transfer: le32(data, 78) & 0xff_ffff,
    };
    match capsule::transfer(&sqe, in_capsule, &limits) {
        Ok(Transfer::None) => assert!(sqe.sgl.len == 0 && in_capsule == 0),
        Ok(Transfer::InCapsule(n)) => {
            assert!(n == in_capsule && n == sqe.sgl.len && sqe.sgl.addr == 0 && sqe.direction().0);
            assert!(n <= limits.in_capsule);
        }
        Ok(Transfer::Remote(n)) => {
            assert!(n == sqe.sgl.len && n > 0 && in_capsule == 0 && n <= limits.transfer)
        }
        Err(s) => assert!(s.0 & 0x4000 != 0 && s.sct() == 0),
    }
    if let Ok(c) = capsule::connect(&sqe) {
        assert!(c.sqsize > 0 && sqe.sgl.len == capsule::CONNECT_DATA_LEN);
    }
    if let Ok(d) = capsule::connect_data(data.get(68..).unwrap_or(&[])) {
        for nqn in [d.subnqn, d.hostnqn] {
            assert!(!nqn.is_empty() && nqn.len() < capsule::NQN_LEN && !nqn.contains(&0));
        }
    }
    if let Ok(p) = capsule::property(&raw) {
        assert_eq!(p.wide, raw[40] & 7 == 1);
    }
    let cqe = Cqe {
        result: u64::from(le32(data, 0)) << 32 | u64::from(le32(data, 4)),
        sqhd: sqe.cid,
        sqid: sqe.nsid as u16,
        cid: sqe.cid,
        status: Status(le32(data, 8) as u16 & 0x7fff),
    };
    let ns = nvm::Namespace {
        blocks: u64::from(le32(data, 68)),
        block_shift: 9 + (byte(data, 72) & 3),
        read_only: byte(data, 73) & 1 != 0,
    };
    match nvm::decode(&sqe, &ns, in_capsule) {
        Ok(
            Nvm::Read { slba, nlb, .. } | Nvm::Write { slba, nlb, .. } | Nvm::Compare { slba, nlb },
        ) => {
            assert!(slba + u64::from(nlb) <= ns.blocks);
            assert_eq!(u64::from(in_capsule), u64::from(nlb) << ns.block_shift);
        }
        Ok(Nvm::WriteZeroes { slba, nlb, .. }) => {
            assert!(slba + u64::from(nlb) <= ns.blocks && in_capsule == 0 && !ns.read_only)
        }
        Ok(Nvm::Dsm { ranges, .. }) => assert_eq!(in_capsule, ranges * 16),
        Ok(Nvm::Flush) => assert_eq!(in_capsule, 0),
        Err(_) => (),
    }
    for discovery in [false, true] {
        match admin::decode(&sqe, discovery, in_capsule) {
            Ok(Admin::Identify { .. }) => assert_eq!(in_capsule, 4096),
            Ok(Admin::GetLogPage(g)) => assert_eq!(in_capsule, g.len),
            Ok(Admin::Abort { .. }) => assert!(!discovery),
            _ => (),
        }
    }
    if let Ok(g) = log::get_log_page(&sqe) {
        assert!(g.offset % 4 == 0);
    }
    let rlen = le32(data, 86) & 0xffff;
    match resv::to_scsi(&sqe, rlen) {
        Ok(resv::Scsi::Out { cdb, key, sa_key }) => {
            assert_eq!((cdb[0], cdb[8]), (0x5f, resv::PROUT_LEN as u8));
            let p = resv::params(key, sa_key, data.get(68..).unwrap_or(&[]));
            assert!(p[16..].iter().all(|&b| b == 0));
        }
        Ok(resv::Scsi::Report { .. }) => assert!(rlen >= resv::REPORT_HEADER_LEN as u32),
        Err(_) => (),
    }
    let mut rep = [0u8; 256];
    resv::report(data, resv::hostid_of_nqn, &mut rep);
    for (discovery, allowed) in [(false, features::AEN_ALL), (true, features::AEN_DISCOVERY)] {
        let mut f = Features::default();
        if f.set(&sqe, 8, discovery).is_ok() {
            assert!(f.aen & !allowed == 0);
        }
    }
    let mut masks = resv::NotifyMasks::default();
    if let Ok(m) = masks.set(sqe.nsid, sqe.cdw[1], |n| n % 2 == 1) {
        assert_eq!(m & !0xe, 0);
        assert_eq!(
            masks.get(sqe.nsid, |n| n % 2 == 1).ok(),
            (sqe.nsid != u32::MAX).then_some(m)
        );
    }
    if let Ok(g) = log::get_log_page(&sqe) {
        let page = le32(data, 82) as usize & 0xffff;
        if let Ok(w) = g.window(page) {
            assert!(w.start <= w.end && w.end <= page && w.end - w.start <= g.len as usize);
        }
    }
    let b = cqe.encode();
    assert_eq!(u16::from_le_bytes([b[14], b[15]]) >> 1, cqe.status.0);
    assert_eq!(b[14] & 1, 0);
    assert_eq!(u16::from_le_bytes([b[12], b[13]]), cqe.cid);
}
