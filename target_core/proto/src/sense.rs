//! SCSI sense data (SPC-4 4.5): the keys and codes rtarget reports, and the fixed-format
//! builder with sense-key-specific field pointers.

/// SENSE KEY values (SPC-4 table 54).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SenseKey {
    /// NO SENSE.
    NoSense = 0x0,
    /// NOT READY.
    NotReady = 0x2,
    /// MEDIUM ERROR.
    MediumError = 0x3,
    /// HARDWARE ERROR.
    HardwareError = 0x4,
    /// ILLEGAL REQUEST.
    IllegalRequest = 0x5,
    /// UNIT ATTENTION.
    UnitAttention = 0x6,
    /// DATA PROTECT.
    DataProtect = 0x7,
    /// COPY ABORTED.
    CopyAborted = 0xa,
    /// ABORTED COMMAND.
    AbortedCommand = 0xb,
    /// MISCOMPARE.
    Miscompare = 0xe,
}

/// Where in the CDB (or parameter list) the offending field lies (SPC-4 4.5.2.4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldPointer {
    /// true: the field is in the CDB; false: in the parameter data.
    pub in_cdb: bool,
    /// Byte offset of the field.
    pub byte: u16,
    /// Bit of the field's most significant bit, if it is not the whole byte.
    pub bit: Option<u8>,
}

/// One CHECK CONDITION's sense: key, additional sense code and qualifier, optional pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sense {
    /// SENSE KEY.
    pub key: SenseKey,
    /// ADDITIONAL SENSE CODE.
    pub asc: u8,
    /// ADDITIONAL SENSE CODE QUALIFIER.
    pub ascq: u8,
    /// Sense-key-specific field pointer, for ILLEGAL REQUEST.
    pub field: Option<FieldPointer>,
    /// INFORMATION (with VALID set), e.g. the offset of the first miscompared byte.
    pub info: Option<u32>,
}

/// Length of the fixed-format sense data that [`Sense::write_fixed`] produces.
pub const FIXED_SENSE_LEN: usize = 18;

impl Sense {
    const fn illegal(asc: u8, ascq: u8, field: Option<FieldPointer>) -> Self {
        Sense {
            key: SenseKey::IllegalRequest,
            asc,
            ascq,
            field,
            info: None,
        }
    }

    /// INVALID COMMAND OPERATION CODE (20h/00h), pointing at the opcode.
    pub const fn invalid_opcode() -> Self {
        Self::illegal(
            0x20,
            0x00,
            Some(FieldPointer {
                in_cdb: true,
                byte: 0,
                bit: None,
            }),
        )
    }

    /// LOGICAL BLOCK ADDRESS OUT OF RANGE (21h/00h).
    pub const fn lba_out_of_range() -> Self {
        Self::illegal(0x21, 0x00, None)
    }

    /// INVALID FIELD IN CDB (24h/00h) at `byte`, optionally at `bit` within it.
    pub const fn invalid_cdb_field(byte: u16, bit: Option<u8>) -> Self {
        Self::illegal(
            0x24,
            0x00,
            Some(FieldPointer {
                in_cdb: true,
                byte,
                bit,
            }),
        )
    }

    /// INVALID FIELD IN PARAMETER LIST (26h/00h) at `byte`.
    pub const fn invalid_param_field(byte: u16, bit: Option<u8>) -> Self {
        Self::illegal(
            0x26,
            0x00,
            Some(FieldPointer {
                in_cdb: false,
                byte,
                bit,
            }),
        )
    }

    /// LOGICAL UNIT NOT SUPPORTED (25h/00h).
    pub const fn lun_not_supported() -> Self {
        Self::illegal(0x25, 0x00, None)
    }

    /// NOT READY, LOGICAL UNIT COMMUNICATION FAILURE (08h/00h): a backend I/O error, as LIO
    /// reports it (initiators retry NOT READY a finite number of times).
    pub const fn backend_io_failure() -> Self {
        Sense {
            key: SenseKey::NotReady,
            asc: 0x08,
            ascq: 0x00,
            field: None,
            info: None,
        }
    }

    /// NOT READY, LOGICAL UNIT NOT READY, SANITIZE IN PROGRESS (04h/1Bh).
    pub const fn sanitize_in_progress() -> Self {
        Sense {
            key: SenseKey::NotReady,
            asc: 0x04,
            ascq: 0x1b,
            field: None,
            info: None,
        }
    }

    /// HARDWARE ERROR, INTERNAL TARGET FAILURE (44h/00h).
    pub const fn internal_target_failure() -> Self {
        Sense {
            key: SenseKey::HardwareError,
            asc: 0x44,
            ascq: 0x00,
            field: None,
            info: None,
        }
    }

    /// DATA PROTECT, WRITE PROTECTED (27h/00h).
    pub const fn write_protected() -> Self {
        Sense {
            key: SenseKey::DataProtect,
            asc: 0x27,
            ascq: 0x00,
            field: None,
            info: None,
        }
    }

