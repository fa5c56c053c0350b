// SPDX-License-Identifier: GPL-2.0

//! The unique handle to a command in flight, and the one place the core's [`Cmd`] memory is
//! reached through raw pointers.
//!
//! A fabric's command slots are pre-allocated and pinned (the loopback fabric's live in the
//! `scsi_cmnd` private area). Whoever holds the [`CmdRef`] (fabric, core or backend) is the only
//! one touching [`Cmd::data`]; others (task management) read only the atomics of [`Cmd`].

use crate::cmd::{state, Cmd, CmdData, DataDir, FabricOps};
use crate::lun::Lun;
use crate::proto::sense::Sense;
use crate::rt::io::{BackingFile, BlockDev, IoSlot, Sgl};
use crate::rt::live_ref::LiveRef;
use crate::session::Session;
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::sync::atomic::ordering;

// SAFETY: `Cmd::data` is only accessed through the unique `CmdRef` (see the module docs); all
// other fields are atomics or the `IoSlot`, which the `CmdRef` holder alone submits.
unsafe impl Sync for Cmd {}
// SAFETY: as above; a `Cmd` holds `Arc`s and plain data, all `Send`.
unsafe impl Send for Cmd {}

/// The unique owner of a command between [`CmdRef::start`] and [`CmdRef::release`].
///
/// # Invariants
///
/// `ptr` points to a pinned, initialised [`Cmd`] whose state has `ACTIVE` set, that stays valid
/// until this handle is released, and no other `CmdRef` to it exists.
pub struct CmdRef {
    ptr: NonNull<Cmd>,
}

// SAFETY: the handle is unique and the command is `Send`.
unsafe impl Send for CmdRef {}

/// What a fabric supplies to start a command.
pub struct CmdSetup<'a> {
    /// The CDB (at most [`crate::cmd::MAX_CDB`] bytes are kept).
    pub cdb: &'a [u8],
    /// Data direction.
    pub dir: DataDir,
    /// The fabric's data buffer.
    pub sgl: Sgl,
    /// The fabric's protection information buffer, when it carries one apart from the data
    /// (DIX); `Sgl::EMPTY` otherwise.
    pub prot_sgl: Sgl,
    /// The initiator asked the fabric to generate (WRITE) or check and drop (READ) the
    /// protection information the CDB's RDPROTECT / WRPROTECT names, which the core then does.
    pub pi_offload: bool,
    /// Whether the WRITE data is already in `sgl` (loopback); if not, the core asks for it
    /// with `FabricOps::write_pending`.
    pub data_ready: bool,
    /// The fabric's task tag.
    pub tag: u64,
    /// The I_T nexus.
    pub session: LiveRef<Session>,
    /// The addressed LUN, or `None` when the nexus sees none at that number (the core
    /// answers INQUIRY and REPORT LUNS there, as LIO's virtual LUN 0).
    pub lun: Option<LiveRef<Lun>>,
    /// The LUN number as the initiator addressed it.
    pub lun_index: u64,
    /// The nexus may not write the LUN (a write-protected mapping).
    pub read_only: bool,
    /// The fabric reports residuals both ways (iSCSI's O and U bits): a READ asking more than
    /// `sgl` holds transfers what fits, as LIO does for fabrics whose buffers it allocates,
    /// and a WRITE whose `sgl` is not its CDB's length writes the whole blocks both hold
    /// (FCP-4's first choice, which libiscsi expects). Without, such a READ is refused
    /// (INVALID FIELD IN CDB) and such a WRITE too (INVALID FIELD IN COMMAND INFORMATION
    /// UNIT), as LIO does for every fabric.
    pub fit_transfers: bool,
    /// Where the command goes back to.
    pub fabric: &'static dyn FabricOps,
    /// The type of the slot's owner, so that only it can take the slot back
    /// ([`CmdRef::origin`]).
    pub origin: core::any::TypeId,
}

