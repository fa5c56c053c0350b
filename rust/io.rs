// SPDX-License-Identifier: GPL-2.0

//! Backend I/O for the fileio and iblock backends: a command's scatterlist read from or written
//! to a file ([`BackingFile`]) or a block device ([`BlockDev`]), completed asynchronously
//! through the command's [`IoSlot`].
//!
//! # Contexts
//!
//! - Opening, closing (dropping), `submit`, `rw_sync`, `fsync_range`, `punch_hole`,
//!   `zero_range`, `discard`, `write_zeroes` and `flush_sync` may sleep: process context only.
//! - An [`IoSlot`]'s `done` callback runs exactly once per accepted submission, in any context:
//!   hard irq, softirq, a workqueue, or the submitter itself before `submit` returns.
//! - The [`Sgl`] copies, [`IoSlot::new`], the size queries and [`BlockDev::limits`] do not
//!   sleep.
//!
//! # Allocations
//!
//! A submission allocates nothing when its scatterlist has at most [`INLINE_BVECS`] entries
//! (32 KiB of 4 KiB pages): the bvecs and, for a block device, the first bio live in the
//! [`IoSlot`]. Larger lists take a `GFP_NOIO` array (files) or `GFP_NOIO` bios from the block
//! layer's mempool (block devices), freed before `done` runs.
//!
//! C side: `rust/io_helpers.c`, modelled on `drivers/nvme/target/io-cmd-{file,bdev}.c`,
//! `drivers/block/loop.c` and LIO's `target_core_{file,iblock}.c`.

use super::bindings;
use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::error::{from_err_ptr, to_result};
use kernel::prelude::*;
use kernel::str::CString;
use kernel::types::Opaque;

/// Scatterlist entries an I/O maps without allocating.
pub const INLINE_BVECS: u32 = bindings::RT_IO_INLINE_BVECS;

// The C and Rust views of `struct rt_io` agree (the bindings have no layout tests).
const _: () = {
    assert!(core::mem::size_of::<bindings::rt_io>() == bindings::rt_io_layout_RT_IO_SIZE as usize);
    assert!(
        core::mem::align_of::<bindings::rt_io>() == bindings::rt_io_layout_RT_IO_ALIGN as usize
    );
};

/// A command's completion callback: `(io, err)`, where `err` is 0 or a negative errno.
///
/// The engine recovers its command from `io` (the address of its [`IoSlot`]) with
/// `container_of`, or with [`IoSlot::from_raw`]. Called in any context (see the module docs).
pub type DoneFn = unsafe extern "C" fn(io: *mut bindings::rt_io, err: i32);

/// Converts the `err` a [`DoneFn`] receives into a [`Result`].
pub fn done_result(err: i32) -> Result {
    to_result(err)
}

fn loff(v: u64) -> Result<bindings::loff_t> {
    i64::try_from(v).map_err(|_| EINVAL)
}

/// CRC-16/T10-DIF of `data`, continued from `crc` (the kernel's `crc_t10dif_update`): the
/// guard of T10 protection information.
pub fn crc_t10dif(crc: u16, data: &[u8]) -> u16 {
    // SAFETY: `data` is a valid slice for the call.
    unsafe { bindings::rt_crc_t10dif(crc, data.as_ptr(), data.len()) }
}

/// A view of a command's data buffer: a C scatterlist and its first `len` bytes.
///
/// # Invariants
///
/// `sg` is a scatterlist of `nents` entries (chained or not) holding at least `len` bytes,
/// valid, with its pages, for as long as this value or any copy of it is used. Its pages are
/// only accessed through C (copies and I/O), never through Rust references.
#[derive(Clone, Copy)]
pub struct Sgl {
    sg: *mut bindings::scatterlist,
    nents: u32,
    len: u32,
}

// SAFETY: the scatterlist is plain memory described by pointers; any thread may copy to or
// from it, and the engine (by `from_raw`'s contract) keeps it alive while views are in use.
unsafe impl Send for Sgl {}
// SAFETY: as above; `&Sgl` gives nothing beyond what a copy gives.
unsafe impl Sync for Sgl {}

