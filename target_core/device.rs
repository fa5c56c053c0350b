// SPDX-License-Identifier: GPL-2.0

//! A backstore device (LIO's `se_device`): its attributes, its T10 identity, its backend's
//! configuration and, once enabled, its backend.
//!
//! The I/O path reads what it needs (block size, capacity, write cache) from atomics and the
//! backend from a `SetOnce`: no lock. Identity strings (for INQUIRY) sit under a spinlock,
//! because INQUIRY may run in `queuecommand` context, which must not sleep.

use crate::backend::rd::{RD_HW_MAX_SECTORS, RD_HW_QUEUE_DEPTH};
use crate::backend::{Backend, BackendConfig, Geometry, Plugin};
use crate::cmd::CmdRef;
use crate::lun::Port;
use crate::proto::spc::LIO_COMPANY_ID;
use crate::reservation::Reservations;
use crate::rt::configfs::strip_nl;
use crate::rt::thread::Thread;
use crate::session::Session;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::atomic::{ordering::Relaxed, Atomic};
use kernel::sync::{Arc, Mutex, SetOnce, SpinLock};

/// How a write to an `attrib/` file is checked (LIO's rules for rd_mcp).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Read-only (mode 0444).
    Ro,
    /// Any boolean.
    Bool,
    /// Boolean, refused (EINVAL) while the device is exported.
    BoolIdle,
    /// Any u32.
    U32,
    /// Only the current value is accepted; others are not supported here (ENOSYS).
    Fixed,
    /// Like `Fixed`, and refused (EINVAL) while exported.
    FixedIdle,
    /// 0..=2, refused while exported.
    UaIntlck,
    /// `emulate_tpu`, `emulate_tpws`: turning one on needs a backend that deallocates, whose
    /// limits then fill `max_unmap_*` (LIO's `target_try_configure_unmap`).
    Thin,
    /// 512, 1024, 2048 or 4096, refused while exported.
    BlockSize,
    /// 1..=max(current, hw_queue_depth), refused while exported.
    QueueDepth,
    /// 0..=hw_max_sectors, refused while exported.
    OptimalSectors,
    /// 0..=2.
    Type,
    /// `pi_prot_type`: see [`Device::store_pi_type`].
    PiType,
    /// `pi_prot_format`: see [`Device::store_pi_format`].
    PiFormat,
    /// `pi_prot_verify`: a boolean that stays 0 without protection information.
    PiVerify,
}

/// One `attrib/` file: name, value before and after `enable`, write rule.
pub(crate) struct AttribSpec {
    pub(crate) name: &'static CStr,
    pre: u32,
    post: u32,
    rule: Rule,
}

impl AttribSpec {
    /// Whether the file is writable (mode 0644).
    pub(crate) fn writable(&self) -> bool {
        self.rule != Rule::Ro
    }
}

const fn a(name: &'static CStr, pre: u32, post: u32, rule: Rule) -> AttribSpec {
    AttribSpec {
        name,
        pre,
        post,
        rule,
    }
}

/// LIO's `sbc_attrib_attrs`, in LIO's order, with rd_mcp's values; [`Device::enable`] sets
/// the hardware ones from the backend's [`Geometry`].
pub(crate) static ATTRIBS: [AttribSpec; 42] = [
    a(c"emulate_model_alias", 0, 0, Rule::BoolIdle),
    a(c"emulate_dpo", 1, 1, Rule::Bool),
    a(c"emulate_fua_write", 1, 1, Rule::Bool),
    a(c"emulate_fua_read", 1, 1, Rule::Bool),
    a(c"emulate_write_cache", 0, 0, Rule::Bool),
    a(c"emulate_ua_intlck_ctrl", 0, 0, Rule::UaIntlck),
    a(c"emulate_tas", 1, 1, Rule::BoolIdle),
    a(c"emulate_tpu", 0, 0, Rule::Thin),
    a(c"emulate_tpws", 0, 0, Rule::Thin),
    a(c"emulate_caw", 1, 1, Rule::Bool),
    a(c"emulate_3pc", 1, 1, Rule::Bool),
    a(c"emulate_pr", 1, 1, Rule::Bool),
    a(c"pi_prot_type", 0, 0, Rule::PiType),
    a(c"hw_pi_prot_type", 0, 0, Rule::Ro),
    a(c"pi_prot_format", 0, 0, Rule::PiFormat),
    a(c"pi_prot_verify", 0, 0, Rule::PiVerify),
    a(c"enforce_pr_isids", 1, 1, Rule::Bool),
    a(c"is_nonrot", 0, 1, Rule::Bool),
    a(c"emulate_rest_reord", 0, 0, Rule::Fixed),
    a(c"force_pr_aptpl", 0, 0, Rule::BoolIdle),
    a(c"hw_block_size", 0, 512, Rule::Ro),
    a(c"block_size", 0, 512, Rule::BlockSize),
    a(c"hw_max_sectors", 0, RD_HW_MAX_SECTORS, Rule::Ro),
    a(
        c"optimal_sectors",
        0,
        RD_HW_MAX_SECTORS,
        Rule::OptimalSectors,
    ),
    a(c"hw_queue_depth", 0, RD_HW_QUEUE_DEPTH, Rule::Ro),
    a(c"queue_depth", 0, RD_HW_QUEUE_DEPTH, Rule::QueueDepth),
    a(c"max_unmap_lba_count", 0, 0, Rule::U32),
    a(c"max_unmap_block_desc_count", 0, 0, Rule::U32),
    a(c"unmap_granularity", 0, 0, Rule::U32),
    a(c"unmap_granularity_alignment", 0, 0, Rule::U32),
    a(c"unmap_zeroes_data", 0, 0, Rule::FixedIdle),
    a(c"max_write_same_len", 0, 0xffff, Rule::U32),
    a(c"alua_support", 1, 1, Rule::Fixed),
    a(c"pgr_support", 1, 1, Rule::Fixed),
    a(c"emulate_rsoc", 1, 1, Rule::Bool),
    a(c"submit_type", 0, 0, Rule::Type),
    a(c"complete_type", 0, 0, Rule::Type),
    a(c"atomic_alignment", 0, 0, Rule::Ro),
    a(c"atomic_max_len", 0, 0, Rule::Ro),
    a(c"atomic_granularity", 0, 0, Rule::Ro),
    a(c"atomic_max_with_boundary", 0, 0, Rule::Ro),
    a(c"atomic_max_boundary", 0, 0, Rule::Ro),
];

