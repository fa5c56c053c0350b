// SPDX-License-Identifier: GPL-2.0

//! A SCSI low-level driver: a `Scsi_Host` whose commands a Rust [`HostOps`] executes. Used by
//! the loopback fabric, whose LUNs appear as local `/dev/sdX`.
//!
//! C header: [`include/scsi/scsi_host.h`](srctree/include/scsi/scsi_host.h)

use super::bindings;
use super::cmd_ref::{CmdRef, CmdSetup};
use super::io::Sgl;
use super::live_ref::LiveRef;
use crate::cmd::{Cmd, DataDir, FabricOps};
use crate::lun::Lun;
use crate::session::Session;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::sync::Arc;

/// `SAM_STAT_GOOD`.
pub const STATUS_GOOD: u8 = 0x00;
/// `SAM_STAT_CHECK_CONDITION`.
pub const STATUS_CHECK_CONDITION: u8 = 0x02;
/// `DID_NO_CONNECT`: no nexus, or no LUN behind the device.
pub const DID_NO_CONNECT: u8 = 0x01;
/// `DID_TRANSPORT_DISRUPTED`: the target port is offline.
pub const DID_TRANSPORT_DISRUPTED: u8 = 0x0e;
/// `DID_ERROR`.
pub const DID_ERROR: u8 = 0x07;
/// `DID_RESET`: the command was aborted by a reset; the midlayer retries it.
pub const DID_RESET: u8 = 0x08;

/// What a low-level driver does with commands. Commands arrive in `queuecommand` context:
/// it must not sleep.
pub trait HostOps: Send + Sync + Sized + 'static {
    /// Per-`scsi_device` data, looked up once when the device is created.
    type Lun: Send + Sync;
    /// `scsi_host_template.name` and `proc_name`.
    const NAME: &'static CStr;
    /// The module implementing the driver: open disks pin it (`scsi_host_template.module`).
    const MODULE: &'static ThisModule;
    /// Commands in flight per hardware queue (`can_queue`).
    const CAN_QUEUE: i32;
    /// Largest command, in 512-byte sectors (`max_sectors`).
    const MAX_SECTORS: u32;
    /// Scatter-gather entries per command (`sg_tablesize`).
    const SG_TABLESIZE: u16;
    /// Target ids a user-triggered scan probes (`max_id`).
    const MAX_TARGETS: u32;
    /// LUNs a scan accepts (`max_lun`).
    const MAX_LUNS: u64;
    /// The host carries T10 protection information: DIF and DIX types 1-3 with a CRC guard,
    /// as tcm_loop advertises, so a disk with protection gets an integrity profile.
    const PI: bool = false;

    /// A `scsi_device` for `(channel, id, lun)` is being created; return its data, or an
    /// error (ENXIO) if nothing is there.
    fn sdev_init(&self, channel: u32, id: u32, lun: u64) -> Result<Arc<Self::Lun>>;
    /// Executes `cmd`, which must be completed with [`Command::done`] (dropping it completes it
    /// with `DID_ERROR`) or handed to the core with [`Command::start`]. Runs in process
    /// context (`queuecommand_may_block`): it may sleep.
    fn queue_command(&self, lun: &Self::Lun, cmd: Command<'_>);

    /// The midlayer's error handler asks to abort `cmd` (a command of `lun` that timed out).
    /// Returns true when the driver no longer holds it.
    fn abort(&self, _lun: &Self::Lun, _cmd: &Cmd, _host: HostRef<'_>) -> bool {
        true
    }
    /// LOGICAL UNIT RESET of `lun`; true when its commands are gone.
    fn device_reset(&self, _lun: &Self::Lun, _host: HostRef<'_>) -> bool {
        true
    }
    /// Reset of the target (`lun`'s SCSI target id); true when its commands are gone.
    fn target_reset(&self, _lun: &Self::Lun, _host: HostRef<'_>) -> bool {
        true
    }
    /// Reset of the whole host; true when no command is held any more.
    fn host_reset(&self, _host: HostRef<'_>) -> bool {
        true
    }
}

/// The host a callback runs for, to walk its commands.
#[derive(Clone, Copy)]
pub struct HostRef<'a> {
    shost: NonNull<bindings::Scsi_Host>,
    _p: PhantomData<&'a bindings::Scsi_Host>,
}

