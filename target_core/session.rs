// SPDX-License-Identifier: GPL-2.0

//! Sessions: one I_T nexus each (LIO's `se_session`). A fabric creates one when an initiator
//! port logs in (the loopback fabric, when `nexus` is written) and closes it when the
//! initiator goes away. A session names the initiator port, counts its commands in flight
//! (each holds a per-CPU [`LiveRef`] of it) and queues its unit attentions; its [`Holder`] is
//! who it is to persistent reservations. Its initiator's node ACL, if any, says which LUNs it
//! sees ([`Session::lookup`]).

use crate::acl::{Mapping, NodeAcl};
use crate::lun::{Lun, Port};
use crate::proto::pi::PiType;
use crate::proto::sense::Sense;
use crate::reservation::Holder;
use crate::rt::live_ref::{HasLiveRefs, LiveRefs};
use crate::ua::{self, UaAction, UaQueue};
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::atomic::{ordering::Relaxed, Atomic};
use kernel::sync::{Arc, SpinLock};
use kernel::time::{delay::fsleep, Delta};

/// [`Session::copy_status`] holds a copy's status.
const COPY_HELD: u64 = 1 << 63;
/// The held copy failed.
const COPY_FAILED: u64 = 1 << 62;

/// A copy's LUN (its low 16 bits: loopback and iSCSI LUNs stop at 65535) and list
/// identifier, in [`Session::copy_status`]'s bits 32-55.
fn copy_key(lun: u64, list_id: u8) -> u64 {
    ((lun & 0xffff) << 40) | (u64::from(list_id) << 32)
}

/// What a session's fabric does with T10 protection information.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionPi {
    /// It carries the tuples with the data (loopback's DIX): only then is protection
    /// advertised, and may READ and WRITE name it (LIO's `sup_prot_ops` PASS).
    pub carries: bool,
    /// `fabric_prot_type`: a device without protection information looks protected with this
    /// type; the core checks and drops the initiator's tuples on WRITE and makes them on READ.
    pub fabric_type: Option<PiType>,
}

/// An I_T nexus.
#[pin_data]
pub struct Session {
    /// The initiator port's name (its SCSI transport ID name: WWN, IQN...).
    pub initiator: CString,
    /// The target port it logged in to.
    pub port: Arc<Port>,
    /// The nexus as persistent reservations know it (they outlive the session).
    pub(crate) holder: Arc<Holder>,
    /// What its fabric does with T10 protection information.
    pub pi: SessionPi,
    /// The initiator's ACL on the port when it logged in; without one the nexus sees every
    /// LUN of the port (demo mode).
    acl: Option<Arc<NodeAcl>>,
    /// One per command between submission and release.
    #[pin]
    cmds: LiveRefs,
    /// How the nexus's last EXTENDED COPY with a list identifier ended, for RECEIVE COPY
    /// RESULTS: [`COPY_HELD`], [`COPY_FAILED`], the LUN in bits 40-55, the list identifier
    /// in bits 32-39 and the bytes copied in bits 0-31.
    copy_status: Atomic<u64>,
    /// Writes through this nexus are refused (WRITE PROTECTED).
    read_only: Atomic<bool>,
    /// Unit attentions pending, mirrored from `ua` so the I/O path can skip the lock.
    ua_pending: Atomic<u32>,
    #[pin]
    ua: SpinLock<UaQueue>,
    /// Set by [`Session::close`]: its commands' answers are no longer awaited.
    closed: Atomic<bool>,
    /// The protocol has no unit attentions (NVMe): none is raised; the reservation changes
    /// that would raise one queue in `ua` as notices for the fabric.
    no_ua: Atomic<bool>,
    /// Some notice is queued (`no_ua` nexuses).
    notices: Atomic<bool>,
}

impl Session {
    /// Creates the nexus of `initiator` to `port`, under the initiator's ACL if it has one, and
    /// registers it with the port. Every LUN it sees gets a POWER ON, RESET, OR BUS DEVICE
    /// RESET OCCURRED unit attention.
    pub fn new(port: &Arc<Port>, initiator: &CStr, pi: SessionPi) -> Result<Arc<Session>> {
        let holder = Arc::new(
            Holder {
                initiator: initiator.to_cstring()?,
                fabric: port.fabric,
                port_wwn: port.wwn.to_cstring()?,
                tpgt: port.tpgt,
                proto: port.proto,
            },
            GFP_KERNEL,
        )?;
        let s = Arc::pin_init(
            try_pin_init!(Session {
                initiator: initiator.to_cstring()?,
                port: port.clone(),
                holder,
                pi,
                acl: port.acl(initiator),
                cmds <- LiveRefs::new(),
                copy_status: Atomic::new(0),
                read_only: Atomic::new(false),
                ua_pending: Atomic::new(0),
                ua <- kernel::new_spinlock!(UaQueue::new()),
                closed: Atomic::new(false),
                no_ua: Atomic::new(false),
                notices: Atomic::new(false),
            }? Error),
            GFP_KERNEL,
        )?;
        port.add_session(&s)?;
        s.with_lun_indexes(|it| it.for_each(|lun| s.raise_ua(lun, ua::POWER_ON_RESET)));
        if let Err(e) = LiveRefs::arm(&s) {
            port.remove_session(&s);
            return Err(e);
        }
        Ok(s)
    }

