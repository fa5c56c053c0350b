//! A fabrics controller's properties (NVMe Base 2.0 3.1.4), read and written by Property Get
//! and Set: CAP, VS, CC, CSTS and CRTO. Enabling, disabling and shutting down follow CC as
//! nvmet's `nvmet_update_cc` does.

use crate::capsule::{Property, Status};

/// Property offsets.
pub mod reg {
    /// Controller Capabilities (8 bytes).
    pub const CAP: u32 = 0x00;
    /// Version.
    pub const VS: u32 = 0x08;
    /// Controller Configuration.
    pub const CC: u32 = 0x14;
    /// Controller Status.
    pub const CSTS: u32 = 0x1c;
    /// Controller Ready Timeouts.
    pub const CRTO: u32 = 0x68;
}

/// CSTS.RDY.
pub const CSTS_RDY: u32 = 1 << 0;
/// CSTS.CFS: controller fatal status.
pub const CSTS_CFS: u32 = 1 << 1;
/// CSTS.SHST: shutdown processing complete.
pub const CSTS_SHST_COMPLETE: u32 = 2 << 2;

/// Enable timeout (CAP.TO) in 500 ms units.
const READY_TIMEOUT: u64 = 15;

/// CAP for queues of up to `max_queue_size` entries: the NVM command set and the I/O command
/// set selection, CAP.TO of 7.5 s.
pub fn cap(max_queue_size: u16) -> u64 {
    1 << 37 | 1 << 43 | READY_TIMEOUT << 24 | u64::from(max_queue_size.max(2) - 1)
}

/// What a CC write did to the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing to act on.
    None,
    /// Enabled (CSTS.RDY, or CSTS.CFS for a configuration it cannot take).
    Enabled,
    /// Disabled: a controller reset; its I/O queues go.
    Reset,
    /// Shut down: its I/O queues go.
    Shutdown,
}

/// CC and CSTS of one controller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    /// Controller Configuration.
    pub cc: u32,
    /// Controller Status.
    pub csts: u32,
}

fn field(v: u32, shift: u32, bits: u32) -> u32 {
    v >> shift & ((1 << bits) - 1)
}

impl Regs {
    /// A CC write (Property Set) of `new`, for a discovery controller or not.
    pub fn set_cc(&mut self, new: u32, discovery: bool) -> Change {
        let old = self.cc;
        self.cc = new;
        let en = |cc| cc & 1 != 0;
        let shn = |cc| field(cc, 14, 2) != 0;
        let mut change = Change::None;
        if en(new) && !en(old) {
            self.csts = if self.valid_config(discovery) {
                CSTS_RDY
            } else {
                CSTS_CFS
            };
            change = Change::Enabled;
        }
        if !en(new) && en(old) {
            self.clear();
            change = Change::Reset;
        }
        if shn(new) && !shn(old) {
            self.clear();
            self.csts |= CSTS_SHST_COMPLETE;
            change = Change::Shutdown;
        }
        if !shn(new) && shn(old) {
            self.csts &= !CSTS_SHST_COMPLETE;
        }
        change
    }

    /// 64-byte SQEs and 16-byte CQEs (a discovery controller may leave them 0), 4 KiB pages,
    /// round robin, and the NVM or all I/O command sets.
    fn valid_config(&self, discovery: bool) -> bool {
        let cc = self.cc;
        let entries = field(cc, 16, 4) == 6 && field(cc, 20, 4) == 4;
        (discovery || entries)
            && field(cc, 7, 4) == 0
            && field(cc, 11, 3) == 0
            && matches!(field(cc, 4, 3), 0 | 6)
    }

    fn clear(&mut self) {
        self.csts &= !CSTS_RDY;
        self.cc = 0;
    }

    /// Property Get: CAP (8 bytes); VS, CC, CSTS and CRTO (4 bytes).
    pub fn get(&self, p: &Property, cap: u64, version: u32) -> Result<u64, Status> {
        match (p.wide, p.offset) {
            (true, reg::CAP) => Ok(cap),
            (false, reg::VS) => Ok(u64::from(version)),
            (false, reg::CC) => Ok(u64::from(self.cc)),
            (false, reg::CSTS) => Ok(u64::from(self.csts)),
            (false, reg::CRTO) => Ok(READY_TIMEOUT << 16 | READY_TIMEOUT),
            _ => Err(Status::INVALID_FIELD),
        }
    }

