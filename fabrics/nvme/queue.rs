// SPDX-License-Identifier: GPL-2.0

//! One NVMe/TCP connection: a queue of a controller.
//!
//! The thread the port's acceptor started runs the initial exchange (ICReq/ICResp) and the
//! Connect, then either the admin queue (commands answered in turn by `ctrl.rs`, with the
//! keep-alive check) or an I/O queue:
//! - the **receive** thread reads every PDU. A command takes a slot of the queue's [`Pool`]
//!   (pre-allocated, one per queue entry), receives its in-capsule data into the slot's
//!   buffer and goes to the core as the SBC command that does the same. A write whose data
//!   is still with the host comes back through `write_pending`, parked for the transmit
//!   thread to send its R2T; each H2CData then lands in the same buffer.
//! - the **transmit** thread sends everything else: R2Ts, the answers of completed commands
//!   (C2HData and the response capsule), and the errors the receive thread found. The core's
//!   completions park commands from whatever context the backend completes in and ring the
//!   queue's doorbell. Nothing on this path allocates or takes a lock another queue takes.

use crate::capsule::{self, Cqe, Sqe, Status, Transfer};
use crate::configfs::{NvPort, DISCOVERY_NQN};
use crate::ctrl::Ctrl;
use crate::nvm::{self, Nvm};
use crate::resv;
use crate::pdu::{self, hlen, ty, Fatal, Framing, Negotiated, CH_LEN, DIGEST_LEN, SQE_LEN};
use kernel::prelude::*;
use kernel::sync::atomic::{ordering::Relaxed, Atomic};
use kernel::sync::{Arc, SpinLock};
use kernel::time::Delta;
use rtarget_core::cmd::{self, CmdRef, DataDir, FabricOps};
use rtarget_core::proto::sense::Sense;
use rtarget_core::rt::cmd_pool::{Answerer, CmdPool};
use rtarget_core::rt::cmd_ref::CmdSetup;
use rtarget_core::rt::crypto;
use rtarget_core::rt::io::{ScratchSgl, Sgl};
use rtarget_core::rt::live_ref::LiveRef;
use rtarget_core::rt::net::Stream;
use rtarget_core::rt::thread::{self, Doorbell, Thread};
use rtarget_core::tmf;

/// Largest `param_inline_data_size`.
pub(crate) const MAX_INLINE: u32 = 128 << 10;
/// Largest transfer of one command (MDTS: 2^8 pages of 4 KiB).
pub(crate) const MAX_TRANSFER: u32 = 1 << 20;
/// MDTS as Identify reports it.
pub(crate) const MDTS: u8 = 8;
/// MAXH2CDATA granted (nvmet's).
const MAXH2CDATA: u32 = 0x40_0000;
/// How long the initial exchange and the Connect may take.
const CONNECT_TIMEOUT_MS: u32 = 10_000;
/// How long a closing queue waits for the commands backends still hold.
const CLOSE_WAIT: Delta = Delta::from_secs(30);
/// Connect attribute: SQ flow control disabled (SQHD is not tracked; C2HData may carry the
/// success flag).
const CATTR_NO_SQFLOW: u8 = 1 << 2;
/// A buffer kept by a slot for its next command at most; larger ones go when their command
/// ends.
const KEEP_BUFFER: u32 = 256 << 10;

/// Parking lots of the pool: writes whose R2T is to be sent, writes waiting for H2CData,
/// and answers to be sent.
const SEND_R2T: usize = 0;
const WAIT_DATA: usize = 1;
const RESPOND: usize = 2;

/// Where the next I/O queue's threads run ([`thread::online_cpu`]).
static NEXT_CPU: Atomic<u32> = Atomic::new(0);

/// The receive side's sends: one connection's framing and digests.
pub(crate) struct Link {
    pub(crate) stream: Arc<Stream>,
    pub(crate) neg: Negotiated,
    pub(crate) hpda: u8,
}

/// Data of a C2HData PDU.
#[derive(Clone, Copy)]
pub(crate) enum Data<'a> {
    Bytes(&'a [u8]),
    Sgl(Sgl, u32),
}

fn digest(parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    let crc = parts.iter().fold(!0, |c, p| crypto::crc32c(c, p));
    (!crc).to_le_bytes()
}

impl Link {
    fn send_header(&self, h: &[u8], more: bool) -> Result {
        self.stream.send(h, more || self.neg.hdgst)?;
        if self.neg.hdgst {
            self.stream.send(&digest(&[h]), more)?;
        }
        Ok(())
    }

    /// A response capsule.
    pub(crate) fn send_cqe(&self, cqe: &Cqe) -> Result {
        let mut b = [0u8; hlen::CAPSULE_RESP];
        pdu::capsule_resp(&cqe.encode(), self.neg.hdgst, &mut b);
        self.send_header(&b, false)
    }

