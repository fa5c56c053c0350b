//! EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4 6.4 and 6.18), with the limits of
//! LIO's copy manager: one block-to-block segment descriptor (02h) between two identification
//! CSCD descriptors (E4h) that name logical units by their NAA designator. Which devices the
//! designators may reach is the caller's business (only LUNs the nexus can reach: the lesson
//! of CVE-2020-28374).

use super::sense::{Sense, SenseKey};

/// Parameter list header length.
pub const HEADER_LEN: usize = 16;
/// Identification CSCD descriptor length.
pub const CSCD_LEN: usize = 32;
/// Block-to-block segment descriptor length.
pub const SEGMENT_LEN: usize = 28;
/// MAXIMUM CSCD DESCRIPTOR COUNT.
pub const MAX_CSCDS: usize = 2;
/// MAXIMUM SEGMENT DESCRIPTOR COUNT.
pub const MAX_SEGMENTS: usize = 1;
/// MAXIMUM DESCRIPTOR LIST LENGTH.
pub const MAX_DESC_LIST_LEN: usize = 1024;
/// The longest prefix of a parameter list the parser reads.
pub const LIST_MAX: usize = HEADER_LEN + MAX_DESC_LIST_LEN;
/// MAXIMUM SEGMENT LENGTH in bytes.
const MAX_SEGMENT_BYTES: u32 = 256 << 20;
/// Highest CSCD descriptor ID that is an index into the list (SPC-4 table 150).
const CSCD_ID_MAX: u16 = 0x07ff;

/// RECEIVE COPY RESULTS' COPY STATUS service action.
pub const RCR_COPY_STATUS: u8 = 0x00;
/// RECEIVE COPY RESULTS' OPERATING PARAMETERS service action.
pub const RCR_OPERATING_PARAMETERS: u8 = 0x03;

/// A 16-byte NAA IEEE Registered Extended designator (VPD 83h, designator type 3).
pub type Designator = [u8; 16];

/// A checked parameter list and its one segment: `blocks` blocks from `src_lba` of the device
/// `src` names to `dst_lba` of the device `dst` names. A `None` designator indexes no CSCD
/// descriptor of the list, so it reaches no device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The LIST IDENTIFIER whose COPY STATUS the initiator may ask for; `None` with LIST ID
    /// USAGE 11b (no list identifier).
    pub list_id: Option<u8>,
    /// The source's designator.
    pub src: Option<Designator>,
    /// The destination's designator.
    pub dst: Option<Designator>,
    /// First source block.
    pub src_lba: u64,
    /// First destination block.
    pub dst_lba: u64,
    /// Blocks to copy.
    pub blocks: u16,
}

/// ILLEGAL REQUEST with ASC 26h and `ascq`, no field pointer: a descriptor list the copy
/// manager does not take (06h-09h), or ends it cannot copy between (0Ch).
const fn descriptors(ascq: u8) -> Sense {
    Sense {
        key: SenseKey::IllegalRequest,
        asc: 0x26,
        ascq,
        field: None,
        info: None,
    }
}

/// TOO MANY TARGET DESCRIPTORS.
const TOO_MANY_CSCDS: Sense = descriptors(0x06);
/// UNSUPPORTED TARGET DESCRIPTOR TYPE CODE.
const UNSUPPORTED_CSCD: Sense = descriptors(0x07);
/// TOO MANY SEGMENT DESCRIPTORS.
const TOO_MANY_SEGMENTS: Sense = descriptors(0x08);
/// UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE.
const UNSUPPORTED_SEGMENT: Sense = descriptors(0x09);

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be64(b: &[u8]) -> u64 {
    b[..8].iter().fold(0, |v, &x| (v << 8) | u64::from(x))
}

