//! NVMe reservations (NVMe Base 2.0 8.19; the Register, Acquire, Release and Report commands)
//! as the SCSI persistent reservation commands that do the same on the core's one reservation
//! state (types 1-6 are SPC-4's 1, 3, 5, 6, 7, 8): PERSISTENT RESERVE OUT with the host's keys
//! turned into its parameter list, and READ FULL STATUS turned into the Report.

use crate::capsule::{Sqe, Status};

/// Reservation command opcodes.
pub mod op {
    /// Reservation Register.
    pub const REGISTER: u8 = 0x0d;
    /// Reservation Report.
    pub const REPORT: u8 = 0x0e;
    /// Reservation Acquire.
    pub const ACQUIRE: u8 = 0x11;
    /// Reservation Release.
    pub const RELEASE: u8 = 0x15;
}

/// Whether `opcode` is a reservation command.
pub fn is_reservation(opcode: u8) -> bool {
    matches!(
        opcode,
        op::REGISTER | op::REPORT | op::ACQUIRE | op::RELEASE
    )
}

/// "Host Identifier Inconsistent Format" (a report without the extended data structure).
pub const HOST_ID_INCONSISTENT: Status = Status::generic(0x18);

/// The SPC-4 type of NVMe reservation type `rtype` (1 to 6).
pub fn scsi_type(rtype: u8) -> Option<u8> {
    [1, 3, 5, 6, 7, 8]
        .get(usize::from(rtype).checked_sub(1)?)
        .copied()
}

/// The NVMe reservation type of SPC-4 type `t` (0: none).
pub fn nvme_type(t: u8) -> u8 {
    [1, 3, 5, 6, 7, 8]
        .iter()
        .position(|&s| s == t)
        .map_or(0, |i| i as u8 + 1)
}

/// Bytes of data a reservation command sends (Register and Acquire 16, Release 8, Report
/// none).
pub fn data_len(opcode: u8) -> u32 {
    match opcode {
        op::REGISTER | op::ACQUIRE => 16,
        op::RELEASE => 8,
        _ => 0,
    }
}

fn le64(d: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(core::array::from_fn(|i| {
        d.get(at + i).copied().unwrap_or(0)
    }))
}

/// Where a key of the PROUT parameter list comes from in the host's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// Zero.
    Zero,
    /// The first 8 bytes: CRKEY.
    Current,
    /// The next 8: NRKEY (Register) or PRKEY (Acquire).
    Second,
}

/// A reservation command as the SCSI command that does it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scsi {
    /// PERSISTENT RESERVE OUT; its parameter list is made of the host's data by [`params`].
    Out {
        cdb: [u8; 10],
        key: Key,
        sa_key: Key,
    },
    /// PERSISTENT RESERVE IN, READ FULL STATUS, whose data [`report`] turns into the Report.
    Report { cdb: [u8; 10] },
}

/// PERSISTENT RESERVE IN / OUT and their service actions.
mod spc {
    pub(super) const PRIN: u8 = 0x5e;
    pub(super) const PROUT: u8 = 0x5f;
    pub(super) const READ_FULL_STATUS: u8 = 0x03;
    pub(super) const REGISTER: u8 = 0x00;
    pub(super) const RESERVE: u8 = 0x01;
    pub(super) const RELEASE: u8 = 0x02;
    pub(super) const CLEAR: u8 = 0x03;
    pub(super) const PREEMPT: u8 = 0x04;
    pub(super) const PREEMPT_AND_ABORT: u8 = 0x05;
    pub(super) const REGISTER_AND_IGNORE: u8 = 0x06;
}

/// Length of the PROUT parameter list.
pub const PROUT_LEN: usize = 24;

/// The READ FULL STATUS allocation length a Report asks for (the most a PRIN takes).
pub const FULL_STATUS_LEN: u32 = 0xffff;

