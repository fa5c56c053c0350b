// SPDX-License-Identifier: GPL-2.0

//! Kernel threads (what the 7.3 kernel crate lacks): [`Thread::spawn`] runs a closure in a new
//! kthread; [`Thread::stop`] (or dropping the handle) asks it to stop, wakes it and waits for
//! the closure to return. A closure that blocks in something [`should_stop`] cannot interrupt
//! (a socket receive) must be woken by its owner first, e.g. with `Stream::shutdown`.
//!
//! C side: `rust/net_helpers.c` (`kthread_create`, `kthread_stop_put`).

use super::bindings;
use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::alloc::KBox;
use kernel::error::from_err_ptr;
use kernel::prelude::*;

/// A running kernel thread.
///
/// # Invariants
///
/// `task` is a kthread created by `rt_kthread_run`, on which this handle holds a task
/// reference until `rt_kthread_stop`. `body` is the boxed closure its [`trampoline`] takes
/// when the kthread runs at all (a kthread stopped before it first runs never calls it), and
/// `drop_body` frees it otherwise.
pub struct Thread {
    task: NonNull<bindings::task_struct>,
    body: *mut c_void,
    drop_body: unsafe fn(*mut c_void),
}

// SAFETY: the handle only stops the thread, which any thread may do.
unsafe impl Send for Thread {}
// SAFETY: no method mutates through `&self`.
unsafe impl Sync for Thread {}

/// # Safety
///
/// `data` is a `KBox<F>` turned into a raw pointer by [`Thread::spawn`], taken once.
unsafe extern "C" fn trampoline<F: FnOnce() + Send + 'static>(data: *mut c_void) -> i32 {
    // SAFETY: by the function's safety requirement.
    let body: KBox<F> = unsafe { KBox::from_raw(data.cast()) };
    KBox::into_inner(body)();
    RAN
}

/// # Safety
///
/// As [`trampoline`]'s, for a closure the thread never ran.
unsafe fn drop_body<F>(data: *mut c_void) {
    // SAFETY: by the function's safety requirement.
    drop(unsafe { KBox::<F>::from_raw(data.cast()) });
}

/// What [`trampoline`] returns (`kthread_stop` returns `-EINTR` for a kthread that never ran).
const RAN: i32 = 0;

impl Thread {
    /// Starts `f` in a kernel thread named `name` (as `ps` shows it; at most 15 bytes count).
    pub fn spawn<F: FnOnce() + Send + 'static>(name: &CStr, f: F) -> Result<Thread> {
        let data = KBox::into_raw(KBox::new(f, GFP_KERNEL)?).cast::<c_void>();
        // SAFETY: `trampoline::<F>` takes `data` at most once; `name` is a valid C string.
        let task =
            unsafe { bindings::rt_kthread_run(Some(trampoline::<F>), data, name.as_char_ptr()) };
        match from_err_ptr(task) {
            Ok(t) => Ok(Thread {
                // INVARIANT: created and referenced by `rt_kthread_run`.
                task: NonNull::new(t).ok_or(EINVAL)?,
                body: data,
                drop_body: drop_body::<F>,
            }),
            Err(e) => {
                // SAFETY: the thread was not created, so `data` was not taken.
                unsafe { drop_body::<F>(data) };
                Err(e)
            }
        }
    }

    /// Asks the thread to stop, wakes it and waits for its closure to return.
    pub fn stop(self) {
        drop(self)
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        // SAFETY: `task` is referenced by this handle (type invariant); the reference is
        // dropped here, once.
        let ret = unsafe { bindings::rt_kthread_stop(self.task.as_ptr()) };
        // -EINTR: stopped before it ran (a closure that oopsed gives another code, and its box
        // is then neither freed nor touched again).
        if ret == EINTR.to_errno() {
            // SAFETY: the kthread stopped before running `trampoline`, so `body` was never
            // taken (type invariant) and the thread is gone.
            unsafe { (self.drop_body)(self.body) };
        }
    }
}

/// The `n`-th online CPU, counting round the online ones: spreads work over the CPUs.
pub fn online_cpu(n: u32) -> u32 {
    // SAFETY: no preconditions.
    unsafe { bindings::rt_online_cpu(n) }
}

/// Keeps the current thread on `cpu` (the scheduler moves it if the CPU goes offline).
pub fn pin_current(cpu: u32) -> Result {
    // SAFETY: no preconditions; `current` is always valid.
    kernel::error::to_result(unsafe { bindings::rt_pin_current(cpu) })
}

/// Whether the current kthread has been asked to stop.
pub fn should_stop() -> bool {
    // SAFETY: no preconditions; called from a kthread.
    unsafe { bindings::rt_kthread_should_stop() }
}

/// Wakes a kernel thread from any context (interrupt handlers included): the thread sleeps in
/// [`Doorbell::wait`] until another rings it. No ring is lost: a ring while the thread is
/// awake makes its next wait return at once.
#[pin_data]
pub struct Doorbell {
    #[pin]
    rung: kernel::sync::SpinLockIrq<bool>,
    #[pin]
    bell: kernel::sync::CondVar,
}

impl Doorbell {
    /// A doorbell not rung.
    pub fn new() -> impl PinInit<Self> {
        pin_init!(Doorbell {
            rung <- kernel::new_spinlock_irq!(false),
            bell <- kernel::new_condvar!(),
        })
    }

    /// Rings it (any context).
    pub fn ring(&self) {
        *self.rung.lock() = true;
        self.bell.notify_one();
    }

    /// Waits until it rings or `ms` milliseconds pass (process context), and clears it.
    /// Returns whether it rang.
    pub fn wait(&self, ms: u32) -> bool {
        let mut rung = self.rung.lock();
        if !*rung {
            let _ = self
                .bell
                .wait_interruptible_timeout(&mut rung, kernel::time::msecs_to_jiffies(ms));
        }
        core::mem::replace(&mut *rung, false)
    }
}
