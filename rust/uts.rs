// SPDX-License-Identifier: GPL-2.0

//! The running kernel's identity (`init_utsname()`), for LIO's `version` strings.

use super::bindings;
use kernel::prelude::*;

fn uts(field: *const kernel::ffi::c_char) -> &'static CStr {
    // SAFETY: the helpers return fields of `init_uts_ns`, NUL-terminated strings that live as
    // long as the kernel. Writers (sethostname) do not touch `release` or `machine`.
    unsafe { CStr::from_char_ptr(field) }
}

/// `uname -r`.
pub fn release() -> &'static CStr {
    // SAFETY: takes no arguments and returns a pointer into static data.
    uts(unsafe { bindings::rt_uts_release() })
}

/// `uname -m`.
pub fn machine() -> &'static CStr {
    // SAFETY: takes no arguments and returns a pointer into static data.
    uts(unsafe { bindings::rt_uts_machine() })
}
