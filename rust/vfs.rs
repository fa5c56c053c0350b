// SPDX-License-Identifier: GPL-2.0

//! Path checks for configuration writes (LIO's `dbroot`).

use super::bindings;
use kernel::error::to_result;
use kernel::prelude::*;

/// Succeeds if `path` names an existing directory; otherwise the lookup's errno.
pub fn check_dir(path: &CStr) -> Result {
    // SAFETY: `path` is NUL-terminated and valid for the call.
    to_result(unsafe { bindings::rt_path_is_dir(path.as_char_ptr()) })
}
