// SPDX-License-Identifier: GPL-2.0

//! fileio: a regular file or a block device node behind a device (LIO's `target_core_file.c`),
//! with LIO's `control` keys and `info` text.
//!
//! - Write-through (the default, LIO's `O_DSYNC` mode, WCE=0): `O_DIRECT` I/O submitted
//!   asynchronously through the command's kiocb and completed from the file system's
//!   completion, every write durable (`IOCB_DSYNC`) before GOOD. A file system without
//!   `O_DIRECT` (some tmpfs) falls back to the buffered path with every write synced.
//! - `fd_buffered_io=1` (LIO's "Buffered-WCE", WCE=1): page-cache I/O run from a workqueue;
//!   SYNCHRONIZE CACHE syncs the range and FUA writes sync theirs.

use super::{Applied, Backend, BackendConfig, Geometry, Rw, UnmapLimits};
use crate::cmd::{self, CmdRef};
use crate::device::parse_u64;
use crate::proto::sense::Sense;
use crate::rt::io::{BackingFile, ScratchSgl, Sgl};
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::{Arc, Mutex};

/// LIO's `FD_MAX_BYTES`: the largest single transfer.
const FD_MAX_BYTES: u32 = super::MAX_ACCEPT_BYTES;
/// LIO's `FD_MAX_DEVICE_QUEUE_DEPTH`.
const FD_QUEUE_DEPTH: u32 = 128;
/// LIO's `FD_BLOCKSIZE` for regular files.
const FD_BLOCK_SIZE: u32 = 512;
/// LIO's `FD_MAX_DEV_NAME`.
const FD_MAX_DEV_NAME: usize = 256;

/// `control` settings of a fileio device.
pub struct FileConfig {
    id: u32,
    name: Option<CString>,
    size: Option<u64>,
    buffered: bool,
    aio: bool,
}

impl FileConfig {
    pub(crate) fn new(id: u32) -> Self {
        FileConfig {
            id,
            name: None,
            size: None,
            buffered: false,
            aio: false,
        }
    }
}

impl BackendConfig for FileConfig {
    fn control(&mut self, key: &[u8], value: &[u8], enabled: bool) -> Result<Applied> {
        match key {
            // As in LIO, the size of an enabled device may change (growing its file); rtarget
            // also raises CAPACITY DATA HAS CHANGED.
            b"fd_dev_size" if enabled => {
                let size = parse_u64(value)?;
                if size < u64::from(FD_BLOCK_SIZE) {
                    return Err(EINVAL);
                }
                self.size = Some(size);
                Ok(Applied::Resize(size))
            }
            b"fd_dev_name" | b"fd_buffered_io" | b"fd_async_io" if enabled => Err(EBUSY),
            b"fd_dev_name" => {
                if value.is_empty() || value.len() >= FD_MAX_DEV_NAME || value.contains(&0) {
                    return Err(EINVAL);
                }
                let s = core::str::from_utf8(value).map_err(|_| EINVAL)?;
                self.name = Some(CString::try_from_fmt(fmt!("{s}"))?);
                Ok(Applied::Done)
            }
            b"fd_dev_size" => {
                self.size = Some(parse_u64(value)?);
                Ok(Applied::Done)
            }
            // As LIO: only 1 is valid ("bogus fd_buffered_io=0 value").
            b"fd_buffered_io" | b"fd_async_io" => {
                if value != b"1" {
                    pr_err!(
                        "bogus {}={} value\n",
                        core::str::from_utf8(key).unwrap_or("?"),
                        core::str::from_utf8(value).unwrap_or("?")
                    );
                    return Err(EINVAL);
                }
                if key == b"fd_buffered_io" {
                    self.buffered = true;
                } else {
                    self.aio = true;
                }
                Ok(Applied::Done)
            }
            _ => Ok(Applied::Unknown),
        }
    }

    fn info(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        let name = self
            .name
            .as_ref()
            .and_then(|n| n.to_str().ok())
            .unwrap_or("");
        writeln!(
            out,
            "TCM FILEIO ID: {}        File: {}  Size: {}  Mode: {} Async: {}",
            self.id,
            name,
            self.size.unwrap_or(0),
            if self.buffered {
                "Buffered-WCE"
            } else {
                "O_DSYNC"
            },
            u8::from(self.aio)
        )
    }

