// SPDX-License-Identifier: GPL-2.0

//! rtarget's own FFI layer: bindings from our bindgen run, and safe wrappers over them and over
//! the C helpers in `helpers.c`. Every `unsafe` of rtarget lives under `rust/`.
//!
//! Compiled into `rtarget_core` (by `#[path]`) and re-exported as `rtarget_core::rt`, so fabric
//! modules use these wrappers without linking their own copy.

/// Raw bindings for `bindings.h`. Types the allowlist leaves out resolve to the kernel's own,
/// so pointers stay type-compatible with `kernel::bindings`.
#[allow(
    unnecessary_transmutes,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    improper_ctypes,
    unreachable_pub,
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::pedantic,
    clippy::restriction,
    clippy::nursery
)]
pub mod bindings {
    pub use kernel::bindings::*;
    use kernel::ffi;
    include!("bindings_generated.rs");
}

pub mod cmd_pool;
pub mod cmd_ref;
pub mod configfs;
pub mod crypto;
pub(crate) mod globals;
pub mod io;
pub mod live_ref;
pub mod module_ref;
pub mod net;
pub mod rambuf;
pub mod scsi_host;
pub mod thread;
pub mod uts;
pub mod vfs;
