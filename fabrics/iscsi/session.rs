// SPDX-License-Identifier: GPL-2.0

//! The full feature phase of a normal session (RFC 7143, ErrorRecoveryLevel 0, one connection
//! per session): SCSI commands to the core and their answers.
//!
//! Each connection has two threads:
//! - the **receive** thread (the one that ran the login) reads every PDU. A SCSI Command takes
//!   a slot of the connection's [`Pool`] (pre-allocated, one per CmdSN the window allows),
//!   receives its immediate data straight into the slot's buffer and is submitted to the core
//!   from this thread. A WRITE whose data is still on the wire comes back parked
//!   ([`WAIT_DATA`]); the thread queues its R2Ts and takes it back for each Data-Out, into
//!   the same buffer, until `cmd::data_ready`. Task management runs here too.
//! - the **transmit** thread sends everything: the answers of completed commands (parked in
//!   [`RESPOND`] by the core's callbacks, from whatever context the backend completes in,
//!   and the thread woken by a [`Doorbell`]) and the control PDUs the receive thread queues
//!   (R2T, NOP-In, Reject, task management, Text and Logout responses). One sender owns
//!   StatSN and the socket's send side: nothing on the I/O path takes a lock shared with
//!   another connection, and nothing allocates once a slot's buffer has grown to its
//!   commands' size.
//!
//! A connection that ends for any reason (logout, error, reinstatement, `rmdir` of its portal)
//! stops answering: commands still waiting for data are ended, the nexus is closed (the core
//! waits, bounded, for those a backend holds) and the transmit thread releases whatever
//! completes from then on.

use crate::pdu::{self, Framing, Request, Residual, Response, Sn, BHS_LEN, RESERVED_TAG};
use crate::{digest, serial, xfer};
use kernel::prelude::*;
use kernel::sync::atomic::{ordering::Relaxed, Atomic};
use kernel::sync::{Arc, SpinLock};
use kernel::time::{Delta, Instant, Monotonic};
use rtarget_core::cmd::{self, CmdRef, DataDir, FabricOps};
use rtarget_core::proto::sense::{Sense, FIXED_SENSE_LEN};
use rtarget_core::rt::cmd_pool::{Answerer, CmdPool};
use rtarget_core::rt::cmd_ref::CmdSetup;
use rtarget_core::rt::crypto;
use rtarget_core::rt::io::{ScratchSgl, Sgl};
use rtarget_core::rt::live_ref::LiveRef;
use rtarget_core::rt::net::Stream;
use rtarget_core::rt::thread::{self, Doorbell, Thread};
use rtarget_core::session::Session;
use rtarget_core::tmf::{self, TmfFunction, TmfResponse};

/// Longest transfer one command may ask for (its ExpectedDataTransferLength).
pub(crate) const MAX_TRANSFER: u32 = 8 << 20;
/// A slot keeps a buffer up to this size for its next command; larger ones are freed when
/// their command ends.
const KEEP_BUFFER: u32 = 256 << 10;
/// Longest AHS and header digest (TotalAHSLength is one byte of 4-byte words).
const AHS_MAX: usize = 255 * 4 + 4;
/// Control PDUs waiting for the transmit thread, at most.
const CONTROL_MAX: usize = 64;
/// Data segment of a NOP-Out or Text Request, at most (the declared MaxRecvDataSegmentLength
/// may be up to 16 MiB; these segments are copied, not placed in a command's buffer).
const CONTROL_DATA_MAX: usize = 64 << 10;
/// How long a closing connection waits for the commands backends still hold.
const CLOSE_WAIT: Delta = Delta::from_secs(30);

/// Parking lots of the pool: WRITEs waiting for Data-Out, and answers waiting to be sent.
const WAIT_DATA: usize = 0;
const RESPOND: usize = 1;

/// Where the next connection's threads run ([`thread::online_cpu`]).
static NEXT_CPU: Atomic<u32> = Atomic::new(0);

/// SAM status TASK SET FULL.
const TASK_SET_FULL: u8 = 0x28;

/// The fabric's state of one command slot.
pub(crate) struct Slot {
    itt: u32,
    /// The LUN field as the initiator sent it.
    lun: u64,
    edtl: u32,
    dir: DataDir,
    buf: Option<ScratchSgl>,
}

pub(crate) type Pool = CmdPool<Arc<Tx>, Slot>;

/// What a connection's threads and the core's completions share.
#[pin_data]
pub(crate) struct Tx {
    #[pin]
    bell: Doorbell,
    /// The connection is gone: commands are released unanswered.
    closing: Atomic<bool>,
    /// The receive thread is done: the transmit thread ends once every slot is free.
    rx_done: Atomic<bool>,
    exp_cmdsn: Atomic<u32>,
    max_cmdsn: Atomic<u32>,
    #[pin]
    control: SpinLock<KVec<Control>>,
    /// Control PDUs queued by the receive thread, and sent (or dropped) by the transmit one.
    queued: Atomic<u64>,
    sent: Atomic<u64>,
    /// Bumped by the receive thread before and after each socket receive: odd while it waits
    /// for the initiator (the transmit thread's timers run only then).
    rx_waits: Atomic<u64>,
}

/// A PDU the receive thread asks the transmit thread to send.
struct Control {
    r: Response,
    data: KVec<u8>,
    /// It carries status: StatSN advances.
    advance: bool,
}

/// The core's callbacks for iSCSI commands.
struct IscsiOps;
static OPS: IscsiOps = IscsiOps;

