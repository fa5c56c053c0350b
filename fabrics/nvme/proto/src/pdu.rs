//! NVMe/TCP transport PDUs (NVMe TCP Transport Specification 1.0), the controller's side.
//!
//! Every PDU starts with an 8-byte common header: type, flags, HLEN (header length), PDO (where
//! the data starts) and PLEN (the whole PDU's length, little endian). The receiver reads the
//! common header, checks it against the connection's state with [`frame`] (which says how
//! many bytes follow and where the data lies), then reads the rest. A PDU the controller cannot
//! accept is a fatal transport error ([`Fatal`]): the controller answers with a C2HTermReq
//! ([`c2h_term_req`]) and closes the connection.

/// Length of the common header.
pub const CH_LEN: usize = 8;
/// Length of a header or data digest (CRC32C).
pub const DIGEST_LEN: usize = 4;
/// Length of a submission queue entry (a command).
pub const SQE_LEN: usize = 64;
/// Length of a completion queue entry.
pub const CQE_LEN: usize = 16;

/// PDU types.
pub mod ty {
    /// Initialize Connection Request (host to controller).
    pub const IC_REQ: u8 = 0x00;
    /// Initialize Connection Response.
    pub const IC_RESP: u8 = 0x01;
    /// Host to Controller Terminate Connection Request.
    pub const H2C_TERM_REQ: u8 = 0x02;
    /// Controller to Host Terminate Connection Request.
    pub const C2H_TERM_REQ: u8 = 0x03;
    /// A command capsule.
    pub const CAPSULE_CMD: u8 = 0x04;
    /// A response capsule.
    pub const CAPSULE_RESP: u8 = 0x05;
    /// Host to Controller Data Transfer.
    pub const H2C_DATA: u8 = 0x06;
    /// Controller to Host Data Transfer.
    pub const C2H_DATA: u8 = 0x07;
    /// Ready to Transfer.
    pub const R2T: u8 = 0x09;
}

/// Common header flags.
pub mod flag {
    /// A header digest follows the header.
    pub const HDGST: u8 = 0x01;
    /// A data digest follows the data.
    pub const DDGST: u8 = 0x02;
    /// Data PDUs: the last of the transfer (H2CData: of the R2T's; C2HData: of the command).
    pub const LAST_PDU: u8 = 0x04;
    /// C2HData: the command succeeded; no response capsule follows.
    pub const SUCCESS: u8 = 0x08;
}

/// Header lengths (HLEN) by type.
pub mod hlen {
    /// ICReq and ICResp.
    pub const IC: usize = 128;
    /// A command capsule: the common header and the SQE.
    pub const CAPSULE_CMD: usize = super::CH_LEN + super::SQE_LEN;
    /// A response capsule: the common header and the CQE.
    pub const CAPSULE_RESP: usize = super::CH_LEN + super::CQE_LEN;
    /// H2CData, C2HData, R2T, and both terminate requests.
    pub const SHORT: usize = 24;
}

/// The largest terminate request: its header and up to 128 bytes of the header in error.
pub const MAX_TERM_PLEN: usize = hlen::SHORT + 128;

/// Fatal error status (FES) of a terminate request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Fes {
    /// A header field is invalid; FEI is its byte offset.
    InvalidHeaderField = 1,
    /// A PDU the connection's state does not allow.
    PduSequence = 2,
    /// The header digest does not match.
    HeaderDigest = 3,
    /// Data outside the range the command or R2T asked for.
    DataOutOfRange = 4,
    /// More data than allowed (in-capsule data, an H2CData beyond MAXH2CDATA).
    DataLimitExceeded = 5,
    /// A parameter the controller does not support (ICReq's PFV); FEI is its byte offset.
    UnsupportedParameter = 6,
}

/// A fatal transport error: the controller sends a C2HTermReq and closes the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fatal {
    /// Why.
    pub fes: Fes,
    /// Fatal error information: for a header field, its byte offset in the PDU.
    pub fei: u32,
}

impl Fatal {
    const fn field(offset: u32) -> Fatal {
        Fatal {
            fes: Fes::InvalidHeaderField,
            fei: offset,
        }
    }
}