impl Sgl {
    /// An empty view (no scatterlist).
    pub const EMPTY: Sgl = Sgl {
        sg: core::ptr::null_mut(),
        nents: 0,
        len: 0,
    };

    /// The view of the first `len` bytes (all of it if shorter).
    pub fn prefix(&self, len: u32) -> Sgl {
        // INVARIANT: a shorter view of the same list.
        Sgl {
            len: self.len.min(len),
            ..*self
        }
    }

    /// Views the first `len` bytes of the `nents`-entry scatterlist `sg`.
    ///
    /// # Safety
    ///
    /// `sg` must point to `nents` valid entries holding at least `len` bytes, and the list and
    /// its pages must stay valid for as long as the returned value or any copy of it is used
    /// (the engine guarantees this while the command using it is in flight). No Rust reference
    /// may cover the pages' bytes while copies or I/O run.
    pub unsafe fn from_raw(sg: *mut bindings::scatterlist, nents: u32, len: u32) -> Self {
        // INVARIANT: by the function's requirements.
        Sgl { sg, nents, len }
    }

    /// The length of the view, in bytes.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the view is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of scatterlist entries.
    pub fn nents(&self) -> u32 {
        self.nents
    }

    /// The raw scatterlist, its entry count and the view's length.
    pub fn to_raw_parts(&self) -> (*mut bindings::scatterlist, u32, u32) {
        (self.sg, self.nents, self.len)
    }

    /// Bytes available from `offset` up to the end of the view, at most `want`.
    fn avail(&self, offset: usize, want: usize) -> usize {
        (self.len as usize).saturating_sub(offset).min(want)
    }

    /// Copies from the view at `offset` into `buf`; returns the bytes copied (fewer than
    /// `buf.len()` only at the end of the view).
    pub fn copy_from(&self, offset: usize, buf: &mut [u8]) -> usize {
        let n = self.avail(offset, buf.len());
        if n == 0 {
            return 0;
        }
        // SAFETY: by the type invariant the list is valid; `buf` is valid for writes of `n`
        // bytes; `offset + n` lies inside the view.
        unsafe {
            bindings::rt_io_sg_copy_to_buf(self.sg, self.nents, offset, buf.as_mut_ptr().cast(), n)
        }
    }

    /// Copies `buf` into the view at `offset`; returns the bytes copied (fewer than
    /// `buf.len()` only at the end of the view).
    pub fn copy_to(&self, offset: usize, buf: &[u8]) -> usize {
        let n = self.avail(offset, buf.len());
        if n == 0 {
            return 0;
        }
        // SAFETY: by the type invariant the list is valid and its pages are only written by
        // C; `buf` is valid for reads of `n` bytes; `offset + n` lies inside the view.
        unsafe {
            bindings::rt_io_sg_copy_from_buf(self.sg, self.nents, offset, buf.as_ptr().cast(), n)
        }
    }

    /// Sets `len` bytes of the view from `offset` (clamped to the view) to `byte`; returns the
    /// bytes set.
    pub fn fill(&self, offset: usize, len: usize, byte: u8) -> usize {
        let chunk = [byte; 256];
        let mut done = 0;
        while done < len {
            let n = self.copy_to(offset + done, &chunk[..(len - done).min(chunk.len())]);
            if n == 0 {
                break;
            }
            done += n;
        }
        done
    }

    /// Zeroes `len` bytes of the view from `offset` (clamped to the view); returns the bytes
    /// zeroed.
    pub fn zero(&self, offset: usize, len: usize) -> usize {
        let n = self.avail(offset, len);
        if n == 0 {
            return 0;
        }
        // SAFETY: by the type invariant the list is valid; `offset + n` lies inside the view.
        unsafe { bindings::rt_io_sg_zero(self.sg, self.nents, offset, n) }
    }
}

/// Zeroed pages the core owns, as a scatterlist (`sgl_alloc`): the buffer of a command that
/// runs in several steps (VERIFY with BYTCHK, COMPARE AND WRITE). Freed when dropped.
///
/// # Invariants
///
/// `sgl` views a list from `sgl_alloc` covering its whole length, freed only in `drop`.
pub struct ScratchSgl {
    sgl: Sgl,
}