    /// Ends the nexus (its fabric must, once): refuses new commands, unregisters it, then waits
    /// up to `bound` for its commands in flight. Returns whether they all were released.
    pub fn close(&self, bound: Delta) -> bool {
        self.closed.store(true, Relaxed);
        self.cmds.kill();
        self.port.remove_session(self);
        self.release_reservations();
        drain(&self.cmds, bound)
    }

    /// Whether the nexus is closing or closed (I_T nexus loss).
    pub(crate) fn closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    /// Drops the SPC-2 reservations this nexus holds on the port's devices (I_T nexus loss).
    pub(crate) fn release_reservations(&self) {
        self.port
            .with_luns(|luns| luns.iter().for_each(|l| l.device.spc2_release(self.id())));
    }

    /// The initiator's ACL the nexus was opened under.
    pub fn acl(&self) -> Option<&Arc<NodeAcl>> {
        self.acl.as_ref()
    }

    /// Whether the nexus was opened under `acl`.
    pub(crate) fn acl_is(&self, acl: &NodeAcl) -> bool {
        self.acl.as_deref().is_some_and(|a| core::ptr::eq(a, acl))
    }

    /// The LUN the initiator addresses as `index`, as this nexus sees it.
    #[inline]
    pub fn lookup(&self, index: u64) -> Option<Mapping> {
        match &self.acl {
            Some(acl) => acl.lookup(index),
            None => self.port.lun(index).map(|lun| Mapping {
                lun,
                read_only: self.read_only(),
            }),
        }
    }

    /// Calls `f` with each number under which the nexus sees the port's LUN `tpg_index`.
    pub(crate) fn for_each_mapping_of(&self, tpg_index: u64, mut f: impl FnMut(u64)) {
        match &self.acl {
            Some(acl) => acl.for_each_mapping_of(tpg_index, f),
            None => f(tpg_index),
        }
    }

    /// The first `f` returns of the LUNs the nexus sees and whether it may only read them.
    pub(crate) fn find_lun<R>(&self, mut f: impl FnMut(&Lun, bool) -> Option<R>) -> Option<R> {
        match &self.acl {
            Some(acl) => acl.find_map(f),
            None => {
                let ro = self.read_only();
                self.port
                    .with_luns(|luns| luns.iter().find_map(|l| f(l, ro)))
            }
        }
    }

