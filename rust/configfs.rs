// SPDX-License-Identifier: GPL-2.0

//! configfs with what LIO's tree needs and `kernel::configfs` lacks: default groups,
//! symlinks (`allow_link`/`drop_link`), per-attribute modes, and directories of different
//! kinds under one parent.
//!
//! The design is dynamic: every directory is a [`Node`], whose behaviour is a `dyn` [`Dir`]
//! and whose attribute names come from a shared [`Kind`]. A callback finds its node with
//! `container_of` and dispatches by attribute index, so there is one set of C trampolines for
//! the whole tree.
//!
//! C header: [`include/linux/configfs.h`](srctree/include/linux/configfs.h)

use super::bindings;
use core::any::Any;
use core::ptr::{self, NonNull};
use kernel::error::to_result;
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::Opaque;

/// Most attributes one [`Kind`] may have (LIO's largest, `attrib/`, has 43).
pub const MAX_ATTRS: usize = 64;

/// configfs refuses a `show` of 4096 bytes or more, whatever the page size.
const SHOW_MAX: usize = 4095;

/// One attribute file: its name and its mode.
#[derive(Clone, Copy)]
pub struct Attr {
    name: &'static CStr,
    mode: u16,
}

impl Attr {
    /// A read-only attribute (mode 0444).
    pub const fn ro(name: &'static CStr) -> Self {
        Attr { name, mode: 0o444 }
    }
    /// A read-write attribute (mode 0644).
    pub const fn rw(name: &'static CStr) -> Self {
        Attr { name, mode: 0o644 }
    }
    /// A write-only attribute (mode 0200).
    pub const fn wo(name: &'static CStr) -> Self {
        Attr { name, mode: 0o200 }
    }
    /// Read-only or read-write by `writable`.
    pub const fn new(name: &'static CStr, writable: bool) -> Self {
        if writable {
            Self::rw(name)
        } else {
            Self::ro(name)
        }
    }
}

/// The behaviour of one directory. Attribute callbacks receive the attribute's name, as listed
/// in the directory's [`Kind`]. Defaults refuse, with the errno configfs itself would give.
pub trait Dir: Send + Sync + 'static {
    /// Formats attribute `attr` into `page`; returns the length.
    fn show(&self, _attr: &[u8], _page: &mut [u8]) -> Result<usize> {
        Err(EINVAL)
    }
    /// Parses a write to attribute `attr`.
    fn store(&self, _attr: &[u8], _data: &[u8]) -> Result {
        Err(EINVAL)
    }
    /// `mkdir <name>` in this directory.
    fn make_dir(&self, _name: &CStr) -> Result<NewNode> {
        Err(EPERM)
    }
    /// `rmdir` of a child made by [`Dir::make_dir`]. The child is released afterwards.
    fn drop_dir(&self, _child: &Node) {}
    /// `ln -s <target> <this dir>/<name>`.
    fn allow_link(&self, _target: &Node) -> Result {
        Err(EPERM)
    }
    /// Removal of a symlink that [`Dir::allow_link`] accepted.
    fn drop_link(&self, _target: &Node) {}
    /// For downcasting a symlink target or child to its concrete type.
    fn as_any(&self) -> &dyn Any;
}

/// A kind of directory: the C item type and attribute table that its nodes share.
///
/// # Invariants
///
/// `ptrs` holds `attrs.len()` pointers into `attrs` followed by a null, and `item_type`
/// points `ct_attrs` at `ptrs`. The pinned allocation never moves.
#[pin_data]
pub struct Kind {
    #[pin]
    item_type: Opaque<bindings::config_item_type>,
    attrs: KVec<Opaque<bindings::configfs_attribute>>,
    ptrs: KVec<*mut bindings::configfs_attribute>,
}

// SAFETY: after construction a `Kind` is only read (by configfs, under its own locking).
unsafe impl Send for Kind {}
// SAFETY: as above.
unsafe impl Sync for Kind {}

impl Kind {
    /// Builds a kind whose files are `attrs` then `more`, owned by `module` (configfs pins the
    /// owner while a file is open or a directory of this kind exists).
    pub fn new(module: &'static ThisModule, attrs: &[Attr]) -> Result<Arc<Kind>> {
        Self::new2(module, attrs, &[])
    }