fn prout(sa: u8, scsi_type: u8, key: Key, sa_key: Key) -> Scsi {
    let mut cdb = [0u8; 10];
    cdb[0] = spc::PROUT;
    cdb[1] = sa;
    cdb[2] = scsi_type; // LU_SCOPE
    cdb[5..9].copy_from_slice(&(PROUT_LEN as u32).to_be_bytes());
    Scsi::Out { cdb, key, sa_key }
}

/// The SCSI command of reservation command `sqe`, whose data (or room for the Report) is
/// `data_len` bytes. The host's register is SPC's: a host that is not a registrant registers
/// with key 0 (any other CRKEY is a conflict), as an I_T nexus does.
pub fn to_scsi(sqe: &Sqe, data_len: u32) -> Result<Scsi, Status> {
    let cdw10 = sqe.cdw[0];
    let action = cdw10 & 7;
    let iekey = cdw10 & 1 << 3 != 0;
    let rtype = (cdw10 >> 8) as u8;
    let typed = || scsi_type(rtype).ok_or(Status::INVALID_FIELD);
    if sqe.opcode != op::REPORT && data_len != self::data_len(sqe.opcode) {
        return Err(Status::SGL_LENGTH);
    }
    use Key::{Current, Second, Zero};
    Ok(match sqe.opcode {
        // CPTPL is ignored, as nvmet does: the Linux host asks to persist on every register,
        // and nothing persists across power loss here.
        op::REGISTER => match (action, iekey) {
            (0, _) => prout(spc::REGISTER, 0, Zero, Second),
            (1, false) => prout(spc::REGISTER, 0, Current, Zero),
            (1, true) => prout(spc::REGISTER_AND_IGNORE, 0, Zero, Zero),
            (2, false) => prout(spc::REGISTER, 0, Current, Second),
            (2, true) => prout(spc::REGISTER_AND_IGNORE, 0, Zero, Second),
            _ => return Err(Status::INVALID_OPCODE),
        },
        // Acquire and Release with IEKEY are refused, as nvmet does.
        op::ACQUIRE | op::RELEASE if iekey => return Err(Status::INVALID_FIELD),
        op::ACQUIRE => match action {
            0 => prout(spc::RESERVE, typed()?, Current, Zero),
            1 => prout(spc::PREEMPT, typed()?, Current, Second),
            2 => prout(spc::PREEMPT_AND_ABORT, typed()?, Current, Second),
            _ => return Err(Status::INVALID_OPCODE),
        },
        op::RELEASE => match action {
            0 => prout(spc::RELEASE, typed()?, Current, Zero),
            1 => prout(spc::CLEAR, 0, Current, Zero),
            _ => return Err(Status::INVALID_OPCODE),
        },
        op::REPORT => {
            if sqe.cdw[1] & 1 == 0 {
                return Err(HOST_ID_INCONSISTENT);
            }
            // NUMD counts dwords, 0's based; the data moved must be that long (as nvmet).
            let len = cdw10.checked_add(1).and_then(|d| d.checked_mul(4));
            let Some(len) = len.filter(|&l| l >= REPORT_HEADER_LEN as u32) else {
                return Err(Status::INVALID_FIELD);
            };
            if len != data_len {
                return Err(Status::SGL_LENGTH);
            }
            let mut cdb = [0u8; 10];
            cdb[0] = spc::PRIN;
            cdb[1] = spc::READ_FULL_STATUS;
            cdb[7..9].copy_from_slice(&(FULL_STATUS_LEN as u16).to_be_bytes());
            Scsi::Report { cdb }
        }
        _ => return Err(Status::INVALID_OPCODE),
    })
}

/// The PROUT parameter list of the host's `data` (little-endian keys).
pub fn params(key: Key, sa_key: Key, data: &[u8]) -> [u8; PROUT_LEN] {
    let pick = |k: Key| match k {
        Key::Zero => 0,
        Key::Current => le64(data, 0),
        Key::Second => le64(data, 8),
    };
    let mut p = [0u8; PROUT_LEN];
    p[0..8].copy_from_slice(&pick(key).to_be_bytes());
    p[8..16].copy_from_slice(&pick(sa_key).to_be_bytes());
    p
}

