// SPDX-License-Identifier: GPL-2.0

//! SBC commands the core runs in several backend steps: VERIFY with BYTCHK (read the medium
//! into a buffer of the core's, compare with the data-out buffer), WRITE SAME of a non-zero
//! block (write a buffer of the repeated block, a chunk at a time), UNMAP (one deallocation
//! per block descriptor), GET LBA STATUS (asked from process context), COMPARE AND WRITE
//! and ORWRITE (read, compare or OR, write, holding the device's compare-and-write slot),
//! WRITE AND VERIFY (write, then verify), and READ and WRITE of a device with protection
//! information. Each step is an ordinary backend request on the command; its completion comes
//! back here through [`step_done`], from any context, and the next step runs from the I/O
//! workqueue, after the tuples of what the step wrote are kept ([`keep_tuples`]).
//!
//! Not the I/O fast path: a command allocates its step (and buffer), and each continuation is
//! deferred.

use crate::backend::{Backend, Op, Rw};
use crate::cmd::{self, CmdRef};
use crate::device::At;
use crate::device::CawSlot;
use crate::proto::pi::{PiOp, Plan, Tuple, TUPLE_LEN};
use crate::proto::sense::Sense;
use crate::rt::io::{ScratchSgl, Sgl};
use kernel::prelude::*;
use kernel::sync::Arc;

/// What to do when the backend finishes the command's current step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StepKind {
    /// The medium's blocks are in the scratch buffer: compare them with the data-out buffer
    /// (`bytchk` 1: block for block; 3: every block with the buffer's single block).
    VerifyCompare {
        /// BYTCHK.
        bytchk: u8,
        /// Logical block size.
        block_size: u32,
    },
    /// Writing the scratch buffer (the block repeated) over `next..end`, a chunk at a time; or,
    /// with `next == end`, a WRITE SAME of zeroes offloaded to the backend, as a step so that
    /// its end keeps the tuples.
    WriteSame {
        /// Byte offset of the next chunk.
        next: u64,
        /// End of the range.
        end: u64,
    },
    /// GET LBA STATUS from `lba` (of `blocks`): asks the backend from process context.
    LbaStatus {
        /// Starting LBA.
        lba: u64,
        /// Allocation length.
        alloc: u32,
        /// Capacity in blocks.
        blocks: u64,
        /// Logical block size.
        block_size: u32,
    },
    /// WRITE AND VERIFY: the data is written; next, with BYTCHK, read it back and compare.
    WriteVerify {
        /// Byte offset.
        pos: u64,
        /// Bytes.
        len: u64,
        /// Logical block size.
        block_size: u32,
        /// BYTCHK (without it the command runs as a step only to keep the tuples).
        bytchk: bool,
    },
    /// COMPARE AND WRITE (`or`: ORWRITE) of `len` bytes at `pos`, in `phase`.
    Caw {
        /// ORWRITE: OR the data-out buffer into the blocks instead of comparing.
        or: bool,
        /// What the step that just finished did.
        phase: CawPhase,
        /// Byte offset.
        pos: u64,
        /// Bytes compared, then written.
        len: u64,
        /// FUA for the write.
        fua: bool,
    },
    /// EXTENDED COPY (`xcopy`), at this point of the copy.
    Xcopy(crate::xcopy::CopyState),
    /// A READ or WRITE of a device with protection information.
    Pi(PiIo),
    /// An overflowing READ whose buffer ends within a block: the blocks are in the scratch
    /// buffer, of which the fabric's takes the first `keep` bytes.
    ReadPart {
        /// Bytes the fabric's buffer holds.
        keep: u32,
    },
    /// Deallocating the parameter list's descriptors from `next` on.
    Unmap {
        /// Next descriptor.
        next: u32,
        /// Descriptor count.
        count: u32,
        /// Logical block size.
        block_size: u32,
    },
}

/// A READ or WRITE of a device with T10 protection information. WRITE: from the workqueue,
/// the tuples are generated or checked, then the data is written, then the tuples. READ: the
/// data is read, then the tuples, which are checked and sent as the plan says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PiIo {
    /// What RDPROTECT / WRPROTECT asked.
    pub(crate) plan: Plan,
    /// The data transfer.
    pub(crate) rw: Rw,
    /// Logical block size.
    pub(crate) block_size: u32,
    /// A WRITE.
    pub(crate) write: bool,
    /// The data has moved (WRITE: written; READ: read).
    pub(crate) moved: bool,
    /// The device stores tuples (else they are the fabric's, `fabric_prot_type`: checked and
    /// dropped on WRITE, made on READ).
    pub(crate) store: bool,
}