impl ScratchSgl {
    /// Allocates `len` zeroed bytes (process context: may sleep).
    pub fn new(len: u32) -> Result<Self> {
        if len == 0 {
            return Err(EINVAL);
        }
        let mut nents = 0u32;
        // SAFETY: a plain allocation; `nents` is valid for writes.
        let sg = unsafe {
            bindings::sgl_alloc(
                u64::from(len),
                bindings::GFP_KERNEL | bindings::__GFP_ZERO,
                &mut nents,
            )
        };
        if sg.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `sg` has `nents` entries covering `len` bytes until `sgl_free` in `drop`;
        // its pages are only touched through `Sgl`'s C copies and I/O.
        let sgl = unsafe { Sgl::from_raw(sg, nents, len) };
        // INVARIANT: as above.
        Ok(Self { sgl })
    }

    /// A view of the buffer. It is valid while this value lives: the engine keeps the scratch
    /// buffer in its command until the command's last step is done with it.
    pub fn sgl(&self) -> Sgl {
        self.sgl
    }
}

impl Drop for ScratchSgl {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the list came from `sgl_alloc` and is freed once.
        unsafe { bindings::sgl_free(self.sgl.sg) }
    }
}

// SAFETY: the buffer is plain memory owned by this value.
unsafe impl Send for ScratchSgl {}

/// Creates the I/O workqueue that [`IoSlot`] deferrals run on; the returned guard destroys
/// it (after draining it) when dropped, at module unload.
pub fn io_workqueue() -> Result<IoWorkqueue> {
    // SAFETY: called once, at module load.
    to_result(unsafe { bindings::rt_io_wq_init() })?;
    Ok(IoWorkqueue(()))
}

/// Owns the I/O workqueue (see [`io_workqueue`]).
pub struct IoWorkqueue(());

impl Drop for IoWorkqueue {
    fn drop(&mut self) {
        // SAFETY: created by `io_workqueue`; at unload no command can queue to it any more.
        unsafe { bindings::rt_io_wq_exit() }
    }
}

/// The asynchronous I/O state of one command (`struct rt_io`), embedded in the command.
///
/// It holds the inline bvecs and the inline bio, so it must stay pinned; it carries one
/// submission at a time, whose end is reported to the [`DoneFn`] given at initialisation.
///
/// # Invariants
///
/// The `rt_io` was initialised by `rt_io_init` (only [`IoSlot::new`] creates an `IoSlot`).
#[repr(transparent)]
pub struct IoSlot(Opaque<bindings::rt_io>);

// SAFETY: the C state is only touched by the submission functions, whose contracts give one
// submitter at a time, and by the completion, which the kernel runs once per submission; the
// callback is a plain function.
unsafe impl Send for IoSlot {}
// SAFETY: `&IoSlot` only exposes the raw pointer and `unsafe` submissions (see above).
unsafe impl Sync for IoSlot {}

impl IoSlot {
    /// An initialiser for a slot whose submissions end in `done`. Does not sleep.
    pub fn new(done: DoneFn) -> impl PinInit<Self> {
        let init = move |slot: *mut Self| {
            let io = Opaque::cast_into(slot.cast::<Opaque<bindings::rt_io>>());
            // SAFETY: `io` points to memory for an `rt_io` (the whole transparent slot).
            unsafe { bindings::rt_io_init(io, Some(done)) };
            Ok(())
        };
        // SAFETY: `init` initialises the whole slot (`rt_io_init` fills every byte of the
        // `rt_io`), never fails, and does not move it.
        unsafe { pin_init::pin_init_from_closure(init) }
    }

    /// The C `struct rt_io`.
    pub fn as_raw(&self) -> *mut bindings::rt_io {
        self.0.get()
    }

