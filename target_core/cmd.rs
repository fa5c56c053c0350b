// SPDX-License-Identifier: GPL-2.0

//! The command object and its lifecycle (LIO's `se_cmd`, nvmet's `nvmet_req`).
//!
//! A fabric owns the memory of its commands, pre-allocated per queue (the loopback fabric keeps
//! each [`Cmd`] in its `scsi_cmnd`'s private area). One command's life:
//!
//! 1. **set up** by the fabric (`rt::cmd_ref` builds a [`CmdRef`] from its slot: CDB, LUN,
//!    session, data direction and the fabric's scatterlist), then handed to [`submit`];
//! 2. **checked**: the CDB is classified by `proto::command::parse`, then the nexus's unit
//!    attentions are consulted;
//! 3. **data out**: a WRITE whose data is still on the wire goes back to the fabric
//!    ([`FabricOps::write_pending`]), which calls [`data_ready`] when it has arrived;
//! 4. **executed** by `dispatch` on the device's backend, which owns the command until it calls
//!    [`complete`], inline or later from any context (process, softirq, hard irq);
//! 5. **handed back** to the fabric ([`FabricOps::queue_data_in`] or
//!    [`FabricOps::queue_status`]; [`FabricOps::aborted`] if task management aborted it);
//! 6. **released** by the fabric when its response is out ([`CmdRef::release`]).
//!
//! The only state shared with task management is [`Cmd::state`], an atomic; everything else
//! belongs to whoever holds the unique [`CmdRef`].

use crate::lun::Lun;
use crate::proto::sense::Sense;
use crate::rt::io::{IoSlot, Sgl};
use crate::rt::live_ref::LiveRef;
use crate::session::Session;
use core::cell::UnsafeCell;
use kernel::prelude::*;
use kernel::sync::atomic::{ordering, Atomic};

pub use crate::rt::cmd_ref::CmdRef;

/// Longest CDB the core accepts (variable-length CDBs up to 32 bytes).
pub const MAX_CDB: usize = 32;

/// Direction of a command's data, as the fabric sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataDir {
    /// No data.
    None,
    /// From the initiator to the device (WRITE).
    ToDevice,
    /// From the device to the initiator (READ).
    FromDevice,
}

/// The callbacks a fabric gives the core for its commands (LIO's `target_core_fabric_ops`
/// without the configfs parts). Each takes the command's unique handle; the fabric ends every
/// path with [`CmdRef::release`] once the initiator has its answer.
pub trait FabricOps: Sync {
    /// The data of a WRITE must still come from the initiator (R2T, H2CData): fetch it into
    /// the command's scatterlist and call [`data_ready`]. Fabrics whose data arrives with the
    /// command (loopback) never see this.
    fn write_pending(&self, cmd: CmdRef) {
        data_ready(cmd)
    }
    /// GOOD with data for the initiator (READ data, emulated responses): send both.
    fn queue_data_in(&self, cmd: CmdRef) {
        self.queue_status(cmd)
    }
    /// Send the status ([`CmdRef::status`], [`CmdRef::sense`], [`CmdRef::resid`]).
    fn queue_status(&self, cmd: CmdRef);
    /// Task management aborted the command: send nothing for it, release it.
    fn aborted(&self, cmd: CmdRef);
    /// The response to task management request `id` that the fabric submitted through
    /// [`crate::tmf::run`].
    fn queue_tm_rsp(&self, _id: u64, _rsp: crate::tmf::TmfResponse) {}
}

/// SAM status GOOD.
pub const GOOD: u8 = 0x00;
/// SAM status CHECK CONDITION.
pub const CHECK_CONDITION: u8 = 0x02;
/// SAM status RESERVATION CONFLICT.
pub const RESERVATION_CONFLICT: u8 = 0x18;
/// SAM status TASK ABORTED.
pub const TASK_ABORTED: u8 = 0x40;

/// [`Cmd::state`] bits.
pub(crate) mod state {
    /// Owned by its fabric, not in the core.
    pub(crate) const FREE: u32 = 0;
    /// Submitted and not yet released.
    pub(crate) const ACTIVE: u32 = 1 << 0;
    /// Task management aborted it.
    pub(crate) const ABORTED: u32 = 1 << 1;
    /// Execution finished; its response belongs to the fabric.
    pub(crate) const COMPLETE: u32 = 1 << 2;
    /// The initiator side gave up waiting for it (the SCSI midlayer's timeout): its answer
    /// must not be delivered, the initiator's error handling owns it.
    pub(crate) const TIMED_OUT: u32 = 1 << 3;
    /// Each start of a slot bumps the generation (the bits above the flags), so task
    /// management never mistakes a slot's next command for the one it aborted.
    pub(crate) const GENERATION_SHIFT: u32 = 8;

