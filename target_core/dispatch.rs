// SPDX-License-Identifier: GPL-2.0

//! The SCSI dispatch: what the core does with a submitted command. Unit attentions first,
//! then `proto::command::parse` classifies the CDB; data transfers go to the device's
//! [`Backend`](crate::backend::Backend), everything else is emulated here from the pure
//! builders of `proto::spc`.

use crate::backend::{Op, Rw};
use crate::cmd::{self, CmdRef, DataDir};
use crate::device::{At, Device};
use crate::lun::Lun;
use crate::proto::cdb::RwCdb;
use crate::proto::command::{self, Action, AtomicLimits, Limits, Thin, NO_SENSE};
use crate::proto::pi::{PiOp, PiType};
use crate::proto::pr::{self, Access, ProutParams, Refusal, Spc2};
use crate::proto::sense::Sense;
use crate::proto::spc::{self, Geometry, Identity};
use crate::sbc::PiIo;
use crate::session::Session;
use kernel::prelude::*;

/// Largest response any emulated command builds.
const RESPONSE_MAX: usize = spc::VPD_MAX;

/// WCE as initiators see it: the medium's cache if the backend knows it, else
/// `emulate_write_cache` (LIO's `target_check_wce`).
fn write_cache(d: &Device) -> bool {
    d.backend()
        .and_then(|b| b.write_cache())
        .unwrap_or(d.attr(At::WriteCache) != 0)
}

/// The checks' view of the device. One snapshot per command: the checks and the transfer agree.
/// READ and WRITE (`io`) skip what only other commands need.
fn limits(d: &Device, io: bool) -> Limits {
    Limits {
        blocks: d.blocks(),
        block_size: d.attr(At::BlockSize),
        max_transfer: d.max_transfer(),
        dpofua: d.attr(At::FuaWrite) != 0,
        pi: false,
        thin: if io { Thin::default() } else { thin(d) },
        caw: !io && d.attr(At::Caw) != 0,
        atomic: if io {
            AtomicLimits::default()
        } else {
            atomic(d)
        },
        three_pc: !io && d.attr(At::ThreePc) != 0,
        pi_store: !io && d.pi_type().is_some(),
        reservations: !io && d.attr(At::EmulatePr) != 0,
        // Set by the callers, who know the nexus.
        type2: false,
    }
}

fn atomic(d: &Device) -> AtomicLimits {
    AtomicLimits {
        max_len: d.attr(At::AtomicMaxLen),
        alignment: d.attr(At::AtomicAlignment),
        granularity: d.attr(At::AtomicGranularity),
        max_with_boundary: d.attr(At::AtomicMaxWithBoundary),
        max_boundary: d.attr(At::AtomicMaxBoundary),
    }
}

fn thin(d: &Device) -> Thin {
    Thin {
        tpu: d.attr(At::Tpu) != 0,
        tpws: d.attr(At::Tpws) != 0,
        lbprz: d.attr(At::UnmapZeroesData) != 0,
        max_unmap_lba_count: d.attr(At::MaxUnmapLbaCount),
        max_unmap_desc_count: d.attr(At::MaxUnmapDescCount),
        max_write_same: d.attr(At::MaxWriteSameLen),
    }
}

/// The protection type a nexus sees: the device's, if its fabric carries protection
/// information (LIO advertises it only then).
fn advertised_pi(d: &Device, session: Option<&Session>) -> Option<PiType> {
    let s = session.filter(|s| s.pi.carries)?;
    d.pi_type().or(s.pi.fabric_type)
}

fn geometry(d: &Device, pi: Option<PiType>) -> Geometry {
    let layout = d.backend().map(|b| b.layout()).unwrap_or_default();
    let block_size = d.attr(At::BlockSize);
    // As LIO: the medium's hints in blocks when it has them, else 1 and `optimal_sectors`.
    let in_blocks = |bytes: u32| bytes.checked_div(block_size).unwrap_or(0);
    Geometry {
        block_size,
        last_lba: d.blocks().saturating_sub(1),
        max_transfer: d.attr(At::HwMaxSectors),
        optimal_transfer: match layout.io_opt {
            0 => d.attr(At::OptimalSectors),
            opt => in_blocks(opt),
        },
        granularity: match layout.io_min {
            0 => 1,
            min => in_blocks(min) as u16,
        },
        lbppbe: layout.lbppbe,
        lowest_aligned: layout.lowest_aligned,
        nonrot: d.attr(At::IsNonrot) != 0,
        write_cache: write_cache(d),
        dpofua: d.attr(At::FuaWrite) != 0,
        caw: d.attr(At::Caw) != 0,
        wce_changeable: d.backend().is_some_and(|b| b.write_cache().is_none()),
        swp: d.swp(),
        ua_intlck: d.attr(At::UaIntlck) as u8,
        thin: thin(d),
        unmap_granularity: d.attr(At::UnmapGranularity),
        unmap_alignment: d.attr(At::UnmapAlignment),
        atomic: atomic(d),
        pi,
    }
}

