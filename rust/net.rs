// SPDX-License-Identifier: GPL-2.0

//! Kernel TCP sockets for the network fabrics (iSCSI, NVMe/TCP): a [`Listener`] bound to an
//! IPv4 or IPv6 portal (`[::]` takes IPv4 too), and the [`Stream`]s it accepts, with blocking
//! sends and receives of byte slices and of a command's scatterlist ([`Sgl`]); an
//! [`Acceptor`] serves a listener's connections, a thread each.
//!
//! # Contexts
//!
//! Everything here may sleep: process context only, typically a connection's own kernel
//! thread ([`super::thread`]). [`Stream::shutdown`] and [`Listener::shutdown`] may be called
//! from any other thread to wake one blocked in `accept`, `recv` or `send`: the blocked call
//! then fails, and the socket stays valid until it is dropped.
//!
//! # Allocations
//!
//! None per call: scatterlists go to the socket through at most 16 bio_vecs on the stack.
//!
//! C side: `rust/net_helpers.c`.

use super::bindings;
use super::io::Sgl;
use super::thread::{self, Thread};
use core::ptr::NonNull;
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::sync::atomic::{ordering::Relaxed, Atomic};
use kernel::sync::{Arc, Mutex};
use kernel::time::{delay::fsleep, Delta};

/// A TCP endpoint: an IPv4 or IPv6 address and a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockAddr {
    /// An IPv4 address and a port.
    V4([u8; 4], u16),
    /// An IPv6 address and a port.
    V6([u8; 16], u16),
}

const AF_INET: i32 = bindings::AF_INET as i32;
const AF_INET6: i32 = bindings::AF_INET6 as i32;

impl SockAddr {
    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            SockAddr::V4(_, p) | SockAddr::V6(_, p) => *p,
        }
    }

    fn to_c(self) -> bindings::rt_sockaddr {
        let mut a = bindings::rt_sockaddr::default();
        match self {
            SockAddr::V4(ip, port) => {
                a.family = AF_INET;
                a.addr[..4].copy_from_slice(&ip);
                a.port = port;
            }
            SockAddr::V6(ip, port) => {
                a.family = AF_INET6;
                a.addr = ip;
                a.port = port;
            }
        }
        a
    }

    fn from_c(a: &bindings::rt_sockaddr) -> Result<SockAddr> {
        match a.family {
            AF_INET => Ok(SockAddr::V4(
                [a.addr[0], a.addr[1], a.addr[2], a.addr[3]],
                a.port,
            )),
            AF_INET6 => Ok(SockAddr::V6(a.addr, a.port)),
            _ => Err(EAFNOSUPPORT),
        }
    }
}

/// An owned `struct socket`, released on drop.
///
/// # Invariants
///
/// `sock` is a socket created by `net_helpers.c` and not yet released.
struct Socket {
    sock: NonNull<bindings::socket>,
}

// SAFETY: a kernel socket may be used and released from any thread; the socket layer
// serialises concurrent calls with the socket lock.
unsafe impl Send for Socket {}
// SAFETY: as above; every method takes `&self` and goes through locked socket calls.
unsafe impl Sync for Socket {}

impl Socket {
    fn from_out(ret: i32, out: *mut bindings::socket) -> Result<Socket> {
        to_result(ret)?;
        let sock = NonNull::new(out).ok_or(EINVAL)?;
        // INVARIANT: the helper succeeded, so `out` is a new socket.
        Ok(Socket { sock })
    }

    fn shutdown(&self) {
        // SAFETY: `sock` is a live socket (type invariant).
        unsafe { bindings::rt_sock_shutdown(self.sock.as_ptr()) }
    }

    fn name(&self, peer: bool) -> Result<SockAddr> {
        let mut a = bindings::rt_sockaddr::default();
        // SAFETY: `sock` is a live socket (type invariant); `a` is valid for writes.
        to_result(unsafe { bindings::rt_sock_name(self.sock.as_ptr(), peer, &mut a) })?;
        SockAddr::from_c(&a)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: `sock` is a live socket (type invariant), released once, here.
        unsafe { bindings::rt_sock_release(self.sock.as_ptr()) }
    }
}

/// A listening TCP socket (a network portal).
pub struct Listener {
    sock: Socket,
}

