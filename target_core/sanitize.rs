// SPDX-License-Identifier: GPL-2.0

//! SANITIZE (SBC-4 5.30): the sanitize operation runs in a kernel thread of its own, apart
//! from the command that started it, as on a disk. It survives ABORT TASK, resets and the loss
//! of the nexus; with IMMED the command is answered as soon as the operation starts, without
//! it when the operation ends (if the command is still awaited). The device holds a
//! [`SanitizeHold`] from the start to the end: meanwhile `dispatch` answers every command but
//! INQUIRY, REPORT LUNS and REQUEST SENSE with NOT READY, SANITIZE IN PROGRESS, and REQUEST
//! SENSE carries the progress.
//!
//! OVERWRITE writes a buffer of the initialization pattern over the whole medium a chunk at a
//! time, once per pass (alternating with its inverse under INVERT, the last pass writing it
//! as sent); BLOCK ERASE (thin devices only) is one deallocation of the medium, or zeroes
//! written where deallocated blocks do not read as zeroes. Both end with a flush and, on a
//! device with protection information, tuples of all ones (the escape: no block holds data
//! to check any more).

use crate::backend::Backend;
use crate::cmd::{self, CmdRef};
use crate::device::SanitizeHold;
use crate::proto::command::{self, op};
use crate::proto::pi::TUPLE_LEN;
use crate::proto::sense::Sense;
use crate::rt::io::{ScratchSgl, Sgl};
use crate::rt::thread;
use kernel::prelude::*;
use kernel::sync::Arc;

/// What a sanitize operation writes.
enum Erase {
    /// OVERWRITE: `passes` passes of `pattern` (the initialization pattern repeated),
    /// inverted between passes with `invert`.
    Overwrite {
        pattern: ScratchSgl,
        passes: u8,
        invert: bool,
    },
    /// BLOCK ERASE: deallocated (`unmap`) or zeroed.
    Block { unmap: bool },
}

/// A sanitize operation, owned by its thread. Dropped (run or not), it ends: it answers
/// the parked command, if any, then gives back the hold.
struct Operation {
    hold: Option<SanitizeHold>,
    backend: Arc<dyn Backend>,
    /// Bytes of the medium.
    end: u64,
    erase: Erase,
    /// The block size, where the device stores protection information.
    pi: Option<u64>,
    /// How it ended; `None` if it never ran.
    outcome: Option<Result>,
}

/// How much BLOCK ERASE deallocates or zeroes between two looks at the parked command.
const ERASE_CHUNK: u64 = 64 << 20;

/// SANITIZE with the `len`-byte parameter list of an OVERWRITE (`sa`), or a BLOCK ERASE
/// (deallocating with `unmap`), of the whole medium.
pub(crate) fn sanitize(cmd: CmdRef, sa: u8, len: u32, immed: bool, block_size: u32, unmap: bool) {
    let Some(dev) = cmd.lun().map(|l| l.device.clone()) else {
        return cmd::complete(cmd, Err(Sense::lun_not_supported()));
    };
    let Some(backend) = dev.backend().cloned() else {
        return cmd::complete(cmd, Err(Sense::lun_not_supported()));
    };
    let end = dev.blocks() * u64::from(block_size);
    let erase = if sa == op::SANITIZE_OVERWRITE {
        match overwrite(&cmd, len, block_size, end) {
            Ok(erase) => erase,
            Err(sense) => return cmd::complete(cmd, Err(sense)),
        }
    } else {
        Erase::Block { unmap }
    };
    let Some(hold) = dev.start_sanitize() else {
        return cmd::complete(cmd, Err(Sense::sanitize_in_progress()));
    };
    let operation = Operation {
        hold: Some(hold),
        backend,
        end,
        erase,
        pi: dev.pi_type().map(|_| u64::from(block_size)),
        outcome: None,
    };
    // Parked before the operation starts, so that its end always finds the command.
    let cmd = if immed {
        Some(cmd)
    } else {
        dev.park_sanitize(cmd);
        None
    };
    // Without IMMED, the operation answers; unstarted, it was dropped and answered already.
    let started = dev.spawn_sanitize(move || operation.run());
    if let Some(cmd) = cmd {
        let result = started.map(|()| 0);
        cmd::complete(cmd, result.map_err(|_| Sense::internal_target_failure()));
    }
}

