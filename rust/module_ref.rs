// SPDX-License-Identifier: GPL-2.0

//! A counted reference to a loaded module (`try_module_get`/`module_put`).

use super::bindings;
use kernel::prelude::*;

/// Holds a reference on a module, so it cannot be unloaded while the reference lives.
///
/// # Invariants
///
/// `0` is the module this reference was taken on (null for built-in code), and one
/// `try_module_get` on it succeeded and has not been balanced yet.
pub struct ModuleRef(*mut bindings::module);

// SAFETY: a module reference may be dropped from any thread; it is only a counter.
unsafe impl Send for ModuleRef {}
// SAFETY: `ModuleRef` has no `&self` methods that touch the module.
unsafe impl Sync for ModuleRef {}

impl ModuleRef {
    /// Takes a reference on `module`. Fails with `ENODEV` if the module is being unloaded.
    pub fn get(module: &'static ThisModule) -> Result<Self> {
        let ptr = module.as_ptr();
        // SAFETY: `ThisModule` wraps a valid module pointer, or null for built-in code; both
        // are accepted by `try_module_get`.
        if unsafe { bindings::rt_try_module_get(ptr) } {
            // INVARIANT: the get above succeeded.
            Ok(ModuleRef(ptr))
        } else {
            Err(ENODEV)
        }
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: by the type invariant, a reference on this module is held.
        unsafe { bindings::rt_module_put(self.0) };
    }
}

/// Asks kmod to load the module `name` (`request_module`), waiting for it. Errors are the
/// loader's; a missing module is not fatal for callers that re-check what they need.
pub fn request_module(name: &CStr) -> Result {
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let ret = unsafe { bindings::rt_request_module(name.as_char_ptr()) };
    match ret {
        0 => Ok(()),
        r if r < 0 => Err(Error::from_errno(r)),
        // modprobe ran and failed.
        _ => Err(ENOENT),
    }
}
