// SPDX-License-Identifier: GPL-2.0

//! Node ACLs and mapped LUNs (LIO's `se_node_acl` and `se_lun_acl`): which LUNs of a port an
//! initiator sees, under which numbers, and whether it may write them. A session whose
//! initiator has an ACL on its port sees exactly the ACL's mapped LUNs; without one it sees
//! every LUN of the port under its own number (demo mode, when the fabric admits it).

use crate::lun::{Lun, Port};
use crate::ua;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::atomic::{ordering::Relaxed, Atomic};
use kernel::sync::{Arc, SpinLock};

/// One LUN as an initiator addresses it.
pub struct MappedLun {
    /// The number the initiator uses.
    pub mapped: u64,
    /// The port's LUN behind it.
    pub lun: Arc<Lun>,
    /// Writes through it fail with WRITE PROTECTED.
    pub read_only: bool,
}

/// What a session finds at a LUN number: the port's LUN and the nexus's access to it.
pub struct Mapping {
    /// The port's LUN.
    pub lun: Arc<Lun>,
    /// Writes are refused.
    pub read_only: bool,
}

/// An initiator's ACL on one port.
#[pin_data]
pub struct NodeAcl {
    /// The initiator port name it admits.
    pub initiator: CString,
    #[pin]
    luns: SpinLock<KVec<MappedLun>>,
    /// The queue depth its sessions get (iSCSI: `cmdsn_depth`).
    depth: Atomic<u32>,
}

impl NodeAcl {
    /// The ACL of `initiator` on `port`, registered with it; EEXIST if it has one.
    pub fn new(port: &Port, initiator: &CStr, depth: u32) -> Result<Arc<NodeAcl>> {
        let acl = Arc::pin_init(
            try_pin_init!(NodeAcl {
                initiator: initiator.to_cstring()?,
                luns <- kernel::new_spinlock!(KVec::new()),
                depth: Atomic::new(depth),
            }? Error),
            GFP_KERNEL,
        )?;
        port.add_acl(acl.clone())?;
        Ok(acl)
    }

    /// The queue depth its sessions get.
    pub fn depth(&self) -> u32 {
        self.depth.load(Relaxed)
    }

    /// Sets the queue depth of its next sessions.
    pub fn set_depth(&self, depth: u32) {
        self.depth.store(depth, Relaxed);
    }

    /// The LUN mapped at `index`.
    pub fn lookup(&self, index: u64) -> Option<Mapping> {
        self.luns
            .lock()
            .iter()
            .find(|m| m.mapped == index)
            .map(|m| Mapping {
                lun: m.lun.clone(),
                read_only: m.read_only,
            })
    }

    /// Maps `lun` at `mapped` (EEXIST if that number is taken). The ACL's sessions get a new
    /// I_T_L nexus there and REPORTED LUNS DATA HAS CHANGED on their other LUNs.
    pub fn map(&self, port: &Port, mapped: u64, lun: Arc<Lun>, read_only: bool) -> Result {
        {
            let mut luns = self.luns.lock();
            if luns.iter().any(|m| m.mapped == mapped) {
                return Err(EEXIST);
            }
            luns.push(
                MappedLun {
                    mapped,
                    lun,
                    read_only,
                },
                GFP_ATOMIC,
            )?;
        }
        self.changed(port, Some(mapped));
        Ok(())
    }

    /// Unmaps `mapped`; the sessions get REPORTED LUNS DATA HAS CHANGED on their remaining
    /// LUNs.
    pub fn unmap(&self, port: &Port, mapped: u64) {
        let removed = {
            let mut luns = self.luns.lock();
            match luns.iter().position(|m| m.mapped == mapped) {
                Some(i) => luns.remove(i).ok(),
                None => None,
            }
        };
        if let Some(m) = removed {
            // As LIO: the initiator's persistent reservation registrations through this port
            // go with the mapping.
            m.lun.device.pr.forget_initiator(port, &self.initiator);
            port.for_each_session(|s| {
                if s.acl_is(self) {
                    s.forget_lun(mapped)
                }
            });
            self.changed(port, None);
        }
    }

    /// The port's LUN `lun` is going: every mapping of it goes too (one at a time: nothing
    /// to allocate, so none can stay behind in a session).
    pub(crate) fn unmap_all_of(&self, port: &Port, lun: &Arc<Lun>) {
        let mut any = false;
        loop {
            let gone = {
                let mut luns = self.luns.lock();
                match luns.iter().position(|m| Arc::ptr_eq(&m.lun, lun)) {
                    Some(i) => luns.remove(i).ok(),
                    None => None,
                }
            };
            let Some(m) = gone else { break };
            port.for_each_session(|s| {
                if s.acl_is(self) {
                    s.forget_lun(m.mapped)
                }
            });
            any = true;
        }
        if any {
            self.changed(port, None);
        }
    }

    /// Drops every mapping (the ACL is being removed on `port`), and with each the initiator's
    /// persistent reservation registrations through the port, as LIO.
    pub(crate) fn clear(&self, port: &Port) {
        let gone = core::mem::take(&mut *self.luns.lock());
        for m in gone.iter() {
            m.lun.device.pr.forget_initiator(port, &self.initiator);
        }
    }

    /// Sets the write protection of `mapped`; false if nothing is mapped there.
    pub fn set_read_only(&self, mapped: u64, read_only: bool) -> bool {
        let mut luns = self.luns.lock();
        match luns.iter_mut().find(|m| m.mapped == mapped) {
            Some(m) => {
                m.read_only = read_only;
                true
            }
            None => false,
        }
    }

    /// Calls `f` with each number the port's LUN `tpg_index` is mapped at.
    pub(crate) fn for_each_mapping_of(&self, tpg_index: u64, mut f: impl FnMut(u64)) {
        for m in self.luns.lock().iter() {
            if m.lun.index == tpg_index {
                f(m.mapped);
            }
        }
    }

    /// The first `f` returns of the mapped LUNs and their write protection, under the ACL's
    /// lock.
    pub(crate) fn find_map<R>(&self, mut f: impl FnMut(&Lun, bool) -> Option<R>) -> Option<R> {
        self.luns.lock().iter().find_map(|m| f(&m.lun, m.read_only))
    }

    /// Calls `f` with the mapped numbers, in mapping order, under the ACL's lock.
    pub(crate) fn with_indexes<R>(&self, f: impl FnOnce(&mut dyn Iterator<Item = u64>) -> R) -> R {
        f(&mut self.luns.lock().iter().map(|m| m.mapped))
    }

    /// The ACL's sessions: a new nexus at `new`, REPORTED LUNS DATA HAS CHANGED elsewhere.
    fn changed(&self, port: &Port, new: Option<u64>) {
        port.for_each_session(|s| {
            if !s.acl_is(self) {
                return;
            }
            self.with_indexes(|it| {
                for i in it {
                    if Some(i) == new {
                        s.raise_ua(i, ua::POWER_ON_RESET);
                    } else {
                        s.raise_ua(i, ua::REPORTED_LUNS_CHANGED);
                    }
                }
            });
        });
    }
}
