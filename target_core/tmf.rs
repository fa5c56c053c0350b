// SPDX-License-Identifier: GPL-2.0

//! Task management (SAM-5 7, LIO's `target_core_tmr.c`): ABORT TASK, ABORT TASK SET, CLEAR
//! TASK SET, LOGICAL UNIT RESET and I_T NEXUS RESET.
//!
//! The core keeps no list of commands (that would put a lock on the I/O path): the fabric,
//! which owns the command slots, walks them for the core ([`Walker`]). Aborting is one
//! compare-and-swap on the command's state: whoever sets `COMPLETE` or `ABORTED` first wins,
//! so an aborted command that the backend still owns is finished exactly once, through
//! [`FabricOps::aborted`](crate::cmd::FabricOps::aborted). Every wait is bounded and sleeps
//! in short steps: a stuck backend makes a TMF fail (and the initiator escalate), never hang.

use crate::cmd::{state, Cmd, FabricOps};
use crate::session::{wait_until, Session};
use crate::ua;
use kernel::sync::atomic::ordering;
use kernel::sync::Arc;
use kernel::time::Delta;

/// Walks a fabric's commands: calls the visitor with every command slot that may be in flight.
pub type Walker<'a> = &'a dyn Fn(&mut dyn FnMut(&Cmd));

/// A fabric's walk of the commands of a port's sessions, for the task management the core
/// starts itself (PREEMPT AND ABORT): set on the port with [`Port::set_tasks`].
///
/// [`Port::set_tasks`]: crate::lun::Port::set_tasks
pub trait Tasks: Send + Sync {
    /// Calls `f` with every command slot that may be in flight.
    fn walk(&self, f: &mut dyn FnMut(&Cmd));
}

/// How long a task management function waits for the commands it aborted.
pub const TMF_WAIT: Delta = Delta::from_secs(8);

/// A task management function's response (SAM-5 7.12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TmfResponse {
    /// FUNCTION COMPLETE.
    Complete,
    /// The task to abort was not found (it completed first).
    TaskNotFound,
    /// FUNCTION REJECTED.
    Rejected,
    /// The function did not finish within its bound.
    Failed,
}

/// Marks `cmd` aborted if it is still executing. Returns the state it was aborted in.
fn mark_aborted(cmd: &Cmd) -> Option<u32> {
    let mut old = cmd.state.load(ordering::Relaxed);
    loop {
        if old & state::ACTIVE == 0 || old & (state::ABORTED | state::COMPLETE) != 0 {
            return None;
        }
        match cmd.state.cmpxchg(old, old | state::ABORTED, ordering::Full) {
            Ok(_) => return Some(old),
            Err(cur) => old = cur,
        }
    }
}

/// Whether the command that was in `then` (same generation) is still held by the core or
/// its fabric.
fn still_held(cmd: &Cmd, then: u32) -> bool {
    let now = cmd.state.load(ordering::Acquire);
    state::generation(now) == state::generation(then) && now & state::ACTIVE != 0
}

/// ABORT TASK of one command the fabric found. Waits until the command is released.
pub fn abort_task(cmd: &Cmd, bound: Delta) -> TmfResponse {
    let then = cmd.state.load(ordering::Acquire);
    if then & state::ACTIVE == 0 {
        return TmfResponse::TaskNotFound;
    }
    let aborted = mark_aborted(cmd).is_some();
    // Aborted or already completing: either way the slot is the fabric's only once released.
    if !wait_until(bound, || !still_held(cmd, then)) {
        return TmfResponse::Failed;
    }
    if aborted {
        TmfResponse::Complete
    } else {
        TmfResponse::TaskNotFound
    }
}

/// Aborts every command of `session` (to LUN `lun`, or any; with task tag `tag`, or any) that
/// `walk` finds, and waits for them. Returns how many were aborted, or `None` if the bound
/// expired. The walk's visitor never sleeps; the waiting happens between walks.
fn abort_matching(
    session: &Session,
    lun: Option<u64>,
    tag: Option<u64>,
    walk: Walker<'_>,
    bound: Delta,
) -> Option<u32> {
    let wanted =
        |c: &Cmd| c.matches(session, lun) && tag.is_none_or(|t| c.tag.load(ordering::Relaxed) == t);
    let mut n = 0;
    walk(&mut |c: &Cmd| {
        if wanted(c) && mark_aborted(c).is_some() {
            n += 1;
        }
    });
    let drained = wait_until(bound, || {
        let mut busy = false;
        walk(&mut |c: &Cmd| busy |= wanted(c) && c.in_flight());
        !busy
    });
    drained.then_some(n)
}