    /// All of a command's data in one C2HData PDU (`success`: no response capsule follows).
    pub(crate) fn send_data(&self, cccid: u16, data: Data<'_>, success: bool) -> Result {
        let len = match data {
            Data::Bytes(b) => b.len() as u32,
            Data::Sgl(_, n) => n,
        };
        let mut h = [0u8; hlen::SHORT];
        let d = pdu::C2hData {
            cccid,
            datao: 0,
            datal: len,
            last: true,
            success,
        };
        pdu::c2h_data(&d, &self.neg, self.hpda, &mut h);
        self.send_header(&h, true)?;
        let head = hlen::SHORT + if self.neg.hdgst { DIGEST_LEN } else { 0 };
        let pad = pdu::data_offset(hlen::SHORT, self.neg.hdgst, self.hpda) - head;
        if pad > 0 {
            self.stream.send(&[0u8; 128][..pad], true)?;
        }
        let dd = self.neg.ddgst;
        let crc = match data {
            Data::Bytes(b) => {
                self.stream.send(b, dd)?;
                crypto::crc32c(!0, b)
            }
            Data::Sgl(sgl, n) => {
                self.stream.send_sgl(&sgl, 0, n, dd, false)?;
                if dd {
                    crypto::crc32c_sgl(!0, &sgl, 0, n)
                } else {
                    0
                }
            }
        };
        if dd {
            self.stream.send(&(!crc).to_le_bytes(), false)?;
        }
        Ok(())
    }

    fn send_r2t(&self, cccid: u16, ttag: u16, len: u32) -> Result {
        let mut h = [0u8; hlen::SHORT];
        pdu::r2t(cccid, ttag, 0, len, self.neg.hdgst, &mut h);
        self.send_header(&h, false)
    }

    /// A fatal error: C2HTermReq, then the connection ends.
    pub(crate) fn terminate(&self, fatal: Fatal, culprit: &[u8]) {
        let mut b = [0u8; pdu::MAX_TERM_PLEN];
        let n = pdu::c2h_term_req(fatal, culprit, &mut b);
        let _ = self.stream.send(&b[..n], false);
        self.stream.shutdown();
    }
}

/// A PDU's header as received: the common header, the rest, and where its data lies.
pub(crate) struct Received {
    pub(crate) f: Framing,
    /// The header (common header first), `f.header.hlen` bytes.
    pub(crate) h: [u8; hlen::IC],
}

/// What went wrong receiving.
pub(crate) enum RecvError {
    /// The peer closed, or the socket failed, or the queue is being torn down.
    Closed,
    /// A malformed PDU: C2HTermReq.
    /// Its header's first bytes (in the [`Received`]) are the culprit the C2HTermReq quotes.
    Fatal(Fatal, usize),
    /// No PDU started within the receive timeout.
    Idle,
}

impl From<Error> for RecvError {
    fn from(e: Error) -> RecvError {
        if e == EAGAIN {
            RecvError::Idle
        } else {
            RecvError::Closed
        }
    }
}

impl Received {
    pub(crate) fn new() -> Received {
        Received {
            f: Framing {
                header: pdu::Header::decode(&[0; CH_LEN]),
                hdgst: false,
                pad: 0,
                data: 0,
                ddgst: false,
            },
            h: [0; hlen::IC],
        }
    }
}

/// Receives the next PDU's header into `r` (the data is the caller's to take); a fatal
/// error's culprit stays in `r.h`. With `tick`, no first byte within that many milliseconds
/// gives [`RecvError::Idle`]; the rest of the PDU is then waited for without a bound.
pub(crate) fn recv_header(
    stream: &Stream,
    neg: Option<&Negotiated>,
    r: &mut Received,
    tick: Option<u32>,
) -> core::result::Result<(), RecvError> {
    // The first byte may time out (the admin queue's keep-alive check); then whole parts.
    if let Some(ms) = tick {
        stream.set_recv_timeout(ms);
    }
    let got = stream.recv(&mut r.h[..1])?;
    if tick.is_some() {
        stream.set_recv_timeout(0);
    }
    if got == 0 {
        return Err(RecvError::Closed);
    }
    if !stream.recv_exact(&mut r.h[1..CH_LEN]).map_err(|_| RecvError::Closed)? {
        return Err(RecvError::Closed);
    }
    let ch: [u8; CH_LEN] = core::array::from_fn(|i| r.h[i]);
    r.f = pdu::frame(&ch, neg).map_err(|f| RecvError::Fatal(f, CH_LEN))?;
    let hl = usize::from(r.f.header.hlen);
    if !stream
        .recv_exact(&mut r.h[CH_LEN..hl])
        .map_err(|_| RecvError::Closed)?
    {
        return Err(RecvError::Closed);
    }
    if r.f.hdgst {
        let mut d = [0u8; DIGEST_LEN];
        if !stream.recv_exact(&mut d).map_err(|_| RecvError::Closed)? {
            return Err(RecvError::Closed);
        }
        if d != digest(&[&r.h[..hl]]) {
            return Err(RecvError::Fatal(
                Fatal {
                    fes: pdu::Fes::HeaderDigest,
                    fei: 0,
                },
                hl,
            ));
        }
    }
    if r.f.pad > 0 {
        let mut pad = [0u8; 128];
        let n = r.f.pad as usize;
        if n > pad.len() || !stream.recv_exact(&mut pad[..n]).map_err(|_| RecvError::Closed)? {
            return Err(RecvError::Closed);
        }
    }
    Ok(())
}

/// Receives a PDU's data into `into` (its length is `f.data`) and checks its digest.
pub(crate) fn recv_data_bytes(stream: &Stream, f: &Framing, into: &mut [u8]) -> Result<bool> {
    if !stream.recv_exact(into)? {
        return Err(ECONNRESET);
    }
    check_ddgst(stream, f, || crypto::crc32c(!0, into))
}

fn recv_data_sgl(stream: &Stream, f: &Framing, sgl: &Sgl, at: u32) -> Result<bool> {
    stream.recv_sgl(sgl, at, f.data)?;
    check_ddgst(stream, f, || crypto::crc32c_sgl(!0, sgl, at, f.data))
}

