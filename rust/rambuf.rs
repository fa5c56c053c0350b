// SPDX-License-Identifier: GPL-2.0

//! Zeroed, virtually contiguous memory for the rd_mcp backend, copied to and from commands'
//! scatter-gather lists. Concurrent commands may touch the same bytes (as on a real disk);
//! only C copies and raw-pointer writes ever access them, so no Rust reference aliases a
//! concurrent write.

use super::bindings;
use super::io::Sgl;
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

    /// Zeroes `len` bytes at `pos`. EINVAL if the range does not lie inside the buffer.
    pub fn zero(&self, pos: u64, len: u64) -> Result {
        self.fill(pos, len, 0)
    }

    /// Sets `len` bytes at `pos` to `byte`. EINVAL if the range does not lie inside the buffer.
    pub fn fill(&self, pos: u64, len: u64, byte: u8) -> Result {
        let (off, len) = self.range(pos, len)?;
        // SAFETY: `off..off + len` lies inside the allocation, which lives as long as `self`;
        // no Rust reference to its bytes exists (type invariant).
        unsafe { core::ptr::write_bytes(self.ptr.add(off), byte, len) };
        Ok(())
    }

    /// Whether the `unit`-byte unit at `pos` holds anything but zeroes, and how many bytes
    /// from `pos` (whole units, at most `len`) share that state. EINVAL out of bounds.
    pub fn extent(&self, pos: u64, len: u64, unit: u32) -> Result<(bool, u64)> {
        let (off, len) = self.range(pos, len)?;
        let unit = (unit as usize).max(1);
        let nonzero = |at: usize| {
            let n = unit.min(off + len - at);
            // SAFETY: `at..at + n` lies inside the allocation (checked by `range`), whose bytes
            // are only read here by C, never through a Rust reference (type invariant).
            !unsafe { bindings::memchr_inv(self.ptr.add(at).cast(), 0, n) }.is_null()
        };
        let first = nonzero(off);
        let mut at = off;
        while at < off + len && nonzero(at) == first {
            at += unit;
        }
        Ok((first, (at.min(off + len) - off) as u64))
    }

    /// `pos..pos + len` as an in-bounds offset and length.
    fn range(&self, pos: u64, len: u64) -> Result<(usize, usize)> {
        let off = usize::try_from(pos).map_err(|_| EINVAL)?;
        let len = usize::try_from(len).map_err(|_| EINVAL)?;
        match off.checked_add(len) {
            Some(end) if end <= self.len => Ok((off, len)),
            _ => Err(EINVAL),
        }
    }

    /// Copies `len` bytes between the start of `sgl` and this buffer at `pos`: into the
    /// scatterlist if `to_sgl` (a READ), else from it (a WRITE). EINVAL if the range does not
    /// lie inside the buffer or the scatterlist.
    pub fn transfer(&self, sgl: &Sgl, pos: u64, len: u64, to_sgl: bool) -> Result {
        let (off, len) = self.range(pos, len)?;
        if len > sgl.len() as usize {
            return Err(EINVAL);
        }
        let (sg, nents, _) = sgl.to_raw_parts();
        // SAFETY: `off..off + len` lies inside the allocation, which lives as long as `self`, and its
        // bytes are only accessed by C copies; `sgl` is valid (its invariant) and holds at
        // least `len` bytes.
        unsafe {
            let mem = self.ptr.add(off);
            if to_sgl {
                bindings::rt_io_sg_copy_from_buf(sg, nents, 0, mem.cast(), len);
            } else {
                bindings::rt_io_sg_copy_to_buf(sg, nents, 0, mem.cast(), len);
            }
        }
        Ok(())
    }
}
