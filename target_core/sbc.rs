// SPDX-License-Identifier: GPL-2.0

//! SBC commands the core runs in several backend steps, on a buffer of its own: VERIFY with
//! BYTCHK (read the medium, compare with the data-out buffer). Each step is an ordinary
//! backend request on the command; its completion comes back here through
//! [`step_done`], from any context, and the next step runs from the I/O workqueue.
//!
//! Not the I/O fast path: a step allocates its buffer, and its continuation is deferred.

use crate::backend::{Op, Rw};
use crate::cmd::{self, CmdRef};
use crate::proto::sense::Sense;
use crate::rt::io::{ScratchSgl, Sgl};
use kernel::prelude::*;

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
}

/// A command's multi-step state, kept in the command while it runs.
pub(crate) struct Step {
    kind: StepKind,
    /// The core's buffer the backend reads into or writes from during the step.
    scratch: ScratchSgl,
    /// The fabric's data buffer, set aside while the scratch buffer stands in for it.
    fabric_sgl: Sgl,
    /// The backend's result for the step, once it has finished.
    result: Option<core::result::Result<u32, Sense>>,
}

/// VERIFY with BYTCHK 1 or 3: read `len` bytes at `pos` into a scratch buffer, then compare.
pub(crate) fn verify(mut cmd: CmdRef, pos: u64, len: u64, bytchk: u8, block_size: u32) {
    let Some(be) = cmd.lun().and_then(|l| l.device.backend()).cloned() else {
        return cmd::complete(cmd, Err(Sense::lun_not_supported()));
    };
    let Ok(len32) = u32::try_from(len) else {
        return cmd::complete(cmd, Err(Sense::invalid_cdb_field(7, None)));
    };
    let step = ScratchSgl::new(len32).and_then(|scratch| {
        KBox::new(
            Step {
                kind: StepKind::VerifyCompare { bytchk, block_size },
                fabric_sgl: *cmd.sgl(),
                scratch,
                result: None,
            },
            GFP_KERNEL,
        )
        .map_err(Into::into)
    });
    let step = match step {
        Ok(s) => s,
        Err(_) => return cmd::complete(cmd, Err(Sense::internal_target_failure())),
    };
    let rw = Rw {
        pos,
        len,
        fua: false,
    };
    let d = cmd.data_mut();
    d.sgl = step.scratch.sgl();
    d.step = Some(step);
    d.op = Op::Read(rw);
    be.rw(cmd, rw, false)
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
    cmd.data_mut().sgl = step.fabric_sgl;
    let result = match step.result {
        Some(Ok(_)) => match step.kind {
            StepKind::VerifyCompare { bytchk, block_size } => {
                compare(&step.fabric_sgl, &step.scratch.sgl(), bytchk, block_size).map(|()| 0)
            }
        },
        Some(Err(sense)) => Err(sense),
        None => Err(Sense::internal_target_failure()),
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