impl Listener {
    /// Listens on `addr` (port 0: one the kernel picks) with room for `backlog` pending
    /// connections. The socket has SO_REUSEADDR, as LIO's portals.
    pub fn bind(addr: SockAddr, backlog: i32) -> Result<Listener> {
        let a = addr.to_c();
        let mut out = core::ptr::null_mut();
        // SAFETY: `a` and `out` are valid for the call.
        let ret = unsafe { bindings::rt_sock_listen(&a, backlog, &mut out) };
        Ok(Listener {
            sock: Socket::from_out(ret, out)?,
        })
    }

    /// Waits for a connection. Fails (`EINVAL`) once [`Listener::shutdown`] has been called.
    pub fn accept(&self) -> Result<Stream> {
        let mut out = core::ptr::null_mut();
        // SAFETY: the listener's socket is live (type invariant of `Socket`); `out` is valid.
        let ret = unsafe { bindings::rt_sock_accept(self.sock.sock.as_ptr(), &mut out) };
        Ok(Stream {
            sock: Socket::from_out(ret, out)?,
        })
    }

    /// Wakes a thread blocked in [`Listener::accept`] and makes further accepts fail.
    pub fn shutdown(&self) {
        self.sock.shutdown()
    }

    /// The address it listens on (with the port the kernel picked).
    pub fn local_addr(&self) -> Result<SockAddr> {
        self.sock.name(false)
    }
}

/// A connected TCP socket.
pub struct Stream {
    sock: Socket,
}

impl Stream {
    /// Connects to `addr` (tests, and initiator-side tools).
    pub fn connect(addr: SockAddr) -> Result<Stream> {
        let a = addr.to_c();
        let mut out = core::ptr::null_mut();
        // SAFETY: `a` and `out` are valid for the call.
        let ret = unsafe { bindings::rt_sock_connect(&a, &mut out) };
        Ok(Stream {
            sock: Socket::from_out(ret, out)?,
        })
    }

    fn raw(&self) -> *mut bindings::socket {
        self.sock.sock.as_ptr()
    }

    /// Receives what has arrived, up to `buf.len()` bytes: the count, 0 when the peer has
    /// closed.
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        // SAFETY: the socket is live; `buf` is valid for writes of its length.
        let ret = unsafe {
            bindings::rt_sock_recv(self.raw(), buf.as_mut_ptr().cast(), buf.len(), false)
        };
        to_result(ret.min(0))?;
        Ok(ret as usize)
    }

    /// Fills `buf`. A peer that closes first gives `ECONNRESET`; one that closes before the
    /// first byte gives `Ok(false)`.
    pub fn recv_exact(&self, buf: &mut [u8]) -> Result<bool> {
        if buf.is_empty() {
            return Ok(true);
        }
        // SAFETY: the socket is live; `buf` is valid for writes of its length.
        let ret =
            unsafe { bindings::rt_sock_recv(self.raw(), buf.as_mut_ptr().cast(), buf.len(), true) };
        to_result(ret.min(0))?;
        Ok(ret != 0)
    }

    /// Sends all of `buf`; `more`: further data follows at once (MSG_MORE), so TCP may hold
    /// this back to fill a segment.
    pub fn send(&self, buf: &[u8], more: bool) -> Result {
        // SAFETY: the socket is live; `buf` is valid for reads of its length.
        to_result(unsafe {
            bindings::rt_sock_send(self.raw(), buf.as_ptr().cast(), buf.len(), more)
        })
    }

    /// Sends `len` bytes of `sgl` from byte `skip`. With `splice` the pages go by reference
    /// (MSG_SPLICE_PAGES, no copy): only for pages nothing writes again before the peer has
    /// acknowledged them.
    pub fn send_sgl(&self, sgl: &Sgl, skip: u32, len: u32, more: bool, splice: bool) -> Result {
        check_range(sgl, skip, len)?;
        let (sg, nents, _) = sgl.to_raw_parts();
        // SAFETY: the socket is live; `sgl` describes a valid scatterlist of at least
        // `skip + len` bytes (its invariant and the check above).
        to_result(unsafe {
            bindings::rt_sock_send_sg(
                self.raw(),
                sg,
                nents,
                skip as usize,
                len as usize,
                more,
                splice,
            )
        })
    }

    /// Holds the following sends back to fill segments (TCP_CORK), until [`Stream::push`].
    /// Unlike `more`, each send still marks its end with PSH for the peer's receive.
    pub fn cork(&self) {
        // SAFETY: the socket is live (a TCP socket: `Stream`s come from accept or connect).
        unsafe { bindings::rt_sock_cork(self.raw()) }
    }

    /// Sends at once what [`Stream::cork`] or `more` held back.
    pub fn push(&self) {
        // SAFETY: as in `cork`.
        unsafe { bindings::rt_sock_push(self.raw()) }
    }

    /// Receives `len` bytes into `sgl` from byte `skip`.
    pub fn recv_sgl(&self, sgl: &Sgl, skip: u32, len: u32) -> Result {
        check_range(sgl, skip, len)?;
        let (sg, nents, _) = sgl.to_raw_parts();
        // SAFETY: as in `send_sgl`; the pages are written only through C.
        to_result(unsafe {
            bindings::rt_sock_recv_sg(self.raw(), sg, nents, skip as usize, len as usize)
        })
    }

    /// Makes receives fail with `EAGAIN` after `ms` milliseconds without data (0: wait for
    /// ever): a login's timeout.
    pub fn set_recv_timeout(&self, ms: u32) {
        // SAFETY: the socket is live.
        unsafe { bindings::rt_sock_set_rcvtimeo(self.raw(), ms) }
    }

    /// Ends the connection both ways, waking any thread blocked on it.
    pub fn shutdown(&self) {
        self.sock.shutdown()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Result<SockAddr> {
        self.sock.name(true)
    }

    /// The local address (the portal the connection arrived on).
    pub fn local_addr(&self) -> Result<SockAddr> {
        self.sock.name(false)
    }
}