/// Index of an attribute in [`ATTRIBS`], for the I/O path's lookups.
#[derive(Clone, Copy)]
pub(crate) enum At {
    ModelAlias = 0,
    FuaWrite = 2,
    WriteCache = 4,
    UaIntlck = 5,
    IsNonrot = 17,
    BlockSize = 21,
    HwMaxSectors = 22,
    OptimalSectors = 23,
    HwQueueDepth = 24,
    Caw = 9,
    ThreePc = 10,
    EmulatePr = 11,
    PiType = 12,
    PiVerify = 15,
    Tpu = 7,
    Tpws = 8,
    MaxUnmapLbaCount = 26,
    MaxUnmapDescCount = 27,
    UnmapGranularity = 28,
    UnmapAlignment = 29,
    UnmapZeroesData = 30,
    MaxWriteSameLen = 31,
    AtomicAlignment = 37,
    AtomicMaxLen = 38,
    AtomicGranularity = 39,
    AtomicMaxWithBoundary = 40,
    AtomicMaxBoundary = 41,
}

/// An attribute's value after `enable` (`cur` before): the backend's geometry for the
/// hardware ones; a write cache the backend forces on (buffered fileio) is added to the user's
/// setting, as in LIO.
fn post_enable_value(spec: &AttribSpec, cur: u32, geo: &Geometry) -> u32 {
    match spec.name.to_bytes() {
        b"hw_block_size" | b"block_size" => geo.block_size,
        b"hw_max_sectors" | b"optimal_sectors" => geo.max_sectors,
        b"hw_queue_depth" | b"queue_depth" => geo.queue_depth,
        b"is_nonrot" => u32::from(geo.nonrot),
        b"emulate_write_cache" => cur | u32::from(geo.write_cache),
        b"atomic_max_len" => geo.atomic_max_bytes / geo.block_size.max(1),
        b"atomic_alignment" | b"atomic_granularity" => {
            geo.atomic_unit_bytes / geo.block_size.max(1)
        }
        _ => spec.post,
    }
}

/// Parses a configfs write as LIO's `kstrtou32`/`kstrtobool` do: one trailing newline allowed.
pub(crate) fn parse_u32(data: &[u8]) -> Result<u32> {
    let s = core::str::from_utf8(strip_nl(data)).map_err(|_| EINVAL)?;
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    if digits.is_empty() {
        return Err(EINVAL);
    }
    u32::from_str_radix(digits, radix).map_err(|e| match e.kind() {
        core::num::IntErrorKind::PosOverflow => ERANGE,
        _ => EINVAL,
    })
}

/// `kstrtoull(s, 0)`: decimal, `0x` hex or leading-zero octal; ERANGE on overflow.
pub(crate) fn parse_u64(v: &[u8]) -> Result<u64> {
    let s = core::str::from_utf8(v).map_err(|_| EINVAL)?;
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() {
        return Err(EINVAL);
    }
    u64::from_str_radix(digits, radix).map_err(|e| match e.kind() {
        core::num::IntErrorKind::PosOverflow => ERANGE,
        _ => EINVAL,
    })
}

