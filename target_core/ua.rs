// SPDX-License-Identifier: GPL-2.0

//! Unit attention conditions, queued per I_T nexus and LUN (LIO's `se_ua` list on each
//! `se_dev_entry`). The I/O path reads one atomic counter; the queue's lock is taken only
//! while a condition is pending.

use crate::proto::sense::Sense;
use kernel::prelude::*;

/// POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (29h/00h).
pub const POWER_ON_RESET: (u8, u8) = (0x29, 0x00);
/// BUS DEVICE RESET FUNCTION OCCURRED (29h/03h), after a LUN reset.
pub const BUS_DEVICE_RESET: (u8, u8) = (0x29, 0x03);
/// I_T NEXUS LOSS OCCURRED (29h/07h).
pub const NEXUS_LOSS: (u8, u8) = (0x29, 0x07);
/// MODE PARAMETERS CHANGED (2Ah/01h).
pub const MODE_PARAMETERS_CHANGED: (u8, u8) = (0x2a, 0x01);
/// CAPACITY DATA HAS CHANGED (2Ah/09h).
pub const CAPACITY_CHANGED: (u8, u8) = (0x2a, 0x09);
/// COMMANDS CLEARED BY ANOTHER INITIATOR (2Fh/00h), after another nexus's reset with TAS off.
pub const COMMANDS_CLEARED_BY_ANOTHER: (u8, u8) = (0x2f, 0x00);
/// REPORTED LUNS DATA HAS CHANGED (3Fh/0Eh).
pub const REPORTED_LUNS_CHANGED: (u8, u8) = (0x3f, 0x0e);

/// Conditions kept per nexus; more are dropped (the first ones are what initiators act on).
const MAX_PENDING: usize = 64;

/// One pending condition.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Ua {
    lun: u64,
    asc: u8,
    ascq: u8,
}

/// A nexus's pending unit attentions, oldest first.
pub(crate) struct UaQueue {
    list: KVec<Ua>,
}

/// How a pending condition affects a command (SPC-4 5.14, LIO's `target_scsi3_ua_check`).
pub(crate) enum UaAction {
    /// Nothing pending for the LUN, or the command passes through it.
    Pass,
    /// Fail the command with this UNIT ATTENTION sense.
    Report(Sense),
}

impl UaQueue {
    pub(crate) const fn new() -> Self {
        UaQueue { list: KVec::new() }
    }

    /// Queues a condition for `lun` unless the same one is pending. Returns whether it was
    /// added. Runs in any context.
    pub(crate) fn raise(&mut self, lun: u64, (asc, ascq): (u8, u8)) -> bool {
        let ua = Ua { lun, asc, ascq };
        if self.list.contains(&ua) || self.list.len() >= MAX_PENDING {
            return false;
        }
        self.list.push(ua, GFP_ATOMIC).is_ok()
    }

    /// Drops every condition of `lun` (the LUN is gone). Returns how many.
    pub(crate) fn forget_lun(&mut self, lun: u64) -> usize {
        let before = self.list.len();
        self.list.retain(|u| u.lun != lun);
        before - self.list.len()
    }

    /// Number of pending conditions.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    fn first(&self, lun: u64) -> Option<usize> {
        self.list.iter().position(|u| u.lun == lun)
    }

    /// The effect of pending conditions on a command with `opcode` to `lun`. INQUIRY, REPORT
    /// LUNS and REQUEST SENSE pass through (REQUEST SENSE reports through [`Self::take`]);
    /// any other command is failed with the oldest condition, which is cleared unless
    /// `emulate_ua_intlck_ctrl` says to keep it (1 or 2, with LIO's semantics).
    pub(crate) fn check(&mut self, lun: u64, opcode: u8, intlck: u32) -> UaAction {
        let Some(i) = self.first(lun) else {
            return UaAction::Pass;
        };
        if crate::proto::command::passes_unit_attention(opcode) {
            return UaAction::Pass;
        }
        let ua = self.list[i];
        if intlck == 0 {
            let _ = self.list.remove(i);
        }
        UaAction::Report(Sense::unit_attention(ua.asc, ua.ascq))
    }

    /// The oldest condition of any LUN, cleared: `(lun, (asc, ascq))`.
    pub(crate) fn take_oldest(&mut self) -> Option<(u64, (u8, u8))> {
        if self.list.is_empty() {
            return None;
        }
        let ua = self.list.remove(0).ok()?;
        Some((ua.lun, (ua.asc, ua.ascq)))
    }

    /// REQUEST SENSE: the oldest condition of `lun`, cleared.
    pub(crate) fn take(&mut self, lun: u64) -> Option<Sense> {
        let i = self.first(lun)?;
        let ua = self.list.remove(i).ok()?;
        Some(Sense::unit_attention(ua.asc, ua.ascq))
    }
}

#[kunit_tests(rtarget_core_ua)]
mod tests {
    use super::*;
    use crate::proto::command::op;

    const TUR: u8 = op::TEST_UNIT_READY;

    #[test]
    fn report_clears_the_oldest_and_dedupes() {
        let mut q = UaQueue::new();
        assert!(q.raise(0, POWER_ON_RESET));
        assert!(!q.raise(0, POWER_ON_RESET));
        assert!(q.raise(0, REPORTED_LUNS_CHANGED));
        assert!(q.raise(1, CAPACITY_CHANGED));
        assert!(matches!(q.check(0, op::INQUIRY, 0), UaAction::Pass));
        assert!(
            matches!(q.check(0, TUR, 0), UaAction::Report(s) if (s.asc, s.ascq) == POWER_ON_RESET)
        );
        assert!(
            matches!(q.check(0, TUR, 0), UaAction::Report(s) if (s.asc, s.ascq) == REPORTED_LUNS_CHANGED)
        );
        assert!(matches!(q.check(0, TUR, 0), UaAction::Pass));
        assert_eq!(q.len(), 1);
        assert_eq!(q.forget_lun(1), 1);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn intlck_keeps_until_request_sense() {
        let mut q = UaQueue::new();
        q.raise(3, BUS_DEVICE_RESET);
        assert!(matches!(q.check(3, TUR, 1), UaAction::Report(_)));
        assert!(matches!(q.check(3, TUR, 1), UaAction::Report(_)));
        let s = q.take(3).expect("pending");
        assert_eq!((s.asc, s.ascq), BUS_DEVICE_RESET);
        assert!(q.take(3).is_none());
        assert!(matches!(q.check(3, TUR, 1), UaAction::Pass));
    }

    #[test]
    fn take_oldest_across_luns() {
        let mut q = UaQueue::new();
        q.raise(2, CAPACITY_CHANGED);
        q.raise(1, POWER_ON_RESET);
        assert_eq!(q.take_oldest(), Some((2, CAPACITY_CHANGED)));
        assert_eq!(q.take_oldest(), Some((1, POWER_ON_RESET)));
        assert_eq!(q.take_oldest(), None);
    }
}
