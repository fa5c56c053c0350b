// SPDX-License-Identifier: GPL-2.0

//! Pre-allocated command slots for fabrics that own their commands' memory (iSCSI, NVMe/TCP;
//! the loopback fabric uses the SCSI midlayer's instead).
//!
//! A [`CmdPool`] holds `n` slots, each a core [`Cmd`] and the fabric's per-command state `P`,
//! and the fabric's per-queue state `O` that completions reach from any context. Who may touch
//! a slot's `P`:
//! - while it is free, the holder of its [`FreeSlot`] (taken from the pool's free bitmap);
//! - while it is in flight, the holder of its [`CmdRef`], through [`CmdPool::private`].
//!
//! A fabric that cannot act on a command where the core hands it back (a completion in
//! interrupt context, a WRITE whose data is still on the wire) *parks* it in one of the
//! pool's bitmaps ([`CmdPool::park`]) and takes it back later from a thread
//! ([`CmdPool::unpark`], [`CmdPool::drain`]). Every operation is a few atomic instructions on
//! the pool's own cache lines: no lock, no allocation.

use crate::cmd::Cmd;
use crate::rt::cmd_ref::{CmdRef, CmdSetup};
use core::any::TypeId;
use core::cell::UnsafeCell;
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::sync::atomic::{ordering, Atomic};
use kernel::sync::Arc;

/// How many bitmaps a pool has to park commands in.
pub const LOTS: usize = 3;

/// One slot: a command and the fabric's state for it.
#[pin_data]
struct Slot<O: 'static, P: 'static> {
    #[pin]
    cmd: Cmd,
    index: u32,
    /// The pool, held by the command while it is in flight (so the pool outlives every
    /// command the core or a backend still holds); `None` while the slot is free.
    hold: UnsafeCell<Option<Arc<CmdPool<O, P>>>>,
    private: UnsafeCell<P>,
}

/// A bitmap of slots, one atomic word per 64.
struct Bits(KVec<Atomic<u64>>);

impl Bits {
    fn new(n: u32, set: bool) -> Result<Bits> {
        let words = n.div_ceil(64) as usize;
        let mut v = KVec::with_capacity(words, GFP_KERNEL)?;
        for w in 0..words {
            let first = w as u32 * 64;
            let bits = if !set {
                0
            } else if n - first >= 64 {
                u64::MAX
            } else {
                (1u64 << (n - first)) - 1
            };
            v.push(Atomic::new(bits), GFP_KERNEL)?;
        }
        Ok(Bits(v))
    }

    /// Sets bit `i`, returning whether it was set.
    fn set(&self, i: u32) -> bool {
        self.update(i, |w, b| w | b)
    }

    /// Clears bit `i`, returning whether it was set.
    fn clear(&self, i: u32) -> bool {
        self.update(i, |w, b| w & !b)
    }

    fn update(&self, i: u32, f: impl Fn(u64, u64) -> u64) -> bool {
        let word = &self.0[(i / 64) as usize];
        let bit = 1u64 << (i % 64);
        let mut old = word.load(ordering::Relaxed);
        loop {
            match word.cmpxchg(old, f(old, bit), ordering::Full) {
                Ok(prev) => return prev & bit != 0,
                Err(cur) => old = cur,
            }
        }
    }

    fn test(&self, i: u32) -> bool {
        self.0[(i / 64) as usize].load(ordering::Acquire) & (1u64 << (i % 64)) != 0
    }

    /// Clears the lowest set bit and returns its index.
    fn any(&self) -> bool {
        self.0.iter().any(|w| w.load(ordering::Relaxed) != 0)
    }

    fn take_first(&self) -> Option<u32> {
        for (w, word) in self.0.iter().enumerate() {
            let mut old = word.load(ordering::Relaxed);
            while old != 0 {
                let bit = old & old.wrapping_neg();
                match word.cmpxchg(old, old & !bit, ordering::Full) {
                    Ok(_) => return Some(w as u32 * 64 + bit.trailing_zeros()),
                    Err(cur) => old = cur,
                }
            }
        }
        None
    }