impl FabricOps for IscsiOps {
    fn write_pending(&self, cmd: CmdRef) {
        // Synchronous from the receive thread's submission: it takes the command back for
        // each Data-Out.
        if let Err(cmd) = Pool::park(cmd, WAIT_DATA) {
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

/// What both threads of a connection know once the login is done.
#[derive(Clone, Copy)]
pub(crate) struct Link {
    pub(crate) header_digest: bool,
    pub(crate) data_digest: bool,
    pub(crate) limits: xfer::Limits,
}

impl Link {
    /// Sends one PDU: its BHS, data from `data` (a slice) or `sgl` (a range of a command's
    /// buffer), padding and digests.
    fn send(&self, stream: &Stream, bhs: &[u8; BHS_LEN], data: Data<'_>) -> Result {
        let len = data.len() as usize;
        let pad = &[0u8; 3][..pdu::pad4(len) - len];
        let more = len > 0;
        stream.send(bhs, more || self.header_digest)?;
        if self.header_digest {
            stream.send(&digest(&[bhs]), more)?;
        }
        if len == 0 {
            return Ok(());
        }
        let dd = self.data_digest;
        let crc = match data {
            Data::Bytes(b) => {
                stream.send(b, !pad.is_empty() || dd)?;
                crypto::crc32c(!0, b)
            }
            Data::Sgl(sgl, skip, n) => {
                stream.send_sgl(&sgl, skip, n, !pad.is_empty() || dd, false)?;
                if dd {
                    crypto::crc32c_sgl(!0, &sgl, skip, n)
                } else {
                    0
                }
            }
        };
        if !pad.is_empty() {
            stream.send(pad, dd)?;
        }
        if dd {
            stream.send(&(!crypto::crc32c(crc, pad)).to_le_bytes(), false)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Data<'a> {
    Bytes(&'a [u8]),
    Sgl(Sgl, u32, u32),
}

impl Data<'_> {
    fn len(&self) -> u32 {
        match self {
            Data::Bytes(b) => b.len() as u32,
            Data::Sgl(_, _, n) => *n,
        }
    }
}

/// The transmit thread's state.
struct Sender {
    pool: Arc<Pool>,
    stream: Arc<Stream>,
    link: Link,
    statsn: u32,
    /// Control PDUs taken from the queue (its twin, the same capacity).
    batch: KVec<Control>,
    timers: Timers,
    watch: Watch,
    /// The socket is corked: PDUs went out since the last push.
    held: bool,
}

/// A session's timers, in seconds (LIO's node ACL attributes; `nopin` 0 sends no pings).
#[derive(Clone, Copy)]
pub(crate) struct Timers {
    pub(crate) dataout: u32,
    pub(crate) nopin: u32,
    pub(crate) nopin_response: u32,
}

/// What the transmit thread last saw of the receive side.
struct Watch {
    waits: u64,
    /// Since when the initiator has sent nothing the receive thread waits for.
    quiet: Instant<Monotonic>,
    /// The NOP-In ping sent since, unanswered.
    pinged: Option<Instant<Monotonic>>,
}

/// Target Transfer Tag of the NOP-In pings (any tag but the reserved one).
const PING_TTT: u32 = 1;

impl Sender {
    fn tx(&self) -> &Tx {
        self.pool.owner()
    }

    /// The sequence numbers to send now. MaxCmdSN opens the window by the slots free, and
    /// never goes back.
    fn sn(&self) -> Sn {
        let tx = self.tx();
        let exp = tx.exp_cmdsn.load(Relaxed);
        let free = self.pool.free_count();
        let max = tx.max_cmdsn.load(Relaxed);
        let offered = exp.wrapping_add(free).wrapping_sub(1);
        let max = if serial::before(max, offered) {
            tx.max_cmdsn.store(offered, Relaxed);
            offered
        } else {
            max
        };
        Sn {
            statsn: self.statsn,
            exp_cmdsn: exp,
            max_cmdsn: max,
        }
    }

    fn send(&mut self, r: &Response, data: Data<'_>, advance: bool) -> Result {
        let mut bhs = [0u8; BHS_LEN];
        pdu::encode(r, self.sn(), data.len(), &mut bhs);
        if advance {
            self.statsn = self.statsn.wrapping_add(1);
        }
        if self.tx().closing.load(Relaxed) {
            return Err(ECONNRESET);
        }
        // The socket is corked from a batch's first PDU to its end: the batch leaves in as
        // few segments as TCP can make of it (one wakeup of the initiator's receive, not
        // one per PDU), each PDU's end still marked PSH.
        if !self.held {
            self.stream.cork();
            self.held = true;
        }
        self.link.send(&self.stream, &bhs, data)
    }

    /// Sends what the batch held back.
    fn push(&mut self) {
        if core::mem::take(&mut self.held) {
            self.stream.push();
        }
    }

    fn run(&mut self) {
        loop {
            let mut batch = core::mem::take(&mut self.batch);
            core::mem::swap(&mut *self.tx().control.lock(), &mut batch);
            let n = batch.len() as u64;
            for c in batch.drain_all() {
                let r = self.send(&c.r, Data::Bytes(&c.data), c.advance);
                self.check(r);
            }
            self.batch = batch;
            if n > 0 {
                // Counted once pushed: the receive thread may shut the socket down after a
                // Logout Response (its FIN follows the data queued before it).
                self.push();
                self.tx().sent.fetch_add(n, Relaxed);
            }
            let pool = self.pool.clone();
            pool.drain(RESPOND, |cmd| self.answer(cmd));
            self.push();
            let tx = self.tx();
            let idle = self.pool.free_count() == self.pool.size() && tx.control.lock().is_empty();
            if tx.rx_done.load(Relaxed) && (idle || thread::should_stop()) {
                // Whatever completes from now on is released where it completes (`closing`).
                pool.drain(RESPOND, Pool::end);
                return;
            }
            self.watch();
            self.push();
            self.tx().bell.wait(1000);
        }
    }

    /// The timers, checked about once a second, run while the receive thread waits for the
    /// initiator: after `nopin` quiet seconds a NOP-In ping; the connection ends when the
    /// ping goes `nopin_response` seconds unanswered, or when a WRITE's Data-Out is `dataout`
    /// seconds late (ErrorRecoveryLevel 0 cannot ask for it again; LIO ends it too).
    fn watch(&mut self) {
        let waits = self.tx().rx_waits.load(Relaxed);
        if waits != self.watch.waits || waits % 2 == 0 {
            self.watch = Watch {
                waits,
                quiet: Instant::now(),
                pinged: None,
            };
            return;
        }
        let secs = |s: u32| Delta::from_secs(i64::from(s));
        let quiet = self.watch.quiet.elapsed();
        let late = self.pool.any_parked(WAIT_DATA) && quiet >= secs(self.timers.dataout);
        let unanswered = self
            .watch
            .pinged
            .is_some_and(|p| p.elapsed() >= secs(self.timers.nopin_response));
        if late || unanswered {
            pr_warn!(
                "rtarget_iscsi: {} for {} s: connection closed\n",
                if late {
                    "no Data-Out"
                } else {
                    "no answer to NOP-In"
                },
                quiet.as_millis() / 1000
            );
            return self.check(Err(ETIMEDOUT));
        }
        if self.timers.nopin > 0 && self.watch.pinged.is_none() && quiet >= secs(self.timers.nopin)
        {
            let ping = Response::NopIn {
                lun: 0,
                itt: RESERVED_TAG,
                ttt: PING_TTT,
            };
            let r = self.send(&ping, Data::Bytes(&[]), false);
            self.check(r);
            self.watch.pinged = Some(Instant::now());
        }
    }

    /// A failed send ends the connection: the receive thread is woken by the shutdown.
    fn check(&self, r: Result) {
        if r.is_err() {
            self.tx().closing.store(true, Relaxed);
            self.stream.shutdown();
        }
    }

    /// Sends a command's answer (Data-In with the status on the last PDU for a good READ, a
    /// SCSI Response otherwise) and frees its slot.
    fn answer(&mut self, mut cmd: CmdRef) {
        let (status, sense, sgl) = (cmd.status(), cmd.sense(), *cmd.sgl());
        let residual = match (cmd.overflow(), cmd.resid()) {
            (true, n) => Residual::Overflow(n),
            (false, 0) => Residual::None,
            (false, n) => Residual::Underflow(n),
        };
        let Some(s) = Pool::private(&mut cmd) else {
            return Pool::end(cmd);
        };
        let (itt, lun, edtl, dir) = (s.itt, s.lun, s.edtl, s.dir);
        if s.buf.as_ref().is_some_and(|b| b.sgl().len() > KEEP_BUFFER) {
            // Freed after the answer is out: the pages may still be in the socket.
            let big = s.buf.take();
            self.respond(itt, lun, edtl, dir, status, sense, residual, sgl);
            drop(big);
        } else {
            self.respond(itt, lun, edtl, dir, status, sense, residual, sgl);
        }
        Pool::end(cmd);
    }

    #[allow(clippy::too_many_arguments)]
    fn respond(
        &mut self,
        itt: u32,
        lun: u64,
        edtl: u32,
        dir: DataDir,
        status: u8,
        sense: Option<Sense>,
        residual: Residual,
        sgl: Sgl,
    ) {
        // An overflow fills the whole buffer.
        let len = match residual {
            Residual::Underflow(n) => edtl.saturating_sub(n),
            _ => edtl,
        }
        .min(sgl.len());
        if dir == DataDir::FromDevice && status == cmd::GOOD && len > 0 {
            for d in xfer::data_in(len, &self.link.limits) {
                let r = Response::DataIn {
                    final_: d.final_ || d.last,
                    status: d.last.then_some(status),
                    lun,
                    itt,
                    datasn: d.datasn,
                    offset: d.offset,
                    residual: if d.last { residual } else { Residual::None },
                };
                let res = self.send(&r, Data::Sgl(sgl, d.offset, d.len), d.last);
                if res.is_err() {
                    return self.check(res);
                }
            }
            return;
        }
        let mut sense_buf = [0u8; SENSE_SEGMENT];
        let n = match sense {
            Some(s) if status == cmd::CHECK_CONDITION => sense_segment(&s, &mut sense_buf),
            _ => 0,
        };
        let r = Response::Scsi {
            itt,
            response: 0,
            status,
            exp_datasn: 0,
            residual,
        };
        let res = self.send(&r, Data::Bytes(&sense_buf[..n]), true);
        self.check(res);
    }
}

/// A WRITE whose data is still coming: the receive thread's own record.
struct Incoming {
    itt: u32,
    lun: u64,
    index: u32,
    write: xfer::Write,
    /// The core answered before the data came (a bad CDB, a unit attention): the data is
    /// received and dropped.
    dropped: bool,
}

/// The receive side of a normal session's connection.
pub(crate) struct Conn<'a> {
    stream: &'a Arc<Stream>,
    link: Link,
    session: Arc<Session>,
    pool: Arc<Pool>,
    exp_cmdsn: u32,
    incoming: KVec<Incoming>,
    next_ttt: u32,
    seg: KVec<u8>,
    /// The last PDU's AHS and header digest (kept here: not zeroed for every PDU).
    ahs: [u8; AHS_MAX],
}

/// What the login hands over.
pub(crate) struct Start<'a> {
    pub(crate) stream: &'a Arc<Stream>,
    pub(crate) link: Link,
    pub(crate) session: Arc<Session>,
    pub(crate) statsn: u32,
    pub(crate) exp_cmdsn: u32,
    pub(crate) depth: u32,
    pub(crate) timers: Timers,
}

/// The pool of a new connection: `depth` slots, the window the login announced.
pub(crate) fn new_pool(depth: u32, exp: u32) -> Result<Arc<Pool>> {
    let max = exp.wrapping_add(depth).wrapping_sub(1);
    let tx = Arc::pin_init(
        try_pin_init!(Tx {
            bell <- Doorbell::new(),
            closing: Atomic::new(false),
            rx_done: Atomic::new(false),
            exp_cmdsn: Atomic::new(exp),
            max_cmdsn: Atomic::new(max),
            control <- kernel::new_spinlock!(KVec::with_capacity(CONTROL_MAX, GFP_KERNEL)?),
            queued: Atomic::new(0),
            rx_waits: Atomic::new(0),
            sent: Atomic::new(0),
        }? Error),
        GFP_KERNEL,
    )?;
    Pool::new(tx, depth, |_| {
        Ok(Slot {
            itt: 0,
            lun: 0,
            edtl: 0,
            dir: DataDir::None,
            buf: None,
        })
    })
}

/// Runs a normal session's connection until it ends, then tears it down.
pub(crate) fn serve(s: Start<'_>, pool: Arc<Pool>) -> Result {
    // Everything is allocated before the transmit thread exists: once it runs, only
    // `rx_done` ends it.
    let buffers = KVec::with_capacity(CONTROL_MAX, GFP_KERNEL)
        .and_then(|b| Ok((b, KVec::with_capacity(s.depth as usize, GFP_KERNEL)?)));
    let (batch, incoming) = match buffers {
        Ok(b) => b,
        Err(e) => {
            s.session.close(CLOSE_WAIT);
            return Err(e.into());
        }
    };
    let mut sender = Some(Sender {
        pool: pool.clone(),
        stream: s.stream.clone(),
        link: s.link,
        statsn: s.statsn,
        batch,
        timers: s.timers,
        watch: Watch {
            waits: 0,
            quiet: Instant::now(),
            pinged: None,
        },
        held: false,
    });
    // Both threads of a connection on one CPU, the connections spread round the CPUs (as
    // LIO): each command's hand-over from the receive thread to the transmit thread stays on
    // that CPU and its caches.
    let cpu = thread::online_cpu(NEXT_CPU.fetch_add(1, Relaxed));
    // Pinning is an optimisation: a failure leaves the threads where the scheduler puts them.
    let _ = thread::pin_current(cpu);
    let tx_thread = Thread::spawn(c"rt_iscsi_tx", move || {
        let _ = thread::pin_current(cpu);
        if let Some(mut s) = sender.take() {
            s.run();
        }
    });
    let tx_thread = match tx_thread {
        Ok(t) => t,
        Err(e) => {
            s.session.close(CLOSE_WAIT);
            return Err(e);
        }
    };
    let mut conn = Conn {
        stream: s.stream,
        link: s.link,
        session: s.session,
        pool,
        exp_cmdsn: s.exp_cmdsn,
        incoming,
        next_ttt: 1,
        seg: KVec::new(),
        ahs: [0; AHS_MAX],
    };
    let r = conn.run();
    // What was queued (a Logout response, the Reject before a drop) goes out first.
    conn.flush();
    conn.teardown();
    // Every slot is free (or the bound passed): the transmit thread has ended or ends now.
    conn.tx().rx_done.store(true, Relaxed);
    conn.tx().bell.ring();
    drop(tx_thread);
    r
}

/// Runs a receive from the socket, marked as a wait for the initiator ([`Tx::rx_waits`]).
fn waiting<T>(stream: &Stream, tx: &Tx, f: impl FnOnce(&Stream) -> T) -> T {
    let w = &tx.rx_waits;
    w.store(w.load(Relaxed).wrapping_add(1), Relaxed);
    let r = f(stream);
    w.store(w.load(Relaxed).wrapping_add(1), Relaxed);
    r
}

/// Fills `buf` from the socket; a peer that closes first gives `ECONNRESET`.
fn recv_from(stream: &Stream, tx: &Tx, buf: &mut [u8]) -> Result {
    match waiting(stream, tx, |s| s.recv_exact(buf))? {
        true => Ok(()),
        false => Err(ECONNRESET),
    }
}

/// How a PDU's data segment is taken.
enum Into<'a> {
    Vec(&'a mut KVec<u8>),
    Sgl(Sgl, u32),
    Drop,
}

impl Conn<'_> {
    fn tx(&self) -> &Tx {
        self.pool.owner()
    }

    /// Queues a PDU for the transmit thread; waits while the queue is full.
    fn queue(&self, r: Response, data: &[u8], advance: bool) -> Result {
        let mut d = KVec::new();
        d.extend_from_slice(data, GFP_KERNEL)?;
        let mut c = Control {
            r,
            data: d,
            advance,
        };
        loop {
            match self.tx().control.lock().push_within_capacity(c) {
                Ok(()) => {
                    self.tx().queued.fetch_add(1, Relaxed);
                    break;
                }
                Err(back) => c = back.0,
            }
            if self.tx().closing.load(Relaxed) || thread::should_stop() {
                return Err(ECONNRESET);
            }
            self.tx().bell.ring();
            kernel::time::delay::fsleep(Delta::from_millis(1));
        }
        self.tx().bell.ring();
        Ok(())
    }

    /// Waits (bounded) until the transmit thread has sent every queued PDU.
    fn flush(&self) {
        let tx = self.tx();
        for _ in 0..5000 {
            if tx.sent.load(Relaxed) >= tx.queued.load(Relaxed) || tx.closing.load(Relaxed) {
                return;
            }
            kernel::time::delay::fsleep(Delta::from_millis(1));
        }
    }

    fn reject(&self, reason: pdu::RejectReason, bhs: &[u8; BHS_LEN]) -> Result {
        self.queue(Response::Reject { reason, datasn: 0 }, bhs, true)
    }

    fn recv(&self, buf: &mut [u8]) -> Result {
        recv_from(self.stream, self.tx(), buf)
    }

    fn waiting<T>(&self, f: impl FnOnce(&Stream) -> T) -> T {
        waiting(self.stream, self.tx(), f)
    }

    /// Receives the AHS (into `self.ahs`) and header digest after `bhs` (a wrong digest ends
    /// the connection).
    fn recv_header(&mut self, bhs: &[u8; BHS_LEN]) -> Result<Framing> {
        let f = Framing::of(bhs, self.link.header_digest, self.link.data_digest);
        let n = f.data_at();
        if n > 0 {
            recv_from(self.stream, self.pool.owner(), &mut self.ahs[..n])?;
        }
        if f.header_digest && self.ahs[f.ahs..n] != digest(&[bhs, &self.ahs[..f.ahs]]) {
            return Err(EBADMSG);
        }
        Ok(f)
    }

    /// Receives the data segment, its padding and digest. Returns whether the digest holds.
    fn recv_data(&self, f: &Framing, into: Into<'_>) -> Result<bool> {
        if f.data == 0 {
            return Ok(true);
        }
        let padded = pdu::pad4(f.data);
        let mut pad = [0u8; 3];
        let crc = match into {
            Into::Vec(v) => {
                v.clear();
                v.resize(padded, 0, GFP_KERNEL)?;
                self.recv(v)?;
                let crc = crypto::crc32c(!0, v);
                v.truncate(f.data);
                crc
            }
            Into::Sgl(sgl, at) => {
                self.waiting(|s| s.recv_sgl(&sgl, at, f.data as u32))?;
                self.recv(&mut pad[..padded - f.data])?;
                let crc = if f.data_digest {
                    crypto::crc32c_sgl(!0, &sgl, at, f.data as u32)
                } else {
                    0
                };
                crypto::crc32c(crc, &pad[..padded - f.data])
            }
            Into::Drop => {
                let mut left = padded;
                let mut chunk = [0u8; 256];
                let mut crc = !0;
                while left > 0 {
                    let n = left.min(chunk.len());
                    self.recv(&mut chunk[..n])?;
                    crc = crypto::crc32c(crc, &chunk[..n]);
                    left -= n;
                }
                crc
            }
        };
        if !f.data_digest {
            return Ok(true);
        }
        let mut dd = [0u8; 4];
        self.recv(&mut dd)?;
        Ok(dd == (!crc).to_le_bytes())
    }

    /// Receives a data segment into `seg`; a wrong data digest gets a Reject and `false`.
    fn recv_segment(&mut self, f: &Framing, bhs: &[u8; BHS_LEN]) -> Result<bool> {
        let mut seg = core::mem::take(&mut self.seg);
        let good = self.recv_data(f, Into::Vec(&mut seg));
        self.seg = seg;
        if !good? {
            self.reject(pdu::RejectReason::DataDigest, bhs)?;
            return Ok(false);
        }
        Ok(true)
    }

    fn run(&mut self) -> Result {
        loop {
            let mut bhs = [0u8; BHS_LEN];
            self.recv(&mut bhs)?;
            let f = self.recv_header(&bhs)?;
            if f.data > self.link.limits.max_recv_segment as usize {
                // Beyond what we declared: the PDU cannot be framed safely.
                self.reject(pdu::RejectReason::ProtocolError, &bhs)?;
                return Err(EPROTO);
            }
            let p = match pdu::parse(&bhs) {
                Ok(p) => p,
                Err(refused) => {
                    self.recv_data(&f, Into::Drop)?;
                    self.reject(refused.reason, &bhs)?;
                    continue;
                }
            };
            match p.request {
                Request::Command(c) => {
                    let mut cdb = [0u8; cmd::MAX_CDB];
                    let n = pdu::full_cdb(&c.cdb, &self.ahs[..f.ahs], &mut cdb);
                    self.command(&p, &c, &f, &bhs, n.map(|n| &cdb[..n]))?
                }
                Request::DataOut(d) => self.data_out(&p, &d, &f, &bhs)?,
                Request::Nop(_) | Request::Text(_) if f.data > self.control_data_max() => {
                    // Ping data or text longer than the initiator takes back (LIO: a protocol
                    // error) or than a control buffer holds.
                    self.recv_data(&f, Into::Drop)?;
                    self.reject(pdu::RejectReason::ProtocolError, &bhs)?;
                }
                Request::Nop(n) => {
                    if !self.recv_segment(&f, &bhs)? {
                        continue;
                    }
                    if p.itt != RESERVED_TAG {
                        if !p.immediate && !self.in_order(n.cmdsn) {
                            continue;
                        }
                        let r = Response::NopIn {
                            lun: n.lun,
                            itt: p.itt,
                            ttt: RESERVED_TAG,
                        };
                        let n = self
                            .seg
                            .len()
                            .min(self.link.limits.max_xmit_segment as usize);
                        self.queue(r, &self.seg[..n], true)?;
                    }
                }
                Request::TaskMgmt(t) => {
                    self.recv_data(&f, Into::Drop)?;
                    if !p.immediate && !self.in_order(t.cmdsn) {
                        continue;
                    }
                    self.task_mgmt(p.itt, &t)?;
                }
                Request::Text(t) => {
                    if !self.recv_segment(&f, &bhs)? {
                        continue;
                    }
                    if !p.immediate && !self.in_order(t.cmdsn) {
                        continue;
                    }
                    // No key is negotiable in the full feature phase here: an empty answer.
                    let r = Response::Text {
                        final_: true,
                        continue_: false,
                        lun: 0,
                        itt: p.itt,
                        ttt: RESERVED_TAG,
                    };
                    self.queue(r, &[], true)?;
                }
                Request::Logout(l) => {
                    self.recv_data(&f, Into::Drop)?;
                    if !p.immediate {
                        self.in_order(l.cmdsn);
                    }
                    // Answered once every command is done (RFC 7143 11.14: the target
                    // completes the commands of a closing session first).
                    self.end_incoming();
                    self.drain_commands();
                    let r = Response::Logout {
                        itt: p.itt,
                        response: 0,
                        time2wait: 0,
                        time2retain: 0,
                    };
                    self.queue(r, &[], true)?;
                    return Ok(());
                }
                Request::Login(_) | Request::Snack(_) => {
                    self.recv_data(&f, Into::Drop)?;
                    // No login in the full feature phase; no SNACK at ErrorRecoveryLevel 0.
                    let reason = if matches!(p.request, Request::Snack(_)) {
                        pdu::RejectReason::SnackReject
                    } else {
                        pdu::RejectReason::ProtocolError
                    };
                    self.reject(reason, &bhs)?;
                }
            }
        }
    }

    /// The longest data segment a NOP-Out or Text Request may carry: what the initiator
    /// receives, and at most [`CONTROL_DATA_MAX`] (the segment is held in memory).
    fn control_data_max(&self) -> usize {
        (self.link.limits.max_xmit_segment as usize).min(CONTROL_DATA_MAX)
    }

    /// Checks a non-immediate request's CmdSN (one connection: they arrive in order).
    /// Advances ExpCmdSN and returns true for the expected one; anything else is a duplicate
    /// or outside the window and is ignored (RFC 7143 4.2.2.1).
    fn in_order(&mut self, cmdsn: u32) -> bool {
        if cmdsn != self.exp_cmdsn {
            return false;
        }
        self.exp_cmdsn = self.exp_cmdsn.wrapping_add(1);
        self.tx().exp_cmdsn.store(self.exp_cmdsn, Relaxed);
        true
    }

    /// A SCSI Command (with its immediate data); `cdb` is its whole CDB (`None`: its AHS is
    /// malformed).
    fn command(
        &mut self,
        p: &pdu::Pdu,
        c: &pdu::Command,
        f: &Framing,
        bhs: &[u8; BHS_LEN],
        cdb: Option<&[u8]>,
    ) -> Result {
        let Some(cdb) = cdb else {
            // A malformed AHS, or a CDB longer than the core takes.
            self.recv_data(f, Into::Drop)?;
            return self.reject(pdu::RejectReason::ProtocolError, bhs);
        };
        let dir = match (c.read, c.write) {
            (false, false) => DataDir::None,
            (true, false) => DataDir::FromDevice,
            (false, true) => DataDir::ToDevice,
            // Bidirectional commands are not offered: answered below.
            (true, true) => DataDir::None,
        };
        let edtl = if dir == DataDir::None { 0 } else { c.edtl };
        let imm = f.data as u32;
        let write = match dir {
            DataDir::ToDevice => xfer::Write::new(edtl, imm, c.final_, self.link.limits).map(Some),
            _ if imm > 0 && !(c.read && c.write) => Err(xfer::XferError::Immediate),
            _ => Ok(None),
        };
        // A rejected command's CmdSN is not taken (RFC 7143 11.17.1): checked first.
        let Ok(write) = write else {
            self.recv_data(f, Into::Drop)?;
            return self.reject(pdu::RejectReason::ProtocolError, bhs);
        };
        if !p.immediate {
            let max = self.tx().max_cmdsn.load(Relaxed);
            if !serial::at_or_after(max, c.cmdsn) || !self.in_order(c.cmdsn) {
                self.recv_data(f, Into::Drop)?;
                return Ok(());
            }
        }
        // An ITT names one task at a time: a record left by an earlier one goes.
        self.incoming.retain(|x| x.itt != p.itt);
        if c.read && c.write {
            self.recv_data(f, Into::Drop)?;
            return self.answer_now(p.itt, c.lun, Err(Sense::invalid_cdb_field(0, None)));
        }
        if edtl > MAX_TRANSFER {
            return self.refuse(
                p.itt,
                c.lun,
                f,
                write,
                Err(Sense::invalid_cdb_field(0, None)),
            );
        }
        // A number the nexus does not see goes to the core without a LUN: it answers INQUIRY
        // and REPORT LUNS there (initiators scan from LUN 0).
        let index = lun_index(c.lun);
        let mapping = self.session.lookup(index);
        let read_only = mapping.as_ref().is_some_and(|m| m.read_only);
        let lun_ref = match &mapping {
            Some(m) => match LiveRef::try_new(&*m.lun) {
                Some(r) => Some(r),
                None => {
                    return self.refuse(p.itt, c.lun, f, write, Err(Sense::lun_not_supported()))
                }
            },
            None => None,
        };
        let Some(session_ref) = LiveRef::try_new(&*self.session) else {
            return self.refuse(p.itt, c.lun, f, write, Err(Sense::lun_not_supported()));
        };
        drop(mapping);
        let pool = self.pool.clone();
        let Some(mut slot) = pool.take() else {
            return self.refuse(p.itt, c.lun, f, write, Ok(TASK_SET_FULL));
        };
        let index_in_pool = slot.index();
        // The slot was free: a record of its earlier command (ended by task management from
        // another thread) is stale, and its Data-Out must not reach this one.
        self.incoming.retain(|x| x.index != index_in_pool);
        let s = slot.private();
        if edtl > 0 && s.buf.as_ref().is_none_or(|b| b.sgl().len() < edtl) {
            s.buf = None;
            let want = if edtl <= KEEP_BUFFER {
                edtl.next_power_of_two().max(4096)
            } else {
                edtl
            };
            match ScratchSgl::new(want) {
                Ok(b) => s.buf = Some(b),
                Err(_) => {
                    drop(slot);
                    return self.refuse(p.itt, c.lun, f, write, Ok(TASK_SET_FULL));
                }
            }
        }
        let sgl = match &s.buf {
            Some(b) if edtl > 0 => b.sgl().prefix(edtl),
            _ => Sgl::EMPTY,
        };
        s.itt = p.itt;
        s.lun = c.lun;
        s.edtl = edtl;
        s.dir = dir;
        if imm > 0 && !self.recv_data(f, Into::Sgl(sgl, 0))? {
            // The immediate data is lost: at ErrorRecoveryLevel 0 the command cannot go on.
            drop(slot);
            self.reject(pdu::RejectReason::DataDigest, bhs)?;
            return Err(EBADMSG);
        }
        // A reused buffer holds an earlier command's data: whatever an emulated response
        // leaves unwritten must not reach the initiator. READs fill what they send.
        if dir == DataDir::FromDevice && !matches!(cdb[0], 0x08 | 0x28 | 0xa8 | 0x88) {
            sgl.zero(0, edtl as usize);
        }
        let ready = write.is_none_or(|w| w.complete());
        let cmd = slot.start(CmdSetup {
            cdb,
            dir,
            sgl,
            prot_sgl: Sgl::EMPTY,
            pi_offload: false,
            data_ready: ready,
            tag: u64::from(p.itt),
            session: session_ref,
            lun: lun_ref,
            lun_index: index,
            read_only,
            fit_transfers: true,
            fabric: &OPS,
            origin: core::any::TypeId::of::<Slot>(),
        });
        cmd::submit(cmd);
        if let Some(w) = write.filter(|w| !w.complete()) {
            let inc = Incoming {
                itt: p.itt,
                lun: c.lun,
                index: index_in_pool,
                write: w,
                dropped: !self.pool.is_parked(index_in_pool, WAIT_DATA),
            };
            if let Some(i) = self.record(inc) {
                self.send_r2ts(i)?;
            } else if let Some(cmd) = self.pool.unpark(index_in_pool, WAIT_DATA) {
                // No room to follow its data (only if the initiator leaves thousands of
                // unsolicited transfers unfinished): the command fails.
                cmd::complete(cmd, Err(Sense::internal_target_failure()));
            }
        }
        Ok(())
    }

    /// Records a write whose data is still to come; returns its place. A write the core
    /// already answered is recorded only while unsolicited data may still come for it, and
    /// such records make room for a live one.
    fn record(&mut self, inc: Incoming) -> Option<usize> {
        if inc.dropped && !inc.write.unsolicited_pending() {
            return None;
        }
        if self.incoming.len() == self.incoming.capacity() {
            let old = self.incoming.iter().position(|x| x.dropped)?;
            self.incoming.remove(old).ok();
        }
        self.incoming.push_within_capacity(inc).ok()?;
        Some(self.incoming.len() - 1)
    }

    /// Answers a command that never reaches the core; its data, immediate or to come, is
    /// received and dropped.
    fn refuse(
        &mut self,
        itt: u32,
        lun: u64,
        f: &Framing,
        write: Option<xfer::Write>,
        answer: core::result::Result<u8, Sense>,
    ) -> Result {
        self.recv_data(f, Into::Drop)?;
        if let Some(w) = write.filter(|w| !w.complete()) {
            // Unsolicited data may still come for it.
            self.record(Incoming {
                itt,
                lun,
                index: u32::MAX,
                write: w,
                dropped: true,
            });
        }
        self.answer_now(itt, lun, answer)
    }

    /// A SCSI Response without a slot: a status, or CHECK CONDITION with `sense`.
    fn answer_now(&self, itt: u32, _lun: u64, answer: core::result::Result<u8, Sense>) -> Result {
        let mut buf = [0u8; SENSE_SEGMENT];
        let (status, n) = match answer {
            Ok(status) => (status, 0),
            Err(s) => (cmd::CHECK_CONDITION, sense_segment(&s, &mut buf)),
        };
        let r = Response::Scsi {
            itt,
            response: 0,
            status,
            exp_datasn: 0,
            residual: Residual::None,
        };
        self.queue(r, &buf[..n], true)
    }

    /// Queues the R2Ts the window allows for `incoming[i]`.
    fn send_r2ts(&mut self, i: usize) -> Result {
        loop {
            let ttt = self.next_ttt;
            let inc = &mut self.incoming[i];
            if inc.dropped {
                return Ok(());
            }
            let Some(r2t) = inc.write.next_r2t(ttt) else {
                return Ok(());
            };
            self.next_ttt = match self.next_ttt.wrapping_add(1) {
                RESERVED_TAG | 0 => 1,
                t => t,
            };
            let (itt, lun) = (inc.itt, inc.lun);
            let r = Response::R2t {
                lun,
                itt,
                ttt: r2t.ttt,
                r2tsn: r2t.r2tsn,
                offset: r2t.offset,
                length: r2t.len,
            };
            self.queue(r, &[], false)?;
        }
    }

    /// A Data-Out: checked against its command's transfer, then received into its buffer.
    fn data_out(
        &mut self,
        p: &pdu::Pdu,
        d: &pdu::DataOut,
        f: &Framing,
        bhs: &[u8; BHS_LEN],
    ) -> Result {
        let Some(i) = self.incoming.iter().position(|x| x.itt == p.itt) else {
            // Data for a command that is gone (aborted, or answered and done): dropped.
            self.recv_data(f, Into::Drop)?;
            return Ok(());
        };
        let len = f.data as u32;
        if self.incoming[i].write.data_out(d, len).is_err() {
            // At ErrorRecoveryLevel 0 a transfer out of step ends the connection.
            self.recv_data(f, Into::Drop)?;
            self.reject(pdu::RejectReason::ProtocolError, bhs)?;
            return Err(EPROTO);
        }
        let inc = &self.incoming[i];
        let (index, complete, dropped) = (inc.index, inc.write.complete(), inc.dropped);
        let cmd = if dropped {
            None
        } else {
            self.pool.unpark(index, WAIT_DATA)
        };
        let Some(cmd) = cmd else {
            self.recv_data(f, Into::Drop)?;
            if complete || !self.incoming[i].write.unsolicited_pending() {
                self.incoming.remove(i).ok();
            }
            return Ok(());
        };
        let sgl = *cmd.sgl();
        let good = match self.recv_data(f, Into::Sgl(sgl, d.offset)) {
            Ok(g) => g,
            Err(e) => {
                cmd::complete(cmd, Err(Sense::internal_target_failure()));
                return Err(e);
            }
        };
        if !good {
            cmd::complete(cmd, Err(Sense::internal_target_failure()));
            self.incoming.remove(i).ok();
            self.reject(pdu::RejectReason::DataDigest, bhs)?;
            return Err(EBADMSG);
        }
        if complete {
            self.incoming.remove(i).ok();
            cmd::data_ready(cmd);
            return Ok(());
        }
        if let Err(cmd) = Pool::park(cmd, WAIT_DATA) {
            cmd::complete(cmd, Err(Sense::internal_target_failure()));
        }
        self.send_r2ts(i)
    }

    fn task_mgmt(&mut self, itt: u32, t: &pdu::TaskMgmt) -> Result {
        use pdu::TmfFunction as F;
        let function = match t.function {
            F::AbortTask => Some(TmfFunction::AbortTask {
                tag: u64::from(t.referenced_tag),
            }),
            F::AbortTaskSet => Some(TmfFunction::AbortTaskSet),
            F::ClearTaskSet => Some(TmfFunction::ClearTaskSet),
            F::LogicalUnitReset => Some(TmfFunction::LunReset),
            _ => None,
        };
        // RFC 7143 11.6.1: 0 complete, 1 task does not exist, 2 LUN does not exist,
        // 5 not supported, 255 rejected.
        let response = match function {
            None => 5,
            Some(_) if self.session.lookup(lun_index(t.lun)).is_none() => 2,
            Some(function) => {
                let pool = self.pool.clone();
                let walk = |f: &mut dyn FnMut(&rtarget_core::cmd::Cmd)| {
                    // WRITEs aborted while waiting for data: their data will not come.
                    sweep_waiting(&pool, false);
                    pool.for_each_cmd(f)
                };
                match tmf::execute(
                    function,
                    &self.session,
                    lun_index(t.lun),
                    &walk,
                    tmf::TMF_WAIT,
                ) {
                    TmfResponse::Complete => 0,
                    TmfResponse::TaskNotFound => 1,
                    TmfResponse::Rejected | TmfResponse::Failed => 255,
                }
            }
        };
        self.incoming
            .retain(|x| x.index == u32::MAX || self.pool.is_parked(x.index, WAIT_DATA));
        self.queue(Response::TaskMgmt { itt, response }, &[], true)
    }

    /// Drops the records of WRITEs still waiting for data and ends those commands.
    fn end_incoming(&mut self) {
        sweep_waiting(&self.pool, true);
        self.incoming.clear();
    }

    /// Waits (bounded) until every command of the connection has been answered.
    fn drain_commands(&self) {
        let pool = &self.pool;
        tmf::wait_for(CLOSE_WAIT, &|f| pool.for_each_cmd(f));
    }

    /// The connection is over: nothing more is answered, the nexus closes.
    fn teardown(&mut self) {
        self.tx().closing.store(true, Relaxed);
        self.stream.shutdown();
        self.tx().bell.ring();
        self.end_incoming();
        if !self.session.close(CLOSE_WAIT) {
            pr_warn!("iSCSI: a closed session still has commands in a backend\n");
        }
    }
}

/// A SCSI Response's data segment for CHECK CONDITION: SenseLength, then the fixed-format
/// sense (RFC 7143 11.4.7). Returns its length.
fn sense_segment(sense: &Sense, buf: &mut [u8; SENSE_SEGMENT]) -> usize {
    let n = sense.write_fixed(&mut buf[2..]);
    buf[..2].copy_from_slice(&(n as u16).to_be_bytes());
    n + 2
}

const SENSE_SEGMENT: usize = 2 + FIXED_SENSE_LEN;

/// The LUN number of an 8-byte SAM LUN field (the core's `scsilun_to_int`, as LIO decodes it).
/// Ends the commands whose data will not come (aborted by task management, `all`: the
/// connection is going): through the core, which answers or drops them. Any thread: a slot is
/// unparked once.
pub(crate) fn sweep_waiting(pool: &Pool, all: bool) {
    for index in 0..pool.size() {
        if !pool.is_parked(index, WAIT_DATA) {
            continue;
        }
        if all || pool.cmd(index).is_some_and(|c| c.aborted()) {
            let Some(cmd) = pool.unpark(index, WAIT_DATA) else {
                continue;
            };
            // Between the look and the unpark the slot may have been reused by a live WRITE.
            if !all && !cmd.aborted() {
                if let Err(cmd) = Pool::park(cmd, WAIT_DATA) {
                    cmd::complete(cmd, Err(Sense::internal_target_failure()));
                }
                continue;
            }
            cmd::complete(cmd, Err(Sense::internal_target_failure()));
        }
    }
}

fn lun_index(lun: u64) -> u64 {
    rtarget_core::proto::spc::scsilun_to_int(&lun.to_be_bytes())
}
