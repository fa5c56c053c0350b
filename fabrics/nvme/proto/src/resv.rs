//! NVMe reservations (NVMe Base 2.0 8.19; the Register, Acquire, Release and Report commands):
//! decoded here and mapped onto the SCSI persistent reservation model the core's one
//! reservation state speaks (types 1-6 to SPC-4's 1, 3, 5, 6, 7, 8), and the Report data.

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

/// "Host Identifier Inconsistent Format" (a report without the extended data structure).
pub const HOST_ID_INCONSISTENT: Status = Status::generic(0x18);

/// A reservation command, decoded with its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resv {
    /// Register NRKEY (new registrant, or the same key again).
    Register { iekey: bool, crkey: u64, nrkey: u64 },
    /// Unregister (CRKEY must match unless IEKEY).
    Unregister { iekey: bool, crkey: u64 },
    /// Replace CRKEY with NRKEY (CRKEY must match unless IEKEY).
    Replace { iekey: bool, crkey: u64, nrkey: u64 },
    /// Acquire a reservation of SPC-4 type `scsi_type`.
    Acquire { crkey: u64, scsi_type: u8 },
    /// Preempt the registrants of PRKEY (and abort their commands with `abort`).
    Preempt {
        crkey: u64,
        prkey: u64,
        scsi_type: u8,
        abort: bool,
    },
    /// Release the reservation of SPC-4 type `scsi_type`.
    Release { crkey: u64, scsi_type: u8 },
    /// Clear every registration and the reservation.
    Clear { crkey: u64 },
    /// Report, `len` bytes of it.
    Report { len: u32 },
}

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

/// Decodes a reservation command with its `data` (of [`data_len`] bytes).
pub fn decode(sqe: &Sqe, data: &[u8]) -> Result<Resv, Status> {
    let cdw10 = sqe.cdw[0];
    let action = cdw10 & 7;
    let iekey = cdw10 & 1 << 3 != 0;
    if data.len() != data_len(sqe.opcode) as usize {
        return Err(Status::SGL_LENGTH);
    }
    let (crkey, second) = (le64(data, 0), le64(data, 8));
    let rtype = (cdw10 >> 8) as u8;
    let typed = || scsi_type(rtype).ok_or(Status::INVALID_FIELD);
    Ok(match sqe.opcode {
        // CPTPL is ignored, as nvmet does: the Linux host asks to persist on every register,
        // and nothing persists across power loss here.
        op::REGISTER => match action {
            0 => Resv::Register {
                iekey,
                crkey,
                nrkey: second,
            },
            1 => Resv::Unregister { iekey, crkey },
            2 => Resv::Replace {
                iekey,
                crkey,
                nrkey: second,
            },
            _ => return Err(Status::INVALID_OPCODE),
        },
        // Acquire and Release with IEKEY are refused, as nvmet does.
        op::ACQUIRE | op::RELEASE if iekey => return Err(Status::INVALID_FIELD),
        op::ACQUIRE => match action {
            0 => Resv::Acquire {
                crkey,
                scsi_type: typed()?,
            },
            1 | 2 => Resv::Preempt {
                crkey,
                prkey: second,
                scsi_type: typed()?,
                abort: action == 2,
            },
            _ => return Err(Status::INVALID_OPCODE),
        },
        op::RELEASE => match action {
            0 => Resv::Release {
                crkey,
                scsi_type: typed()?,
            },
            1 => Resv::Clear { crkey },
            _ => return Err(Status::INVALID_OPCODE),
        },
        op::REPORT => {
            if sqe.cdw[1] & 1 == 0 {
                return Err(HOST_ID_INCONSISTENT);
            }
            // NUMD counts dwords, 0's based: refused where the byte count would not fit.
            let len = cdw10.checked_add(1).and_then(|d| d.checked_mul(4));
            let Some(len) = len.filter(|&l| l >= REPORT_HEADER_LEN as u32) else {
                return Err(Status::INVALID_FIELD);
            };
            Resv::Report { len }
        }
        _ => return Err(Status::INVALID_OPCODE),
    })
}

/// Length of the extended Report's header and of each registrant entry.
pub const REPORT_HEADER_LEN: usize = 64;

/// One registrant as the Report shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registrant {
    /// Its reservation key.
    pub key: u64,
    /// The host identifier (an NVMe host's 128-bit ID; a SCSI nexus shows zeroes).
    pub hostid: [u8; 16],
    /// It holds the reservation.
    pub holds: bool,
}

