//! CDB decoding for the block READ and WRITE commands (SBC-4 5.x): 6, 10, 12, 16 and 32 byte
//! forms.
//! Decoding is pure; range checks against a device are in [`RwCdb::check`].

use super::sense::Sense;

/// READ(6).
pub const READ_6: u8 = 0x08;
/// WRITE(6).
pub const WRITE_6: u8 = 0x0a;
/// READ(10).
pub const READ_10: u8 = 0x28;
/// WRITE(10).
pub const WRITE_10: u8 = 0x2a;
/// READ(12).
pub const READ_12: u8 = 0xa8;
/// WRITE(12).
pub const WRITE_12: u8 = 0xaa;
/// READ(16).
pub const READ_16: u8 = 0x88;
/// WRITE(16).
pub const WRITE_16: u8 = 0x8a;
/// VARIABLE LENGTH CDB: the service action is in bytes 8-9.
pub const VARIABLE_LENGTH: u8 = 0x7f;
/// READ(32), a VARIABLE LENGTH CDB service action (type 2 protection).
pub const READ_32: u16 = 0x0009;
/// WRITE(32), a VARIABLE LENGTH CDB service action (type 2 protection).
pub const WRITE_32: u16 = 0x000b;
/// ADDITIONAL CDB LENGTH of the 32-byte READ and WRITE.
const ADDITIONAL_LEN_32: u8 = 0x18;

/// CDB length implied by the opcode's group code (SPC-4 4.2.5.1), or `None` for the variable
/// length (7Fh) and vendor-specific groups, whose length the CDB itself must give.
pub const fn cdb_len(opcode: u8) -> Option<usize> {
    match opcode >> 5 {
        0 => Some(6),
        1 | 2 => Some(10),
        4 => Some(16),
        5 => Some(12),
        _ => None,
    }
}

/// Data direction of a READ or WRITE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Data in: from the device to the initiator.
    Read,
    /// Data out: from the initiator to the device.
    Write,
}

/// What a 32-byte READ or WRITE expects of the protection information (SBC-4 5.19, 5.42).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectedTags {
    /// EXPECTED INITIAL LOGICAL BLOCK REFERENCE TAG: the first block's reference tag.
    pub reference: u32,
    /// EXPECTED LOGICAL BLOCK APPLICATION TAG.
    pub app: u16,
    /// LOGICAL BLOCK APPLICATION TAG MASK: the application tag bits checked.
    pub app_mask: u16,
}

/// A decoded READ or WRITE CDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RwCdb {
    /// Direction.
    pub dir: Dir,
    /// Length of the CDB form (6, 10, 12, 16 or 32).
    pub cdb_len: u8,
    /// First logical block.
    pub lba: u64,
    /// Number of logical blocks (READ/WRITE(6) map 0 to 256).
    pub blocks: u32,
    /// Force unit access.
    pub fua: bool,
    /// Disable page out.
    pub dpo: bool,
    /// RDPROTECT or WRPROTECT (0 for the 6-byte forms).
    pub protect: u8,
    /// The 32-byte forms' expected tags.
    pub tags: Option<ExpectedTags>,
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0, |v, &x| (v << 8) | u64::from(x))
}

impl RwCdb {
    /// Decodes `cdb` if it is a READ or WRITE. `Ok(None)`: another command.
    /// `Err`: a READ or WRITE that is malformed (truncated).
    pub fn decode(cdb: &[u8]) -> Result<Option<RwCdb>, Sense> {
        let Some(&op) = cdb.first() else {
            return Err(Sense::invalid_opcode());
        };
        let dir = match op {
            READ_6 | READ_10 | READ_12 | READ_16 => Dir::Read,
            WRITE_6 | WRITE_10 | WRITE_12 | WRITE_16 => Dir::Write,
            VARIABLE_LENGTH => return Self::decode_32(cdb),
            _ => return Ok(None),
        };
        let len = match cdb_len(op) {
            Some(l) => l,
            None => return Ok(None),
        };
        if cdb.len() < len {
            return Err(Sense::invalid_cdb_field(cdb.len() as u16, None));
        }
        let flags = cdb[1];
        let (lba, blocks) = match len {
            6 => {
                let lba = be(&cdb[1..4]) & 0x1f_ffff;
                let n = u32::from(cdb[4]);
                (lba, if n == 0 { 256 } else { n })
            }
            10 => (be(&cdb[2..6]), be(&cdb[7..9]) as u32),
            12 => (be(&cdb[2..6]), be(&cdb[6..10]) as u32),
            _ => (be(&cdb[2..10]), be(&cdb[10..14]) as u32),
        };
        let long = len > 6;
        Ok(Some(RwCdb {
            dir,
            cdb_len: len as u8,
            lba,
            blocks,
            fua: long && flags & 0x08 != 0,
            dpo: long && flags & 0x10 != 0,
            protect: if long { flags >> 5 } else { 0 },
            tags: None,
        }))
    }

