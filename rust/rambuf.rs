// SPDX-License-Identifier: GPL-2.0

//! Zeroed, virtually contiguous memory for the rd_mcp backend, copied to and from commands'
//! scatter-gather lists. Concurrent commands may touch the same bytes (as on a real disk);
//! only C copies ever access them, so no Rust reference aliases a concurrent write.

use super::scsi_host::Command;
use kernel::alloc::flags::__GFP_ZERO;
use kernel::prelude::*;

/// A RAM disk's backing store.
///
/// # Invariants
///
/// `ptr` is the buffer of `_mem`, which holds `len` zero-initialised bytes and is never
/// accessed through a Rust reference after construction.
pub struct RamBuf {
    _mem: VVec<u8>,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the buffer is plain memory; accesses go through C copies (see the module docs).
unsafe impl Send for RamBuf {}
// SAFETY: as above.
unsafe impl Sync for RamBuf {}

impl RamBuf {
    /// Allocates `len` zeroed bytes.
    pub fn new(len: usize) -> Result<Self> {
        let mut mem = VVec::<u8>::with_capacity(len, GFP_KERNEL | __GFP_ZERO)?;
        // SAFETY: the capacity is `len` and `__GFP_ZERO` initialised every byte.
        unsafe { mem.inc_len(len) };
        let ptr = mem.as_mut_ptr();
        Ok(RamBuf {
            _mem: mem,
            ptr,
            len,
        })
    }

    /// Copies `len` bytes between `cmd`'s data buffer at `data_off` and this buffer at `off`:
    /// into the command if `to_cmd` (a READ), else from it (a WRITE). Returns the bytes copied.
    pub fn transfer(
        &self,
        cmd: &mut Command<'_>,
        data_off: usize,
        off: usize,
        len: usize,
        to_cmd: bool,
    ) -> Result<usize> {
        let end = off.checked_add(len).ok_or(EINVAL)?;
        if end > self.len {
            return Err(EINVAL);
        }
        // SAFETY: `off..end` lies inside the allocation, which lives as long as `self`; the
        // bytes are only accessed by C copies.
        Ok(unsafe { cmd.copy_raw(data_off, self.ptr.add(off), len, to_cmd) })
    }
}
