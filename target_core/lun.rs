// SPDX-License-Identifier: GPL-2.0

//! Target ports and LUNs, and the command path: a fabric hands a LUN a command, the LUN
//! classifies it with `proto::command::parse` and runs it against its device.

use crate::device::{At, Device, Storage};
use crate::proto::command::{self, Action, Limits, NO_SENSE};
use crate::proto::sense::Sense;
use crate::proto::spc::{self, Geometry, Identity, Proto};
use crate::rt::rambuf::RamBuf;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::{Arc, SpinLock};

/// A command's data buffer, as the fabric holds it. Implemented by the loopback fabric's
/// SCSI command (in `rust/scsi_host.rs`).
pub trait CmdData {
    /// The CDB.
    fn cdb(&self) -> &[u8];
    /// Size of the data buffer in bytes (the initiator's expected transfer length).
    fn data_len(&self) -> u32;
    /// Copies `buf` into the data buffer at `offset`; returns the bytes copied.
    fn put(&mut self, offset: usize, buf: &[u8]) -> usize;
    /// Moves `len` bytes between the data buffer at `data_off` and `ram` at `off`: into the
    /// command if `to_cmd`.
    fn ram_io(
        &mut self,
        ram: &RamBuf,
        data_off: usize,
        off: usize,
        len: usize,
        to_cmd: bool,
    ) -> Result<usize>;
}

/// How a command ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// GOOD, with `resid` bytes of the data buffer not transferred.
    Good {
        /// Residual byte count.
        resid: u32,
    },
    /// CHECK CONDITION with this sense.
    Check(Sense),
}

/// A target port: a fabric's TPG as the core sees it. Holds the LUNs linked under it.
#[pin_data]
pub struct Port {
    /// Transport protocol.
    pub proto: Proto,
    /// The fabric WWN (target port name).
    pub wwn: CString,
    /// The portal group tag.
    pub tpgt: u16,
    #[pin]
    luns: SpinLock<KVec<Arc<Lun>>>,
}

impl Port {
    /// A port with no LUNs.
    pub fn new(proto: Proto, wwn: &CStr, tpgt: u16) -> Result<Arc<Port>> {
        Arc::pin_init(
            try_pin_init!(Port {
                proto,
                wwn: wwn.to_cstring()?,
                tpgt,
                luns <- kernel::new_spinlock!(KVec::new()),
            }? Error),
            GFP_KERNEL,
        )
    }

    /// The LUN linked at `index`.
    #[inline(never)]
    pub fn lun(&self, index: u64) -> Option<Arc<Lun>> {
        self.luns.lock().iter().find(|l| l.index == index).cloned()
    }

    /// Number of linked LUNs.
    #[inline(never)]
    pub fn lun_count(&self) -> usize {
        self.luns.lock().len()
    }

    /// Adds a linked LUN; EEXIST if its index is taken.
    pub(crate) fn add(&self, lun: Arc<Lun>) -> Result {
        let mut luns = self.luns.lock();
        if luns.iter().any(|l| l.index == lun.index) {
            return Err(EEXIST);
        }
        luns.push(lun, GFP_ATOMIC)?;
        Ok(())
    }

    pub(crate) fn remove(&self, lun: &Arc<Lun>) {
        let mut luns = self.luns.lock();
        if let Some(i) = luns.iter().position(|l| Arc::ptr_eq(l, lun)) {
            let _ = luns.remove(i);
        }
    }
}

/// A LUN: a device exported through a port at an index.
pub struct Lun {
    /// The LUN number.
    pub index: u64,
    /// The exported device.
    pub device: Arc<Device>,
    /// The port the LUN belongs to.
    pub port: Arc<Port>,
}

/// Largest response any emulated command builds.
const RESPONSE_MAX: usize = spc::VPD_MAX;

impl Lun {
    /// The checks' view of the device.
    fn limits(&self) -> Limits {
        let d = &self.device;
        Limits {
            blocks: d.blocks(),
            block_size: d.attr(At::BlockSize),
            max_transfer: d.attr(At::HwMaxSectors),
            write_cache: d.attr(At::WriteCache) != 0,
            pi: false,
        }
    }

    fn geometry(&self) -> Geometry {
        let d = &self.device;
        Geometry {
            block_size: d.attr(At::BlockSize),
            last_lba: d.blocks().saturating_sub(1),
            max_transfer: d.attr(At::HwMaxSectors),
            optimal_transfer: d.attr(At::OptimalSectors),
            nonrot: d.attr(At::IsNonrot) != 0,
            write_cache: d.attr(At::WriteCache) != 0,
            caw: d.attr(At::Caw) != 0,
        }
    }