fn check_range(sgl: &Sgl, skip: u32, len: u32) -> Result {
    match skip.checked_add(len) {
        Some(end) if end <= sgl.len() => Ok(()),
        _ => Err(EINVAL),
    }
}

/// A listener served by an acceptor thread that gives each connection a kernel thread of its
/// own running `serve` with the acceptor's context (a fabric's portal or port). At most
/// `max_conns` connections live at once; one more is closed at once. Dropping the acceptor
/// stops listening, shuts every connection down and waits for their threads: what the
/// fabrics' portals (iSCSI) and ports (NVMe/TCP) each need.
pub struct Acceptor<C: Send + Sync + 'static> {
    shared: Arc<AcceptorShared<C>>,
    thread: Option<Thread>,
}

#[pin_data]
struct AcceptorShared<C> {
    listener: Listener,
    stopping: Atomic<bool>,
    max_conns: usize,
    conn_thread: &'static CStr,
    serve: fn(&Arc<Stream>, &C),
    context: C,
    #[pin]
    conns: Mutex<KVec<Conn>>,
}

/// A connection and its thread (stopped when this is dropped).
struct Conn {
    stream: Arc<Stream>,
    done: Arc<Atomic<bool>>,
    _thread: Thread,
}

/// Names of an [`Acceptor`]'s threads, and how many connections it serves at most.
pub struct AcceptorSetup {
    /// Pending connections the listener queues.
    pub backlog: i32,
    /// Connections served at once.
    pub max_conns: usize,
    /// The acceptor thread's name.
    pub thread: &'static CStr,
    /// Each connection thread's name.
    pub conn_thread: &'static CStr,
}

impl<C: Send + Sync + 'static> Acceptor<C> {
    /// Listens on `addr` and starts accepting.
    pub fn start(
        addr: SockAddr,
        setup: &AcceptorSetup,
        context: C,
        serve: fn(&Arc<Stream>, &C),
    ) -> Result<Self> {
        let listener = Listener::bind(addr, setup.backlog)?;
        let shared = Arc::pin_init(
            try_pin_init!(AcceptorShared {
                listener,
                stopping: Atomic::new(false),
                max_conns: setup.max_conns,
                conn_thread: setup.conn_thread,
                serve,
                context,
                conns <- kernel::new_mutex!(KVec::new()),
            }? Error),
            GFP_KERNEL,
        )?;
        let s = shared.clone();
        let thread = Thread::spawn(setup.thread, move || accept_loop(s))?;
        Ok(Acceptor {
            shared,
            thread: Some(thread),
        })
    }

    /// The context its connections are served with.
    pub fn context(&self) -> &C {
        &self.shared.context
    }
}