/// The common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// PDU type ([`ty`]).
    pub ty: u8,
    /// Flags ([`flag`]).
    pub flags: u8,
    /// Header length, digest excluded.
    pub hlen: u8,
    /// Offset of the data in the PDU (0 without data).
    pub pdo: u8,
    /// Length of the whole PDU.
    pub plen: u32,
}

impl Header {
    /// Decodes a common header.
    pub fn decode(b: &[u8; CH_LEN]) -> Header {
        Header {
            ty: b[0],
            flags: b[1],
            hlen: b[2],
            pdo: b[3],
            plen: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Encodes it into the first [`CH_LEN`] bytes of `out`.
    pub fn encode(&self, out: &mut [u8]) {
        out[0] = self.ty;
        out[1] = self.flags;
        out[2] = self.hlen;
        out[3] = self.pdo;
        out[4..8].copy_from_slice(&self.plen.to_le_bytes());
    }
}

/// What the initial connection exchange settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Header digests on every PDU that may carry one.
    pub hdgst: bool,
    /// Data digests on every PDU with data.
    pub ddgst: bool,
    /// Controller PDU data alignment: the host starts data at multiples of (CPDA + 1) * 4.
    pub cpda: u8,
    /// The largest in-capsule data the controller takes (`param_inline_data_size`).
    pub inline_data: u32,
    /// The largest data of one H2CData PDU (MAXH2CDATA).
    pub maxh2cdata: u32,
}

/// Where a PDU's parts lie, from its common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Framing {
    /// The common header.
    pub header: Header,
    /// A header digest follows the header.
    pub hdgst: bool,
    /// Bytes of padding between the header (and its digest) and the data.
    pub pad: u32,
    /// Bytes of data (0: none).
    pub data: u32,
    /// A data digest follows the data.
    pub ddgst: bool,
}

impl Framing {
    /// Bytes of header after the common header, its digest included.
    pub fn header_rest(&self) -> usize {
        usize::from(self.header.hlen) - CH_LEN + if self.hdgst { DIGEST_LEN } else { 0 }
    }

    /// Bytes after the common header: the rest of the header, padding, data and digests.
    pub fn tail_len(&self) -> usize {
        self.header.plen as usize - CH_LEN
    }
}

/// Checks a host's common header against the connection's state (`None`: before ICReq) and
/// says where its parts lie. Only the length and position fields are checked here; each type's
/// own fields are checked when its header is decoded.
pub fn frame(ch: &[u8; CH_LEN], state: Option<&Negotiated>) -> Result<Framing, Fatal> {
    let h = Header::decode(ch);
    let Some(n) = state else {
        // The first PDU is ICReq, exactly 128 bytes, no digests.
        if h.ty != ty::IC_REQ {
            return Err(Fatal {
                fes: Fes::PduSequence,
                fei: 0,
            });
        }
        return fixed(h, hlen::IC);
    };
    let (want_hlen, max_data) = match h.ty {
        // Admin and Fabrics commands carry up to 8 KiB whatever the port's size; each
        // command's own limit is checked once its SQE is read (`capsule::transfer`).
        ty::CAPSULE_CMD => (
            hlen::CAPSULE_CMD,
            n.inline_data.max(crate::capsule::ADMIN_IN_CAPSULE),
        ),
        ty::H2C_DATA => (hlen::SHORT, n.maxh2cdata),
        ty::H2C_TERM_REQ => {
            // Its data is the header in error, right after its own header: no digests.
            let f = short(h, hlen::SHORT)?;
            if f.header.plen as usize > MAX_TERM_PLEN {
                return Err(Fatal::field(4));
            }
            return Ok(Framing {
                data: f.header.plen - hlen::SHORT as u32,
                ..f
            });
        }
        _ => {
            return Err(Fatal {
                fes: Fes::PduSequence,
                fei: 0,
            })
        }
    };
    if usize::from(h.hlen) != want_hlen {
        return Err(Fatal::field(2));
    }
    if (h.flags & flag::HDGST != 0) != n.hdgst {
        return Err(Fatal::field(1));
    }
    let head = want_hlen + if n.hdgst { DIGEST_LEN } else { 0 };
    let plen = h.plen as usize;
    if plen < head {
        return Err(Fatal::field(4));
    }
    if plen == head {
        // No data: no data digest, no data offset.
        if h.flags & flag::DDGST != 0 {
            return Err(Fatal::field(1));
        }
        if h.pdo != 0 {
            return Err(Fatal::field(3));
        }
        return Ok(Framing {
            header: h,
            hdgst: n.hdgst,
            pad: 0,
            data: 0,
            ddgst: false,
        });
    }
    if (h.flags & flag::DDGST != 0) != n.ddgst {
        return Err(Fatal::field(1));
    }
    let align = (usize::from(n.cpda) + 1) * 4;
    let pdo = usize::from(h.pdo);
    if pdo < head || pdo % align != 0 {
        return Err(Fatal::field(3));
    }
    let tail = if n.ddgst { DIGEST_LEN } else { 0 };
    if plen <= pdo + tail {
        return Err(Fatal::field(4));
    }
    let data = plen - pdo - tail;
    if data > max_data as usize {
        return Err(Fatal {
            fes: Fes::DataLimitExceeded,
            fei: 4,
        });
    }
    Ok(Framing {
        header: h,
        hdgst: n.hdgst,
        pad: (pdo - head) as u32,
        data: data as u32,
        ddgst: n.ddgst,
    })
}

