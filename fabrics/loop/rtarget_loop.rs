// SPDX-License-Identifier: GPL-2.0

//! rtarget_loop: the loopback fabric (LIO's `tcm_loop`). It registers with rtarget_core through
//! the [`rtarget_core::fabric::Fabric`] trait; LUNs linked under `target/loopback` will appear
//! as local SCSI disks.

use kernel::prelude::*;
use rtarget_core::fabric::{self, Fabric};

module! {
    type: RtargetLoop,
    name: "rtarget_loop",
    authors: ["rtarget developers"],
    description: "rtarget loopback fabric (tcm_loop compatible)",
    license: "GPL",
}

struct Loopback;

impl Fabric for Loopback {
    fn name(&self) -> &'static CStr {
        c"loopback"
    }

    fn version(&self) -> &'static CStr {
        c"TCM Loopback Fabric module v1.0 (rtarget)"
    }
}

static LOOPBACK: Loopback = Loopback;

struct RtargetLoop {
    _registration: fabric::Registration,
}

impl kernel::Module for RtargetLoop {
    fn init(module: &'static ThisModule) -> Result<Self> {
        Ok(RtargetLoop { _registration: fabric::register(&LOOPBACK, module)? })
    }
}

#[kunit_tests(rtarget_loop_bound)]
mod tests {
    use super::*;

    /// The core reaches this module's `Fabric` implementation through its vtable.
    #[test]
    fn core_calls_back_through_the_trait() {
        assert_eq!(fabric::version_of(c"loopback"), Some(LOOPBACK.version()));
    }
}