    /// READ(32) and WRITE(32); other VARIABLE LENGTH CDBs are `Ok(None)`.
    fn decode_32(cdb: &[u8]) -> Result<Option<RwCdb>, Sense> {
        let dir = match cdb.get(8..10).map(|sa| be(sa) as u16) {
            Some(READ_32) => Dir::Read,
            Some(WRITE_32) => Dir::Write,
            _ => return Ok(None),
        };
        if cdb.len() < 32 {
            return Err(Sense::invalid_cdb_field(cdb.len() as u16, None));
        }
        if cdb[7] != ADDITIONAL_LEN_32 {
            return Err(Sense::invalid_cdb_field(7, None));
        }
        let flags = cdb[10];
        Ok(Some(RwCdb {
            dir,
            cdb_len: 32,
            lba: be(&cdb[12..20]),
            blocks: be(&cdb[28..32]) as u32,
            fua: flags & 0x08 != 0,
            dpo: flags & 0x10 != 0,
            protect: flags >> 5,
            tags: Some(ExpectedTags {
                reference: be(&cdb[20..24]) as u32,
                app: be(&cdb[24..26]) as u16,
                app_mask: be(&cdb[26..28]) as u16,
            }),
        }))
    }

    /// Offset of the byte holding RDPROTECT / WRPROTECT, DPO and FUA, for field pointers.
    pub const fn flags_field(&self) -> u16 {
        if self.cdb_len == 32 {
            10
        } else {
            1
        }
    }

    /// Offset of the TRANSFER LENGTH field, for field pointers.
    pub const fn length_field(&self) -> u16 {
        match self.cdb_len {
            6 => 4,
            10 => 7,
            12 => 6,
            32 => 28,
            _ => 10,
        }
    }