impl CmdRef {
    /// Starts a command in slot `ptr` and returns its unique handle.
    ///
    /// # Safety
    ///
    /// `ptr` points to a [`Cmd`] initialised with [`Cmd::new_slot`], pinned, not in flight (no
    /// `CmdRef` to it exists), and valid until the returned handle is released.
    pub unsafe fn start(ptr: NonNull<Cmd>, s: CmdSetup<'_>) -> CmdRef {
        let mut cdb = [0u8; crate::cmd::MAX_CDB];
        let n = s.cdb.len().min(cdb.len());
        cdb[..n].copy_from_slice(&s.cdb[..n]);
        // SAFETY: by the requirements nothing else touches the slot; it is not in flight, so
        // its `data` holds no references (released, or never used) and is overwritten whole.
        let c = unsafe { ptr.as_ref() };
        let prev = c.state.load(ordering::Relaxed);
        if prev & state::ACTIVE != 0 {
            // The fabric reused a slot the core still holds: a fabric bug, and memory the
            // backend may still be using. Say so loudly.
            kernel::warn_on!(true);
        }
        c.lun_index.store(s.lun_index, ordering::Relaxed);
        c.tag.store(s.tag, ordering::Relaxed);
        c.nexus.store(s.session.id(), ordering::Relaxed);
        // SAFETY: as above, we are the only user of `data`.
        unsafe {
            c.data.get().write(CmdData {
                cdb,
                cdb_len: n as u8,
                dir: s.dir,
                sgl: s.sgl,
                prot_sgl: s.prot_sgl,
                pi_offload: s.pi_offload,
                data_ready: s.data_ready,
                tag: s.tag,
                session: Some(s.session),
                lun: s.lun,
                read_only: s.read_only,
                fit_transfers: s.fit_transfers,
                fitted: None,
                overflow: false,
                fabric: Some(s.fabric),
                origin: Some(s.origin),
                status: crate::cmd::GOOD,
                sense: None,
                resid: 0,
                op: crate::backend::Op::None,
                step: None,
            })
        };
        c.state.store(state::next_start(prev), ordering::Release);
        CmdRef { ptr }
    }

    /// The request and result, read-only.
    pub fn data(&self) -> &CmdData {
        // SAFETY: by the invariant this handle is the only one reaching `data`.
        unsafe { &*self.ptr.as_ref().data.get() }
    }

    pub(crate) fn data_mut(&mut self) -> &mut CmdData {
        // SAFETY: by the invariant this handle is the only one reaching `data`, and `&mut self`
        // makes this borrow unique.
        unsafe { &mut *self.ptr.as_ref().data.get() }
    }

    /// The CDB.
    pub fn cdb(&self) -> &[u8] {
        let d = self.data();
        &d.cdb[..usize::from(d.cdb_len)]
    }

    /// The fabric's data buffer.
    pub fn sgl(&self) -> &Sgl {
        &self.data().sgl
    }

    /// The fabric's task tag.
    pub fn tag(&self) -> u64 {
        self.data().tag
    }

    /// The SAM status to send.
    pub fn status(&self) -> u8 {
        self.data().status
    }

    /// The sense data of a CHECK CONDITION.
    pub fn sense(&self) -> Option<Sense> {
        self.data().sense
    }

    /// Bytes of the data buffer not transferred; with [`CmdRef::overflow`], bytes the CDB
    /// asked for beyond the buffer.
    pub fn resid(&self) -> u32 {
        self.data().resid
    }

    /// The residual is an overflow: the buffer held less than the CDB asked for, and all of
    /// it was transferred.
    pub fn overflow(&self) -> bool {
        self.data().overflow
    }

    /// The session the command came in on.
    pub fn session(&self) -> Option<&LiveRef<Session>> {
        self.data().session.as_ref()
    }

    /// The LUN it addresses.
    pub fn lun(&self) -> Option<&LiveRef<Lun>> {
        self.data().lun.as_ref()
    }

    /// The LUN number the initiator addressed.
    pub fn lun_index(&self) -> u64 {
        self.lun_index.load(ordering::Relaxed)
    }