/// COMPARE AND WRITE's steps: take the device's slot, read, compare, write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CawPhase {
    /// Queued to the workqueue, which takes the slot (it may sleep).
    Queued,
    /// The medium's blocks are in the scratch buffer.
    Read,
    /// The new data is written.
    Written,
}

/// A command's multi-step state, kept in the command while it runs.
pub(crate) struct Step {
    pub(crate) kind: StepKind,
    /// The core's buffer the backend reads into or writes from during the step.
    pub(crate) scratch: Option<ScratchSgl>,
    /// The fabric's data buffer, set aside while the scratch buffer stands in for it.
    pub(crate) fabric_sgl: Sgl,
    /// The backend's result for the step, once it has finished.
    pub(crate) result: Option<core::result::Result<u32, Sense>>,
    /// COMPARE AND WRITE's hold on the device, from the read to the end of the write.
    caw: Option<CawSlot>,
    /// EXTENDED COPY's source and destination backends, which need not be the LUN's.
    pub(crate) ends: Option<(Arc<dyn Backend>, Arc<dyn Backend>)>,
}

impl Step {
    /// A step of `cmd` (whose scatterlist it sets aside), with the core's buffer if any.
    /// `finished`: the step counts as done, so a deferral continues it right away.
    fn new(
        cmd: &CmdRef,
        kind: StepKind,
        scratch: Option<ScratchSgl>,
        finished: bool,
    ) -> Result<KBox<Step>> {
        Ok(KBox::new(
            Step {
                kind,
                fabric_sgl: *cmd.sgl(),
                scratch,
                result: finished.then_some(Ok(0)),
                caw: None,
                ends: None,
            },
            GFP_KERNEL,
        )?)
    }

    /// The backend the step's request went to, when it is not the LUN's: a backend that
    /// defers the request gets it back there ([`crate::backend::run_deferred`]).
    pub(crate) fn target(&self) -> Option<&Arc<dyn Backend>> {
        match (self.kind, &self.ends) {
            (StepKind::Xcopy(c), Some((src, dst))) => Some(if c.writes() { dst } else { src }),
            _ => None,
        }
    }
}

/// VERIFY with BYTCHK 1 or 3: read `len` bytes at `pos` into a scratch buffer, then compare.
pub(crate) fn verify(cmd: CmdRef, pos: u64, len: u64, bytchk: u8, block_size: u32) {
    let Some(be) = cmd.lun().and_then(|l| l.device.backend()).cloned() else {
        return cmd::complete(cmd, Err(Sense::lun_not_supported()));
    };
    let Ok(len32) = u32::try_from(len) else {
        return cmd::complete(cmd, Err(Sense::invalid_cdb_field(7, None)));
    };
    let step = ScratchSgl::new(len32).and_then(|scratch| {
        let kind = StepKind::VerifyCompare { bytchk, block_size };
        Step::new(&cmd, kind, Some(scratch), false)
    });
    let rw = Rw {
        pos,
        len,
        fua: false,
    };
    read_step(cmd, be, step, rw)
}

/// Starts `step`: a READ of `rw` into the step's scratch buffer.
fn read_step(mut cmd: CmdRef, be: Arc<dyn Backend>, step: Result<KBox<Step>>, rw: Rw) {
    let step = match step {
        Ok(s) => s,
        Err(_) => return cmd::complete(cmd, Err(Sense::internal_target_failure())),
    };
    let d = cmd.data_mut();
    if let Some(scratch) = &step.scratch {
        d.sgl = scratch.sgl();
    }
    d.step = Some(step);
    d.op = Op::Read(rw);
    be.rw(cmd, rw, false)
}

/// READ of the whole blocks `rw` covers into a scratch buffer, of which the fabric's buffer
/// then takes the first `keep` bytes (an overflow ending within a block).
pub(crate) fn read_part(cmd: CmdRef, rw: Rw, keep: u32) {
    let Some(be) = cmd.lun().and_then(|l| l.device.backend()).cloned() else {
        return cmd::complete(cmd, Err(Sense::lun_not_supported()));
    };
    let step = u32::try_from(rw.len)
        .map_err(|_| EINVAL)
        .and_then(ScratchSgl::new)
        .and_then(|scratch| Step::new(&cmd, StepKind::ReadPart { keep }, Some(scratch), false));
    read_step(cmd, be, step, rw)
}

/// Copies the first `len` bytes of `from` to `to`.
fn copy_sgl(from: &Sgl, to: &Sgl, len: usize) -> Result<(), Sense> {
    let mut chunk = [0u8; 512];
    let mut at = 0;
    while at < len {
        let n = chunk.len().min(len - at);
        if from.copy_from(at, &mut chunk[..n]) != n || to.copy_to(at, &chunk[..n]) != n {
            return Err(Sense::internal_target_failure());
        }
        at += n;
    }
    Ok(())
}