/// ABORT TASK SET (and CLEAR TASK SET, which LIO treats alike): every command of the nexus to
/// `lun`.
pub fn abort_task_set(session: &Session, lun: u64, walk: Walker<'_>, bound: Delta) -> TmfResponse {
    match abort_matching(session, Some(lun), None, walk, bound) {
        Some(_) => TmfResponse::Complete,
        None => TmfResponse::Failed,
    }
}

/// LOGICAL UNIT RESET through `session`: aborts the nexus's commands to `lun`, then the other
/// nexuses of the port get BUS DEVICE RESET FUNCTION OCCURRED for it, and this one too (LIO
/// raises it for every nexus, the issuing one included).
pub fn lun_reset(session: &Arc<Session>, lun: u64, walk: Walker<'_>, bound: Delta) -> TmfResponse {
    let drained = abort_matching(session, Some(lun), None, walk, bound);
    // A reset logical unit holds no SPC-2 reservation any more; every nexus that sees it,
    // under whatever number, is told.
    if let Some(m) = session.lookup(lun) {
        m.lun.device.spc2_clear();
        session.port.for_each_session(|s| {
            s.for_each_mapping_of(m.lun.index, |n| s.raise_ua(n, ua::BUS_DEVICE_RESET))
        });
    }
    match drained {
        Some(_) => TmfResponse::Complete,
        None => TmfResponse::Failed,
    }
}

/// I_T NEXUS RESET: aborts every command of the nexus; each of its LUNs gets I_T NEXUS LOSS
/// OCCURRED.
pub fn nexus_reset(session: &Arc<Session>, walk: Walker<'_>, bound: Delta) -> TmfResponse {
    let drained = abort_matching(session, None, None, walk, bound);
    session.release_reservations();
    session.with_lun_indexes(|it| it.for_each(|lun| session.raise_ua(lun, ua::NEXUS_LOSS)));
    match drained {
        Some(_) => TmfResponse::Complete,
        None => TmfResponse::Failed,
    }
}

/// Waits up to `bound` for every command `walk` finds to be released. Returns whether none
/// is held any more.
pub fn wait_for(bound: Delta, walk: Walker<'_>) -> bool {
    wait_until(bound, || {
        let mut busy = false;
        walk(&mut |c: &Cmd| busy |= c.in_flight());
        !busy
    })
}

/// A task management function, as fabrics receive them (SAM-5 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TmfFunction {
    /// ABORT TASK of the command with this task tag.
    AbortTask {
        /// The fabric's tag of the command to abort.
        tag: u64,
    },
    /// ABORT TASK SET.
    AbortTaskSet,
    /// CLEAR TASK SET (handled as ABORT TASK SET: one task set per nexus and LUN).
    ClearTaskSet,
    /// LOGICAL UNIT RESET.
    LunReset,
    /// I_T NEXUS RESET.
    NexusReset,
}

/// Executes `function` for `session` on LUN `lun` (process context; it sleeps, bounded).
pub fn execute(
    function: TmfFunction,
    session: &Arc<Session>,
    lun: u64,
    walk: Walker<'_>,
    bound: Delta,
) -> TmfResponse {
    match function {
        TmfFunction::AbortTask { tag } => {
            match abort_matching(session, Some(lun), Some(tag), walk, bound) {
                Some(0) => TmfResponse::TaskNotFound,
                Some(_) => TmfResponse::Complete,
                None => TmfResponse::Failed,
            }
        }
        TmfFunction::AbortTaskSet | TmfFunction::ClearTaskSet => {
            abort_task_set(session, lun, walk, bound)
        }
        TmfFunction::LunReset => lun_reset(session, lun, walk, bound),
        TmfFunction::NexusReset => nexus_reset(session, walk, bound),
    }
}

/// Executes request `id` and answers it through the fabric's
/// [`FabricOps::queue_tm_rsp`] (fabrics that receive task management as messages: iSCSI,
/// NVMe/TCP).
pub fn run(
    fabric: &dyn FabricOps,
    id: u64,
    function: TmfFunction,
    session: &Arc<Session>,
    lun: u64,
    walk: Walker<'_>,
) {
    fabric.queue_tm_rsp(id, execute(function, session, lun, walk, TMF_WAIT));
}