/// `kstrtobool`: 1/y/Y/t/T/on → true, 0/n/N/f/F/off → false.
pub(crate) fn parse_bool(data: &[u8]) -> Result<bool> {
    match strip_nl(data) {
        [b'1' | b'y' | b'Y' | b't' | b'T', ..] => Ok(true),
        [b'0' | b'n' | b'N' | b'f' | b'F', ..] => Ok(false),
        [b'o' | b'O', b'n' | b'N', ..] => Ok(true),
        [b'o' | b'O', b'f' | b'F', ..] => Ok(false),
        _ => Err(EINVAL),
    }
}

/// A fixed-capacity string for identity fields (vendor, product, serial...).
#[derive(Clone, Copy)]
pub(crate) struct Field<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Field<N> {
    pub(crate) const fn new(s: &[u8]) -> Self {
        let mut buf = [0u8; N];
        let mut i = 0;
        while i < s.len() && i < N {
            buf[i] = s[i];
            i += 1;
        }
        Field { buf, len: i }
    }
    pub(crate) fn get(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    /// Sets the value; EOVERFLOW if longer than `max`.
    pub(crate) fn set(&mut self, s: &[u8], max: usize) -> Result {
        if s.len() > max.min(N) {
            return Err(EOVERFLOW);
        }
        *self = Field::new(s);
        Ok(())
    }
}

/// The `wwn/` group: T10 identity.
#[derive(Clone, Copy)]
pub(crate) struct Wwn {
    pub(crate) vendor: Field<8>,
    pub(crate) product: Field<16>,
    pub(crate) revision: Field<4>,
    pub(crate) unit_serial: Field<254>,
    pub(crate) company_id: u32,
    pub(crate) pd_text_id_info: Field<256>,
}

/// Configuration written through `control`, `alias` and `udev_path`.
pub(crate) struct Config {
    pub(crate) backend: KBox<dyn BackendConfig>,
    pub(crate) alias: Option<Field<512>>,
    pub(crate) udev_path: Option<Field<512>>,
}

/// A backstore device.
#[pin_data]
pub struct Device {
    /// The device's directory name (e.g. `r0`).
    pub(crate) name: CString,
    /// Global device index (statistics `indx`).
    pub(crate) index: u32,
    /// HBA index (statistics `inst`).
    pub(crate) hba_index: u32,
    /// The backend plugin (`rd_mcp`, `fileio`, `iblock`).
    pub(crate) plugin: Plugin,
    attrib: [Atomic<u32>; 42],
    /// What `info` prints as Max Queue Depth: set only by writes to `queue_depth`, as in LIO.
    info_queue_depth: Atomic<u32>,
    export_count: Atomic<u32>,
    #[pin]
    pub(crate) wwn: SpinLock<Wwn>,
    #[pin]
    pub(crate) config: Mutex<Config>,
    backend: SetOnce<Arc<dyn Backend>>,
    /// Bytes of storage, set at enable (and by a fileio resize).
    bytes: Atomic<u64>,
    /// The session holding an SPC-2 reservation (RESERVE), 0 when none: one relaxed load
    /// per command checks it.
    spc2_holder: Atomic<usize>,
    /// The control page's SWP (software write protect), set by MODE SELECT: 1 refuses every
    /// write from every nexus. Kept until changed, as `emulate_write_cache`.
    swp: Atomic<u32>,
    /// 1 while a SANITIZE runs ([`SanitizeHold`]): the other commands get NOT READY.
    sanitizing: Atomic<u32>,
    /// The running SANITIZE's progress in 65536ths, for REQUEST SENSE.
    sanitize_progress: Atomic<u32>,
    /// The SANITIZE without IMMED whose sanitize operation runs: answered at its end.
    #[pin]
    sanitize_waiter: SpinLock<Option<CmdRef>>,
    /// The thread of the last sanitize operation (joined by the next one, or when the
    /// device goes), and whether the device went.
    #[pin]
    sanitize_thread: Mutex<(Option<Thread>, bool)>,
    /// Persistent reservations.
    #[pin]
    pub(crate) pr: Reservations,
    /// The ports and LUN numbers exporting the device, for device-wide unit attentions.
    #[pin]
    exports: Mutex<KVec<(Arc<Port>, u64)>>,
    /// A COMPARE AND WRITE holds the device's compare-and-write slot from its read to its
    /// write (one at a time, as LIO's `caw_sem`); the others wait in line, parked rather than
    /// sleeping, so no workqueue worker ever blocks on the slot. Process context only.
    #[pin]
    caw: Mutex<CawQueue>,
}

/// What another protocol's view of an enabled device reports (an NVMe namespace's Identify).
#[derive(Clone, Copy, Debug)]
pub struct Facts {
    /// Capacity in blocks.
    pub blocks: u64,
    /// log2 of the block size.
    pub block_shift: u8,
    /// Deallocation is supported (`emulate_tpu`).
    pub unmap: bool,
    /// Deallocated blocks read back as zeroes (`unmap_zeroes_data`).
    pub unmap_zeroes: bool,
    /// WRITE SAME may deallocate (`emulate_tpws`).
    pub unmap_write_same: bool,
    /// Most block descriptors one UNMAP takes (`max_unmap_block_desc_count`).
    pub max_unmap_descs: u32,
    /// Most blocks one descriptor names (`max_unmap_lba_count`).
    pub max_unmap_blocks: u32,
    /// A volatile write cache is reported (`emulate_write_cache`).
    pub write_cache: bool,
    /// The NAA designator of VPD page 83h (none without a unit serial, as in LIO).
    pub designator: Option<[u8; 16]>,
}

/// A running SANITIZE's mark on its device, taken off when dropped (when its operation ends,
/// however it ends).
pub(crate) struct SanitizeHold(Arc<Device>);

impl SanitizeHold {
    /// Records the progress REQUEST SENSE reports, in 65536ths.
    pub(crate) fn set_progress(&self, progress: u16) {
        self.0.sanitize_progress.store(u32::from(progress), Relaxed);
    }