/// Receives and drops a PDU's data.
fn skip_data(stream: &Stream, f: &Framing) -> Result {
    let mut left = f.data as usize + if f.ddgst { DIGEST_LEN } else { 0 };
    let mut buf = [0u8; 256];
    while left > 0 {
        let n = left.min(buf.len());
        if !stream.recv_exact(&mut buf[..n])? {
            return Err(ECONNRESET);
        }
        left -= n;
    }
    Ok(())
}

fn check_ddgst(stream: &Stream, f: &Framing, crc: impl FnOnce() -> u32) -> Result<bool> {
    if !f.ddgst {
        return Ok(true);
    }
    let mut d = [0u8; DIGEST_LEN];
    if !stream.recv_exact(&mut d)? {
        return Err(ECONNRESET);
    }
    Ok(d == (!crc()).to_le_bytes())
}

/// What the Connect of a queue set up.
pub(crate) struct Connected {
    pub(crate) ctrl: Arc<Ctrl>,
    pub(crate) qid: u16,
    /// Queue entries (SQSIZE + 1).
    pub(crate) size: u32,
    pub(crate) no_sqflow: bool,
}

/// Serves one connection until it ends.
pub(crate) fn serve(stream: &Arc<Stream>, port: &Arc<NvPort>) {
    stream.set_recv_timeout(CONNECT_TIMEOUT_MS);
    let Some(link) = initial_exchange(stream, port) else {
        return;
    };
    let Some(c) = connect(&link, port) else {
        return;
    };
    if c.qid == 0 {
        crate::ctrl::serve_admin(link, c);
    } else {
        stream.set_recv_timeout(0);
        serve_io(link, c);
    }
}

/// ICReq and ICResp.
fn initial_exchange(stream: &Arc<Stream>, port: &NvPort) -> Option<Link> {
    // Nothing negotiated yet: a C2HTermReq goes without digests.
    let plain = Link {
        stream: stream.clone(),
        neg: Negotiated::grant(
            &pdu::IcReq {
                hpda: 0,
                hdgst: false,
                ddgst: false,
                maxr2t: 0,
            },
            0,
            MAXH2CDATA,
        ),
        hpda: 0,
    };
    let mut r = Received::new();
    match recv_header(stream, None, &mut r, None) {
        Ok(()) => {}
        Err(RecvError::Fatal(f, n)) => {
            plain.terminate(f, &r.h[..n]);
            return None;
        }
        Err(_) => return None,
    }
    let ic: [u8; hlen::IC] = r.h;
    let params = port.params();
    let req = match pdu::ic_req(&ic) {
        Ok(q) => q,
        Err(f) => {
            plain.terminate(f, &ic);
            return None;
        }
    };
    let neg = Negotiated::grant(&req, params.inline_data_size, MAXH2CDATA);
    let mut resp = [0u8; hlen::IC];
    pdu::ic_resp(&neg, &mut resp);
    stream.send(&resp, false).ok()?;
    Some(Link {
        stream: stream.clone(),
        neg,
        hpda: req.hpda,
    })
}

/// The first capsule must be a Connect; answers it and returns the queue it made.
fn connect(link: &Link, port: &Arc<NvPort>) -> Option<Connected> {
    let mut r = Received::new();
    match recv_header(&link.stream, Some(&link.neg), &mut r, None) {
        Ok(()) => {}
        Err(RecvError::Fatal(f, n)) => {
            link.terminate(f, &r.h[..n]);
            return None;
        }
        Err(_) => return None,
    }
    if r.f.header.ty != ty::CAPSULE_CMD {
        link.terminate(
            Fatal {
                fes: pdu::Fes::PduSequence,
                fei: 0,
            },
            &r.h[..usize::from(r.f.header.hlen)],
        );
        return None;
    }
    let raw = pdu::sqe(&core::array::from_fn(|i| r.h[i]));
    let sqe = Sqe::decode(&raw);
    let mut data = [0u8; capsule::CONNECT_DATA_LEN as usize];
    let answer = |status: Status, result: u64| {
        let _ = link.send_cqe(&Cqe {
            result,
            sqhd: 1,
            sqid: 0,
            cid: sqe.cid,
            status,
        });
    };
    if r.f.data as usize != data.len() {
        let _ = skip_data(&link.stream, &r.f);
        answer(Status::SGL_LENGTH, 0);
        return None;
    }
    if !recv_data_bytes(&link.stream, &r.f, &mut data).ok()? {
        return None;
    }
    if sqe.opcode != capsule::FABRICS || sqe.nsid as u8 != capsule::fctype::CONNECT {
        answer(Status::SEQUENCE, 0);
        return None;
    }
    let c = match capsule::connect(&sqe) {
        Ok(c) => c,
        Err((s, at)) => {
            answer(s, at);
            return None;
        }
    };
    let d = match capsule::connect_data(&data) {
        Ok(d) => d,
        Err(at) => {
            answer(Status::CONNECT_INVALID_PARAM, capsule::connect_data_error(at));
            return None;
        }
    };
    let params = port.params();
    let size = u32::from(c.sqsize) + 1;
    let max = if c.qid == 0 {
        u32::from(crate::log::AQ_DEPTH)
    } else {
        params.max_queue_size
    };
    if size > max {
        answer(Status::CONNECT_INVALID_PARAM, capsule::SQSIZE_AT);
        return None;
    }
    let discovery =
        d.subnqn == DISCOVERY_NQN || d.subnqn == port.nvme.discovery_nqn.lock().to_bytes();
    let ctrl = if c.qid == 0 {
        match Ctrl::connect(port, discovery, &d, c.kato) {
            Ok(ctrl) => ctrl,
            Err((s, at)) => {
                answer(s, at);
                return None;
            }
        }
    } else {
        match Ctrl::find(port, discovery, &d, c.qid) {
            Ok(ctrl) => ctrl,
            Err((s, at)) => {
                answer(s, at);
                return None;
            }
        }
    };
    let sent = link.send_cqe(&Cqe {
        result: u64::from(ctrl.cntlid),
        sqhd: 1,
        sqid: c.qid,
        cid: sqe.cid,
        status: Status::SUCCESS,
    });
    if sent.is_err() {
        if c.qid == 0 {
            ctrl.end();
            ctrl.gone();
        }
        return None;
    }
    Some(Connected {
        ctrl,
        qid: c.qid,
        size,
        no_sqflow: c.cattr & CATTR_NO_SQFLOW != 0,
    })
}