    /// Executes one command in the caller's context. Allocates nothing and takes no lock
    /// for READ and WRITE.
    #[inline]
    pub fn execute<D: CmdData>(&self, cmd: &mut D) -> Outcome {
        let data_len = cmd.data_len();
        // One snapshot of the device per command: the checks and the transfer agree.
        let limits = self.limits();
        let action = match command::parse(cmd.cdb(), &limits, data_len) {
            Ok(a) => a,
            Err(s) => return Outcome::Check(s),
        };
        match action {
            Action::Read { lba, blocks } => self.rw(cmd, &limits, lba, blocks, true),
            Action::Write { lba, blocks } => self.rw(cmd, &limits, lba, blocks, false),
            Action::Good => Outcome::Good { resid: 0 },
            Action::RequestSense { alloc } => {
                // LIO returns a zero-filled 96-byte sense buffer holding NO SENSE.
                let mut sense = [0u8; 96];
                sense[..NO_SENSE.len()].copy_from_slice(&NO_SENSE);
                respond(cmd, &sense, alloc, false)
            }
            other => self.emulate(cmd, other),
        }
    }

    fn rw<D: CmdData>(
        &self,
        cmd: &mut D,
        limits: &Limits,
        lba: u64,
        blocks: u32,
        read: bool,
    ) -> Outcome {
        let bs = u64::from(limits.block_size);
        let len = u64::from(blocks) * bs;
        let resid = u64::from(cmd.data_len()).saturating_sub(len);
        match self.device.storage() {
            Some(Storage::Ram(ram)) => {
                if cmd
                    .ram_io(ram, 0, (lba * bs) as usize, len as usize, read)
                    .is_err()
                {
                    return Outcome::Check(Sense::lba_out_of_range());
                }
            }
            Some(Storage::Null) => {}
            None => return Outcome::Check(Sense::lun_not_supported()),
        }
        Outcome::Good {
            resid: resid as u32,
        }
    }

    /// Builds an emulated response on the stack and copies it out.
    #[inline(never)]
    fn emulate<D: CmdData>(&self, cmd: &mut D, action: Action) -> Outcome {
        let mut buf = [0u8; RESPONSE_MAX];
        let geo = self.geometry();
        let (len, alloc) = match action {
            Action::Inquiry { alloc } | Action::Vpd { alloc, .. } => {
                let wwn = *self.device.wwn.lock();
                let id = Identity {
                    vendor: wwn.vendor.get(),
                    product: wwn.product.get(),
                    revision: wwn.revision.get(),
                    unit_serial: wwn.unit_serial.get(),
                    company_id: wwn.company_id,
                    proto: self.port.proto,
                    port_wwn: self.port.wwn.to_bytes(),
                    tpgt: self.port.tpgt,
                    rtpi: 0,
                    tg_pt_gp_id: 0,
                    lu_gp_id: 0,
                };
                match action {
                    Action::Vpd { page, .. } => match spc::vpd(page, &id, &geo, &mut buf) {
                        Ok(n) => (n, alloc),
                        Err(s) => return Outcome::Check(s),
                    },
                    _ => {
                        let mut std = [0u8; spc::STD_INQUIRY_LEN];
                        spc::inquiry_std(&id, &mut std);
                        buf[..std.len()].copy_from_slice(&std);
                        (std.len(), alloc)
                    }
                }
            }
            Action::ReadCapacity10 => {
                let r = spc::read_capacity10(&geo);
                buf[..r.len()].copy_from_slice(&r);
                (r.len(), r.len() as u32)
            }
            Action::ReadCapacity16 { alloc } => {
                let r = spc::read_capacity16(&geo);
                buf[..r.len()].copy_from_slice(&r);
                (r.len(), alloc)
            }
            Action::ModeSense { ms, alloc } => match spc::mode_sense(&ms, &geo, false, &mut buf) {
                Ok(n) => (n, alloc),
                Err(s) => return Outcome::Check(s),
            },
            Action::ReportLuns { alloc } => return self.report_luns(cmd, alloc),
            _ => (0, 0),
        };
        respond(cmd, &buf[..len.min(RESPONSE_MAX)], alloc, true)
    }

    /// REPORT LUNS, written straight into the data buffer (the list has no fixed bound).
    fn report_luns<D: CmdData>(&self, cmd: &mut D, alloc: u32) -> Outcome {
        let limit = alloc.min(cmd.data_len()) as usize;
        let luns = self.port.luns.lock();
        let full = spc::report_luns(luns.iter().map(|l| l.index), |at, bytes| {
            if at < limit {
                cmd.put(at, &bytes[..bytes.len().min(limit - at)]);
            }
        });
        drop(luns);
        Outcome::Good {
            resid: cmd.data_len().saturating_sub(full.min(limit) as u32),
        }
    }
}

/// Copies a response of which the initiator asked for `alloc` bytes. With `resid`, a
/// response shorter than the buffer reports the rest as residual (LIO does so for all
/// but REQUEST SENSE).
fn respond<D: CmdData>(cmd: &mut D, data: &[u8], alloc: u32, resid: bool) -> Outcome {
    let n = data.len().min(alloc as usize).min(cmd.data_len() as usize);
    cmd.put(0, &data[..n]);
    Outcome::Good {
        resid: if resid { cmd.data_len() - n as u32 } else { 0 },
    }
}