    /// The generation of a state value.
    pub(crate) const fn generation(s: u32) -> u32 {
        s >> GENERATION_SHIFT
    }

    /// The state of a slot's next command after one in state `s`.
    pub(crate) const fn next_start(s: u32) -> u32 {
        ((generation(s).wrapping_add(1)) << GENERATION_SHIFT) | ACTIVE
    }

    /// `s` with the flags cleared: free, same generation.
    pub(crate) const fn released(s: u32) -> u32 {
        s & !((1 << GENERATION_SHIFT) - 1)
    }
}

/// What a command's holder may change: the request and its result.
pub struct CmdData {
    pub(crate) cdb: [u8; MAX_CDB],
    pub(crate) cdb_len: u8,
    pub(crate) dir: DataDir,
    pub(crate) sgl: Sgl,
    /// Protection information apart from the data (DIX), or empty.
    pub(crate) prot_sgl: Sgl,
    /// The core generates or checks and drops the protection information on the fabric's
    /// behalf (its initiator asked its HBA to).
    pub(crate) pi_offload: bool,
    /// The WRITE data is in `sgl` (false: ask the fabric with `write_pending`).
    pub(crate) data_ready: bool,
    pub(crate) tag: u64,
    pub(crate) session: Option<LiveRef<Session>>,
    pub(crate) lun: Option<LiveRef<Lun>>,
    /// Writes are refused (the nexus's access to the LUN).
    pub(crate) read_only: bool,
    /// A READ or WRITE whose buffer is not its CDB's length transfers what fits
    /// ([`crate::rt::cmd_ref::CmdSetup::fit_transfers`]).
    pub(crate) fit_transfers: bool,
    /// The residual of a WRITE fitted to its buffer (bytes, overflow): reported whatever the
    /// command's own.
    pub(crate) fitted: Option<(u32, bool)>,
    /// `resid` counts bytes beyond the buffer (an overflow), not bytes left in it.
    pub(crate) overflow: bool,
    pub(crate) fabric: Option<&'static dyn FabricOps>,
    pub(crate) origin: Option<core::any::TypeId>,
    pub(crate) status: u8,
    pub(crate) sense: Option<Sense>,
    pub(crate) resid: u32,
    /// The decoded request, kept for a backend that continues it later (fileio's workqueue).
    pub(crate) op: crate::backend::Op,
    /// A command run in several steps: its current step (`sbc`).
    pub(crate) step: Option<KBox<crate::sbc::Step>>,
}

impl CmdData {
    const EMPTY: CmdData = CmdData {
        cdb: [0; MAX_CDB],
        cdb_len: 0,
        dir: DataDir::None,
        sgl: Sgl::EMPTY,
        prot_sgl: Sgl::EMPTY,
        pi_offload: false,
        data_ready: false,
        tag: 0,
        session: None,
        lun: None,
        read_only: false,
        fit_transfers: false,
        fitted: None,
        overflow: false,
        fabric: None,
        origin: None,
        status: GOOD,
        sense: None,
        resid: 0,
        op: crate::backend::Op::None,
        step: None,
    };
}

/// One command. Lives in memory its fabric pre-allocated, pinned for its whole life.
#[pin_data]
pub struct Cmd {
    /// [`state`] bits: the one field task management reads while someone else holds the
    /// command.
    pub(crate) state: Atomic<u32>,
    /// The LUN index, for task management's searches.
    pub(crate) lun_index: Atomic<u64>,
    /// The fabric's task tag, for ABORT TASK.
    pub(crate) tag: Atomic<u64>,
    /// The session's address, for task management's searches (never dereferenced).
    pub(crate) nexus: Atomic<usize>,
    /// Only ever reached through the unique [`CmdRef`].
    pub(crate) data: UnsafeCell<CmdData>,
    /// The backend's I/O state (kiocb or bio and inline bio_vecs).
    #[pin]
    pub(crate) io: IoSlot,
}

/// What the initiator side should do with a command whose time ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// It was still executing: it is marked timed out and will never be answered; the
    /// initiator's error handling owns it (and aborts it through task management).
    Handled,
    /// Its answer is already on the way: keep waiting.
    Completing,
}