impl HostRef<'_> {
    /// Calls `f` with the command slot of every command the midlayer has started on the host
    /// (a `scsi_host_busy_iter` walk; process context).
    pub fn for_each_cmd(&self, f: &mut dyn FnMut(&Cmd)) {
        /// # Safety
        ///
        /// Called by `scsi_host_busy_iter` with a started command of the host and the `data`
        /// passed below.
        unsafe extern "C" fn visit(cmd: *mut bindings::scsi_cmnd, data: *mut ffi::c_void) -> bool {
            // SAFETY: `data` is the `&mut &mut dyn FnMut` below, live for the walk; `cmd` is a
            // started command of a host whose private areas hold initialised `Cmd` slots.
            unsafe {
                let f = &mut *data.cast::<&mut dyn FnMut(&Cmd)>();
                f(&*cmd_slot(cmd));
            }
            true
        }
        let mut f = f;
        // SAFETY: the host is live for the callback this `HostRef` was made for.
        unsafe {
            bindings::scsi_host_busy_iter(
                self.shost.as_ptr(),
                Some(visit),
                core::ptr::from_mut(&mut f).cast(),
            )
        }
    }
}

use kernel::ffi;

/// The core's command slot in a command's private area.
fn cmd_slot(cmd: *mut bindings::scsi_cmnd) -> *mut Cmd {
    // `scsi_cmd_priv`: the private area follows the `scsi_cmnd`.
    cmd.wrapping_add(1).cast::<Cmd>()
}

const _: () =
    assert!(core::mem::size_of::<bindings::scsi_cmnd>() % core::mem::align_of::<Cmd>() == 0);

/// A command handed to [`HostOps::queue_command`].
///
/// # Invariants
///
/// `cmd` is a command owned by this driver until `done` completes it.
pub struct Command<'a> {
    cmd: NonNull<bindings::scsi_cmnd>,
    _p: PhantomData<&'a mut bindings::scsi_cmnd>,
}

impl Command<'_> {
    fn raw(&self) -> *mut bindings::scsi_cmnd {
        self.cmd.as_ptr()
    }

    /// The CDB.
    pub fn cdb(&self) -> &[u8] {
        // SAFETY: `cmnd` holds `cmd_len` valid bytes for the command's lifetime.
        unsafe {
            let c = &*self.raw();
            &c.cmnd[..usize::from(c.cmd_len).min(c.cmnd.len())]
        }
    }

    /// Length of the data buffer.
    pub fn data_len(&self) -> u32 {
        // SAFETY: the command is live.
        unsafe { bindings::rt_scsi_bufflen(self.raw()) }
    }

    /// Sets the residual count (bytes of the data buffer not transferred).
    pub fn set_resid(&mut self, resid: u32) {
        // SAFETY: the command is live and ours.
        unsafe { bindings::rt_scsi_set_resid(self.raw(), resid) }
    }

    /// Completes with a SCSI status (and host byte 0).
    pub fn done(self, status: u8) {
        self.finish(i32::from(status))
    }

    /// Completes with CHECK CONDITION and `sense`.
    pub fn done_sense(self, sense: &[u8]) {
        // SAFETY: `sense_buffer` has SCSI_SENSE_BUFFERSIZE bytes.
        unsafe {
            let sb = (*self.raw()).sense_buffer;
            let n = sense.len().min(bindings::SCSI_SENSE_BUFFERSIZE as usize);
            core::ptr::copy_nonoverlapping(sense.as_ptr(), sb, n);
        }
        self.finish(i32::from(STATUS_CHECK_CONDITION))
    }

    /// Completes with a host byte (transport failure), e.g. [`DID_NO_CONNECT`].
    pub fn done_host(self, host_byte: u8) {
        self.finish(i32::from(host_byte) << 16)
    }

    fn finish(self, result: i32) {
        let me = core::mem::ManuallyDrop::new(self);
        // SAFETY: the command is ours until `scsi_done`, which hands it back.
        unsafe {
            (*me.raw()).result = result;
            bindings::scsi_done(me.raw());
        }
    }
}