    /// The slot whose `struct rt_io` is `io`, e.g. the argument of a [`DoneFn`].
    ///
    /// # Safety
    ///
    /// `io` must be [`IoSlot::as_raw`] of a slot that stays alive for `'a`.
    pub unsafe fn from_raw<'a>(io: *mut bindings::rt_io) -> &'a IoSlot {
        // SAFETY: `IoSlot` is a transparent wrapper of `Opaque<rt_io>`, itself transparent;
        // the slot lives for `'a` by the function's requirements.
        unsafe { &*Opaque::cast_from(io).cast::<IoSlot>() }
    }
}

/// A backing file for the fileio backend: a regular file or a block device node, opened with
/// `filp_open` (`O_RDWR | O_LARGEFILE`, plus `O_DIRECT` and `O_CREAT` on request).
///
/// # Invariants
///
/// `file` is a file reference from `rt_file_open`, put (`fput`) only on drop; it is a regular
/// file or a block device with `read_iter` and `write_iter`.
pub struct BackingFile {
    file: NonNull<bindings::file>,
}

// SAFETY: a `struct file` reference may be used and put from any thread.
unsafe impl Send for BackingFile {}
// SAFETY: the VFS serialises concurrent reads, writes and fsyncs of one file itself.
unsafe impl Sync for BackingFile {}

impl BackingFile {
    /// Opens `path` read-write; with `direct`, with `O_DIRECT` (`EINVAL` if the file system
    /// cannot do direct I/O). With `create_size`, creates a missing file (mode 0600, as LIO's
    /// `fd_configure_device`) and grows a regular file shorter than that size to it (sparse;
    /// never shrinks); without, the file must exist. Anything but a regular file or a block
    /// device is refused with `EINVAL`. Sleeps; uses the caller's credentials and root.
    pub fn open(path: &CStr, direct: bool, create_size: Option<u64>) -> Result<Self> {
        let size = create_size.map(loff).transpose()?;
        // SAFETY: `path` is NUL-terminated and valid for the call.
        let raw = unsafe { bindings::rt_file_open(path.as_char_ptr(), direct, size.is_some()) };
        let file = NonNull::new(from_err_ptr(raw)?).ok_or(EINVAL)?;
        // INVARIANT: `rt_file_open` returned a reference to a file of an accepted kind.
        let me = BackingFile { file };
        if let Some(size) = size {
            // SAFETY: the file is open.
            to_result(unsafe { bindings::rt_file_extend(me.raw(), size) })?;
        }
        Ok(me)
    }

    fn raw(&self) -> *mut bindings::file {
        self.file.as_ptr()
    }

    /// Grows a regular file shorter than `size` to it (sparse; never shrinks). Sleeps.
    pub fn extend(&self, size: u64) -> Result {
        // SAFETY: the file is open.
        to_result(unsafe { bindings::rt_file_extend(self.raw(), loff(size)?) })
    }

    /// Whether `pos` holds data (else it lies in a hole), and how many bytes from `pos` share
    /// that state, at most `len` (SEEK_DATA / SEEK_HOLE; file systems without holes report
    /// everything as data). Sleeps.
    pub fn extent(&self, pos: u64, len: u64) -> Result<(bool, u64)> {
        let end = pos.saturating_add(len);
        let seek = |whence: u32| -> Result<u64> {
            // SAFETY: the file is open.
            let r = unsafe { bindings::rt_file_seek(self.raw(), loff(pos)?, whence as i32) };
            if r < 0 {
                Err(Error::from_errno(r as i32))
            } else {
                Ok(r as u64)
            }
        };
        let data = match seek(bindings::SEEK_DATA) {
            Ok(d) => d,
            // No data from `pos` to the end of the file: all hole.
            Err(e) if e == ENXIO => return Ok((false, len)),
            Err(e) => return Err(e),
        };
        if data > pos {
            return Ok((false, data.min(end) - pos));
        }
        let hole = seek(bindings::SEEK_HOLE)?;
        Ok((true, hole.clamp(pos, end) - pos))
    }

    /// Size in bytes: the file's, or the block device's capacity. Does not sleep.
    pub fn size(&self) -> u64 {
        // SAFETY: the file is open.
        let s = unsafe { bindings::rt_file_size(self.raw()) };
        u64::try_from(s).unwrap_or(0)
    }

