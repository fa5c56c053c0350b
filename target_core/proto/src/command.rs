//! Command classification: one CDB in, one [`Action`] (or the sense to fail it with) out.
//! Every check that does not need the backend happens here, so the kernel side only moves data.

use super::cdb::{cdb_len, Dir, RwCdb};
use super::sense::{Sense, SenseKey};
use super::spc::ModeSense;

/// Opcodes handled besides READ/WRITE.
pub mod op {
    /// TEST UNIT READY.
    pub const TEST_UNIT_READY: u8 = 0x00;
    /// REQUEST SENSE.
    pub const REQUEST_SENSE: u8 = 0x03;
    /// INQUIRY.
    pub const INQUIRY: u8 = 0x12;
    /// MODE SENSE(6).
    pub const MODE_SENSE_6: u8 = 0x1a;
    /// READ CAPACITY(10).
    pub const READ_CAPACITY_10: u8 = 0x25;
    /// SYNCHRONIZE CACHE(10).
    pub const SYNCHRONIZE_CACHE_10: u8 = 0x35;
    /// MODE SENSE(10).
    pub const MODE_SENSE_10: u8 = 0x5a;
    /// SYNCHRONIZE CACHE(16).
    pub const SYNCHRONIZE_CACHE_16: u8 = 0x91;
    /// SERVICE ACTION IN(16).
    pub const SERVICE_ACTION_IN_16: u8 = 0x9e;
    /// REPORT LUNS.
    pub const REPORT_LUNS: u8 = 0xa0;
    /// READ CAPACITY(16), a SERVICE ACTION IN(16) service action.
    pub const SAI_READ_CAPACITY_16: u8 = 0x10;
}

/// What the device must do for a command. Response-building actions carry the CDB's
/// allocation length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Transfer `blocks` blocks at `lba` from the backend (data in).
    Read {
        /// First block.
        lba: u64,
        /// Block count.
        blocks: u32,
        /// FUA: read from the medium, not a volatile cache.
        fua: bool,
    },
    /// Transfer `blocks` blocks at `lba` to the backend (data out).
    Write {
        /// First block.
        lba: u64,
        /// Block count.
        blocks: u32,
        /// FUA: the data is on stable storage before GOOD.
        fua: bool,
    },
    /// SYNCHRONIZE CACHE(10/16): `blocks` blocks from `lba`; 0 blocks means to the end.
    SyncCache {
        /// First block.
        lba: u64,
        /// Block count (0: to the end of the medium).
        blocks: u32,
    },
    /// Standard INQUIRY.
    Inquiry {
        /// Allocation length.
        alloc: u32,
    },
    /// INQUIRY with EVPD for `page`.
    Vpd {
        /// Page code.
        page: u8,
        /// Allocation length.
        alloc: u32,
    },
    /// READ CAPACITY(10).
    ReadCapacity10,
    /// READ CAPACITY(16).
    ReadCapacity16 {
        /// Allocation length.
        alloc: u32,
    },
    /// MODE SENSE(6) or (10).
    ModeSense {
        /// Decoded CDB fields.
        ms: ModeSense,
        /// Allocation length.
        alloc: u32,
    },
    /// REPORT LUNS.
    ReportLuns {
        /// Allocation length.
        alloc: u32,
    },
    /// REQUEST SENSE (fixed format).
    RequestSense {
        /// Allocation length.
        alloc: u32,
    },
    /// Nothing to do but answer GOOD (TEST UNIT READY).
    Good,
}

/// What the checks need to know about the device and the command's data buffer.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Capacity in blocks.
    pub blocks: u64,
    /// Block size in bytes.
    pub block_size: u32,
    /// Largest READ/WRITE in blocks (VPD B0h MAXIMUM TRANSFER LENGTH).
    pub max_transfer: u32,
    /// WCE: DPO and FUA are accepted only with a write cache, as in LIO.
    pub write_cache: bool,
    /// Protection information enabled.
    pub pi: bool,
}

/// INVALID FIELD IN COMMAND INFORMATION UNIT (0Eh/03h): the data buffer does not match the
/// transfer length of a WRITE.
pub const fn invalid_field_in_iu() -> Sense {
    Sense {
        key: SenseKey::IllegalRequest,
        asc: 0x0e,
        ascq: 0x03,
        field: None,
    }
}