    /// A UNIT ATTENTION condition with this additional sense code and qualifier.
    pub const fn unit_attention(asc: u8, ascq: u8) -> Self {
        Sense {
            key: SenseKey::UnitAttention,
            asc,
            ascq,
            field: None,
            info: None,
        }
    }

    /// MISCOMPARE, MISCOMPARE DURING VERIFY OPERATION (1Dh/00h), with the offset of the first
    /// byte that differed in INFORMATION (SBC-4 5.3, 5.32).
    pub const fn miscompare(offset: u32) -> Self {
        Sense {
            key: SenseKey::Miscompare,
            asc: 0x1d,
            ascq: 0x00,
            field: None,
            info: Some(offset),
        }
    }

    /// ABORTED COMMAND, LOGICAL BLOCK GUARD (`ascq` 01h) / APPLICATION TAG (02h) / REFERENCE
    /// TAG (03h) CHECK FAILED, with the block's LBA in INFORMATION when it fits (SBC-4 4.22).
    pub const fn pi_check_failed(ascq: u8, lba: u64) -> Self {
        Sense {
            key: SenseKey::AbortedCommand,
            asc: 0x10,
            ascq,
            field: None,
            info: if lba <= u32::MAX as u64 {
                Some(lba as u32)
            } else {
                None
            },
        }
    }

    /// PARAMETER LIST LENGTH ERROR (1Ah/00h).
    pub const fn param_list_length() -> Self {
        Self::illegal(0x1a, 0x00, None)
    }

    /// Writes fixed-format sense data (response code 70h, current error) into `buf` and
    /// returns the number of bytes written: at most [`FIXED_SENSE_LEN`], fewer if `buf` is short.
    pub fn write_fixed(&self, buf: &mut [u8]) -> usize {
        let mut s = [0u8; FIXED_SENSE_LEN];
        s[0] = 0x70;
        s[2] = self.key as u8;
        if let Some(info) = self.info {
            s[0] |= 0x80;
            s[3..7].copy_from_slice(&info.to_be_bytes());
        }
        s[7] = (FIXED_SENSE_LEN - 8) as u8;
        s[12] = self.asc;
        s[13] = self.ascq;
        if let Some(f) = self.field {
            s[15] = 0x80 | if f.in_cdb { 0x40 } else { 0 };
            if let Some(bit) = f.bit {
                s[15] |= 0x08 | (bit & 0x7);
            }
            s[16..18].copy_from_slice(&f.byte.to_be_bytes());
        }
        let n = buf.len().min(FIXED_SENSE_LEN);
        buf[..n].copy_from_slice(&s[..n]);
        n
    }

    /// As [`Sense::write_fixed`], with a progress indication (SPC-4 4.4.2.4.4) in the
    /// sense-key-specific bytes: `progress` 65536ths done.
    pub fn write_fixed_with_progress(&self, progress: u16, buf: &mut [u8]) -> usize {
        let mut s = [0u8; FIXED_SENSE_LEN];
        self.write_fixed(&mut s);
        s[15] = 0x80;
        s[16..18].copy_from_slice(&progress.to_be_bytes());
        let n = buf.len().min(FIXED_SENSE_LEN);
        buf[..n].copy_from_slice(&s[..n]);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_field_has_cdb_pointer_with_bit() {
        let mut b = [0u8; 32];
        let n = Sense::invalid_cdb_field(7, Some(3)).write_fixed(&mut b);
        assert_eq!(n, 18);
        assert_eq!(
            &b[..18],
            &[0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0xcb, 0, 7]
        );
    }

    #[test]
    fn progress_indication_in_sks() {
        let mut b = [0u8; 18];
        let n = Sense::sanitize_in_progress().write_fixed_with_progress(0x8000, &mut b);
        assert_eq!(n, 18);
        assert_eq!((b[2], b[12], b[13]), (2, 0x04, 0x1b));
        assert_eq!(&b[15..18], &[0x80, 0x80, 0x00]);
    }

    #[test]
    fn lba_out_of_range_has_no_sks() {
        let mut b = [0xffu8; 18];
        Sense::lba_out_of_range().write_fixed(&mut b);
        assert_eq!((b[2], b[12], b[13], b[15]), (5, 0x21, 0, 0));
    }

    #[test]
    fn param_field_pointer_clears_cd() {
        let mut b = [0u8; 18];
        Sense::invalid_param_field(0x102, None).write_fixed(&mut b);
        assert_eq!((b[12], b[15], b[16], b[17]), (0x26, 0x80, 1, 2));
    }

    #[test]
    fn miscompare_carries_the_offset() {
        let mut b = [0u8; 18];
        Sense::miscompare(0x1234).write_fixed(&mut b);
        assert_eq!(&b[..7], &[0xf0, 0, 0x0e, 0, 0, 0x12, 0x34]);
        assert_eq!((b[12], b[13]), (0x1d, 0));
    }

    #[test]
    fn short_buffer_is_truncated() {
        let mut b = [0u8; 8];
        assert_eq!(Sense::invalid_opcode().write_fixed(&mut b), 8);
        assert_eq!(b[0], 0x70);
        assert_eq!(b[2], 5);
    }
}