    /// Whether the file is a block device node. Does not sleep.
    pub fn is_blockdev(&self) -> bool {
        // SAFETY: the file is open.
        unsafe { bindings::rt_file_is_blockdev(self.raw()) }
    }

    /// The logical block size of a block device; `None` for a regular file (LIO then uses the
    /// configured block size). Does not sleep.
    pub fn logical_block_size(&self) -> Option<u32> {
        // SAFETY: the file is open.
        let lbs = unsafe { bindings::rt_file_logical_block_size(self.raw()) };
        (lbs != 0).then_some(lbs)
    }

    /// Whether the file was opened with `O_DIRECT`. Does not sleep.
    pub fn is_direct(&self) -> bool {
        // SAFETY: the file is open.
        unsafe { bindings::rt_file_is_direct(self.raw()) }
    }

    /// Whether the file system supports `O_DIRECT` for this file (`FMODE_CAN_ODIRECT`).
    pub fn can_direct(&self) -> bool {
        // SAFETY: the file is open.
        unsafe { bindings::rt_file_can_direct(self.raw()) }
    }

    /// Writes back and waits for bytes `start..=end` (`end` is inclusive; `u64::MAX`, or
    /// anything from `i64::MAX` on, means to the end of the file), datasync as LIO. Sleeps.
    pub fn fsync_range(&self, start: u64, end: u64) -> Result {
        let start = loff(start)?;
        let end = loff(end).unwrap_or(i64::MAX);
        // SAFETY: the file is open.
        to_result(unsafe { bindings::rt_file_fsync_range(self.raw(), start, end) })
    }

    /// Deallocates `len` bytes at `off`, keeping the size (`FALLOC_FL_PUNCH_HOLE |
    /// FALLOC_FL_KEEP_SIZE`); `EOPNOTSUPP` if the file system cannot. Sleeps.
    pub fn punch_hole(&self, off: u64, len: u64) -> Result {
        // SAFETY: the file is open.
        to_result(unsafe { bindings::rt_file_punch_hole(self.raw(), loff(off)?, loff(len)?) })
    }

    /// Zeroes `len` bytes at `off`, keeping the size (`FALLOC_FL_ZERO_RANGE |
    /// FALLOC_FL_KEEP_SIZE`); `EOPNOTSUPP` if the file system cannot (falling back to writing
    /// zeroes is the caller's business). Sleeps.
    pub fn zero_range(&self, off: u64, len: u64) -> Result {
        // SAFETY: the file is open.
        to_result(unsafe { bindings::rt_file_zero_range(self.raw(), loff(off)?, loff(len)?) })
    }

    /// Reads (`!write`) or writes all of `sgl` at byte `pos`, synchronously (for buffered I/O,
    /// from a workqueue); a FUA write is followed by a datasync of its range. A short read of
    /// a regular file is padded with zeroes (as LIO); any other short transfer is `EIO`.
    /// Returns the bytes transferred (`sgl.len()`). Sleeps; allocates (`GFP_NOIO`) only when
    /// `sgl` has more than [`INLINE_BVECS`] entries.
    pub fn rw_sync(&self, write: bool, pos: u64, sgl: &Sgl, fua: bool) -> Result<usize> {
        if sgl.is_empty() {
            return Ok(0);
        }
        // SAFETY: the file is open; by `Sgl`'s invariant the list is valid and its pages are
        // only accessed through C.
        let ret = unsafe {
            bindings::rt_file_rw_sync(
                self.raw(),
                write,
                loff(pos)?,
                sgl.sg,
                sgl.nents,
                sgl.len as usize,
                fua,
            )
        };
        if ret < 0 {
            Err(Error::from_errno(ret as i32))
        } else {
            Ok(ret as usize)
        }
    }