    /// Property Set: only CC, 4 bytes.
    pub fn set(&mut self, p: &Property, discovery: bool) -> Result<Change, Status> {
        match (p.wide, p.offset) {
            (false, reg::CC) => Ok(self.set_cc(p.value as u32, discovery)),
            _ => Err(Status::INVALID_FIELD),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the Linux host writes to enable: IOSQES 6, IOCQES 4, CSS NVM, EN.
    const ENABLE: u32 = 4 << 20 | 6 << 16 | 1;

    #[test]
    fn enable_reset_shutdown() {
        let mut r = Regs::default();
        assert_eq!(r.set_cc(ENABLE, false), Change::Enabled);
        assert_eq!(r.csts, CSTS_RDY);
        assert_eq!(r.set_cc(ENABLE, false), Change::None);
        assert_eq!(r.set_cc(0, false), Change::Reset);
        assert_eq!((r.cc, r.csts), (0, 0));
        r.set_cc(ENABLE, false);
        assert_eq!(r.set_cc(ENABLE | 1 << 14, false), Change::Shutdown);
        assert_eq!((r.cc, r.csts), (0, CSTS_SHST_COMPLETE));
        // Clearing SHN clears the shutdown status; enabling again works.
        r.cc = ENABLE & !1 | 1 << 14;
        r.set_cc(ENABLE & !1, false);
        assert_eq!(r.csts, 0);
        assert_eq!(r.set_cc(ENABLE, false), Change::Enabled);
        assert_eq!(r.csts, CSTS_RDY);
    }

    #[test]
    fn bad_configurations_are_fatal() {
        for cc in [
            1,                             // no queue entry sizes (an I/O controller needs them)
            ENABLE | 1 << 7,               // 8 KiB pages
            ENABLE | 1 << 11,              // weighted round robin
            ENABLE | 1 << 4,               // command set 1
            ENABLE & !(6 << 16) | 5 << 16, // 32-byte SQEs
        ] {
            let mut r = Regs::default();
            assert_eq!(r.set_cc(cc, false), Change::Enabled);
            assert_eq!(r.csts, CSTS_CFS, "cc {cc:#x}");
        }
        let mut r = Regs::default();
        r.set_cc(1, true);
        assert_eq!(r.csts, CSTS_RDY);
        r.set_cc(0, true);
        r.set_cc(6 << 4 | 1, true);
        assert_eq!(r.csts, CSTS_RDY);
    }

    #[test]
    fn properties() {
        let r = Regs {
            cc: ENABLE,
            csts: CSTS_RDY,
        };
        let p = |offset, wide| Property {
            offset,
            wide,
            value: 0,
        };
        let cap = cap(128);
        assert_eq!(cap, 0x0000_0820_0f00_007f);
        assert_eq!(r.get(&p(reg::CAP, true), cap, 0x10300), Ok(cap));
        assert_eq!(r.get(&p(reg::VS, false), cap, 0x10300), Ok(0x10300));
        assert_eq!(r.get(&p(reg::CC, false), cap, 0), Ok(u64::from(ENABLE)));
        assert_eq!(r.get(&p(reg::CSTS, false), cap, 0), Ok(1));
        assert_eq!(r.get(&p(reg::CRTO, false), cap, 0), Ok(0xf_000f));
        assert_eq!(
            r.get(&p(reg::CAP, false), cap, 0),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(r.get(&p(reg::VS, true), cap, 0), Err(Status::INVALID_FIELD));
        assert_eq!(r.get(&p(0x20, false), cap, 0), Err(Status::INVALID_FIELD));
        let mut w = Regs::default();
        let set = Property {
            offset: reg::CC,
            wide: false,
            value: u64::from(ENABLE),
        };
        assert_eq!(w.set(&set, false), Ok(Change::Enabled));
        assert_eq!(
            w.set(&Property { wide: true, ..set }, false),
            Err(Status::INVALID_FIELD)
        );
        assert_eq!(
            w.set(
                &Property {
                    offset: reg::CSTS,
                    ..set
                },
                false
            ),
            Err(Status::INVALID_FIELD)
        );
    }
}