/// An I/O command's slot.
pub(crate) struct Slot {
    cid: u16,
    sqhd: u16,
    /// Bytes the host moves, and where in the buffer they start (after room for what they
    /// become: an UNMAP or PROUT parameter list, made in place).
    len: u32,
    base: u32,
    /// Bytes of H2CData received.
    received: u32,
    dir: DataDir,
    convert: Convert,
    buf: Option<ScratchSgl>,
}

/// What the host's data becomes once it is all in, or the core's data before it goes out.
#[derive(Clone, Copy)]
enum Convert {
    None,
    /// Dataset Management ranges: an UNMAP parameter list within the device's limits
    /// (descriptors, blocks per descriptor).
    Unmap { ranges: u32, limits: (u32, u32) },
    /// A reservation command's keys: the PROUT parameter list.
    Prout { key: resv::Key, sa_key: resv::Key },
    /// READ FULL STATUS: the Reservation Report.
    Report,
}

impl Convert {
    /// The host's data is in `sgl` (from byte `base`, `len` bytes).
    fn data_in(self, sgl: &Sgl, base: u32, len: u32) {
        match self {
            Convert::Unmap { ranges, limits } => unmap_list(sgl, ranges, limits),
            Convert::Prout { key, sa_key } => {
                let mut d = [0u8; 16];
                let n = (len as usize).min(d.len());
                sgl.copy_from(base as usize, &mut d[..n]);
                sgl.copy_to(0, &resv::params(key, sa_key, &d[..n]));
            }
            Convert::None | Convert::Report => {}
        }
    }
}

pub(crate) type Pool = CmdPool<Arc<Tx>, Slot>;

/// What an I/O queue's threads and the core's completions share.
#[pin_data]
pub(crate) struct Tx {
    #[pin]
    bell: Doorbell,
    /// The queue is gone: commands are released unanswered.
    closing: Atomic<bool>,
    /// The receive thread is done: the transmit thread ends once every slot is free.
    rx_done: Atomic<bool>,
    /// Answers the receive thread decided (errors, commands the core does not run).
    #[pin]
    early: SpinLock<KVec<Cqe>>,
    qid: u16,
    no_sqflow: bool,
}

/// The core's callbacks for NVMe I/O commands.
struct NvmeOps;
static OPS: NvmeOps = NvmeOps;

impl FabricOps for NvmeOps {
    fn write_pending(&self, cmd: CmdRef) {
        if let Some(cmd) = Pool::hand_over(cmd, SEND_R2T) {
            cmd::complete(cmd, Err(Sense::internal_target_failure()));
        }
    }
    fn queue_status(&self, cmd: CmdRef) {
        if let Some(cmd) = Pool::hand_over(cmd, RESPOND) {
            Pool::end(cmd);
        }
    }
    fn aborted(&self, cmd: CmdRef) {
        Pool::end(cmd)
    }
}

impl Answerer for Tx {
    fn closing(&self) -> bool {
        self.closing.load(Relaxed)
    }
    fn ring(&self) {
        self.bell.ring()
    }
}

