//! SPC-4 response builders: standard INQUIRY, VPD pages, MODE SENSE, REPORT LUNS, REQUEST
//! SENSE. Byte for byte what LIO (Linux 7.3 target_core_spc.c) answers for the same device,
//! so udev and multipath rules written for LIO keep working.

use super::command::{AtomicLimits, Thin};
use super::pi::PiType;
use super::sense::Sense;

/// LIO's IEEE company id (used in the NAA designator).
pub const LIO_COMPANY_ID: u32 = 0x001405;

/// SCSI transport protocol identifiers (SPC-4 table 444).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Proto {
    /// Fibre Channel.
    Fcp = 0,
    /// iSCSI.
    Iscsi = 5,
    /// SAS (what tcm_loop reports for `naa.` WWNs).
    Sas = 6,
}

impl Proto {
    /// Version descriptor of the transport (INQUIRY bytes 60-61).
    const fn version_descriptor(self) -> u16 {
        match self {
            Proto::Fcp => 0x0a40,
            Proto::Iscsi => 0x0960,
            Proto::Sas => 0x0c60,
        }
    }
}

/// What INQUIRY and VPD 83h say about a LUN and the port it is reached through.
#[derive(Clone, Copy, Debug)]
pub struct Identity<'a> {
    /// T10 vendor (up to 8 bytes, space padded on the wire).
    pub vendor: &'a [u8],
    /// Product (up to 16 bytes).
    pub product: &'a [u8],
    /// Revision (up to 4 bytes).
    pub revision: &'a [u8],
    /// `wwn/vpd_unit_serial`; empty if unset.
    pub unit_serial: &'a [u8],
    /// IEEE company id for the NAA designator.
    pub company_id: u32,
    /// Transport protocol of the target port.
    pub proto: Proto,
    /// Target port name (the fabric WWN, e.g. `naa.5001405...`).
    pub port_wwn: &'a [u8],
    /// Target portal group tag.
    pub tpgt: u16,
    /// Relative target port identifier.
    pub rtpi: u16,
    /// Target port group id (ALUA).
    pub tg_pt_gp_id: u16,
    /// Logical unit group id (ALUA).
    pub lu_gp_id: u16,
    /// The copy manager is on (`emulate_3pc`): standard INQUIRY's 3PC bit.
    pub three_pc: bool,
    /// PROTECT: protection information, for a nexus that can carry it.
    pub protect: bool,
}

/// Block limits and characteristics (VPD B0h, B1h, B2h; READ CAPACITY; MODE SENSE).
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    /// Logical block size in bytes.
    pub block_size: u32,
    /// Last LBA (number of blocks - 1).
    pub last_lba: u64,
    /// MAXIMUM TRANSFER LENGTH in blocks.
    pub max_transfer: u32,
    /// OPTIMAL TRANSFER LENGTH in blocks.
    pub optimal_transfer: u32,
    /// OPTIMAL TRANSFER LENGTH GRANULARITY in blocks (B0h bytes 6-7).
    pub granularity: u16,
    /// Logical blocks per physical block exponent (READ CAPACITY(16) byte 13).
    pub lbppbe: u8,
    /// Lowest aligned logical block address (READ CAPACITY(16) bytes 14-15).
    pub lowest_aligned: u16,
    /// Non-rotating medium (B1h rotation rate 1).
    pub nonrot: bool,
    /// Write cache enabled (WCE).
    pub write_cache: bool,
    /// DPO and FUA supported (MODE SENSE DPOFUA).
    pub dpofua: bool,
    /// COMPARE AND WRITE supported (B0h byte 5).
    pub caw: bool,
    /// Logical block provisioning (B0h, B2h, READ CAPACITY(16)).
    pub thin: Thin,
    /// MODE SELECT may change WCE (an emulated write cache; a medium's own is not ours).
    pub wce_changeable: bool,
    /// Software write protect (control page SWP), set by MODE SELECT.
    pub swp: bool,
    /// `emulate_ua_intlck_ctrl`: 0 clear, 1 no clear, 2 establish (UA_INTLCK_CTRL 0, 2, 3).
    pub ua_intlck: u8,
    /// OPTIMAL UNMAP GRANULARITY in blocks.
    pub unmap_granularity: u32,
    /// UNMAP GRANULARITY ALIGNMENT in blocks (UGAVALID when not 0).
    pub unmap_alignment: u32,
    /// Atomic writes (B0h bytes 44-63).
    pub atomic: AtomicLimits,
    /// The protection type advertised (VPD 86h, READ CAPACITY(16), the control page's ATO):
    /// the device's, for a nexus that can carry protection information.
    pub pi: Option<PiType>,
}

fn put_padded(dst: &mut [u8], src: &[u8]) {
    for (i, d) in dst.iter_mut().enumerate() {
        *d = src.get(i).copied().unwrap_or(b' ');
    }
}

/// Writes `src` at `buf[at..]` as far as it fits; returns `at + src.len()` either way, so
/// builders compute full lengths even when the buffer is short.
pub fn put(buf: &mut [u8], at: usize, src: &[u8]) -> usize {
    if at < buf.len() {
        let n = src.len().min(buf.len() - at);
        buf[at..at + n].copy_from_slice(&src[..n]);
    }
    at + src.len()
}

/// Length of a standard INQUIRY response.
pub const STD_INQUIRY_LEN: usize = 96;

/// Standard INQUIRY data for a disk (SPC-4 6.6.2) into `buf` (at least 96 bytes).
pub fn inquiry_std(id: &Identity<'_>, buf: &mut [u8; STD_INQUIRY_LEN]) {
    buf.fill(0);
    buf[2] = 0x06; // SPC-4
    buf[3] = 0x02; // response data format 2
    buf[4] = (STD_INQUIRY_LEN - 5) as u8;
    // SCCS, and 3PC with EXTENDED COPY. TPGS 0: ALUA is not implemented yet, so no initiator
    // may rely on it (LIO sets it).
    buf[5] = 0x80 | if id.three_pc { 0x08 } else { 0 } | u8::from(id.protect);
    buf[7] = 0x02; // CMDQUE
    put_padded(&mut buf[8..16], id.vendor);
    put_padded(&mut buf[16..32], id.product);
    put_padded(&mut buf[32..36], id.revision);
    for (i, d) in [0x00a0, id.proto.version_descriptor(), 0x0460, 0x04c0]
        .iter()
        .enumerate()
    {
        buf[58 + 2 * i..60 + 2 * i].copy_from_slice(&u16::to_be_bytes(*d));
    }
}