fn be16(b: &[u8]) -> u32 {
    u32::from(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Classifies `cdb`, whose data buffer holds `data_len` bytes.
pub fn parse(cdb: &[u8], dev: &Limits, data_len: u32) -> Result<Action, Sense> {
    let &opcode = cdb.first().ok_or(Sense::invalid_opcode())?;
    if let Some(rw) = RwCdb::decode(cdb)? {
        return parse_rw(&rw, dev, data_len);
    }
    if let Some(need) = cdb_len(opcode) {
        if cdb.len() < need {
            return Err(Sense::invalid_cdb_field(cdb.len() as u16, None));
        }
    }
    Ok(match opcode {
        op::TEST_UNIT_READY => Action::Good,
        op::INQUIRY => {
            let alloc = be16(&cdb[3..5]);
            if cdb[1] & 0x01 != 0 {
                Action::Vpd {
                    page: cdb[2],
                    alloc,
                }
            } else if cdb[2] != 0 {
                return Err(Sense::invalid_cdb_field(2, None));
            } else {
                Action::Inquiry { alloc }
            }
        }
        op::READ_CAPACITY_10 => {
            if cdb[8] & 0x01 == 0 && cdb[2..6] != [0; 4] {
                return Err(Sense::invalid_cdb_field(2, None));
            }
            Action::ReadCapacity10
        }
        op::SERVICE_ACTION_IN_16 => match cdb[1] & 0x1f {
            op::SAI_READ_CAPACITY_16 => Action::ReadCapacity16 {
                alloc: be32(&cdb[10..14]),
            },
            _ => return Err(Sense::invalid_cdb_field(1, Some(4))),
        },
        op::MODE_SENSE_6 => Action::ModeSense {
            ms: ModeSense::decode(cdb),
            alloc: u32::from(cdb[4]),
        },
        op::MODE_SENSE_10 => Action::ModeSense {
            ms: ModeSense::decode(cdb),
            alloc: be16(&cdb[7..9]),
        },
        op::REPORT_LUNS => Action::ReportLuns {
            alloc: be32(&cdb[6..10]),
        },
        op::REQUEST_SENSE => {
            if cdb[1] & 0x01 != 0 {
                return Err(Sense::invalid_cdb_field(1, Some(0)));
            }
            Action::RequestSense {
                alloc: u32::from(cdb[4]),
            }
        }
        op::SYNCHRONIZE_CACHE_10 => Action::SyncCache {
            lba: u64::from(be32(&cdb[2..6])),
            blocks: be16(&cdb[7..9]),
        },
        op::SYNCHRONIZE_CACHE_16 => Action::SyncCache {
            lba: u64::from_be_bytes([
                cdb[2], cdb[3], cdb[4], cdb[5], cdb[6], cdb[7], cdb[8], cdb[9],
            ]),
            blocks: be32(&cdb[10..14]),
        },
        _ => return Err(Sense::invalid_opcode()),
    })
}

fn parse_rw(rw: &RwCdb, dev: &Limits, data_len: u32) -> Result<Action, Sense> {
    if !dev.write_cache && (rw.dpo || rw.fua) {
        let bit = if rw.dpo { 4 } else { 3 };
        return Err(Sense::invalid_cdb_field(1, Some(bit)));
    }
    rw.check(dev.blocks, dev.max_transfer, dev.pi)?;
    let need = u64::from(rw.blocks) * u64::from(dev.block_size);
    match rw.dir {
        // More data asked for than the buffer holds; a shorter request leaves a residual.
        Dir::Read if need > u64::from(data_len) => {
            Err(Sense::invalid_cdb_field(rw.length_field(), None))
        }
        Dir::Read => Ok(Action::Read {
            lba: rw.lba,
            blocks: rw.blocks,
            fua: rw.fua,
        }),
        Dir::Write if need != u64::from(data_len) => Err(invalid_field_in_iu()),
        Dir::Write => Ok(Action::Write {
            lba: rw.lba,
            blocks: rw.blocks,
            fua: rw.fua,
        }),
    }
}

/// Whether a command is executed even though a unit attention is pending for its nexus
/// (SPC-4 5.14: INQUIRY, REPORT LUNS and REQUEST SENSE).
pub fn passes_unit_attention(opcode: u8) -> bool {
    matches!(opcode, op::INQUIRY | op::REPORT_LUNS | op::REQUEST_SENSE)
}

/// Fixed-format NO SENSE, what REQUEST SENSE returns when nothing is pending.
pub const NO_SENSE: [u8; 18] = [0x70, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdb::{READ_10, READ_16, WRITE_10};
    use crate::sense::FieldPointer;

    const DEV: Limits = Limits {
        blocks: 1024,
        block_size: 512,
        max_transfer: 0xffff_fff8,
        write_cache: false,
        pi: false,
    };

    #[test]
    fn reads_and_writes() {
        assert_eq!(
            parse(&[READ_10, 0, 0, 0, 0, 8, 0, 0, 2, 0], &DEV, 1024),
            Ok(Action::Read {
                lba: 8,
                blocks: 2,
                fua: false
            })
        );
        assert_eq!(
            parse(&[WRITE_10, 0, 0, 0, 3, 0xff, 0, 0, 1, 0], &DEV, 512),
            Ok(Action::Write {
                lba: 1023,
                blocks: 1,
                fua: false
            })
        );
        // A shorter read than the buffer is fine (the rest is residual).
        assert!(parse(&[READ_10, 0, 0, 0, 0, 0, 0, 0, 1, 0], &DEV, 4096).is_ok());
    }

    #[test]
    fn out_of_range_and_oversized() {
        assert_eq!(
            parse(&[READ_10, 0, 0, 0, 4, 0, 0, 0, 1, 0], &DEV, 512).unwrap_err(),
            Sense::lba_out_of_range()
        );
        let s = parse(&[READ_10, 0, 0, 0, 0, 0, 0, 0, 8, 0], &DEV, 512).unwrap_err();
        assert_eq!((s.asc, s.field.unwrap().byte), (0x24, 7));
        let mut c16 = [0u8; 16];
        c16[0] = READ_16;
        c16[10..14].copy_from_slice(&0x1000u32.to_be_bytes());
        let s = parse(
            &c16,
            &Limits {
                max_transfer: 0x800,
                blocks: 1 << 20,
                ..DEV
            },
            u32::MAX,
        )
        .unwrap_err();
        assert_eq!(s.field.unwrap().byte, 10);
        assert_eq!(
            parse(&[WRITE_10, 0, 0, 0, 0, 0, 0, 0, 2, 0], &DEV, 512).unwrap_err(),
            invalid_field_in_iu()
        );
    }

    #[test]
    fn fua_needs_write_cache() {
        let s = parse(&[WRITE_10, 0x08, 0, 0, 0, 0, 0, 0, 1, 0], &DEV, 512).unwrap_err();
        assert_eq!(
            s.field.unwrap(),
            FieldPointer {
                in_cdb: true,
                byte: 1,
                bit: Some(3)
            }
        );
        let wc = Limits {
            write_cache: true,
            ..DEV
        };
        assert!(parse(&[WRITE_10, 0x18, 0, 0, 0, 0, 0, 0, 1, 0], &wc, 512).is_ok());
    }

    #[test]
    fn inquiry_and_vpd() {
        assert_eq!(
            parse(&[0x12, 0, 0, 0, 96, 0], &DEV, 96),
            Ok(Action::Inquiry { alloc: 96 })
        );
        assert_eq!(
            parse(&[0x12, 1, 0x83, 1, 0, 0], &DEV, 256),
            Ok(Action::Vpd {
                page: 0x83,
                alloc: 256
            })
        );
        assert_eq!(
            parse(&[0x12, 0, 0x83, 0, 96, 0], &DEV, 96)
                .unwrap_err()
                .field
                .unwrap()
                .byte,
            2
        );
    }

    #[test]
    fn capacity_and_service_actions() {
        assert_eq!(
            parse(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &DEV, 8),
            Ok(Action::ReadCapacity10)
        );
        assert_eq!(
            parse(&[0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0], &DEV, 8)
                .unwrap_err()
                .asc,
            0x24
        );
        let mut c = [0u8; 16];
        c[0] = 0x9e;
        c[1] = 0x10;
        c[13] = 32;
        assert_eq!(
            parse(&c, &DEV, 32),
            Ok(Action::ReadCapacity16 { alloc: 32 })
        );
        c[1] = 0x12;
        assert_eq!(
            parse(&c, &DEV, 32).unwrap_err().field.unwrap(),
            FieldPointer {
                in_cdb: true,
                byte: 1,
                bit: Some(4)
            }
        );
    }

    #[test]
    fn unit_attention_pass_through() {
        assert!(passes_unit_attention(op::INQUIRY));
        assert!(passes_unit_attention(op::REPORT_LUNS));
        assert!(passes_unit_attention(op::REQUEST_SENSE));
        assert!(!passes_unit_attention(op::TEST_UNIT_READY));
        assert!(!passes_unit_attention(READ_10));
    }

    #[test]
    fn misc_commands() {
        assert_eq!(parse(&[0; 6], &DEV, 0), Ok(Action::Good));
        assert_eq!(
            parse(&[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &DEV, 0),
            Ok(Action::SyncCache { lba: 0, blocks: 0 })
        );
        let mut c = [0u8; 16];
        c[0] = 0x91;
        c[9] = 7;
        c[13] = 3;
        assert_eq!(
            parse(&c, &DEV, 0),
            Ok(Action::SyncCache { lba: 7, blocks: 3 })
        );
        assert_eq!(
            parse(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], &DEV, 256),
            Ok(Action::ReportLuns { alloc: 256 })
        );
        assert_eq!(
            parse(&[0x03, 0, 0, 0, 18, 0], &DEV, 18),
            Ok(Action::RequestSense { alloc: 18 })
        );
        assert_eq!(
            parse(&[0x03, 1, 0, 0, 18, 0], &DEV, 18).unwrap_err().asc,
            0x24
        );
    }

    #[test]
    fn unknown_and_truncated() {
        assert_eq!(
            parse(&[0xff, 0, 0, 0, 0, 0], &DEV, 0),
            Err(Sense::invalid_opcode())
        );
        assert_eq!(parse(&[0x5a, 0, 0x3f], &DEV, 0).unwrap_err().asc, 0x24);
        assert_eq!(parse(&[], &DEV, 0), Err(Sense::invalid_opcode()));
    }

    /// Every CDB of every length made of one repeated byte classifies without panicking.
    #[test]
    fn never_panics_on_garbage() {
        for op in 0..=255u8 {
            for fill in [0u8, 0x5a, 0xff] {
                for len in 0..=16 {
                    let mut c = [fill; 16];
                    if len > 0 {
                        c[0] = op;
                    }
                    let _ = parse(&c[..len], &DEV, 4096);
                }
            }
        }
    }
}