/// What the dispatch decided, computed while the command's LUN is borrowed.
enum Next {
    Done(Result<u32, Sense>),
    /// The command needs its data-out first: fetch it, then decide again.
    FetchAndRetry,
    /// SANITIZE (the OVERWRITE parameter list is in).
    Sanitize {
        sa: u8,
        len: u32,
        immed: bool,
        block_size: u32,
        unmap: bool,
    },
    /// RESERVATION CONFLICT.
    Conflict,
    Backend(Op),
    /// VERIFY comparing `len` bytes at `pos` with the data-out buffer.
    Verify {
        pos: u64,
        len: u64,
        bytchk: u8,
        block_size: u32,
    },
    /// WRITE SAME of the data-out block (`zero`: of zeroes) to `len` bytes at `pos`.
    WriteSame {
        pos: u64,
        len: u64,
        block_size: u32,
        unmap: bool,
        zero: bool,
    },
    /// UNMAP of the `count` checked descriptors of the parameter list.
    Unmap {
        count: u32,
        block_size: u32,
    },
    /// COMPARE AND WRITE (`or`: ORWRITE) of `len` bytes at `pos`.
    Caw {
        pos: u64,
        len: u64,
        fua: bool,
        or: bool,
    },
    /// WRITE AND VERIFY as steps: write, then with BYTCHK read back and compare.
    WriteVerify {
        pos: u64,
        len: u64,
        block_size: u32,
        bytchk: bool,
    },
    /// EXTENDED COPY with a parameter list of `len` bytes.
    Xcopy {
        len: u32,
    },
    /// READ or WRITE of a device with protection information.
    Pi(PiIo),
    /// A READ of whole blocks of which the buffer takes the first `keep` bytes (an overflow
    /// ending within a block).
    ReadPart {
        rw: Rw,
        keep: u32,
    },
    /// GET LBA STATUS from `lba` of a device of `blocks` blocks.
    LbaStatus {
        lba: u64,
        alloc: u32,
        blocks: u64,
        block_size: u32,
    },
}

/// A submitted command. Takes no lock and allocates nothing on the READ/WRITE path.
pub(crate) fn execute(mut cmd: CmdRef) {
    let next = match fit_write(&mut cmd) {
        Some(next) => next,
        None => decide(&mut cmd),
    };
    if matches!(next, Next::Done(Err(s)) if s == command::invalid_field_in_iu()) {
        size_mismatch(&mut cmd);
    }
    // Data-out still on the wire: fetch it first. A WRITE resumes with its decided request;
    // the other commands are decided again once their data is in.
    let fetch = match next {
        Next::Backend(op @ (Op::Write(rw) | Op::WriteAtomic(rw))) if rw.len > 0 => Some(op),
        Next::Verify { .. }
        | Next::WriteSame { zero: false, .. }
        | Next::Unmap { .. }
        | Next::Caw { .. }
        | Next::WriteVerify { .. }
        | Next::Xcopy { .. }
        | Next::Pi(PiIo { write: true, .. })
        | Next::FetchAndRetry => Some(Op::None),
        _ => None,
    };
    if let Some(op) = fetch {
        let d = cmd.data();
        if d.dir == DataDir::ToDevice && !d.data_ready && !d.sgl.is_empty() {
            if let Some(fabric) = d.fabric {
                cmd.data_mut().op = op;
                return fabric.write_pending(cmd);
            }
        }
    }
    run(cmd, next)
}

/// A WRITE whose buffer is not its CDB's length, from a fabric that fits transfers: run as
/// the CDB its buffer carries, in whole blocks (data beyond the buffer is not asked for;
/// data beyond the CDB's length is not written), with the difference as its residual.
/// `Some` when nothing is left to run; a buffer ending within a block, or a device with
/// protection information, is left to be refused.
fn fit_write(cmd: &mut CmdRef) -> Option<Next> {
    let d = cmd.data();
    if !d.fit_transfers || d.dir != DataDir::ToDevice {
        return None;
    }
    let blocks = command::write_blocks(cmd.cdb())?;
    let dev = &cmd.lun()?.device;
    if dev.pi_type().is_some() {
        return None;
    }
    let bs = u64::from(dev.attr(At::BlockSize));
    let need = u64::from(blocks) * bs;
    let have = u64::from(cmd.sgl().len());
    if need == have || (have < need && have % bs != 0) {
        return None;
    }
    let d = cmd.data_mut();
    d.fitted = Some((u32::try_from(need.abs_diff(have)).ok()?, need > have));
    if have == 0 {
        return Some(Next::Done(Ok(0)));
    }
    if have < need {
        let len = usize::from(d.cdb_len);
        command::set_write_blocks(&mut d.cdb[..len], (have / bs) as u32);
    }
    None
}

