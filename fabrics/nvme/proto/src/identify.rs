//! Identify data (NVMe Base 2.0 5.17): the controller, a namespace, the active namespace list
//! and a namespace's identification descriptors. The values follow nvmet's where the
//! specification leaves a choice, so the Linux host sees the same controller.

/// Length of every Identify data structure.
pub const IDENTIFY_LEN: usize = 4096;

/// Identify's CNS values.
pub mod cns {
    /// A namespace.
    pub const NS: u8 = 0x00;
    /// The controller.
    pub const CTRL: u8 = 0x01;
    /// Active namespace IDs above NSID.
    pub const ACTIVE_NS_LIST: u8 = 0x02;
    /// A namespace's identification descriptors.
    pub const NS_DESC_LIST: u8 = 0x03;
}

/// The NVMe version a controller reports (1.3: hosts then ask only for CNS 00h to 03h).
pub const VERSION: u32 = 0x0001_0300;

/// What Identify Controller reports of a controller.
#[derive(Clone, Copy, Debug)]
pub struct CtrlInfo<'a> {
    /// Serial number (`attr_serial`), at most 20 bytes.
    pub serial: &'a [u8],
    /// Model number (`attr_model`), at most 40 bytes.
    pub model: &'a [u8],
    /// Firmware revision (`attr_firmware`), at most 8 bytes.
    pub firmware: &'a [u8],
    /// IEEE OUI (`attr_ieee_oui`), 24 bits.
    pub ieee_oui: u32,
    /// The controller's ID.
    pub cntlid: u16,
    /// Version (`attr_version`).
    pub version: u32,
    /// The subsystem's NQN.
    pub subnqn: &'a [u8],
    /// A discovery controller (else I/O).
    pub discovery: bool,
    /// Maximum data transfer size as a power of two of 4 KiB pages (0: no limit).
    pub mdts: u8,
    /// Most outstanding commands per queue.
    pub maxcmd: u16,
    /// Highest namespace ID.
    pub nn: u32,
    /// In-capsule data the port takes (`param_inline_data_size`).
    pub inline_data: u32,
    /// A volatile write cache is present.
    pub vwc: bool,
}

/// Keep alive granularity: 100 ms units in KAS (as nvmet's `NVMET_KAS`).
pub const KAS: u16 = 10;
/// Asynchronous events outstanding at once (AERL + 1).
pub const AER_LIMIT: u8 = 4;
/// Error log entries (ELPE + 1).
pub const ERROR_LOG_SLOTS: u8 = 128;
/// ANA groups.
pub const ANA_GROUPS: u32 = 128;

