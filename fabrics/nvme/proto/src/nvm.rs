//! NVM command set I/O commands (NVMe NVM Command Set 1.0): Read, Write, Compare, Write
//! Zeroes, Dataset Management and Flush, decoded and checked against the namespace (its
//! capacity, block size and write protection) and the data the host sends or expects.

use crate::capsule::{io, Sqe, Status};

/// An I/O command, checked. Block counts are 1-based here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nvm {
    /// Read `nlb` blocks at `slba`.
    Read { slba: u64, nlb: u32, fua: bool },
    /// Write `nlb` blocks at `slba`.
    Write { slba: u64, nlb: u32, fua: bool },
    /// Compare `nlb` blocks at `slba` with the host's data.
    Compare { slba: u64, nlb: u32 },
    /// Write zeroes to `nlb` blocks at `slba`, deallocating them with `deallocate`.
    WriteZeroes {
        slba: u64,
        nlb: u32,
        deallocate: bool,
    },
    /// Dataset Management: `ranges` 16-byte range descriptors in the data; deallocate them
    /// with `deallocate` (else only hints, which are ignored).
    Dsm { ranges: u32, deallocate: bool },
    /// Flush the volatile write cache.
    Flush,
}

/// "Namespace is Write Protected" (without Do Not Retry, as nvmet).
pub const WRITE_PROTECTED: Status = Status(0x20);
/// Asymmetric access persistent loss, inaccessible, transition (path errors: the host
/// retries on another path).
pub const ANA_PERSISTENT_LOSS: Status = Status(0x301);
/// See [`ANA_PERSISTENT_LOSS`].
pub const ANA_INACCESSIBLE: Status = Status(0x302);
/// See [`ANA_PERSISTENT_LOSS`].
pub const ANA_TRANSITION: Status = Status(0x303);

/// The path status for a namespace whose ANA group is in `state` on the port (nvmet's
/// `nvmet_check_ana_state`): I/O only where it is optimized or non-optimized.
pub fn ana_check(state: u8) -> Result<(), Status> {
    use crate::log::ana;
    match state {
        ana::INACCESSIBLE => Err(ANA_INACCESSIBLE),
        ana::PERSISTENT_LOSS => Err(ANA_PERSISTENT_LOSS),
        ana::CHANGE => Err(ANA_TRANSITION),
        _ => Ok(()),
    }
}

/// What a namespace looks like to the I/O commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Namespace {
    /// Capacity in blocks.
    pub blocks: u64,
    /// Block size as a power of two.
    pub block_shift: u8,
    /// Writes are refused.
    pub read_only: bool,
}

fn range(slba: u64, nlb: u32, ns: &Namespace) -> Result<(), Status> {
    match slba.checked_add(u64::from(nlb)) {
        Some(end) if end <= ns.blocks => Ok(()),
        _ => Err(Status::LBA_RANGE),
    }
}