    /// Calls `f` with the numbers of the LUNs the nexus sees (REPORT LUNS), under a lock.
    pub(crate) fn with_lun_indexes<R>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = u64>) -> R,
    ) -> R {
        match &self.acl {
            Some(acl) => acl.with_indexes(f),
            None => self
                .port
                .with_luns(|luns| f(&mut luns.iter().map(|l| l.index))),
        }
    }

    /// Makes the nexus read-only (or not): its writes fail with WRITE PROTECTED.
    pub fn set_read_only(&self, ro: bool) {
        self.read_only.store(ro, Relaxed);
    }

    /// Whether writes through the nexus are refused.
    pub fn read_only(&self) -> bool {
        self.read_only.load(Relaxed)
    }

    /// An identity for task management's comparisons.
    pub fn id(&self) -> usize {
        core::ptr::from_ref(self) as usize
    }

    /// Records how the nexus's copy through LUN `lun` with list identifier `list_id` ended.
    pub(crate) fn copy_done(&self, lun: u64, list_id: u8, ok: bool, bytes: u32) {
        let failed = if ok { 0 } else { COPY_FAILED };
        let key = copy_key(lun, list_id);
        self.copy_status
            .store(COPY_HELD | failed | key | u64::from(bytes), Relaxed);
    }

    /// How the nexus's last copy through LUN `lun` with list identifier `list_id` ended:
    /// whether it succeeded, and the bytes it copied.
    pub(crate) fn copy_status(&self, lun: u64, list_id: u8) -> Option<(bool, u32)> {
        let v = self.copy_status.load(Relaxed);
        let key_bits = 0xff_ffff << 32;
        (v & COPY_HELD != 0 && v & key_bits == copy_key(lun, list_id))
            .then_some((v & COPY_FAILED == 0, v as u32))
    }

    /// The nexus's protocol has no unit attentions (NVMe, whose hosts learn of changes from
    /// asynchronous events): drops those pending and raises none from now on. The changes of
    /// persistent reservations that would raise one become notices instead
    /// ([`Session::take_reservation_notice`]).
    pub fn without_unit_attentions(&self) {
        let mut q = self.ua.lock();
        self.no_ua.store(true, Relaxed);
        *q = UaQueue::new();
        self.ua_pending.store(0, Relaxed);
    }

    /// Queues a unit attention for `lun` (any context).
    pub(crate) fn raise_ua(&self, lun: u64, code: (u8, u8)) {
        let mut q = self.ua.lock();
        // Under the lock: none slips in beside `without_unit_attentions`.
        if self.no_ua.load(Relaxed) {
            if is_reservation_change(code) && q.raise(lun, code) {
                self.notices.store(true, Relaxed);
            }
            return;
        }
        if q.raise(lun, code) {
            self.ua_pending.store(q.len() as u32, Relaxed);
        }
    }

    /// A nexus without unit attentions: the oldest reservation change that affected it
    /// through LUN `lun`, cleared, as `(lun, (asc, ascq))` of the unit attention SPC-4 gives a
    /// SCSI nexus for it (REGISTRATIONS PREEMPTED, RESERVATIONS RELEASED or RESERVATIONS
    /// PREEMPTED). Lock-free while none is queued.
    pub fn take_reservation_notice(&self) -> Option<(u64, (u8, u8))> {
        if !self.notices.load(Relaxed) {
            return None;
        }
        let mut q = self.ua.lock();
        let n = q.take_oldest();
        if q.len() == 0 {
            self.notices.store(false, Relaxed);
        }
        n
    }

    /// Drops the unit attentions of a LUN that is gone.
    pub(crate) fn forget_lun(&self, lun: u64) {
        let mut q = self.ua.lock();
        if q.forget_lun(lun) > 0 {
            self.ua_pending.store(q.len() as u32, Relaxed);
        }
    }

    /// The unit attention a command must fail with, if any. Lock-free unless one is pending.
    pub(crate) fn ua_check(&self, lun: u64, opcode: u8, intlck: u32) -> Option<Sense> {
        if self.ua_pending.load(Relaxed) == 0 {
            return None;
        }
        let mut q = self.ua.lock();
        let r = q.check(lun, opcode, intlck);
        self.ua_pending.store(q.len() as u32, Relaxed);
        match r {
            UaAction::Pass => None,
            UaAction::Report(s) => Some(s),
        }
    }

    /// REQUEST SENSE: the oldest unit attention of `lun`, cleared.
    pub(crate) fn ua_take(&self, lun: u64) -> Option<Sense> {
        if self.ua_pending.load(Relaxed) == 0 {
            return None;
        }
        let mut q = self.ua.lock();
        let r = q.take(lun);
        self.ua_pending.store(q.len() as u32, Relaxed);
        r
    }
}

/// Whether `code` is one of the persistent reservations' unit attentions.
fn is_reservation_change(code: (u8, u8)) -> bool {
    use crate::proto::pr::Ua;
    [
        Ua::ReservationsPreempted,
        Ua::ReservationsReleased,
        Ua::RegistrationsPreempted,
    ]
    .iter()
    .any(|u| u.code() == code)
}

impl HasLiveRefs for Session {
    fn live_refs(&self) -> &LiveRefs {
        &self.cmds
    }
}

/// After a kill: waits up to `bound` for the commands holding `refs` to be released, then for
/// the refs to drop their `Arc`. Returns whether they did.
pub(crate) fn drain(refs: &LiveRefs, bound: Delta) -> bool {
    let drained = wait_until(bound, || refs.is_zero());
    if drained {
        refs.flush_release();
    }
    drained
}

/// Polls `done` every 10 ms for up to `bound` (process context). Sleeping in short steps keeps
/// the hung-task detector quiet and the wait bounded.
pub(crate) fn wait_until(bound: Delta, mut done: impl FnMut() -> bool) -> bool {
    let step = Delta::from_millis(10);
    let mut waited = Delta::ZERO;
    while !done() {
        if waited >= bound {
            return false;
        }
        fsleep(step);
        waited += step;
    }
    true
}
