//! T10 protection information (SBC-4 4.22): the 8-byte tuple stored with each logical block,
//! what RDPROTECT / WRPROTECT ask of a command, and the per-block checks, with LIO's rules
//! (target_core_sbc.c: `sbc_check_prot`, `sbc_set_prot_op_checks`, `sbc_dif_verify`).
//!
//! The guard is CRC-16/T10-DIF of the block's data. The kernel computes it with its crc
//! library; [`crc_t10dif`] is the same function, for the host tests (and a KUnit case that
//! compares the two).

use super::sense::Sense;

/// Bytes of protection information per logical block.
pub const TUPLE_LEN: usize = 8;

/// The application tag that disables every check of its block (T10_PI_APP_ESCAPE).
pub const APP_ESCAPE: u16 = 0xffff;

/// A device's protection type (type 2 is refused, as in LIO).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PiType {
    /// Type 1: the reference tag is the low 32 bits of the LBA.
    Type1,
    /// Type 3: the reference tag is not checked.
    Type3,
}

impl PiType {
    /// The `pi_prot_type` attribute's value (1 or 3); 0 and 2 are no type here.
    pub const fn from_attr(v: u32) -> Option<Self> {
        match v {
            1 => Some(PiType::Type1),
            3 => Some(PiType::Type3),
            _ => None,
        }
    }

    /// READ CAPACITY(16) byte 12: P_TYPE (type - 1) and PROT_EN.
    pub const fn read_capacity_byte(self) -> u8 {
        match self {
            PiType::Type1 => 0x01,
            PiType::Type3 => 0x05,
        }
    }