/// The host identifier an NVMe qualified name carries (`nqn.2014-08.org.nvmexpress:uuid:…`,
/// the form hosts make and pair with their host ID); zeroes for any other name.
pub fn hostid_of_nqn(nqn: &[u8]) -> [u8; 16] {
    const UUID_NQN: &[u8] = b"nqn.2014-08.org.nvmexpress:uuid:";
    nqn.strip_prefix(UUID_NQN)
        .and_then(crate::identify::parse_id)
        .unwrap_or([0; 16])
}

/// Length of the extended Report's header and of each registrant entry.
pub const REPORT_HEADER_LEN: usize = 64;

fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(core::array::from_fn(|i| {
        d.get(at + i).copied().unwrap_or(0)
    }))
}

/// The initiator name in a TransportID: an iSCSI name (the protocol an NVMe host's nexus
/// reports); `None` for the others (SAS, FC, ...), whose nexuses have no host identifier.
fn iscsi_name(tid: &[u8]) -> Option<&[u8]> {
    const ISCSI: u8 = 0x05;
    if tid.first()? & 0x0f != ISCSI {
        return None;
    }
    let name = tid.get(4..)?;
    let end = name
        .iter()
        .position(|&c| c == 0 || c == b',')
        .unwrap_or(name.len());
    Some(&name[..end])
}

/// The extended Report of READ FULL STATUS data `full` into `out` (zeroed first): the
/// generation, the NVMe reservation type, the number of registrants and as many of their
/// entries as fit, each with dynamic controller ID FFFFh (as nvmet), its key, whether it
/// holds the reservation, and the host identifier `hostid` gives for its initiator name
/// (zeroes for a SCSI nexus).
pub fn report(full: &[u8], hostid: impl Fn(&[u8]) -> [u8; 16], out: &mut [u8]) {
    out.fill(0);
    let end = full
        .len()
        .min(8usize.saturating_add(be32(full, 4) as usize));
    let (mut at, mut n, mut rtype) = (8usize, 0u16, 0u8);
    while at + 24 <= end {
        let d = &full[at..end];
        let holds = d[12] & 1 != 0;
        if holds {
            rtype = nvme_type(d[13] & 0x0f);
        }
        let tid_len = be32(d, 20) as usize;
        let tid = &d[24..d.len().min(24usize.saturating_add(tid_len))];
        if let Some(e) = out
            .get_mut(REPORT_HEADER_LEN * (n as usize + 1)..)
            .and_then(|e| e.get_mut(..REPORT_HEADER_LEN))
        {
            e[..2].copy_from_slice(&0xffffu16.to_le_bytes());
            e[2] = u8::from(holds);
            let key = u64::from_be_bytes(core::array::from_fn(|i| d[i]));
            e[8..16].copy_from_slice(&key.to_le_bytes());
            e[16..32].copy_from_slice(&iscsi_name(tid).map_or([0; 16], &hostid));
        }
        n = n.saturating_add(1);
        at = at.saturating_add(24).saturating_add(tid_len);
    }
    let mut hdr = [0u8; 7];
    hdr[..4].copy_from_slice(&be32(full, 0).to_le_bytes());
    hdr[4] = rtype;
    hdr[5..7].copy_from_slice(&n.to_le_bytes());
    let k = hdr.len().min(out.len());
    out[..k].copy_from_slice(&hdr[..k]);
}

/// Reservation notification log page (80h) entry length.
pub const NOTICE_LEN: usize = 64;