/// Standard INQUIRY data for a LUN number the nexus does not see: peripheral qualifier 001b
/// (no device connected) and type 1Fh, as LIO's virtual LUN 0 answers.
pub fn inquiry_no_lun(buf: &mut [u8; STD_INQUIRY_LEN]) {
    buf.fill(0);
    buf[0] = 0x3f;
    buf[2] = 0x06;
    buf[3] = 0x02;
    buf[4] = (STD_INQUIRY_LEN - 5) as u8;
    put_padded(&mut buf[8..16], b"LIO-ORG");
    put_padded(&mut buf[16..32], b"NO LUN");
    put_padded(&mut buf[32..36], b"1.0");
}

/// The 16-byte NAA IEEE Registered Extended designator LIO derives from the unit serial:
/// the company id, then up to 25 hex digits of the serial (other characters skipped).
pub fn naa_6h(company_id: u32, serial: &[u8]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0] = 0x60 | ((company_id >> 20) & 0xf) as u8;
    b[1] = (company_id >> 12) as u8;
    b[2] = (company_id >> 4) as u8;
    b[3] = ((company_id & 0xf) << 4) as u8;
    let mut off = 3;
    let mut low = true;
    for v in serial.iter().filter_map(|&c| (c as char).to_digit(16)) {
        if off >= 16 {
            break;
        }
        if low {
            b[off] |= v as u8;
            off += 1;
        } else {
            b[off] = (v as u8) << 4;
        }
        low = !low;
    }
    b
}

/// Largest VPD page: 83h with a 253-byte serial and a 255-byte port name.
pub const VPD_MAX: usize = 1024;

/// VPD pages served, in order.
pub const VPD_PAGES: [u8; 8] = [0x00, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2, 0xb3];

/// Builds VPD page `page` into `buf`; returns the full page length (which may exceed
/// `buf.len()`: the caller truncates to the allocation length). Unknown page: INVALID FIELD
/// IN CDB, pointing at the PAGE CODE byte.
pub fn vpd(page: u8, id: &Identity<'_>, geo: &Geometry, buf: &mut [u8]) -> Result<usize, Sense> {
    let mut hdr = [0u8, page, 0, 0];
    let body_start = 4;
    let end = match page {
        0x00 => {
            if id.unit_serial.is_empty() {
                body_start
            } else {
                put(buf, body_start, &VPD_PAGES)
            }
        }
        0x80 => {
            if id.unit_serial.is_empty() {
                body_start
            } else {
                let e = put(buf, body_start, id.unit_serial);
                put(buf, e, &[0])
            }
        }
        0x83 => vpd_83(id, buf),
        0x86 => {
            let mut b = [0u8; 60];
            // HEADSUP, ORDSUP, SIMPSUP; V_SUP with a volatile cache (as LIO, with WCE).
            b[0] = geo.pi.map_or(0, PiType::vpd86_byte);
            b[1] = 0x07;
            b[2] = u8::from(geo.write_cache);
            put(buf, body_start, &b)
        }
        0xb0 => {
            let mut b = [0u8; 60];
            // WSNZ 0: WRITE SAME of zero blocks writes to the end of the medium.
            b[1] = u8::from(geo.caw);
            b[2..4].copy_from_slice(&geo.granularity.to_be_bytes());
            b[4..8].copy_from_slice(&geo.max_transfer.to_be_bytes());
            b[8..12].copy_from_slice(&geo.optimal_transfer.to_be_bytes());
            // With thin provisioning, the unmap and WRITE SAME limits follow, and with atomic
            // writes their limits (as LIO: the page is only as long as what it carries).
            let t = &geo.thin;
            let mut len = 12;
            if t.tpu || t.tpws {
                b[16..20].copy_from_slice(&t.max_unmap_lba_count.to_be_bytes());
                b[20..24].copy_from_slice(&t.max_unmap_desc_count.to_be_bytes());
                b[24..28].copy_from_slice(&geo.unmap_granularity.to_be_bytes());
                b[28..32].copy_from_slice(&geo.unmap_alignment.to_be_bytes());
                if geo.unmap_alignment != 0 {
                    b[28] |= 0x80; // UGAVALID
                }
                b[32..40].copy_from_slice(&u64::from(t.max_write_same).to_be_bytes());
                len = 40;
            }
            let a = &geo.atomic;
            if a.max_len != 0 {
                let max = a.max_len.min(geo.max_transfer);
                b[40..44].copy_from_slice(&max.to_be_bytes());
                b[44..48].copy_from_slice(&a.alignment.to_be_bytes());
                b[48..52].copy_from_slice(&a.granularity.to_be_bytes());
                b[52..56].copy_from_slice(&a.max_with_boundary.to_be_bytes());
                b[56..60].copy_from_slice(&a.max_boundary.to_be_bytes());
                len = 60;
            }
            put(buf, body_start, &b[..len])
        }
        0xb1 => {
            let mut b = [0u8; 60];
            b[1] = u8::from(geo.nonrot);
            // WABEREQ 1 where SANITIZE BLOCK ERASE is offered: blocks read after it succeed
            // (as deallocated ones).
            if geo.thin.tpu {
                b[3] = 0x40;
            }
            put(buf, body_start, &b)
        }
        0xb2 => {
            let t = &geo.thin;
            // LBPU, LBPWS and LBPWS10, LBPRZ (when deallocation is offered at all).
            let mut b = [0u8; 4];
            if t.tpu {
                b[1] |= 0x80;
            }
            if t.tpws {
                b[1] |= 0x40 | 0x20;
            }
            if (t.tpu || t.tpws) && t.lbprz {
                b[1] |= 0x04;
            }
            put(buf, body_start, &b)
        }
        0xb3 => put(buf, body_start, &[0u8; 12]),
        _ => return Err(Sense::invalid_cdb_field(2, None)),
    };
    hdr[2..4].copy_from_slice(&((end - 4) as u16).to_be_bytes());
    put(buf, 0, &hdr);
    Ok(end)
}