    /// The device being sanitized.
    pub(crate) fn device(&self) -> &Arc<Device> {
        &self.0
    }
}

impl Drop for SanitizeHold {
    fn drop(&mut self) {
        // Zero before the next SANITIZE can start: it never shows this one's progress.
        self.0.sanitize_progress.store(0, Relaxed);
        self.0
            .sanitizing
            .store(0, kernel::sync::atomic::ordering::Release);
    }
}

/// The compare-and-write slot and the commands waiting for it.
pub(crate) struct CawQueue {
    busy: bool,
    waiting: KVec<CmdRef>,
}

/// A device's compare-and-write slot, held by one COMPARE AND WRITE from its read to its
/// write; given back when dropped (process context: the command's steps run there).
pub(crate) struct CawSlot(Arc<Device>);

impl Drop for CawSlot {
    fn drop(&mut self) {
        let next = {
            let mut q = self.0.caw.lock();
            q.busy = false;
            (!q.waiting.is_empty())
                .then(|| q.waiting.remove(0))
                .and_then(|r| r.ok())
        };
        if let Some(cmd) = next {
            cmd.defer();
        }
    }
}

impl Device {
    /// A fresh, disabled device of `plugin`, its backend's device number `id`.
    pub(crate) fn new(
        name: &CStr,
        plugin: Plugin,
        hba_index: u32,
        index: u32,
        id: u32,
    ) -> Result<Arc<Device>> {
        let backend = plugin.new_config(id)?;
        let product = backend.product();
        Arc::pin_init(
            try_pin_init!(Device {
                name: name.to_cstring()?,
                index,
                hba_index,
                plugin,
                attrib: core::array::from_fn(|i| Atomic::new(ATTRIBS[i].pre)),
                info_queue_depth: Atomic::new(0),
                export_count: Atomic::new(0),
                wwn <- kernel::new_spinlock!(Wwn {
                    vendor: Field::new(b"LIO-ORG"),
                    product: Field::new(product),
                    revision: Field::new(b"4.0"),
                    unit_serial: Field::new(b""),
                    company_id: LIO_COMPANY_ID,
                    pd_text_id_info: Field::new(b""),
                }),
                config <- kernel::new_mutex!(Config { backend, alias: None, udev_path: None }),
                backend: SetOnce::new(),
                bytes: Atomic::new(0),
                spc2_holder: Atomic::new(0),
                swp: Atomic::new(0),
                sanitizing: Atomic::new(0),
                sanitize_progress: Atomic::new(0),
                sanitize_waiter <- kernel::new_spinlock!(None),
                sanitize_thread <- kernel::new_mutex!((None, false)),
                pr <- Reservations::new(),
                exports <- kernel::new_mutex!(KVec::new()),
                caw <- kernel::new_mutex!(CawQueue { busy: false, waiting: KVec::new() }),
            }? Error),
            GFP_KERNEL,
        )
    }

    pub(crate) fn attr(&self, at: At) -> u32 {
        self.attrib[at as usize].load(Relaxed)
    }

    /// SPC-2 RESERVE by session `id`: false if another session holds the reservation.
    pub(crate) fn spc2_reserve(&self, id: usize) -> bool {
        match self
            .spc2_holder
            .cmpxchg(0, id, kernel::sync::atomic::ordering::Full)
        {
            Ok(_) => true,
            Err(holder) => holder == id,
        }
    }

    /// SPC-2 RELEASE by session `id` (a reservation held by another session stays).
    pub(crate) fn spc2_release(&self, id: usize) {
        let _ = self
            .spc2_holder
            .cmpxchg(id, 0, kernel::sync::atomic::ordering::Full);
    }

    /// Drops the SPC-2 reservation, whoever holds it (LOGICAL UNIT RESET).
    pub(crate) fn spc2_clear(&self) {
        self.spc2_holder.store(0, Relaxed);
    }