/// Reservation notification types (the log page's byte 8; the Reservation Notification
/// Mask feature's bit of the same number masks one).
pub mod notice {
    /// The host's registration was preempted.
    pub const REGISTRATION_PREEMPTED: u8 = 1;
    /// The reservation was released.
    pub const RESERVATION_RELEASED: u8 = 2;
    /// The reservation was preempted.
    pub const RESERVATION_PREEMPTED: u8 = 3;
}

/// The notification of an SPC-4 unit attention a SCSI nexus would get for the same change:
/// REGISTRATIONS PREEMPTED (2Ah/05h), RESERVATIONS RELEASED (2Ah/04h), RESERVATIONS
/// PREEMPTED (2Ah/03h).
pub fn notice_of_ua(asc: u8, ascq: u8) -> Option<u8> {
    match (asc, ascq) {
        (0x2a, 0x05) => Some(notice::REGISTRATION_PREEMPTED),
        (0x2a, 0x04) => Some(notice::RESERVATION_RELEASED),
        (0x2a, 0x03) => Some(notice::RESERVATION_PREEMPTED),
        _ => None,
    }
}

/// Entries a controller keeps unread; more are counted as lost.
pub const NOTICES_KEPT: usize = 64;

/// A controller's reservation notification log (NVMe Base 2.0 5.16.1.26): a fixed ring of
/// entries, each read once. Every entry gets the next count (never 0); entries dropped for
/// want of room show as a jump in the count of the next one read.
pub struct NoticeLog {
    entries: [(u64, u8, u32); NOTICES_KEPT],
    head: usize,
    len: usize,
    count: u64,
    lost: u64,
}

impl Default for NoticeLog {
    fn default() -> Self {
        NoticeLog {
            entries: [(0, 0, 0); NOTICES_KEPT],
            head: 0,
            len: 0,
            count: 0,
            lost: 0,
        }
    }
}

impl NoticeLog {
    /// Logs a notification of `kind` for namespace `nsid`. Returns whether it was kept.
    pub fn push(&mut self, kind: u8, nsid: u32) -> bool {
        self.count = self.count.wrapping_add(1).max(1);
        if self.len == NOTICES_KEPT {
            self.lost += 1;
            return false;
        }
        self.entries[(self.head + self.len) % NOTICES_KEPT] = (self.count, kind, nsid);
        self.len += 1;
        true
    }

    /// Reads (and removes) the oldest entry into `out`: an empty page (type 0) if there is
    /// none. Its count covers the entries lost after it (nvmet's rule); byte 9 says how many
    /// more are available.
    pub fn pop(&mut self, out: &mut [u8; NOTICE_LEN]) {
        out.fill(0);
        if self.len == 0 {
            return;
        }
        let (count, kind, nsid) = self.entries[self.head];
        self.head = (self.head + 1) % NOTICES_KEPT;
        self.len -= 1;
        let lost = if self.len > 0 {
            self.entries[self.head]
                .0
                .wrapping_sub(count)
                .wrapping_sub(1)
        } else {
            core::mem::take(&mut self.lost)
        };
        self.lost = self.lost.saturating_sub(lost);
        out[..8].copy_from_slice(&count.wrapping_add(lost).max(1).to_le_bytes());
        out[8] = kind;
        out[9] = self.len as u8;
        out[12..16].copy_from_slice(&nsid.to_le_bytes());
    }
}

/// Namespaces a controller keeps a Reservation Notification Mask for (NSIDs 1 to this, the
/// controller's NN).
pub const MASKED_NSIDS: usize = 1024;

/// The Reservation Notification Mask (Set / Get Features 82h) a controller keeps for each
/// namespace: bits 1-3 hide Registration Preempted, Reservation Released and Reservation
/// Preempted notices. A namespace that comes or goes starts clear. Two namespaces a byte.
pub struct NotifyMasks([u8; MASKED_NSIDS / 2]);

impl Default for NotifyMasks {
    fn default() -> Self {
        NotifyMasks([0; MASKED_NSIDS / 2])
    }
}

impl NotifyMasks {
    const BITS: u32 = 0xe;