/// Copies `s` into `f`, padded with spaces (ASCII fields).
fn ascii(f: &mut [u8], s: &[u8]) {
    let n = s.len().min(f.len());
    f[..n].copy_from_slice(&s[..n]);
    f[n..].fill(b' ');
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Identify Controller. A discovery controller reports what nvmet's does: no namespaces, no
/// ANA, no I/O queues, only the discovery log change event.
pub fn ctrl(c: &CtrlInfo<'_>, out: &mut [u8; IDENTIFY_LEN]) {
    out.fill(0);
    ascii(&mut out[4..24], c.serial);
    ascii(&mut out[24..64], c.model);
    ascii(&mut out[64..72], c.firmware);
    out[77] = c.mdts;
    put16(out, 78, c.cntlid);
    put32(out, 80, c.version);
    put16(out, 514, c.maxcmd);
    // SGLS: byte-aligned data blocks, and the offset addressing of in-capsule data.
    put32(out, 536, 1 | if c.inline_data > 0 { 1 << 20 } else { 0 });
    let n = c.subnqn.len().min(255);
    out[768..768 + n].copy_from_slice(&c.subnqn[..n]);
    if c.discovery {
        out[111] = 2; // CNTRLTYPE
        out[261] = 1 << 2; // LPA: extended data for Get Log Page
        put32(out, 92, 1 << 31); // OAES: discovery log change notices
        return;
    }
    out[72] = 6; // RAB
    out[73..76].copy_from_slice(&c.ieee_oui.to_le_bytes()[..3]);
    out[76] = 0x0b; // CMIC: multiple ports, multiple controllers, ANA
    put32(out, 92, 1 << 8 | 1 << 11); // OAES: namespace attribute, ANA change notices
    put32(out, 96, 1 << 0 | 1 << 6); // CTRATT: 128-bit host ID, traffic-based keep alive
    out[111] = 1; // CNTRLTYPE
    out[258] = 3; // ACL
    out[259] = AER_LIMIT - 1;
    out[260] = 1 << 0 | 1 << 1; // FRMW: slot 1 read-only, one slot
    out[261] = 1 << 0 | 1 << 1 | 1 << 2; // LPA: per-namespace SMART, effects log, extended data
    out[262] = ERROR_LOG_SLOTS - 1;
    put16(out, 320, KAS);
    put16(out, 340, 1024); // ENDGIDMAX
    out[342] = 10; // ANATT
    out[343] = 0x1f; // ANACAP: optimized, non-optimized, inaccessible, persistent loss, change
    put32(out, 344, ANA_GROUPS);
    put32(out, 348, ANA_GROUPS);
    out[512] = 0x66; // SQES: 64 bytes
    out[513] = 0x44; // CQES: 16 bytes
    put32(out, 516, c.nn);
    put16(out, 520, 1 << 2 | 1 << 3 | 1 << 5); // ONCS: DSM, write zeroes, reservations
    out[525] = u8::from(c.vwc);
    put32(out, 540, c.nn); // MNAN
    put32(out, 1792, (64 + c.inline_data) / 16); // IOCCSZ
    put32(out, 1796, 1); // IORCSZ: a CQE
    out[1803] = 1; // MSDBD
                   // One power state, QEMU's numbers (as nvmet).
    put16(out, 2048, 0x9c4);
    put32(out, 2048 + 4, 0x10);
    put32(out, 2048 + 8, 0x4);
}

/// What Identify Namespace reports of a namespace.
#[derive(Clone, Copy, Debug)]
pub struct NsInfo {
    /// Capacity in logical blocks.
    pub blocks: u64,
    /// Logical block size as a power of two.
    pub block_shift: u8,
    /// Deallocated blocks read as zeroes (and Dataset Management deallocates).
    pub zeroes_after_deallocate: bool,
    /// The namespace's NGUID.
    pub nguid: [u8; 16],
    /// Its ANA group.
    pub anagrpid: u32,
    /// Read-only (write protected).
    pub read_only: bool,
    /// Reservations are enabled (`resv_enable`).
    pub reservations: bool,
    /// Its ID (also its endurance group, as nvmet).
    pub nsid: u32,
    /// Whether its ANA group is reachable on this port (else no blocks are in use).
    pub accessible: bool,
}

/// Identify Namespace.
pub fn ns(n: &NsInfo, out: &mut [u8; IDENTIFY_LEN]) {
    out.fill(0);
    put64(out, 0, n.blocks); // NSZE
    put64(out, 8, n.blocks); // NCAP
    put64(out, 16, if n.accessible { n.blocks } else { 0 }); // NUSE
    if n.zeroes_after_deallocate {
        out[33] = 1 << 3 | 1; // DLFEAT: deallocated blocks read as zeroes; Write Zeroes may deallocate
    }
    out[30] = 1; // NMIC: shared
    if n.reservations {
        out[31] = 0x7e | 1 << 7; // RESCAP: the six types, IEKEY as NVMe 1.3 defines it
    }
    put32(out, 92, n.anagrpid);
    out[99] = u8::from(n.read_only); // NSATTR
    put16(out, 102, n.nsid as u16); // ENDGID
    out[104..120].copy_from_slice(&n.nguid);
    out[128 + 2] = n.block_shift; // LBAF 0: LBADS
}

/// Parses a UUID or NGUID: 32 hex digits, dashes anywhere between them ignored (as nvmet's
/// `uuid_parse` and NGUID parser accept their forms).
pub fn parse_id(s: &[u8]) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    let mut n = 0;
    for &c in s.iter().filter(|&&c| c != b'-') {
        let d = (c as char).to_digit(16)? as u8;
        if n >= 32 {
            return None;
        }
        out[n / 2] |= d << if n % 2 == 0 { 4 } else { 0 };
        n += 1;
    }
    (n == 32).then_some(out)
}

/// The active namespace list: the IDs in `nsids` (ascending) above `start`, at most 1024.
pub fn active_ns_list(nsids: impl Iterator<Item = u32>, start: u32, out: &mut [u8; IDENTIFY_LEN]) {
    out.fill(0);
    for (i, id) in nsids
        .filter(|&id| id > start)
        .take(IDENTIFY_LEN / 4)
        .enumerate()
    {
        put32(out, 4 * i, id);
    }
}

/// Namespace identification descriptor types.
pub mod nidt {
    /// IEEE EUI-64 (8 bytes).
    pub const EUI64: u8 = 1;
    /// NGUID (16 bytes).
    pub const NGUID: u8 = 2;
    /// UUID (16 bytes).
    pub const UUID: u8 = 3;
    /// Command set identifier (1 byte).
    pub const CSI: u8 = 4;
}

