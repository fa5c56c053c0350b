// SPDX-License-Identifier: GPL-2.0

//! The backend boundary (LIO's `target_backend_ops` + `sbc_ops`, nvmet's io-cmd layer): what
//! a device's storage does with a command. Every method takes the command's unique handle and
//! must end it with [`complete`](crate::cmd::complete), inline or later from any context.
//!
//! Backends: [`rd`] (RAM, run to completion inline), [`file`] (fileio: async O_DIRECT through
//! a kiocb, buffered I/O from a workqueue) and [`iblock`] (bios completed in `bi_end_io`).

pub mod file;
pub mod iblock;
pub mod rd;

use crate::cmd::{self, CmdRef};
use crate::proto::sense::Sense;
use crate::rt::io::Sgl;
use kernel::prelude::*;
use kernel::sync::Arc;

/// A data transfer, already checked against the device's capacity and the command's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rw {
    /// Byte offset on the device.
    pub pos: u64,
    /// Bytes to move.
    pub len: u64,
    /// Force unit access.
    pub fua: bool,
}

/// The request a command is executing, kept in the command for backends that finish it in
/// several steps or from a workqueue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Nothing (an emulated command).
    None,
    /// Read into the command's buffer.
    Read(Rw),
    /// Write from the command's buffer.
    Write(Rw),
    /// Write from the command's buffer, all or nothing (WRITE ATOMIC).
    WriteAtomic(Rw),
    /// Make `len` bytes from `pos` durable (`len` 0: everything).
    Flush {
        /// Byte offset.
        pos: u64,
        /// Bytes (0: to the end).
        len: u64,
    },
    /// Deallocate `len` bytes from `pos`.
    Discard {
        /// Byte offset.
        pos: u64,
        /// Bytes.
        len: u64,
    },
    /// Write zeroes to `len` bytes from `pos`.
    WriteZeroes {
        /// Byte offset.
        pos: u64,
        /// Bytes.
        len: u64,
    },
}

/// Every backend takes a transfer this long in one command, whatever `hw_max_sectors` VPD B0h
/// advertises (LIO's `FD_MAX_BYTES`): iblock's bios are split to the queue's limits, so
/// initiators that ignore VPD B0h (libiscsi, some iSCSI initiators) get through, as on LIO.
pub(crate) const MAX_ACCEPT_BYTES: u32 = 8 * 1024 * 1024;

/// What an enabled backend reports about itself; feeds `attrib/`, VPD B0h and READ CAPACITY.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    /// Capacity in bytes.
    pub bytes: u64,
    /// `hw_block_size`.
    pub block_size: u32,
    /// `hw_max_sectors`: the longest transfer VPD B0h advertises.
    pub max_sectors: u32,
    /// `hw_queue_depth`.
    pub queue_depth: u32,
    /// A volatile write cache that SYNCHRONIZE CACHE flushes (`emulate_write_cache`'s default).
    pub write_cache: bool,
    /// Non-rotational medium.
    pub nonrot: bool,
    /// Largest atomic write in bytes (0: none), and its unit (granularity and alignment).
    pub atomic_max_bytes: u32,
    /// Atomic writes are multiples of this many bytes, aligned to it.
    pub atomic_unit_bytes: u32,
}

/// The medium's layout hints (LIO's `get_io_min`, `get_io_opt`, `get_lbppbe` and
/// `get_alignment_offset_lbas`); feed VPD B0h and READ CAPACITY(16).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// Minimum I/O size in bytes (0: unknown).
    pub io_min: u32,
    /// Optimal I/O size in bytes (0: unknown).
    pub io_opt: u32,
    /// Logical blocks per physical block, as a power of two.
    pub lbppbe: u8,
    /// The first logical block aligned to a physical block.
    pub lowest_aligned: u16,
}

/// What a medium can deallocate (LIO's `configure_unmap`); feeds `attrib/max_unmap_*` when
/// `emulate_tpu` or `emulate_tpws` is turned on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnmapLimits {
    /// Largest range one deallocation takes, in bytes.
    pub max_bytes: u64,
    /// Granularity in bytes.
    pub granularity: u32,
    /// Alignment of the granularity in bytes.
    pub alignment: u32,
    /// Deallocated ranges read back as zeroes (LBPRZ).
    pub zeroes: bool,
}