/// A PDU of exactly `len` bytes, all header, without digests or data (ICReq).
fn fixed(h: Header, len: usize) -> Result<Framing, Fatal> {
    let f = short(h, len)?;
    if f.header.plen as usize != len {
        return Err(Fatal::field(4));
    }
    Ok(f)
}

/// A header of `len` bytes without digests or data offset.
fn short(h: Header, len: usize) -> Result<Framing, Fatal> {
    if h.flags != 0 {
        return Err(Fatal::field(1));
    }
    if usize::from(h.hlen) != len {
        return Err(Fatal::field(2));
    }
    if h.pdo != 0 {
        return Err(Fatal::field(3));
    }
    if (h.plen as usize) < len {
        return Err(Fatal::field(4));
    }
    Ok(Framing {
        header: h,
        hdgst: false,
        pad: 0,
        data: 0,
        ddgst: false,
    })
}

/// The PDU format version this controller speaks (1.0).
pub const PFV_1_0: u16 = 0;
/// The largest host PDU data alignment (HPDA).
pub const MAX_HPDA: u8 = 31;

/// An ICReq's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcReq {
    /// Host PDU data alignment: the controller starts data at multiples of (HPDA + 1) * 4.
    pub hpda: u8,
    /// The host asks for header digests.
    pub hdgst: bool,
    /// The host asks for data digests.
    pub ddgst: bool,
    /// Most outstanding R2Ts per command, 0's based.
    pub maxr2t: u32,
}

impl Negotiated {
    /// What the controller grants an ICReq: the digests asked for, CPDA 0 (the Linux host
    /// accepts no other) and MAXH2CDATA a multiple of 4 of at least 4 KiB, as the host
    /// requires.
    pub fn grant(req: &IcReq, inline_data: u32, maxh2cdata: u32) -> Negotiated {
        Negotiated {
            hdgst: req.hdgst,
            ddgst: req.ddgst,
            cpda: 0,
            inline_data,
            maxh2cdata: (maxh2cdata & !3).max(4096),
        }
    }
}

/// Decodes an ICReq (all 128 bytes, framed by [`frame`]).
pub fn ic_req(b: &[u8; hlen::IC]) -> Result<IcReq, Fatal> {
    if u16::from_le_bytes([b[8], b[9]]) != PFV_1_0 {
        return Err(Fatal {
            fes: Fes::UnsupportedParameter,
            fei: 8,
        });
    }
    if b[10] > MAX_HPDA {
        return Err(Fatal::field(10));
    }
    Ok(IcReq {
        hpda: b[10],
        hdgst: b[11] & 0x01 != 0,
        ddgst: b[11] & 0x02 != 0,
        maxr2t: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
    })
}

