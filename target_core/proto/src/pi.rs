//! T10 protection information (SBC-4 4.22): the 8-byte tuple stored with each logical block,
//! what RDPROTECT / WRPROTECT ask of a command, and the per-block checks, with LIO's rules
//! (target_core_sbc.c: `sbc_check_prot`, `sbc_set_prot_op_checks`, `sbc_dif_verify`).
//!
//! The guard is CRC-16/T10-DIF of the block's data. The kernel computes it with its crc
//! library; [`crc_t10dif`] is the same function, for the host tests (and a KUnit case that
//! compares the two).

use super::cdb::{Dir, RwCdb};
use super::sense::Sense;

/// Bytes of protection information per logical block.
pub const TUPLE_LEN: usize = 8;

/// The application tag that disables every check of its block (T10_PI_APP_ESCAPE).
pub const APP_ESCAPE: u16 = 0xffff;

/// A device's protection type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PiType {
    /// Type 1: the reference tag is the low 32 bits of the LBA.
    Type1,
    /// Type 2: the reference tag is the 32-byte CDB's EXPECTED INITIAL LOGICAL BLOCK
    /// REFERENCE TAG, plus the block's index in the command; protection fields are taken only
    /// in READ(32) and WRITE(32).
    Type2,
    /// Type 3: the reference tag is not checked.
    Type3,
}

impl PiType {
    /// The `pi_prot_type` attribute's value (1, 2 or 3); 0 is no type.
    pub const fn from_attr(v: u32) -> Option<Self> {
        match v {
            1 => Some(PiType::Type1),
            2 => Some(PiType::Type2),
            3 => Some(PiType::Type3),
            _ => None,
        }
    }

    /// READ CAPACITY(16) byte 12: P_TYPE (type - 1) and PROT_EN.
    pub const fn read_capacity_byte(self) -> u8 {
        match self {
            PiType::Type1 => 0x01,
            PiType::Type2 => 0x03,
            PiType::Type3 => 0x05,
        }
    }

    /// Extended INQUIRY Data VPD page byte 4: SPT, GRD_CHK, APP_CHK, REF_CHK. Types 1 and 3
    /// as LIO (SPT 011b, REF_CHK for type 1). Type 2: SPT 111b, and every tag checked: the
    /// 32-byte CDBs give the expected reference and application tags.
    pub const fn vpd86_byte(self) -> u8 {
        match self {
            PiType::Type1 => 0x1d,
            PiType::Type2 => 0x3f,
            PiType::Type3 => 0x1c,
        }
    }
}

/// One block's protection information.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple {
    /// LOGICAL BLOCK GUARD: CRC of the block.
    pub guard: u16,
    /// LOGICAL BLOCK APPLICATION TAG.
    pub app: u16,
    /// LOGICAL BLOCK REFERENCE TAG.
    pub reference: u32,
}

impl Tuple {
    /// Decodes the big-endian tuple.
    pub const fn decode(b: &[u8; TUPLE_LEN]) -> Self {
        Tuple {
            guard: u16::from_be_bytes([b[0], b[1]]),
            app: u16::from_be_bytes([b[2], b[3]]),
            reference: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Encodes it big-endian.
    pub fn encode(&self) -> [u8; TUPLE_LEN] {
        let mut b = [0u8; TUPLE_LEN];
        b[..2].copy_from_slice(&self.guard.to_be_bytes());
        b[2..4].copy_from_slice(&self.app.to_be_bytes());
        b[4..].copy_from_slice(&self.reference.to_be_bytes());
        b
    }
}

/// Which fields of the tuples a command checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checks {
    /// The guard against the data's CRC.
    pub guard: bool,
    /// The reference tag (type 1: against the LBA; type 2: against the expected tag).
    pub reference: bool,
    /// The application tag's masked bits against the expected tag (32-byte CDBs, ATO).
    pub app: bool,
}

/// What the target does with a command's protection information.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PiOp {
    /// WRITE without WRPROTECT: generate the tuples, store them.
    Insert,
    /// READ without RDPROTECT: check the stored tuples, send the data only.
    Strip,
    /// RDPROTECT / WRPROTECT: the tuples travel with the data, checked as `checks` say.
    Pass,
}