/// OVERWRITE's parameter list, checked, and its pattern repeated into a buffer (at most
/// `end` bytes).
fn overwrite(cmd: &CmdRef, len: u32, block_size: u32, end: u64) -> Result<Erase, Sense> {
    let mut params = KVec::new();
    params
        .resize(len as usize, 0u8, GFP_KERNEL)
        .map_err(|_| Sense::internal_target_failure())?;
    cmd.sgl().copy_from(0, &mut params);
    let ow = command::sanitize_overwrite(&params, block_size)?;
    let mut block = KVec::new();
    block
        .resize(block_size as usize, 0u8, GFP_KERNEL)
        .map_err(|_| Sense::internal_target_failure())?;
    command::fill_pattern(&mut block, &params[4..], false);
    let pattern =
        crate::sbc::repeated(&block, end).map_err(|_| Sense::internal_target_failure())?;
    // With INVERT the passes alternate and the last writes the pattern as sent.
    if ow.invert && ow.passes % 2 == 0 {
        invert(&pattern.sgl());
    }
    Ok(Erase::Overwrite {
        pattern,
        passes: ow.passes,
        invert: ow.invert,
    })
}

impl Operation {
    /// The thread's body.
    fn run(mut self) {
        let result = self.erase();
        match result {
            Err(e) if e == EINTR => pr_info!("SANITIZE stopped: the device goes\n"),
            Err(e) => pr_err!("SANITIZE failed: {:?}\n", e),
            Ok(()) => (),
        }
        self.outcome = Some(result);
    }

    fn erase(&self) -> Result {
        match &self.erase {
            Erase::Overwrite {
                pattern,
                passes,
                invert: inv,
            } => {
                let sgl = pattern.sgl();
                for left in (1..=*passes).rev() {
                    let mut next = 0;
                    while next < self.end {
                        self.poll(*passes, left, next)?;
                        let n = (self.end - next).min(u64::from(sgl.len()));
                        self.backend.write_sync(next, &sgl.prefix(n as u32))?;
                        next += n;
                    }
                    if *inv && left > 1 {
                        invert(&sgl);
                    }
                }
            }
            Erase::Block { unmap } => {
                let mut next = 0;
                while next < self.end {
                    self.poll(1, 1, next)?;
                    let n = (self.end - next).min(ERASE_CHUNK);
                    self.backend.erase_sync(next, n, *unmap)?;
                    next += n;
                }
            }
        }
        self.backend.flush_sync()?;
        if let Some(block_size) = self.pi {
            self.reset_tuples(block_size)?;
        }
        Ok(())
    }

    /// Between two chunks: records the progress, lets go of a parked command whose answer is
    /// no longer awaited, and stops when the device goes.
    fn poll(&self, total: u8, left: u8, next: u64) -> Result {
        let Some(hold) = &self.hold else {
            return Err(EINVAL);
        };
        hold.set_progress(command::sanitize_progress(total, left, next, self.end));
        if let Some(cmd) = hold.device().take_sanitize(true) {
            // Its answer is no longer awaited: released, never answered.
            cmd::complete(cmd, Err(Sense::sanitize_in_progress()));
        }
        if thread::should_stop() {
            return Err(EINTR);
        }
        Ok(())
    }

    /// Sets every block's protection information to all ones.
    fn reset_tuples(&self, block_size: u64) -> Result {
        let total = self.end / block_size * TUPLE_LEN as u64;
        let ones = ScratchSgl::new(total.min(1 << 20) as u32)?;
        let sgl = ones.sgl();
        sgl.fill(0, sgl.len() as usize, 0xff);
        let mut at = 0;
        while at < total {
            self.poll(1, 1, self.end)?;
            let n = (total - at).min(u64::from(sgl.len())) as u32;
            self.backend
                .pi_rw(at / TUPLE_LEN as u64, &sgl.prefix(n), true)?;
            at += u64::from(n);
        }
        Ok(())
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        let Some(hold) = self.hold.take() else {
            return;
        };
        // Taken before the hold ends: a SANITIZE that starts next parks its own command.
        let waiter = hold.device().take_sanitize(false);
        drop(hold);
        if let Some(cmd) = waiter {
            let result = match self.outcome {
                Some(Ok(())) => Ok(0),
                Some(Err(_)) => Err(Sense::backend_io_failure()),
                None => Err(Sense::internal_target_failure()),
            };
            cmd::complete(cmd, result);
        }
    }
}

/// Inverts every byte of `sgl` (the next overwrite pass's pattern).
fn invert(sgl: &Sgl) {
    let mut chunk = [0u8; 512];
    let mut at = 0;
    loop {
        let n = sgl.copy_from(at, &mut chunk);
        if n == 0 {
            break;
        }
        for b in &mut chunk[..n] {
            *b = !*b;
        }
        sgl.copy_to(at, &chunk[..n]);
        at += n;
    }
}
