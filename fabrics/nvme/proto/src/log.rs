//! Get Log Page (NVMe Base 2.0 5.16): the command's fields, and the pages a fabrics
//! controller serves, built into a buffer the caller then copies from at the asked offset:
//! SMART / health, firmware slot, command effects, changed namespace list, ANA, and the
//! discovery log.

use crate::capsule::{admin, io, Sqe, Status};

/// Log page identifiers.
pub mod lid {
    /// Error information.
    pub const ERROR: u8 = 0x01;
    /// SMART / health information.
    pub const SMART: u8 = 0x02;
    /// Firmware slot information.
    pub const FW_SLOT: u8 = 0x03;
    /// Changed namespace list.
    pub const CHANGED_NS: u8 = 0x04;
    /// Commands supported and effects.
    pub const CMD_EFFECTS: u8 = 0x05;
    /// Asymmetric namespace access.
    pub const ANA: u8 = 0x0c;
    /// Discovery (discovery controllers).
    pub const DISCOVERY: u8 = 0x70;
    /// Reservation notification.
    pub const RESERVATION: u8 = 0x80;
}

/// A Get Log Page command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetLogPage {
    /// Log page identifier.
    pub lid: u8,
    /// Log specific field.
    pub lsp: u8,
    /// Retain asynchronous event.
    pub rae: bool,
    /// Bytes to return.
    pub len: u32,
    /// Byte offset in the page.
    pub offset: u64,
}

/// Decodes Get Log Page: NUMD (0's based dwords) and a dword-aligned offset.
pub fn get_log_page(sqe: &Sqe) -> Result<GetLogPage, Status> {
    let (cdw10, cdw11) = (sqe.cdw[0], sqe.cdw[1]);
    let numd = (cdw11 & 0xffff) << 16 | cdw10 >> 16;
    let offset = u64::from(sqe.cdw[3]) << 32 | u64::from(sqe.cdw[2]);
    if offset % 4 != 0 {
        return Err(Status::INVALID_FIELD);
    }
    // Past 2^30 - 2 dwords the byte count would not fit.
    let len = numd
        .checked_add(1)
        .and_then(|d| d.checked_mul(4))
        .ok_or(Status::INVALID_FIELD)?;
    Ok(GetLogPage {
        lid: cdw10 as u8,
        lsp: (cdw10 >> 8 & 0x7f) as u8,
        rae: cdw10 & 1 << 15 != 0,
        len,
        offset,
    })
}

impl GetLogPage {
    /// The part of a `page_len`-byte page to copy: from the offset, at most the asked
    /// length (the rest of the transfer is zeroes). An offset beyond the page is an Invalid
    /// Field, as nvmet says for the discovery log.
    pub fn window(&self, page_len: usize) -> Result<core::ops::Range<usize>, Status> {
        let start = usize::try_from(self.offset)
            .ok()
            .filter(|&o| o <= page_len)
            .ok_or(Status::INVALID_FIELD)?;
        Ok(start..page_len.min(start.saturating_add(self.len as usize)))
    }
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

/// Length of the SMART / health page.
pub const SMART_LEN: usize = 512;

/// Counters the SMART page reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Smart {
    /// 512-byte units read.
    pub sectors_read: u64,
    /// 512-byte units written.
    pub sectors_written: u64,
    /// Read commands completed.
    pub host_reads: u64,
    /// Write commands completed.
    pub host_writes: u64,
}

/// The SMART / health page: data units in thousands of 512-byte units, rounded up.
pub fn smart(s: &Smart, out: &mut [u8; SMART_LEN]) {
    out.fill(0);
    put(
        out,
        32,
        &u128::from(s.sectors_read.div_ceil(1000)).to_le_bytes(),
    );
    put(
        out,
        48,
        &u128::from(s.sectors_written.div_ceil(1000)).to_le_bytes(),
    );
    put(out, 64, &u128::from(s.host_reads).to_le_bytes());
    put(out, 80, &u128::from(s.host_writes).to_le_bytes());
}

/// Length of the firmware slot page.
pub const FW_SLOT_LEN: usize = 512;

/// The firmware slot page: slot 1 active, holding `firmware`.
pub fn fw_slot(firmware: &[u8], out: &mut [u8; FW_SLOT_LEN]) {
    out.fill(0);
    out[0] = 1;
    let n = firmware.len().min(8);
    put(out, 8, &firmware[..n]);
    out[8 + n..16].fill(b' ');
}

/// Length of the commands supported and effects page.
pub const CMD_EFFECTS_LEN: usize = 4096;