/// A device's storage once enabled.
pub trait Backend: Send + Sync {
    /// Moves `rw` between the command's buffer and the medium (`write`: to the medium).
    fn rw(&self, cmd: CmdRef, rw: Rw, write: bool);
    /// SYNCHRONIZE CACHE of `len` bytes from `pos` (`len` 0: to the end).
    fn flush(&self, cmd: CmdRef, _pos: u64, _len: u64) {
        cmd::complete(cmd, Ok(0))
    }
    /// Writes `rw` from the command's buffer all or nothing (WRITE ATOMIC), for a backend
    /// whose [`Geometry`] gave atomic write limits. By default the medium cannot.
    fn write_atomic(&self, cmd: CmdRef, _rw: Rw) {
        cmd::complete(cmd, Err(Sense::invalid_opcode()))
    }
    /// Deallocates `len` bytes from `pos` (UNMAP, WRITE SAME with UNMAP); they read back as
    /// zeroes afterwards where the medium guarantees it. By default the medium cannot.
    fn discard(&self, cmd: CmdRef, _pos: u64, _len: u64) {
        cmd::complete(cmd, Err(Sense::invalid_opcode()))
    }
    /// Writes zeroes to `len` bytes from `pos` (WRITE SAME of a zero block), offloaded where
    /// the medium can. By default the medium cannot.
    fn write_zeroes(&self, cmd: CmdRef, _pos: u64, _len: u64) {
        cmd::complete(cmd, Err(Sense::invalid_opcode()))
    }
    /// Writes all of `data` at byte `pos`, waiting for it: a SANITIZE running apart from
    /// any command. Process context, sleeps.
    fn write_sync(&self, _pos: u64, _data: &Sgl) -> Result {
        Err(ENOSYS)
    }
    /// Deallocates (`unmap`, where [`Backend::discard`] reads back as zeroes) or zeroes `len`
    /// bytes at `pos`, waiting for it. Process context, sleeps.
    fn erase_sync(&self, _pos: u64, _len: u64, _unmap: bool) -> Result {
        Err(ENOSYS)
    }
    /// Makes every completed write durable (the medium's write cache flushed), waiting for
    /// it. Process context, sleeps.
    fn flush_sync(&self) -> Result {
        Ok(())
    }
    /// Continues a command queued to a workqueue by this backend (process context).
    fn deferred(&self, cmd: CmdRef) {
        cmd::complete(cmd, Err(Sense::internal_target_failure()))
    }
    /// The medium's own write cache state, when the backend knows it (LIO's
    /// `get_write_cache`); `None`: `emulate_write_cache` says.
    fn write_cache(&self) -> Option<bool> {
        None
    }
    /// Whether the storage was opened read-only: writes fail with WRITE PROTECTED.
    fn read_only(&self) -> bool {
        false
    }
    /// The medium's layout hints; none by default.
    fn layout(&self) -> Layout {
        Layout::default()
    }
    /// Whether the `block`-byte block at `pos` is mapped (holds data) or deallocated, and how
    /// many bytes from `pos` share that state, at most `len` (GET LBA STATUS). Process
    /// context. By default everything is mapped.
    fn extent(&self, _pos: u64, len: u64, _block: u32) -> core::result::Result<(bool, u64), Sense> {
        Ok((true, len))
    }
    /// Whether and how the medium deallocates ([`Backend::discard`]); `None`: it cannot.
    fn unmap_limits(&self) -> Option<UnmapLimits> {
        None
    }
    /// Makes room for a new capacity of `bytes` (`fd_dev_size=` on an enabled fileio device).
    fn resize(&self, _bytes: u64) -> Result {
        Err(EINVAL)
    }
    /// Creates the store of T10 protection information for `blocks` blocks (`pi_prot_type`
    /// 1 or 3): 8 bytes a block (LIO's `init_prot`). Process context, no LUN exported.
    fn pi_init(&self, _blocks: u64) -> Result {
        Err(ENOSYS)
    }
    /// `pi_prot_format`: sets every tuple of the store to all ones, the application tag
    /// escape that disables the checks of blocks never written (LIO's `format_prot`).
    fn pi_format(&self, _blocks: u64) -> Result {
        Err(ENOSYS)
    }
    /// Drops the store (`pi_prot_type` 0).
    fn pi_free(&self) {}
    /// Moves the tuples of `tuples.len() / 8` blocks from `lba` between `tuples` and the
    /// store (`write`: into the store). Process context.
    fn pi_rw(&self, _lba: u64, _tuples: &Sgl, _write: bool) -> Result {
        Err(EIO)
    }
}