/// Checks an EXTENDED COPY parameter list of `list_len` bytes whose first bytes are `list`
/// (at least `min(list_len, LIST_MAX)`), in LIO's order, and returns its segment. A list the
/// copy manager cannot take gets ILLEGAL REQUEST with the sense LIO gives it, and a field
/// pointer where one field is at fault.
pub fn parse_list(list: &[u8], list_len: u32) -> Result<Segment, Sense> {
    let have = (list_len as usize).min(list.len());
    if have < HEADER_LEN {
        return Err(Sense::param_list_length());
    }
    // LIST ID USAGE 01b is reserved.
    let usage = (list[1] >> 3) & 0x03;
    if usage == 0x01 {
        return Err(Sense::invalid_param_field(1, Some(4)));
    }
    let tdll = usize::from(be16(&list[2..4]));
    let sdll = be32(&list[8..12]) as usize;
    if tdll + sdll > MAX_DESC_LIST_LEN {
        return Err(Sense::param_list_length());
    }
    if be32(&list[12..16]) != 0 {
        // Inline data is not supported (MAXIMUM INLINE DATA LENGTH 0).
        return Err(Sense::invalid_param_field(12, None));
    }
    if have < HEADER_LEN + tdll + sdll {
        return Err(Sense::param_list_length());
    }
    let cscds = &list[HEADER_LEN..HEADER_LEN + tdll];
    let segments = &list[HEADER_LEN + tdll..HEADER_LEN + tdll + sdll];

    // The segment first: its CSCD indexes say which descriptors matter.
    if sdll % SEGMENT_LEN != 0 {
        return Err(UNSUPPORTED_SEGMENT);
    }
    if sdll > MAX_SEGMENTS * SEGMENT_LEN {
        return Err(TOO_MANY_SEGMENTS);
    }
    let Some(seg) = segments.get(..SEGMENT_LEN) else {
        return Err(Sense::invalid_param_field(8, None));
    };
    let at = (HEADER_LEN + tdll) as u16;
    if seg[0] != 0x02 {
        return Err(UNSUPPORTED_SEGMENT);
    }
    if be16(&seg[2..4]) != 0x18 {
        return Err(Sense::invalid_param_field(at + 2, None));
    }
    let (stdi, dtdi) = (be16(&seg[4..6]), be16(&seg[6..8]));
    if stdi > CSCD_ID_MAX {
        return Err(Sense::invalid_param_field(at + 4, None));
    }
    if dtdi > CSCD_ID_MAX {
        return Err(Sense::invalid_param_field(at + 6, None));
    }

    if tdll % CSCD_LEN != 0 {
        return Err(UNSUPPORTED_CSCD);
    }
    if tdll > MAX_CSCDS * CSCD_LEN {
        return Err(TOO_MANY_CSCDS);
    }
    let mut src = None;
    let mut dst = None;
    for (i, d) in cscds.chunks_exact(CSCD_LEN).enumerate() {
        let designator = identification_cscd(d, (HEADER_LEN + i * CSCD_LEN) as u16)?;
        if usize::from(stdi) == i {
            src = Some(designator);
        }
        if usize::from(dtdi) == i {
            dst = Some(designator);
        }
    }
    Ok(Segment {
        list_id: (usage != 0x03).then_some(list[0]),
        src,
        dst,
        src_lba: be64(&seg[12..20]),
        dst_lba: be64(&seg[20..28]),
        blocks: be16(&seg[10..12]),
    })
}

/// An identification CSCD descriptor (E4h) at list offset `at`: a logical unit named by a
/// binary NAA IEEE Registered Extended designator, the kind VPD 83h reports.
fn identification_cscd(d: &[u8], at: u16) -> Result<Designator, Sense> {
    if d[0] != 0xe4 {
        return Err(UNSUPPORTED_CSCD);
    }
    if d[4] & 0x0f != 0x1 {
        return Err(Sense::invalid_param_field(at + 4, Some(3)));
    }
    if d[5] & 0x30 != 0 {
        return Err(Sense::invalid_param_field(at + 5, Some(5)));
    }
    if d[5] & 0x0f != 0x3 {
        return Err(Sense::invalid_param_field(at + 5, Some(3)));
    }
    if usize::from(d[7]) != 16 {
        return Err(Sense::invalid_param_field(at + 7, None));
    }
    if d[8] & 0xf0 != 0x60 {
        return Err(Sense::invalid_param_field(at + 8, Some(7)));
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[8..24]);
    Ok(id)
}

/// COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE (0Dh/02h): a designator names no device
/// the nexus can reach, the segment runs past the end of one, or an I/O of the copy failed.
/// The initiator falls back to READ and WRITE. (LIO reports all of these so, and libiscsi
/// accepts no other code for a segment past the end.)
pub const fn not_reachable() -> Sense {
    Sense {
        key: SenseKey::CopyAborted,
        asc: 0x0d,
        ascq: 0x02,
        field: None,
        info: None,
    }
}

/// ILLEGAL REQUEST, INVALID OPERATION FOR COPY SOURCE OR DESTINATION (26h/0Ch): source and
/// destination have different block sizes, which the copy manager does not convert.
pub const fn block_size_mismatch() -> Sense {
    descriptors(0x0c)
}

/// RECEIVE COPY RESULTS' COPY STATUS of a finished copy (LID1): completed with or without
/// errors (`ok`: its one segment processed) and the bytes copied.
pub fn copy_status(ok: bool, bytes: u32) -> [u8; 12] {
    let segments = u16::from(ok);
    let mut p = [0u8; 12];
    p[3] = 8; // AVAILABLE DATA
    p[4] = if ok { 0x00 } else { 0x01 }; // COPY MANAGER STATUS
    p[5..7].copy_from_slice(&segments.to_be_bytes());
    // TRANSFER COUNT UNITS 00h: bytes.
    p[8..12].copy_from_slice(&bytes.to_be_bytes());
    p
}