/// Device identification designators, in LIO's order.
fn vpd_83(id: &Identity<'_>, buf: &mut [u8]) -> usize {
    let p = (id.proto as u8) << 4;
    let mut at = 4;
    if !id.unit_serial.is_empty() {
        at = put(buf, at, &[0x01, 0x03, 0x00, 0x10]);
        at = put(buf, at, &naa_6h(id.company_id, id.unit_serial));
    }
    // T10 vendor identification: vendor, then "<product>:<serial>", within one length byte.
    let product = trim(id.product);
    let serial = &id.unit_serial[..id.unit_serial.len().min(255 - 10 - product.len())];
    let t10_len =
        8 + if serial.is_empty() {
            0
        } else {
            product.len() + 1 + serial.len()
        } + 1;
    at = put(buf, at, &[0x02, 0x01, 0x00, t10_len as u8]);
    let mut vendor = [b' '; 8];
    put_padded(&mut vendor, id.vendor);
    at = put(buf, at, &vendor);
    if !serial.is_empty() {
        at = put(buf, at, product);
        at = put(buf, at, b":");
        at = put(buf, at, serial);
    }
    at = put(buf, at, &[0]);
    // Relative target port, target port group, logical unit group.
    at = put(buf, at, &[p | 0x01, 0x94, 0x00, 0x04, 0, 0]);
    at = put(buf, at, &id.rtpi.to_be_bytes());
    at = put(buf, at, &[p | 0x01, 0x95, 0x00, 0x04, 0, 0]);
    at = put(buf, at, &id.tg_pt_gp_id.to_be_bytes());
    at = put(buf, at, &[0x01, 0x06, 0x00, 0x04, 0, 0]);
    at = put(buf, at, &id.lu_gp_id.to_be_bytes());
    // SCSI name strings: target port "<wwn>,t,0x<tpgt>", then target device "<wwn>".
    at = name_string(buf, at, p | 0x03, 0x98, id.port_wwn, Some(id.tpgt));
    name_string(buf, at, p | 0x03, 0xa8, id.port_wwn, None)
}

fn trim(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|&c| c != b' ' && c != 0)
        .map_or(0, |i| i + 1);
    &s[..end]
}

fn name_string(buf: &mut [u8], at: usize, b0: u8, b1: u8, wwn: &[u8], tpgt: Option<u16>) -> usize {
    // "<wwn>,t,0x%04x" + NUL, padded to a multiple of 4 (at most 256).
    let mut s = [0u8; 256];
    let mut n = wwn.len().min(240);
    s[..n].copy_from_slice(&wwn[..n]);
    if let Some(t) = tpgt {
        s[n..n + 5].copy_from_slice(b",t,0x");
        n += 5;
        for shift in [12, 8, 4, 0] {
            s[n] = b"0123456789abcdef"[usize::from((t >> shift) & 0xf)];
            n += 1;
        }
    }
    let len = (n + 1).next_multiple_of(4).min(256);
    let at = put(buf, at, &[b0, b1, 0x00, len as u8]);
    put(buf, at, &s[..len])
}

/// READ CAPACITY(10) data.
pub fn read_capacity10(geo: &Geometry) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&(geo.last_lba.min(0xffff_ffff) as u32).to_be_bytes());
    b[4..].copy_from_slice(&geo.block_size.to_be_bytes());
    b
}

/// READ CAPACITY(16) data.
pub fn read_capacity16(geo: &Geometry) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&geo.last_lba.to_be_bytes());
    b[8..12].copy_from_slice(&geo.block_size.to_be_bytes());
    b[12] = geo.pi.map_or(0, PiType::read_capacity_byte);
    b[13] = geo.lbppbe & 0x0f;
    b[14..16].copy_from_slice(&(geo.lowest_aligned & 0x3fff).to_be_bytes());
    if geo.thin.tpu || geo.thin.tpws {
        b[14] |= 0x80; // LBPME
        if geo.thin.lbprz {
            b[14] |= 0x40; // LBPRZ
        }
    }
    b
}

/// MODE SENSE options from the CDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeSense {
    /// 10-byte form.
    pub ten: bool,
    /// Disable block descriptors.
    pub dbd: bool,
    /// Long LBA block descriptor accepted (10-byte form).
    pub llbaa: bool,
    /// Page control (0 current, 1 changeable, 2 default, 3 saved).
    pub pc: u8,
    /// Page code.
    pub page: u8,
    /// Subpage code.
    pub subpage: u8,
}

impl ModeSense {
    /// Decodes MODE SENSE(6) or (10).
    pub fn decode(cdb: &[u8]) -> ModeSense {
        ModeSense {
            ten: cdb[0] == 0x5a,
            dbd: cdb[1] & 0x08 != 0,
            llbaa: cdb[0] == 0x5a && cdb[1] & 0x10 != 0,
            pc: cdb[2] >> 6,
            page: cdb[2] & 0x3f,
            subpage: cdb[3],
        }
    }
}