/// Runs an I/O queue until its connection ends.
fn serve_io(link: Link, c: Connected) {
    let Some(session) = c.ctrl.session.clone() else {
        return;
    };
    let tx = Arc::pin_init(
        try_pin_init!(Tx {
            bell <- Doorbell::new(),
            closing: Atomic::new(false),
            rx_done: Atomic::new(false),
            early <- kernel::new_spinlock!(KVec::with_capacity(c.size as usize, GFP_KERNEL)?),
            qid: c.qid,
            no_sqflow: c.no_sqflow,
        }? Error),
        GFP_KERNEL,
    );
    let Ok(tx) = tx else {
        return;
    };
    let pool = Pool::new(tx, c.size, |_| {
        Ok(Slot {
            cid: 0,
            sqhd: 0,
            len: 0,
            base: 0,
            received: 0,
            dir: DataDir::None,
            convert: Convert::None,
            buf: None,
        })
    });
    let Ok(pool) = pool else {
        return;
    };
    let link = match Arc::new(link, GFP_KERNEL) {
        Ok(l) => l,
        Err(_) => return,
    };
    if c.ctrl.add_io_queue(c.qid, &link.stream).is_err() {
        return;
    }
    let cpu = thread::online_cpu(NEXT_CPU.fetch_add(1, Relaxed));
    let _ = thread::pin_current(cpu);
    let mut sender = Some(Sender {
        pool: pool.clone(),
        link: link.clone(),
        ctrl: c.ctrl.clone(),
        batch: KVec::new(),
        held: false,
    });
    if let Some(s) = sender.as_mut() {
        if s.batch.reserve(c.size as usize, GFP_KERNEL).is_err() {
            c.ctrl.remove_io_queue(c.qid, &link.stream);
            return;
        }
    }
    let tx_thread = Thread::spawn(c"rt_nvme_tx", move || {
        let _ = thread::pin_current(cpu);
        if let Some(mut s) = sender.take() {
            s.run();
        }
    });
    let Ok(tx_thread) = tx_thread else {
        c.ctrl.remove_io_queue(c.qid, &link.stream);
        return;
    };
    let mut q = IoQueue {
        link: &link,
        pool: &pool,
        ctrl: &c.ctrl,
        session,
        sqhd: 1,
        size: c.size,
    };
    q.run();
    // The connection is over: nothing more is answered.
    let tx = pool.owner();
    tx.closing.store(true, Relaxed);
    link.stream.shutdown();
    tx.bell.ring();
    end_waiting(&pool);
    if !tmf::wait_for(CLOSE_WAIT, &|f| pool.for_each_cmd(f)) {
        pr_warn!("rtarget_nvme: a closed queue still has commands in a backend\n");
    }
    tx.rx_done.store(true, Relaxed);
    tx.bell.ring();
    drop(tx_thread);
    c.ctrl.remove_io_queue(c.qid, &link.stream);
}

/// Ends the writes whose data will not come, through the core.
fn end_waiting(pool: &Pool) {
    for lot in [WAIT_DATA, SEND_R2T] {
        for index in 0..pool.size() {
            if let Some(cmd) = pool.unpark(index, lot) {
                cmd::complete(cmd, Err(Sense::internal_target_failure()));
            }
        }
    }
}

/// The transmit thread's state.
struct Sender {
    pool: Arc<Pool>,
    link: Arc<Link>,
    ctrl: Arc<Ctrl>,
    /// Early answers taken from the queue (its twin, the same capacity).
    batch: KVec<Cqe>,
    held: bool,
}

impl Sender {
    fn tx(&self) -> &Tx {
        self.pool.owner()
    }

    fn hold(&mut self) {
        if !self.held {
            self.link.stream.cork();
            self.held = true;
        }
    }

    fn push(&mut self) {
        if core::mem::take(&mut self.held) {
            self.link.stream.push();
        }
    }

    fn check(&self, r: Result) {
        if r.is_err() {
            self.tx().closing.store(true, Relaxed);
            self.link.stream.shutdown();
        }
    }

    fn run(&mut self) {
        loop {
            let mut batch = core::mem::take(&mut self.batch);
            core::mem::swap(&mut *self.tx().early.lock(), &mut batch);
            for cqe in batch.drain_all() {
                if !self.tx().closing.load(Relaxed) {
                    self.hold();
                    let r = self.link.send_cqe(&cqe);
                    self.check(r);
                }
            }
            self.batch = batch;
            let pool = self.pool.clone();
            pool.drain(SEND_R2T, |cmd| self.r2t(cmd));
            pool.drain(RESPOND, |cmd| self.answer(cmd));
            self.push();
            let tx = self.tx();
            let idle = self.pool.free_count() == self.pool.size() && tx.early.lock().is_empty();
            if tx.rx_done.load(Relaxed) && (idle || thread::should_stop()) {
                pool.drain(RESPOND, Pool::end);
                return;
            }
            self.tx().bell.wait(1000);
        }
    }

    /// Turns the READ FULL STATUS in `sgl` into the `len`-byte Reservation Report, in place.
    /// Registrants are named by host identifier: this controller's own, or the one an NVMe
    /// name carries. A rare command: it may allocate.
    fn report(&self, sgl: &Sgl, len: u32) -> Status {
        let full_len = (sgl.len().min(resv::FULL_STATUS_LEN)) as usize;
        let (Ok(mut full), Ok(mut out)) = (
            KVec::from_elem(0u8, full_len, GFP_KERNEL),
            KVec::from_elem(0u8, len as usize, GFP_KERNEL),
        ) else {
            return Status::INTERNAL;
        };
        sgl.copy_from(0, &mut full);
        let own = (self.ctrl.hostnqn.to_bytes(), self.ctrl.hostid);
        let hostid = |name: &[u8]| if name == own.0 { own.1 } else { resv::hostid_of_nqn(name) };
        resv::report(&full, hostid, &mut out);
        sgl.copy_to(0, &out);
        Status::SUCCESS
    }

    /// Asks the host for a write's data: parked for the receive thread first (the host
    /// answers the R2T at once), then the R2T goes.
    fn r2t(&mut self, mut cmd: CmdRef) {
        let Some(index) = Pool::index(&cmd) else {
            return Pool::end(cmd);
        };
        let Some(s) = Pool::private(&mut cmd) else {
            return Pool::end(cmd);
        };
        let (cid, len) = (s.cid, s.len);
        if self.tx().closing.load(Relaxed) {
            return cmd::complete(cmd, Err(Sense::internal_target_failure()));
        }
        if let Err(cmd) = Pool::park(cmd, WAIT_DATA) {
            return cmd::complete(cmd, Err(Sense::internal_target_failure()));
        }
        // The receive side may have swept the waiting writes between the check and the park.
        if self.tx().closing.load(Relaxed) {
            if let Some(cmd) = self.pool.unpark(index, WAIT_DATA) {
                cmd::complete(cmd, Err(Sense::internal_target_failure()));
            }
            return;
        }
        self.hold();
        let r = self.link.send_r2t(cid, index as u16, len);
        self.check(r);
    }