/// What a `control` pair did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The key is not the backend's.
    Unknown,
    /// Recorded.
    Done,
    /// The capacity of the enabled device changes to this many bytes.
    Resize(u64),
}

/// A backend's configuration before and after `enable` (LIO's `set_configfs_dev_params`,
/// `show_configfs_dev_params` and `configure_device`).
pub trait BackendConfig: Send {
    /// One `key=value` pair written to `control`. `enabled` says whether the device is
    /// enabled (most keys are refused then).
    fn control(&mut self, key: &[u8], value: &[u8], enabled: bool) -> Result<Applied>;
    /// The backend's lines of `info`, after the common status line.
    fn info(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result;
    /// `enable`: opens or allocates the storage.
    fn enable(&mut self) -> Result<(Arc<dyn Backend>, Geometry)>;
    /// The INQUIRY product identification LIO reports for the backend.
    fn product(&self) -> &'static [u8];
}

/// The plugins of `core/<plugin>_<N>`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Plugin {
    /// `rd_mcp`.
    Rd,
    /// `fileio`.
    File,
    /// `iblock`.
    Block,
}

impl Plugin {
    /// The plugin named by an HBA directory (`rd_mcp_0` → rd_mcp).
    pub fn from_name(name: &str) -> Option<Plugin> {
        match name {
            "rd_mcp" => Some(Plugin::Rd),
            "fileio" => Some(Plugin::File),
            "iblock" => Some(Plugin::Block),
            _ => None,
        }
    }

    /// The configfs name.
    pub fn name(self) -> &'static str {
        match self {
            Plugin::Rd => "rd_mcp",
            Plugin::File => "fileio",
            Plugin::Block => "iblock",
        }
    }

    /// Whether its devices can store T10 protection information (LIO: `init_prot`).
    pub fn supports_pi(self) -> bool {
        matches!(self, Plugin::Rd | Plugin::File)
    }

    /// A fresh configuration for device number `id` of an HBA of this plugin.
    pub fn new_config(self, id: u32) -> Result<KBox<dyn BackendConfig>> {
        Ok(match self {
            Plugin::Rd => KBox::new(rd::RdConfig::new(id), GFP_KERNEL)?,
            Plugin::File => KBox::new(file::FileConfig::new(id), GFP_KERNEL)?,
            Plugin::Block => KBox::new(iblock::IblockConfig::new(id), GFP_KERNEL)?,
        })
    }
}

/// The end of an I/O submitted through a command's `IoSlot` (any context): GOOD with the
/// residual set at submission, or a backend I/O failure.
pub(crate) fn io_done(cmd: CmdRef, err: i32) {
    let result = if err == 0 {
        Ok(cmd.resid())
    } else {
        Err(Sense::backend_io_failure())
    };
    cmd::complete(cmd, result)
}

/// A command its backend queued to a workqueue runs here (process context), and so does the
/// next step of a command run in several steps.
pub(crate) fn run_deferred(cmd: CmdRef) {
    if crate::sbc::step_finished(&cmd) {
        return crate::sbc::resume(cmd);
    }
    let step_target = cmd.data().step.as_ref().and_then(|s| s.target());
    let Some(be) = step_target.or_else(|| cmd.lun().and_then(|l| l.device.backend())) else {
        return cmd::complete(cmd, Err(Sense::lun_not_supported()));
    };
    let be = be.clone();
    be.deferred(cmd)
}
