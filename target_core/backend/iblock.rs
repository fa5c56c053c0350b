// SPDX-License-Identifier: GPL-2.0

//! iblock: a block device behind a device (LIO's `target_core_iblock.c`), with LIO's `control`
//! keys (`udev_path`, `readonly`, `exclusive`) and `info` text. Each command's data goes out as
//! bios built on the command's scatterlist (the first one inline in the command), completed
//! from `bi_end_io`; the limits are read from the queue as LIO reads them.

use super::{Applied, Backend, BackendConfig, Geometry, Layout, Op, Rw, UnmapLimits};
use crate::cmd::{self, CmdRef};
use crate::device::parse_u32;
use crate::proto::sense::Sense;
use crate::rt::io::{BlockDev, Sgl};
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::Arc;

/// LIO's `SE_UDEV_PATH_LEN`.
const UDEV_PATH_LEN: usize = 512;

/// `control` settings of an iblock device.
pub struct IblockConfig {
    udev_path: Option<CString>,
    readonly: bool,
    exclusive: bool,
    /// Name and numbers of the opened device, for `info`.
    opened: Option<(CString, u32, u32)>,
}

impl IblockConfig {
    pub(crate) fn new(_id: u32) -> Self {
        IblockConfig {
            udev_path: None,
            readonly: false,
            // LIO's default: claim the device.
            exclusive: true,
            opened: None,
        }
    }
}

/// `kstrtoul(s, 0)` / `kstrtoint(s, 0)` as a boolean (any non-zero value is true).
fn parse_flag(v: &[u8]) -> Result<bool> {
    Ok(parse_u32(v)? != 0)
}

impl BackendConfig for IblockConfig {
    fn control(&mut self, key: &[u8], value: &[u8], _enabled: bool) -> Result<Applied> {
        match key {
            b"udev_path" => {
                if self.opened.is_some() {
                    pr_err!("Unable to set udev_path= while ib_dev->ibd_bd exists\n");
                    return Err(EEXIST);
                }
                if value.is_empty() || value.len() >= UDEV_PATH_LEN || value.contains(&0) {
                    return Err(EINVAL);
                }
                let s = core::str::from_utf8(value).map_err(|_| EINVAL)?;
                self.udev_path = Some(CString::try_from_fmt(fmt!("{s}"))?);
            }
            // After enable LIO accepts these and only `info` changes; so do we.
            b"readonly" => self.readonly = parse_flag(value)?,
            b"exclusive" => self.exclusive = parse_flag(value)?,
            // Accepted and ignored, as in LIO.
            b"force" => {
                parse_flag(value)?;
            }
            _ => return Ok(Applied::Unknown),
        }
        Ok(Applied::Done)
    }

    fn info(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        if let Some((name, _, _)) = &self.opened {
            write!(out, "iBlock device: {}", name.to_str().unwrap_or("?"))?;
        }
        if let Some(p) = &self.udev_path {
            write!(out, "  UDEV PATH: {}", p.to_str().unwrap_or("?"))?;
        }
        write!(
            out,
            "  readonly: {}\n  exclusive: {}\n        ",
            u8::from(self.readonly),
            u8::from(self.exclusive)
        )?;
        match &self.opened {
            Some((_, major, minor)) => {
                writeln!(out, "Major: {major} Minor: {minor}  CLAIMED: IBLOCK")
            }
            None => writeln!(out, "Major: 0 Minor: 0"),
        }
    }