    /// Sends a command's answer and frees its slot.
    fn answer(&mut self, mut cmd: CmdRef) {
        let (status, sense, sgl) = (cmd.status(), cmd.sense(), *cmd.sgl());
        let Some(s) = Pool::private(&mut cmd) else {
            return Pool::end(cmd);
        };
        let mut st = match &sense {
            Some(se) => crate::status::from_scsi(status, se.key as u8, se.asc, se.ascq),
            None => crate::status::from_scsi(status, 0, 0, 0),
        };
        let (cid, sqhd, len, dir) = (s.cid, s.sqhd, s.len, s.dir);
        if matches!(s.convert, Convert::Report) && st == Status::SUCCESS {
            st = self.report(&sgl, len);
        }
        let big = if s.buf.as_ref().is_some_and(|b| b.sgl().len() > KEEP_BUFFER) {
            s.buf.take()
        } else {
            None
        };
        if self.tx().closing.load(Relaxed) {
            return Pool::end(cmd);
        }
        self.hold();
        let no_sqflow = self.tx().no_sqflow;
        if dir == DataDir::FromDevice && st == Status::SUCCESS && len > 0 {
            let r = self.link.send_data(cid, Data::Sgl(sgl, len), no_sqflow);
            if r.is_err() || no_sqflow {
                self.check(r);
                drop(big);
                return Pool::end(cmd);
            }
        }
        let r = self.link.send_cqe(&Cqe {
            result: 0,
            sqhd,
            sqid: self.tx().qid,
            cid,
            status: st,
        });
        self.check(r);
        // Freed after the answer is out: the pages may still be in the socket.
        drop(big);
        Pool::end(cmd);
    }
}

/// The receive side of an I/O queue.
struct IoQueue<'a> {
    link: &'a Arc<Link>,
    pool: &'a Arc<Pool>,
    ctrl: &'a Arc<Ctrl>,
    session: Arc<rtarget_core::session::Session>,
    /// The submission queue head as the next answer reports it.
    sqhd: u16,
    size: u32,
}

/// SCSI opcodes the NVM commands become.
mod scsi {
    pub(super) const UNMAP: u8 = 0x42;
    pub(super) const READ_16: u8 = 0x88;
    pub(super) const WRITE_16: u8 = 0x8a;
    pub(super) const VERIFY_16: u8 = 0x8f;
    pub(super) const SYNC_CACHE_16: u8 = 0x91;
    pub(super) const WRITE_SAME_16: u8 = 0x93;
}

/// A 10-byte CDB in the 16 bytes a command carries.
fn cdb16_of(cdb: &[u8; 10]) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[..10].copy_from_slice(cdb);
    c
}