/// The commands supported and effects page: the admin and NVM commands this controller
/// runs; those that change blocks say so (LBCC).
pub fn cmd_effects(out: &mut [u8; CMD_EFFECTS_LEN]) {
    const CSUPP: u32 = 1;
    const LBCC: u32 = 1 << 1;
    out.fill(0);
    for op in [
        admin::GET_LOG_PAGE,
        admin::IDENTIFY,
        admin::ABORT,
        admin::SET_FEATURES,
        admin::GET_FEATURES,
        admin::ASYNC_EVENT,
        admin::KEEP_ALIVE,
    ] {
        put(out, 4 * usize::from(op), &CSUPP.to_le_bytes());
    }
    for (op, effects) in [
        (io::READ, CSUPP),
        (io::FLUSH, CSUPP),
        (io::COMPARE, CSUPP),
        (io::WRITE, CSUPP | LBCC),
        (io::WRITE_ZEROES, CSUPP | LBCC),
        (io::DSM, CSUPP | LBCC),
        (crate::resv::op::REGISTER, CSUPP),
        (crate::resv::op::REPORT, CSUPP),
        (crate::resv::op::ACQUIRE, CSUPP),
        (crate::resv::op::RELEASE, CSUPP),
    ] {
        put(out, 1024 + 4 * usize::from(op), &effects.to_le_bytes());
    }
}

/// Length of the changed namespace list.
pub const CHANGED_NS_LEN: usize = 4096;

/// The changed namespace list: `nsids`, or 0xFFFFFFFF alone when more than 1024 changed.
pub fn changed_ns(nsids: &[u32], out: &mut [u8; CHANGED_NS_LEN]) {
    out.fill(0);
    if nsids.len() > CHANGED_NS_LEN / 4 {
        put(out, 0, &u32::MAX.to_le_bytes());
        return;
    }
    for (i, id) in nsids.iter().enumerate() {
        put(out, 4 * i, &id.to_le_bytes());
    }
}

/// ANA states.
pub mod ana {
    /// Optimized.
    pub const OPTIMIZED: u8 = 0x01;
    /// Non-optimized.
    pub const NON_OPTIMIZED: u8 = 0x02;
    /// Inaccessible.
    pub const INACCESSIBLE: u8 = 0x03;
    /// Persistent loss.
    pub const PERSISTENT_LOSS: u8 = 0x04;
    /// Change.
    pub const CHANGE: u8 = 0x0f;
}

/// One ANA group as the ANA page describes it.
#[derive(Clone, Copy, Debug)]
pub struct AnaGroup<'a> {
    /// Group identifier.
    pub grpid: u32,
    /// Its state on this port.
    pub state: u8,
    /// Its namespaces (left out with RGO).
    pub nsids: &'a [u32],
}

/// The ANA page into `out`: a header with `chgcnt`, then one descriptor per group (with its
/// namespaces unless `rgo`). Returns the page's length, which may exceed `out` (the rest is
/// cut off).
pub fn ana_page(groups: &[AnaGroup<'_>], chgcnt: u64, rgo: bool, out: &mut [u8]) -> usize {
    out.fill(0);
    let mut page = [0u8; 16];
    page[..8].copy_from_slice(&chgcnt.to_le_bytes());
    page[8..10].copy_from_slice(&(groups.len() as u16).to_le_bytes());
    let mut at = copy_at(out, 0, &page);
    for g in groups {
        let nsids = if rgo { &[][..] } else { g.nsids };
        let mut desc = [0u8; 32];
        desc[..4].copy_from_slice(&g.grpid.to_le_bytes());
        desc[4..8].copy_from_slice(&(nsids.len() as u32).to_le_bytes());
        desc[8..16].copy_from_slice(&chgcnt.to_le_bytes());
        desc[16] = g.state;
        at = copy_at(out, at, &desc);
        for id in nsids {
            at = copy_at(out, at, &id.to_le_bytes());
        }
    }
    at
}

/// Copies what of `v` fits into `out` at `at`; returns the offset after `v`.
fn copy_at(out: &mut [u8], at: usize, v: &[u8]) -> usize {
    if at < out.len() {
        let n = v.len().min(out.len() - at);
        out[at..at + n].copy_from_slice(&v[..n]);
    }
    at + v.len()
}

/// Length of the discovery page's header and of each of its entries.
pub const DISC_RECORD_LEN: usize = 1024;

/// Discovery entry subtypes.
pub mod subtype {
    /// A referral to another discovery service.
    pub const REFERRAL: u8 = 1;
    /// An NVM subsystem.
    pub const NVME: u8 = 2;
    /// This discovery subsystem (the current discovery controller).
    pub const CURRENT: u8 = 3;
}

/// One discovery log entry: a subsystem reachable through a port.
#[derive(Clone, Copy, Debug)]
pub struct DiscEntry<'a> {
    /// Transport type (3: TCP).
    pub trtype: u8,
    /// Address family (1: IPv4, 2: IPv6).
    pub adrfam: u8,
    /// [`subtype`].
    pub subtype: u8,
    /// Transport requirements (`addr_treq`).
    pub treq: u8,
    /// Port ID.
    pub portid: u16,
    /// Service identifier (`addr_trsvcid`).
    pub trsvcid: &'a [u8],
    /// The subsystem's NQN.
    pub subnqn: &'a [u8],
    /// Transport address (`addr_traddr`).
    pub traddr: &'a [u8],
}