/// Decodes and checks an I/O command whose data pointer says `data_len` bytes: the blocks
/// must lie in the namespace and the data must be exactly what the command moves. No
/// protection information (PRINFO must be 0), no fused commands.
pub fn decode(sqe: &Sqe, ns: &Namespace, data_len: u32) -> Result<Nvm, Status> {
    let slba = u64::from(sqe.cdw[1]) << 32 | u64::from(sqe.cdw[0]);
    let cdw12 = sqe.cdw[2];
    let nlb = (cdw12 & 0xffff) + 1;
    let bytes = u64::from(nlb) << ns.block_shift;
    let moves = |len: u64| {
        if u64::from(data_len) == len {
            Ok(())
        } else {
            Err(Status::SGL_LENGTH)
        }
    };
    // A write-protected namespace takes only Read and Flush (nvmet's
    // `nvmet_io_cmd_check_access`).
    if ns.read_only && !matches!(sqe.opcode, io::READ | io::FLUSH) {
        return Err(WRITE_PROTECTED);
    }
    let cmd = match sqe.opcode {
        io::READ | io::WRITE | io::COMPARE => {
            if cdw12 >> 26 & 0xf != 0 {
                return Err(Status::INVALID_FIELD);
            }
            range(slba, nlb, ns)?;
            moves(bytes)?;
            let fua = cdw12 & 1 << 30 != 0;
            match sqe.opcode {
                io::READ => Nvm::Read { slba, nlb, fua },
                io::WRITE => Nvm::Write { slba, nlb, fua },
                _ => Nvm::Compare { slba, nlb },
            }
        }
        io::WRITE_ZEROES => {
            if cdw12 >> 26 & 0xf != 0 {
                return Err(Status::INVALID_FIELD);
            }
            range(slba, nlb, ns)?;
            moves(0)?;
            Nvm::WriteZeroes {
                slba,
                nlb,
                deallocate: cdw12 & 1 << 25 != 0,
            }
        }
        io::DSM => {
            let ranges = (sqe.cdw[0] & 0xff) + 1;
            moves(u64::from(ranges) * 16)?;
            Nvm::Dsm {
                ranges,
                deallocate: sqe.cdw[1] & 1 << 2 != 0,
            }
        }
        io::FLUSH => {
            moves(0)?;
            Nvm::Flush
        }
        _ => return Err(Status::INVALID_OPCODE),
    };
    Ok(cmd)
}