/// Largest chunk WRITE SAME writes per step.
const WRITE_SAME_CHUNK: u64 = 1 << 20;

/// A scratch buffer of `block` repeated, a chunk of a `len`-byte range long.
pub(crate) fn repeated(block: &[u8], len: u64) -> Result<ScratchSgl> {
    let scratch = ScratchSgl::new(len.min(WRITE_SAME_CHUNK) as u32)?;
    let sgl = scratch.sgl();
    let mut at = 0;
    while at < sgl.len() as usize {
        at += sgl.copy_to(at, block);
    }
    Ok(scratch)
}

/// WRITE SAME of `len` bytes at `pos`: zeroes (NDOB, or a zero block) are offloaded to the
/// backend (deallocated with `unmap` when they read back as zeroes); any other block is
/// written a chunk at a time from a buffer of the block repeated.
pub(crate) fn write_same(
    mut cmd: CmdRef,
    pos: u64,
    len: u64,
    block_size: u32,
    unmap: bool,
    zero: bool,
) {
    let Some(be) = cmd.lun().and_then(|l| l.device.backend()).cloned() else {
        return cmd::complete(cmd, Err(Sense::lun_not_supported()));
    };
    let mut block = KVec::new();
    if !zero {
        if block.resize(block_size as usize, 0u8, GFP_KERNEL).is_err() {
            return cmd::complete(cmd, Err(Sense::internal_target_failure()));
        }
        cmd.sgl().copy_from(0, &mut block);
    }
    if block.iter().all(|&b| b == 0) {
        // On a device with protection information the request is a step whose end makes the
        // blocks' tuples ([`keep_tuples`]); the range is already covered, so none follows.
        if cmd.lun().is_some_and(|l| l.device.pi_type().is_some()) {
            let done = pos + len;
            let kind = StepKind::WriteSame {
                next: done,
                end: done,
            };
            match Step::new(&cmd, kind, None, false) {
                Ok(step) => cmd.data_mut().step = Some(step),
                Err(_) => return cmd::complete(cmd, Err(Sense::internal_target_failure())),
            }
        }
        return if unmap {
            cmd.data_mut().op = Op::Discard { pos, len };
            be.discard(cmd, pos, len)
        } else {
            cmd.data_mut().op = Op::WriteZeroes { pos, len };
            be.write_zeroes(cmd, pos, len)
        };
    }
    let step = repeated(&block, len).and_then(|scratch| {
        let kind = StepKind::WriteSame {
            next: pos,
            end: pos + len,
        };
        Step::new(&cmd, kind, Some(scratch), false)
    });
    match step {
        Ok(step) => advance(cmd, step),
        Err(_) => cmd::complete(cmd, Err(Sense::internal_target_failure())),
    }
}

/// GET LBA STATUS: the backend's answer (SEEK_HOLE, a RAM scan) may sleep, so it is asked
/// from the I/O workqueue.
pub(crate) fn get_lba_status(cmd: CmdRef, lba: u64, alloc: u32, blocks: u64, block_size: u32) {
    start_in_workqueue(
        cmd,
        StepKind::LbaStatus {
            lba,
            alloc,
            blocks,
            block_size,
        },
    )
}

/// Starts a command whose first step must run in process context: it is queued to the I/O
/// workqueue as if a step had just finished.
pub(crate) fn start_in_workqueue(mut cmd: CmdRef, kind: StepKind) {
    match Step::new(&cmd, kind, None, true) {
        Ok(step) => {
            cmd.data_mut().step = Some(step);
            cmd.defer()
        }
        Err(_) => cmd::complete(cmd, Err(Sense::internal_target_failure())),
    }
}

/// The status of the blocks from `lba`: one descriptor as long as the backend's extent.
fn lba_status(cmd: &CmdRef, lba: u64, alloc: u32, blocks: u64, bs: u32) -> Result<u32, Sense> {
    let Some(be) = cmd.lun().and_then(|l| l.device.backend()).cloned() else {
        return Err(Sense::lun_not_supported());
    };
    let bs64 = u64::from(bs);
    let want = (blocks - lba).min(u64::from(u32::MAX));
    let (mapped, bytes) = be.extent(lba * bs64, want * bs64, bs)?;
    let run = bytes.checked_div(bs64).unwrap_or(0).clamp(1, want) as u32;
    let data = crate::proto::command::lba_status_data(lba, run, mapped);
    let sgl = cmd.sgl();
    let n = data.len().min(alloc as usize).min(sgl.len() as usize);
    sgl.copy_to(0, &data[..n]);
    Ok(sgl.len() - n as u32)
}