/// The bytes of the buffer the CDB transfers: all of it, but for a WRITE fitted to a shorter
/// CDB ([`fit_write`]), whose extra data the fabric still receives into the buffer.
fn data_len(cmd: &CmdRef) -> u32 {
    match cmd.data().fitted {
        Some((extra, false)) => cmd.sgl().len().saturating_sub(extra),
        _ => cmd.sgl().len(),
    }
}

/// A write refused because its buffer is not the length its CDB says: the difference is
/// reported as the residual (an overflow when the CDB asks for more), as LIO does.
fn size_mismatch(cmd: &mut CmdRef) {
    let Some(blocks) = command::write_blocks(cmd.cdb()) else {
        return;
    };
    let Some(block_size) = cmd.lun().map(|l| l.device.attr(At::BlockSize)) else {
        return;
    };
    let need = u64::from(blocks) * u64::from(block_size);
    let have = u64::from(cmd.sgl().len());
    let d = cmd.data_mut();
    d.resid = u32::try_from(need.abs_diff(have)).unwrap_or(u32::MAX);
    d.overflow = need > have;
}

/// The data-out the fabric fetched ([`cmd::FabricOps::write_pending`]) has arrived.
pub(crate) fn resume(mut cmd: CmdRef) {
    cmd.data_mut().data_ready = true;
    match cmd.data().op {
        op @ (Op::Write(_) | Op::WriteAtomic(_)) => run(cmd, Next::Backend(op)),
        _ => execute(cmd),
    }
}

fn run(mut cmd: CmdRef, next: Next) {
    match next {
        Next::Done(result) => cmd::complete(cmd, result),
        Next::Conflict => cmd::complete_status(cmd, cmd::RESERVATION_CONFLICT),
        // Only reached if the fabric could not be asked for the data.
        Next::FetchAndRetry => cmd::complete(cmd, Err(Sense::internal_target_failure())),
        Next::Verify {
            pos,
            len,
            bytchk,
            block_size,
        } => crate::sbc::verify(cmd, pos, len, bytchk, block_size),
        Next::WriteSame {
            pos,
            len,
            block_size,
            unmap,
            zero,
        } => crate::sbc::write_same(cmd, pos, len, block_size, unmap, zero),
        Next::Unmap { count, block_size } => crate::sbc::unmap(cmd, count, block_size),
        Next::Caw { pos, len, fua, or } => crate::sbc::compare_and_write(cmd, pos, len, fua, or),
        Next::WriteVerify {
            pos,
            len,
            block_size,
            bytchk,
        } => crate::sbc::write_verify(cmd, pos, len, block_size, bytchk),
        Next::LbaStatus {
            lba,
            alloc,
            blocks,
            block_size,
        } => crate::sbc::get_lba_status(cmd, lba, alloc, blocks, block_size),
        Next::Xcopy { len } => crate::xcopy::extended_copy(cmd, len),
        Next::Sanitize {
            sa,
            len,
            immed,
            block_size,
            unmap,
        } => crate::sanitize::sanitize(cmd, sa, len, immed, block_size, unmap),
        Next::Pi(io) => crate::sbc::pi_rw(cmd, io),
        Next::ReadPart { rw, keep } => crate::sbc::read_part(cmd, rw, keep),
        Next::Backend(Op::None) => cmd::complete(cmd, Ok(0)),
        Next::Backend(op) => {
            // A per-CPU reference keeps the backend through the call, which may release `cmd`.
            let Some(lun) = cmd.lun().cloned() else {
                return cmd::complete(cmd, Err(Sense::lun_not_supported()));
            };
            let Some(be) = lun.device.backend() else {
                return cmd::complete(cmd, Err(Sense::lun_not_supported()));
            };
            cmd.data_mut().op = op;
            match op {
                Op::Read(rw) => be.rw(cmd, rw, false),
                Op::Write(rw) => be.rw(cmd, rw, true),
                Op::WriteAtomic(rw) => be.write_atomic(cmd, rw),
                Op::Flush { pos, len } => be.flush(cmd, pos, len),
                Op::Discard { pos, len } => be.discard(cmd, pos, len),
                Op::WriteZeroes { pos, len } => be.write_zeroes(cmd, pos, len),
                Op::None => cmd::complete(cmd, Ok(0)),
            }
        }
    }
}

/// READ and WRITE: decided with the LUN borrowed from the command (no reference taken), the
/// CDB decoded once.
fn decide(cmd: &mut CmdRef) -> Next {
    let Ok(Some(rw)) = RwCdb::decode(cmd.cdb()) else {
        return decide_other(cmd);
    };
    let data_len = data_len(cmd);
    let Some(lun) = cmd.lun() else {
        return Next::Done(Err(Sense::lun_not_supported()));
    };
    let nexus = Nexus {
        session: cmd.session().map(|s| &**s),
        lun: cmd.lun_index(),
        read_only: cmd.data().read_only,
        // A READ CDB sent as a write (iSCSI's W bit) is not one.
        fit_transfers: cmd.data().fit_transfers && cmd.data().dir != DataDir::ToDevice,
    };
    let (next, resid, overflow) = decide_io(&rw, lun, &nexus, data_len);
    let d = cmd.data_mut();
    d.resid = resid;
    d.overflow = overflow;
    next
}