    /// [`Kind::new`] with attributes from two lists (e.g. a fabric's and the core's).
    pub fn new2(module: &'static ThisModule, first: &[Attr], more: &[Attr]) -> Result<Arc<Kind>> {
        let n = first.len() + more.len();
        if n > MAX_ATTRS {
            return Err(EINVAL);
        }
        let mut attrs = KVec::with_capacity(n, GFP_KERNEL)?;
        for a in Iterator::chain(first.iter(), more.iter()) {
            attrs.push(*a, GFP_KERNEL)?;
        }
        let mut cattrs = KVec::with_capacity(n, GFP_KERNEL)?;
        for (i, a) in attrs.iter().enumerate() {
            let c = bindings::configfs_attribute {
                ca_name: a.name.as_char_ptr(),
                ca_owner: module.as_ptr(),
                ca_mode: a.mode,
                show: if a.mode & 0o444 != 0 {
                    Some(SHOW[i])
                } else {
                    None
                },
                store: if a.mode & 0o222 != 0 {
                    Some(STORE[i])
                } else {
                    None
                },
            };
            cattrs.push(Opaque::new(c), GFP_KERNEL)?;
        }
        let mut ptrs = KVec::with_capacity(n + 1, GFP_KERNEL)?;
        for a in cattrs.iter() {
            ptrs.push(a.get(), GFP_KERNEL)?;
        }
        ptrs.push(ptr::null_mut(), GFP_KERNEL)?;
        let ct_attrs = ptrs.as_mut_ptr();
        Arc::pin_init(
            try_pin_init!(Kind {
                item_type: Opaque::new(bindings::config_item_type {
                    ct_owner: module.as_ptr(),
                    ct_item_ops: &ITEM_OPS,
                    ct_group_ops: &GROUP_OPS,
                    ct_attrs,
                    ct_bin_attrs: ptr::null_mut(),
                }),
                attrs: cattrs,
                ptrs,
            }? Error),
            GFP_KERNEL,
        )
    }
}

/// A configfs directory. Every node embeds a `configfs_subsystem` so that a subsystem's root
/// and ordinary groups share one layout; ordinary groups use only its `su_group`.
///
/// # Invariants
///
/// `sub.su_group` was initialised with `kind`'s item type; the node is heap-allocated by
/// [`NewNode::new`] and freed only by [`release`], when configfs drops the last reference.
pub struct Node {
    sub: Opaque<bindings::configfs_subsystem>,
    kind: Arc<Kind>,
    dir: Arc<dyn Dir>,
}

/// A node that has not been handed to configfs yet. Dropping it frees it.
pub struct NewNode(NonNull<Node>);

// SAFETY: a `NewNode` is uniquely owned until handed over; the `Dir` it holds is `Send`.
unsafe impl Send for NewNode {}

impl NewNode {
    /// Allocates a directory called `name` of `kind`, behaving as `dir`.
    pub fn new(name: &CStr, kind: &Arc<Kind>, dir: Arc<dyn Dir>) -> Result<NewNode> {
        let node = KBox::new(
            Node {
                sub: Opaque::zeroed(),
                kind: kind.clone(),
                dir,
            },
            GFP_KERNEL,
        )?;
        let node = NonNull::new(KBox::into_raw(node)).ok_or(ENOMEM)?;
        // SAFETY: the node was just allocated and zeroed; `name` is NUL-terminated and is
        // copied; the item type lives as long as the node (the node holds its `Arc<Kind>`).
        unsafe {
            bindings::config_group_init_type_name(
                Node::group_ptr(node.as_ptr()),
                name.as_char_ptr(),
                kind.item_type.get(),
            )
        };
        let node = NewNode(node);
        // SAFETY: the group was just initialised; a long name is copied to the heap, which
        // can fail and leave no name.
        if unsafe {
            (*Node::group_ptr(node.0.as_ptr()))
                .cg_item
                .ci_name
                .is_null()
        } {
            return Err(ENOMEM);
        }
        Ok(node)
    }

