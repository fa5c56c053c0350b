// SPDX-License-Identifier: GPL-2.0

//! EXTENDED COPY (LID1): the copy manager (LIO's `target_core_xcopy.c`, without its global
//! pass-through session). The parameter list (checked by `proto::xcopy`) names source and
//! destination by NAA designator. One of them must be the device the command was sent to; the
//! other must be a LUN the issuing nexus can reach itself, with `emulate_3pc` on. Before
//! CVE-2020-28374 LIO looked the designator up among every device of the target, so any
//! initiator could read or overwrite any backstore.
//!
//! The copy runs as steps of the command (`sbc`): from the I/O workqueue the list is checked
//! and both ends resolved, then each chunk is read from the source into a scratch buffer and
//! written to the destination, one backend request at a time. The command holds both backends
//! until it ends, so neither can go away under the copy.

use crate::backend::{Backend, Op, Rw};
use crate::cmd::{self, CmdRef};
use crate::device::{At, Device};
use crate::proto::sense::Sense;
use crate::proto::xcopy::{self, Designator};
use crate::rt::io::ScratchSgl;
use crate::sbc::{self, Step, StepKind};
use kernel::prelude::*;
use kernel::sync::Arc;

/// Largest chunk read and written per step (LIO's `XCOPY_MAX_BYTES`).
const MAX_CHUNK: u64 = 16 << 20;

/// Where an EXTENDED COPY stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CopyState {
    /// Queued to the workqueue: the parameter list of `len` bytes is checked there.
    Start {
        /// Parameter list length.
        len: u32,
    },
    /// The step's request moves a chunk.
    Chunk(Chunk),
}

/// The chunk at the head of what is left of a copy: read from the source at `src_pos` into
/// the scratch buffer or (`write`) written from it to `dst_pos`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// The request writes the chunk to the destination (else: reads it from the source).
    write: bool,
    /// The list identifier the copy's status is held under.
    list_id: Option<u8>,
    /// Bytes copied before the chunk.
    copied: u32,
    /// Source byte offset of the chunk.
    src_pos: u64,
    /// Destination byte offset of the chunk.
    dst_pos: u64,
    /// Bytes left to copy, the chunk included.
    left: u64,
}

impl CopyState {
    /// Whether the step's request goes to the destination.
    pub(crate) fn writes(self) -> bool {
        matches!(self, CopyState::Chunk(Chunk { write: true, .. }))
    }
}

/// EXTENDED COPY whose parameter list of `len` (> 0) bytes is in the command's buffer.
pub(crate) fn extended_copy(cmd: CmdRef, len: u32) {
    sbc::start_in_workqueue(cmd, StepKind::Xcopy(CopyState::Start { len }))
}

/// The next step of a copy, after the previous one succeeded (process context).
pub(crate) fn step(cmd: CmdRef, mut step: KBox<Step>, c: CopyState) {
    match c {
        CopyState::Start { len } => match plan(&cmd, len) {
            Ok((list_id, None)) => {
                drop(step);
                finish(cmd, list_id, 0)
            }
            Ok((list_id, Some(p))) => {
                let chunk = p.chunk.min(p.bytes) as u32;
                match ScratchSgl::new(chunk) {
                    Ok(scratch) => step.scratch = Some(scratch),
                    Err(_) => {
                        drop(step);
                        return sbc::fail(cmd, Sense::internal_target_failure());
                    }
                }
                step.ends = Some((p.src, p.dst));
                let first = Chunk {
                    write: false,
                    list_id,
                    copied: 0,
                    src_pos: p.src_pos,
                    dst_pos: p.dst_pos,
                    left: p.bytes,
                };
                issue(cmd, step, first)
            }
            Err(sense) => {
                drop(step);
                sbc::fail(cmd, sense)
            }
        },
        CopyState::Chunk(c) if !c.write => issue(cmd, step, Chunk { write: true, ..c }),
        CopyState::Chunk(c) => {
            let done = chunk_len(&step, c.left);
            let copied = c.copied + done as u32;
            if done >= c.left {
                drop(step);
                return finish(cmd, c.list_id, copied);
            }
            let next = Chunk {
                write: false,
                copied,
                src_pos: c.src_pos + done,
                dst_pos: c.dst_pos + done,
                left: c.left - done,
                ..c
            };
            issue(cmd, step, next)
        }
    }
}

/// GOOD for a copy of `copied` bytes, its status held under `list_id`.
fn finish(cmd: CmdRef, list_id: Option<u8>, copied: u32) {
    record(&cmd, list_id, true, copied);
    cmd::complete(cmd, Ok(0))
}

/// A backend request of the copy failed: the copy is aborted, as LIO aborts it, and its
/// status held under its list identifier.
pub(crate) fn failed(cmd: &CmdRef, c: CopyState) -> Sense {
    if let CopyState::Chunk(c) = c {
        record(cmd, c.list_id, false, c.copied);
    }
    xcopy::not_reachable()
}

/// Holds how a copy with a list identifier ended, for RECEIVE COPY RESULTS' COPY STATUS.
fn record(cmd: &CmdRef, list_id: Option<u8>, ok: bool, copied: u32) {
    if let (Some(id), Some(s)) = (list_id, cmd.session()) {
        s.copy_done(cmd.lun_index(), id, ok, copied);
    }
}