    /// The owner type its fabric gave at [`CmdRef::start`].
    pub fn origin(&self) -> Option<core::any::TypeId> {
        self.data().origin
    }

    /// Whether the initiator side timed the command out ([`crate::cmd::timed_out`]).
    pub fn was_timed_out(&self) -> bool {
        self.state.load(ordering::Acquire) & state::TIMED_OUT != 0
    }

    /// The slot's address, for its fabric to find its own structure around it.
    pub fn slot(&self) -> NonNull<Cmd> {
        self.ptr
    }

    /// Gives the command back to its fabric: drops the core's references and marks the slot
    /// free. Returns the slot, which the fabric may reuse from now on.
    pub fn release(mut self) -> NonNull<Cmd> {
        let d = self.data_mut();
        d.lun = None;
        d.fabric = None;
        d.step = None;
        d.session = None;
        let ptr = self.ptr;
        core::mem::forget(self);
        // SAFETY: the slot stays valid (the fabric owns it); only atomics are touched.
        let st = &unsafe { ptr.as_ref() }.state;
        st.store(
            state::released(st.load(ordering::Relaxed)),
            ordering::Release,
        );
        ptr
    }

    /// Takes back the handle of a command its fabric set aside with [`core::mem::forget`]
    /// (a parked command of `rust/cmd_pool.rs`).
    ///
    /// # Safety
    ///
    /// `ptr` is the slot of a command in flight whose only handle was forgotten, and this is
    /// called once per forgotten handle.
    pub(crate) unsafe fn from_parked(ptr: NonNull<Cmd>) -> CmdRef {
        // INVARIANT: by the requirements, the forgotten handle was the only one.
        CmdRef { ptr }
    }

    /// Recovers the handle the backend gave up when it submitted the command's `IoSlot`.
    ///
    /// # Safety
    ///
    /// `io` is the `IoSlot` of a command in flight that a backend submitted, and the handle
    /// was forgotten ([`CmdRef::into_io`]) at submission; called once per submission.
    pub(crate) unsafe fn from_io(io: *mut crate::rt::bindings::rt_io) -> CmdRef {
        // SAFETY: `io` lies in a `Cmd` (field `io`, an `IoSlot` wrapping the `rt_io`).
        let cmd = unsafe { kernel::container_of!(io.cast::<crate::rt::io::IoSlot>(), Cmd, io) };
        CmdRef {
            // SAFETY: `container_of` of a valid pointer is not null.
            ptr: unsafe { NonNull::new_unchecked(cmd) },
        }
    }

    /// Gives up the handle for the duration of an I/O submitted through the command's
    /// `IoSlot`; [`CmdRef::from_io`] takes it back in the completion.
    pub(crate) fn into_io(self) -> *mut crate::rt::bindings::rt_io {
        let io = self.io.as_raw();
        core::mem::forget(self);
        io
    }
}

impl core::ops::Deref for CmdRef {
    type Target = Cmd;
    fn deref(&self) -> &Cmd {
        // SAFETY: by the invariant the slot is valid while the handle lives.
        unsafe { self.ptr.as_ref() }
    }
}

impl Drop for CmdRef {
    /// A handle dropped without being completed or released is a bug; the command is still
    /// answered (HARDWARE ERROR, INTERNAL TARGET FAILURE), never leaked.
    fn drop(&mut self) {
        pr_err!("rtarget: a command handle was dropped without completion\n");
        let again = CmdRef { ptr: self.ptr };
        if self.data().fabric.is_some() && self.state.load(ordering::Relaxed) & state::COMPLETE == 0
        {
            crate::cmd::complete(again, Err(Sense::internal_target_failure()));
        } else {
            again.release();
        }
    }
}