    /// Adds `child` as a default group: created and removed together with this directory.
    pub fn add_default(&mut self, child: NewNode) {
        let child = core::mem::ManuallyDrop::new(child);
        // SAFETY: both groups are initialised; the parent's `default_groups` list now owns the
        // child's initial reference, which `release` of the parent puts.
        unsafe {
            bindings::rt_configfs_add_default_group(
                Node::group_ptr(child.0.as_ptr()),
                Node::group_ptr(self.0.as_ptr()),
            )
        };
    }

    /// Adds a new default group named `name` of `kind` (builder form of [`NewNode::add_default`]).
    pub fn with_default(
        mut self,
        name: &CStr,
        kind: &Arc<Kind>,
        dir: Arc<dyn Dir>,
    ) -> Result<Self> {
        self.add_default(NewNode::new(name, kind, dir)?);
        Ok(self)
    }

    fn into_group(self) -> *mut bindings::config_group {
        let node = core::mem::ManuallyDrop::new(self);
        Node::group_ptr(node.0.as_ptr())
    }
}

impl Drop for NewNode {
    fn drop(&mut self) {
        // SAFETY: the node is initialised and nothing else references it; putting its initial
        // reference runs `release`, which frees it and its default groups.
        unsafe { bindings::config_item_put(&raw mut (*Node::group_ptr(self.0.as_ptr())).cg_item) };
    }
}

impl Node {
    fn group_ptr(node: *mut Node) -> *mut bindings::config_group {
        // SAFETY: computing a field address inside an allocation; no dereference.
        unsafe { &raw mut (*Opaque::cast_into(&raw const (*node).sub)).su_group }
    }

    /// The node that embeds `item`, if `item` is one of ours (its type uses our operations).
    ///
    /// # Safety
    ///
    /// `item` must be a live config item, valid for `'a`.
    unsafe fn from_item<'a>(item: *mut bindings::config_item) -> Option<&'a Node> {
        // SAFETY: by the function's requirements, and a `Node` is live while its item is.
        unsafe { Node::ptr_from_item(item).map(|n| &*n) }
    }

    /// The node that embeds `item`, as a raw pointer (for `release`, which frees it).
    ///
    /// # Safety
    ///
    /// `item` must be a live config item.
    unsafe fn ptr_from_item(item: *mut bindings::config_item) -> Option<*mut Node> {
        // SAFETY: by the function's requirements `item` is live.
        let ty = unsafe { (*item).ci_type };
        // SAFETY: a live item's type, if any, outlives it.
        if ty.is_null() || !ptr::eq(unsafe { (*ty).ct_item_ops }, &ITEM_OPS) {
            return None;
        }
        // SAFETY: items with our operations are the `su_group.cg_item` of a `Node`.
        unsafe {
            let group = kernel::container_of!(item, bindings::config_group, cg_item);
            let sub = kernel::container_of!(group, bindings::configfs_subsystem, su_group);
            Some(kernel::container_of!(
                sub.cast::<Opaque<bindings::configfs_subsystem>>(),
                Node,
                sub
            ))
        }
    }

    /// The directory's behaviour.
    pub fn dir(&self) -> &Arc<dyn Dir> {
        &self.dir
    }

    /// The directory's behaviour as concrete type `T`, if it is one.
    pub fn downcast<T: Dir>(&self) -> Option<&T> {
        self.dir.as_any().downcast_ref::<T>()
    }

    fn attr_name(&self, i: usize) -> &[u8] {
        // SAFETY: `attrs[i]` was initialised in `Kind::new` with a `'static` name.
        unsafe { CStr::from_char_ptr((*self.kind.attrs[i].get()).ca_name).to_bytes() }
    }
}

/// A registered configfs subsystem (a directory under `/sys/kernel/config`).
///
/// # Invariants
///
/// `node` is a registered subsystem until drop.
pub struct Subsystem {
    node: NonNull<Node>,
}

// SAFETY: the subsystem is only unregistered (in drop); configfs locks internally.
unsafe impl Send for Subsystem {}
// SAFETY: as above.
unsafe impl Sync for Subsystem {}