/// The chunk a step moves: as much of `left` as the scratch buffer holds.
fn chunk_len(step: &Step, left: u64) -> u64 {
    step.scratch
        .as_ref()
        .map_or(0, |s| u64::from(s.sgl().len()))
        .min(left)
}

/// Sends the request of chunk `c` to its end of the copy.
fn issue(mut cmd: CmdRef, mut step: KBox<Step>, c: Chunk) {
    let Chunk {
        write,
        src_pos,
        dst_pos,
        left,
        ..
    } = c;
    let len = chunk_len(&step, left);
    let (Some(scratch), Some((src, dst))) = (step.scratch.as_ref(), step.ends.as_ref()) else {
        drop(step);
        return sbc::fail(cmd, Sense::internal_target_failure());
    };
    let sgl = scratch.sgl().prefix(len as u32);
    let be = if write { dst.clone() } else { src.clone() };
    let rw = Rw {
        pos: if write { dst_pos } else { src_pos },
        len,
        fua: false,
    };
    step.kind = StepKind::Xcopy(CopyState::Chunk(c));
    step.result = None;
    let d = cmd.data_mut();
    d.sgl = sgl;
    d.step = Some(step);
    d.op = if write { Op::Write(rw) } else { Op::Read(rw) };
    be.rw(cmd, rw, write)
}

/// A checked copy: both ends' backends, where it starts on each, how far it goes.
struct Plan {
    src: Arc<dyn Backend>,
    dst: Arc<dyn Backend>,
    src_pos: u64,
    dst_pos: u64,
    bytes: u64,
    chunk: u64,
}

/// Checks the parameter list and resolves both ends: the list identifier to hold the copy's
/// status under, and the copy (`None`: there is nothing to copy).
fn plan(cmd: &CmdRef, len: u32) -> Result<(Option<u8>, Option<Plan>), Sense> {
    let mut list = KVec::new();
    let want = (len as usize).min(xcopy::LIST_MAX);
    list.resize(want, 0u8, GFP_KERNEL)
        .map_err(|_| Sense::internal_target_failure())?;
    let got = cmd.sgl().copy_from(0, &mut list);
    list.truncate(got);
    let seg = xcopy::parse_list(&list, len)?;

    let (Some(lun), Some(session)) = (cmd.lun(), cmd.session()) else {
        return Err(xcopy::not_reachable());
    };
    let local = &lun.device;
    let here = Some(local.designator());
    // The device the command was sent to is one end, or both: a designator it shares with
    // another LUN (a copied serial) still means this one.
    let (src, dst, dst_ro) = if seg.dst == here {
        let src = if seg.src == here {
            local.clone()
        } else {
            reachable(session, seg.src)?.0
        };
        (src, local.clone(), cmd.data().read_only)
    } else if seg.src == here {
        let (dst, ro) = reachable(session, seg.dst)?;
        (local.clone(), dst, ro)
    } else {
        return Err(xcopy::not_reachable());
    };
    let nexus = session.id();
    if src.spc2_conflict(nexus) || dst.spc2_conflict(nexus) {
        return Err(xcopy::not_reachable());
    }
    let block_size = src.attr(At::BlockSize);
    if dst.attr(At::BlockSize) != block_size {
        return Err(xcopy::block_size_mismatch());
    }
    if seg.blocks == 0 {
        return Ok((seg.list_id, None));
    }
    let blocks = u64::from(seg.blocks);
    for (dev, lba) in [(&src, seg.src_lba), (&dst, seg.dst_lba)] {
        if lba.checked_add(blocks).is_none_or(|end| end > dev.blocks()) {
            return Err(xcopy::not_reachable());
        }
    }
    let (Some(src_be), Some(dst_be)) = (src.backend().cloned(), dst.backend().cloned()) else {
        return Err(xcopy::not_reachable());
    };
    // The issuing LUN's device passed the dispatch gate; the other end has not.
    if src.sanitizing() || dst.sanitizing() {
        return Err(Sense::sanitize_in_progress());
    }
    if crate::dispatch::read_only(&dst, dst_ro) {
        return Err(Sense::write_protected());
    }
    let bs = u64::from(block_size);
    let max_bytes = |d: &Device| u64::from(d.attr(At::HwMaxSectors)).max(1) * bs;
    Ok((
        seg.list_id,
        Some(Plan {
            src: src_be,
            dst: dst_be,
            src_pos: seg.src_lba * bs,
            dst_pos: seg.dst_lba * bs,
            bytes: blocks * bs,
            chunk: max_bytes(&src).min(max_bytes(&dst)).min(MAX_CHUNK),
        }),
    ))
}

/// The device `id` names among the LUNs the session sees (its ACL's mapped LUNs, or the
/// port's in demo mode), if its copy manager is on; and whether the nexus may only read it.
fn reachable(
    session: &crate::session::Session,
    id: Option<Designator>,
) -> Result<(Arc<Device>, bool), Sense> {
    let id = id.ok_or(xcopy::not_reachable())?;
    session
        .find_lun(|l, ro| {
            let d = &l.device;
            // A device with protection information is no copy target: the copy would leave
            // its tuples stale.
            (d.enabled()
                && d.attr(At::ThreePc) != 0
                && d.pi_type().is_none()
                && d.designator() == id)
                .then(|| (d.clone(), ro))
        })
        .ok_or(xcopy::not_reachable())
}
