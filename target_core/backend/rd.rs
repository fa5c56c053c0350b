// SPDX-License-Identifier: GPL-2.0

//! rd_mcp: a RAM disk (LIO's `target_core_rd.c`), or with `rd_nullio=1` a sink that stores
//! nothing and reads zeroes. Runs every command to completion in the submitter's context: no
//! lock, no allocation, no queueing.

use super::{Applied, Backend, BackendConfig, Geometry, Rw, UnmapLimits};
use crate::cmd::{self, CmdRef};
use crate::device::parse_u32;
use crate::proto::sense::Sense;
use crate::rt::io::Sgl;
use crate::rt::rambuf::RamBuf;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// rd_mcp's memory unit: `rd_pages` counts these.
pub const RD_PAGE_SIZE: u64 = 4096;
/// `hw_max_sectors` LIO computes for rd_mcp (UINT_MAX rounded down to whole pages).
pub const RD_HW_MAX_SECTORS: u32 = 0xffff_fff8;
/// `hw_queue_depth` of rd_mcp.
pub const RD_HW_QUEUE_DEPTH: u32 = 128;

/// `control` settings of an rd_mcp device.
pub struct RdConfig {
    id: u32,
    pages: u64,
    nullio: bool,
    dummy: bool,
    enabled: bool,
}

impl RdConfig {
    pub(crate) fn new(id: u32) -> Self {
        RdConfig {
            id,
            pages: 0,
            nullio: false,
            dummy: false,
            enabled: false,
        }
    }
}

impl BackendConfig for RdConfig {
    fn control(&mut self, key: &[u8], value: &[u8], enabled: bool) -> Result<Applied> {
        let v = parse_u32(value)?;
        match key {
            b"rd_pages" | b"rd_nullio" if enabled => return Err(EBUSY),
            b"rd_pages" => self.pages = u64::from(v),
            // As in LIO, only the value 1 sets these; nothing clears them.
            b"rd_nullio" => self.nullio |= v == 1,
            b"rd_dummy" => self.dummy |= v == 1,
            _ => return Ok(Applied::Unknown),
        }
        Ok(Applied::Done)
    }

    fn info(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        let sg_tables = if self.enabled && !self.nullio {
            self.pages / 2048 + 1
        } else {
            0
        };
        write!(
            out,
            "TCM RamDisk ID: {}  RamDisk Makeup: rd_mcp\n        \
             PAGES/PAGE_SIZE: {}*{}  SG_table_count: {}  nullio: {} dummy: {}\n",
            self.id,
            self.pages,
            RD_PAGE_SIZE,
            sg_tables,
            u8::from(self.nullio),
            u8::from(self.dummy)
        )
    }

    fn enable(&mut self) -> Result<(Arc<dyn Backend>, Geometry)> {
        if self.pages == 0 {
            pr_warn!("rd_mcp: rd_pages must be set before enable\n");
            return Err(EINVAL);
        }
        let bytes = self.pages.checked_mul(RD_PAGE_SIZE).ok_or(EINVAL)?;
        let ram = if self.nullio {
            None
        } else {
            Some(RamBuf::new(usize::try_from(bytes).map_err(|_| ENOMEM)?)?)
        };
        let be: Arc<dyn Backend> = Arc::pin_init(
            try_pin_init!(Rd {
                ram,
                pi <- kernel::new_mutex!(None),
            }? Error),
            GFP_KERNEL,
        )?;
        self.enabled = true;
        Ok((
            be,
            Geometry {
                bytes,
                block_size: 512,
                max_sectors: RD_HW_MAX_SECTORS,
                queue_depth: RD_HW_QUEUE_DEPTH,
                write_cache: false,
                nonrot: true,
                atomic_max_bytes: 0,
                atomic_unit_bytes: 0,
            },
        ))
    }

    fn product(&self) -> &'static [u8] {
        b"RAMDISK-MCP"
    }
}

/// An enabled rd_mcp device.
#[pin_data]
struct Rd {
    /// `None` with `rd_nullio`.
    ram: Option<RamBuf>,
    /// Protection information, 8 bytes a block (LIO's `rd_build_prot_space`).
    #[pin]
    pi: Mutex<Option<RamBuf>>,
}

impl Backend for Rd {
    fn rw(&self, cmd: CmdRef, rw: Rw, write: bool) {
        // rd_nullio: writes vanish and reads leave the buffer as it is, as in LIO.
        let result = match &self.ram {
            Some(ram) => ram.transfer(cmd.sgl(), rw.pos, rw.len, !write),
            None => Ok(()),
        };
        let resid = cmd.resid();
        cmd::complete(
            cmd,
            result
                .map(|()| resid)
                .map_err(|_| Sense::lba_out_of_range()),
        )
    }

    /// A block of zeroes is as good as deallocated (it reads back the same): blocks are
    /// reported mapped only when they hold data.
    fn extent(&self, pos: u64, len: u64, block: u32) -> Result<(bool, u64), Sense> {
        match &self.ram {
            Some(ram) => ram
                .extent(pos, len, block)
                .map_err(|_| Sense::lba_out_of_range()),
            None => Ok((false, len)),
        }
    }

    /// LIO's fileio limit (8192 blocks a request); zeroed RAM reads back as zeroes.
    fn unmap_limits(&self) -> Option<UnmapLimits> {
        Some(UnmapLimits {
            max_bytes: 0x2000 * 512,
            granularity: 512,
            alignment: 0,
            zeroes: true,
        })
    }

    /// RAM is never deallocated before the device goes: the range reads back as zeroes.
    fn discard(&self, cmd: CmdRef, pos: u64, len: u64) {
        self.write_zeroes(cmd, pos, len)
    }

    fn write_zeroes(&self, cmd: CmdRef, pos: u64, len: u64) {
        let result = self.erase_sync(pos, len, false);
        cmd::complete(
            cmd,
            result.map(|()| 0).map_err(|_| Sense::lba_out_of_range()),
        )
    }

    fn write_sync(&self, pos: u64, data: &Sgl) -> Result {
        match &self.ram {
            Some(ram) => ram.transfer(data, pos, u64::from(data.len()), false),
            None => Ok(()),
        }
    }

    fn erase_sync(&self, pos: u64, len: u64, _unmap: bool) -> Result {
        match &self.ram {
            Some(ram) => ram.zero(pos, len),
            None => Ok(()),
        }
    }

    /// RAM filled with all ones: blocks never written carry the escape (as LIO). A nullio
    /// device stores none.
    fn pi_init(&self, blocks: u64) -> Result {
        if self.ram.is_none() {
            return Ok(());
        }
        let bytes = blocks.checked_mul(TUPLE_LEN).ok_or(EINVAL)?;
        let store = RamBuf::new(usize::try_from(bytes).map_err(|_| ENOMEM)?)?;
        store.fill(0, bytes, 0xff)?;
        *self.pi.lock() = Some(store);
        Ok(())
    }

    fn pi_free(&self) {
        *self.pi.lock() = None;
    }

    fn pi_rw(&self, lba: u64, tuples: &Sgl, write: bool) -> Result {
        let len = u64::from(tuples.len());
        match &*self.pi.lock() {
            Some(store) => store.transfer(tuples, lba * TUPLE_LEN, len, !write),
            // nullio: nothing stored, nothing to check.
            None if !write => {
                tuples.fill(0, len as usize, 0xff);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// Bytes of protection information per block.
const TUPLE_LEN: u64 = crate::proto::pi::TUPLE_LEN as u64;