impl<C: Send + Sync + 'static> Drop for Acceptor<C> {
    fn drop(&mut self) {
        let s = &self.shared;
        s.stopping.store(true, Relaxed);
        s.listener.shutdown();
        drop(self.thread.take());
        // No connection is added from now on: end them all and wait for their threads.
        let conns = core::mem::take(&mut *s.conns.lock());
        for c in conns.iter() {
            c.stream.shutdown();
        }
        drop(conns);
    }
}

fn accept_loop<C: Send + Sync + 'static>(shared: Arc<AcceptorShared<C>>) {
    while !shared.stopping.load(Relaxed) && !thread::should_stop() {
        let stream = match shared.listener.accept() {
            Ok(s) => s,
            Err(_) => {
                fsleep(Delta::from_millis(10));
                continue;
            }
        };
        if shared.stopping.load(Relaxed) {
            break;
        }
        if let Err(e) = start_conn(&shared, stream) {
            pr_warn!(
                "rtarget: {:?} cannot serve a connection: {:?}\n",
                shared.conn_thread,
                e
            );
        }
    }
}

fn start_conn<C: Send + Sync + 'static>(shared: &Arc<AcceptorShared<C>>, stream: Stream) -> Result {
    let stream = Arc::new(stream, GFP_KERNEL)?;
    let done = Arc::new(Atomic::new(false), GFP_KERNEL)?;
    let (st, d, sh) = (stream.clone(), done.clone(), shared.clone());
    let mut conns = shared.conns.lock();
    // Forget the connections that have ended.
    conns.retain(|c| !c.done.load(Relaxed));
    if conns.len() >= shared.max_conns {
        stream.shutdown();
        return Err(EBUSY);
    }
    conns.reserve(1, GFP_KERNEL)?;
    let thread = Thread::spawn(shared.conn_thread, move || {
        (sh.serve)(&st, &sh.context);
        st.shutdown();
        d.store(true, Relaxed);
    })?;
    conns.push(
        Conn {
            stream,
            done,
            _thread: thread,
        },
        GFP_KERNEL,
    )?;
    Ok(())
}

#[kunit_tests(rtarget_net)]
mod tests {
    use super::super::io::ScratchSgl;
    use super::super::thread::Thread;
    use super::*;
    use kernel::sync::atomic::{ordering::Relaxed, Atomic};
    use kernel::sync::Arc;

    const LOOPBACK4: [u8; 4] = [127, 0, 0, 1];
    const LOOPBACK6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

    /// A connection across `listener`: (client, server).
    fn pair(listener: &Listener, to: SockAddr) -> Result<(Stream, Stream)> {
        // The connection completes in the listen backlog before accept.
        let client = Stream::connect(to)?;
        let server = listener.accept()?;
        Ok((client, server))
    }

    #[test]
    fn ipv4_round_trip() -> Result {
        let l = Listener::bind(SockAddr::V4(LOOPBACK4, 0), 4)?;
        let port = l.local_addr()?.port();
        assert_ne!(port, 0);
        let (c, s) = pair(&l, SockAddr::V4(LOOPBACK4, port))?;
        assert_eq!(s.peer_addr()?, c.local_addr()?);
        c.send(b"hello ", true)?;
        c.send(b"target", false)?;
        let mut buf = [0u8; 12];
        assert!(s.recv_exact(&mut buf)?);
        assert_eq!(&buf, b"hello target");
        s.send(b"ok", false)?;
        let mut two = [0u8; 2];
        assert!(c.recv_exact(&mut two)?);
        assert_eq!(&two, b"ok");
        // The peer's orderly close: EOF before a byte, ECONNRESET in the middle.
        c.send(b"x", false)?;
        drop(c);
        assert!(matches!(s.recv_exact(&mut two), Err(e) if e == ECONNRESET));
        assert!(!s.recv_exact(&mut two)?);
        assert_eq!(s.recv(&mut two)?, 0);
        Ok(())
    }

