// SPDX-License-Identifier: GPL-2.0

//! Persistent reservations of a device (`proto::pr` is the state machine): its state under a
//! spinlock, the one relaxed load the I/O path pays while no reservation is held, PERSISTENT
//! RESERVE IN / OUT, and the unit attentions a PROUT raises on other nexuses.
//!
//! The state belongs to the device, not to a LUN or a fabric: every nexus that reaches the
//! device through any port sees the same registrations, and a fabric that is not SCSI (an
//! NVMe host) can be a [`Nexus`] too.

use crate::device::Device;
use crate::lun::Port;
use crate::proto::pr::{
    self, Access, Nexus, PrState, ProutParams, Refusal, Registration, Regs, Spc2, Ua,
};
use crate::proto::spc::Proto;
use crate::session::Session;
use crate::tmf::{self, Tasks};
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::atomic::{ordering::Relaxed, Atomic};
use kernel::sync::{Arc, SpinLock};

/// Who a registration belongs to: an initiator port through a target port. Registrations
/// outlive the session that made them (they survive I_T nexus loss), so this is its own
/// object, shared by the session and its registrations.
pub struct Holder {
    /// The initiator port's name.
    pub initiator: CString,
    /// The fabric's name.
    pub fabric: &'static CStr,
    /// The target port's name.
    pub port_wwn: CString,
    /// Portal group tag.
    pub tpgt: u16,
    /// The transport protocol (the TransportID's format).
    pub proto: Proto,
}

impl Nexus for Arc<Holder> {
    fn initiator(&self) -> &[u8] {
        self.initiator.to_bytes()
    }

    fn same_port(&self, other: &Self) -> bool {
        self.tpgt == other.tpgt && self.port_wwn.to_bytes() == other.port_wwn.to_bytes()
    }

    fn proto(&self) -> Proto {
        self.proto
    }

    fn rtpi(&self) -> u16 {
        // As VPD 83h reports it.
        0
    }
}

impl<N> Regs<N> for KVec<Registration<N>> {
    fn add(&mut self, r: Registration<N>) -> core::result::Result<(), Registration<N>> {
        if self.reserve(1, GFP_ATOMIC).is_err() {
            return Err(r);
        }
        self.push_within_capacity(r).map_err(|e| e.0)
    }

    fn take(&mut self, i: usize) -> Option<Registration<N>> {
        self.remove(i).ok()
    }
}

/// A registration of a device.
pub(crate) type Reg = Registration<Arc<Holder>>;
/// A device's reservation state.
pub(crate) type Table = PrState<Arc<Holder>, KVec<Reg>>;

/// A device's persistent reservations.
#[pin_data]
pub(crate) struct Reservations {
    #[pin]
    state: SpinLock<Table>,
    /// A reservation is held: commands must be checked against it. Relaxed: a command racing
    /// the PROUT that changes it may see either side.
    reserved: Atomic<u32>,
}