    fn enable(&mut self) -> Result<(Arc<dyn Backend>, Geometry)> {
        let Some(name) = &self.name else {
            pr_err!("Missing fd_dev_name=\n");
            return Err(EINVAL);
        };
        // Write-through wants O_DIRECT; probe whether the file system can, as loop.c does.
        let mut file = BackingFile::open(name, false, self.size)?;
        let direct = !self.buffered && file.can_direct();
        if direct {
            file = BackingFile::open(name, true, None)?;
        }
        let (bytes, block_size) = if file.is_blockdev() {
            (
                file.size(),
                file.logical_block_size().unwrap_or(FD_BLOCK_SIZE),
            )
        } else {
            let Some(size) = self.size else {
                pr_err!(
                    "FILEIO: Missing fd_dev_size= parameter, and no backing struct block_device\n"
                );
                return Err(EINVAL);
            };
            (size, FD_BLOCK_SIZE)
        };
        if bytes < u64::from(block_size) {
            pr_err!("FILEIO: fd_dev_size={} is less than one block\n", bytes);
            return Err(EINVAL);
        }
        let buffered = self.buffered;
        let name = name.to_cstring()?;
        let be: Arc<dyn Backend> = Arc::pin_init(
            try_pin_init!(File {
                file,
                direct,
                buffered,
                name,
                pi <- kernel::new_mutex!(None),
            }? Error),
            GFP_KERNEL,
        )?;
        Ok((
            be,
            Geometry {
                bytes,
                block_size,
                max_sectors: FD_MAX_BYTES / block_size,
                queue_depth: FD_QUEUE_DEPTH,
                write_cache: buffered,
                nonrot: false,
                atomic_max_bytes: 0,
                atomic_unit_bytes: 0,
            },
        ))
    }

    fn product(&self) -> &'static [u8] {
        b"FILEIO"
    }
}

/// An enabled fileio device.
#[pin_data]
struct File {
    file: BackingFile,
    /// Opened `O_DIRECT`: I/O is submitted asynchronously.
    direct: bool,
    /// `fd_buffered_io=1`: WCE, writes reach the page cache only.
    buffered: bool,
    /// `fd_dev_name`.
    name: CString,
    /// Protection information: `<fd_dev_name>.protection`, 8 bytes a block (LIO's
    /// `fd_init_prot`).
    #[pin]
    pi: Mutex<Option<BackingFile>>,
}

impl File {
    /// The synchronous path (buffered files), in process context.
    fn rw_now(&self, cmd: &CmdRef, rw: Rw, write: bool) -> Result<(), Sense> {
        // Write-through without O_DIRECT: every write is synced.
        let fua = rw.fua || (write && !self.buffered);
        let sgl = cmd.sgl().prefix(rw.len as u32);
        self.file
            .rw_sync(write, rw.pos, &sgl, fua)
            .map(|_| ())
            .map_err(|_| Sense::backend_io_failure())
    }
}

impl Backend for File {
    fn rw(&self, cmd: CmdRef, rw: Rw, _write: bool) {
        if rw.len > u64::from(FD_MAX_BYTES) {
            return cmd::complete(cmd, Err(Sense::backend_io_failure()));
        }
        if rw.len == 0 {
            let resid = cmd.resid();
            return cmd::complete(cmd, Ok(resid));
        }
        // Never from the submitter's context: `queuecommand` often runs inside `submit_bio`,
        // where bios the file system submits are parked until it returns, and a file system
        // that waits for its own I/O (ext4 and XFS, for sub-block writes into unwritten
        // extents) would wait forever. The workqueue submits (O_DIRECT) or does (buffered).
        cmd.defer();
    }

    fn deferred(&self, cmd: CmdRef) {
        let result = match cmd.data().op {
            crate::backend::Op::Read(rw) | crate::backend::Op::Write(rw) if self.direct => {
                let write = matches!(cmd.data().op, crate::backend::Op::Write(_));
                // Write-through: every write is durable before GOOD.
                let fua = rw.fua || write;
                if let Err((cmd, _)) = cmd.submit_file(&self.file, write, rw.pos, rw.len, fua) {
                    cmd::complete(cmd, Err(Sense::backend_io_failure()));
                }
                return;
            }
            crate::backend::Op::Read(rw) => self.rw_now(&cmd, rw, false),
            crate::backend::Op::Write(rw) => self.rw_now(&cmd, rw, true),
            crate::backend::Op::Flush { pos, len } => self.sync(pos, len),
            crate::backend::Op::Discard { pos, len } => self.deallocate(pos, len, false),
            crate::backend::Op::WriteZeroes { pos, len } => self.deallocate(pos, len, true),
            crate::backend::Op::None => Ok(()),
            // fileio has no atomic writes (its geometry gives no limits): never queued.
            crate::backend::Op::WriteAtomic(_) => Err(Sense::invalid_opcode()),
        };
        let resid = cmd.resid();
        cmd::complete(cmd, result.map(|()| resid))
    }

    fn flush(&self, cmd: CmdRef, _pos: u64, _len: u64) {
        // fsync sleeps: run it from the workqueue like buffered I/O.
        cmd.defer();
    }

    /// Holes of the file are deallocated blocks.
    fn extent(&self, pos: u64, len: u64, _block: u32) -> Result<(bool, u64), Sense> {
        self.file.extent(pos, len).map_err(|e| {
            pr_err!("FILEIO: SEEK_DATA/SEEK_HOLE failed: {:?}\n", e);
            Sense::backend_io_failure()
        })
    }