/// The completion of every I/O a backend submits through a command's `IoSlot`, and of its
/// deferrals to the I/O workqueue ([`CmdRef::defer`]).
///
/// # Safety
///
/// Called by `rust/io_helpers.c` exactly once per submission, with the submitted slot.
pub(crate) unsafe extern "C" fn io_done(io: *mut crate::rt::bindings::rt_io, err: i32) {
    // SAFETY: by the requirements, the handle was given up at submission.
    let cmd = unsafe { CmdRef::from_io(io) };
    if err == crate::rt::bindings::RT_IO_DEFERRED as i32 {
        crate::backend::run_deferred(cmd)
    } else {
        crate::backend::io_done(cmd, err)
    }
}

impl CmdRef {
    /// Reads (`!write`) or writes the first `len` bytes of the command's buffer at byte `pos`
    /// of `file`, asynchronously; the end comes to [`crate::backend::io_done`] in any context.
    /// If the I/O could not be started, the handle comes back with the error.
    ///
    /// `file` must be the storage of the command's own device (which the command keeps alive
    /// through its LUN until it is released), so that it outlives the I/O.
    pub(crate) fn submit_file(
        self,
        file: &BackingFile,
        write: bool,
        pos: u64,
        len: u64,
        fua: bool,
    ) -> core::result::Result<(), (CmdRef, Error)> {
        // SAFETY: the file outlives the I/O (the caller's contract, above).
        self.submit_io(len, |io, sgl| unsafe {
            file.submit(io, write, pos, sgl, fua)
        })
    }

    /// Gives up the handle and starts an I/O on the command's `IoSlot` and the first `len`
    /// bytes of its buffer with `start`; takes the handle back if `start` fails (then its
    /// completion will not run).
    fn submit_io(
        self,
        len: u64,
        start: impl FnOnce(&IoSlot, &Sgl) -> Result,
    ) -> core::result::Result<(), (CmdRef, Error)> {
        let sgl = self.sgl().prefix(u32::try_from(len).unwrap_or(u32::MAX));
        let ptr = self.ptr;
        let io = self.into_io();
        // SAFETY: the handle was given up (`into_io`), so the slot carries this submission
        // only, and stays valid and pinned until `io_done` takes it back.
        match start(unsafe { IoSlot::from_raw(io) }, &sgl) {
            Ok(()) => Ok(()),
            Err(e) => Err((CmdRef { ptr }, e)),
        }
    }

    /// Reads or writes the first `len` bytes of the command's buffer at 512-byte `sector` of
    /// `bdev` as bios (the first inline in the command), completed from `bi_end_io` into
    /// [`crate::backend::io_done`]. If the I/O could not be started, the handle comes back.
    ///
    /// `atomic`: as one `REQ_ATOMIC` write, never split.
    ///
    /// `bdev` must be the storage of the command's own device (see [`CmdRef::submit_file`]).
    pub(crate) fn submit_bio(
        self,
        bdev: &BlockDev,
        write: bool,
        sector: u64,
        len: u64,
        fua: bool,
        atomic: bool,
    ) -> core::result::Result<(), (CmdRef, Error)> {
        // SAFETY: the device outlives the I/O (the caller's contract, as for `submit_file`).
        self.submit_io(len, |io, sgl| unsafe {
            bdev.submit(io, write, sector, sgl, fua, atomic)
        })
    }

    /// Flushes `bdev`'s write cache; the end comes to [`crate::backend::io_done`].
    ///
    /// `bdev` must be the storage of the command's own device (see [`CmdRef::submit_file`]).
    pub(crate) fn submit_flush(self, bdev: &BlockDev) {
        let io = self.into_io();
        // SAFETY: as in `submit_file`; `flush` always ends in `done`.
        let _ = unsafe { bdev.flush(IoSlot::from_raw(io)) };
    }

    /// Continues the command from the I/O workqueue (process context): its device's backend
    /// gets it back in [`Backend::deferred`](crate::backend::Backend::deferred).
    pub(crate) fn defer(self) {
        let io = self.into_io();
        // SAFETY: the handle was given up; the work item runs `io_done` once with
        // `RT_IO_DEFERRED`, which takes it back.
        unsafe { crate::rt::bindings::rt_io_defer(io) }
    }
}