impl Command<'_> {
    /// Hands the command to the core: its slot (in the private area) is set up from the
    /// `scsi_cmnd` and the core executes it, calling back through `fabric`. The data buffer is
    /// the midlayer's scatterlist, used in place.
    pub fn start<T: HostOps>(
        self,
        session: LiveRef<Session>,
        lun: LiveRef<Lun>,
        fabric: &'static dyn FabricOps,
    ) -> CmdRef {
        let me = core::mem::ManuallyDrop::new(self);
        let raw = me.raw();
        // SAFETY: the command is live and ours; its private area holds a `Cmd` slot that
        // `init_cmd_priv::<T>` initialised and that is free (the midlayer gives us each
        // request once until we complete it).
        unsafe {
            let d = (*raw).sc_data_direction;
            let dir = if d == bindings::dma_data_direction::DMA_TO_DEVICE {
                DataDir::ToDevice
            } else if d == bindings::dma_data_direction::DMA_FROM_DEVICE {
                DataDir::FromDevice
            } else {
                DataDir::None
            };
            let sgl = Sgl::from_raw(
                bindings::rt_scsi_sglist(raw),
                bindings::rt_scsi_sg_count(raw),
                bindings::rt_scsi_bufflen(raw),
            );
            // The integrity buffer of DIX (READ_PASS / WRITE_PASS), if any.
            let prot_sgl = match bindings::rt_scsi_prot_sg_count(raw) {
                0 => Sgl::EMPTY,
                n => Sgl::from_raw(
                    bindings::rt_scsi_prot_sglist(raw),
                    n,
                    bindings::rt_scsi_prot_len(raw),
                ),
            };
            // READ_STRIP / WRITE_INSERT: the initiator asks its HBA, us, to check and drop or
            // to generate the protection information.
            let pi_offload = matches!(
                u32::from(bindings::rt_scsi_prot_op(raw)),
                bindings::scsi_prot_operations_SCSI_PROT_READ_STRIP
                    | bindings::scsi_prot_operations_SCSI_PROT_WRITE_INSERT
            );
            CmdRef::start(
                NonNull::new_unchecked(cmd_slot(raw)),
                CmdSetup {
                    cdb: me.cdb(),
                    dir,
                    sgl,
                    prot_sgl,
                    pi_offload,
                    data_ready: true,
                    tag: u64::from(bindings::rt_scsi_unique_tag(raw)),
                    lun_index: lun.index,
                    read_only: session.read_only(),
                    // As LIO's tcm_loop: the buffer is the initiator's own.
                    fit_transfers: false,
                    session,
                    lun: Some(lun),
                    fabric,
                    origin: core::any::TypeId::of::<T>(),
                },
            )
        }
    }

    /// Takes back a command that [`Command::start`] handed to the core, releasing the core's
    /// hold on it. `None` if `cmd` did not come from a host driven by `T`.
    pub fn from_cmd<T: HostOps>(cmd: CmdRef) -> core::result::Result<Self, CmdRef> {
        if cmd.origin() != Some(core::any::TypeId::of::<T>()) {
            return Err(cmd);
        }
        // The slot lies in the private area of a live `scsi_cmnd` of a host driven by `T`
        // (checked through the origin), right after the `scsi_cmnd`.
        let raw = cmd_of_slot(cmd.release());
        Ok(Command {
            // SAFETY: derived from a non-null slot pointer.
            cmd: unsafe { NonNull::new_unchecked(raw) },
            _p: PhantomData,
        })
    }

    /// Takes back a command that task management aborted or the midlayer timed out. A timed
    /// out command belongs to the midlayer's error handler: it is released and `None` is
    /// returned. Otherwise (aborted by a reset the initiator asked for, through an ioctl) it is
    /// returned, to be completed with [`DID_RESET`] so that the midlayer retries it.
    pub fn from_aborted<T: HostOps>(cmd: CmdRef) -> core::result::Result<Option<Self>, CmdRef> {
        if cmd.origin() != Some(core::any::TypeId::of::<T>()) {
            return Err(cmd);
        }
        if cmd.was_timed_out() {
            cmd.release();
            return Ok(None);
        }
        Self::from_cmd::<T>(cmd).map(Some)
    }
}

/// The `scsi_cmnd` whose private area holds `slot`.
fn cmd_of_slot(slot: NonNull<Cmd>) -> *mut bindings::scsi_cmnd {
    slot.as_ptr().cast::<bindings::scsi_cmnd>().wrapping_sub(1)
}

impl Drop for Command<'_> {
    fn drop(&mut self) {
        let cmd = Command {
            cmd: self.cmd,
            _p: PhantomData,
        };
        cmd.done_host(DID_ERROR);
    }
}