    /// Starts a read or write of all of `sgl` at byte `pos` (FUA writes with `IOCB_DSYNC`),
    /// asynchronously on an `O_DIRECT` file: `io`'s `done` gets 0, the errno, or `EIO` for a
    /// short transfer. On a buffered file the same call completes synchronously. Returns `Ok`
    /// when `done` will be (or already was) called, an error (`EINVAL` for an empty or too
    /// short `sgl`, `ENOMEM`) when it will not. Sleeps (file system locks, freeze protection,
    /// the `GFP_NOIO` bvec array of lists longer than [`INLINE_BVECS`]).
    ///
    /// # Safety
    ///
    /// `io` belongs to a command in flight and carries no other submission until its `done`
    /// runs; `io` stays valid and pinned until then; `self` (the file) outlives the I/O.
    pub unsafe fn submit(
        &self,
        io: &IoSlot,
        write: bool,
        pos: u64,
        sgl: &Sgl,
        fua: bool,
    ) -> Result {
        // SAFETY: the file is open; `io` is initialised and free, and outlives the I/O with
        // `self`, by the function's requirements; the list is valid by `Sgl`'s invariant.
        to_result(unsafe {
            bindings::rt_file_submit(
                io.as_raw(),
                self.raw(),
                write,
                loff(pos)?,
                sgl.sg,
                sgl.nents,
                sgl.len as usize,
                fua,
            )
        })
    }
}

impl Drop for BackingFile {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the reference is ours; no I/O is in flight (`submit`'s
        // contract).
        unsafe { bindings::rt_file_close(self.raw()) };
    }
}

/// A block device's limits, read at open or reconfiguration (as LIO's iblock reads them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BdevLimits {
    /// Capacity in 512-byte sectors.
    pub nr_sectors: u64,
    /// Logical block size in bytes.
    pub logical_block_size: u32,
    /// Physical block size in bytes.
    pub physical_block_size: u32,
    /// Largest I/O the hardware takes, in 512-byte sectors (`queue_max_hw_sectors`).
    pub max_hw_sectors: u32,
    /// Minimum I/O size in bytes.
    pub io_min: u32,
    /// Optimal I/O size in bytes (0: not reported).
    pub io_opt: u32,
    /// Offset of the first aligned LBA in bytes (0 when misaligned, as LIO).
    pub alignment_offset: u32,
    /// Largest discard in 512-byte sectors (0: no discard).
    pub max_discard_sectors: u32,
    /// Discard granularity in bytes.
    pub discard_granularity: u32,
    /// Discard alignment in bytes.
    pub discard_alignment: u32,
    /// Largest WRITE ZEROES offload in 512-byte sectors (0: none).
    pub max_write_zeroes_sectors: u32,
    /// Largest atomic write in bytes (0: no atomic writes).
    pub atomic_write_max_bytes: u32,
    /// Atomic write unit (granularity and alignment) in bytes (0: no atomic writes).
    pub atomic_write_unit_min_bytes: u32,
    /// Request queue depth (LIO's `hw_queue_depth`).
    pub nr_requests: u32,
    /// Volatile write cache enabled.
    pub write_cache: bool,
    /// Native FUA support.
    pub fua: bool,
    /// Non-rotational.
    pub nonrot: bool,
    /// Read-only device.
    pub read_only: bool,
}

/// A block device for the iblock backend, opened with `bdev_file_open_by_path`.
///
/// # Invariants
///
/// `file` is a block device file from `rt_bdev_open`, put only on drop; `bdev` is its block
/// device. If `holder` is set, the open was exclusive with that allocation's address as holder.
pub struct BlockDev {
    file: NonNull<bindings::file>,
    bdev: NonNull<bindings::block_device>,
    holder: Option<KBox<u64>>,
}

// SAFETY: the block layer may be called on a device from any thread; the file reference may be
// put from any thread; the holder is only an address.
unsafe impl Send for BlockDev {}
// SAFETY: every `&self` method calls thread-safe block layer functions.
unsafe impl Sync for BlockDev {}

