// SPDX-License-Identifier: GPL-2.0

//! Per-CPU references to an object shared by every CPU's commands (C `percpu_ref`, as LIO's
//! `se_lun.lun_ref` and `se_session.cmd_count`).
//!
//! Cloning an `Arc` per command makes every CPU write one cache line; a [`LiveRef`] costs a
//! per-CPU increment. The object embeds [`LiveRefs`] and, once [armed](LiveRefs::arm), the refs
//! hold one `Arc` of it on behalf of all [`LiveRef`]s. [`LiveRefs::kill`] refuses new refs; when
//! the last one is dropped, that `Arc` is dropped from the core's workqueue.

use super::bindings;
use core::ptr::NonNull;
use kernel::error::to_result;
use kernel::ffi;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::Opaque;

/// The per-CPU count embedded in an object.
///
/// # Invariants
///
/// `inner` was initialised by `rt_live_refs_init` and is exited only on drop. Once armed, its
/// `owner` is an `Arc` of the object embedding it, dropped only after the refs were killed and
/// fell to zero.
#[pin_data(PinnedDrop)]
pub struct LiveRefs {
    #[pin]
    inner: Opaque<bindings::rt_live_refs>,
}

// SAFETY: the C functions are safe to call concurrently (`percpu_ref` is per-CPU or atomic).
unsafe impl Send for LiveRefs {}
// SAFETY: as above.
unsafe impl Sync for LiveRefs {}

/// An object counted by embedded [`LiveRefs`].
pub trait HasLiveRefs: Send + Sync + Sized + 'static {
    /// The refs embedded in `self` (refs anywhere else are refused).
    fn live_refs(&self) -> &LiveRefs;
}

/// `obj`'s refs, if they lie inside `obj`: only then do they keep `obj` alive.
fn refs_of<T: HasLiveRefs>(obj: &T) -> Option<&LiveRefs> {
    let r = obj.live_refs();
    let start = core::ptr::from_ref(obj) as usize;
    let at = core::ptr::from_ref(r) as usize;
    (at >= start && at + size_of::<LiveRefs>() <= start + size_of::<T>()).then_some(r)
}

impl LiveRefs {
    /// Unarmed refs: none can be taken yet. May sleep (allocates the per-CPU counters).
    pub fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(LiveRefs {
            // SAFETY: `rt_live_refs_init` initialises the whole struct or fails.
            inner <- Opaque::try_ffi_init(|p| to_result(unsafe { bindings::rt_live_refs_init(p) })),
        }? Error)
    }

    fn raw(&self) -> *mut bindings::rt_live_refs {
        self.inner.get()
    }

    /// Arms the refs of `owner` (process context): from now on [`LiveRef::try_new`]
    /// succeeds until [`LiveRefs::kill`], and the refs hold an `Arc` of `owner` until then. An
    /// armed object lives until it is killed: the caller must kill it. `EINVAL` if the refs do
    /// not lie inside `owner`, `EBUSY` if they were armed before.
    pub fn arm<T: HasLiveRefs>(owner: &Arc<T>) -> Result {
        let r = refs_of(&**owner).ok_or(EINVAL)?;
        let held = Arc::into_raw(owner.clone());
        // SAFETY: `r` is initialised (type invariant). On success the refs own `held`, dropped
        // exactly once by `drop_owner::<T>` after the refs were killed and fell to zero.
        let armed =
            unsafe { bindings::rt_live_refs_arm(r.raw(), held.cast(), Some(drop_owner::<T>)) };
        if !armed {
            // SAFETY: not taken by the refs: `held` is still ours, from `Arc::into_raw`.
            drop(unsafe { Arc::from_raw(held) });
            return Err(EBUSY);
        }
        Ok(())
    }

    /// Refuses new refs. When the last one is dropped, the refs drop their `Arc`. Idempotent;
    /// does nothing to refs never armed.
    pub fn kill(&self) {
        // SAFETY: initialised (type invariant); the C side makes repeated kills no-ops.
        unsafe { bindings::rt_live_refs_kill(self.raw()) }
    }

    /// Whether the refs were killed and none is left.
    pub fn is_zero(&self) -> bool {
        // SAFETY: initialised (type invariant).
        unsafe { bindings::rt_live_refs_is_zero(self.raw()) }
    }

    /// Once the refs are killed and at zero ([`LiveRefs::is_zero`]): waits for them to have
    /// dropped their `Arc`, so the owner goes with the caller's last `Arc` rather than later
    /// from the workqueue. Process context; sleeps.
    pub fn flush_release(&self) {
        // SAFETY: initialised; `&self` keeps the owner alive, so the release work cannot drop
        // the last `Arc` and free the refs while it is flushed.
        unsafe { bindings::rt_live_refs_flush(self.raw()) }
    }
}

#[pinned_drop]
impl PinnedDrop for LiveRefs {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: initialised, and no ref is left: an armed object is only dropped after its
        // refs fell to zero (they held an `Arc` of it until then).
        unsafe { bindings::rt_live_refs_exit(self.raw()) }
    }
}