    /// Checks the command against a device of `capacity` blocks that accepts at most
    /// `max_blocks` per command and has protection information enabled or not.
    pub fn check(&self, capacity: u64, max_blocks: u32, pi: bool) -> Result<(), Sense> {
        if self.protect != 0 && !pi {
            return Err(Sense::invalid_cdb_field(self.flags_field(), Some(7)));
        }
        match self.lba.checked_add(u64::from(self.blocks)) {
            Some(end) if end <= capacity => {}
            _ => return Err(Sense::lba_out_of_range()),
        }
        if self.blocks > max_blocks {
            return Err(Sense::invalid_cdb_field(self.length_field(), None));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::sense::SenseKey;
    use super::*;

    fn rw(cdb: &[u8]) -> RwCdb {
        RwCdb::decode(cdb).unwrap().unwrap()
    }

    #[test]
    fn group_codes() {
        assert_eq!(cdb_len(0x00), Some(6));
        assert_eq!(cdb_len(0x28), Some(10));
        assert_eq!(cdb_len(0x5e), Some(10));
        assert_eq!(cdb_len(0x7f), None);
        assert_eq!(cdb_len(0x88), Some(16));
        assert_eq!(cdb_len(0xa0), Some(12));
        assert_eq!(cdb_len(0xc0), None);
    }

    #[test]
    fn read6_masks_lba_and_zero_means_256() {
        let c = rw(&[READ_6, 0xff, 0x12, 0x34, 0, 0]);
        assert_eq!(
            (c.dir, c.lba, c.blocks, c.fua),
            (Dir::Read, 0x1f1234, 256, false)
        );
        assert_eq!(rw(&[WRITE_6, 0, 0, 1, 8, 0]).blocks, 8);
    }

    #[test]
    fn read10_fields() {
        let c = rw(&[READ_10, 0x18, 0x01, 0x02, 0x03, 0x04, 0, 0x00, 0x10, 0]);
        assert_eq!(
            (c.lba, c.blocks, c.fua, c.dpo, c.protect),
            (0x01020304, 16, true, true, 0)
        );
        assert_eq!(c.length_field(), 7);
    }

    #[test]
    fn write10_zero_length_is_zero_blocks() {
        assert_eq!(rw(&[WRITE_10, 0, 0, 0, 0, 9, 0, 0, 0, 0]).blocks, 0);
    }

    #[test]
    fn rw12_and_16() {
        let c = rw(&[READ_12, 0x60, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!((c.lba, c.blocks, c.protect, c.cdb_len), (256, 65536, 3, 12));
        let mut w = [0u8; 16];
        w[0] = WRITE_16;
        w[2..10].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        w[10..14].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        let c = rw(&w);
        assert_eq!(
            (c.dir, c.lba, c.blocks),
            (Dir::Write, 0x0102_0304_0506_0708, 0xdead_beef)
        );
        assert_eq!(c.length_field(), 10);
    }

    fn rw32(sa: u16, flags: u8) -> [u8; 32] {
        let mut c = [0u8; 32];
        c[0] = VARIABLE_LENGTH;
        c[7] = 0x18;
        c[8..10].copy_from_slice(&sa.to_be_bytes());
        c[10] = flags;
        c[12..20].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        c[20..24].copy_from_slice(&0x1122_3344u32.to_be_bytes());
        c[24..26].copy_from_slice(&0x5566u16.to_be_bytes());
        c[26..28].copy_from_slice(&0x7788u16.to_be_bytes());
        c[28..32].copy_from_slice(&16u32.to_be_bytes());
        c
    }

    #[test]
    fn rw32_fields() {
        let c = rw(&rw32(READ_32, 0x38));
        assert_eq!(
            (c.dir, c.cdb_len, c.lba, c.blocks, c.protect, c.fua, c.dpo),
            (Dir::Read, 32, 0x0102_0304_0506_0708, 16, 1, true, true)
        );
        assert_eq!(
            c.tags,
            Some(ExpectedTags {
                reference: 0x1122_3344,
                app: 0x5566,
                app_mask: 0x7788
            })
        );
        assert_eq!((c.length_field(), c.flags_field()), (28, 10));
        assert_eq!(rw(&rw32(WRITE_32, 0)).dir, Dir::Write);
        // Another service action is another command; a wrong ADDITIONAL CDB LENGTH or a
        // truncated CDB is malformed.
        assert_eq!(RwCdb::decode(&rw32(0x000a, 0)), Ok(None));
        assert_eq!(RwCdb::decode(&[VARIABLE_LENGTH, 0, 0]), Ok(None));
        let mut bad = rw32(READ_32, 0);
        bad[7] = 0x10;
        assert_eq!(RwCdb::decode(&bad).unwrap_err().field.unwrap().byte, 7);
        assert_eq!(
            RwCdb::decode(&rw32(WRITE_32, 0)[..31])
                .unwrap_err()
                .field
                .unwrap()
                .byte,
            31
        );
        // Protection fields without protection point at byte 10.
        let s = rw(&rw32(WRITE_32, 0x20))
            .check(u64::MAX, u32::MAX, false)
            .unwrap_err();
        assert_eq!(s.field.unwrap().byte, 10);
    }

    #[test]
    fn other_opcodes_are_not_rw() {
        assert_eq!(RwCdb::decode(&[0x12, 0, 0, 0, 36, 0]), Ok(None));
        assert_eq!(RwCdb::decode(&[0x00; 6]), Ok(None));
    }

    #[test]
    fn truncated_cdbs_are_rejected() {
        for (cdb, at) in [
            (&[READ_10, 0, 0][..], 3u16),
            (&[WRITE_16; 15][..], 15),
            (&[READ_6][..], 1),
        ] {
            let s = RwCdb::decode(cdb).unwrap_err();
            assert_eq!((s.key, s.asc), (SenseKey::IllegalRequest, 0x24));
            assert_eq!(s.field.unwrap().byte, at);
        }
        assert_eq!(RwCdb::decode(&[]).unwrap_err().asc, 0x20);
    }

    #[test]
    fn range_checks() {
        let c = rw(&[READ_10, 0, 0, 0, 0, 90, 0, 0, 10, 0]);
        assert_eq!(c.check(100, 1024, false), Ok(()));
        assert_eq!(c.check(99, 1024, false).unwrap_err().asc, 0x21);
        let s = c.check(100, 8, false).unwrap_err();
        assert_eq!((s.asc, s.field.unwrap().byte), (0x24, 7));
    }

    #[test]
    fn lba_overflow_is_out_of_range() {
        let mut c = [0xffu8; 16];
        c[0] = READ_16;
        c[1] = 0;
        assert_eq!(
            rw(&c).check(u64::MAX, u32::MAX, false).unwrap_err().asc,
            0x21
        );
    }

    #[test]
    fn protect_without_pi_is_invalid_field() {
        let c = rw(&[WRITE_10, 0x20, 0, 0, 0, 0, 0, 0, 1, 0]);
        let s = c.check(10, 10, false).unwrap_err();
        assert_eq!(
            s.field.unwrap(),
            super::super::sense::FieldPointer {
                in_cdb: true,
                byte: 1,
                bit: Some(7)
            }
        );
        assert_eq!(c.check(10, 10, true), Ok(()));
    }

    #[test]
    fn every_short_prefix_of_every_rw_cdb_is_handled() {
        for op in [
            READ_6, WRITE_6, READ_10, WRITE_10, READ_12, WRITE_12, READ_16, WRITE_16,
        ] {
            let full = [op; 16];
            let need = cdb_len(op).unwrap();
            for n in 1..=16 {
                let r = RwCdb::decode(&full[..n]);
                assert_eq!(r.is_ok(), n >= need, "op {op:#x} len {n}");
            }
        }
    }
}