/// A 16-byte CDB of `op` with `flags` in byte 1, an LBA and a block count.
fn cdb16(op: u8, flags: u8, lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = op;
    c[1] = flags;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

impl IoQueue<'_> {
    fn tx(&self) -> &Tx {
        self.pool.owner()
    }

    fn run(&mut self) {
        let mut r = Received::new();
        loop {
            match recv_header(&self.link.stream, Some(&self.link.neg), &mut r, None) {
                Ok(()) => {}
                Err(RecvError::Fatal(f, n)) => {
                    self.tx().closing.store(true, Relaxed);
                    return self.link.terminate(f, &r.h[..n]);
                }
                Err(_) => return,
            }
            if self.tx().closing.load(Relaxed) {
                return;
            }
            let ok = match r.f.header.ty {
                ty::CAPSULE_CMD => self.command(&r),
                ty::H2C_DATA => self.h2c_data(&r),
                // H2CTermReq: the host ends the connection.
                _ => return,
            };
            match ok {
                Ok(()) => {}
                Err(Some((f, n))) => {
                    self.tx().closing.store(true, Relaxed);
                    return self.link.terminate(f, &r.h[..n]);
                }
                Err(None) => return,
            }
        }
    }

    /// Answers a command without the core (the slot, if any, is already released).
    fn early(&self, cid: u16, sqhd: u16, status: Status) -> core::result::Result<(), Option<(Fatal, usize)>> {
        let tx = self.tx();
        let cqe = Cqe {
            result: 0,
            sqhd,
            sqid: tx.qid,
            cid,
            status,
        };
        // Room for one answer per queue entry: a host that overruns its queue is dropped.
        if tx.early.lock().push_within_capacity(cqe).is_err() {
            return Err(None);
        }
        tx.bell.ring();
        Ok(())
    }

    fn command(&mut self, r: &Received) -> core::result::Result<(), Option<(Fatal, usize)>> {
        let raw: [u8; SQE_LEN] = pdu::sqe(&core::array::from_fn(|i| r.h[i]));
        let sqe = Sqe::decode(&raw);
        // Traffic-based keep-alive: a read of a shared line, written once per check.
        if !self.ctrl.traffic.load(Relaxed) {
            self.ctrl.traffic.store(true, Relaxed);
        }
        let sqhd = self.sqhd;
        self.sqhd = ((u32::from(self.sqhd) + 1) % self.size) as u16;
        let stream = &self.link.stream;
        let limits = capsule::Limits {
            in_capsule: self.link.neg.inline_data,
            transfer: MAX_TRANSFER,
        };
        let fail = |q: &Self, st: Status| -> core::result::Result<(), Option<(Fatal, usize)>> {
            skip_data(stream, &r.f).map_err(|_| None)?;
            q.early(sqe.cid, sqhd, st)
        };
        let transfer = match capsule::transfer(&sqe, r.f.data, &limits) {
            Ok(t) => t,
            Err(st) => return fail(self, st),
        };
        let data_len = match transfer {
            Transfer::None => 0,
            Transfer::InCapsule(n) | Transfer::Remote(n) => n,
        };
        if sqe.opcode == capsule::FABRICS {
            return fail(self, Status::INVALID_OPCODE);
        }
        let Some(mapping) = self.session.lookup(u64::from(sqe.nsid)) else {
            return fail(self, Status::INVALID_NS);
        };
        if let Err(st) = self.ctrl.ana_check(sqe.nsid) {
            return fail(self, st);
        }
        let (cdb, cdb_len, dir, base, convert) = if resv::is_reservation(sqe.opcode) {
            // Reservations are the namespace's option (`resv_enable`), as on nvmet.
            if !self.ctrl.reservations(sqe.nsid) {
                return fail(self, Status::INVALID_OPCODE);
            }
            match resv::to_scsi(&sqe, data_len) {
                Ok(resv::Scsi::Out { cdb, key, sa_key }) => (
                    cdb16_of(&cdb),
                    10,
                    DataDir::ToDevice,
                    // The keys land at the end of the parameter list they become.
                    resv::PROUT_LEN as u32 - data_len,
                    Convert::Prout { key, sa_key },
                ),
                Ok(resv::Scsi::Report { cdb }) => (cdb16_of(&cdb), 10, DataDir::FromDevice, 0, Convert::Report),
                Err(st) => return fail(self, st),
            }
        } else {
            match self.nvm_cdb(&sqe, &mapping, data_len) {
                Ok(c) => c,
                Err(st) => return fail(self, st),
            }
        };
        // What the core sees: the parameter list, the whole READ FULL STATUS, or the data.
        let scsi_len = match convert {
            Convert::Prout { .. } => resv::PROUT_LEN as u32,
            Convert::Report => data_len.max(resv::FULL_STATUS_LEN),
            _ => base + data_len,
        };
        let Some(lun_ref) = LiveRef::try_new(&*mapping.lun) else {
            return fail(self, Status::INVALID_NS);
        };
        let Some(session_ref) = LiveRef::try_new(&*self.session) else {
            return fail(self, Status::ABORT_REQUESTED);
        };
        let lun_index = mapping.lun.index;
        let read_only = mapping.read_only;
        drop(mapping);
        let pool = self.pool.clone();
        let Some(mut slot) = pool.take() else {
            // More commands than queue entries: the host broke the queue's contract.
            return fail(self, Status(Status::INTERNAL.0));
        };
        let total = scsi_len;
        let s = slot.private();
        if total > 0 && s.buf.as_ref().is_none_or(|b| b.sgl().len() < total) {
            s.buf = None;
            let want = if total <= KEEP_BUFFER {
                total.next_power_of_two().max(4096)
            } else {
                total
            };
            match ScratchSgl::new(want) {
                Ok(b) => s.buf = Some(b),
                Err(_) => {
                    drop(slot);
                    return fail(self, Status(Status::INTERNAL.0 & !(1 << 14)));
                }
            }
        }
        let sgl = match &s.buf {
            Some(b) if total > 0 => b.sgl().prefix(total),
            _ => Sgl::EMPTY,
        };
        s.cid = sqe.cid;
        s.sqhd = sqhd;
        s.len = data_len;
        s.base = base;
        s.received = 0;
        s.dir = dir;
        s.convert = convert;
        let in_capsule = matches!(transfer, Transfer::InCapsule(_));
        if in_capsule {
            match recv_data_sgl(stream, &r.f, &sgl, base) {
                Ok(true) => {}
                // A data digest error ends the connection (nvmet's too).
                _ => return Err(None),
            }
            convert.data_in(&sgl, base, data_len);
        }
        let cmd = slot.start(CmdSetup {
            cdb: &cdb[..cdb_len],
            dir,
            sgl,
            prot_sgl: Sgl::EMPTY,
            pi_offload: false,
            data_ready: dir != DataDir::ToDevice || in_capsule,
            tag: u64::from(sqe.cid),
            session: session_ref,
            lun: Some(lun_ref),
            lun_index,
            read_only,
            fit_transfers: false,
            fabric: &OPS,
            origin: core::any::TypeId::of::<Slot>(),
        });
        cmd::submit(cmd);
        Ok(())
    }

    /// The SBC command of an NVM command: its CDB and length, direction, where the host's
    /// data starts in the buffer, and what it becomes.
    fn nvm_cdb(
        &self,
        sqe: &Sqe,
        mapping: &rtarget_core::acl::Mapping,
        data_len: u32,
    ) -> core::result::Result<([u8; 16], usize, DataDir, u32, Convert), Status> {
        let device = &mapping.lun.device;
        let (blocks, block_shift) = device.shape();
        let ns = nvm::Namespace {
            blocks,
            block_shift,
            read_only: mapping.read_only,
        };
        Ok(match nvm::decode(sqe, &ns, data_len)? {
            Nvm::Read { slba, nlb, fua } => (
                cdb16(scsi::READ_16, if fua { 0x08 } else { 0 }, slba, nlb),
                16,
                DataDir::FromDevice,
                0,
                Convert::None,
            ),
            Nvm::Write { slba, nlb, fua } => (
                cdb16(scsi::WRITE_16, if fua { 0x08 } else { 0 }, slba, nlb),
                16,
                DataDir::ToDevice,
                0,
                Convert::None,
            ),
            // BYTCHK 01b: compare the medium with the data.
            Nvm::Compare { slba, nlb } => (
                cdb16(scsi::VERIFY_16, 0x02, slba, nlb),
                16,
                DataDir::ToDevice,
                0,
                Convert::None,
            ),
            // NDOB: zeroes without a data buffer; UNMAP where the device deallocates.
            Nvm::WriteZeroes {
                slba,
                nlb,
                deallocate,
            } => {
                let unmap = deallocate && device.facts().is_some_and(|g| g.unmap && g.unmap_write_same);
                (
                    cdb16(scsi::WRITE_SAME_16, 0x01 | if unmap { 0x08 } else { 0 }, slba, nlb),
                    16,
                    DataDir::None,
                    0,
                    Convert::None,
                )
            }
            Nvm::Dsm {
                ranges,
                deallocate,
            } => {
                // Deallocation is advisory: a device that cannot only succeeds; one that takes
                // fewer descriptors or blocks per UNMAP is given what it takes.
                let limits = device
                    .facts()
                    .filter(|g| g.unmap && g.max_unmap_descs > 0 && g.max_unmap_blocks > 0);
                let Some(g) = limits.filter(|_| deallocate) else {
                    return Err(Status::SUCCESS);
                };
                let mut c = [0u8; 16];
                c[0] = scsi::UNMAP;
                c[7..9].copy_from_slice(&((8 + 16 * ranges) as u16).to_be_bytes());
                let limits = (g.max_unmap_descs, g.max_unmap_blocks);
                (c, 10, DataDir::ToDevice, 8, Convert::Unmap { ranges, limits })
            }
            Nvm::Flush => (cdb16(scsi::SYNC_CACHE_16, 0, 0, 0), 16, DataDir::None, 0, Convert::None),
        })
    }

    /// Data the host sends for an R2T.
    fn h2c_data(&mut self, r: &Received) -> core::result::Result<(), Option<(Fatal, usize)>> {
        let hl = usize::from(r.f.header.hlen);
        let hdr: [u8; hlen::SHORT] = core::array::from_fn(|i| r.h[i]);
        let d = pdu::h2c_data(&hdr, &r.f).map_err(|f| Some((f, hl)))?;
        let bad_tag = Some((
            Fatal {
                fes: pdu::Fes::InvalidHeaderField,
                fei: 10,
            },
            hl,
        ));
        let Some(mut cmd) = self.pool.unpark(u32::from(d.ttag), WAIT_DATA) else {
            return Err(bad_tag);
        };
        let sgl = *cmd.sgl();
        let Some(s) = Pool::private(&mut cmd) else {
            return Err(None);
        };
        if s.cid != d.cccid {
            let _ = Pool::park(cmd, WAIT_DATA);
            return Err(bad_tag);
        }
        if let Err(f) = pdu::h2c_in_r2t(&d, 0, s.len, s.received) {
            let _ = Pool::park(cmd, WAIT_DATA);
            return Err(Some((f, hl)));
        }
        let at = s.base + d.datao;
        match recv_data_sgl(&self.link.stream, &r.f, &sgl, at) {
            Ok(true) => {}
            _ => {
                cmd::complete(cmd, Err(Sense::internal_target_failure()));
                return Err(None);
            }
        }
        s.received += d.datal;
        if d.last {
            s.convert.data_in(&sgl, s.base, s.len);
            cmd::data_ready(cmd);
        } else if let Err(cmd) = Pool::park(cmd, WAIT_DATA) {
            cmd::complete(cmd, Err(Sense::internal_target_failure()));
        }
        Ok(())
    }
}