/// COMPARE AND WRITE: from the workqueue, take the device's slot, read the blocks, compare
/// them with the first half of the data-out buffer and, if equal, write the second half.
pub(crate) fn compare_and_write(cmd: CmdRef, pos: u64, len: u64, fua: bool, or: bool) {
    start_in_workqueue(
        cmd,
        StepKind::Caw {
            or,
            phase: CawPhase::Queued,
            pos,
            len,
            fua,
        },
    )
}

/// The next step of a COMPARE AND WRITE or an ORWRITE (process context); its end gives the
/// slot back.
fn caw_step(
    mut cmd: CmdRef,
    mut step: KBox<Step>,
    or: bool,
    phase: CawPhase,
    pos: u64,
    len: u64,
    fua: bool,
) {
    let Some(lun) = cmd.lun().cloned() else {
        return cmd::complete(cmd, Err(Sense::lun_not_supported()));
    };
    let Some(be) = lun.device.backend().cloned() else {
        return cmd::complete(cmd, Err(Sense::lun_not_supported()));
    };
    step.result = None;
    let (next, write) = match phase {
        CawPhase::Queued => {
            // Park until the slot is free; the step stays in the command meanwhile.
            step.result = Some(Ok(0));
            cmd.data_mut().step = Some(step);
            let (c, slot) = match lun.device.caw_acquire(cmd) {
                Ok(Some(held)) => held,
                Ok(None) => return,
                Err(c) => return fail(c, Sense::internal_target_failure()),
            };
            cmd = c;
            let Some(mut s) = cmd.data_mut().step.take() else {
                return cmd::complete(cmd, Err(Sense::internal_target_failure()));
            };
            s.result = None;
            s.caw = Some(slot);
            step = s;
            match u32::try_from(len)
                .map_err(|_| EINVAL)
                .and_then(ScratchSgl::new)
            {
                Ok(scratch) => step.scratch = Some(scratch),
                Err(_) => return cmd::complete(cmd, Err(Sense::internal_target_failure())),
            }
            (CawPhase::Read, false)
        }
        CawPhase::Read => {
            let Some(scratch) = step.scratch.as_ref().map(|s| s.sgl()) else {
                return cmd::complete(cmd, Err(Sense::internal_target_failure()));
            };
            if !or {
                if let Err(miscompare) = compare(&step.fabric_sgl, &scratch, 1, 0) {
                    drop(step);
                    return cmd::complete(cmd, Err(miscompare));
                }
            }
            // COMPARE AND WRITE: the second half of the data-out buffer goes to the medium;
            // ORWRITE: the data-out buffer ORed into what the medium holds.
            let from = if or { 0 } else { len as usize };
            let mut chunk = [0u8; 512];
            let mut old = [0u8; 512];
            let mut at = 0;
            while at < len as usize {
                let n = step.fabric_sgl.copy_from(from + at, &mut chunk);
                if n == 0 || (or && scratch.copy_from(at, &mut old[..n]) != n) {
                    return cmd::complete(cmd, Err(Sense::internal_target_failure()));
                }
                if or {
                    chunk.iter_mut().zip(&old).for_each(|(c, o)| *c |= o);
                }
                scratch.copy_to(at, &chunk[..n]);
                at += n;
            }
            (CawPhase::Written, true)
        }
        CawPhase::Written => {
            drop(step);
            return cmd::complete(cmd, Ok(0));
        }
    };
    let Some(sgl) = step.scratch.as_ref().map(|s| s.sgl()) else {
        return cmd::complete(cmd, Err(Sense::internal_target_failure()));
    };
    step.kind = StepKind::Caw {
        or,
        phase: next,
        pos,
        len,
        fua,
    };
    let rw = Rw {
        pos,
        len,
        fua: write && fua,
    };
    let d = cmd.data_mut();
    d.sgl = sgl;
    d.step = Some(step);
    d.op = if write { Op::Write(rw) } else { Op::Read(rw) };
    be.rw(cmd, rw, write)
}

/// WRITE AND VERIFY: write `len` bytes at `pos` through to the medium, then with `bytchk`
/// verify them as VERIFY with BYTCHK 1 does.
pub(crate) fn write_verify(mut cmd: CmdRef, pos: u64, len: u64, block_size: u32, bytchk: bool) {
    let Some(be) = cmd.lun().and_then(|l| l.device.backend()).cloned() else {
        return cmd::complete(cmd, Err(Sense::lun_not_supported()));
    };
    let kind = StepKind::WriteVerify {
        pos,
        len,
        block_size,
        bytchk,
    };
    let Ok(step) = Step::new(&cmd, kind, None, false) else {
        return cmd::complete(cmd, Err(Sense::internal_target_failure()));
    };
    let rw = Rw {
        pos,
        len,
        fua: true,
    };
    let d = cmd.data_mut();
    d.step = Some(step);
    d.op = Op::Write(rw);
    be.rw(cmd, rw, true)
}