    /// A regular file: LIO's limits (8192 blocks a request, granularity one block); punched
    /// holes read back as zeroes. A block device file: its queue's discard limits.
    fn unmap_limits(&self) -> Option<UnmapLimits> {
        if self.file.is_blockdev() {
            return None;
        }
        Some(UnmapLimits {
            max_bytes: 0x2000 * 512,
            granularity: 512,
            alignment: 0,
            zeroes: true,
        })
    }

    /// UNMAP = punch a hole (LIO's `fd_execute_unmap`); on a block device file the block
    /// layer turns it into a discard. From the workqueue: fallocate sleeps.
    fn discard(&self, cmd: CmdRef, _pos: u64, _len: u64) {
        cmd.defer();
    }

    fn write_zeroes(&self, cmd: CmdRef, _pos: u64, _len: u64) {
        cmd.defer();
    }

    fn write_sync(&self, pos: u64, data: &Sgl) -> Result {
        self.file.rw_sync(true, pos, data, false).map(|_| ())
    }

    fn erase_sync(&self, pos: u64, len: u64, unmap: bool) -> Result {
        self.deallocate(pos, len, !unmap).map_err(|_| EIO)
    }

    fn flush_sync(&self) -> Result {
        self.sync(0, 0).map_err(|_| EIO)
    }

    fn resize(&self, bytes: u64) -> Result {
        if self.file.is_blockdev() {
            return Err(EINVAL);
        }
        self.file.extend(bytes)
    }

    /// Opens (creating) `<fd_dev_name>.protection`, as it is: `pi_prot_format` initialises it.
    /// Regular files only, as LIO.
    fn pi_init(&self, _blocks: u64) -> Result {
        if self.file.is_blockdev() {
            return Err(ENOSYS);
        }
        let path = CString::try_from_fmt(fmt!("{}.protection", self.name.to_str()?))?;
        *self.pi.lock() = Some(BackingFile::open(&path, false, Some(0))?);
        Ok(())
    }

    /// Writes all ones over the tuples of `blocks` blocks.
    fn pi_format(&self, blocks: u64) -> Result {
        let pi = self.pi.lock();
        let file = pi.as_ref().ok_or(ENODEV)?;
        let total = blocks.checked_mul(TUPLE_LEN).ok_or(EINVAL)?;
        let chunk = ScratchSgl::new(total.min(1 << 20) as u32)?;
        let sgl = chunk.sgl();
        sgl.fill(0, sgl.len() as usize, 0xff);
        let mut at = 0;
        while at < total {
            let n = (total - at).min(u64::from(sgl.len())) as u32;
            file.rw_sync(true, at, &sgl.prefix(n), false)?;
            at += u64::from(n);
        }
        file.fsync_range(0, u64::MAX)
    }

    fn pi_free(&self) {
        *self.pi.lock() = None;
    }

    /// Written through (as LIO's `O_DSYNC`) unless the device is `fd_buffered_io`.
    fn pi_rw(&self, lba: u64, tuples: &Sgl, write: bool) -> Result {
        let pi = self.pi.lock();
        let file = pi.as_ref().ok_or(EIO)?;
        let pos = lba.checked_mul(TUPLE_LEN).ok_or(EINVAL)?;
        file.rw_sync(write, pos, tuples, write && !self.buffered)
            .map(|_| ())
    }
}

/// Bytes of protection information per block.
const TUPLE_LEN: u64 = crate::proto::pi::TUPLE_LEN as u64;

impl File {
    /// Punches a hole (`zeroes`: zeroes the range instead, keeping it allocated where the
    /// file system can, else punching, which reads back as zeroes too).
    fn deallocate(&self, pos: u64, len: u64, zeroes: bool) -> Result<(), Sense> {
        let r = if zeroes {
            match self.file.zero_range(pos, len) {
                Err(e) if e == EOPNOTSUPP => self.file.punch_hole(pos, len),
                r => r,
            }
        } else {
            self.file.punch_hole(pos, len)
        };
        r.map_err(|e| {
            pr_err!("FILEIO: fallocate() failed: {:?}\n", e);
            Sense::backend_io_failure()
        })
    }

    /// SYNCHRONIZE CACHE: datasync of `len` bytes from `pos` (`len` 0: to the end).
    fn sync(&self, pos: u64, len: u64) -> Result<(), Sense> {
        let end = if len == 0 {
            u64::MAX
        } else {
            pos.saturating_add(len - 1)
        };
        self.file.fsync_range(pos, end).map_err(|e| {
            pr_err!("FILEIO: vfs_fsync_range() failed: {:?}\n", e);
            Sense::backend_io_failure()
        })
    }
}