/// The initiator side's timer for `cmd` expired (the SCSI midlayer's `eh_timed_out`). One
/// compare-and-swap decides between the timeout and the completion: exactly one of them
/// delivers the command back.
pub fn timed_out(cmd: &Cmd) -> Timeout {
    let mut old = cmd.state.load(ordering::Relaxed);
    loop {
        if old & state::ACTIVE == 0 || old & state::COMPLETE != 0 {
            return Timeout::Completing;
        }
        match cmd
            .state
            .cmpxchg(old, old | state::TIMED_OUT, ordering::Full)
        {
            Ok(_) => return Timeout::Handled,
            Err(cur) => old = cur,
        }
    }
}

/// Sets `bits` in `a` and returns the previous value (a full barrier, like `atomic_fetch_or`).
pub(crate) fn set_bits(a: &Atomic<u32>, bits: u32) -> u32 {
    let mut old = a.load(ordering::Relaxed);
    loop {
        match a.cmpxchg(old, old | bits, ordering::Full) {
            Ok(prev) => return prev,
            Err(cur) => old = cur,
        }
    }
}

impl Cmd {
    /// A free command slot, for a fabric's pre-allocated pools.
    pub fn new_slot() -> impl PinInit<Self> {
        pin_init!(Cmd {
            state: Atomic::new(state::FREE),
            lun_index: Atomic::new(0),
            tag: Atomic::new(0),
            nexus: Atomic::new(0),
            data: UnsafeCell::new(CmdData::EMPTY),
            io <- IoSlot::new(crate::rt::cmd_ref::io_done),
        })
    }

    /// Whether the command is held by the core or its fabric's response path (submitted and
    /// not yet released).
    pub fn in_flight(&self) -> bool {
        self.state.load(ordering::Acquire) & state::ACTIVE != 0
    }

    /// Whether task management aborted it (its answer will not be delivered).
    pub fn aborted(&self) -> bool {
        self.state.load(ordering::Acquire) & state::ABORTED != 0
    }

    /// Whether it belongs to `session` and addresses LUN `lun` (`None`: any LUN).
    pub fn matches(&self, session: &Session, lun: Option<u64>) -> bool {
        self.nexus.load(ordering::Relaxed) == session.id()
            && lun.is_none_or(|l| self.lun_index.load(ordering::Relaxed) == l)
    }
}

/// Hands a set-up command to the core. The core owns it until it calls back through the
/// fabric's [`FabricOps`].
#[inline(never)]
pub fn submit(cmd: CmdRef) {
    crate::dispatch::execute(cmd)
}

/// The data of a WRITE the core asked for with [`FabricOps::write_pending`] has arrived.
/// Process context: backends may sleep when they submit it.
#[inline(never)]
pub fn data_ready(cmd: CmdRef) {
    crate::dispatch::resume(cmd)
}

/// Ends a command's execution: GOOD with `resid` bytes not transferred, or CHECK CONDITION.
/// Callable from any context. For a command run in several steps, ends the current step.
pub fn complete(mut cmd: CmdRef, result: core::result::Result<u32, Sense>) {
    if cmd.data().step.is_some() {
        return crate::sbc::step_done(cmd, result);
    }
    match result {
        Ok(resid) => {
            let d = cmd.data_mut();
            d.status = GOOD;
            d.resid = resid;
        }
        Err(sense) => {
            let d = cmd.data_mut();
            d.status = CHECK_CONDITION;
            // The residual stays: reported with any status, as LIO does.
            d.sense = Some(sense);
        }
    }
    let d = cmd.data_mut();
    if let Some((resid, overflow)) = d.fitted {
        d.resid = resid;
        d.overflow = overflow;
    }
    finish(cmd)
}

/// Ends a command with a status other than GOOD and CHECK CONDITION (RESERVATION CONFLICT,
/// TASK ABORTED, BUSY).
pub fn complete_status(mut cmd: CmdRef, status: u8) {
    let d = cmd.data_mut();
    d.status = status;
    d.resid = 0;
    d.overflow = false;
    finish(cmd)
}

/// The one place a command leaves the core: exactly once, to the fabric's response path or,
/// if task management got there first, to [`FabricOps::aborted`].
fn finish(cmd: CmdRef) {
    let fabric = cmd.data().fabric;
    let Some(fabric) = fabric else {
        // Only a command the core never accepted has no fabric; `CmdRef` forbids that.
        cmd.release();
        return;
    };
    let old = set_bits(&cmd.state, state::COMPLETE);
    if old & (state::ABORTED | state::TIMED_OUT) != 0 {
        fabric.aborted(cmd)
    } else if cmd.data().status == GOOD && cmd.data().dir == DataDir::FromDevice {
        fabric.queue_data_in(cmd)
    } else {
        fabric.queue_status(cmd)
    }
}