/// A registered `Scsi_Host` driven by `T`.
///
/// # Invariants
///
/// `shost` was allocated with `Template::<T>::TEMPLATE` and added; its hostdata holds the
/// pointer `Arc::into_raw(ops)`, released after the host is removed.
pub struct Host<T: HostOps> {
    shost: NonNull<bindings::Scsi_Host>,
    ops: Arc<T>,
}

// SAFETY: the host is only used through `&self` methods that call thread-safe SCSI midlayer
// functions; `T` is `Send + Sync`.
unsafe impl<T: HostOps> Send for Host<T> {}
// SAFETY: as above.
unsafe impl<T: HostOps> Sync for Host<T> {}

struct Template<T>(PhantomData<T>);

impl<T: HostOps> Template<T> {
    const TEMPLATE: bindings::scsi_host_template = bindings::scsi_host_template {
        module: T::MODULE.as_ptr(),
        name: kernel::str::as_char_ptr_in_const_context(T::NAME),
        proc_name: kernel::str::as_char_ptr_in_const_context(T::NAME),
        queuecommand: Some(queuecommand::<T>),
        sdev_init: Some(sdev_init::<T>),
        sdev_destroy: Some(sdev_destroy::<T>),
        eh_abort_handler: Some(eh_abort::<T>),
        eh_device_reset_handler: Some(eh_device_reset::<T>),
        eh_target_reset_handler: Some(eh_target_reset::<T>),
        eh_host_reset_handler: Some(eh_host_reset::<T>),
        init_cmd_priv: Some(init_cmd_priv),
        eh_timed_out: Some(eh_timed_out),
        cmd_size: core::mem::size_of::<Cmd>() as u32,
        can_queue: T::CAN_QUEUE,
        this_id: -1,
        sg_tablesize: T::SG_TABLESIZE,
        max_sectors: T::MAX_SECTORS,
        cmd_per_lun: T::CAN_QUEUE as i16,
        dma_boundary: usize::MAX,
        // SAFETY: all-zero is a valid `scsi_host_template` (null pointers and no callbacks).
        ..unsafe { core::mem::zeroed() }
    };
}

fn ops<'a, T: HostOps>(shost: *mut bindings::Scsi_Host) -> &'a T {
    // SAFETY: by `Host`'s invariant the hostdata holds an `Arc<T>` pointer that outlives the
    // host's devices and commands.
    unsafe { &*bindings::rt_shost_priv(shost).cast::<*const T>().read() }
}

/// `queuecommand`.
///
/// # Safety
///
/// Called by the SCSI midlayer with a live host of ours and a live command of it.
unsafe extern "C" fn queuecommand<T: HostOps>(
    shost: *mut bindings::Scsi_Host,
    cmd: *mut bindings::scsi_cmnd,
) -> bindings::scsi_qc_status {
    // SAFETY: the midlayer passes a live command of a live device of this host; the device's
    // hostdata was set by `sdev_init::<T>` to an `Arc<T::Lun>` pointer (or is null).
    unsafe {
        let lun = (*(*cmd).device).hostdata.cast::<T::Lun>();
        let c = Command {
            cmd: NonNull::new_unchecked(cmd),
            _p: PhantomData,
        };
        if lun.is_null() {
            c.done_host(DID_NO_CONNECT);
        } else {
            ops::<T>(shost).queue_command(&*lun, c);
        }
    }
    0
}

/// `sdev_init`.
///
/// # Safety
///
/// Called by the midlayer with a device being created on a live host of ours.
unsafe extern "C" fn sdev_init<T: HostOps>(sdev: *mut bindings::scsi_device) -> i32 {
    // SAFETY: the midlayer passes a device being created on a host of ours.
    unsafe {
        match ops::<T>((*sdev).host).sdev_init((*sdev).channel, (*sdev).id, (*sdev).lun) {
            Ok(lun) => {
                (*sdev).hostdata = Arc::into_raw(lun).cast_mut().cast();
                0
            }
            Err(e) => e.to_errno(),
        }
    }
}

/// `sdev_destroy`.
///
/// # Safety
///
/// Called by the midlayer once per device, after its last command.
unsafe extern "C" fn sdev_destroy<T: HostOps>(sdev: *mut bindings::scsi_device) {
    // SAFETY: hostdata is null or the pointer `sdev_init::<T>` stored; no commands remain.
    unsafe {
        let data = (*sdev).hostdata;
        if !data.is_null() {
            (*sdev).hostdata = core::ptr::null_mut();
            drop(Arc::from_raw(data.cast::<T::Lun>()));
        }
    }
}

