// SPDX-License-Identifier: GPL-2.0

//! rtarget_core: the fabric-independent storage target core.
//!
//! It owns the LIO-compatible configfs tree (`/sys/kernel/config/target`), the fabric registry
//! that fabric modules bind to through the [`fabric::Fabric`] trait, and (growing) the SCSI
//! emulation and backends. Pure protocol logic lives in `proto/` and is tested on the host too.

/// rtarget's FFI layer (bindings, C helpers and their safe wrappers), shared with fabrics.
#[path = "../rust/rt.rs"]
pub mod rt;

/// Pure protocol logic, also built and tested on the host (`target_core/proto`).
pub mod proto {
    #[path = "../proto/src/cdb.rs"]
    pub mod cdb;
    #[path = "../proto/src/command.rs"]
    pub mod command;
    #[path = "../proto/src/pi.rs"]
    pub mod pi;
    #[path = "../proto/src/pr.rs"]
    pub mod pr;
    #[path = "../proto/src/sense.rs"]
    pub mod sense;
    #[path = "../proto/src/spc.rs"]
    pub mod spc;
    #[path = "../proto/src/xcopy.rs"]
    pub mod xcopy;
}

pub mod acl;
pub mod backend;
/// The LIO-compatible configfs tree.
#[path = "../configfs/mod.rs"]
mod cfs;
pub mod cmd;
pub mod device;
mod dispatch;
pub mod fabric;
pub mod lun;
pub(crate) mod reservation;
pub(crate) mod sanitize;
pub(crate) mod sbc;
pub mod session;
pub mod tmf;
pub mod ua;
pub(crate) mod xcopy;

use kernel::prelude::*;

module! {
    type: RtargetCore,
    name: "rtarget_core",
    authors: ["rtarget developers"],
    description: "rtarget storage target core (LIO-compatible configfs, SCSI emulation, backends)",
    license: "GPL",
}

struct RtargetCore {
    // Dropped in declaration order: configfs (and every device) first, then the workqueue.
    _configfs: rt::configfs::Subsystem,
    _io_wq: rt::io::IoWorkqueue,
}

impl Drop for RtargetCore {
    fn drop(&mut self) {
        rt::globals::exit();
    }
}

impl kernel::Module for RtargetCore {
    fn init(module: &'static ThisModule) -> Result<Self> {
        rt::globals::init();
        let io_wq = rt::io::io_workqueue()?;
        let configfs = cfs::register(module)?;
        pr_info!("rtarget core {} loaded\n", cfs::TARGET_CORE_VERSION);
        Ok(RtargetCore {
            _configfs: configfs,
            _io_wq: io_wq,
        })
    }
}

#[kunit_tests(rtarget_core_cdb)]
mod tests {
    use super::proto::cdb::{Dir, RwCdb, READ_10};
    use super::proto::sense::Sense;

    /// The kernel's CRC library (the guard of protection information) through our wrapper
    /// agrees with the pure implementation the host tests use.
    #[test]
    fn crc_t10dif_matches_the_pure_one() {
        let data: [u8; 512] = core::array::from_fn(|i| (i * 7) as u8);
        assert_eq!(super::rt::io::crc_t10dif(0, b"123456789"), 0xd0db);
        assert_eq!(
            super::rt::io::crc_t10dif(0, &data),
            super::proto::pi::crc_t10dif(0, &data)
        );
    }

    #[test]
    fn read10_decodes_in_kernel() {
        let c = RwCdb::decode(&[READ_10, 0, 0, 0, 0, 8, 0, 0, 4, 0])
            .unwrap()
            .unwrap();
        assert_eq!((c.dir, c.lba, c.blocks), (Dir::Read, 8, 4));
        assert_eq!(c.check(12, 128, false), Ok(()));
        assert_eq!(c.check(11, 128, false), Err(Sense::lba_out_of_range()));
    }
}