/// Whether writes are refused: the backend is read-only, the control page's SWP is set, or
/// the nexus may only read (LIO's `lun_access_ro`: a write-protected mapped LUN, or an iSCSI
/// demo-mode session with `demo_mode_write_protect`).
pub(crate) fn read_only(dev: &Device, nexus_read_only: bool) -> bool {
    nexus_read_only || dev.swp() || dev.backend().is_some_and(|b| b.read_only())
}

/// Who sends a READ or WRITE, and to which LUN number.
struct Nexus<'a> {
    session: Option<&'a Session>,
    lun: u64,
    read_only: bool,
    /// A READ longer than the buffer transfers what fits (the fabric reports the overflow).
    fit_transfers: bool,
}

/// A READ or WRITE of `lun`: the backend request and the residual (an overflow when the
/// flag says so), or why not.
fn decide_io(rw: &RwCdb, lun: &Lun, nexus: &Nexus<'_>, data_len: u32) -> (Next, u32, bool) {
    let session = nexus.session;
    let dev = &lun.device;
    let mut limits = limits(dev, true);
    // The device's protection information, or the fabric's for a device without.
    let store = dev.pi_type();
    let pi = store.or(session.and_then(|s| s.pi.fabric_type));
    // Protection fields are taken, and the control page says ATO, when the nexus carries it.
    limits.pi = pi.is_some() && session.is_some_and(|s| s.pi.carries);
    limits.type2 = limits.pi && store == Some(PiType::Type2);
    // A READ asking more than the buffer holds (without protection information, asked or
    // kept): decoded as if the buffer were whole, then the buffer's bytes are read (LIO's
    // SCF_OVERFLOW_BIT).
    let bs = u64::from(limits.block_size);
    let need = u64::from(rw.blocks) * bs;
    let overflow = nexus.fit_transfers
        && matches!(rw.dir, crate::proto::cdb::Dir::Read)
        && pi.is_none()
        && rw.protect == 0
        && need > u64::from(data_len);
    let decode_len = if overflow {
        u32::try_from(need).unwrap_or(u32::MAX)
    } else {
        data_len
    };
    let action = match command::parse_rw(rw, &limits, decode_len) {
        Ok(a) => a,
        Err(s) => return (Next::Done(Err(s)), 0, false),
    };
    if let Some(s) = session {
        if let Some(ua) = s.ua_check(nexus.lun, rw_opcode(rw), dev.attr(At::UaIntlck)) {
            return (Next::Done(Err(ua)), 0, false);
        }
    }
    if dev.sanitizing() {
        return (Next::Done(Err(Sense::sanitize_in_progress())), 0, false);
    }
    if let Some(s) = session {
        let access = match rw.dir {
            crate::proto::cdb::Dir::Read => Access::Read,
            crate::proto::cdb::Dir::Write => Access::Write,
        };
        // Reservations are enforced only while `emulate_pr` is on, as in LIO.
        if (dev.spc2_conflict(s.id()) || dev.pr.conflicts(&s.holder, access))
            && dev.attr(At::EmulatePr) != 0
        {
            return (Next::Conflict, 0, false);
        }
    }
    match action {
        Action::Read { lba, blocks, fua } | Action::Write { lba, blocks, fua } => {
            let len = u64::from(blocks) * bs;
            let io = Rw {
                pos: lba * bs,
                len,
                fua,
            };
            let write = matches!(action, Action::Write { .. });
            if write && read_only(dev, nexus.read_only) {
                return (Next::Done(Err(Sense::write_protected())), 0, false);
            }
            if overflow {
                let keep = u64::from(data_len);
                let over = (len - keep) as u32;
                // Whole blocks straight into the buffer; a last partial block through the
                // core's buffer.
                if keep % bs == 0 {
                    let io = Rw { len: keep, ..io };
                    return (Next::Backend(Op::Read(io)), over, true);
                }
                let io = Rw {
                    len: keep.div_ceil(bs) * bs,
                    ..io
                };
                return (
                    Next::ReadPart {
                        rw: io,
                        keep: data_len,
                    },
                    over,
                    true,
                );
            }
            let resid = data_len.saturating_sub(len as u32);
            match crate::proto::pi::plan(rw, pi, limits.pi) {
                Err(s) => (Next::Done(Err(s)), 0, false),
                // A transfer of no blocks has no tuples either; without a store only tuples
                // that travel with the data are work.
                Ok(Some(plan)) if len > 0 && (store.is_some() || plan.op == PiOp::Pass) => (
                    Next::Pi(PiIo {
                        plan,
                        rw: io,
                        block_size: limits.block_size,
                        write,
                        moved: false,
                        store: store.is_some(),
                    }),
                    resid,
                    false,
                ),
                Ok(_) if write => (Next::Backend(Op::Write(io)), resid, false),
                Ok(_) => (Next::Backend(Op::Read(io)), resid, false),
            }
        }
        _ => (Next::Done(Err(Sense::internal_target_failure())), 0, false),
    }
}

