// SPDX-License-Identifier: GPL-2.0

//! Target ports and LUNs (LIO's `se_portal_group` and `se_lun`). A port holds the LUNs linked
//! under its TPG and the sessions logged in to it.

use crate::acl::NodeAcl;
use crate::device::Device;
use crate::proto::spc::Proto;
use crate::rt::live_ref::{HasLiveRefs, LiveRefs};
use crate::session::Session;
use crate::tmf::Tasks;
use crate::ua;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::{Arc, Mutex, SpinLock};

/// How long unlinking a LUN waits for its commands in flight.
const LUN_DRAIN: kernel::time::Delta = kernel::time::Delta::from_secs(8);

/// A target port: a fabric's TPG as the core sees it.
#[pin_data]
pub struct Port {
    /// The fabric's name (`loopback`, ...).
    pub fabric: &'static CStr,
    /// Transport protocol.
    pub proto: Proto,
    /// The fabric WWN (target port name).
    pub wwn: CString,
    /// The portal group tag.
    pub tpgt: u16,
    #[pin]
    luns: SpinLock<KVec<Arc<Lun>>>,
    #[pin]
    sessions: SpinLock<KVec<Arc<Session>>>,
    /// Its node ACLs, one per initiator name.
    #[pin]
    acls: SpinLock<KVec<Arc<NodeAcl>>>,
    /// How the fabric finds the commands of the port's sessions.
    #[pin]
    tasks: Mutex<Option<Arc<dyn Tasks>>>,
}

impl Port {
    /// A port with no LUNs and no sessions.
    pub fn new(fabric: &'static CStr, proto: Proto, wwn: &CStr, tpgt: u16) -> Result<Arc<Port>> {
        Arc::pin_init(
            try_pin_init!(Port {
                fabric,
                proto,
                wwn: wwn.to_cstring()?,
                tpgt,
                luns <- kernel::new_spinlock!(KVec::new()),
                sessions <- kernel::new_spinlock!(KVec::new()),
                acls <- kernel::new_spinlock!(KVec::new()),
                tasks <- kernel::new_mutex!(None),
            }? Error),
            GFP_KERNEL,
        )
    }

    /// The fabric's walk of the port's commands (`None` to drop it, which the fabric must do
    /// when the TPG goes, as the walk may hold its host).
    pub fn set_tasks(&self, tasks: Option<Arc<dyn Tasks>>) {
        *self.tasks.lock() = tasks;
    }

    /// The fabric's walk of the port's commands.
    pub(crate) fn tasks(&self) -> Option<Arc<dyn Tasks>> {
        self.tasks.lock().clone()
    }

    /// The LUN linked at `index`.
    #[inline(never)]
    pub fn lun(&self, index: u64) -> Option<Arc<Lun>> {
        self.luns.lock().iter().find(|l| l.index == index).cloned()
    }

    /// Number of linked LUNs.
    #[inline(never)]
    pub fn lun_count(&self) -> usize {
        self.luns.lock().len()
    }

    /// Runs `f` on the linked LUNs, in link order, under the port's LUN lock (REPORT LUNS).
    pub(crate) fn with_luns<R>(&self, f: impl FnOnce(&[Arc<Lun>]) -> R) -> R {
        f(&self.luns.lock())
    }

    /// Exports `device` as LUN `index` of the port, ready for commands: what a configfs
    /// link to the device does (a LUN's, or an NVMe namespace's). ENODEV if the device is not
    /// enabled, EEXIST if the index is taken.
    pub fn link(self: &Arc<Port>, index: u64, device: &Arc<Device>) -> Result<Arc<Lun>> {
        if !device.enabled() {
            return Err(ENODEV);
        }
        let lun = Lun::new(index, device.clone(), self.clone())?;
        device.export(self, index)?;
        // Armed before the port shows it, so a scan that finds it can send it commands.
        if let Err(e) = Lun::arm(&lun) {
            device.unexport(self, index);
            return Err(e);
        }
        if let Err(e) = self.add(lun.clone()) {
            lun.retire(LUN_DRAIN);
            device.unexport(self, index);
            return Err(e);
        }
        Ok(lun)
    }

    /// Undoes [`Port::link`]: out of the port first, so a concurrent scan cannot find it
    /// again; then `view_gone` lets the fabric remove its own view; then commands still in
    /// the core (a slow backend) get a bounded wait, as LIO's `transport_clear_lun_ref`.
    pub fn unlink(&self, lun: &Arc<Lun>, view_gone: impl FnOnce(&Lun)) {
        self.remove(lun);
        view_gone(lun);
        lun.retire(LUN_DRAIN);
        lun.device.unexport(self, lun.index);
    }

    /// Adds a linked LUN; EEXIST if its index is taken. Every session gets POWER ON, RESET on
    /// the new LUN (a new I_T_L nexus) and REPORTED LUNS DATA HAS CHANGED on its other LUNs.
    pub(crate) fn add(&self, lun: Arc<Lun>) -> Result {
        let index = lun.index;
        {
            let mut luns = self.luns.lock();
            if luns.iter().any(|l| l.index == index) {
                return Err(EEXIST);
            }
            luns.push(lun, GFP_ATOMIC)?;
        }
        self.luns_changed(index);
        Ok(())
    }