/// A command's protection plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// What happens to the tuples.
    pub op: PiOp,
    /// The device's type.
    pub ty: PiType,
    /// The checks made.
    pub checks: Checks,
    /// The command's first block.
    pub lba: u64,
    /// The reference tag of the first block (types 1 and 2; each next block adds one).
    pub first_ref: u32,
    /// The expected application tag (0 unless a 32-byte CDB gives it and ATO is set).
    pub app: u16,
    /// The application tag bits checked.
    pub app_mask: u16,
}

/// The plan for the READ or WRITE `rw` on a device of protection type `ty` (`None`: no
/// protection), whose control page says ATO (`ato`: the application tag belongs to the
/// initiator). `Ok(None)`: no protection work. RDPROTECT / WRPROTECT 6 and 7, and any
/// non-zero value without protection, are INVALID FIELD IN CDB (SBC-4 tables 65, 97).
/// Which CDB forms a type 2 device takes is [`crate::command::parse_rw`]'s check.
pub fn plan(rw: &RwCdb, ty: Option<PiType>, ato: bool) -> Result<Option<Plan>, Sense> {
    let refuse = Err(Sense::invalid_cdb_field(rw.flags_field(), Some(7)));
    let Some(ty) = ty else {
        return if rw.protect == 0 { Ok(None) } else { refuse };
    };
    let reference = match ty {
        PiType::Type1 => true,
        // Only a 32-byte CDB says which reference tag to expect.
        PiType::Type2 => rw.tags.is_some(),
        PiType::Type3 => false,
    };
    let (app, app_mask) = match rw.tags {
        Some(t) if ato => (t.app, t.app_mask),
        _ => (0, 0),
    };
    let app_check = app_mask != 0;
    let (op, checks) = match rw.protect {
        0 if rw.dir == Dir::Write => (PiOp::Insert, Checks::default()),
        0 => (
            PiOp::Strip,
            Checks {
                guard: true,
                reference,
                app: app_check,
            },
        ),
        1 | 5 => (
            PiOp::Pass,
            Checks {
                guard: true,
                reference,
                app: app_check,
            },
        ),
        2 => (
            PiOp::Pass,
            Checks {
                guard: false,
                reference,
                app: app_check,
            },
        ),
        3 => (PiOp::Pass, Checks::default()),
        4 => (
            PiOp::Pass,
            Checks {
                guard: true,
                ..Checks::default()
            },
        ),
        _ => return refuse,
    };
    let first_ref = match (ty, rw.tags) {
        (PiType::Type2, Some(t)) => t.reference,
        _ => rw.lba as u32,
    };
    Ok(Some(Plan {
        op,
        ty,
        checks,
        lba: rw.lba,
        first_ref,
        app,
        app_mask,
    }))
}

impl Plan {
    /// The plan of a command that writes blocks from `lba` on without protection fields
    /// (WRITE SAME, COMPARE AND WRITE, ...): the target makes their tuples.
    pub const fn insert(ty: PiType, lba: u64) -> Plan {
        Plan {
            op: PiOp::Insert,
            ty,
            checks: Checks {
                guard: false,
                reference: false,
                app: false,
            },
            lba,
            first_ref: lba as u32,
            app: 0,
            app_mask: 0,
        }
    }

    /// The tuple the target makes for the command's block `i`, whose data's CRC is `guard`:
    /// the expected application tag (0 without one); types 1 and 2 number the reference tags
    /// from the first block's, type 3 leaves 0 (LIO sets none).
    pub const fn generated(&self, i: u64, guard: u16) -> Tuple {
        Tuple {
            guard,
            app: self.app,
            reference: match self.ty {
                PiType::Type3 => 0,
                _ => self.first_ref.wrapping_add(i as u32),
            },
        }
    }

    /// Checks the tuple of the command's block `i` against its data's CRC `guard`. An
    /// application tag of [`APP_ESCAPE`] disables the checks (LIO's rule, for every type). The
    /// sense names the block's LBA.
    pub fn check(&self, tuple: &Tuple, guard: u16, i: u64) -> Result<(), Sense> {
        if tuple.app == APP_ESCAPE {
            return Ok(());
        }
        let lba = self.lba + i;
        let c = self.checks;
        if c.guard && tuple.guard != guard {
            return Err(Sense::pi_check_failed(0x01, lba));
        }
        if c.app && (tuple.app ^ self.app) & self.app_mask != 0 {
            return Err(Sense::pi_check_failed(0x02, lba));
        }
        if c.reference && tuple.reference != self.generated(i, guard).reference {
            return Err(Sense::pi_check_failed(0x03, lba));
        }
        Ok(())
    }
}