/// An opcode the unit-attention rules treat like this READ or WRITE (neither passes one).
fn rw_opcode(rw: &RwCdb) -> u8 {
    match rw.dir {
        crate::proto::cdb::Dir::Read => crate::proto::cdb::READ_10,
        crate::proto::cdb::Dir::Write => crate::proto::cdb::WRITE_10,
    }
}

/// Every command but a well-formed READ or WRITE.
fn decide_other(cmd: &mut CmdRef) -> Next {
    let Some(lun) = cmd.lun().cloned() else {
        return Next::Done(no_lun(cmd));
    };
    // A nexus that may only read sends no data at all (LIO's `lun_access_ro`: PROUT, MODE
    // SELECT, EXTENDED COPY...).
    if cmd.data().read_only && cmd.data().dir == DataDir::ToDevice {
        return Next::Done(Err(Sense::write_protected()));
    }
    let index = cmd.lun_index();
    let dev = &lun.device;
    let data_len = data_len(cmd);
    let mut limits = limits(dev, false);
    limits.type2 = advertised_pi(dev, cmd.session().map(|s| &**s)) == Some(PiType::Type2);
    let action = match command::parse(cmd.cdb(), &limits, data_len) {
        Ok(a) => a,
        Err(s) => return Next::Done(Err(s)),
    };
    // As in LIO, a malformed CDB is reported before a pending unit attention.
    let opcode = cmd.cdb().first().copied().unwrap_or(0);
    let nexus = cmd.session().map_or(0, |s| s.id());
    if let Some(s) = cmd.session() {
        if let Some(ua) = s.ua_check(index, opcode, dev.attr(At::UaIntlck)) {
            return Next::Done(Err(ua));
        }
    }
    if dev.sanitizing() && !command::runs_while_sanitizing(opcode) {
        return Next::Done(Err(Sense::sanitize_in_progress()));
    }
    // Reservations are enforced only while `emulate_pr` is on, as in LIO.
    let enforced = limits.reservations;
    if enforced && dev.spc2_conflict(nexus) && !command::passes_reservation(opcode) {
        return Next::Conflict;
    }
    // While an SPC-2 reservation is held, every PRIN and PROUT conflicts, the holder's too
    // (SPC-2 5.5.1, as LIO).
    let pr_command = matches!(
        opcode,
        pr::PERSISTENT_RESERVE_IN | pr::PERSISTENT_RESERVE_OUT
    );
    if pr_command && dev.spc2_held() {
        return Next::Conflict;
    }
    if let Some(s) = cmd.session().filter(|_| enforced) {
        if dev.pr.conflicts(&s.holder, pr::access(cmd.cdb())) {
            return Next::Conflict;
        }
    }
    let bs = u64::from(limits.block_size);
    match action {
        // A well-formed READ or WRITE never comes here (`decide` takes it).
        Action::Read { .. } | Action::Write { .. } => {
            Next::Done(Err(Sense::internal_target_failure()))
        }
        Action::SyncCache { lba, blocks } => {
            if blocks > 0 && lba.saturating_add(u64::from(blocks)) > limits.blocks {
                return Next::Done(Err(Sense::lba_out_of_range()));
            }
            Next::Backend(Op::Flush {
                pos: lba * bs,
                len: u64::from(blocks) * bs,
            })
        }
        Action::Good => Next::Done(Ok(0)),
        Action::ModeSelect { len: 0, .. } => Next::Done(Ok(0)),
        Action::ModeSelect { ten, len }
            if cmd.data().data_ready || cmd.data().dir != DataDir::ToDevice =>
        {
            Next::Done(mode_select(cmd, dev, nexus, ten, len))
        }
        Action::ModeSelect { .. } => Next::FetchAndRetry,
        Action::Sanitize {
            sa: command::op::SANITIZE_EXIT_FAILURE_MODE,
            ..
        } => Next::Done(Ok(0)),
        Action::Sanitize { .. } if read_only(dev, cmd.data().read_only) => {
            Next::Done(Err(Sense::write_protected()))
        }
        Action::Sanitize { sa, len, immed }
            if cmd.data().data_ready || cmd.data().dir != DataDir::ToDevice =>
        {
            Next::Sanitize {
                sa,
                len,
                immed,
                block_size: limits.block_size,
                unmap: limits.thin.lbprz,
            }
        }
        Action::Sanitize { .. } => Next::FetchAndRetry,
        Action::Reserve | Action::Release => {
            // Beside persistent reservations, SPC-4 5.13.3's exceptions come first.
            match cmd
                .session()
                .map_or(Spc2::Proceed, |s| dev.pr.spc2(&s.holder))
            {
                Spc2::Good => Next::Done(Ok(0)),
                Spc2::Conflict => Next::Conflict,
                Spc2::Proceed if matches!(action, Action::Release) => {
                    dev.spc2_release(nexus);
                    Next::Done(Ok(0))
                }
                Spc2::Proceed if dev.spc2_reserve(nexus) => Next::Done(Ok(0)),
                Spc2::Proceed => Next::Conflict,
            }
        }
        Action::PersistentReserveIn { sa, alloc } => {
            Next::Done(persistent_reserve_in(cmd, dev, sa, alloc))
        }
        Action::PersistentReserveOut { len, .. } if len as usize != pr::PROUT_PARAM_LEN => {
            Next::Done(Err(Sense::param_list_length()))
        }
        Action::PersistentReserveOut { sa, scope_type, .. }
            if cmd.data().data_ready || cmd.data().dir != DataDir::ToDevice =>
        {
            persistent_reserve_out(cmd, dev, sa, scope_type)
        }
        Action::PersistentReserveOut { .. } => Next::FetchAndRetry,
        Action::WriteSame { .. } | Action::Unmap { .. } if read_only(dev, cmd.data().read_only) => {
            Next::Done(Err(Sense::write_protected()))
        }
        Action::WriteSame {
            lba,
            blocks,
            unmap,
            ndob,
        } => Next::WriteSame {
            pos: lba * bs,
            len: u64::from(blocks) * bs,
            block_size: limits.block_size,
            unmap: unmap && limits.thin.lbprz,
            zero: ndob,
        },
        Action::CompareAndWrite { blocks: 0, .. }
        | Action::OrWrite { blocks: 0, .. }
        | Action::WriteVerify { blocks: 0, .. } => Next::Done(Ok(0)),
        Action::CompareAndWrite { .. }
        | Action::OrWrite { .. }
        | Action::WriteVerify { .. }
        | Action::WriteAtomic { .. }
            if read_only(dev, cmd.data().read_only) =>
        {
            Next::Done(Err(Sense::write_protected()))
        }
        Action::CompareAndWrite { lba, blocks, fua } => Next::Caw {
            pos: lba * bs,
            len: u64::from(blocks) * bs,
            fua,
            or: false,
        },
        Action::WriteAtomic { lba, blocks, fua } => Next::Backend(Op::WriteAtomic(Rw {
            pos: lba * bs,
            len: u64::from(blocks) * bs,
            fua,
        })),
        Action::OrWrite { lba, blocks, fua } => Next::Caw {
            pos: lba * bs,
            len: u64::from(blocks) * bs,
            fua,
            or: true,
        },
        // Written through to the medium (FUA) before GOOD; with BYTCHK, read back and compared.
        // On a device with protection information it runs as steps, whose end keeps the tuples.
        Action::WriteVerify {
            lba,
            blocks,
            bytchk: false,
        } if dev.pi_type().is_none() => Next::Backend(Op::Write(Rw {
            pos: lba * bs,
            len: u64::from(blocks) * bs,
            fua: true,
        })),
        Action::WriteVerify {
            lba,
            blocks,
            bytchk,
        } => Next::WriteVerify {
            pos: lba * bs,
            len: u64::from(blocks) * bs,
            block_size: limits.block_size,
            bytchk,
        },
        Action::ExtendedCopy { len: 0 } => Next::Done(Ok(0)),
        Action::ExtendedCopy { len } => Next::Xcopy { len },
        Action::CopyOperatingParameters { alloc } => Next::Done(respond(
            cmd,
            &crate::proto::xcopy::operating_parameters(),
            alloc,
            true,
        )),
        Action::CopyStatus { list_id, alloc } => {
            match cmd.session().and_then(|s| s.copy_status(index, list_id)) {
                Some((ok, bytes)) => {
                    let data = crate::proto::xcopy::copy_status(ok, bytes);
                    Next::Done(respond(cmd, &data, alloc, true))
                }
                // No copy with that list identifier.
                None => Next::Done(Err(Sense::invalid_cdb_field(2, None))),
            }
        }
        Action::GetLbaStatus { lba, alloc } => Next::LbaStatus {
            lba,
            alloc,
            blocks: limits.blocks,
            block_size: limits.block_size,
        },
        Action::Unmap { len } => match check_unmap(cmd.sgl(), len, &limits) {
            Ok(0) => Next::Done(Ok(0)),
            Ok(count) => Next::Unmap {
                count,
                block_size: limits.block_size,
            },
            Err(s) => Next::Done(Err(s)),
        },
        Action::Verify { blocks: 0, .. } | Action::Verify { bytchk: 0, .. } => Next::Done(Ok(0)),
        Action::Verify {
            lba,
            blocks,
            bytchk,
        } => Next::Verify {
            pos: lba * bs,
            len: u64::from(blocks) * bs,
            bytchk,
            block_size: limits.block_size,
        },
        Action::RequestSense { alloc } => {
            // A running SANITIZE is reported with its progress (SBC-4 4.33); else a pending
            // unit attention (and cleared); else, as LIO, a zero-filled 96-byte buffer
            // holding NO SENSE.
            let mut sense = [0u8; 96];
            if let Some(p) = dev.sanitize_progress() {
                Sense::sanitize_in_progress().write_fixed_with_progress(p, &mut sense);
            } else {
                match cmd.session().and_then(|s| s.ua_take(index)) {
                    Some(ua) => {
                        ua.write_fixed(&mut sense);
                    }
                    None => sense[..NO_SENSE.len()].copy_from_slice(&NO_SENSE),
                }
            }
            Next::Done(respond(cmd, &sense, alloc, false))
        }
        other => Next::Done(emulate(cmd, &lun, other)),
    }
}

