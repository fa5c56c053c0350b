// SPDX-License-Identifier: GPL-2.0

//! rtarget_core's process-wide state. Only configuration paths take these locks; the I/O path
//! never does.

use crate::fabric::FabricEntry;
use kernel::prelude::*;

kernel::sync::global_lock! {
    // SAFETY: `init` runs first thing in rtarget_core's module init, before any other use.
    pub(crate) unsafe(uninit) static FABRICS: Mutex<KVec<FabricEntry>> = KVec::new();
}

/// Initialises the globals. Call once, at the start of module init.
pub(crate) fn init() {
    // SAFETY: called once from module init, before anything can reach `FABRICS`.
    unsafe { FABRICS.init() };
}

/// Frees what the globals hold. Call once, at module exit, when no fabric is registered.
pub(crate) fn exit() {
    // A static is never dropped: give back the registry's buffer (kmemleak would report it).
    *FABRICS.lock() = KVec::new();
}
