// SPDX-License-Identifier: GPL-2.0

//! A SCSI low-level driver: a `Scsi_Host` whose commands a Rust [`HostOps`] executes. Used by
//! the loopback fabric, whose LUNs appear as local `/dev/sdX`.
//!
//! C header: [`include/scsi/scsi_host.h`](srctree/include/scsi/scsi_host.h)

use super::bindings;
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

    /// A `scsi_device` for `(channel, id, lun)` is being created; return its data, or an
    /// error (ENXIO) if nothing is there.
    fn sdev_init(&self, channel: u32, id: u32, lun: u64) -> Result<Arc<Self::Lun>>;
    /// Executes `cmd`, which must be completed with [`Command::done`] (dropping it completes it
    /// with `DID_ERROR`).
    fn queue_command(&self, lun: &Self::Lun, cmd: Command<'_>);
}

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

    /// Copies `buf` into the data buffer at `offset` (data in); returns the bytes copied.
    pub fn copy_to_data(&mut self, offset: usize, buf: &[u8]) -> usize {
        // SAFETY: the command is live and `buf` is valid for reads of its length.
        unsafe { bindings::rt_scsi_copy_to_sg(self.raw(), offset, buf.as_ptr().cast(), buf.len()) }
    }

    /// Copies `len` bytes between the data buffer at `offset` and `mem`.
    ///
    /// # Safety
    ///
    /// `mem` must be valid for reads (`to_data`) or writes (not `to_data`) of `len` bytes for
    /// the call, and no Rust reference may cover those bytes.
    pub(crate) unsafe fn copy_raw(
        &mut self,
        offset: usize,
        mem: *mut u8,
        len: usize,
        to_data: bool,
    ) -> usize {
        // SAFETY: by the function's requirements.
        unsafe {
            if to_data {
                bindings::rt_scsi_copy_to_sg(self.raw(), offset, mem.cast(), len)
            } else {
                bindings::rt_scsi_copy_from_sg(self.raw(), offset, mem.cast(), len)
            }
        }
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

impl Drop for Command<'_> {
    fn drop(&mut self) {
        let cmd = Command {
            cmd: self.cmd,
            _p: PhantomData,
        };
        cmd.done_host(DID_ERROR);
    }
}

impl crate::lun::CmdData for Command<'_> {
    fn cdb(&self) -> &[u8] {
        Command::cdb(self)
    }
    fn data_len(&self) -> u32 {
        Command::data_len(self)
    }
    fn put(&mut self, offset: usize, buf: &[u8]) -> usize {
        self.copy_to_data(offset, buf)
    }
    fn ram_io(
        &mut self,
        ram: &super::rambuf::RamBuf,
        data_off: usize,
        off: usize,
        len: usize,
        to_cmd: bool,
    ) -> Result<usize> {
        ram.transfer(self, data_off, off, len, to_cmd)
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
        eh_abort_handler: Some(eh_success),
        eh_device_reset_handler: Some(eh_success),
        eh_host_reset_handler: Some(eh_success),
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

/// Commands complete synchronously in `queuecommand`, so there is never one to abort or reset.
///
/// # Safety
///
/// Called by the midlayer's error handler; the command is not touched.
unsafe extern "C" fn eh_success(_cmd: *mut bindings::scsi_cmnd) -> i32 {
    bindings::scsi_disposition_SUCCESS as i32
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