/// MODE SELECT: checks the parameter list against what MODE SENSE reports; a new WCE becomes
/// the device's `emulate_write_cache`, a new SWP its write protection, and the other nexuses
/// get MODE PARAMETERS CHANGED.
fn mode_select(
    cmd: &CmdRef,
    dev: &Device,
    nexus: usize,
    ten: bool,
    len: u32,
) -> Result<u32, Sense> {
    let mut data = [0u8; command::MODE_SELECT_MAX as usize];
    let data = &mut data[..len as usize];
    if cmd.sgl().copy_from(0, data) != data.len() {
        return Err(Sense::param_list_length());
    }
    let pi = advertised_pi(dev, cmd.session().map(|s| &**s));
    let changes = spc::mode_select(ten, data, &geometry(dev, pi))?;
    let mut changed = false;
    if let Some(wce) = changes.wce.filter(|&w| w != write_cache(dev)) {
        dev.set_write_cache(wce);
        changed = true;
    }
    if let Some(swp) = changes.swp.filter(|&s| s != dev.swp()) {
        dev.set_swp(swp);
        changed = true;
    }
    if changed {
        dev.raise_ua_except(crate::ua::MODE_PARAMETERS_CHANGED, nexus);
    }
    Ok(0)
}

/// Checks an UNMAP parameter list of `len` bytes (0: nothing to do) before anything is
/// deallocated; returns its descriptor count.
fn check_unmap(sgl: &crate::rt::io::Sgl, len: u32, dev: &Limits) -> Result<u32, Sense> {
    if len == 0 {
        return Ok(0);
    }
    let mut hdr = [0u8; 8];
    sgl.copy_from(0, &mut hdr);
    let count = command::unmap_header(&hdr, len, dev)?;
    for i in 0..count {
        let mut d = [0u8; 16];
        sgl.copy_from(8 + 16 * i as usize, &mut d);
        command::unmap_descriptor(&d, i, dev)?;
    }
    Ok(count)
}