/// Admin queue size the discovery log advertises (nvmet's `NVME_AQ_DEPTH`).
pub const AQ_DEPTH: u16 = 32;

/// The discovery page into `out`: the header with `genctr`, then `entries` with dynamic
/// controllers. Returns the page's length (the rest is cut off where `out` ends).
pub fn discovery_page(entries: &[DiscEntry<'_>], genctr: u64, out: &mut [u8]) -> usize {
    out.fill(0);
    let mut hdr = [0u8; 18];
    hdr[..8].copy_from_slice(&genctr.to_le_bytes());
    hdr[8..16].copy_from_slice(&(entries.len() as u64).to_le_bytes());
    copy_at(out, 0, &hdr);
    let mut e = [0u8; DISC_RECORD_LEN];
    for (i, d) in entries.iter().enumerate() {
        e.fill(0);
        e[0] = d.trtype;
        e[1] = d.adrfam;
        e[2] = d.subtype;
        e[3] = d.treq;
        e[4..6].copy_from_slice(&d.portid.to_le_bytes());
        e[6..8].copy_from_slice(&0xffffu16.to_le_bytes());
        e[8..10].copy_from_slice(&AQ_DEPTH.to_le_bytes());
        field(&mut e[32..64], d.trsvcid);
        field(&mut e[256..512], d.subnqn);
        field(&mut e[512..768], d.traddr);
        copy_at(out, DISC_RECORD_LEN * (i + 1), &e);
    }
    DISC_RECORD_LEN * (entries.len() + 1)
}

/// Copies `s` into a NUL-padded field, keeping a NUL at its end.
fn field(f: &mut [u8], s: &[u8]) {
    let n = s.len().min(f.len() - 1);
    f[..n].copy_from_slice(&s[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capsule::Sqe;

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    #[test]
    fn command() {
        let mut raw = [0u8; 64];
        raw[0] = admin::GET_LOG_PAGE;
        raw[40] = lid::DISCOVERY;
        raw[41] = 0x80; // RAE
        raw[42..44].copy_from_slice(&0x03ffu16.to_le_bytes()); // NUMDL: 1024 dwords
        raw[48..52].copy_from_slice(&4096u32.to_le_bytes());
        raw[52..56].copy_from_slice(&1u32.to_le_bytes());
        let g = get_log_page(&Sqe::decode(&raw)).unwrap();
        assert_eq!(
            (g.lid, g.lsp, g.rae, g.len, g.offset),
            (0x70, 0, true, 4096, (1 << 32) + 4096)
        );
        raw[41] = 0x01; // LSP 1 (RGO for ANA)
        raw[44] = 1; // NUMDU
        let g = get_log_page(&Sqe::decode(&raw)).unwrap();
        assert_eq!((g.lsp, g.rae, g.len), (1, false, 4 * 0x1_0400));
        raw[48] = 2;
        assert_eq!(get_log_page(&Sqe::decode(&raw)), Err(Status::INVALID_FIELD));
        // NUMD of 2^30 dwords: 4 GiB does not fit.
        raw[48] = 0;
        raw[42..46].copy_from_slice(&[0xff, 0xff, 0xff, 0x3f]);
        assert_eq!(get_log_page(&Sqe::decode(&raw)), Err(Status::INVALID_FIELD));
        let g = GetLogPage {
            lid: 0x70,
            lsp: 0,
            rae: false,
            len: 1024,
            offset: 1024,
        };
        assert_eq!(g.window(3072), Ok(1024..2048));
        assert_eq!(g.window(1500), Ok(1024..1500));
        assert_eq!(g.window(1024), Ok(1024..1024));
        assert_eq!(g.window(1000), Err(Status::INVALID_FIELD));
        let far = GetLogPage {
            offset: u64::MAX - 3,
            ..g
        };
        assert_eq!(far.window(4096), Err(Status::INVALID_FIELD));
    }

    #[test]
    fn pages() {
        let mut out = [0xffu8; SMART_LEN];
        smart(
            &Smart {
                sectors_read: 1001,
                sectors_written: 1000,
                host_reads: 5,
                host_writes: 7,
            },
            &mut out,
        );
        assert_eq!(
            (out[0], out[32], out[48], out[64], out[80]),
            (0, 2, 1, 5, 7)
        );
        let mut fw = [0u8; FW_SLOT_LEN];
        fw_slot(b"7.3", &mut fw);
        assert_eq!(&fw[..16], b"\x01\0\0\0\0\0\0\x007.3     ");
        let mut eff = [0u8; CMD_EFFECTS_LEN];
        cmd_effects(&mut eff);
        assert_eq!(
            (
                le32(&eff, 4 * 6),
                le32(&eff, 4 * 0x18),
                le32(&eff, 4 * 0x10)
            ),
            (1, 1, 0)
        );
        assert_eq!(
            (
                le32(&eff, 1024 + 4),
                le32(&eff, 1024 + 8),
                le32(&eff, 1024 + 4 * 0x11),
                le32(&eff, 1024 + 4 * 0x19)
            ),
            (3, 1, 1, 0)
        );
        let mut ch = [0xffu8; CHANGED_NS_LEN];
        changed_ns(&[3, 9], &mut ch);
        assert_eq!((le32(&ch, 0), le32(&ch, 4), le32(&ch, 8)), (3, 9, 0));
        changed_ns(&[1; 1025], &mut ch);
        assert_eq!((le32(&ch, 0), le32(&ch, 4)), (u32::MAX, 0));
    }

    #[test]
    fn ana() {
        let groups = [
            AnaGroup {
                grpid: 1,
                state: ana::OPTIMIZED,
                nsids: &[1, 2],
            },
            AnaGroup {
                grpid: 2,
                state: ana::INACCESSIBLE,
                nsids: &[],
            },
        ];
        let mut out = [0u8; 128];
        let n = ana_page(&groups, 7, false, &mut out);
        assert_eq!(n, 16 + 32 + 8 + 32);
        assert_eq!(
            (
                out[0],
                out[8],
                le32(&out, 16),
                le32(&out, 20),
                out[24],
                out[32]
            ),
            (7, 2, 1, 2, 7, 1)
        );
        assert_eq!(
            (le32(&out, 48), le32(&out, 52), le32(&out, 56), out[72]),
            (1, 2, 2, 3)
        );
        assert_eq!(ana_page(&groups, 7, true, &mut out), 16 + 64);
        assert_eq!(le32(&out, 20), 0);
        // A short buffer takes what fits; the length is the whole page's.
        let mut short = [0u8; 20];
        assert_eq!(ana_page(&groups, 7, false, &mut short), 88);
        assert_eq!(le32(&short, 16), 1);
    }

    #[test]
    fn discovery() {
        let e = DiscEntry {
            trtype: 3,
            adrfam: 1,
            subtype: subtype::NVME,
            treq: 0,
            portid: 1,
            trsvcid: b"4420",
            subnqn: b"nqn.2014-08.org.example:sub",
            traddr: b"127.0.0.1",
        };
        let mut out = [0xffu8; 3 * DISC_RECORD_LEN];
        let n = discovery_page(
            &[
                e,
                DiscEntry {
                    subtype: subtype::CURRENT,
                    ..e
                },
            ],
            5,
            &mut out,
        );
        assert_eq!(n, 3072);
        assert_eq!((out[0], out[8], out[16], out[17]), (5, 2, 0, 0));
        let r = &out[1024..2048];
        assert_eq!(&r[..10], &[3, 1, 2, 0, 1, 0, 0xff, 0xff, 32, 0]);
        assert_eq!(&r[32..37], b"4420\0");
        assert_eq!(&r[256..284], b"nqn.2014-08.org.example:sub\0");
        assert_eq!(&r[512..522], b"127.0.0.1\0");
        assert_eq!(out[2048 + 2], subtype::CURRENT);
        // Read in pieces: a buffer for the header alone still says how long the page is.
        let mut hdr = [0u8; 1024];
        assert_eq!(discovery_page(&[e], 5, &mut hdr), 2048);
        assert_eq!(hdr[8], 1);
    }
}