/// A Dataset Management range (16 bytes): its first block and block count, checked.
pub fn dsm_range(d: &[u8; 16], ns: &Namespace) -> Result<(u64, u32), Status> {
    let nlb = u32::from_le_bytes([d[4], d[5], d[6], d[7]]);
    let slba = u64::from_le_bytes(core::array::from_fn(|i| d[8 + i]));
    range(slba, nlb, ns)?;
    Ok((slba, nlb))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: Namespace = Namespace {
        blocks: 1000,
        block_shift: 9,
        read_only: false,
    };

    fn sqe(opcode: u8, cdw: [u32; 6]) -> Sqe {
        let mut raw = [0u8; 64];
        raw[0] = opcode;
        for (i, d) in cdw.iter().enumerate() {
            raw[40 + 4 * i..44 + 4 * i].copy_from_slice(&d.to_le_bytes());
        }
        Sqe::decode(&raw)
    }

    #[test]
    fn read_write_compare() {
        let read = sqe(io::READ, [992, 0, 7, 0, 0, 0]);
        assert_eq!(
            decode(&read, &NS, 4096),
            Ok(Nvm::Read {
                slba: 992,
                nlb: 8,
                fua: false
            })
        );
        // One block past the end; the length must match; 64-bit LBAs.
        assert_eq!(
            decode(&sqe(io::READ, [993, 0, 7, 0, 0, 0]), &NS, 4096),
            Err(Status::LBA_RANGE)
        );
        assert_eq!(decode(&read, &NS, 512), Err(Status::SGL_LENGTH));
        assert_eq!(
            decode(&sqe(io::READ, [0, 1, 0, 0, 0, 0]), &NS, 512),
            Err(Status::LBA_RANGE)
        );
        assert_eq!(
            decode(&sqe(io::READ, [u32::MAX, u32::MAX, 0, 0, 0, 0]), &NS, 512),
            Err(Status::LBA_RANGE)
        );
        let write = sqe(io::WRITE, [0, 0, 1 << 30, 0, 0, 0]);
        assert_eq!(
            decode(&write, &NS, 512),
            Ok(Nvm::Write {
                slba: 0,
                nlb: 1,
                fua: true
            })
        );
        let ro = Namespace {
            read_only: true,
            ..NS
        };
        assert_eq!(decode(&write, &ro, 512), Err(WRITE_PROTECTED));
        assert_eq!(
            decode(&read, &ro, 4096),
            Ok(Nvm::Read {
                slba: 992,
                nlb: 8,
                fua: false
            })
        );
        // Protection information asked of a namespace without it.
        assert_eq!(
            decode(&sqe(io::WRITE, [0, 0, 1 << 26, 0, 0, 0]), &NS, 512),
            Err(Status::INVALID_FIELD)
        );
        let compare = sqe(io::COMPARE, [10, 0, 1, 0, 0, 0]);
        assert_eq!(
            decode(&compare, &NS, 1024),
            Ok(Nvm::Compare { slba: 10, nlb: 2 })
        );
        // A write-protected namespace takes only Read and Flush, as nvmet.
        assert_eq!(decode(&compare, &ro, 1024), Err(WRITE_PROTECTED));
        assert_eq!(WRITE_PROTECTED.0, 0x20);
        // 4 KiB blocks: the full 65536-block count.
        let big = Namespace {
            blocks: 1 << 20,
            block_shift: 12,
            read_only: false,
        };
        assert_eq!(
            decode(&sqe(io::READ, [0, 0, 0xffff, 0, 0, 0]), &big, 1 << 28),
            Ok(Nvm::Read {
                slba: 0,
                nlb: 65536,
                fua: false
            })
        );
    }

    #[test]
    fn others() {
        let wz = sqe(io::WRITE_ZEROES, [0, 0, 999 | 1 << 25, 0, 0, 0]);
        assert_eq!(
            decode(&wz, &NS, 0),
            Ok(Nvm::WriteZeroes {
                slba: 0,
                nlb: 1000,
                deallocate: true
            })
        );
        assert_eq!(decode(&wz, &NS, 512), Err(Status::SGL_LENGTH));
        assert_eq!(
            decode(&sqe(io::WRITE_ZEROES, [1, 0, 999, 0, 0, 0]), &NS, 0),
            Err(Status::LBA_RANGE)
        );
        let dsm = sqe(io::DSM, [1, 1 << 2, 0, 0, 0, 0]);
        assert_eq!(
            decode(&dsm, &NS, 32),
            Ok(Nvm::Dsm {
                ranges: 2,
                deallocate: true
            })
        );
        assert_eq!(decode(&dsm, &NS, 16), Err(Status::SGL_LENGTH));
        let ro = Namespace {
            read_only: true,
            ..NS
        };
        assert_eq!(decode(&dsm, &ro, 32), Err(WRITE_PROTECTED));
        assert_eq!(
            decode(&sqe(io::DSM, [0, 0, 0, 0, 0, 0]), &NS, 16),
            Ok(Nvm::Dsm {
                ranges: 1,
                deallocate: false
            })
        );
        assert_eq!(
            decode(&sqe(io::DSM, [0, 0, 0, 0, 0, 0]), &ro, 16),
            Err(WRITE_PROTECTED)
        );
        use crate::log::ana;
        assert_eq!(ana_check(ana::OPTIMIZED), Ok(()));
        assert_eq!(ana_check(ana::NON_OPTIMIZED), Ok(()));
        assert_eq!(ana_check(ana::INACCESSIBLE), Err(ANA_INACCESSIBLE));
        assert_eq!(ana_check(ana::CHANGE), Err(ANA_TRANSITION));
        assert_eq!(ANA_PERSISTENT_LOSS.sct(), 3);
        assert_eq!(decode(&sqe(io::FLUSH, [0; 6]), &ro, 0), Ok(Nvm::Flush));
        assert_eq!(
            decode(&sqe(0x04, [0; 6]), &NS, 0),
            Err(Status::INVALID_OPCODE)
        );
        let mut r = [0u8; 16];
        r[4] = 8;
        r[8..16].copy_from_slice(&992u64.to_le_bytes());
        assert_eq!(dsm_range(&r, &NS), Ok((992, 8)));
        r[4] = 9;
        assert_eq!(dsm_range(&r, &NS), Err(Status::LBA_RANGE));
    }
}