/// Ends a command that still holds a step, dropping the step first.
pub(crate) fn fail(mut cmd: CmdRef, sense: Sense) {
    cmd.data_mut().step = None;
    cmd::complete(cmd, Err(sense))
}

/// UNMAP of the parameter list's `count` descriptors, already checked.
pub(crate) fn unmap(cmd: CmdRef, count: u32, block_size: u32) {
    let kind = StepKind::Unmap {
        next: 0,
        count,
        block_size,
    };
    match Step::new(&cmd, kind, None, false) {
        Ok(step) => advance(cmd, step),
        Err(_) => cmd::complete(cmd, Err(Sense::internal_target_failure())),
    }
}

/// Starts the next backend request of a WRITE SAME or an UNMAP, or ends the command.
fn advance(mut cmd: CmdRef, mut step: KBox<Step>) {
    let Some(be) = cmd.lun().and_then(|l| l.device.backend()).cloned() else {
        drop(step);
        return cmd::complete(cmd, Err(Sense::lun_not_supported()));
    };
    step.result = None;
    match step.kind {
        StepKind::WriteSame { next, end } if next < end => {
            write_chunk(cmd, be, step, next, end, |next| StepKind::WriteSame {
                next,
                end,
            })
        }
        StepKind::Unmap {
            next,
            count,
            block_size,
        } => {
            let sgl = step.fabric_sgl;
            for i in next..count {
                let mut desc = [0u8; 16];
                sgl.copy_from(8 + 16 * i as usize, &mut desc);
                let lba = u64::from_be_bytes([
                    desc[0], desc[1], desc[2], desc[3], desc[4], desc[5], desc[6], desc[7],
                ]);
                let blocks = u32::from_be_bytes([desc[8], desc[9], desc[10], desc[11]]);
                if blocks == 0 {
                    continue;
                }
                let (pos, len) = (
                    lba * u64::from(block_size),
                    u64::from(blocks) * u64::from(block_size),
                );
                step.kind = StepKind::Unmap {
                    next: i + 1,
                    count,
                    block_size,
                };
                let d = cmd.data_mut();
                d.step = Some(step);
                d.op = Op::Discard { pos, len };
                return be.discard(cmd, pos, len);
            }
            drop(step);
            cmd::complete(cmd, Ok(0))
        }
        _ => {
            drop(step);
            cmd::complete(cmd, Ok(0))
        }
    }
}

/// Writes the step's scratch buffer at `next` (up to `end`); `kind` is the step after it.
fn write_chunk(
    mut cmd: CmdRef,
    be: Arc<dyn Backend>,
    mut step: KBox<Step>,
    next: u64,
    end: u64,
    kind: impl FnOnce(u64) -> StepKind,
) {
    let Some(sgl) = step.scratch.as_ref().map(|s| s.sgl()) else {
        drop(step);
        return cmd::complete(cmd, Err(Sense::internal_target_failure()));
    };
    let len = (end - next).min(u64::from(sgl.len()));
    step.kind = kind(next + len);
    let rw = Rw {
        pos: next,
        len,
        fua: false,
    };
    let d = cmd.data_mut();
    d.sgl = sgl;
    d.step = Some(step);
    d.op = Op::Write(rw);
    be.rw(cmd, rw, true)
}

/// The backend finished a step (any context): keep its result and continue from the I/O
/// workqueue, where comparing and the next submission may sleep.
pub(crate) fn step_done(mut cmd: CmdRef, result: core::result::Result<u32, Sense>) {
    if let Some(step) = cmd.data_mut().step.as_mut() {
        step.result = Some(result);
    }
    cmd.defer()
}

/// Whether a deferred command is a finished step for [`resume`] (not its backend's own work).
pub(crate) fn step_finished(cmd: &CmdRef) -> bool {
    cmd.data().step.as_ref().is_some_and(|s| s.result.is_some())
}

