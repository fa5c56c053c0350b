// SPDX-License-Identifier: GPL-2.0

//! rtarget_nvme: NVMe over Fabrics with the TCP transport, on the core's devices and command
//! engine, configured under `target/nvme/` with nvmet's names (`configfs.rs`).
//!
//! A subsystem is a core [`Port`](rtarget_core::lun::Port) whose LUNs are its enabled
//! namespaces (LUN number = NSID); a controller's host is a core
//! [`Session`](rtarget_core::session::Session) on it. So an NVMe I/O command becomes a core
//! command like a SCSI one (`queue.rs` turns it into the SBC command that does the same:
//! READ(16), WRITE(16), VERIFY(16) with BYTCHK, WRITE SAME(16), UNMAP, SYNCHRONIZE CACHE),
//! and meets the same device checks (reservations, SANITIZE, write protection) and backends
//! as a LUN of the same device. Reservation commands become PERSISTENT RESERVE OUT / IN on
//! the device's one reservation state, which SCSI nexuses share. Admin commands are answered by the controller (`ctrl.rs`)
//! from the pure builders of `proto/`.
//!
//! Threads: one acceptor per enabled port; per connection (queue) a receive thread, plus a
//! transmit thread for I/O queues.

#![allow(missing_docs)]

use kernel::prelude::*;
use rtarget_core::fabric::{self, Fabric};
use rtarget_core::rt::configfs::NewNode;
use rtarget_core::rt::module_ref::ModuleRef;

mod configfs;
mod ctrl;
mod queue;

// The pure protocol crate (fabrics/nvme/proto), module by module at the crate root, where its
// `crate::` paths resolve.
#[path = "proto/src/admin.rs"]
pub mod admin;
#[path = "proto/src/capsule.rs"]
pub mod capsule;
#[path = "proto/src/features.rs"]
pub mod features;
#[path = "proto/src/identify.rs"]
pub mod identify;
#[path = "proto/src/log.rs"]
pub mod log;
#[path = "proto/src/nvm.rs"]
pub mod nvm;
#[path = "proto/src/pdu.rs"]
pub mod pdu;
// The address parser is the iSCSI portal's (numeric IPv4, bracketed IPv6).
#[path = "../iscsi/proto/src/portal.rs"]
pub mod portal;
#[path = "proto/src/regs.rs"]
pub mod regs;
#[path = "proto/src/resv.rs"]
pub mod resv;
#[path = "proto/src/status.rs"]
pub mod status;

module! {
    type: RtargetNvme,
    name: "rtarget_nvme",
    authors: ["rtarget developers"],
    description: "rtarget NVMe over Fabrics TCP fabric (nvmet's configfs names under target/nvme)",
    license: "GPL",
    params: {
        port_enable_delay_ms: u32 {
            default: 0,
            description: "Test hook: each port's enable (its first subsystem link) sleeps this long",
        },
    },
}

struct NvmeFabric;
static NVME: NvmeFabric = NvmeFabric;

impl Fabric for NvmeFabric {
    fn name(&self) -> &'static CStr {
        c"nvme"
    }
    fn version(&self) -> &'static CStr {
        c"rtarget NVMe/TCP v0.1"
    }
    fn owns_tree(&self) -> bool {
        true
    }
    fn make_tree(&self, name: &CStr, owner: ModuleRef) -> Result<NewNode> {
        configfs::make_root(name, owner, *THIS.as_ref().ok_or(ENODEV)?)
    }
}

/// This module, for the item types of the tree (set at load).
static THIS: kernel::sync::SetOnce<&'static ThisModule> = kernel::sync::SetOnce::new();

/// The test hook's delay, in milliseconds.
pub(crate) fn port_enable_delay_ms() -> u32 {
    module_parameters::port_enable_delay_ms.value()
}

struct RtargetNvme {
    _registration: fabric::Registration,
}

impl kernel::Module for RtargetNvme {
    fn init(module: &'static ThisModule) -> Result<Self> {
        THIS.populate(module);
        Ok(RtargetNvme {
            _registration: fabric::register(&NVME, module)?,
        })
    }
}