    fn enable(&mut self) -> Result<(Arc<dyn Backend>, Geometry)> {
        let Some(path) = &self.udev_path else {
            pr_err!("Missing udev_path= parameters for IBLOCK\n");
            return Err(EINVAL);
        };
        let bdev = BlockDev::open(path, self.readonly, self.exclusive)?;
        let l = bdev.limits();
        let lbs = l.logical_block_size.max(512);
        // LIO: hw_max_sectors in logical blocks, rounded down to whole pages.
        let per_page = (4096 / lbs).max(1);
        let max_sectors =
            ((u64::from(l.max_hw_sectors) * 512 / u64::from(lbs)) as u32 / per_page) * per_page;
        let (major, minor) = bdev.dev_numbers();
        self.opened = Some((bdev.name()?, major, minor));
        let be: Arc<dyn Backend> = Arc::new(
            Iblock {
                bdev,
                readonly: self.readonly,
                write_cache: l.write_cache,
                unmap: (l.max_discard_sectors > 0).then_some(UnmapLimits {
                    max_bytes: u64::from(l.max_discard_sectors) * 512,
                    granularity: l.discard_granularity,
                    alignment: l.discard_alignment,
                    zeroes: false,
                }),
                layout: Layout {
                    io_min: l.io_min,
                    io_opt: l.io_opt,
                    lbppbe: (l.physical_block_size / lbs).max(1).ilog2() as u8,
                    lowest_aligned: (l.alignment_offset / lbs) as u16,
                },
            },
            GFP_KERNEL,
        )?;
        Ok((
            be,
            Geometry {
                bytes: l.nr_sectors * 512,
                block_size: lbs,
                max_sectors,
                queue_depth: l.nr_requests,
                // LIO keeps the attribute 0 and reports the device's cache (`get_write_cache`).
                write_cache: false,
                nonrot: l.nonrot,
                // As LIO's `target_configure_write_atomic_from_bdev`.
                atomic_max_bytes: l.atomic_write_max_bytes,
                atomic_unit_bytes: l.atomic_write_unit_min_bytes,
            },
        ))
    }

    fn product(&self) -> &'static [u8] {
        b"IBLOCK"
    }
}

/// An enabled iblock device.
struct Iblock {
    bdev: BlockDev,
    readonly: bool,
    /// The device's volatile write cache, read at enable (every command's checks use it).
    write_cache: bool,
    layout: Layout,
    /// The queue's discard limits, read at enable (LIO's `target_configure_unmap_from_bdev`).
    unmap: Option<UnmapLimits>,
}

impl Backend for Iblock {
    fn rw(&self, cmd: CmdRef, rw: Rw, write: bool) {
        if rw.len == 0 {
            let resid = cmd.resid();
            return cmd::complete(cmd, Ok(resid));
        }
        if let Err((cmd, _)) =
            cmd.submit_bio(&self.bdev, write, rw.pos / 512, rw.len, rw.fua, false)
        {
            cmd::complete(cmd, Err(Sense::backend_io_failure()));
        }
    }

    /// One `REQ_ATOMIC` bio: the block layer refuses what the device cannot write atomically.
    fn write_atomic(&self, cmd: CmdRef, rw: Rw) {
        if rw.len == 0 {
            return cmd::complete(cmd, Ok(0));
        }
        if let Err((cmd, _)) = cmd.submit_bio(&self.bdev, true, rw.pos / 512, rw.len, rw.fua, true)
        {
            cmd::complete(cmd, Err(Sense::backend_io_failure()));
        }
    }

    fn flush(&self, cmd: CmdRef, _pos: u64, _len: u64) {
        // The block layer flushes whole devices.
        cmd.submit_flush(&self.bdev);
    }

    /// `blkdev_issue_discard` and `blkdev_issue_zeroout` sleep: from the workqueue.
    fn discard(&self, cmd: CmdRef, _pos: u64, _len: u64) {
        cmd.defer();
    }

    fn write_zeroes(&self, cmd: CmdRef, _pos: u64, _len: u64) {
        cmd.defer();
    }

    fn deferred(&self, cmd: CmdRef) {
        let result = match cmd.data().op {
            Op::Discard { pos, len } => self.erase_sync(pos, len, true),
            Op::WriteZeroes { pos, len } => self.erase_sync(pos, len, false),
            _ => Err(EINVAL),
        };
        cmd::complete(
            cmd,
            result.map(|()| 0).map_err(|e| {
                pr_err!("IBLOCK: discard or zeroout failed: {:?}\n", e);
                Sense::backend_io_failure()
            }),
        )
    }

    fn write_sync(&self, pos: u64, data: &Sgl) -> Result {
        self.bdev.write_sync(pos / 512, data)
    }

    fn erase_sync(&self, pos: u64, len: u64, unmap: bool) -> Result {
        if unmap {
            self.bdev.discard(pos / 512, len / 512)
        } else {
            self.bdev.write_zeroes(pos / 512, len / 512)
        }
    }

    fn flush_sync(&self) -> Result {
        self.bdev.flush_sync()
    }

    fn write_cache(&self) -> Option<bool> {
        Some(self.write_cache)
    }

    fn unmap_limits(&self) -> Option<UnmapLimits> {
        self.unmap
    }

    fn read_only(&self) -> bool {
        self.readonly
    }

    fn layout(&self) -> Layout {
        self.layout
    }
}