    /// Clears every bit, calling `f` with the index of each that was set.
    fn take_all(&self, mut f: impl FnMut(u32)) {
        for (w, word) in self.0.iter().enumerate() {
            let mut bits = word.xchg(0, ordering::Full);
            while bits != 0 {
                f(w as u32 * 64 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
    }

    fn count(&self) -> u32 {
        self.0
            .iter()
            .map(|w| w.load(ordering::Relaxed).count_ones())
            .sum()
    }
}

/// A fabric queue's pre-allocated commands (see the module docs).
pub struct CmdPool<O: 'static, P: 'static> {
    owner: O,
    slots: KVec<Pin<KBox<Slot<O, P>>>>,
    free: Bits,
    lots: [Bits; LOTS],
}

// SAFETY: `P` is reached only by the unique holder of a slot's `FreeSlot` or `CmdRef` (module
// docs), `hold` likewise; everything else is atomics and `O`, which is `Sync`.
unsafe impl<O: Send + Sync, P: Send> Sync for CmdPool<O, P> {}
// SAFETY: as above; the slots own `Send` data.
unsafe impl<O: Send + Sync, P: Send> Send for CmdPool<O, P> {}

impl<O: Send + Sync + 'static, P: Send + 'static> CmdPool<O, P> {
    /// A pool of `n` free slots (at least one), slot `i`'s state made by `make(i)`.
    pub fn new(owner: O, n: u32, mut make: impl FnMut(u32) -> Result<P>) -> Result<Arc<Self>> {
        if n == 0 {
            return Err(EINVAL);
        }
        let mut slots = KVec::with_capacity(n as usize, GFP_KERNEL)?;
        for index in 0..n {
            let private = make(index)?;
            slots.push(
                KBox::pin_init(
                    pin_init!(Slot {
                        cmd <- Cmd::new_slot(),
                        index,
                        hold: UnsafeCell::new(None),
                        private: UnsafeCell::new(private),
                    }),
                    GFP_KERNEL,
                )?,
                GFP_KERNEL,
            )?;
        }
        Ok(Arc::new(
            CmdPool {
                owner,
                slots,
                free: Bits::new(n, true)?,
                lots: [
                    Bits::new(n, false)?,
                    Bits::new(n, false)?,
                    Bits::new(n, false)?,
                ],
            },
            GFP_KERNEL,
        )?)
    }

    /// The fabric's state for the whole queue.
    pub fn owner(&self) -> &O {
        &self.owner
    }

    /// The number of slots.
    pub fn size(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The number of free slots.
    pub fn free_count(&self) -> u32 {
        self.free.count()
    }

    /// Takes a free slot, the lowest numbered.
    pub fn take(self: &Arc<Self>) -> Option<FreeSlot<'_, O, P>> {
        let index = self.free.take_first()?;
        Some(FreeSlot { pool: self, index })
    }

    /// Calls `f` with every slot's command (task management's walk).
    pub fn for_each_cmd(&self, f: &mut dyn FnMut(&Cmd)) {
        for s in self.slots.iter() {
            f(&s.cmd);
        }
    }

    /// The command of slot `index`.
    pub fn cmd(&self, index: u32) -> Option<&Cmd> {
        self.slots.get(index as usize).map(|s| &s.cmd)
    }

    /// The slot of a command, if it belongs to a pool of this type.
    fn slot_of(cmd: &CmdRef) -> Option<&Slot<O, P>> {
        if cmd.origin() != Some(TypeId::of::<Self>()) {
            return None;
        }
        // SAFETY: commands with this origin are only started by `FreeSlot::start`, in a slot
        // of a pool of this type; the slot lives while the command is in flight (it holds its
        // pool).
        Some(unsafe { &*kernel::container_of!(cmd.slot().as_ptr(), Slot<O, P>, cmd) })
    }

    /// The pool a command in flight belongs to.
    pub fn of(cmd: &CmdRef) -> Option<&Self> {
        let slot = Self::slot_of(cmd)?;
        // SAFETY: `hold` is written only by the holder of the slot (module docs): `cmd`.
        unsafe { (*slot.hold.get()).as_deref() }
    }

    /// The index of a command's slot in its pool.
    pub fn index(cmd: &CmdRef) -> Option<u32> {
        Self::slot_of(cmd).map(|s| s.index)
    }

    /// The fabric's state of a command in flight.
    pub fn private(cmd: &mut CmdRef) -> Option<&mut P> {
        let slot = Self::slot_of(cmd)?;
        // SAFETY: the unique `CmdRef`, borrowed mutably, is the only way to `private` while
        // the command is in flight.
        Some(unsafe { &mut *slot.private.get() })
    }

    /// Sets a command in flight aside in bitmap `lot` until [`CmdPool::unpark`] or
    /// [`CmdPool::drain`] takes it back. Gives the command back if it is not from this type
    /// of pool or `lot` is out of range.
    pub fn park(cmd: CmdRef, lot: usize) -> core::result::Result<(), CmdRef> {
        let (Some(pool), Some(index)) = (Self::of(&cmd), Self::index(&cmd)) else {
            return Err(cmd);
        };
        if lot >= LOTS {
            return Err(cmd);
        }
        let lots = core::ptr::from_ref::<Bits>(&pool.lots[lot]);
        core::mem::forget(cmd);
        // SAFETY: the parked command holds the pool, which therefore outlives this call.
        unsafe { (*lots).set(index) };
        Ok(())
    }

    /// Takes back command `index` if it is parked in `lot`.
    pub fn unpark(&self, index: u32, lot: usize) -> Option<CmdRef> {
        if lot >= LOTS || index >= self.size() || !self.lots[lot].clear(index) {
            return None;
        }
        let ptr = NonNull::from(&self.slots[index as usize].cmd);
        // SAFETY: the bit was set by `park`, which forgot the only handle; clearing it gives
        // the handle back exactly once.
        Some(unsafe { CmdRef::from_parked(ptr) })
    }

    /// Whether command `index` is parked in `lot`.
    pub fn is_parked(&self, index: u32, lot: usize) -> bool {
        lot < LOTS && index < self.size() && self.lots[lot].test(index)
    }

    /// Whether any command is parked in `lot`.
    pub fn any_parked(&self, lot: usize) -> bool {
        lot < LOTS && self.lots[lot].any()
    }

    /// Takes back every command parked in `lot`, in index order.
    pub fn drain(&self, lot: usize, mut f: impl FnMut(CmdRef)) {
        if lot >= LOTS {
            return;
        }
        self.lots[lot].take_all(|index| {
            let ptr = NonNull::from(&self.slots[index as usize].cmd);
            // SAFETY: as in `unpark`: the bit stood for one forgotten handle.
            f(unsafe { CmdRef::from_parked(ptr) })
        });
    }

    /// Ends a command and frees its slot ([`CmdPool::release`]); one not from this type of
    /// pool is only released. Any context.
    pub fn end(cmd: CmdRef) {
        if let Err(cmd) = Self::release(cmd) {
            cmd.release();
        }
    }

    /// Ends a command: releases the core's hold on it ([`CmdRef::release`]) and frees its
    /// slot. Any context. Gives the command back if it is not from this type of pool.
    pub fn release(cmd: CmdRef) -> core::result::Result<(), CmdRef> {
        let Some(slot) = Self::slot_of(&cmd) else {
            return Err(cmd);
        };
        let slot = NonNull::from(slot);
        cmd.release();
        // SAFETY: the slot stays valid until its pool goes, which `hold` prevents until it is
        // dropped below; the released handle was its only user, and the slot is not free
        // (its bit is clear) until `free.set`.
        let (hold, index) = unsafe {
            let s = slot.as_ref();
            ((*s.hold.get()).take(), s.index)
        };
        if let Some(pool) = hold {
            pool.free.set(index);
            // The pool may go here, after the slot was last touched.
            drop(pool);
        }
        Ok(())
    }
}

/// A pool's owner whose thread answers the commands parked for it.
pub trait Answerer {
    /// The queue is gone: its commands are no longer answered.
    fn closing(&self) -> bool;
    /// Wakes the owner's thread.
    fn ring(&self);
}

impl<T: Answerer + Send + Sync + 'static, P: Send + 'static> CmdPool<Arc<T>, P> {
    /// Parks a command the core hands back in `lot` for the owner's thread and rings it (any
    /// context). A command whose owner is closing comes back, for the caller to end; one not
    /// from this type of pool, or that cannot be parked, is ended here.
    pub fn hand_over(cmd: CmdRef, lot: usize) -> Option<CmdRef> {
        let Some(owner) = Self::of(&cmd).map(|p| p.owner().clone()) else {
            cmd.release();
            return None;
        };
        if owner.closing() {
            return Some(cmd);
        }
        match Self::park(cmd, lot) {
            Ok(()) => owner.ring(),
            Err(cmd) => Self::end(cmd),
        }
        None
    }
}

/// A free slot of a pool: its holder alone may set it up and start its command.
pub struct FreeSlot<'a, O: Send + Sync + 'static, P: Send + 'static> {
    pool: &'a Arc<CmdPool<O, P>>,
    index: u32,
}

impl<O: Send + Sync + 'static, P: Send + 'static> FreeSlot<'_, O, P> {
    /// The slot's index in its pool.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The fabric's state of the slot.
    pub fn private(&mut self) -> &mut P {
        // SAFETY: the slot's free bit was taken by this value: nobody else reaches it.
        unsafe { &mut *self.pool.slots[self.index as usize].private.get() }
    }

    /// Starts the slot's command (the origin of `setup` is replaced by the pool's).
    pub fn start(self, mut setup: CmdSetup<'_>) -> CmdRef {
        let slot = &self.pool.slots[self.index as usize];
        setup.origin = TypeId::of::<CmdPool<O, P>>();
        // SAFETY: the slot is ours (free bit taken) and its command is not in flight.
        unsafe { *slot.hold.get() = Some(self.pool.clone()) };
        let ptr = NonNull::from(&slot.cmd);
        core::mem::forget(self);
        // SAFETY: the command was initialised by `Cmd::new_slot`, is pinned in its box, is
        // not in flight (the slot was free) and stays valid while it is: its `hold` keeps
        // the pool.
        unsafe { CmdRef::start(ptr, setup) }
    }
}

impl<O: Send + Sync + 'static, P: Send + 'static> Drop for FreeSlot<'_, O, P> {
    /// A slot taken and not started goes back to the free bitmap.
    fn drop(&mut self) {
        self.pool.free.set(self.index);
    }
}