    /// Whether session `id` is locked out by another session's SPC-2 reservation.
    pub(crate) fn spc2_conflict(&self, id: usize) -> bool {
        let holder = self.spc2_holder.load(Relaxed);
        holder != 0 && holder != id
    }

    /// Takes the device's compare-and-write slot for `cmd`, or parks `cmd` until the holder
    /// gives it back (`None`); a parked command is deferred again then, to ask once more.
    /// `Err`: it could not be parked (no memory).
    pub(crate) fn caw_acquire(
        self: &Arc<Self>,
        cmd: CmdRef,
    ) -> core::result::Result<Option<(CmdRef, CawSlot)>, CmdRef> {
        let mut q = self.caw.lock();
        if !q.busy {
            q.busy = true;
            return Ok(Some((cmd, CawSlot(self.clone()))));
        }
        if q.waiting.reserve(1, GFP_KERNEL).is_err() {
            return Err(cmd);
        }
        q.waiting
            .push_within_capacity(cmd)
            .map(|()| None)
            .map_err(|e| e.0)
    }

    /// The NAA designator VPD 83h reports, by which EXTENDED COPY names the device.
    pub(crate) fn designator(&self) -> [u8; 16] {
        let wwn = self.wwn.lock();
        crate::proto::spc::naa_6h(wwn.company_id, wwn.unit_serial.get())
    }

    /// Value of `attrib/` file number `i`.
    pub(crate) fn attrib(&self, i: usize) -> u32 {
        self.attrib[i].load(Relaxed)
    }

    /// `pi_prot_type`, with LIO's checks in LIO's order: 0 to 3 (LIO refuses type 2 with
    /// ENOSYS; rtarget has it); 1 to 3 need a backend that stores protection information
    /// (ENOSYS); the device must be enabled
    /// (ENODEV) and exported by no LUN (EINVAL). Turning it on creates the store (all ones),
    /// turning it off drops it, and `pi_prot_verify` follows.
    fn store_pi_type(&self, data: &[u8]) -> Result {
        let v = parse_u32(data)?;
        if v > 3 {
            return Err(EINVAL);
        }
        if !self.plugin.supports_pi() {
            return if v == 0 { Ok(()) } else { Err(ENOSYS) };
        }
        // One change of the store at a time.
        let _config = self.config.lock();
        let be = self.backend().ok_or(ENODEV)?;
        if self.exported() {
            return Err(EINVAL);
        }
        let old = self.attr(At::PiType);
        if old == 0 && v != 0 {
            be.pi_init(self.blocks())?;
        } else if old != 0 && v == 0 {
            be.pi_free();
        }
        self.attrib[At::PiType as usize].store(v, Relaxed);
        self.attrib[At::PiVerify as usize].store(u32::from(v != 0), Relaxed);
        Ok(())
    }

    /// `pi_prot_format=1`: fills the store with all ones, where the backend keeps one that
    /// needs it (fileio; ENOSYS otherwise). Enabled (ENODEV), not exported (EINVAL), with
    /// protection information on (ENODEV). It always reads 0.
    fn store_pi_format(&self, data: &[u8]) -> Result {
        if !parse_bool(data)? {
            return Ok(());
        }
        if self.plugin != Plugin::File {
            return Err(ENOSYS);
        }
        let _config = self.config.lock();
        let be = self.backend().ok_or(ENODEV)?;
        if self.exported() {
            return Err(EINVAL);
        }
        if self.attr(At::PiType) == 0 {
            return Err(ENODEV);
        }
        be.pi_format(self.blocks())
    }

    /// The protection type of the device's stored protection information.
    pub(crate) fn pi_type(&self) -> Option<crate::proto::pi::PiType> {
        crate::proto::pi::PiType::from_attr(self.attr(At::PiType))
    }

    /// Whether a LUN exports this device.
    pub(crate) fn exported(&self) -> bool {
        self.export_count.load(Relaxed) > 0
    }

    pub(crate) fn export_count(&self) -> u32 {
        self.export_count.load(Relaxed)
    }

    pub(crate) fn info_queue_depth(&self) -> u32 {
        self.info_queue_depth.load(Relaxed)
    }