/// `init_cmd_priv`: each request's private area becomes a free command slot, once.
///
/// # Safety
///
/// Called by the midlayer for each request of a host of ours, before its first use.
unsafe extern "C" fn init_cmd_priv(
    _shost: *mut bindings::Scsi_Host,
    cmd: *mut bindings::scsi_cmnd,
) -> i32 {
    // SAFETY: the private area is `cmd_size` bytes, suitably aligned (see the assertion on
    // `cmd_slot`), owned by the request, and not in use yet.
    unsafe { pin_init::raw_init(cmd_slot(cmd), Cmd::new_slot()) };
    0
}

/// `eh_timed_out`: the core decides, with one compare-and-swap against the command's
/// completion, whether the midlayer's error handler takes the command over.
///
/// # Safety
///
/// Called by the midlayer's timeout handler with a command of a host of ours.
unsafe extern "C" fn eh_timed_out(cmd: *mut bindings::scsi_cmnd) -> bindings::scsi_timeout_action {
    // SAFETY: the slot was initialised by `init_cmd_priv`.
    let slot = unsafe { &*cmd_slot(cmd) };
    match crate::cmd::timed_out(slot) {
        crate::cmd::Timeout::Handled => bindings::scsi_timeout_action_SCSI_EH_NOT_HANDLED,
        crate::cmd::Timeout::Completing => bindings::scsi_timeout_action_SCSI_EH_RESET_TIMER,
    }
}

fn eh_result(ok: bool) -> i32 {
    if ok {
        bindings::scsi_disposition_SUCCESS as i32
    } else {
        bindings::scsi_disposition_FAILED as i32
    }
}