/// Continues a command after a step (process context, from the I/O workqueue).
pub(crate) fn resume(mut cmd: CmdRef) {
    let Some(step) = cmd.data_mut().step.take() else {
        return cmd::complete(cmd, Err(Sense::internal_target_failure()));
    };
    // The request that just finished, and the buffer it wrote from.
    let (op, written) = (cmd.data().op, cmd.data().sgl);
    cmd.data_mut().sgl = step.fabric_sgl;
    // READ / WRITE and EXTENDED COPY keep their tuples themselves.
    if matches!(step.result, Some(Ok(_)))
        && !matches!(step.kind, StepKind::Pi(_) | StepKind::Xcopy(_))
    {
        if let Err(sense) = keep_tuples(&cmd, op, &written) {
            drop(step);
            return cmd::complete(cmd, Err(sense));
        }
    }
    let result = match (step.result, step.kind, &step.scratch) {
        (Some(Ok(_)), StepKind::VerifyCompare { bytchk, block_size }, Some(scratch)) => {
            compare(&step.fabric_sgl, &scratch.sgl(), bytchk, block_size).map(|()| 0)
        }
        (Some(Ok(_)), StepKind::ReadPart { keep }, Some(scratch)) => {
            copy_sgl(&scratch.sgl(), &step.fabric_sgl, keep as usize).map(|()| cmd.resid())
        }
        (Some(Ok(_)), StepKind::WriteSame { .. } | StepKind::Unmap { .. }, _) => {
            return advance(cmd, step)
        }
        (
            Some(Ok(_)),
            StepKind::LbaStatus {
                lba,
                alloc,
                blocks,
                block_size,
            },
            _,
        ) => lba_status(&cmd, lba, alloc, blocks, block_size),
        (
            Some(Ok(_)),
            StepKind::Caw {
                or,
                phase,
                pos,
                len,
                fua,
            },
            _,
        ) => return caw_step(cmd, step, or, phase, pos, len, fua),
        (Some(Ok(_)), StepKind::Xcopy(c), _) => return crate::xcopy::step(cmd, step, c),
        (Some(Ok(_)), StepKind::Pi(io), _) => return pi_step(cmd, step, io),
        (Some(Err(_)), StepKind::Xcopy(c), _) => Err(crate::xcopy::failed(&cmd, c)),
        (
            Some(Ok(_)),
            StepKind::WriteVerify {
                pos,
                len,
                block_size,
                bytchk: true,
            },
            _,
        ) => {
            drop(step);
            return verify(cmd, pos, len, 1, block_size);
        }
        (Some(Ok(_)), StepKind::WriteVerify { bytchk: false, .. }, _) => Ok(0),
        (Some(Err(sense)), _, _) => Err(sense),
        _ => Err(Sense::internal_target_failure()),
    };
    drop(step);
    cmd::complete(cmd, result)
}

/// Compares the medium's bytes (`medium`) with the initiator's (`given`: as long, or one
/// block repeated for BYTCHK 3). MISCOMPARE with the offset of the first differing byte.
fn compare(given: &Sgl, medium: &Sgl, bytchk: u8, block_size: u32) -> Result<(), Sense> {
    const CHUNK: usize = 512;
    let mut a = [0u8; CHUNK];
    let mut b = [0u8; CHUNK];
    let total = medium.len() as usize;
    let period = if bytchk == 3 {
        block_size as usize
    } else {
        total
    };
    let mut at = 0;
    while at < total {
        let within = at % period.max(1);
        let n = CHUNK.min(total - at).min(period - within);
        if medium.copy_from(at, &mut b[..n]) != n || given.copy_from(within, &mut a[..n]) != n {
            return Err(Sense::internal_target_failure());
        }
        if let Some(i) = a[..n].iter().zip(&b[..n]).position(|(x, y)| x != y) {
            return Err(Sense::miscompare((at + i) as u32));
        }
        at += n;
    }
    Ok(())
}

/// A READ or WRITE of a device with protection information (see [`PiIo`]).
pub(crate) fn pi_rw(mut cmd: CmdRef, io: PiIo) {
    if io.write {
        // The tuples are made or checked before anything is written.
        return start_in_workqueue(cmd, StepKind::Pi(io));
    }
    let Some(lun) = cmd.lun().cloned() else {
        return cmd::complete(cmd, Err(Sense::lun_not_supported()));
    };
    let Some(be) = lun.device.backend() else {
        return cmd::complete(cmd, Err(Sense::lun_not_supported()));
    };
    let Ok(step) = Step::new(&cmd, StepKind::Pi(PiIo { moved: true, ..io }), None, false) else {
        return cmd::complete(cmd, Err(Sense::internal_target_failure()));
    };
    let d = cmd.data_mut();
    d.step = Some(step);
    d.op = Op::Read(io.rw);
    be.rw(cmd, io.rw, false)
}