/// PERSISTENT RESERVE IN: the response, truncated to the allocation length, straight into
/// the data buffer (READ KEYS and READ FULL STATUS grow with the registrations).
fn persistent_reserve_in(cmd: &mut CmdRef, dev: &Device, sa: u8, alloc: u32) -> Result<u32, Sense> {
    let data_len = cmd.sgl().len();
    let want = alloc.min(data_len) as usize;
    let mut buf =
        KVec::from_elem(0u8, want, GFP_KERNEL).map_err(|_| Sense::internal_target_failure())?;
    let full = dev.pr.prin(sa, &mut buf);
    let n = full.min(want);
    cmd.sgl().copy_to(0, &buf[..n]);
    Ok(data_len - n as u32)
}

/// PERSISTENT RESERVE OUT, its 24-byte parameter list in the data buffer.
fn persistent_reserve_out(cmd: &mut CmdRef, dev: &Device, sa: u8, scope_type: u8) -> Next {
    let Some(s) = cmd.session() else {
        return Next::Done(Err(Sense::internal_target_failure()));
    };
    let mut list = [0u8; pr::PROUT_PARAM_LEN];
    cmd.sgl().copy_from(0, &mut list);
    let params = match ProutParams::decode(sa, &list) {
        Ok(p) => p,
        Err(e) => return Next::Done(Err(e)),
    };
    match dev.pr.prout(dev, &s.holder, sa, scope_type, &params) {
        Ok(()) => Next::Done(Ok(0)),
        Err(Refusal::Conflict) => Next::Conflict,
        Err(Refusal::Check(e)) => Next::Done(Err(e)),
        Err(Refusal::NoRoom) => Next::Done(Err(pr::insufficient_registration_resources())),
    }
}