/// Encodes the ICResp granting `n` (digests as asked, the controller's alignment and
/// MAXH2CDATA).
pub fn ic_resp(n: &Negotiated, out: &mut [u8; hlen::IC]) {
    out.fill(0);
    Header {
        ty: ty::IC_RESP,
        flags: 0,
        hlen: hlen::IC as u8,
        pdo: 0,
        plen: hlen::IC as u32,
    }
    .encode(out);
    out[8..10].copy_from_slice(&PFV_1_0.to_le_bytes());
    out[10] = n.cpda;
    out[11] = u8::from(n.hdgst) | u8::from(n.ddgst) << 1;
    out[12..16].copy_from_slice(&n.maxh2cdata.to_le_bytes());
}

/// An H2CData header's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H2cData {
    /// The command's identifier.
    pub cccid: u16,
    /// The R2T's transfer tag.
    pub ttag: u16,
    /// Offset of the data in the command's transfer.
    pub datao: u32,
    /// Bytes of data.
    pub datal: u32,
    /// The last PDU of the R2T's data.
    pub last: bool,
}

/// Decodes an H2CData header (framed by [`frame`]): DATAL must be the data the PDU carries.
pub fn h2c_data(b: &[u8; hlen::SHORT], f: &Framing) -> Result<H2cData, Fatal> {
    let d = H2cData {
        cccid: u16::from_le_bytes([b[8], b[9]]),
        ttag: u16::from_le_bytes([b[10], b[11]]),
        datao: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        datal: u32::from_le_bytes([b[16], b[17], b[18], b[19]]),
        last: b[1] & flag::LAST_PDU != 0,
    };
    if d.datal != f.data || d.datal == 0 {
        return Err(Fatal::field(16));
    }
    Ok(d)
}

/// Checks an H2CData against what its R2T asked for: `r2to`/`r2tl`, of which `received`
/// bytes have arrived. Data must come in order, inside the R2T, and the last PDU must end it.
pub fn h2c_in_r2t(d: &H2cData, r2to: u32, r2tl: u32, received: u32) -> Result<(), Fatal> {
    let expected = r2to.checked_add(received);
    if Some(d.datao) != expected {
        return Err(Fatal {
            fes: Fes::DataOutOfRange,
            fei: 12,
        });
    }
    let end = received.checked_add(d.datal);
    match end {
        Some(e) if e <= r2tl && (e == r2tl) == d.last => Ok(()),
        Some(e) if e <= r2tl => Err(Fatal::field(1)),
        _ => Err(Fatal {
            fes: Fes::DataOutOfRange,
            fei: 16,
        }),
    }
}

/// A command capsule's SQE (bytes 8 to 72 of its header).
pub fn sqe(b: &[u8; hlen::CAPSULE_CMD]) -> [u8; SQE_LEN] {
    core::array::from_fn(|i| b[CH_LEN + i])
}

/// Where a PDU's data starts when the controller sends it to a host with `hpda` and digests
/// per `hdgst`: after the header (and its digest), aligned.
pub fn data_offset(hlen: usize, hdgst: bool, hpda: u8) -> usize {
    let align = (usize::from(hpda) + 1) * 4;
    let head = hlen + if hdgst { DIGEST_LEN } else { 0 };
    head.div_ceil(align) * align
}

/// Encodes a response capsule's header with `cqe` into `out` (the header digest, if any, is
/// the caller's to append).
pub fn capsule_resp(cqe: &[u8; CQE_LEN], hdgst: bool, out: &mut [u8; hlen::CAPSULE_RESP]) {
    let digest = if hdgst { DIGEST_LEN } else { 0 };
    Header {
        ty: ty::CAPSULE_RESP,
        flags: if hdgst { flag::HDGST } else { 0 },
        hlen: hlen::CAPSULE_RESP as u8,
        pdo: 0,
        plen: (hlen::CAPSULE_RESP + digest) as u32,
    }
    .encode(out);
    out[CH_LEN..].copy_from_slice(cqe);
}