    fn slot(nsid: u32) -> Option<usize> {
        let i = usize::try_from(nsid).ok()?.checked_sub(1)?;
        (i < MASKED_NSIDS).then_some(i)
    }

    fn mask(&self, i: usize) -> u8 {
        self.0[i / 2] >> (i % 2 * 4) & 0xf
    }

    fn put(&mut self, i: usize, m: u8) {
        let shift = i % 2 * 4;
        self.0[i / 2] = self.0[i / 2] & !(0xf << shift) | m << shift;
    }

    /// Set Features 82h for `nsid`, or for every namespace if it is FFFFFFFFh. `takes(nsid)`
    /// says whether a namespace is active with reservations enabled; one that is not, or a
    /// reserved bit, is an Invalid Field (as nvmet). Returns completion dword 0, the mask.
    pub fn set(
        &mut self,
        nsid: u32,
        cdw11: u32,
        takes: impl Fn(u32) -> bool,
    ) -> Result<u32, Status> {
        if cdw11 & !Self::BITS != 0 {
            return Err(Status::INVALID_FIELD);
        }
        if nsid == u32::MAX {
            for (n, i) in (1..).zip(0..MASKED_NSIDS) {
                if takes(n) {
                    self.put(i, cdw11 as u8);
                }
            }
            return Ok(cdw11);
        }
        let i = Self::slot(nsid)
            .filter(|_| takes(nsid))
            .ok_or(Status::INVALID_FIELD)?;
        self.put(i, cdw11 as u8);
        Ok(cdw11)
    }

    /// Get Features 82h for `nsid` (one namespace, as [`NotifyMasks::set`] takes it).
    pub fn get(&self, nsid: u32, takes: impl Fn(u32) -> bool) -> Result<u32, Status> {
        Self::slot(nsid)
            .filter(|_| takes(nsid))
            .map(|i| u32::from(self.mask(i)))
            .ok_or(Status::INVALID_FIELD)
    }

    /// Namespace `nsid` came or went: its mask starts clear.
    pub fn reset(&mut self, nsid: u32) {
        if let Some(i) = Self::slot(nsid) {
            self.put(i, 0);
        }
    }