/// The namespace identification descriptor list: the UUID and NGUID where not zero, then
/// the command set (NVM).
pub fn ns_desc_list(uuid: &[u8; 16], nguid: &[u8; 16], out: &mut [u8; IDENTIFY_LEN]) {
    out.fill(0);
    let mut at = 0;
    let mut desc = |ty: u8, id: &[u8]| {
        out[at] = ty;
        out[at + 1] = id.len() as u8;
        out[at + 4..at + 4 + id.len()].copy_from_slice(id);
        at += 4 + id.len();
    };
    if uuid.iter().any(|&b| b != 0) {
        desc(nidt::UUID, uuid);
    }
    if nguid.iter().any(|&b| b != 0) {
        desc(nidt::NGUID, nguid);
    }
    desc(nidt::CSI, &[0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    #[test]
    fn controller() {
        let mut out = [0xffu8; IDENTIFY_LEN];
        let c = CtrlInfo {
            serial: b"0123456789abcdef",
            model: b"rtarget",
            firmware: b"7.3",
            ieee_oui: 0x001405,
            cntlid: 5,
            version: VERSION,
            subnqn: b"nqn.2014-08.org.example:sub",
            discovery: false,
            mdts: 5,
            maxcmd: 128,
            nn: 1024,
            inline_data: 16384,
            vwc: true,
        };
        ctrl(&c, &mut out);
        assert_eq!(&out[4..24], b"0123456789abcdef    ");
        assert_eq!(&out[24..31], b"rtarget");
        assert!(out[31..64].iter().all(|&b| b == b' '));
        assert_eq!(&out[64..72], b"7.3     ");
        assert_eq!(&out[73..76], &[0x05, 0x14, 0x00]);
        assert_eq!((out[77], out[78], le32(&out, 80)), (5, 5, 0x10300));
        assert_eq!((out[111], le32(&out, 516), out[525]), (1, 1024, 1));
        // The host's checks: KAS, IOCCSZ >= 4, IORCSZ >= 1; CNTLID as Connect gave it.
        assert_eq!(u16::from_le_bytes([out[320], out[321]]), KAS);
        assert_eq!((le32(&out, 1792), le32(&out, 1796)), (1028, 1));
        assert_eq!(le32(&out, 536), 1 | 1 << 20);
        assert_eq!(&out[768..795], b"nqn.2014-08.org.example:sub");
        assert_eq!(out[795], 0);
        assert_eq!((le32(&out, 96), out[76], out[531]), (1 | 1 << 6, 0x0b, 0));
        // A discovery controller: no multipath (CMIC 0), no namespaces, no ANA, no I/O
        // queues, discovery log change notices only (the Linux host's multipath setup reads
        // the ANA log of any controller with CMIC.ANA).
        let disc = CtrlInfo {
            discovery: true,
            inline_data: 0,
            ..c
        };
        ctrl(&disc, &mut out);
        assert_eq!(
            (out[111], out[76], out[261], le32(&out, 92)),
            (2, 0, 4, 1 << 31)
        );
        assert_eq!((le32(&out, 516), le32(&out, 540), out[343]), (0, 0, 0));
        assert_eq!((le32(&out, 1792), le32(&out, 536), out[512]), (0, 1, 0));
        assert_eq!(&out[4..24], b"0123456789abcdef    ");
    }

    #[test]
    fn namespace() {
        let mut out = [0xffu8; IDENTIFY_LEN];
        let n = NsInfo {
            blocks: 131072,
            block_shift: 9,
            zeroes_after_deallocate: true,
            nguid: [7; 16],
            anagrpid: 1,
            read_only: false,
            reservations: true,
            nsid: 3,
            accessible: true,
        };
        ns(&n, &mut out);
        assert_eq!(&out[0..8], &131072u64.to_le_bytes());
        assert_eq!(&out[16..24], &131072u64.to_le_bytes());
        assert_eq!((out[24], out[30], out[31], out[33]), (0, 1, 0xfe, 9));
        assert_eq!((le32(&out, 92), out[99], out[102]), (1, 0, 3));
        assert_eq!((&out[104..120], out[130]), (&[7u8; 16][..], 9));
        ns(
            &NsInfo {
                accessible: false,
                zeroes_after_deallocate: false,
                ..n
            },
            &mut out,
        );
        assert_eq!((&out[16..24], out[33]), (&[0u8; 8][..], 0));
    }

    #[test]
    fn lists() {
        let mut out = [0xffu8; IDENTIFY_LEN];
        active_ns_list([1, 2, 5, 9].into_iter(), 2, &mut out);
        assert_eq!((le32(&out, 0), le32(&out, 4), le32(&out, 8)), (5, 9, 0));
        active_ns_list(1..5000, 0, &mut out);
        assert_eq!((le32(&out, 0), le32(&out, 4092)), (1, 1024));
        ns_desc_list(&[1; 16], &[2; 16], &mut out);
        assert_eq!(&out[..4], &[3, 16, 0, 0]);
        assert_eq!(&out[4..20], &[1; 16]);
        assert_eq!(&out[20..24], &[2, 16, 0, 0]);
        assert_eq!(&out[40..45], &[4, 1, 0, 0, 0]);
        assert!(out[45..].iter().all(|&b| b == 0));
        ns_desc_list(&[0; 16], &[0; 16], &mut out);
        assert_eq!(&out[..5], &[4, 1, 0, 0, 0]);
    }
}