    #[test]
    fn dual_stack_any_takes_ipv4_and_ipv6() -> Result {
        let l = Listener::bind(SockAddr::V6([0; 16], 0), 4)?;
        let port = l.local_addr()?.port();
        for to in [SockAddr::V4(LOOPBACK4, port), SockAddr::V6(LOOPBACK6, port)] {
            let (c, s) = pair(&l, to)?;
            c.send(b"v", false)?;
            let mut b = [0u8; 1];
            assert!(s.recv_exact(&mut b)?);
            assert_eq!(&b, b"v");
        }
        Ok(())
    }

    #[test]
    fn scatterlists_both_ways() -> Result {
        let l = Listener::bind(SockAddr::V4(LOOPBACK4, 0), 4)?;
        let (c, s) = pair(&l, SockAddr::V4(LOOPBACK4, l.local_addr()?.port()))?;
        let len = 3 * 4096 + 100;
        let out = ScratchSgl::new(len)?;
        let mut pattern = KVec::with_capacity(len as usize, GFP_KERNEL)?;
        for i in 0..len {
            pattern.push((i % 251) as u8, GFP_KERNEL)?;
        }
        out.sgl().copy_to(0, &pattern);
        let got = ScratchSgl::new(len)?;
        for splice in [false, true] {
            // From byte 10 of one list to byte 50 of the other, across page boundaries.
            c.send_sgl(&out.sgl(), 10, len - 60, false, splice)?;
            s.recv_sgl(&got.sgl(), 50, len - 60)?;
            let mut back = KVec::from_elem(0u8, len as usize, GFP_KERNEL)?;
            got.sgl().copy_from(0, &mut back);
            assert!(back[50..(len - 10) as usize] == pattern[10..(len - 50) as usize]);
        }
        assert!(matches!(c.send_sgl(&out.sgl(), 1, len, false, false), Err(e) if e == EINVAL));
        Ok(())
    }

    #[test]
    fn receive_timeout() -> Result {
        let l = Listener::bind(SockAddr::V4(LOOPBACK4, 0), 4)?;
        let (_c, s) = pair(&l, SockAddr::V4(LOOPBACK4, l.local_addr()?.port()))?;
        s.set_recv_timeout(50);
        let mut b = [0u8; 4];
        assert!(matches!(s.recv_exact(&mut b), Err(e) if e == EAGAIN));
        Ok(())
    }

    #[test]
    fn shutdown_wakes_blocked_threads() -> Result {
        let l = Arc::new(Listener::bind(SockAddr::V4(LOOPBACK4, 0), 4)?, GFP_KERNEL)?;
        let (c, s) = pair(&l, SockAddr::V4(LOOPBACK4, l.local_addr()?.port()))?;
        let s = Arc::new(s, GFP_KERNEL)?;
        let woken = Arc::new(Atomic::new(0u32), GFP_KERNEL)?;
        let (l2, s2, w1, w2) = (l.clone(), s.clone(), woken.clone(), woken.clone());
        let acceptor = Thread::spawn(c"rt_kunit_accept", move || {
            if l2.accept().is_err() {
                w1.fetch_add(1, Relaxed);
            }
        })?;
        let reader = Thread::spawn(c"rt_kunit_recv", move || {
            let mut b = [0u8; 4];
            // Woken by shutdown: EOF or an error, never data.
            if !matches!(s2.recv_exact(&mut b), Ok(true)) {
                w2.fetch_add(1, Relaxed);
            }
        })?;
        kernel::time::delay::fsleep(kernel::time::Delta::from_millis(100));
        assert_eq!(woken.load(Relaxed), 0);
        l.shutdown();
        s.shutdown();
        // Both return because of the shutdowns, before anything stops them.
        for _ in 0..100 {
            if woken.load(Relaxed) == 2 {
                break;
            }
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(10));
        }
        assert_eq!(woken.load(Relaxed), 2);
        acceptor.stop();
        reader.stop();
        drop(c);
        // A thread stopped before it ever ran drops its closure all the same.
        let held = Arc::new(0u8, GFP_KERNEL)?;
        let h2 = held.clone();
        Thread::spawn(c"rt_kunit_never", move || drop(h2))?.stop();
        // The closure (and its clone of `held`) was dropped.
        assert!(Arc::into_unique_or_drop(held).is_some());
        Ok(())
    }
}