    /// Extended INQUIRY Data VPD page byte 4: SPT 011b (types 1 and 3), GRD_CHK, and REF_CHK
    /// for type 1 (APP_CHK never: application tags are not checked).
    pub const fn vpd86_byte(self) -> u8 {
        match self {
            PiType::Type1 => 0x1d,
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

    /// The tuple the target generates for a block whose guard is `guard` (app tag 0; type 1's
    /// reference tag is the LBA's low 32 bits, type 3's is `reference` unchanged, as in LIO).
    pub const fn generated(guard: u16, lba: u64, ty: PiType, reference: u32) -> Self {
        Tuple {
            guard,
            app: 0,
            reference: match ty {
                PiType::Type1 => lba as u32,
                PiType::Type3 => reference,
            },
        }
    }
}

/// Which fields of the tuples a command checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checks {
    /// The guard against the data's CRC.
    pub guard: bool,
    /// The reference tag against the LBA (type 1 only).
    pub reference: bool,
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
}

/// The plan for a READ (`write` false) or WRITE whose CDB byte 1 holds `protect` in bits 7-5,
/// on a device of protection type `ty` (`None`: no protection). `Ok(None)`: no protection
/// work. RDPROTECT / WRPROTECT 6 and 7, and any non-zero value without protection, are
/// INVALID FIELD IN CDB (SBC-4 tables 65, 97).
pub fn plan(protect: u8, write: bool, ty: Option<PiType>) -> Result<Option<Plan>, Sense> {
    let refuse = Err(Sense::invalid_cdb_field(1, Some(7)));
    let Some(ty) = ty else {
        return if protect == 0 { Ok(None) } else { refuse };
    };
    let t1 = ty == PiType::Type1;
    let (op, checks) = match protect {
        0 if write => (PiOp::Insert, Checks::default()),
        0 => (
            PiOp::Strip,
            Checks {
                guard: true,
                reference: t1,
            },
        ),
        1 | 5 => (
            PiOp::Pass,
            Checks {
                guard: true,
                reference: t1,
            },
        ),
        2 => (
            PiOp::Pass,
            Checks {
                guard: false,
                reference: t1,
            },
        ),
        3 => (PiOp::Pass, Checks::default()),
        4 => (
            PiOp::Pass,
            Checks {
                guard: true,
                reference: false,
            },
        ),
        _ => return refuse,
    };
    Ok(Some(Plan { op, ty, checks }))
}

/// Checks block `lba`'s tuple against its data's CRC `guard`. An application tag of
/// [`APP_ESCAPE`] disables the checks (LIO's rule, for every type). The sense names the LBA.
pub fn check(tuple: &Tuple, guard: u16, lba: u64, checks: Checks) -> Result<(), Sense> {
    if tuple.app == APP_ESCAPE {
        return Ok(());
    }
    if checks.guard && tuple.guard != guard {
        return Err(Sense::pi_check_failed(0x01, lba));
    }
    if checks.reference && tuple.reference != lba as u32 {
        return Err(Sense::pi_check_failed(0x03, lba));
    }
    Ok(())
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

    #[test]
    fn plans_follow_lio() {
        let t1 = Some(PiType::Type1);
        let t3 = Some(PiType::Type3);
        let both = Checks {
            guard: true,
            reference: true,
        };
        let guard = Checks {
            guard: true,
            reference: false,
        };
        assert_eq!(plan(0, false, None), Ok(None));
        for p in 1..8 {
            assert!(plan(p, false, None).is_err());
            assert!(plan(p, true, None).is_err());
        }
        let p = |protect, write, ty| plan(protect, write, ty).unwrap().unwrap();
        assert_eq!(p(0, true, t1).op, PiOp::Insert);
        assert_eq!(p(0, true, t1).checks, Checks::default());
        assert_eq!(
            (p(0, false, t1).op, p(0, false, t1).checks),
            (PiOp::Strip, both)
        );
        assert_eq!(p(0, false, t3).checks, guard);
        for w in [false, true] {
            assert_eq!((p(1, w, t1).op, p(1, w, t1).checks), (PiOp::Pass, both));
            assert_eq!(p(5, w, t1).checks, both);
            assert_eq!(p(1, w, t3).checks, guard);
            assert_eq!(
                p(2, w, t1).checks,
                Checks {
                    guard: false,
                    reference: true
                }
            );
            assert_eq!(p(2, w, t3).checks, Checks::default());
            assert_eq!(p(3, w, t1).checks, Checks::default());
            assert_eq!(p(4, w, t1).checks, guard);
            for bad in [6, 7] {
                let e = plan(bad, w, t1).unwrap_err();
                assert_eq!((e.key, e.asc, e.ascq), (SenseKey::IllegalRequest, 0x24, 0));
            }
        }
    }

    #[test]
    fn checks_report_the_failing_lba() {
        let data = [0x5au8; 512];
        let guard = crc_t10dif(0, &data);
        let both = Checks {
            guard: true,
            reference: true,
        };
        let good = Tuple::generated(guard, 7, PiType::Type1, 0);
        assert_eq!(check(&good, guard, 7, both), Ok(()));
        let e = check(&good, guard ^ 1, 7, both).unwrap_err();
        assert_eq!(
            (e.key, e.asc, e.ascq, e.info),
            (SenseKey::AbortedCommand, 0x10, 1, Some(7))
        );
        let e = check(&good, guard, 8, both).unwrap_err();
        assert_eq!((e.asc, e.ascq, e.info), (0x10, 3, Some(8)));
        // Only the checks asked for are made.
        assert_eq!(check(&good, guard, 8, Checks::default()), Ok(()));
        // The application tag escape disables them all.
        let escaped = Tuple {
            app: APP_ESCAPE,
            ..good
        };
        assert_eq!(check(&escaped, guard ^ 1, 8, both), Ok(()));
        // Type 1 compares the LBA's low 32 bits; INFORMATION cannot hold a larger LBA.
        let high = (1u64 << 32) + 7;
        assert_eq!(check(&good, guard, high, both), Ok(()));
        let e = check(&good, guard ^ 1, high, both).unwrap_err();
        assert_eq!(e.info, None);
        // Type 3 keeps the reference tag it is given.
        assert_eq!(
            Tuple::generated(guard, 7, PiType::Type3, 0xffff_ffff).reference,
            0xffff_ffff
        );
    }
}