/// The extended Report into `out` (all of it zeroed first): generation, NVMe reservation
/// type, the number of registrants, and as many of their entries as fit, with dynamic
/// controller IDs (as nvmet).
pub fn report(generation: u32, rtype: u8, regs: &[Registrant], out: &mut [u8]) {
    out.fill(0);
    let mut hdr = [0u8; 7];
    hdr[..4].copy_from_slice(&generation.to_le_bytes());
    hdr[4] = rtype;
    hdr[5..7].copy_from_slice(&(regs.len() as u16).to_le_bytes());
    let n = hdr.len().min(out.len());
    out[..n].copy_from_slice(&hdr[..n]);
    for (i, r) in regs.iter().enumerate() {
        let at = REPORT_HEADER_LEN * (i + 1);
        let Some(e) = out.get_mut(at..at + REPORT_HEADER_LEN) else {
            break;
        };
        e[..2].copy_from_slice(&0xffffu16.to_le_bytes());
        e[2] = u8::from(r.holds);
        e[8..16].copy_from_slice(&r.key.to_le_bytes());
        e[16..32].copy_from_slice(&r.hostid);
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

    fn keys(a: u64, b: u64) -> [u8; 16] {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&a.to_le_bytes());
        d[8..].copy_from_slice(&b.to_le_bytes());
        d
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
        let d = keys(0xaa, 0xbb);
        assert_eq!(
            decode(&sqe(op::REGISTER, 0, 0), &d),
            Ok(Resv::Register {
                iekey: false,
                crkey: 0xaa,
                nrkey: 0xbb
            })
        );
        assert_eq!(
            decode(&sqe(op::REGISTER, 1 | 8, 0), &d),
            Ok(Resv::Unregister {
                iekey: true,
                crkey: 0xaa
            })
        );
        assert_eq!(
            decode(&sqe(op::REGISTER, 2 | 2 << 30, 0), &d),
            Ok(Resv::Replace {
                iekey: false,
                crkey: 0xaa,
                nrkey: 0xbb
            })
        );
        // The Linux host's register: CPTPL 3 (persist), ignored.
        assert!(matches!(
            decode(&sqe(op::REGISTER, 3 << 30, 0), &d),
            Ok(Resv::Register { nrkey: 0xbb, .. })
        ));
        assert_eq!(
            decode(&sqe(op::REGISTER, 3, 0), &d),
            Err(Status::INVALID_OPCODE)
        );
        assert_eq!(
            decode(&sqe(op::ACQUIRE, 8 | 1 << 8, 0), &d),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(
            decode(&sqe(op::RELEASE, 9, 0), &d[..8]),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(
            decode(&sqe(op::ACQUIRE, 3 | 1 << 8, 0), &d),
            Err(Status::INVALID_OPCODE)
        );
        assert_eq!(
            decode(&sqe(op::REPORT, (1 << 30) - 1, 1), &[]),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(
            decode(&sqe(op::REPORT, (1 << 30) - 2, 1), &[]),
            Ok(Resv::Report { len: u32::MAX - 3 })
        );
        assert_eq!(
            decode(&sqe(op::REGISTER, 0, 0), &d[..8]),
            Err(Status::SGL_LENGTH)
        );
        assert_eq!(
            decode(&sqe(op::ACQUIRE, 2 << 8, 0), &d),
            Ok(Resv::Acquire {
                crkey: 0xaa,
                scsi_type: 3
            })
        );
        assert_eq!(
            decode(&sqe(op::ACQUIRE, 2 | 6 << 8, 0), &d),
            Ok(Resv::Preempt {
                crkey: 0xaa,
                prkey: 0xbb,
                scsi_type: 8,
                abort: true
            })
        );
        assert_eq!(
            decode(&sqe(op::ACQUIRE, 0, 0), &d),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(
            decode(&sqe(op::RELEASE, 1 << 8, 0), &d[..8]),
            Ok(Resv::Release {
                crkey: 0xaa,
                scsi_type: 1
            })
        );
        assert_eq!(
            decode(&sqe(op::RELEASE, 1, 0), &d[..8]),
            Ok(Resv::Clear { crkey: 0xaa })
        );
        assert_eq!(
            decode(&sqe(op::REPORT, 15, 1), &[]),
            Ok(Resv::Report { len: 64 })
        );
        assert_eq!(
            decode(&sqe(op::REPORT, 15, 0), &[]),
            Err(HOST_ID_INCONSISTENT)
        );
        assert_eq!(
            decode(&sqe(op::REPORT, 14, 1), &[]),
            Err(Status::INVALID_FIELD)
        );
    }

    #[test]
    fn report_data() {
        let regs = [
            Registrant {
                key: 5,
                hostid: [1; 16],
                holds: true,
            },
            Registrant {
                key: 6,
                hostid: [2; 16],
                holds: false,
            },
        ];
        let mut out = [0xffu8; 192];
        report(9, 1, &regs, &mut out);
        assert_eq!(&out[..8], &[9, 0, 0, 0, 1, 2, 0, 0]);
        assert!(out[8..64].iter().all(|&b| b == 0));
        assert_eq!(&out[64..72], &[0xff, 0xff, 1, 0, 0, 0, 0, 0]);
        assert_eq!((out[72], &out[80..96]), (5, &[1u8; 16][..]));
        assert_eq!((out[128 + 2], out[128 + 8]), (0, 6));
        // Room for one entry: the count still says two.
        let mut short = [0u8; 128];
        report(9, 1, &regs, &mut short);
        assert_eq!((short[5], short[72]), (2, 5));
    }
}