/// Runs `f` for an error handler's command: its host, driver and LUN data.
///
/// # Safety
///
/// `cmd` is a command the midlayer's error handler passed us, on a live device of a host of
/// ours.
unsafe fn with_eh<T: HostOps>(
    cmd: *mut bindings::scsi_cmnd,
    f: impl FnOnce(&T, Option<&T::Lun>, HostRef<'_>) -> bool,
) -> i32 {
    // SAFETY: by the requirements; hostdata is null or set by `sdev_init::<T>`.
    unsafe {
        let sdev = (*cmd).device;
        let shost = (*sdev).host;
        let lun = (*sdev).hostdata.cast::<T::Lun>();
        let host = HostRef {
            shost: NonNull::new_unchecked(shost),
            _p: PhantomData,
        };
        eh_result(f(ops::<T>(shost), lun.as_ref(), host))
    }
}

/// `eh_abort_handler`.
///
/// # Safety
///
/// Called by the midlayer's error handler with a timed-out command of ours.
unsafe extern "C" fn eh_abort<T: HostOps>(cmd: *mut bindings::scsi_cmnd) -> i32 {
    // SAFETY: by the requirements; the slot was initialised by `init_cmd_priv::<T>`.
    unsafe {
        let slot = &*cmd_slot(cmd);
        with_eh::<T>(cmd, |ops, lun, host| {
            lun.is_none_or(|l| ops.abort(l, slot, host))
        })
    }
}

/// `eh_device_reset_handler`.
///
/// # Safety
///
/// Called by the midlayer's error handler with a command of the device to reset.
unsafe extern "C" fn eh_device_reset<T: HostOps>(cmd: *mut bindings::scsi_cmnd) -> i32 {
    // SAFETY: by the requirements.
    unsafe {
        with_eh::<T>(cmd, |ops, lun, host| {
            lun.is_none_or(|l| ops.device_reset(l, host))
        })
    }
}

/// `eh_target_reset_handler`.
///
/// # Safety
///
/// Called by the midlayer's error handler with a command of the target to reset.
unsafe extern "C" fn eh_target_reset<T: HostOps>(cmd: *mut bindings::scsi_cmnd) -> i32 {
    // SAFETY: by the requirements.
    unsafe {
        with_eh::<T>(cmd, |ops, lun, host| {
            lun.is_none_or(|l| ops.target_reset(l, host))
        })
    }
}

/// `eh_host_reset_handler`.
///
/// # Safety
///
/// Called by the midlayer's error handler with a command of the host to reset.
unsafe extern "C" fn eh_host_reset<T: HostOps>(cmd: *mut bindings::scsi_cmnd) -> i32 {
    // SAFETY: by the requirements.
    unsafe { with_eh::<T>(cmd, |ops, _lun, host| ops.host_reset(host)) }
}

impl<T: HostOps> Host<T> {
    /// Allocates and adds a host driven by `ops`, with one hardware queue per possible CPU.
    pub fn new(ops: Arc<T>) -> Result<Self> {
        let tmpl: &'static bindings::scsi_host_template = &Template::<T>::TEMPLATE;
        // SAFETY: the template is static; the private area holds one pointer.
        let shost =
            unsafe { bindings::scsi_host_alloc(tmpl, core::mem::size_of::<*const T>() as i32) };
        let shost = NonNull::new(shost).ok_or(ENOMEM)?;
        let raw = Arc::into_raw(ops.clone());
        // SAFETY: the private area is ours and sized for a pointer; the host is not live yet.
        unsafe {
            bindings::rt_shost_priv(shost.as_ptr())
                .cast::<*const T>()
                .write(raw);
            let s = &mut *shost.as_ptr();
            s.max_id = T::MAX_TARGETS;
            s.max_lun = T::MAX_LUNS;
            s.max_channel = 0;
            s.max_cmd_len = 32;
            s.nr_hw_queues = bindings::rt_num_possible_cpus();
            // queuecommand runs where it may sleep (BLK_MQ_F_BLOCKING): backends submit file
            // and block I/O from it directly.
            bindings::rt_shost_set_may_block(shost.as_ptr());
            if T::PI {
                bindings::rt_shost_set_pi(shost.as_ptr());
            }
        }
        // SAFETY: the host is allocated; a null parent puts it under the platform bus.
        let ret = unsafe { bindings::rt_scsi_add_host(shost.as_ptr()) };
        if ret != 0 {
            // SAFETY: undoes the allocation; then reclaims the pointer stored above.
            unsafe {
                bindings::scsi_host_put(shost.as_ptr());
                drop(Arc::from_raw(raw));
            }
            return Err(Error::from_errno(ret));
        }
        Ok(Host { shost, ops })
    }

    /// The driver.
    pub fn ops(&self) -> &Arc<T> {
        &self.ops
    }

    /// Calls `f` with the command slot of every command the midlayer has started on the host
    /// (process context).
    pub fn for_each_cmd(&self, f: &mut dyn FnMut(&Cmd)) {
        HostRef {
            shost: self.shost,
            _p: PhantomData,
        }
        .for_each_cmd(f)
    }

    /// The host number (`hostN` in sysfs).
    pub fn host_no(&self) -> u32 {
        // SAFETY: the host is live.
        unsafe { (*self.shost.as_ptr()).host_no }
    }

    /// Creates the `scsi_device` at `(0, id, lun)` and probes it (`sd` attaches if it is a disk).
    pub fn add_device(&self, id: u32, lun: u64) -> Result {
        // SAFETY: the host is live; the midlayer serialises scanning.
        let ret = unsafe { bindings::scsi_add_device(self.shost.as_ptr(), 0, id, lun) };
        kernel::error::to_result(ret)
    }

    /// Removes the `scsi_device` at `(0, id, lun)`, if present, after its commands drain.
    pub fn remove_device(&self, id: u32, lun: u64) {
        // SAFETY: the host is live; lookup takes a reference, which we drop after removal.
        unsafe {
            let sdev = bindings::scsi_device_lookup(self.shost.as_ptr(), 0, id, lun);
            if !sdev.is_null() {
                bindings::scsi_remove_device(sdev);
                bindings::scsi_device_put(sdev);
            }
        }
    }
}

impl<T: HostOps> Drop for Host<T> {
    fn drop(&mut self) {
        // SAFETY: by the invariant, the host was added. Removing it drains and destroys its
        // devices, after which nothing reads the hostdata pointer, which we then reclaim.
        unsafe {
            let raw = bindings::rt_shost_priv(self.shost.as_ptr())
                .cast::<*const T>()
                .read();
            bindings::scsi_remove_host(self.shost.as_ptr());
            bindings::scsi_host_put(self.shost.as_ptr());
            drop(Arc::from_raw(raw));
        }
    }
}