impl Reservations {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Reservations {
            state <- kernel::new_spinlock!(PrState::new(KVec::new())),
            reserved: Atomic::new(0),
        })
    }

    /// Whether a command of class `access` from `who` meets RESERVATION CONFLICT. One relaxed
    /// load unless a reservation is held.
    pub(crate) fn conflicts(&self, who: &Arc<Holder>, access: Access) -> bool {
        if self.reserved.load(Relaxed) == 0 {
            return false;
        }
        self.state.lock().conflicts(who, access)
    }

    /// The device is no longer reached through `port`: the registrations made through it go
    /// (those with ALL_TG_PT stay).
    pub(crate) fn forget_port(&self, port: &Port) {
        let mut st = self.state.lock();
        st.forget(|r| {
            !r.all_tg_pt
                && r.nexus.tpgt == port.tpgt
                && r.nexus.port_wwn.to_bytes() == port.wwn.to_bytes()
        });
        self.reserved
            .store(u32::from(st.reservation.is_some()), Relaxed);
    }

    /// `initiator` no longer reaches the device through `port` (its ACL lost the mapping):
    /// its registrations through the port go (those with ALL_TG_PT stay).
    pub(crate) fn forget_initiator(&self, port: &Port, initiator: &CStr) {
        let mut st = self.state.lock();
        st.forget(|r| {
            !r.all_tg_pt
                && r.nexus.tpgt == port.tpgt
                && r.nexus.port_wwn.to_bytes() == port.wwn.to_bytes()
                && r.nexus.initiator.to_bytes() == initiator.to_bytes()
        });
        self.reserved
            .store(u32::from(st.reservation.is_some()), Relaxed);
    }

    /// Runs `f` on the state, under its lock (configfs' `pr/` files).
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&Table) -> R) -> R {
        f(&self.state.lock())
    }

    /// What an SPC-2 RESERVE or RELEASE from `who` does beside the registrations.
    pub(crate) fn spc2(&self, who: &Arc<Holder>) -> Spc2 {
        self.state.lock().spc2(who)
    }

    /// PERSISTENT RESERVE IN of `sa` into `out`; the full length of the response.
    pub(crate) fn prin(&self, sa: u8, out: &mut [u8]) -> usize {
        let st = self.state.lock();
        match sa {
            pr::prin::READ_KEYS => st.read_keys(out),
            pr::prin::READ_RESERVATION => st.read_reservation(out),
            pr::prin::READ_FULL_STATUS => st.read_full_status(out),
            _ => {
                let caps = pr::report_capabilities();
                let n = out.len().min(caps.len());
                out[..n].copy_from_slice(&caps[..n]);
                caps.len()
            }
        }
    }

    /// PERSISTENT RESERVE OUT of `sa` from `who` to `dev` (whose `pr` this is). The nexuses
    /// it affects get their unit attentions through every LUN of the device.
    pub(crate) fn prout(
        &self,
        dev: &Device,
        who: &Arc<Holder>,
        sa: u8,
        scope_type: u8,
        p: &ProutParams,
    ) -> core::result::Result<(), Refusal> {
        let mut told: KVec<(Reg, Ua)> = KVec::new();
        let r = {
            let mut st = self.state.lock();
            let r = st.prout(who, sa, scope_type, p, |reg, ua| {
                // Without memory a nexus misses its unit attention; the PROUT still holds.
                let _ = told.push((reg.clone(), ua), GFP_ATOMIC);
            });
            self.reserved
                .store(u32::from(st.reservation.is_some()), Relaxed);
            r
        };
        for (reg, ua) in told.iter() {
            dev.raise_ua_where(ua.code(), |s| reg.covers(&s.holder));
        }
        if r.is_ok() && sa == pr::prout::PREEMPT_AND_ABORT {
            abort_preempted(dev, &told);
        }
        r
    }
}

/// PREEMPT AND ABORT: the commands of the preempted nexuses to the device are aborted
/// (SPC-4 5.13.11.4.4), and the PROUT waits until they are gone, however long the backend
/// takes (in steps, as task management waits, with a warning after each).
fn abort_preempted(dev: &Device, told: &[(Reg, Ua)]) {
    let mut victims: KVec<(Arc<Session>, u64, Arc<dyn Tasks>)> = KVec::new();
    dev.for_each_export(|port, lun| {
        let Some(tasks) = port.tasks() else {
            return;
        };
        port.for_each_session(|s| {
            let preempted = told
                .iter()
                .any(|(reg, ua)| *ua == Ua::RegistrationsPreempted && reg.covers(&s.holder));
            if preempted {
                // Without memory the nexus keeps its commands; it is still preempted.
                s.for_each_mapping_of(lun, |n| {
                    let _ = victims.push((s.clone(), n, tasks.clone()), GFP_ATOMIC);
                });
            }
        });
    });
    // GOOD must not go out while a preempted command may still reach the medium: past the
    // bound, warn and wait again.
    for (s, lun, tasks) in victims.iter() {
        while tmf::abort_task_set(s, *lun, &|f| tasks.walk(f), tmf::TMF_WAIT)
            == tmf::TmfResponse::Failed
        {
            pr_warn!("rtarget: PREEMPT AND ABORT still waits for a preempted command\n");
        }
    }
}