/// One mode page as LIO reports it; `changeable` shows the bits MODE SELECT may change (WCE,
/// where the write cache is emulated, and SWP; LIO has none).
fn mode_page(page: u8, geo: &Geometry, changeable: bool) -> Option<([u8; 20], usize)> {
    let mut b = [0u8; 20];
    let len = match page {
        0x01 | 0x1c => 12,
        0x08 => 20,
        0x0a => 12,
        _ => return None,
    };
    b[0] = page;
    b[1] = (len - 2) as u8;
    if changeable {
        if page == 0x08 && geo.wce_changeable {
            b[2] = 0x04;
        }
        if page == 0x0a {
            b[4] = SWP;
        }
    } else {
        match page {
            0x08 => {
                b[2] = if geo.write_cache { 0x04 } else { 0 };
                b[12] = 0x20; // DRA
            }
            0x0a => {
                b[2] = 0x02 | if geo.last_lba > 0xffff_ffff { 0x04 } else { 0 }; // GLTSD, D_SENSE
                b[3] = 0x10; // QUEUE ALGORITHM MODIFIER 1, as LIO sets it
                b[4] = match geo.ua_intlck {
                    1 => 0x20,
                    2 => 0x30,
                    _ => 0,
                } | if geo.swp { SWP } else { 0 };
                // TAS; ATO with protection information (application tags are the initiator's).
                b[5] = 0x40 | if geo.pi.is_some() { 0x80 } else { 0 };
                b[8] = 0xff;
                b[9] = 0xff;
                b[11] = 30;
            }
            _ => {}
        }
    }
    Some((b, len))
}

/// The control page's SWP bit (byte 4).
const SWP: u8 = 0x08;

/// Builds MODE SENSE data into `buf`; returns the full length. Unsupported page or subpage:
/// INVALID FIELD IN CDB at byte 2 (page) or 3 (subpage).
pub fn mode_sense(
    ms: &ModeSense,
    geo: &Geometry,
    write_protect: bool,
    buf: &mut [u8],
) -> Result<usize, Sense> {
    let pages: &[u8] = match (ms.page, ms.subpage) {
        (0x3f, 0x00 | 0xff) => &[0x01, 0x08, 0x0a, 0x1c],
        (0x3f, _) => return Err(Sense::invalid_cdb_field(3, None)),
        (0x01, 0) => &[0x01],
        (0x08, 0) => &[0x08],
        (0x0a, 0) => &[0x0a],
        (0x1c, 0) => &[0x1c],
        (_, 0) => return Err(Sense::invalid_cdb_field(2, Some(5))),
        _ => return Err(Sense::invalid_cdb_field(3, None)),
    };
    let hdr_len = if ms.ten { 8 } else { 4 };
    let dsp = if write_protect { 0x80 } else { 0 } | if geo.dpofua { 0x10 } else { 0 };
    let mut at = hdr_len;
    let mut bd_len = 0usize;
    if !ms.dbd {
        if ms.ten && ms.llbaa && geo.last_lba > 0xffff_ffff {
            let mut d = [0u8; 16];
            d[..8].copy_from_slice(&geo.last_lba.to_be_bytes());
            d[12..16].copy_from_slice(&geo.block_size.to_be_bytes());
            at = put(buf, at, &d);
            bd_len = 16;
        } else {
            // LIO reports the last LBA as NUMBER OF LOGICAL BLOCKS; we keep its answer.
            let mut d = [0u8; 8];
            d[..4].copy_from_slice(&(geo.last_lba.min(0xffff_ffff) as u32).to_be_bytes());
            d[4..8].copy_from_slice(&geo.block_size.to_be_bytes());
            at = put(buf, at, &d);
            bd_len = 8;
        }
    }
    for &p in pages {
        if let Some((b, len)) = mode_page(p, geo, ms.pc == 1) {
            at = put(buf, at, &b[..len]);
        }
    }
    let mut hdr = [0u8; 8];
    if ms.ten {
        hdr[..2].copy_from_slice(&((at - 2) as u16).to_be_bytes());
        hdr[3] = dsp;
        hdr[4] = u8::from(bd_len == 16);
        hdr[6..8].copy_from_slice(&(bd_len as u16).to_be_bytes());
    } else {
        hdr[0] = (at - 1).min(255) as u8;
        hdr[2] = dsp;
        hdr[3] = bd_len as u8;
    }
    put(buf, 0, &hdr[..hdr_len]);
    Ok(at)
}

/// What a MODE SELECT sets: each bit it sent, changed or not.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ModeChanges {
    /// WCE, when the caching page was sent.
    pub wce: Option<bool>,
    /// SWP, when the control page was sent.
    pub swp: Option<bool>,
}

/// MODE SELECT(6/10) parameter data (SPC-4 6.11): the header, an optional block descriptor
/// and mode pages. Every page must be one MODE SENSE reports, with the current value in every
/// bit that is not changeable.
pub fn mode_select(ten: bool, data: &[u8], geo: &Geometry) -> Result<ModeChanges, Sense> {
    let hdr_len = if ten { 8 } else { 4 };
    if data.len() < hdr_len {
        return Err(Sense::param_list_length());
    }
    let bd_len = if ten {
        usize::from(u16::from_be_bytes([data[6], data[7]]))
    } else {
        usize::from(data[3])
    };
    // MODE DATA LENGTH is reserved in MODE SELECT; so is the medium type for a disk.
    let mdl_end = if ten { 2 } else { 1 };
    if data[..mdl_end].iter().any(|&b| b != 0) {
        return Err(Sense::invalid_param_field(0, None));
    }
    if data[hdr_len - if ten { 7 } else { 3 }] != 0 {
        return Err(Sense::invalid_param_field(mdl_end as u16, None));
    }
    let mut at = hdr_len;
    if bd_len != 0 {
        // One block descriptor whose block length is the current one (the count may be 0).
        if data.len() < at + bd_len || (bd_len != 8 && bd_len != 16) {
            return Err(Sense::param_list_length());
        }
        let d = &data[at..at + bd_len];
        let bl = u32::from_be_bytes([d[bd_len - 4], d[bd_len - 3], d[bd_len - 2], d[bd_len - 1]]);
        if bl != geo.block_size {
            return Err(Sense::invalid_param_field((at + bd_len - 4) as u16, None));
        }
        at += bd_len;
    }
    let mut changes = ModeChanges::default();
    while at < data.len() {
        if data.len() < at + 2 {
            return Err(Sense::param_list_length());
        }
        let code = data[at] & 0x3f;
        if data[at] & 0x40 != 0 {
            // SPF: no subpages are implemented.
            return Err(Sense::invalid_param_field(at as u16, Some(6)));
        }
        let Some((cur, len)) = mode_page(code, geo, false) else {
            return Err(Sense::invalid_param_field(at as u16, Some(5)));
        };
        let (can, _) = mode_page(code, geo, true).unwrap_or(([0; 20], 0));
        if usize::from(data[at + 1]) + 2 != len {
            return Err(Sense::invalid_param_field(at as u16 + 1, None));
        }
        if data.len() < at + len {
            return Err(Sense::param_list_length());
        }
        let page = &data[at..at + len];
        // Byte 0 holds PS (reserved here) and the code, byte 1 the length: checked above.
        for i in 2..len {
            if (page[i] ^ cur[i]) & !can[i] != 0 {
                return Err(Sense::invalid_param_field((at + i) as u16, None));
            }
        }
        match code {
            0x08 => changes.wce = Some(page[2] & 0x04 != 0),
            0x0a => changes.swp = Some(page[4] & SWP != 0),
            _ => {}
        }
        at += len;
    }
    Ok(changes)
}