/// A C2HData's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct C2hData {
    /// The command's identifier.
    pub cccid: u16,
    /// Offset of the data in the command's transfer.
    pub datao: u32,
    /// Bytes of data (more than 0).
    pub datal: u32,
    /// The last PDU of the command's data.
    pub last: bool,
    /// With `last`: the command succeeded and no response capsule follows.
    pub success: bool,
}

/// Encodes a C2HData header for a host with `hpda`, digests as negotiated; the data, its
/// padding before it and the digests are the caller's.
pub fn c2h_data(d: &C2hData, n: &Negotiated, hpda: u8, out: &mut [u8; hlen::SHORT]) {
    out.fill(0);
    let pdo = data_offset(hlen::SHORT, n.hdgst, hpda);
    let mut flags = 0;
    if n.hdgst {
        flags |= flag::HDGST;
    }
    if n.ddgst {
        flags |= flag::DDGST;
    }
    if d.last {
        flags |= flag::LAST_PDU;
        if d.success {
            flags |= flag::SUCCESS;
        }
    }
    let ddgst = if n.ddgst { DIGEST_LEN as u32 } else { 0 };
    Header {
        ty: ty::C2H_DATA,
        flags,
        hlen: hlen::SHORT as u8,
        pdo: pdo as u8,
        plen: pdo as u32 + d.datal + ddgst,
    }
    .encode(out);
    out[8..10].copy_from_slice(&d.cccid.to_le_bytes());
    out[12..16].copy_from_slice(&d.datao.to_le_bytes());
    out[16..20].copy_from_slice(&d.datal.to_le_bytes());
}

/// Encodes an R2T asking for `r2tl` bytes at `r2to` of command `cccid`, tagged `ttag`.
pub fn r2t(cccid: u16, ttag: u16, r2to: u32, r2tl: u32, hdgst: bool, out: &mut [u8; hlen::SHORT]) {
    out.fill(0);
    Header {
        ty: ty::R2T,
        flags: if hdgst { flag::HDGST } else { 0 },
        hlen: hlen::SHORT as u8,
        pdo: 0,
        plen: (hlen::SHORT + if hdgst { DIGEST_LEN } else { 0 }) as u32,
    }
    .encode(out);
    out[8..10].copy_from_slice(&cccid.to_le_bytes());
    out[10..12].copy_from_slice(&ttag.to_le_bytes());
    out[12..16].copy_from_slice(&r2to.to_le_bytes());
    out[16..20].copy_from_slice(&r2tl.to_le_bytes());
}