    /// Whether `nsid`'s mask hides notices of `kind` (see [`notice`]).
    pub fn hides(&self, nsid: u32, kind: u8) -> bool {
        Self::slot(nsid).is_some_and(|i| kind < 4 && self.mask(i) & 1 << kind != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqe(opcode: u8, cdw10: u32, cdw11: u32) -> Sqe {
        let mut raw = [0u8; 64];
        raw[0] = opcode;
        raw[40..44].copy_from_slice(&cdw10.to_le_bytes());
        raw[44..48].copy_from_slice(&cdw11.to_le_bytes());
        Sqe::decode(&raw)
    }

    fn out(sa: u8, t: u8, key: Key, sa_key: Key) -> Result<Scsi, Status> {
        Ok(prout(sa, t, key, sa_key))
    }

    #[test]
    fn types() {
        let map: [(u8, u8); 6] = [(1, 1), (2, 3), (3, 5), (4, 6), (5, 7), (6, 8)];
        for (n, s) in map {
            assert_eq!((scsi_type(n), nvme_type(s)), (Some(s), n));
        }
        assert_eq!(
            (scsi_type(0), scsi_type(7), nvme_type(0), nvme_type(2)),
            (None, None, 0, 0)
        );
    }

    #[test]
    fn commands() {
        use Key::{Current, Second, Zero};
        let reg = |cdw10| to_scsi(&sqe(op::REGISTER, cdw10, 0), 16);
        assert_eq!(reg(0), out(spc::REGISTER, 0, Zero, Second));
        // The Linux host's register: CPTPL 3 (persist), ignored; IEKEY too.
        assert_eq!(reg(3 << 30 | 8), out(spc::REGISTER, 0, Zero, Second));
        assert_eq!(reg(1), out(spc::REGISTER, 0, Current, Zero));
        assert_eq!(reg(1 | 8), out(spc::REGISTER_AND_IGNORE, 0, Zero, Zero));
        assert_eq!(reg(2), out(spc::REGISTER, 0, Current, Second));
        assert_eq!(reg(2 | 8), out(spc::REGISTER_AND_IGNORE, 0, Zero, Second));
        assert_eq!(reg(3), Err(Status::INVALID_OPCODE));
        assert_eq!(
            to_scsi(&sqe(op::REGISTER, 0, 0), 8),
            Err(Status::SGL_LENGTH)
        );
        let acq = |cdw10| to_scsi(&sqe(op::ACQUIRE, cdw10, 0), 16);
        assert_eq!(acq(2 << 8), out(spc::RESERVE, 3, Current, Zero));
        assert_eq!(acq(1 | 4 << 8), out(spc::PREEMPT, 6, Current, Second));
        assert_eq!(
            acq(2 | 6 << 8),
            out(spc::PREEMPT_AND_ABORT, 8, Current, Second)
        );
        assert_eq!(acq(0), Err(Status::INVALID_FIELD));
        assert_eq!(acq(7 << 8), Err(Status::INVALID_FIELD));
        assert_eq!(acq(8 | 1 << 8), Err(Status::INVALID_FIELD));
        assert_eq!(acq(3 | 1 << 8), Err(Status::INVALID_OPCODE));
        let rel = |cdw10| to_scsi(&sqe(op::RELEASE, cdw10, 0), 8);
        assert_eq!(rel(5 << 8), out(spc::RELEASE, 7, Current, Zero));
        assert_eq!(rel(1), out(spc::CLEAR, 0, Current, Zero));
        assert_eq!(rel(9), Err(Status::INVALID_FIELD));
        assert_eq!(rel(2 | 1 << 8), Err(Status::INVALID_OPCODE));
        assert_eq!(
            to_scsi(&sqe(op::RELEASE, 1, 0), 16),
            Err(Status::SGL_LENGTH)
        );
        // The PROUT CDB: service action, LU_SCOPE with the type, a 24-byte list.
        let Ok(Scsi::Out { cdb, .. }) = acq(2 | 6 << 8) else {
            panic!()
        };
        assert_eq!(cdb, [0x5f, 5, 8, 0, 0, 0, 0, 0, 24, 0]);
        // Report: EDS required; NUMD at least the header, equal to the data moved.
        let rep = |numd, eds, len| to_scsi(&sqe(op::REPORT, numd, eds), len);
        assert_eq!(
            rep(15, 1, 64),
            Ok(Scsi::Report {
                cdb: [0x5e, 3, 0, 0, 0, 0, 0, 0xff, 0xff, 0]
            })
        );
        assert_eq!(rep(15, 0, 64), Err(HOST_ID_INCONSISTENT));
        assert_eq!(rep(14, 1, 60), Err(Status::INVALID_FIELD));
        assert_eq!(rep(31, 1, 64), Err(Status::SGL_LENGTH));
        assert_eq!(rep(u32::MAX, 1, 0), Err(Status::INVALID_FIELD));
        assert_eq!(to_scsi(&sqe(0x19, 0, 0), 0), Err(Status::INVALID_OPCODE));
    }

    #[test]
    fn parameter_list() {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&0x1122u64.to_le_bytes());
        d[8..].copy_from_slice(&0x3344u64.to_le_bytes());
        let p = params(Key::Current, Key::Second, &d);
        assert_eq!(&p[..8], &0x1122u64.to_be_bytes());
        assert_eq!(&p[8..16], &0x3344u64.to_be_bytes());
        assert!(p[16..].iter().all(|&b| b == 0));
        let p = params(Key::Zero, Key::Second, &d);
        assert_eq!(
            (&p[..8], &p[8..16]),
            (&[0u8; 8][..], &0x3344u64.to_be_bytes()[..])
        );
        // Release's 8 bytes: the missing key reads as zero.
        let p = params(Key::Current, Key::Second, &d[..8]);
        assert_eq!(
            (&p[..8], &p[8..16]),
            (&0x1122u64.to_be_bytes()[..], &[0u8; 8][..])
        );
    }

    #[test]
    fn host_ids() {
        let id =
            hostid_of_nqn(b"nqn.2014-08.org.nvmexpress:uuid:7e1d0000-0000-4000-8000-000000000001");
        assert_eq!((id[0], id[1], id[6], id[15]), (0x7e, 0x1d, 0x40, 1));
        assert_eq!(hostid_of_nqn(b"nqn.2026-12.org.example:host1"), [0; 16]);
        assert_eq!(
            hostid_of_nqn(b"nqn.2014-08.org.nvmexpress:uuid:7e1d"),
            [0; 16]
        );
    }

    /// A READ FULL STATUS descriptor.
    fn desc(key: u64, holder: bool, t: u8, tid: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; 24];
        d[..8].copy_from_slice(&key.to_be_bytes());
        d[12] = u8::from(holder);
        d[13] = t;
        d[20..24].copy_from_slice(&(tid.len() as u32).to_be_bytes());
        d.extend_from_slice(tid);
        d
    }