/// REPORT LUNS data for `luns`, handed to `out(offset, bytes)` piece by piece (the list has
/// no fixed bound, so callers write it where it goes); returns the full length. An empty list
/// reports LUN 0, as LIO does.
pub fn report_luns(luns: impl Iterator<Item = u64>, mut out: impl FnMut(usize, &[u8])) -> usize {
    let mut at = 8;
    for lun in luns {
        out(at, &scsilun(lun));
        at += 8;
    }
    if at == 8 {
        out(at, &scsilun(0));
        at += 8;
    }
    let mut hdr = [0u8; 8];
    hdr[..4].copy_from_slice(&((at - 8) as u32).to_be_bytes());
    out(0, &hdr);
    at
}

/// `int_to_scsilun`: two bytes per addressing level, no method bits added.
pub fn scsilun(lun: u64) -> [u8; 8] {
    let mut b = [0u8; 8];
    for i in 0..4 {
        let level = (lun >> (16 * i)) as u16;
        b[2 * i..2 * i + 2].copy_from_slice(&level.to_be_bytes());
    }
    b
}

/// `scsilun_to_int`, the inverse of [`scsilun`].
pub fn scsilun_to_int(b: &[u8; 8]) -> u64 {
    (0..4).fold(0u64, |v, i| {
        v | (u64::from(u16::from_be_bytes([b[2 * i], b[2 * i + 1]])) << (16 * i))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec;

    fn id<'a>(serial: &'a [u8]) -> Identity<'a> {
        Identity {
            vendor: b"LIO-ORG",
            product: b"RAMDISK-MCP",
            revision: b"4.0",
            unit_serial: serial,
            company_id: LIO_COMPANY_ID,
            proto: Proto::Sas,
            port_wwn: b"naa.5001405a1b2c3d4e",
            tpgt: 1,
            rtpi: 0,
            tg_pt_gp_id: 0,
            lu_gp_id: 0,
            three_pc: true,
            protect: false,
        }
    }

    fn geo() -> Geometry {
        Geometry {
            block_size: 512,
            last_lba: 0x1f_ffff,
            max_transfer: 0xffff_fff8,
            optimal_transfer: 0xffff_fff8,
            granularity: 1,
            lbppbe: 0,
            lowest_aligned: 0,
            nonrot: true,
            write_cache: false,
            dpofua: false,
            caw: true,
            wce_changeable: true,
            swp: false,
            ua_intlck: 0,
            thin: Thin::default(),
            unmap_granularity: 0,
            unmap_alignment: 0,
            atomic: AtomicLimits::default(),
            pi: None,
        }
    }

    #[test]
    fn protection_bits_match_lio() {
        let mut b = [0u8; 96];
        inquiry_std(
            &Identity {
                protect: true,
                ..id(b"")
            },
            &mut b,
        );
        assert_eq!(b[5], 0x89);
        for (ty, vpd86, rc16) in [(PiType::Type1, 0x1d, 0x01), (PiType::Type3, 0x1c, 0x05)] {
            let g = Geometry {
                pi: Some(ty),
                ..geo()
            };
            let mut v = [0u8; 64];
            vpd(0x86, &id(b""), &g, &mut v).unwrap();
            assert_eq!((v[4], v[5]), (vpd86, 0x07));
            assert_eq!(read_capacity16(&g)[12], rc16);
            let mut m = [0u8; 64];
            let ms = ModeSense::decode(&[0x1a, 0x08, 0x0a, 0, 64, 0]);
            let n = mode_sense(&ms, &g, false, &mut m).unwrap();
            assert_eq!(n, 16);
            assert_eq!(m[4 + 5], 0xc0); // ATO and TAS
        }
        let mut v = [0u8; 64];
        vpd(0x86, &id(b""), &geo(), &mut v).unwrap();
        assert_eq!(v[4], 0);
        assert_eq!(read_capacity16(&geo())[12], 0);
    }

    #[test]
    fn mode_select_changes_only_wce() {
        let g = geo();
        let mut buf = [0u8; 64];
        // What MODE SENSE(6) of the caching page says, sent back with WCE set.
        let ms = ModeSense {
            ten: false,
            dbd: true,
            llbaa: false,
            pc: 0,
            page: 0x08,
            subpage: 0,
        };
        let n = mode_sense(&ms, &g, false, &mut buf).unwrap();
        let mut data = buf[..n].to_vec();
        data[0] = 0;
        data[2] = 0;
        assert_eq!(
            mode_select(false, &data, &g).map(|c| c.wce),
            Ok(Some(false))
        );
        data[4 + 2] |= 0x04;
        assert_eq!(mode_select(false, &data, &g).map(|c| c.wce), Ok(Some(true)));
        // Another bit of the page: refused with a pointer to it.
        data[4 + 12] ^= 0x20;
        assert_eq!(
            mode_select(false, &data, &g).unwrap_err(),
            Sense::invalid_param_field(16, None)
        );
        data[4 + 12] ^= 0x20;
        // WCE not changeable (a medium's own cache).
        let fixed = Geometry {
            wce_changeable: false,
            ..g
        };
        assert_eq!(
            mode_select(false, &data, &fixed)
                .unwrap_err()
                .field
                .unwrap()
                .byte,
            6
        );
        // Unknown page, wrong length, short list.
        assert_eq!(
            mode_select(false, &[0, 0, 0, 0, 0x05, 2, 0, 0], &g)
                .unwrap_err()
                .field
                .unwrap()
                .byte,
            4
        );
        assert_eq!(
            mode_select(false, &[0, 0, 0, 0, 0x08, 4, 0, 0, 0, 0], &g)
                .unwrap_err()
                .field
                .unwrap()
                .byte,
            5
        );
        assert_eq!(
            mode_select(false, &[0, 0], &g).unwrap_err(),
            Sense::param_list_length()
        );
        // A block descriptor with the current block length passes; another is refused.
        let mut bd = vec![0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 2, 0];
        assert_eq!(mode_select(false, &bd, &g), Ok(ModeChanges::default()));
        bd[10] = 4;
        assert_eq!(
            mode_select(false, &bd, &g).unwrap_err().field.unwrap().byte,
            8
        );
    }

    #[test]
    fn control_page_swp() {
        let g = geo();
        let ms = |pc: u8| ModeSense::decode(&[0x1a, 0x08, pc << 6 | 0x0a, 0, 64, 0]);
        let mut buf = [0u8; 64];
        // Only SWP is changeable; UA_INTLCK_CTRL shows the attribute.
        let n = mode_sense(&ms(1), &g, false, &mut buf).unwrap();
        assert_eq!(&buf[4..n], &[0x0a, 10, 0, 0, SWP, 0, 0, 0, 0, 0, 0, 0]);
        for (attr, field) in [(0, 0), (1, 0x20), (2, 0x30)] {
            let intlck = Geometry {
                ua_intlck: attr,
                ..geo()
            };
            mode_sense(&ms(0), &intlck, false, &mut buf).unwrap();
            assert_eq!(buf[4 + 4], field);
        }
        // The current page sent back with SWP set, then cleared.
        let n = mode_sense(&ms(0), &g, false, &mut buf).unwrap();
        let mut data = buf[..n].to_vec();
        data[0] = 0;
        data[4 + 4] |= SWP;
        let on = mode_select(false, &data, &g).unwrap();
        assert_eq!((on.swp, on.wce), (Some(true), None));
        let set = Geometry { swp: true, ..geo() };
        mode_sense(&ms(0), &set, false, &mut buf).unwrap();
        assert_eq!(buf[4 + 4], SWP);
        data[4 + 4] &= !SWP;
        assert_eq!(mode_select(false, &data, &set).unwrap().swp, Some(false));
        // Another bit of byte 4 (RAC) is not changeable.
        data[4 + 4] |= 0x40;
        assert_eq!(
            mode_select(false, &data, &g).unwrap_err(),
            Sense::invalid_param_field(8, None)
        );
    }

    #[test]
    fn thin_provisioning_pages() {
        let mut g = geo();
        g.thin = Thin {
            tpu: true,
            tpws: true,
            lbprz: true,
            max_unmap_lba_count: 0x2000,
            max_unmap_desc_count: 1,
            max_write_same: 0xffff,
        };
        g.unmap_granularity = 8;
        g.unmap_alignment = 1;
        let mut b = [0u8; 64];
        assert_eq!(vpd(0xb0, &id(b""), &g, &mut b), Ok(44));
        assert_eq!(&b[2..4], &[0, 40]);
        assert_eq!(&b[20..24], &[0, 0, 0x20, 0]);
        assert_eq!(&b[24..28], &[0, 0, 0, 1]);
        assert_eq!(&b[28..32], &[0, 0, 0, 8]);
        assert_eq!(&b[32..36], &[0x80, 0, 0, 1]);
        assert_eq!(&b[36..44], &[0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        // WABEREQ 1 with SANITIZE BLOCK ERASE (thin devices), 0 without.
        let mut c = [0u8; 64];
        vpd(0xb1, &id(b""), &g, &mut c).unwrap();
        assert_eq!(c[7], 0x40);
        vpd(0xb1, &id(b""), &geo(), &mut c).unwrap();
        assert_eq!(c[7], 0);
        // Atomic writes lengthen the page to 60 bytes, with or without thin provisioning; the
        // maximum is capped by the maximum transfer length, as in LIO.
        let atomic = AtomicLimits {
            max_len: 64,
            alignment: 8,
            granularity: 8,
            max_with_boundary: 0,
            max_boundary: 0,
        };
        let a = Geometry {
            atomic,
            max_transfer: 32,
            thin: Thin::default(),
            ..g
        };
        assert_eq!(vpd(0xb0, &id(b""), &a, &mut b), Ok(64));
        assert_eq!(&b[2..4], &[0, 60]);
        assert_eq!(&b[20..24], &[0, 0, 0, 0]);
        assert_eq!(&b[44..56], &[0, 0, 0, 32, 0, 0, 0, 8, 0, 0, 0, 8]);
        assert_eq!(&b[56..64], &[0; 8]);
        assert_eq!(vpd(0xb2, &id(b""), &g, &mut b), Ok(8));
        assert_eq!(b[5], 0xe4);
        assert_eq!(read_capacity16(&g)[14], 0xc0);
        g.thin.lbprz = false;
        g.thin.tpu = false;
        vpd(0xb2, &id(b""), &g, &mut b).unwrap();
        assert_eq!(b[5], 0x60);
        assert_eq!(read_capacity16(&g)[14], 0x80);
    }

    const SERIAL: &[u8] = b"6f9a2b3c-1d2e-4f50-8a9b-0c1d2e3f4a5b";

    #[test]
    fn standard_inquiry_matches_lio() {
        let mut b = [0u8; 96];
        inquiry_std(&id(b""), &mut b);
        assert_eq!(&b[..8], &[0, 0, 6, 2, 91, 0x88, 0, 2]);
        inquiry_std(
            &Identity {
                three_pc: false,
                ..id(b"")
            },
            &mut b,
        );
        assert_eq!(b[5], 0x80);
        assert_eq!(&b[8..36], b"LIO-ORG RAMDISK-MCP     4.0 ");
        assert_eq!(
            &b[58..66],
            &[0x00, 0xa0, 0x0c, 0x60, 0x04, 0x60, 0x04, 0xc0]
        );
    }

    #[test]
    fn naa_from_serial() {
        assert_eq!(
            naa_6h(LIO_COMPANY_ID, SERIAL),
            [
                0x60, 0x01, 0x40, 0x56, 0xf9, 0xa2, 0xb3, 0xc1, 0xd2, 0xe4, 0xf5, 0x08, 0xa9, 0xb0,
                0xc1, 0xd2
            ]
        );
        assert_eq!(
            &naa_6h(LIO_COMPANY_ID, b"abc")[..6],
            &[0x60, 0x01, 0x40, 0x5a, 0xbc, 0]
        );
    }

    /// The full page LIO returns for this device (from the 7.3 source, 173 bytes).
    #[test]
    fn vpd_83_matches_lio_byte_for_byte() {
        let expect: [u8; 173] = [
            0x00, 0x83, 0x00, 0xa9, 0x01, 0x03, 0x00, 0x10, 0x60, 0x01, 0x40, 0x56, 0xf9, 0xa2,
            0xb3, 0xc1, 0xd2, 0xe4, 0xf5, 0x08, 0xa9, 0xb0, 0xc1, 0xd2, 0x02, 0x01, 0x00, 0x39,
            0x4c, 0x49, 0x4f, 0x2d, 0x4f, 0x52, 0x47, 0x20, 0x52, 0x41, 0x4d, 0x44, 0x49, 0x53,
            0x4b, 0x2d, 0x4d, 0x43, 0x50, 0x3a, 0x36, 0x66, 0x39, 0x61, 0x32, 0x62, 0x33, 0x63,
            0x2d, 0x31, 0x64, 0x32, 0x65, 0x2d, 0x34, 0x66, 0x35, 0x30, 0x2d, 0x38, 0x61, 0x39,
            0x62, 0x2d, 0x30, 0x63, 0x31, 0x64, 0x32, 0x65, 0x33, 0x66, 0x34, 0x61, 0x35, 0x62,
            0x00, 0x61, 0x94, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x61, 0x95, 0x00, 0x04, 0x00,
            0x00, 0x00, 0x00, 0x01, 0x06, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x63, 0x98, 0x00,
            0x20, 0x6e, 0x61, 0x61, 0x2e, 0x35, 0x30, 0x30, 0x31, 0x34, 0x30, 0x35, 0x61, 0x31,
            0x62, 0x32, 0x63, 0x33, 0x64, 0x34, 0x65, 0x2c, 0x74, 0x2c, 0x30, 0x78, 0x30, 0x30,
            0x30, 0x31, 0x00, 0x00, 0x00, 0x63, 0xa8, 0x00, 0x18, 0x6e, 0x61, 0x61, 0x2e, 0x35,
            0x30, 0x30, 0x31, 0x34, 0x30, 0x35, 0x61, 0x31, 0x62, 0x32, 0x63, 0x33, 0x64, 0x34,
            0x65, 0x00, 0x00, 0x00, 0x00,
        ];
        let mut b = [0u8; 512];
        let n = vpd(0x83, &id(SERIAL), &geo(), &mut b).unwrap();
        assert_eq!(n, 173);
        assert_eq!(&b[..n], &expect[..]);
    }

    #[test]
    fn vpd_83_without_serial() {
        let mut b = [0u8; 512];
        let n = vpd(0x83, &id(b""), &geo(), &mut b).unwrap();
        assert_eq!(
            &b[..16],
            &[0, 0x83, 0, 0x65, 2, 1, 0, 9, b'L', b'I', b'O', b'-', b'O', b'R', b'G', b' ']
        );
        assert_eq!((b[16], b[17], b[18]), (0, 0x61, 0x94));
        assert_eq!(n, 0x65 + 4);
    }

    #[test]
    fn vpd_00_80_b0_b1_b2() {
        let mut b = [0u8; 64];
        assert_eq!(vpd(0, &id(SERIAL), &geo(), &mut b), Ok(12));
        assert_eq!(
            &b[..12],
            &[0, 0, 0, 8, 0, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2, 0xb3]
        );
        assert_eq!(vpd(0, &id(b""), &geo(), &mut b), Ok(4));
        assert_eq!(&b[..4], &[0, 0, 0, 0]);
        assert_eq!(vpd(0x80, &id(b"abc"), &geo(), &mut b), Ok(8));
        assert_eq!(&b[..8], &[0, 0x80, 0, 4, b'a', b'b', b'c', 0]);
        assert_eq!(vpd(0xb0, &id(b""), &geo(), &mut b), Ok(16));
        assert_eq!(
            &b[..16],
            &[0, 0xb0, 0, 0x0c, 0, 1, 0, 1, 0xff, 0xff, 0xff, 0xf8, 0xff, 0xff, 0xff, 0xf8]
        );
        assert_eq!(vpd(0xb1, &id(b""), &geo(), &mut b), Ok(64));
        assert_eq!(&b[..6], &[0, 0xb1, 0, 0x3c, 0, 1]);
        assert_eq!(vpd(0xb2, &id(b""), &geo(), &mut b), Ok(8));
        assert_eq!(vpd(0x86, &id(b""), &geo(), &mut b), Ok(64));
        assert_eq!((b[5], b[6]), (7, 0));
        let cached = Geometry {
            write_cache: true,
            ..geo()
        };
        assert_eq!(vpd(0x86, &id(b""), &cached, &mut b), Ok(64));
        assert_eq!(b[6], 1);
    }

    #[test]
    fn unknown_vpd_page_is_invalid_field() {
        let mut b = [0u8; 8];
        let s = vpd(0x99, &id(b""), &geo(), &mut b).unwrap_err();
        assert_eq!((s.asc, s.field.unwrap().byte), (0x24, 2));
    }

    #[test]
    fn longest_identity_fits_and_lengths_stay_consistent() {
        let serial = [b'a'; 253];
        let wwn = [b'n'; 255];
        let big = Identity {
            unit_serial: &serial,
            port_wwn: &wwn,
            ..id(b"")
        };
        let mut b = [0u8; VPD_MAX];
        let n = vpd(0x83, &big, &geo(), &mut b).unwrap();
        assert!(n <= VPD_MAX);
        assert_eq!(usize::from(u16::from_be_bytes([b[2], b[3]])) + 4, n);
        // Walk the designators: each length must land exactly on the next header.
        let mut at = 4;
        while at < n {
            at += 4 + usize::from(b[at + 3]);
        }
        assert_eq!(at, n);
    }

    #[test]
    fn short_buffer_still_reports_full_length() {
        let mut b = [0u8; 6];
        assert_eq!(vpd(0x83, &id(SERIAL), &geo(), &mut b), Ok(173));
        assert_eq!(&b, &[0, 0x83, 0, 0xa9, 1, 3]);
    }

    #[test]
    fn read_capacity() {
        assert_eq!(read_capacity10(&geo()), [0, 0x1f, 0xff, 0xff, 0, 0, 2, 0]);
        let big = Geometry {
            last_lba: 0x1_0000_0000,
            ..geo()
        };
        assert_eq!(&read_capacity10(&big)[..4], &[0xff; 4]);
        let r = read_capacity16(&big);
        assert_eq!(&r[..12], &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 0]);
        assert!(r[12..].iter().all(|&x| x == 0));
        // A 512e disk with 4 KiB physical blocks, as brd reports it to LIO.
        let e512 = Geometry {
            lbppbe: 3,
            lowest_aligned: 7,
            ..geo()
        };
        assert_eq!(&read_capacity16(&e512)[12..16], &[0, 3, 0, 7]);
    }

    #[test]
    fn mode_sense_all_pages_matches_lio() {
        let mut b = [0u8; 255];
        let ms = ModeSense::decode(&[0x1a, 0, 0x3f, 0, 255, 0]);
        let n = mode_sense(&ms, &geo(), false, &mut b).unwrap();
        assert_eq!(n, 68);
        assert_eq!(&b[..12], &[0x43, 0, 0, 8, 0, 0x1f, 0xff, 0xff, 0, 0, 2, 0]);
        assert_eq!(&b[12..14], &[0x01, 0x0a]);
        assert_eq!(&b[24..26], &[0x08, 0x12]);
        assert_eq!(b[36], 0x20);
        assert_eq!(
            &b[44..56],
            &[0x0a, 0x0a, 0x02, 0x10, 0, 0x40, 0, 0, 0xff, 0xff, 0, 0x1e]
        );
        assert_eq!(&b[56..58], &[0x1c, 0x0a]);
        let ms10 = ModeSense::decode(&[0x5a, 0, 0x3f, 0, 0, 0, 0, 1, 0, 0]);
        let n = mode_sense(&ms10, &geo(), false, &mut b).unwrap();
        assert_eq!(n, 72);
        assert_eq!(&b[..8], &[0, 0x46, 0, 0, 0, 0, 0, 8]);
    }

    #[test]
    fn mode_sense_changeable_dbd_and_errors() {
        let mut b = [0u8; 64];
        let ms = ModeSense::decode(&[0x1a, 0x08, 0x48, 0, 64, 0]);
        assert_eq!(mode_sense(&ms, &geo(), true, &mut b), Ok(24));
        assert_eq!(&b[..4], &[23, 0, 0x80, 0]);
        assert_eq!(&b[4..6], &[0x08, 0x12]);
        // Only WCE is changeable (an emulated write cache).
        assert_eq!(b[6], 0x04);
        assert!(b[7..24].iter().all(|&x| x == 0));
        let fixed = Geometry {
            wce_changeable: false,
            ..geo()
        };
        mode_sense(&ms, &fixed, true, &mut b).unwrap();
        assert!(b[6..24].iter().all(|&x| x == 0));
        let bad = ModeSense::decode(&[0x1a, 0, 0x03, 0, 64, 0]);
        assert_eq!(
            mode_sense(&bad, &geo(), false, &mut b).unwrap_err().asc,
            0x24
        );
        let sub = ModeSense::decode(&[0x1a, 0, 0x08, 1, 64, 0]);
        assert_eq!(
            mode_sense(&sub, &geo(), false, &mut b)
                .unwrap_err()
                .field
                .unwrap()
                .byte,
            3
        );
    }

    #[test]
    fn no_lun_inquiry() {
        let mut b = [0xffu8; STD_INQUIRY_LEN];
        inquiry_no_lun(&mut b);
        // Peripheral qualifier 001b, device type 1Fh: what Linux's scan takes as "no LUN here,
        // but a target" before it asks REPORT LUNS.
        assert_eq!(b[0], 0x3f);
        assert_eq!(b[2..5], [0x06, 0x02, (STD_INQUIRY_LEN - 5) as u8]);
        assert_eq!(&b[8..16], b"LIO-ORG ");
        assert!(b[36..].iter().all(|&x| x == 0));
    }

    #[test]
    fn report_luns_layout() {
        fn build(luns: &[u64]) -> (usize, [u8; 64]) {
            let mut b = [0u8; 64];
            let n = report_luns(luns.iter().copied(), |at, bytes| {
                put(&mut b, at, bytes);
            });
            (n, b)
        }
        let (n, b) = build(&[0, 5, 300]);
        assert_eq!(n, 32);
        assert_eq!(&b[..8], &[0, 0, 0, 24, 0, 0, 0, 0]);
        assert_eq!(&b[16..24], &[0, 5, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[24..26], &[1, 44]);
        let (n, b) = build(&[]);
        assert_eq!(n, 16);
        assert_eq!(&b[..4], &[0, 0, 0, 8]);
        for l in [0u64, 1, 255, 256, 16383, 0x1234_5678] {
            assert_eq!(scsilun_to_int(&scsilun(l)), l);
        }
    }
}