impl BlockDev {
    /// Opens the block device at `path`, read-only or read-write; `exclusive` claims it (as
    /// LIO's `udev_path` with exclusive open: other exclusive openers, mounts included, get
    /// `EBUSY`). Sleeps.
    pub fn open(path: &CStr, readonly: bool, exclusive: bool) -> Result<Self> {
        let holder = if exclusive {
            Some(KBox::new(0u64, GFP_KERNEL)?)
        } else {
            None
        };
        let holder_ptr = holder.as_deref().map_or(core::ptr::null_mut(), |h| {
            core::ptr::from_ref(h).cast_mut().cast::<c_void>()
        });
        // SAFETY: `path` is NUL-terminated and valid for the call; the holder, if any, is a
        // live allocation that `BlockDev` keeps until after the file is put.
        let raw = unsafe { bindings::rt_bdev_open(path.as_char_ptr(), readonly, holder_ptr) };
        let file = NonNull::new(from_err_ptr(raw)?).ok_or(EINVAL)?;
        // SAFETY: `file` is a block device file.
        let bdev = unsafe { bindings::rt_bdev_of(file.as_ptr()) };
        let Some(bdev) = NonNull::new(bdev) else {
            // SAFETY: the reference is ours and unused.
            unsafe { bindings::rt_bdev_close(file.as_ptr()) };
            return Err(EINVAL);
        };
        // INVARIANT: `file` and `bdev` come from the open above, with `holder`.
        Ok(BlockDev { file, bdev, holder })
    }

    fn bdev(&self) -> *mut bindings::block_device {
        self.bdev.as_ptr()
    }

    /// The device's name as the kernel prints it (`sdb`, `dm-0`, `ram0`).
    pub fn name(&self) -> Result<CString> {
        let mut buf = [0u8; 64];
        // SAFETY: the device is open; `buf` is valid for writes of its length.
        unsafe { bindings::rt_bdev_name(self.bdev(), buf.as_mut_ptr().cast(), buf.len()) };
        let n = buf.iter().position(|&c| c == 0).unwrap_or(buf.len() - 1);
        let s = core::str::from_utf8(&buf[..n]).map_err(|_| EINVAL)?;
        CString::try_from_fmt(fmt!("{s}"))
    }

    /// The device's major and minor numbers.
    pub fn dev_numbers(&self) -> (u32, u32) {
        let (mut major, mut minor) = (0, 0);
        // SAFETY: the device is open; both pointers are valid for writes.
        unsafe { bindings::rt_bdev_numbers(self.bdev(), &mut major, &mut minor) };
        (major, minor)
    }

    /// Whether the open was exclusive.
    pub fn is_exclusive(&self) -> bool {
        self.holder.is_some()
    }

    /// The device's current limits and capacity. Does not sleep.
    pub fn limits(&self) -> BdevLimits {
        let mut l = bindings::rt_bdev_limits::default();
        // SAFETY: the device is open; `l` is valid for writes.
        unsafe { bindings::rt_bdev_get_limits(self.bdev(), &mut l) };
        BdevLimits {
            nr_sectors: l.nr_sectors,
            logical_block_size: l.logical_block_size,
            physical_block_size: l.physical_block_size,
            max_hw_sectors: l.max_hw_sectors,
            io_min: l.io_min,
            io_opt: l.io_opt,
            alignment_offset: l.alignment_offset,
            max_discard_sectors: l.max_discard_sectors,
            discard_granularity: l.discard_granularity,
            discard_alignment: l.discard_alignment,
            max_write_zeroes_sectors: l.max_write_zeroes_sectors,
            atomic_write_max_bytes: l.atomic_write_max_bytes,
            atomic_write_unit_min_bytes: l.atomic_write_unit_min_bytes,
            nr_requests: l.nr_requests,
            write_cache: l.write_cache,
            fua: l.fua,
            nonrot: l.nonrot,
            read_only: l.read_only,
        }
    }