    #[test]
    fn report_of_full_status() {
        let name = b"nqn.2014-08.org.nvmexpress:uuid:7e1d0000-0000-4000-8000-000000000001";
        let mut iscsi = vec![0x05, 0, 0, 0];
        iscsi.extend_from_slice(name);
        iscsi.extend_from_slice(&[0, 0, 0]);
        iscsi[3] = (iscsi.len() - 4) as u8;
        let sas = [
            0x06u8, 0, 0, 0, 0x50, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let mut full = vec![0, 0, 0, 9, 0, 0, 0, 0];
        full.extend(desc(5, true, 1, &iscsi));
        full.extend(desc(6, false, 0, &sas));
        let add = (full.len() - 8) as u32;
        full[4..8].copy_from_slice(&add.to_be_bytes());
        let mut o = [0xffu8; 192];
        report(&full, hostid_of_nqn, &mut o);
        assert_eq!(&o[..8], &[9, 0, 0, 0, 1, 2, 0, 0]);
        assert!(o[8..64].iter().all(|&b| b == 0));
        assert_eq!(&o[64..72], &[0xff, 0xff, 1, 0, 0, 0, 0, 0]);
        assert_eq!((o[72], &o[80..96]), (5, &hostid_of_nqn(name)[..]));
        assert_eq!(
            (o[128 + 2], o[128 + 8], &o[144..160]),
            (0, 6, &[0u8; 16][..])
        );
        // Room for one entry: the count still says two.
        let mut short = [0u8; 128];
        report(&full, hostid_of_nqn, &mut short);
        assert_eq!((short[5], short[72]), (2, 5));
        // A descriptor cut short by the allocation length is counted, not read past.
        report(&full[..full.len() - 10], hostid_of_nqn, &mut o);
        assert_eq!(o[5], 2);
        // Garbage: no panic, no registrant read past the data.
        report(
            &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 2],
            hostid_of_nqn,
            &mut o,
        );
        assert_eq!(o[5], 0);
    }
    #[test]
    fn notice_log_reads_each_entry_once_and_counts_the_lost() {
        let mut log = NoticeLog::default();
        let mut page = [0xffu8; NOTICE_LEN];
        log.pop(&mut page);
        assert_eq!(page, [0; NOTICE_LEN]);
        assert!(log.push(notice::REGISTRATION_PREEMPTED, 1));
        assert!(log.push(notice::RESERVATION_RELEASED, 2));
        log.pop(&mut page);
        assert_eq!(u64::from_le_bytes(page[..8].try_into().unwrap()), 1);
        assert_eq!((page[8], page[9]), (1, 1));
        assert_eq!(u32::from_le_bytes(page[12..16].try_into().unwrap()), 1);
        log.pop(&mut page);
        assert_eq!(u64::from_le_bytes(page[..8].try_into().unwrap()), 2);
        assert_eq!((page[8], page[9], page[12]), (2, 0, 2));
        log.pop(&mut page);
        assert_eq!(page[8], 0);
        // Full: the rest are lost, and the last entry read says so in its count.
        for _ in 0..NOTICES_KEPT + 3 {
            log.push(notice::RESERVATION_PREEMPTED, 1);
        }
        for i in 0..NOTICES_KEPT {
            log.pop(&mut page);
            let count = u64::from_le_bytes(page[..8].try_into().unwrap());
            assert_eq!(usize::from(page[9]), NOTICES_KEPT - 1 - i);
            if i < NOTICES_KEPT - 1 {
                assert_eq!(count, 3 + i as u64);
            } else {
                assert_eq!(count, 2 + (NOTICES_KEPT + 3) as u64);
            }
        }
        log.pop(&mut page);
        assert_eq!(page[8], 0);
        assert_eq!(
            notice_of_ua(0x2a, 0x05),
            Some(notice::REGISTRATION_PREEMPTED)
        );
        assert_eq!(notice_of_ua(0x29, 0x00), None);
    }