/// Turns the Dataset Management ranges at byte 8 of `sgl` into the UNMAP parameter list
/// they are, in place: each 16-byte range (attributes, block count, first block, little
/// endian) becomes a 16-byte block descriptor (first block, block count, big endian). The
/// list names at most `max_descs` of them, each cut to `max_blocks` (deallocation is
/// advisory: what is left out stays allocated).
fn unmap_list(sgl: &Sgl, ranges: u32, (max_descs, max_blocks): (u32, u32)) {
    let n = ranges.min(max_descs);
    let mut h = [0u8; 8];
    h[0..2].copy_from_slice(&((6 + 16 * n) as u16).to_be_bytes());
    h[2..4].copy_from_slice(&((16 * n) as u16).to_be_bytes());
    sgl.copy_to(0, &h);
    for i in 0..n as usize {
        let at = 8 + 16 * i;
        let mut r = [0u8; 16];
        sgl.copy_from(at, &mut r);
        let nlb = u32::from_le_bytes([r[4], r[5], r[6], r[7]]).min(max_blocks);
        let slba = u64::from_le_bytes(core::array::from_fn(|j| r[8 + j]));
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&slba.to_be_bytes());
        d[8..12].copy_from_slice(&nlb.to_be_bytes());
        sgl.copy_to(at, &d);
    }
}