impl Subsystem {
    /// Registers `root` (with its default groups) as a subsystem named after it.
    pub fn register(root: NewNode) -> Result<Subsystem> {
        let node = core::mem::ManuallyDrop::new(root).0;
        let sub = Opaque::cast_into(
            // SAFETY: field address inside the live node.
            unsafe { &raw const (*node.as_ptr()).sub },
        );
        // SAFETY: `su_mutex` is part of the zeroed, not yet registered subsystem.
        unsafe {
            bindings::__mutex_init(
                &raw mut (*sub).su_mutex,
                kernel::optional_name!().as_char_ptr(),
                kernel::static_lock_class!().as_ptr(),
            )
        };
        // SAFETY: the group is initialised and the mutex too; configfs takes over.
        let ret = unsafe { bindings::configfs_register_subsystem(sub) };
        if let Err(e) = to_result(ret) {
            // SAFETY: the mutex was initialised above and the subsystem is not registered.
            unsafe { bindings::mutex_destroy(&raw mut (*sub).su_mutex) };
            drop(NewNode(node));
            return Err(e);
        }
        Ok(Subsystem { node })
    }
}

impl Drop for Subsystem {
    fn drop(&mut self) {
        let node = self.node.as_ptr();
        // SAFETY: registered, by the type invariant. After unregistering, the root's initial
        // reference is ours to put, which frees it and its default groups.
        unsafe {
            let sub = Opaque::cast_into(&raw const (*node).sub);
            bindings::configfs_unregister_subsystem(sub);
            bindings::mutex_destroy(&raw mut (*sub).su_mutex);
        }
        drop(NewNode(self.node));
    }
}

/// Runs `f` on the node behind `item`, or returns `err` if it is not ours.
///
/// # Safety
///
/// `item` must be live for the duration of the call.
unsafe fn with_node<R>(item: *mut bindings::config_item, err: R, f: impl FnOnce(&Node) -> R) -> R {
    // SAFETY: by the function's requirements.
    match unsafe { Node::from_item(item) } {
        Some(n) => f(n),
        None => err,
    }
}

/// configfs `show` of attribute `I`.
///
/// # Safety
///
/// `item` is a live config item and `page` a PAGE_SIZE buffer, as configfs guarantees.
unsafe extern "C" fn show<const I: usize>(
    item: *mut bindings::config_item,
    page: *mut u8,
) -> isize {
    // SAFETY: configfs passes a live item and a zeroed buffer of PAGE_SIZE bytes.
    unsafe {
        with_node(item, EINVAL.to_errno() as isize, |n| {
            let page = core::slice::from_raw_parts_mut(page, PAGE_SIZE.min(SHOW_MAX));
            match n.dir.show(n.attr_name(I), page) {
                Ok(len) => len.min(SHOW_MAX) as isize,
                Err(e) => e.to_errno() as isize,
            }
        })
    }
}

/// configfs `store` of attribute `I`.
///
/// # Safety
///
/// `item` is a live config item and `page` holds `count` bytes, as configfs guarantees.
unsafe extern "C" fn store<const I: usize>(
    item: *mut bindings::config_item,
    page: *const u8,
    count: usize,
) -> isize {
    // SAFETY: configfs passes a live item and `count` bytes of user data.
    unsafe {
        with_node(item, EINVAL.to_errno() as isize, |n| {
            let data = core::slice::from_raw_parts(page, count);
            match n.dir.store(n.attr_name(I), data) {
                Ok(()) => count as isize,
                Err(e) => e.to_errno() as isize,
            }
        })
    }
}

macro_rules! trampolines {
    ($f:ident, $t:ty, $($i:literal)*) => { [$($f::<$i> as $t,)*] };
}
type ShowFn = unsafe extern "C" fn(*mut bindings::config_item, *mut u8) -> isize;
type StoreFn = unsafe extern "C" fn(*mut bindings::config_item, *const u8, usize) -> isize;
static SHOW: [ShowFn; MAX_ATTRS] = trampolines!(show, ShowFn,
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
    32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63);