/// The next step of a [`PiIo`] (process context).
fn pi_step(mut cmd: CmdRef, mut step: KBox<Step>, io: PiIo) {
    let Some(lun) = cmd.lun().cloned() else {
        return cmd::complete(cmd, Err(Sense::lun_not_supported()));
    };
    let Some(be) = lun.device.backend() else {
        return cmd::complete(cmd, Err(Sense::lun_not_supported()));
    };
    // The fabric's tuples are always checked (LIO's DOUT_STRIP).
    let verify = !io.store || lun.device.attr(At::PiVerify) != 0;
    let blocks = io.rw.len.checked_div(u64::from(io.block_size)).unwrap_or(0) as usize;
    let (prot_sgl, offload) = (cmd.data().prot_sgl, cmd.data().pi_offload);
    // The tuples come with the data (DIX), unless the fabric is to make or check them.
    let given = io.plan.op == PiOp::Pass && !offload && !prot_sgl.is_empty();
    step.result = None;
    match (io.write, io.moved) {
        (true, false) => {
            let mut tuples = KVVec::new();
            let store = tuples
                .resize(blocks * TUPLE_LEN, 0u8, GFP_KERNEL)
                .map_err(|_| ENOMEM)
                .and_then(|()| ScratchSgl::new((blocks * TUPLE_LEN) as u32));
            let Ok(store) = store else {
                return fail(cmd, Sense::internal_target_failure());
            };
            if given {
                prot_sgl.copy_from(0, &mut tuples);
            }
            let generate = io.plan.op == PiOp::Insert || offload;
            // Without a protection buffer the tuples to check are zeroes, as LIO's.
            let made = (generate || verify).then(|| {
                each_guard(&step.fabric_sgl, 0, blocks, io.block_size, |i, guard| {
                    if generate {
                        put_tuple(&mut tuples, i, &io.plan.generated(i as u64, guard));
                        return Ok(());
                    }
                    io.plan.check(&tuple_at(&tuples, i), guard, i as u64)
                })
            });
            if let Some(Err(sense)) = made {
                return fail(cmd, sense);
            }
            store.sgl().copy_to(0, &tuples);
            step.scratch = Some(store);
            step.kind = StepKind::Pi(PiIo { moved: true, ..io });
            let d = cmd.data_mut();
            d.step = Some(step);
            d.op = Op::Write(io.rw);
            be.rw(cmd, io.rw, true)
        }
        (true, true) => {
            let stored = match &step.scratch {
                Some(store) if io.store => be.pi_rw(io.plan.lba, &store.sgl(), true),
                Some(_) => Ok(()),
                None => Err(EINVAL),
            };
            drop(step);
            let resid = cmd.resid();
            cmd::complete(
                cmd,
                stored
                    .map(|()| resid)
                    .map_err(|_| Sense::backend_io_failure()),
            )
        }
        (false, _) => {
            drop(step);
            let result = pi_read_check(&cmd, be.as_ref(), io, blocks, verify, given, offload);
            let resid = cmd.resid();
            cmd::complete(cmd, result.map(|()| resid))
        }
    }
}

/// After a READ's data: loads its tuples, checks them as the plan says (always when the
/// target strips them), and hands them to the fabric when they travel with the data.
fn pi_read_check(
    cmd: &CmdRef,
    be: &dyn Backend,
    io: PiIo,
    blocks: usize,
    verify: bool,
    given: bool,
    offload: bool,
) -> Result<(), Sense> {
    if !io.store && !given {
        return Ok(());
    }
    let mut tuples = KVVec::new();
    tuples
        .resize(blocks * TUPLE_LEN, 0u8, GFP_KERNEL)
        .map_err(|_| Sense::internal_target_failure())?;
    if !io.store {
        // The fabric's protection: tuples made for the data read.
        each_guard(cmd.sgl(), 0, blocks, io.block_size, |i, guard| {
            put_tuple(&mut tuples, i, &io.plan.generated(i as u64, guard));
            Ok(())
        })?;
        cmd.data().prot_sgl.copy_to(0, &tuples);
        return Ok(());
    }
    let store = ScratchSgl::new((blocks * TUPLE_LEN) as u32)
        .map_err(|_| Sense::internal_target_failure())?;
    be.pi_rw(io.plan.lba, &store.sgl(), false)
        .map_err(|_| Sense::backend_io_failure())?;
    store.sgl().copy_from(0, &mut tuples);
    let check = match io.plan.op {
        PiOp::Strip => true,
        PiOp::Pass => offload || verify,
        PiOp::Insert => false,
    };
    if check {
        each_guard(cmd.sgl(), 0, blocks, io.block_size, |i, guard| {
            io.plan.check(&tuple_at(&tuples, i), guard, i as u64)
        })?;
    }
    if given {
        cmd.data().prot_sgl.copy_to(0, &tuples);
    }
    Ok(())
}