/// Encodes a C2HTermReq for `fatal`, carrying up to 128 bytes of the header in error
/// (`culprit`), into `out`; returns the PDU's length.
pub fn c2h_term_req(fatal: Fatal, culprit: &[u8], out: &mut [u8; MAX_TERM_PLEN]) -> usize {
    out.fill(0);
    let n = culprit.len().min(MAX_TERM_PLEN - hlen::SHORT);
    let plen = hlen::SHORT + n;
    Header {
        ty: ty::C2H_TERM_REQ,
        flags: 0,
        hlen: hlen::SHORT as u8,
        pdo: 0,
        plen: plen as u32,
    }
    .encode(out);
    out[8..10].copy_from_slice(&(fatal.fes as u16).to_le_bytes());
    out[10..14].copy_from_slice(&fatal.fei.to_le_bytes());
    out[hlen::SHORT..plen].copy_from_slice(&culprit[..n]);
    plen
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: Negotiated = Negotiated {
        hdgst: false,
        ddgst: false,
        cpda: 0,
        inline_data: 16384,
        maxh2cdata: 0x40000,
    };
    const D: Negotiated = Negotiated {
        hdgst: true,
        ddgst: true,
        ..N
    };

    fn ch(ty: u8, flags: u8, hlen: usize, pdo: usize, plen: usize) -> [u8; CH_LEN] {
        let mut b = [0u8; CH_LEN];
        Header {
            ty,
            flags,
            hlen: hlen as u8,
            pdo: pdo as u8,
            plen: plen as u32,
        }
        .encode(&mut b);
        b
    }

    #[test]
    fn first_pdu_is_icreq() {
        let f = frame(&ch(ty::IC_REQ, 0, 128, 0, 128), None).unwrap();
        assert_eq!((f.header_rest(), f.data, f.tail_len()), (120, 0, 120));
        assert_eq!(
            frame(&ch(ty::CAPSULE_CMD, 0, 72, 0, 72), None),
            Err(Fatal {
                fes: Fes::PduSequence,
                fei: 0
            })
        );
        assert_eq!(
            frame(&ch(ty::IC_REQ, 0, 128, 0, 132), None),
            Err(Fatal::field(4))
        );
        assert_eq!(
            frame(&ch(ty::IC_REQ, 0, 24, 0, 128), None),
            Err(Fatal::field(2))
        );
        assert_eq!(
            frame(&ch(ty::IC_REQ, 1, 128, 0, 128), None),
            Err(Fatal::field(1))
        );
        assert_eq!(
            frame(&ch(ty::IC_REQ, 0, 128, 4, 128), None),
            Err(Fatal::field(3))
        );
        // Once connected, a second ICReq is out of sequence, as are controller PDUs.
        for t in [
            ty::IC_REQ,
            ty::IC_RESP,
            ty::CAPSULE_RESP,
            ty::C2H_DATA,
            ty::R2T,
            0x08,
            0xff,
        ] {
            assert_eq!(
                frame(&ch(t, 0, 128, 0, 128), Some(&N)).unwrap_err().fes,
                Fes::PduSequence
            );
        }
    }

    #[test]
    fn capsules() {
        // Without data; with in-capsule data; with digests and data aligned after them.
        let f = frame(&ch(ty::CAPSULE_CMD, 0, 72, 0, 72), Some(&N)).unwrap();
        assert_eq!((f.header_rest(), f.pad, f.data), (64, 0, 0));
        let f = frame(&ch(ty::CAPSULE_CMD, 0, 72, 72, 72 + 4096), Some(&N)).unwrap();
        assert_eq!(
            (f.header_rest(), f.pad, f.data, f.tail_len()),
            (64, 0, 4096, 64 + 4096)
        );
        let f = frame(&ch(ty::CAPSULE_CMD, 3, 72, 76, 76 + 512 + 4), Some(&D)).unwrap();
        assert_eq!(
            (f.header_rest(), f.pad, f.data, f.ddgst),
            (68, 0, 512, true)
        );
        let f = frame(&ch(ty::CAPSULE_CMD, 1, 72, 0, 76), Some(&D)).unwrap();
        assert_eq!((f.header_rest(), f.data, f.ddgst), (68, 0, false));
        // Digest flags that disagree with the negotiation; a data digest flag without data.
        assert_eq!(
            frame(&ch(ty::CAPSULE_CMD, 1, 72, 0, 76), Some(&N)),
            Err(Fatal::field(1))
        );
        assert_eq!(
            frame(&ch(ty::CAPSULE_CMD, 0, 72, 0, 72), Some(&D)),
            Err(Fatal::field(1))
        );
        assert_eq!(
            frame(&ch(ty::CAPSULE_CMD, 3, 72, 0, 76), Some(&D)),
            Err(Fatal::field(1))
        );
        assert_eq!(
            frame(&ch(ty::CAPSULE_CMD, 1, 72, 76, 80), Some(&D)),
            Err(Fatal::field(1))
        );
        // Lengths: header, data offset inside the header or unaligned, PLEN short of it.
        assert_eq!(
            frame(&ch(ty::CAPSULE_CMD, 0, 24, 0, 72), Some(&N)),
            Err(Fatal::field(2))
        );
        assert_eq!(
            frame(&ch(ty::CAPSULE_CMD, 0, 72, 0, 71), Some(&N)),
            Err(Fatal::field(4))
        );
        assert_eq!(
            frame(&ch(ty::CAPSULE_CMD, 0, 72, 8, 72), Some(&N)),
            Err(Fatal::field(3))
        );
        assert_eq!(
            frame(&ch(ty::CAPSULE_CMD, 0, 72, 64, 200), Some(&N)),
            Err(Fatal::field(3))
        );
        assert_eq!(
            frame(&ch(ty::CAPSULE_CMD, 0, 72, 74, 200), Some(&N)),
            Err(Fatal::field(3))
        );
        assert_eq!(
            frame(&ch(ty::CAPSULE_CMD, 3, 72, 76, 80), Some(&D)),
            Err(Fatal::field(4))
        );
        let a = Negotiated { cpda: 1, ..N };
        assert_eq!(
            frame(&ch(ty::CAPSULE_CMD, 0, 72, 76, 100), Some(&a)),
            Err(Fatal::field(3))
        );
        assert!(frame(&ch(ty::CAPSULE_CMD, 0, 72, 80, 100), Some(&a)).is_ok());
        // More in-capsule data than the port takes.
        assert_eq!(
            frame(&ch(ty::CAPSULE_CMD, 0, 72, 72, 72 + 16385), Some(&N)),
            Err(Fatal {
                fes: Fes::DataLimitExceeded,
                fei: 4
            })
        );
    }

    #[test]
    fn admin_capsules_fit_whatever_the_port() {
        // Connect's 1 KiB and admin writes of up to 8 KiB come in the capsule even when the
        // port takes no in-capsule data on I/O queues.
        let none = Negotiated {
            inline_data: 0,
            ..N
        };
        assert_eq!(
            frame(&ch(ty::CAPSULE_CMD, 0, 72, 72, 72 + 1024), Some(&none))
                .unwrap()
                .data,
            1024
        );
        assert!(frame(&ch(ty::CAPSULE_CMD, 0, 72, 72, 72 + 8192), Some(&none)).is_ok());
        assert_eq!(
            frame(&ch(ty::CAPSULE_CMD, 0, 72, 72, 72 + 8196), Some(&none))
                .unwrap_err()
                .fes,
            Fes::DataLimitExceeded
        );
    }

    #[test]
    fn grant() {
        let req = IcReq {
            hpda: 0,
            hdgst: true,
            ddgst: false,
            maxr2t: 0,
        };
        let n = Negotiated::grant(&req, 16384, 1001);
        assert_eq!(
            (n.hdgst, n.ddgst, n.cpda, n.maxh2cdata),
            (true, false, 0, 4096)
        );
        assert_eq!(Negotiated::grant(&req, 0, 0x40003).maxh2cdata, 0x40000);
    }

    #[test]
    fn icreq_and_icresp() {
        let mut b = [0u8; 128];
        b[10] = 3;
        b[11] = 3;
        b[12] = 7;
        assert_eq!(
            ic_req(&b),
            Ok(IcReq {
                hpda: 3,
                hdgst: true,
                ddgst: true,
                maxr2t: 7
            })
        );
        b[10] = 32;
        assert_eq!(ic_req(&b), Err(Fatal::field(10)));
        b[10] = 0;
        b[8] = 1;
        assert_eq!(ic_req(&b).unwrap_err().fes, Fes::UnsupportedParameter);
        let mut out = [0xaau8; 128];
        ic_resp(&Negotiated { hdgst: true, ..N }, &mut out);
        assert_eq!(
            &out[..16],
            &[1, 0, 128, 0, 128, 0, 0, 0, 0, 0, 0, 1, 0, 0, 4, 0]
        );
        assert!(out[16..].iter().all(|&x| x == 0));
    }

    #[test]
    fn h2c_data_in_its_r2t() {
        let f = frame(
            &ch(ty::H2C_DATA, flag::LAST_PDU, 24, 24, 24 + 8192),
            Some(&N),
        )
        .unwrap();
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&ch(ty::H2C_DATA, flag::LAST_PDU, 24, 24, 24 + 8192));
        b[8] = 5;
        b[10] = 9;
        b[13] = 0x10; // DATAO 4096
        b[17] = 0x20; // DATAL 8192
        let d = h2c_data(&b, &f).unwrap();
        assert_eq!(
            (d.cccid, d.ttag, d.datao, d.datal, d.last),
            (5, 9, 4096, 8192, true)
        );
        // In order, inside the R2T, and the last PDU ends it.
        assert_eq!(h2c_in_r2t(&d, 0, 12288, 4096), Ok(()));
        assert_eq!(h2c_in_r2t(&d, 4096, 8192, 0), Ok(()));
        assert_eq!(
            h2c_in_r2t(&d, 0, 8192, 0).unwrap_err().fes,
            Fes::DataOutOfRange
        );
        assert_eq!(
            h2c_in_r2t(&d, 4096, 4096, 0).unwrap_err().fes,
            Fes::DataOutOfRange
        );
        assert_eq!(h2c_in_r2t(&d, 4096, 16384, 0), Err(Fatal::field(1)));
        let not_last = H2cData { last: false, ..d };
        assert_eq!(h2c_in_r2t(&not_last, 4096, 8192, 0), Err(Fatal::field(1)));
        assert_eq!(
            h2c_in_r2t(&d, u32::MAX, 8192, 1).unwrap_err().fes,
            Fes::DataOutOfRange
        );
        // DATAL must be what the PDU carries.
        b[17] = 0x10;
        assert_eq!(h2c_data(&b, &f), Err(Fatal::field(16)));
        // Beyond MAXH2CDATA.
        let small = Negotiated {
            maxh2cdata: 4096,
            ..N
        };
        assert_eq!(
            frame(&ch(ty::H2C_DATA, 0, 24, 24, 24 + 8192), Some(&small))
                .unwrap_err()
                .fes,
            Fes::DataLimitExceeded
        );
    }

    #[test]
    fn term_req() {
        let f = frame(&ch(ty::H2C_TERM_REQ, 0, 24, 0, 24 + 72), Some(&N)).unwrap();
        assert_eq!((f.header_rest(), f.data), (16, 72));
        assert_eq!(
            frame(&ch(ty::H2C_TERM_REQ, 0, 24, 0, 153), Some(&N)),
            Err(Fatal::field(4))
        );
        assert_eq!(
            frame(&ch(ty::H2C_TERM_REQ, 1, 24, 0, 24), Some(&D)),
            Err(Fatal::field(1))
        );
        let mut out = [0u8; MAX_TERM_PLEN];
        let culprit = [0x55u8; 200];
        let n = c2h_term_req(Fatal::field(3), &culprit, &mut out);
        assert_eq!(n, 152);
        assert_eq!(&out[..14], &[3, 0, 24, 0, 152, 0, 0, 0, 1, 0, 3, 0, 0, 0]);
        assert!(out[24..].iter().all(|&x| x == 0x55));
        assert_eq!(c2h_term_req(Fatal::field(3), &culprit[..8], &mut out), 32);
    }

    #[test]
    fn controller_pdus() {
        let mut out = [0u8; 24];
        let d = C2hData {
            cccid: 7,
            datao: 0,
            datal: 4096,
            last: true,
            success: true,
        };
        c2h_data(&d, &N, 0, &mut out);
        assert_eq!(&out[..8], &[7, 0x0c, 24, 24, 0x18, 0x10, 0, 0]);
        c2h_data(&d, &D, 3, &mut out);
        // Data after the header digest, aligned to 16 bytes: offset 32; a data digest after.
        assert_eq!(&out[..8], &[7, 0x0f, 24, 32, 0x24, 0x10, 0, 0]);
        assert_eq!(&out[16..20], &[0, 0x10, 0, 0]);
        c2h_data(&C2hData { last: false, ..d }, &N, 0, &mut out);
        assert_eq!(out[1], 0);
        r2t(7, 2, 8192, 4096, true, &mut out);
        assert_eq!(
            &out[..20],
            &[9, 1, 24, 0, 28, 0, 0, 0, 7, 0, 2, 0, 0, 0x20, 0, 0, 0, 0x10, 0, 0]
        );
        let mut resp = [0u8; 24];
        capsule_resp(&[0xee; 16], false, &mut resp);
        assert_eq!(&resp[..8], &[5, 0, 24, 0, 24, 0, 0, 0]);
        assert!(resp[8..].iter().all(|&x| x == 0xee));
        assert_eq!(data_offset(72, true, 0), 76);
        assert_eq!(data_offset(24, false, 31), 128);
    }
}