    /// Starts a read or write of all of `sgl` at 512-byte `sector`. Writes are `REQ_SYNC |
    /// REQ_IDLE`, plus `REQ_FUA` on every bio with `fua`, which reads ignore (the block layer
    /// refuses it there) and the block layer emulates or drops as the device's cache needs.
    /// With `atomic` (writes only), one `REQ_ATOMIC` bio: a list that would need a second bio
    /// is refused (`EINVAL` in `done`), and so is what the device cannot write atomically.
    /// `io`'s `done` gets 0 or the first bio error (`blk_status_to_errno`). Returns `Ok` when
    /// `done` will be (or already was) called, an error when it will not: `EINVAL` for an
    /// empty `sgl` or a length that is not a multiple of the logical block size, `ENOMEM`. Sleeps (request tags, and
    /// `GFP_NOIO` bios when `sgl` has more than [`INLINE_BVECS`] entries).
    ///
    /// # Safety
    ///
    /// `io` belongs to a command in flight and carries no other submission until its `done`
    /// runs; `io` stays valid and pinned until then; `self` outlives the I/O.
    pub unsafe fn submit(
        &self,
        io: &IoSlot,
        write: bool,
        sector: u64,
        sgl: &Sgl,
        fua: bool,
        atomic: bool,
    ) -> Result {
        let mut flags = 0;
        if fua {
            flags |= bindings::rt_bdev_flag_RT_BDEV_FUA;
        }
        if atomic {
            flags |= bindings::rt_bdev_flag_RT_BDEV_ATOMIC;
        }
        // SAFETY: the device is open; `io` is initialised and free, and outlives the I/O with
        // `self`, by the function's requirements; the list is valid by `Sgl`'s invariant.
        to_result(unsafe {
            bindings::rt_bdev_submit(
                io.as_raw(),
                self.bdev(),
                write,
                sector,
                sgl.sg,
                sgl.nents,
                sgl.len as usize,
                flags,
            )
        })
    }

    /// Starts a cache flush (an empty `REQ_PREFLUSH` write on the slot's inline bio, as nvmet),
    /// asynchronously: `io`'s `done` gets 0 or the errno. Without a volatile write cache the
    /// block layer completes it at once. Always `Ok` (`done` is always called). Does not
    /// allocate; may sleep for a tag.
    ///
    /// # Safety
    ///
    /// As for [`BlockDev::submit`].
    pub unsafe fn flush(&self, io: &IoSlot) -> Result {
        // SAFETY: the device is open; `io` is free and outlives the flush (function's
        // requirements).
        to_result(unsafe { bindings::rt_bdev_flush(io.as_raw(), self.bdev()) })
    }

    /// Writes all of `sgl` at 512-byte `sector` and waits for it (as [`BlockDev::submit`],
    /// with its own slot). Sleeps and allocates (`GFP_KERNEL`).
    pub fn write_sync(&self, sector: u64, sgl: &Sgl) -> Result {
        // SAFETY: the device is open; the list is valid by `Sgl`'s invariant and, borrowed,
        // outlives the call, which returns only once the write is finished.
        to_result(unsafe {
            bindings::rt_bdev_write_sync(self.bdev(), sector, sgl.sg, sgl.nents, sgl.len as usize)
        })
    }

    /// Flushes the write cache synchronously (`blkdev_issue_flush`). Sleeps.
    pub fn flush_sync(&self) -> Result {
        // SAFETY: the device is open.
        to_result(unsafe { bindings::rt_bdev_flush_sync(self.bdev()) })
    }

    /// Discards `nr` 512-byte sectors at `sector` (`blkdev_issue_discard`, as LIO's UNMAP).
    /// Sleeps and allocates (`GFP_KERNEL`).
    pub fn discard(&self, sector: u64, nr: u64) -> Result {
        // SAFETY: the device is open.
        to_result(unsafe { bindings::rt_bdev_discard(self.bdev(), sector, nr) })
    }

    /// Zeroes `nr` 512-byte sectors at `sector`, keeping them allocated (`blkdev_issue_zeroout`
    /// with `BLKDEV_ZERO_NOUNMAP`, as LIO's WRITE SAME of zeroes); falls back to writing zero
    /// pages. Sleeps and allocates (`GFP_KERNEL`).
    pub fn write_zeroes(&self, sector: u64, nr: u64) -> Result {
        // SAFETY: the device is open.
        to_result(unsafe { bindings::rt_bdev_write_zeroes(self.bdev(), sector, nr) })
    }
}

impl Drop for BlockDev {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the file is ours; no I/O is in flight (`submit`'s
        // contract). The claim is yielded here, before `holder` is freed.
        unsafe { bindings::rt_bdev_close(self.file.as_ptr()) };
    }
}