/// Tuples made per store write by [`keep_tuples`] (64 KiB of them).
const TUPLES_PER_WRITE: u64 = 8192;

/// After a step of a command other than READ and WRITE wrote to (or deallocated blocks of) a
/// device with protection information, its tuples follow the data (process context): made
/// from `written` for a write, made for zeroes for a WRITE SAME of zeroes, all ones (checks
/// disabled) for deallocated blocks, as an unmapped block's protection information reads
/// (SBC-4 4.7.4.5). Like a WRITE's, they are stored after the data.
fn keep_tuples(cmd: &CmdRef, op: Op, written: &Sgl) -> Result<(), Sense> {
    let (pos, len) = match op {
        Op::Write(rw) => (rw.pos, rw.len),
        Op::WriteZeroes { pos, len } | Op::Discard { pos, len } => (pos, len),
        _ => return Ok(()),
    };
    let Some(lun) = cmd.lun() else {
        return Ok(());
    };
    let Some(ty) = lun.device.pi_type() else {
        return Ok(());
    };
    let Some(be) = lun.device.backend() else {
        return Err(Sense::lun_not_supported());
    };
    let bs = lun.device.attr(At::BlockSize);
    let per_block = |bytes: u64| bytes.checked_div(u64::from(bs)).unwrap_or(0);
    let (lba, blocks) = (per_block(pos), per_block(len));
    if blocks == 0 {
        return Ok(());
    }
    let plan = Plan::insert(ty, lba);
    let per = blocks.min(TUPLES_PER_WRITE) as usize;
    let mut tuples = KVVec::new();
    tuples
        .resize(per * TUPLE_LEN, 0xffu8, GFP_KERNEL)
        .map_err(|_| Sense::internal_target_failure())?;
    let store =
        ScratchSgl::new((per * TUPLE_LEN) as u32).map_err(|_| Sense::internal_target_failure())?;
    let mut at = 0;
    while at < blocks {
        let n = (blocks - at).min(TUPLES_PER_WRITE) as usize;
        let mut put = |i: usize, guard: u16| {
            put_tuple(&mut tuples, i, &plan.generated(at + i as u64, guard));
            Ok(())
        };
        match op {
            Op::Write(_) => each_guard(written, at as usize, n, bs, put)?,
            // A block of zeroes has guard 0.
            Op::WriteZeroes { .. } => (0..n).try_for_each(|i| put(i, 0))?,
            _ => {}
        }
        let chunk = store.sgl();
        chunk.copy_to(0, &tuples[..n * TUPLE_LEN]);
        be.pi_rw(lba + at, &chunk.prefix((n * TUPLE_LEN) as u32), true)
            .map_err(|_| Sense::backend_io_failure())?;
        at += n as u64;
    }
    Ok(())
}

/// Stores block `i`'s tuple in a buffer of tuples.
fn put_tuple(tuples: &mut [u8], i: usize, t: &Tuple) {
    tuples[i * TUPLE_LEN..(i + 1) * TUPLE_LEN].copy_from_slice(&t.encode());
}

/// Block `i`'s tuple in a buffer of tuples.
fn tuple_at(tuples: &[u8], i: usize) -> Tuple {
    let mut t = [0u8; TUPLE_LEN];
    t.copy_from_slice(&tuples[i * TUPLE_LEN..(i + 1) * TUPLE_LEN]);
    Tuple::decode(&t)
}

/// Calls `f(i, guard)` for each of the `blocks` blocks of `sgl` from block `first` on, with
/// the CRC of its data (`i` is 0 for block `first`); stops at the first error.
fn each_guard(
    sgl: &Sgl,
    first: usize,
    blocks: usize,
    block_size: u32,
    mut f: impl FnMut(usize, u16) -> Result<(), Sense>,
) -> Result<(), Sense> {
    let bs = block_size as usize;
    // Copies of whole blocks, 64 KiB at a time.
    let per_chunk = 65536usize.checked_div(bs).unwrap_or(0).max(1);
    let mut buf = KVVec::new();
    buf.resize(per_chunk * bs, 0u8, GFP_KERNEL)
        .map_err(|_| Sense::internal_target_failure())?;
    let mut i = 0;
    while i < blocks {
        let n = per_chunk.min(blocks - i);
        if sgl.copy_from((first + i) * bs, &mut buf[..n * bs]) != n * bs {
            return Err(Sense::internal_target_failure());
        }
        for (j, block) in buf[..n * bs].chunks_exact(bs).enumerate() {
            f(i + j, crate::rt::io::crc_t10dif(0, block))?;
        }
        i += n;
    }
    Ok(())
}