/// Drops the `Arc` the refs held.
///
/// # Safety
///
/// `owner` is the pointer [`LiveRefs::arm`] got from `Arc::into_raw`; called once.
unsafe extern "C" fn drop_owner<T: HasLiveRefs>(owner: *const ffi::c_void) {
    // SAFETY: by the requirements.
    drop(unsafe { Arc::<T>::from_raw(owner.cast()) });
}

/// One per-CPU reference to a `T`: keeps it alive like an `Arc`, without a shared write.
///
/// # Invariants
///
/// `ptr` points to a `T` whose refs, `refs` (inside it), were armed and hold one count for
/// this value.
pub struct LiveRef<T: HasLiveRefs> {
    ptr: NonNull<T>,
    refs: NonNull<LiveRefs>,
}

// SAFETY: a `LiveRef` gives `&T` and `T: Send + Sync`.
unsafe impl<T: HasLiveRefs> Send for LiveRef<T> {}
// SAFETY: as above.
unsafe impl<T: HasLiveRefs> Sync for LiveRef<T> {}

impl<T: HasLiveRefs> LiveRef<T> {
    /// A new ref to `obj`, unless its refs are unarmed or killed.
    pub fn try_new(obj: &T) -> Option<Self> {
        let refs = refs_of(obj)?;
        // SAFETY: initialised (`LiveRefs` invariant); `obj` is alive for the call.
        if unsafe { bindings::rt_live_refs_tryget(refs.raw()) } {
            // INVARIANT: the count taken keeps the armed refs' `Arc` of `obj` alive.
            Some(LiveRef {
                ptr: NonNull::from(obj),
                refs: NonNull::from(refs),
            })
        } else {
            None
        }
    }

    fn refs(&self) -> &LiveRefs {
        // SAFETY: inside the `T` this value keeps alive (type invariant).
        unsafe { self.refs.as_ref() }
    }
}

impl<T: HasLiveRefs> Clone for LiveRef<T> {
    fn clone(&self) -> Self {
        // SAFETY: `self` holds a count, so the refs are armed and alive; a get beside it is
        // always allowed, even after a kill.
        unsafe { bindings::rt_live_refs_get(self.refs().raw()) };
        LiveRef {
            ptr: self.ptr,
            refs: self.refs,
        }
    }
}

impl<T: HasLiveRefs> core::ops::Deref for LiveRef<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: alive while this ref holds its count (type invariant).
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: HasLiveRefs> Drop for LiveRef<T> {
    fn drop(&mut self) {
        // SAFETY: this value's count; if it is the last after a kill, the release is deferred
        // to a work item, so `T` is still alive while `put` runs.
        unsafe { bindings::rt_live_refs_put(self.refs().raw()) }
    }
}

#[kunit_tests(rtarget_live_ref)]
mod tests {
    use super::*;
    use kernel::sync::atomic::{ordering::Relaxed, Atomic};
    use kernel::time::{delay::fsleep, Delta};

    static DROPPED: Atomic<u32> = Atomic::new(0);

    #[pin_data(PinnedDrop)]
    struct Obj {
        #[pin]
        refs: LiveRefs,
    }

    #[pinned_drop]
    impl PinnedDrop for Obj {
        fn drop(self: Pin<&mut Self>) {
            DROPPED.fetch_add(1, Relaxed);
        }
    }

    impl HasLiveRefs for Obj {
        fn live_refs(&self) -> &LiveRefs {
            &self.refs
        }
    }

    fn new_obj() -> Arc<Obj> {
        Arc::pin_init(
            try_pin_init!(Obj { refs <- LiveRefs::new() }? Error),
            GFP_KERNEL,
        )
        .expect("alloc")
    }

    /// Waits (up to 2 s) for the release work to drop `n` objects in all.
    fn dropped(n: u32) -> bool {
        for _ in 0..200 {
            if DROPPED.load(Relaxed) >= n {
                return true;
            }
            fsleep(Delta::from_millis(10));
        }
        false
    }

    #[test]
    fn refs_keep_the_object_until_killed_and_drained() {
        let before = DROPPED.load(Relaxed);
        let obj = new_obj();
        assert!(LiveRef::try_new(&*obj).is_none()); // unarmed refs refuse
        assert!(LiveRefs::arm(&obj).is_ok());
        assert!(matches!(LiveRefs::arm(&obj), Err(e) if e == EBUSY));
        let r = LiveRef::try_new(&*obj).expect("armed refs give refs");
        let r2 = r.clone();
        drop(obj);
        // Only the refs hold it now.
        r.live_refs().kill();
        r.live_refs().kill();
        assert!(LiveRef::try_new(&*r).is_none()); // killed refs refuse
        drop(r);
        assert!(!r2.live_refs().is_zero());
        assert_eq!(DROPPED.load(Relaxed), before);
        drop(r2);
        assert!(dropped(before + 1)); // the last ref released it
    }

    #[test]
    fn unarmed_object_drops_like_an_arc() {
        let before = DROPPED.load(Relaxed);
        let obj = new_obj();
        obj.refs.kill();
        drop(obj);
        assert_eq!(DROPPED.load(Relaxed), before + 1);
    }
}