    /// Removes a linked LUN and every ACL's mappings of it; the sessions forget its unit
    /// attentions and get REPORTED LUNS DATA HAS CHANGED on the remaining ones.
    pub(crate) fn remove(&self, lun: &Arc<Lun>) {
        {
            let mut luns = self.luns.lock();
            if let Some(i) = luns.iter().position(|l| Arc::ptr_eq(l, lun)) {
                let _ = luns.remove(i);
            }
        }
        for s in self.sessions.lock().iter().filter(|s| s.acl().is_none()) {
            s.forget_lun(lun.index);
        }
        self.luns_changed(lun.index);
        // Not under the ACL lock: unmapping takes the session lock.
        let mut acls: KVec<Arc<NodeAcl>> = KVec::new();
        for a in self.acls.lock().iter() {
            let _ = acls.push(a.clone(), GFP_ATOMIC);
        }
        for a in acls.iter() {
            a.unmap_all_of(self, lun);
        }
    }

    /// Sessions without an ACL see every LUN: a new nexus at `changed`, REPORTED LUNS DATA
    /// HAS CHANGED on the others.
    fn luns_changed(&self, changed: u64) {
        let sessions = self.sessions.lock();
        let luns = self.luns.lock();
        for s in sessions.iter().filter(|s| s.acl().is_none()) {
            for l in luns.iter() {
                if l.index == changed {
                    s.raise_ua(l.index, ua::POWER_ON_RESET);
                } else {
                    s.raise_ua(l.index, ua::REPORTED_LUNS_CHANGED);
                }
            }
        }
    }

    /// The ACL of `initiator`, if it has one.
    pub fn acl(&self, initiator: &CStr) -> Option<Arc<NodeAcl>> {
        self.acls
            .lock()
            .iter()
            .find(|a| *a.initiator == *initiator)
            .cloned()
    }

    /// Registers an ACL; EEXIST if its initiator has one.
    pub(crate) fn add_acl(&self, acl: Arc<NodeAcl>) -> Result {
        let mut acls = self.acls.lock();
        if acls.iter().any(|a| *a.initiator == *acl.initiator) {
            return Err(EEXIST);
        }
        acls.push(acl, GFP_ATOMIC)?;
        Ok(())
    }

    /// Forgets an ACL and its mappings. Its sessions keep it but see no LUN: the fabric ends
    /// them.
    pub fn remove_acl(&self, acl: &Arc<NodeAcl>) {
        self.acls.lock().retain(|a| !Arc::ptr_eq(a, acl));
        acl.clear(self);
    }

    pub(crate) fn add_session(&self, s: &Arc<Session>) -> Result {
        self.sessions.lock().push(s.clone(), GFP_ATOMIC)?;
        Ok(())
    }

    pub(crate) fn remove_session(&self, s: &Session) {
        let mut sessions = self.sessions.lock();
        if let Some(i) = sessions.iter().position(|x| x.id() == s.id()) {
            let _ = sessions.remove(i);
        }
    }

    /// Calls `f` for every session logged in to the port (under the port's session lock).
    pub(crate) fn for_each_session(&self, mut f: impl FnMut(&Arc<Session>)) {
        for s in self.sessions.lock().iter() {
            f(s);
        }
    }
}

/// A LUN: a device exported through a port at an index.
#[pin_data]
pub struct Lun {
    /// The LUN number.
    pub index: u64,
    /// The exported device.
    pub device: Arc<Device>,
    /// The port the LUN belongs to.
    pub port: Arc<Port>,
    /// One per command addressing the LUN, from submission to release.
    #[pin]
    cmds: LiveRefs,
}

impl Lun {
    /// LUN `index` of `port`, exporting `device`. It accepts commands once [`Lun::arm`]ed.
    pub fn new(index: u64, device: Arc<Device>, port: Arc<Port>) -> Result<Arc<Lun>> {
        Arc::pin_init(
            try_pin_init!(Lun {
                index,
                device,
                port,
                cmds <- LiveRefs::new(),
            }? Error),
            GFP_KERNEL,
        )
    }

    /// Lets commands address the LUN. It then lives until [`Lun::retire`].
    pub fn arm(this: &Arc<Lun>) -> Result {
        LiveRefs::arm(this)
    }

    /// Refuses new commands and waits up to `bound` for those in flight, so that the LUN (and
    /// its hold on the device) goes with the caller's `Arc`; after that the last command
    /// released frees it. Process context.
    pub fn retire(&self, bound: kernel::time::Delta) -> bool {
        self.cmds.kill();
        crate::session::drain(&self.cmds, bound)
    }
}

impl HasLiveRefs for Lun {
    fn live_refs(&self) -> &LiveRefs {
        &self.cmds
    }
}