static STORE: [StoreFn; MAX_ATTRS] = trampolines!(store, StoreFn,
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
    32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63);

/// Frees a node when configfs drops its last reference.
///
/// # Safety
///
/// Called by configfs exactly once per item, with no other reference left.
unsafe extern "C" fn release(item: *mut bindings::config_item) {
    // SAFETY: configfs releases each item once, when its last reference goes.
    unsafe {
        if let Some(node) = Node::ptr_from_item(item) {
            bindings::configfs_remove_default_groups(Node::group_ptr(node));
            drop(KBox::from_raw(node));
        }
    }
}

/// `symlink(2)` into a directory of ours.
///
/// # Safety
///
/// Both items are live for the call, as configfs guarantees.
unsafe extern "C" fn allow_link(
    src: *mut bindings::config_item,
    target: *mut bindings::config_item,
) -> i32 {
    // SAFETY: configfs holds both items for the call.
    unsafe {
        with_node(src, EPERM.to_errno(), |s| match Node::from_item(target) {
            Some(t) => s.dir.allow_link(t).map_or_else(|e| e.to_errno(), |()| 0),
            None => EINVAL.to_errno(),
        })
    }
}

/// `unlink(2)` of a symlink [`allow_link`] accepted.
///
/// # Safety
///
/// Both items are live for the call, as configfs guarantees.
unsafe extern "C" fn drop_link(
    src: *mut bindings::config_item,
    target: *mut bindings::config_item,
) {
    // SAFETY: configfs holds both items for the call.
    unsafe {
        with_node(src, (), |s| {
            if let Some(t) = Node::from_item(target) {
                s.dir.drop_link(t)
            }
        })
    }
}

/// `mkdir(2)` in a directory of ours.
///
/// # Safety
///
/// `group` is live and `name` NUL-terminated, as configfs guarantees.
unsafe extern "C" fn make_group(
    group: *mut bindings::config_group,
    name: *const kernel::ffi::c_char,
) -> *mut bindings::config_group {
    // SAFETY: configfs passes a live parent group and a NUL-terminated name.
    unsafe {
        with_node(&raw mut (*group).cg_item, EPERM.to_ptr(), |n| {
            match n.dir.make_dir(CStr::from_char_ptr(name)) {
                Ok(child) => child.into_group(),
                Err(e) => e.to_ptr(),
            }
        })
    }
}

/// `rmdir(2)` of a child made by [`make_group`].
///
/// # Safety
///
/// Both are live and the caller hands us the child's reference, as configfs guarantees.
unsafe extern "C" fn drop_item(
    group: *mut bindings::config_group,
    item: *mut bindings::config_item,
) {
    // SAFETY: configfs passes a live parent and child; we then put the child's reference, as
    // the C contract of drop_item requires.
    unsafe {
        with_node(&raw mut (*group).cg_item, (), |p| {
            if let Some(c) = Node::from_item(item) {
                p.dir.drop_dir(c)
            }
        });
        bindings::config_item_put(item);
    }
}

static ITEM_OPS: bindings::configfs_item_operations = bindings::configfs_item_operations {
    release: Some(release),
    allow_link: Some(allow_link),
    drop_link: Some(drop_link),
};

static GROUP_OPS: bindings::configfs_group_operations = bindings::configfs_group_operations {
    make_item: None,
    make_group: Some(make_group),
    disconnect_notify: None,
    drop_item: Some(drop_item),
    is_visible: None,
    is_bin_visible: None,
};

/// Copies `s` into a configfs page and returns its length (for [`Dir::show`]).
pub fn emit(page: &mut [u8], s: &[u8]) -> usize {
    let n = s.len().min(page.len());
    page[..n].copy_from_slice(&s[..n]);
    n
}

/// [`emit`] followed by a newline.
pub fn emit_line(page: &mut [u8], s: &[u8]) -> usize {
    let n = emit(page, s);
    n + emit(&mut page[n..], b"\n")
}

/// A configfs write without its one trailing newline.
pub fn strip_nl(data: &[u8]) -> &[u8] {
    data.strip_suffix(b"\n").unwrap_or(data)
}