    #[test]
    fn notify_masks_per_namespace() {
        let mut m = NotifyMasks::default();
        let takes = |n: u32| n == 1 || n == 3;
        assert_eq!(m.set(1, 0x2, takes), Ok(0x2));
        assert!(m.hides(1, notice::REGISTRATION_PREEMPTED));
        assert!(!m.hides(1, notice::RESERVATION_RELEASED));
        assert!(!m.hides(3, notice::REGISTRATION_PREEMPTED));
        assert_eq!(m.get(1, takes), Ok(0x2));
        assert_eq!(m.get(3, takes), Ok(0));
        // A namespace without reservations, NSID 0, beyond NN or all, and reserved bits.
        assert_eq!(m.set(2, 0x2, takes), Err(Status::INVALID_FIELD));
        assert_eq!(m.get(2, takes), Err(Status::INVALID_FIELD));
        assert_eq!(m.set(0, 0x2, |_| true), Err(Status::INVALID_FIELD));
        assert_eq!(m.set(1025, 0x2, |_| true), Err(Status::INVALID_FIELD));
        assert_eq!(m.get(u32::MAX, |_| true), Err(Status::INVALID_FIELD));
        assert_eq!(m.set(1, 0x1, takes), Err(Status::INVALID_FIELD));
        assert_eq!(m.set(1, 0x10, takes), Err(Status::INVALID_FIELD));
        // FFFFFFFFh: every namespace that takes it.
        assert_eq!(m.set(u32::MAX, 0xc, takes), Ok(0xc));
        assert_eq!((m.get(1, takes), m.get(3, takes)), (Ok(0xc), Ok(0xc)));
        assert!(
            m.hides(3, notice::RESERVATION_PREEMPTED) && !m.hides(2, notice::RESERVATION_PREEMPTED)
        );
        m.reset(3);
        assert_eq!(m.get(3, takes), Ok(0));
        // Neighbours sharing a byte keep their own masks.
        let all = |_| true;
        assert_eq!(m.set(1023, 0x8, all), Ok(0x8));
        assert_eq!(m.set(1024, 0x6, all), Ok(0x6));
        assert_eq!((m.get(1023, all), m.get(1024, all)), (Ok(0x8), Ok(0x6)));
        m.reset(1024);
        assert_eq!((m.get(1023, all), m.get(1024, all)), (Ok(0x8), Ok(0)));
        assert!(!m.hides(0, 1) && !m.hides(5000, 1) && !m.hides(1, 200));
    }
}