const fn crc_table() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u16) << 8;
        let mut b = 0;
        while b < 8 {
            c = if c & 0x8000 != 0 {
                (c << 1) ^ 0x8bb7
            } else {
                c << 1
            };
            b += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u16; 256] = crc_table();

/// CRC-16/T10-DIF (polynomial 8BB7h, initial value `crc`, not reflected), continued over
/// `data`: the kernel's `crc_t10dif_update`.
pub fn crc_t10dif(mut crc: u16, data: &[u8]) -> u16 {
    for &b in data {
        crc = (crc << 8) ^ CRC_TABLE[usize::from((crc >> 8) as u8 ^ b)];
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdb::ExpectedTags;
    use crate::sense::SenseKey;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc_t10dif(0, b"123456789"), 0xd0db);
        assert_eq!(crc_t10dif(0, &[0u8; 512]), 0);
        // Continued across segments, as over a scatterlist.
        let data: [u8; 512] = core::array::from_fn(|i| (i * 7) as u8);
        let whole = crc_t10dif(0, &data);
        assert_eq!(crc_t10dif(crc_t10dif(0, &data[..100]), &data[100..]), whole);
    }

    #[test]
    fn tuple_round_trips_big_endian() {
        let t = Tuple {
            guard: 0x1234,
            app: 0x5678,
            reference: 0x9abc_def0,
        };
        assert_eq!(t.encode(), [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]);
        assert_eq!(Tuple::decode(&t.encode()), t);
    }

    fn rw(protect: u8, write: bool) -> RwCdb {
        let op = if write { 0x2a } else { 0x28 };
        let mut c = RwCdb::decode(&[op, protect << 5, 0, 0, 0, 7, 0, 0, 1, 0])
            .unwrap()
            .unwrap();
        c.protect = protect;
        c
    }

    fn rw32(protect: u8, write: bool, tags: ExpectedTags) -> RwCdb {
        RwCdb {
            cdb_len: 32,
            tags: Some(tags),
            ..rw(protect, write)
        }
    }

    const GUARD: Checks = Checks {
        guard: true,
        reference: false,
        app: false,
    };
    const BOTH: Checks = Checks {
        guard: true,
        reference: true,
        app: false,
    };

    #[test]
    fn plans_follow_lio() {
        let t1 = Some(PiType::Type1);
        let t3 = Some(PiType::Type3);
        assert_eq!(plan(&rw(0, false), None, true), Ok(None));
        for p in 1..8 {
            assert!(plan(&rw(p, false), None, true).is_err());
            assert!(plan(&rw(p, true), None, true).is_err());
        }
        let p = |protect, write, ty| plan(&rw(protect, write), ty, true).unwrap().unwrap();
        assert_eq!(p(0, true, t1).op, PiOp::Insert);
        assert_eq!(p(0, true, t1).checks, Checks::default());
        assert_eq!(
            (p(0, false, t1).op, p(0, false, t1).checks),
            (PiOp::Strip, BOTH)
        );
        assert_eq!(p(0, false, t3).checks, GUARD);
        for w in [false, true] {
            assert_eq!((p(1, w, t1).op, p(1, w, t1).checks), (PiOp::Pass, BOTH));
            assert_eq!(p(5, w, t1).checks, BOTH);
            assert_eq!(p(1, w, t3).checks, GUARD);
            assert_eq!(
                p(2, w, t1).checks,
                Checks {
                    reference: true,
                    ..Checks::default()
                }
            );
            assert_eq!(p(2, w, t3).checks, Checks::default());
            assert_eq!(p(3, w, t1).checks, Checks::default());
            assert_eq!(p(4, w, t1).checks, GUARD);
            for bad in [6, 7] {
                let e = plan(&rw(bad, w), t1, true).unwrap_err();
                assert_eq!((e.key, e.asc, e.ascq), (SenseKey::IllegalRequest, 0x24, 0));
            }
        }
    }

    #[test]
    fn type2_expects_the_32_byte_cdbs_tags() {
        let t2 = Some(PiType::Type2);
        let tags = ExpectedTags {
            reference: 100,
            app: 0x1234,
            app_mask: 0xff00,
        };
        // A 10-byte READ of a type 2 device checks the guard only: no expected reference tag.
        let p = plan(&rw(0, false), t2, true).unwrap().unwrap();
        assert_eq!(p.checks, GUARD);
        let p = plan(&rw32(1, false, tags), t2, true).unwrap().unwrap();
        assert_eq!(
            p.checks,
            Checks {
                guard: true,
                reference: true,
                app: true
            }
        );
        let data = [0x5au8; 512];
        let guard = crc_t10dif(0, &data);
        // Block 2 of the command (LBA 9): reference tag 102, application tag 0x12xx.
        let good = Tuple {
            guard,
            app: 0x12ab,
            reference: 102,
        };
        assert_eq!(p.check(&good, guard, 2), Ok(()));
        let e = p
            .check(
                &Tuple {
                    app: 0x13ab,
                    ..good
                },
                guard,
                2,
            )
            .unwrap_err();
        assert_eq!((e.asc, e.ascq, e.info), (0x10, 0x02, Some(9)));
        let e = p
            .check(
                &Tuple {
                    reference: 9,
                    ..good
                },
                guard,
                2,
            )
            .unwrap_err();
        assert_eq!((e.asc, e.ascq, e.info), (0x10, 0x03, Some(9)));
        // Generated tuples carry the expected tags.
        assert_eq!(
            p.generated(2, guard),
            Tuple {
                app: 0x1234,
                ..good
            }
        );
        // Without ATO the application tag belongs to the target: neither checked nor set.
        let p = plan(&rw32(1, false, tags), t2, false).unwrap().unwrap();
        assert!(!p.checks.app);
        assert_eq!(
            p.check(
                &Tuple {
                    app: 0x13ab,
                    ..good
                },
                guard,
                2
            ),
            Ok(())
        );
        assert_eq!(p.generated(0, guard).app, 0);
        // A zero mask checks nothing; WRPROTECT 3 and 4 never check the application tag.
        let zero_mask = ExpectedTags {
            app_mask: 0,
            ..tags
        };
        assert!(
            !plan(&rw32(1, true, zero_mask), t2, true)
                .unwrap()
                .unwrap()
                .checks
                .app
        );
        assert!(
            !plan(&rw32(4, true, tags), t2, true)
                .unwrap()
                .unwrap()
                .checks
                .app
        );
        // The escape still disables every check.
        let p = plan(&rw32(1, false, tags), t2, true).unwrap().unwrap();
        assert_eq!(
            p.check(
                &Tuple {
                    app: APP_ESCAPE,
                    reference: 0,
                    guard: 0
                },
                guard,
                0
            ),
            Ok(())
        );
    }

    #[test]
    fn checks_report_the_failing_lba() {
        let data = [0x5au8; 512];
        let guard = crc_t10dif(0, &data);
        let p = plan(&rw(1, false), Some(PiType::Type1), true)
            .unwrap()
            .unwrap();
        // The command starts at LBA 7: block 0 is LBA 7.
        let good = p.generated(0, guard);
        assert_eq!(good.reference, 7);
        assert_eq!(p.check(&good, guard, 0), Ok(()));
        let e = p.check(&good, guard ^ 1, 0).unwrap_err();
        assert_eq!(
            (e.key, e.asc, e.ascq, e.info),
            (SenseKey::AbortedCommand, 0x10, 1, Some(7))
        );
        let e = p.check(&good, guard, 1).unwrap_err();
        assert_eq!((e.asc, e.ascq, e.info), (0x10, 3, Some(8)));
        // Only the checks asked for are made.
        let none = plan(&rw(3, false), Some(PiType::Type1), true)
            .unwrap()
            .unwrap();
        assert_eq!(none.check(&good, guard ^ 1, 1), Ok(()));
        // The application tag escape disables them all.
        let escaped = Tuple {
            app: APP_ESCAPE,
            ..good
        };
        assert_eq!(p.check(&escaped, guard ^ 1, 1), Ok(()));
        // Type 1 compares the LBA's low 32 bits; INFORMATION cannot hold a larger LBA.
        let high = Plan {
            lba: (1u64 << 32) + 7,
            ..p
        };
        assert_eq!(high.check(&good, guard, 0), Ok(()));
        assert_eq!(high.check(&good, guard ^ 1, 0).unwrap_err().info, None);
        // Type 3 sets reference tag 0.
        let t3 = plan(&rw(0, true), Some(PiType::Type3), true)
            .unwrap()
            .unwrap();
        assert_eq!(t3.generated(5, guard).reference, 0);
        // The other writing commands make the tuples a WRITE without WRPROTECT makes.
        let w = plan(&rw(0, true), Some(PiType::Type1), true)
            .unwrap()
            .unwrap();
        assert_eq!(Plan::insert(PiType::Type1, 7), w);
    }
}