/// Builds an emulated response on the stack and copies it out.
#[inline(never)]
fn emulate(cmd: &mut CmdRef, lun: &Lun, action: Action) -> Result<u32, Sense> {
    let mut buf = [0u8; RESPONSE_MAX];
    let dev = &lun.device;
    let pi = advertised_pi(dev, cmd.session().map(|s| &**s));
    let geo = geometry(dev, pi);
    let (len, alloc) = match action {
        Action::Inquiry { alloc } | Action::Vpd { alloc, .. } => {
            let wwn = *dev.wwn.lock();
            let id = Identity {
                vendor: wwn.vendor.get(),
                product: wwn.product.get(),
                revision: wwn.revision.get(),
                unit_serial: wwn.unit_serial.get(),
                company_id: wwn.company_id,
                proto: lun.port.proto,
                port_wwn: lun.port.wwn.to_bytes(),
                tpgt: lun.port.tpgt,
                rtpi: 0,
                tg_pt_gp_id: 0,
                lu_gp_id: 0,
                three_pc: dev.attr(At::ThreePc) != 0 && dev.pi_type().is_none(),
                protect: pi.is_some(),
            };
            match action {
                Action::Vpd { page, .. } => (spc::vpd(page, &id, &geo, &mut buf)?, alloc),
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
        Action::ModeSense { ms, alloc } => {
            // WP for a nexus that may only read, as LIO's `target_lun_is_rdonly`, and while
            // SWP is set.
            let wp = cmd.data().read_only || dev.swp();
            (spc::mode_sense(&ms, &geo, wp, &mut buf)?, alloc)
        }
        Action::ReportLuns { alloc } => return Ok(report_luns(cmd, alloc)),
        Action::ReportOpcodes { query, alloc } => {
            // All commands with timeouts descriptors outgrow the stack buffer.
            let mut limits = limits(dev, false);
            limits.type2 = pi == Some(PiType::Type2);
            let full = command::report_opcodes_data(&query, &limits, &mut [])?;
            let mut data = KVec::from_elem(0u8, full, GFP_KERNEL)
                .map_err(|_| Sense::internal_target_failure())?;
            let n = command::report_opcodes_data(&query, &limits, &mut data)?;
            return respond(cmd, &data[..n], alloc, true);
        }
        Action::ReadDefectData {
            twelve,
            lists,
            alloc,
        } => {
            let (data, len) = command::defect_data(twelve, lists);
            buf[..len].copy_from_slice(&data[..len]);
            (len, alloc)
        }
        Action::ReportTmfs { repd, alloc } => {
            let (data, len) = command::report_tmfs_data(repd);
            buf[..len].copy_from_slice(&data[..len]);
            (len, alloc)
        }
        _ => (0, 0),
    };
    respond(cmd, &buf[..len.min(RESPONSE_MAX)], alloc, true)
}

/// REPORT LUNS, written straight into the data buffer (the list has no fixed bound).
/// The list is the nexus's view: its ACL's mapped LUNs, or every LUN of the port.
fn report_luns(cmd: &mut CmdRef, alloc: u32) -> u32 {
    let data_len = cmd.sgl().len();
    let limit = alloc.min(data_len) as usize;
    let sgl = *cmd.sgl();
    let write = |at: usize, bytes: &[u8]| {
        if at < limit {
            sgl.copy_to(at, &bytes[..bytes.len().min(limit - at)]);
        }
    };
    let full = match cmd.session() {
        Some(s) => s.with_lun_indexes(|it| spc::report_luns(it, write)),
        None => spc::report_luns(core::iter::empty(), write),
    };
    data_len.saturating_sub(full.min(limit) as u32)
}

/// A command to a LUN number the nexus does not see. At LUN 0, as LIO's virtual LUN 0:
/// INQUIRY says no device is connected there and REPORT LUNS lists the nexus's LUNs, so that
/// initiators scanning from LUN 0 find the others. Anything else is LOGICAL UNIT NOT
/// SUPPORTED.
fn no_lun(cmd: &mut CmdRef) -> Result<u32, Sense> {
    if cmd.lun_index() != 0 {
        return Err(Sense::lun_not_supported());
    }
    let cdb = cmd.cdb();
    let alloc_at = |i: usize| {
        cdb.get(i..i + 2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
    };
    match cdb.first() {
        Some(&command::op::INQUIRY) if cdb.get(1).is_some_and(|b| b & 1 == 0) => {
            let alloc = u32::from(alloc_at(3));
            let mut std = [0u8; spc::STD_INQUIRY_LEN];
            spc::inquiry_no_lun(&mut std);
            respond(cmd, &std, alloc, true)
        }
        Some(&command::op::REPORT_LUNS) => {
            let alloc = cdb
                .get(6..10)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            if alloc < 16 {
                return Err(Sense::invalid_cdb_field(6, None));
            }
            Ok(report_luns(cmd, alloc))
        }
        _ => Err(Sense::lun_not_supported()),
    }
}

/// Copies a response of which the initiator asked for `alloc` bytes. With `resid`, a
/// response shorter than the buffer reports the rest as residual (LIO does so for all but
/// REQUEST SENSE).
fn respond(cmd: &mut CmdRef, data: &[u8], alloc: u32, resid: bool) -> Result<u32, Sense> {
    let data_len = cmd.sgl().len();
    let n = data.len().min(alloc as usize).min(data_len as usize);
    cmd.sgl().copy_to(0, &data[..n]);
    Ok(if resid { data_len - n as u32 } else { 0 })
}