/// Length of the OPERATING PARAMETERS data.
pub const OPERATING_PARAMETERS_LEN: usize = 46;

/// RECEIVE COPY RESULTS' OPERATING PARAMETERS, byte for byte as LIO reports them.
pub fn operating_parameters() -> [u8; OPERATING_PARAMETERS_LEN] {
    let mut p = [0u8; OPERATING_PARAMETERS_LEN];
    p[0..4].copy_from_slice(&(OPERATING_PARAMETERS_LEN as u32 - 4).to_be_bytes());
    p[4] = 0x01; // SNLID: LIST ID USAGE 11b (no list identifier) is supported
    p[8..10].copy_from_slice(&(MAX_CSCDS as u16).to_be_bytes());
    p[10..12].copy_from_slice(&(MAX_SEGMENTS as u16).to_be_bytes());
    p[12..16].copy_from_slice(&(MAX_DESC_LIST_LEN as u32).to_be_bytes());
    p[16..20].copy_from_slice(&MAX_SEGMENT_BYTES.to_be_bytes());
    // No inline or held data, no stream devices.
    p[34..36].copy_from_slice(&1u16.to_be_bytes()); // TOTAL CONCURRENT COPIES
    p[36] = 1; // MAXIMUM CONCURRENT COPIES
    p[37] = 9; // DATA SEGMENT GRANULARITY (log2): 512 bytes
    p[38] = 9; // INLINE DATA GRANULARITY
    p[39] = 9; // HELD DATA GRANULARITY
    p[43] = 2; // IMPLEMENTED DESCRIPTOR LIST LENGTH
    p[44] = 0x02; // block to block
    p[45] = 0xe4; // identification CSCD
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    const A: Designator = [
        0x60, 0x01, 0x40, 0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    const B: Designator = [
        0x60, 0x01, 0x40, 0x5b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];

    fn cscd(id: &Designator) -> Vec<u8> {
        let mut d = std::vec![0u8; CSCD_LEN];
        d[0] = 0xe4;
        d[4] = 0x01; // binary
        d[5] = 0x03; // LU association, NAA
        d[7] = 16;
        d[8..24].copy_from_slice(id);
        d
    }

    fn segment(stdi: u16, dtdi: u16, blocks: u16, src_lba: u64, dst_lba: u64) -> Vec<u8> {
        let mut s = std::vec![0u8; SEGMENT_LEN];
        s[0] = 0x02;
        s[2..4].copy_from_slice(&0x18u16.to_be_bytes());
        s[4..6].copy_from_slice(&stdi.to_be_bytes());
        s[6..8].copy_from_slice(&dtdi.to_be_bytes());
        s[10..12].copy_from_slice(&blocks.to_be_bytes());
        s[12..20].copy_from_slice(&src_lba.to_be_bytes());
        s[20..28].copy_from_slice(&dst_lba.to_be_bytes());
        s
    }

    fn list(cscds: &[Vec<u8>], segs: &[Vec<u8>]) -> Vec<u8> {
        let t: Vec<u8> = cscds.concat();
        let s: Vec<u8> = segs.concat();
        let mut l = std::vec![0u8; HEADER_LEN];
        l[1] = 0x18; // LIST ID USAGE 11b
        l[2..4].copy_from_slice(&(t.len() as u16).to_be_bytes());
        l[8..12].copy_from_slice(&(s.len() as u32).to_be_bytes());
        l.extend(t);
        l.extend(s);
        l
    }

    fn parse(l: &[u8]) -> Result<Segment, Sense> {
        parse_list(l, l.len() as u32)
    }

    #[test]
    fn two_devices_one_segment() {
        let l = list(&[cscd(&A), cscd(&B)], &[segment(0, 1, 64, 8, 4096)]);
        assert_eq!(
            parse(&l),
            Ok(Segment {
                list_id: None,
                src: Some(A),
                dst: Some(B),
                src_lba: 8,
                dst_lba: 4096,
                blocks: 64
            })
        );
        let mut held = l.clone();
        held[0] = 7;
        held[1] = 0x00; // LIST ID USAGE 00b: the copy status is held
        assert_eq!(parse(&held).map(|s| s.list_id), Ok(Some(7)));
        held[1] = 0x08; // 01b: reserved
        assert_eq!(parse(&held), Err(Sense::invalid_param_field(1, Some(4))));
        // One descriptor for both ends (a copy within the device).
        let l = list(&[cscd(&A)], &[segment(0, 0, 1, 0, 1)]);
        assert_eq!(parse(&l).map(|s| (s.src, s.dst)), Ok((Some(A), Some(A))));
        // An index past the list reaches nothing.
        let l = list(&[cscd(&A)], &[segment(0, 1, 1, 0, 1)]);
        assert_eq!(parse(&l).map(|s| (s.src, s.dst)), Ok((Some(A), None)));
    }

    #[test]
    fn lengths() {
        let good = list(&[cscd(&A), cscd(&B)], &[segment(0, 1, 1, 0, 0)]);
        assert_eq!(parse(&good[..15]), Err(Sense::param_list_length()));
        // The list is shorter than its descriptor lengths say.
        assert_eq!(
            parse_list(&good, good.len() as u32 - 1),
            Err(Sense::param_list_length())
        );
        // More descriptor bytes than MAXIMUM DESCRIPTOR LIST LENGTH.
        let mut l = good.clone();
        l[8..12].copy_from_slice(&1000u32.to_be_bytes());
        assert_eq!(parse(&l), Err(Sense::param_list_length()));
        let mut l = good.clone();
        l[15] = 1;
        assert_eq!(parse(&l), Err(Sense::invalid_param_field(12, None)));
        // Garbage never panics.
        for n in 0..good.len() {
            for b in [0u8, 0x7f, 0xff] {
                let mut l = good.clone();
                l[n] = b;
                let _ = parse(&l);
                let _ = parse(&l[..n]);
            }
        }
    }

    #[test]
    fn descriptor_limits_and_types() {
        let seg = segment(0, 1, 1, 0, 0);
        let three = list(&[cscd(&A), cscd(&B), cscd(&A)], &[seg.clone()]);
        assert_eq!(parse(&three), Err(TOO_MANY_CSCDS));
        let two_segs = list(&[cscd(&A), cscd(&B)], &[seg.clone(), seg.clone()]);
        assert_eq!(parse(&two_segs), Err(TOO_MANY_SEGMENTS));
        let mut l = list(&[cscd(&A), cscd(&B)], &[seg.clone()]);
        l[HEADER_LEN + 2 * CSCD_LEN] = 0x03; // block to stream
        assert_eq!(parse(&l), Err(UNSUPPORTED_SEGMENT));
        let mut l = list(&[cscd(&A), cscd(&B)], &[seg.clone()]);
        l[HEADER_LEN] = 0xe0; // Fibre Channel N_Port name
        assert_eq!(parse(&l), Err(UNSUPPORTED_CSCD));
        let mut l = list(&[cscd(&A), cscd(&B)], &[seg.clone()]);
        l[HEADER_LEN + CSCD_LEN + 5] = 0x02; // EUI-64
        assert_eq!(
            parse(&l),
            Err(Sense::invalid_param_field(
                (HEADER_LEN + CSCD_LEN + 5) as u16,
                Some(3)
            ))
        );
        let mut l = list(&[cscd(&A), cscd(&B)], &[seg.clone()]);
        l[HEADER_LEN + 2 * CSCD_LEN + 4] = 0x08; // a CSCD ID that is not an index
        assert_eq!(
            parse(&l),
            Err(Sense::invalid_param_field(
                (HEADER_LEN + 2 * CSCD_LEN + 4) as u16,
                None
            ))
        );
        let no_segment = list(&[cscd(&A)], &[]);
        assert!(parse(&no_segment).is_err());
        assert_eq!(TOO_MANY_CSCDS.key, SenseKey::IllegalRequest);
        assert_eq!((TOO_MANY_CSCDS.asc, TOO_MANY_CSCDS.ascq), (0x26, 0x06));
    }

    #[test]
    fn copy_aborted_sense() {
        let mut b = [0u8; 18];
        not_reachable().write_fixed(&mut b);
        assert_eq!((b[2], b[12], b[13]), (0x0a, 0x0d, 0x02));
    }

    #[test]
    fn copy_status_layout() {
        assert_eq!(
            copy_status(true, 0x10_0000),
            [0, 0, 0, 8, 0, 0, 1, 0, 0, 0x10, 0, 0]
        );
        assert_eq!(copy_status(false, 0)[4..7], [1, 0, 0]);
    }

    #[test]
    fn operating_parameters_as_lio() {
        let p = operating_parameters();
        assert_eq!(&p[..4], &[0, 0, 0, 42]);
        assert_eq!(&p[8..20], &[0, 2, 0, 1, 0, 0, 4, 0, 0x10, 0, 0, 0]);
        assert_eq!(&p[34..46], &[0, 1, 1, 9, 9, 9, 0, 0, 0, 2, 0x02, 0xe4]);
    }
}