    /// Called with the configfs symlink lock: LUN `index` of `port` exports this device.
    pub(crate) fn export(&self, port: &Arc<Port>, index: u64) -> Result {
        self.exports
            .lock()
            .push((port.clone(), index), GFP_KERNEL)?;
        self.export_count.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Undoes [`Device::export`].
    pub(crate) fn unexport(&self, port: &Port, index: u64) {
        let mut exports = self.exports.lock();
        if let Some(i) = exports
            .iter()
            .position(|(p, l)| core::ptr::eq(&**p, port) && *l == index)
        {
            let _ = exports.remove(i);
        }
        // Another LUN may still export the device through the same port.
        if !exports.iter().any(|(p, _)| core::ptr::eq(&**p, port)) {
            self.pr.forget_port(port);
        }
        self.export_count.fetch_sub(1, Relaxed);
    }

    /// `emulate_write_cache` set by MODE SELECT.
    pub(crate) fn set_write_cache(&self, on: bool) {
        self.attrib[At::WriteCache as usize].store(u32::from(on), Relaxed);
    }

    /// Software write protect (the control page's SWP).
    pub(crate) fn swp(&self) -> bool {
        self.swp.load(Relaxed) != 0
    }

    /// SWP set by MODE SELECT.
    pub(crate) fn set_swp(&self, on: bool) {
        self.swp.store(u32::from(on), Relaxed);
    }

    /// Whether a SANITIZE is running.
    pub(crate) fn sanitizing(&self) -> bool {
        self.sanitizing
            .load(kernel::sync::atomic::ordering::Acquire)
            != 0
    }

    /// Marks a SANITIZE running until the hold is dropped; `None` if one already runs.
    pub(crate) fn start_sanitize(self: &Arc<Self>) -> Option<SanitizeHold> {
        self.sanitizing
            .cmpxchg(0, 1, kernel::sync::atomic::ordering::Full)
            .ok()?;
        Some(SanitizeHold(self.clone()))
    }

    /// Runs a sanitize operation in a thread of its own, once the previous operation's thread
    /// (which has ended: it gave back the hold) is joined. `ENODEV` once the device went.
    pub(crate) fn spawn_sanitize(&self, op: impl FnOnce() + Send + 'static) -> Result {
        let mut slot = self.sanitize_thread.lock();
        if slot.1 {
            return Err(ENODEV);
        }
        drop(slot.0.take());
        slot.0 = Some(Thread::spawn(c"rt_sanitize", op)?);
        Ok(())
    }

    /// The device goes: stops a running sanitize operation, waits for its thread, and
    /// refuses new ones. Process context.
    pub(crate) fn stop_sanitize(&self) {
        let mut slot = self.sanitize_thread.lock();
        slot.1 = true;
        drop(slot.0.take());
    }

    /// Parks the SANITIZE command (without IMMED) its operation answers when it ends.
    pub(crate) fn park_sanitize(&self, cmd: CmdRef) {
        let old = self.sanitize_waiter.lock().replace(cmd);
        // One sanitize operation at a time, and each takes its command before it ends.
        kernel::warn_on!(old.is_some());
    }

    /// The parked SANITIZE command; with `gone`, only if its answer is no longer awaited:
    /// task management aborted it, the initiator's timer expired, or its nexus closed.
    pub(crate) fn take_sanitize(&self, gone: bool) -> Option<CmdRef> {
        let unawaited = |c: &CmdRef| {
            c.aborted() || c.was_timed_out() || c.session().is_some_and(|s| s.closed())
        };
        let mut waiter = self.sanitize_waiter.lock();
        if gone && !waiter.as_ref().is_some_and(unawaited) {
            return None;
        }
        waiter.take()
    }

    /// The running SANITIZE's progress in 65536ths; `None` when none runs.
    pub(crate) fn sanitize_progress(&self) -> Option<u16> {
        self.sanitizing()
            .then(|| self.sanitize_progress.load(Relaxed) as u16)
    }

    /// Calls `f` with every nexus that reaches the device and each LUN number it reaches it
    /// through.
    pub(crate) fn for_each_nexus(&self, mut f: impl FnMut(&Arc<Session>, u64)) {
        self.for_each_export(|port, lun| {
            port.for_each_session(|s| s.for_each_mapping_of(lun, |n| f(s, n)))
        });
    }

    /// Calls `f` with every port that exports the device and the LUN it exports it as.
    pub(crate) fn for_each_export(&self, mut f: impl FnMut(&Arc<Port>, u64)) {
        for (port, lun) in self.exports.lock().iter() {
            f(port, *lun);
        }
    }

    /// Raises a unit attention on every nexus that reaches the device but session `except`.
    pub(crate) fn raise_ua_except(&self, code: (u8, u8), except: usize) {
        self.raise_ua_where(code, |s| s.id() != except);
    }

    /// Raises a unit attention on every nexus that reaches the device and that `pick` chooses.
    pub(crate) fn raise_ua_where(&self, code: (u8, u8), pick: impl Fn(&Session) -> bool) {
        self.for_each_nexus(|s, lun| {
            if pick(s) {
                s.raise_ua(lun, code)
            }
        });
    }

    /// The session holding the SPC-2 reservation, if it is still logged in.
    pub(crate) fn spc2_session(&self) -> Option<Arc<Session>> {
        let holder = self.spc2_holder.load(Relaxed);
        let mut found = None;
        self.for_each_nexus(|s, _| {
            if holder != 0 && s.id() == holder {
                found = Some(s.clone());
            }
        });
        found
    }

    /// The LUN through which the port `wwn` / `tpgt` exports the device.
    pub(crate) fn lun_on(&self, wwn: &[u8], tpgt: u16) -> Option<u64> {
        self.exports
            .lock()
            .iter()
            .find(|(p, _)| p.wwn.to_bytes() == wwn && p.tpgt == tpgt)
            .map(|(_, l)| *l)
    }

    /// Whether an SPC-2 reservation is held, by anyone.
    pub(crate) fn spc2_held(&self) -> bool {
        self.spc2_holder.load(Relaxed) != 0
    }

    /// Raises a unit attention on every nexus that reaches the device, through every LUN.
    pub(crate) fn raise_ua(&self, code: (u8, u8)) {
        self.raise_ua_where(code, |_| true);
    }

    /// A new capacity of `bytes` for an enabled device: the backend makes room, then every
    /// nexus gets CAPACITY DATA HAS CHANGED.
    pub(crate) fn resize(&self, bytes: u64) -> Result {
        let be = self.backend().ok_or(EINVAL)?;
        // The new blocks would have no tuples.
        if self.pi_type().is_some() {
            return Err(EBUSY);
        }
        be.resize(bytes)?;
        self.bytes.store(bytes, Relaxed);
        self.raise_ua(crate::ua::CAPACITY_CHANGED);
        Ok(())
    }

    /// The device's size and identity as every protocol reports them, once enabled.
    pub fn facts(&self) -> Option<Facts> {
        if !self.enabled() {
            return None;
        }
        let bs = self.attr(At::BlockSize).max(512);
        let has_serial = !self.wwn.lock().unit_serial.get().is_empty();
        Some(Facts {
            blocks: self.blocks(),
            block_shift: bs.trailing_zeros() as u8,
            unmap: self.attr(At::Tpu) != 0,
            unmap_zeroes: self.attr(At::UnmapZeroesData) != 0,
            unmap_write_same: self.attr(At::Tpws) != 0,
            max_unmap_descs: self.attr(At::MaxUnmapDescCount),
            max_unmap_blocks: self.attr(At::MaxUnmapLbaCount),
            write_cache: self.attr(At::WriteCache) != 0,
            designator: has_serial.then(|| self.designator()),
        })
    }

    /// Writes `udev_path` (the file or block device rtslib records there) to `out`.
    pub fn write_udev_path(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        let cfg = self.config.lock();
        match &cfg.udev_path {
            Some(p) => out.write_str(core::str::from_utf8(p.get()).unwrap_or("")),
            None => Ok(()),
        }
    }

    /// Capacity in blocks and log2 of the block size: what an I/O command is checked against.
    #[inline]
    pub fn shape(&self) -> (u64, u8) {
        let bs = self.attr(At::BlockSize).max(512);
        (self.blocks(), bs.trailing_zeros() as u8)
    }

    /// A configfs link that will export the device once enabled (an NVMe namespace's): the
    /// device counts as exported from now on (it cannot be disabled or removed) until
    /// [`Device::release_export`].
    pub fn hold_export(&self) {
        self.export_count.fetch_add(1, Relaxed);
    }

    /// Undoes [`Device::hold_export`].
    pub fn release_export(&self) {
        self.export_count.fetch_sub(1, Relaxed);
    }

    /// Whether the device has a backend (its `enable` succeeded).
    pub fn is_enabled(&self) -> bool {
        self.enabled()
    }

    /// Whether `enable` succeeded.
    pub(crate) fn enabled(&self) -> bool {
        self.backend.as_ref().is_some()
    }

    /// The backend, once enabled.
    pub(crate) fn backend(&self) -> Option<&Arc<dyn Backend>> {
        self.backend.as_ref()
    }

    /// The longest transfer a command may ask for, in blocks: `hw_max_sectors`, and never
    /// less than [`MAX_ACCEPT_BYTES`](crate::backend::MAX_ACCEPT_BYTES).
    pub(crate) fn max_transfer(&self) -> u32 {
        let accept = match self.attr(At::BlockSize) {
            0 => 0,
            bs => crate::backend::MAX_ACCEPT_BYTES >> bs.trailing_zeros(),
        };
        self.attr(At::HwMaxSectors).max(accept)
    }

    /// Capacity in blocks of the current block size.
    pub(crate) fn blocks(&self) -> u64 {
        // Block sizes are powers of two (512..=4096): a shift, not a division, per command.
        match self.attr(At::BlockSize) {
            0 => 0,
            bs => self.bytes.load(Relaxed) >> bs.trailing_zeros(),
        }
    }

    /// `enable`: opens or allocates the backend's storage and takes the hardware attributes
    /// from it.
    pub(crate) fn enable(&self) -> Result {
        let mut cfg = self.config.lock();
        if self.enabled() {
            return Err(EEXIST);
        }
        let (backend, geo) = cfg.backend.enable()?;
        for (i, spec) in ATTRIBS.iter().enumerate() {
            let cur = self.attrib[i].load(Relaxed);
            let v = post_enable_value(spec, cur, &geo);
            if v != cur {
                self.attrib[i].store(v, Relaxed);
            }
        }
        self.bytes.store(geo.bytes, Relaxed);
        if !self.backend.populate(backend) {
            return Err(EEXIST);
        }
        Ok(())
    }

    /// A write to `attrib/` file number `i`, checked by LIO's rules.
    pub(crate) fn store_attrib(&self, i: usize, data: &[u8]) -> Result {
        let spec = ATTRIBS.get(i).ok_or(EINVAL)?;
        let cur = self.attrib(i);
        let exported = self.exported();
        let v = match spec.rule {
            Rule::Ro => return Err(EACCES),
            Rule::Bool => {
                let v = u32::from(parse_bool(data)?);
                // As LIO: a backend that reports its medium's cache (iblock) cannot emulate one.
                if i == At::WriteCache as usize
                    && v == 1
                    && self.backend().is_some_and(|b| b.write_cache().is_some())
                {
                    pr_err!("emulate_write_cache not supported for this device\n");
                    return Err(EINVAL);
                }
                v
            }
            Rule::BoolIdle => {
                let v = u32::from(parse_bool(data)?);
                if exported {
                    return Err(EINVAL);
                }
                v
            }
            Rule::U32 => parse_u32(data)?,
            Rule::Fixed | Rule::FixedIdle => {
                let v = parse_u32(data)?;
                if spec.rule == Rule::FixedIdle && exported {
                    return Err(EINVAL);
                }
                if v != cur {
                    return Err(ENOSYS);
                }
                v
            }
            Rule::Thin => {
                let v = u32::from(parse_bool(data)?);
                if v == 1 && self.attr(At::MaxUnmapDescCount) == 0 {
                    self.configure_unmap()?;
                }
                v
            }
            Rule::UaIntlck => {
                let v = parse_u32(data)?;
                if v > 2 || exported {
                    return Err(EINVAL);
                }
                v
            }
            Rule::BlockSize => {
                let v = parse_u32(data)?;
                // The protection information store is sized in blocks.
                if exported
                    || !matches!(v, 512 | 1024 | 2048 | 4096)
                    || (v != cur && self.attr(At::PiType) != 0)
                {
                    return Err(EINVAL);
                }
                v
            }
            Rule::QueueDepth => {
                let v = parse_u32(data)?;
                if exported || v == 0 || v > cur.max(self.attr(At::HwQueueDepth)) {
                    return Err(EINVAL);
                }
                self.info_queue_depth.store(v, Relaxed);
                v
            }
            Rule::OptimalSectors => {
                let v = parse_u32(data)?;
                if exported || v > self.attr(At::HwMaxSectors) {
                    return Err(EINVAL);
                }
                v
            }
            Rule::Type => {
                let v = parse_u32(data)?;
                if v > 2 {
                    return Err(EINVAL);
                }
                v
            }
            Rule::PiType => return self.store_pi_type(data),
            Rule::PiFormat => return self.store_pi_format(data),
            // As LIO: turning verification on without protection information is ignored.
            Rule::PiVerify => u32::from(parse_bool(data)? && self.attr(At::PiType) != 0),
        };
        self.attrib[i].store(v, Relaxed);
        if i == At::ModelAlias as usize {
            self.apply_model_alias(v != 0);
        }
        Ok(())
    }

    /// Fills `max_unmap_*` and `unmap_zeroes_data` from the backend's deallocation limits:
    /// ENODEV before `enable`, ENOSYS if the medium cannot deallocate (as LIO).
    fn configure_unmap(&self) -> Result {
        let Some(be) = self.backend() else {
            pr_err!("rtarget: thin provisioning needs an enabled device\n");
            return Err(ENODEV);
        };
        let Some(u) = be.unmap_limits() else {
            pr_err!("rtarget: the backend cannot deallocate (no discard)\n");
            return Err(ENOSYS);
        };
        let bs = u64::from(self.attr(At::BlockSize).max(1));
        let set = |at: At, v: u64| {
            self.attrib[at as usize].store(v.min(u64::from(u32::MAX)) as u32, Relaxed)
        };
        set(At::MaxUnmapLbaCount, u.max_bytes / bs);
        set(At::MaxUnmapDescCount, 64);
        set(At::UnmapGranularity, (u64::from(u.granularity) / bs).max(1));
        set(At::UnmapAlignment, u64::from(u.alignment) / bs);
        set(At::UnmapZeroesData, u64::from(u.zeroes));
        Ok(())
    }

    /// `emulate_model_alias`: the product id becomes the device's name (first 16 bytes).
    fn apply_model_alias(&self, on: bool) {
        let product = self.config.lock().backend.product();
        let mut wwn = self.wwn.lock();
        let name = self.name.to_bytes();
        wwn.product = Field::new(if on {
            &name[..name.len().min(16)]
        } else {
            product
        });
    }
}
