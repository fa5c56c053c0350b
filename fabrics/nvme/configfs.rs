// SPDX-License-Identifier: GPL-2.0

//! `target/nvme/`: nvmet's configfs names, one to one, under rtarget's root, so nvmetcli's
//! JSON and nvmet scripts carry over by changing only the root.
//!
//! ```text
//! nvme/                               discovery_nqn
//! ├─ subsystems/<nqn>/                attr_*
//! │  ├─ allowed_hosts/<hostnqn> → hosts/<hostnqn>
//! │  └─ namespaces/<nsid>/            enable device_path device_uuid device_nguid ana_grpid
//! │                                   resv_enable, <link> → core/<hba>/<dev>
//! ├─ ports/<id>/                      addr_* param_*
//! │  ├─ subsystems/<nqn> → subsystems/<nqn>
//! │  ├─ referrals/<name>/             addr_* portid enable
//! │  └─ ana_groups/<grpid>/           ana_state (group 1 built in)
//! └─ hosts/<hostnqn>/
//! ```
//!
//! Each port and subsystem has locks of its own: enabling one port (binding its socket,
//! which may be slow) serialises nothing else.

use crate::ctrl::Ctrl;
use crate::log::ana;
use core::any::Any;
use core::fmt::Write;
use kernel::prelude::*;
use kernel::str::{CString, Formatter};
use kernel::sync::atomic::{ordering::Relaxed, Atomic};
use kernel::sync::{Arc, Mutex};
use kernel::time::{delay::fsleep, Delta};
use rtarget_core::device::Device;
use rtarget_core::fabric::device_of;
use rtarget_core::lun::{Lun, Port};
use rtarget_core::proto::spc::Proto;
use rtarget_core::rt::configfs::{emit_line, strip_nl, Attr, Dir, Kind, NewNode, Node};
use rtarget_core::rt::module_ref::ModuleRef;
use rtarget_core::rt::net::{Acceptor, AcceptorSetup, SockAddr, Stream};

/// The well-known discovery NQN.
pub(crate) const DISCOVERY_NQN: &[u8] = b"nqn.2014-08.org.nvmexpress.discovery";
/// Longest NQN (NVMe Base 2.0: 223 bytes).
const NQN_MAX: usize = 223;
/// Largest NSID a namespace directory takes: the NN controllers report.
const NSID_MAX: u32 = crate::ctrl::MAX_NSID;
/// Pending connections per port.
const BACKLOG: i32 = 256;
/// Connections per port at most.
const MAX_CONNS: usize = 1024;

fn show(page: &mut [u8], args: core::fmt::Arguments<'_>) -> Result<usize> {
    let mut f = Formatter::new(page);
    f.write_fmt(args).map_err(|_| EOVERFLOW)?;
    Ok(f.bytes_written())
}

fn parse<T: core::str::FromStr>(data: &[u8]) -> Result<T> {
    core::str::from_utf8(strip_nl(data))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or(EINVAL)
}

fn parse_bool(data: &[u8]) -> Result<bool> {
    match strip_nl(data) {
        b"1" | b"y" | b"Y" => Ok(true),
        b"0" | b"n" | b"N" => Ok(false),
        _ => Err(EINVAL),
    }
}

fn cstring(v: &[u8]) -> Result<CString> {
    let s = core::str::from_utf8(v).map_err(|_| EINVAL)?;
    if v.contains(&0) {
        return Err(EINVAL);
    }
    CString::try_from_fmt(format_args!("{s}"))
}

/// 16 bytes as 32 hex digits with dashes at 8-4-4-4-12 (`uuid`) or without (`nguid`).
fn show_id(page: &mut [u8], id: &[u8; 16], dashes: bool) -> Result<usize> {
    let mut f = Formatter::new(page);
    for (i, b) in id.iter().enumerate() {
        if dashes && matches!(i, 4 | 6 | 8 | 10) {
            f.write_str("-").map_err(|_| EOVERFLOW)?;
        }
        write!(f, "{b:02x}").map_err(|_| EOVERFLOW)?;
    }
    f.write_str("\n").map_err(|_| EOVERFLOW)?;
    Ok(f.bytes_written())
}

/// The item types of the tree.
struct Kinds {
    empty: Arc<Kind>,
    root: Arc<Kind>,
    subsys: Arc<Kind>,
    ns: Arc<Kind>,
    port: Arc<Kind>,
    referral: Arc<Kind>,
    ana_group: Arc<Kind>,
}

const SUBSYS_ATTRS: &[Attr] = &[
    Attr::rw(c"attr_allow_any_host"),
    Attr::rw(c"attr_version"),
    Attr::rw(c"attr_serial"),
    Attr::rw(c"attr_model"),
    Attr::rw(c"attr_cntlid_min"),
    Attr::rw(c"attr_cntlid_max"),
    Attr::rw(c"attr_qid_max"),
    Attr::rw(c"attr_ieee_oui"),
    Attr::rw(c"attr_firmware"),
];

const PORT_ADDR_ATTRS: &[Attr] = &[
    Attr::rw(c"addr_trtype"),
    Attr::rw(c"addr_adrfam"),
    Attr::rw(c"addr_traddr"),
    Attr::rw(c"addr_trsvcid"),
    Attr::rw(c"addr_treq"),
];

impl Kinds {
    fn new(m: &'static ThisModule) -> Result<Kinds> {
        Ok(Kinds {
            empty: Kind::new(m, &[])?,
            root: Kind::new(m, &[Attr::rw(c"discovery_nqn")])?,
            subsys: Kind::new(m, SUBSYS_ATTRS)?,
            ns: Kind::new(
                m,
                &[
                    Attr::rw(c"enable"),
                    Attr::ro(c"device_path"),
                    Attr::rw(c"device_uuid"),
                    Attr::rw(c"device_nguid"),
                    Attr::rw(c"ana_grpid"),
                    Attr::rw(c"resv_enable"),
                ],
            )?,
            port: Kind::new2(
                m,
                PORT_ADDR_ATTRS,
                &[
                    Attr::rw(c"param_inline_data_size"),
                    Attr::rw(c"param_max_queue_size"),
                ],
            )?,
            referral: Kind::new2(
                m,
                PORT_ADDR_ATTRS,
                &[Attr::rw(c"portid"), Attr::rw(c"enable")],
            )?,
            ana_group: Kind::new(m, &[Attr::rw(c"ana_state")])?,
        })
    }
}

/// What the whole tree shares: the subsystems and ports by name, for Connect and discovery.
#[pin_data]
pub(crate) struct Nvme {
    kinds: Kinds,
    #[pin]
    subsystems: Mutex<KVec<Arc<Subsys>>>,
    #[pin]
    pub(crate) discovery_nqn: Mutex<CString>,
    /// Discovery log generation counter: bumped by every change a discovery log shows.
    pub(crate) genctr: Atomic<u64>,
    #[pin]
    ports: Mutex<KVec<Arc<NvPort>>>,
}

impl Nvme {
    /// A change the discovery log shows: its generation moves and the discovery controllers
    /// that asked are told.
    pub(crate) fn discovery_changed(&self) {
        self.genctr.fetch_add(1, Relaxed);
        let mut ports: KVec<Arc<NvPort>> = KVec::new();
        for p in self.ports.lock().iter() {
            let _ = ports.push(p.clone(), GFP_KERNEL);
        }
        for p in ports.iter() {
            p.for_each_ctrl(|c| {
                if c.is_discovery() {
                    c.event(crate::admin::aen::DISC_CHANGE);
                }
            });
        }
    }
}

/// `target/nvme`: holds the module while it exists.
struct Root {
    nvme: Arc<Nvme>,
    _owner: ModuleRef,
}

impl Dir for Root {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        match attr {
            b"discovery_nqn" => Ok(emit_line(page, self.nvme.discovery_nqn.lock().to_bytes())),
            _ => Err(EINVAL),
        }
    }
    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        let v = strip_nl(data);
        if attr != b"discovery_nqn" || v.is_empty() || v.len() > NQN_MAX {
            return Err(EINVAL);
        }
        // Not the name of a subsystem (nvmet refuses it too).
        if self.nvme.subsystem(v).is_some() {
            return Err(EINVAL);
        }
        *self.nvme.discovery_nqn.lock() = cstring(v)?;
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `mkdir target/nvme`.
pub(crate) fn make_root(
    name: &CStr,
    owner: ModuleRef,
    module: &'static ThisModule,
) -> Result<NewNode> {
    let nvme = Arc::pin_init(
        try_pin_init!(Nvme {
            kinds: Kinds::new(module)?,
            subsystems <- kernel::new_mutex!(KVec::new()),
            discovery_nqn <- kernel::new_mutex!(CString::try_from_fmt(format_args!(
                "{}",
                core::str::from_utf8(DISCOVERY_NQN).map_err(|_| EINVAL)?
            ))?),
            genctr: Atomic::new(0),
            ports <- kernel::new_mutex!(KVec::new()),
        }? Error),
        GFP_KERNEL,
    )?;
    let k = &nvme.kinds;
    let mut root = NewNode::new(
        name,
        &k.root,
        Arc::new(
            Root {
                nvme: nvme.clone(),
                _owner: owner,
            },
            GFP_KERNEL,
        )?,
    )?;
    root.add_default(NewNode::new(
        c"subsystems",
        &k.empty,
        Arc::new(SubsystemsDir(nvme.clone()), GFP_KERNEL)?,
    )?);
    root.add_default(NewNode::new(
        c"ports",
        &k.empty,
        Arc::new(PortsDir(nvme.clone()), GFP_KERNEL)?,
    )?);
    root.add_default(NewNode::new(
        c"hosts",
        &k.empty,
        Arc::new(HostsDir(nvme.clone()), GFP_KERNEL)?,
    )?);
    Ok(root)
}

impl Nvme {
    /// The subsystem named `nqn`.
    pub(crate) fn subsystem(&self, nqn: &[u8]) -> Option<Arc<Subsys>> {
        self.subsystems
            .lock()
            .iter()
            .find(|s| s.nqn.to_bytes() == nqn)
            .cloned()
    }
}

/// `subsystems/`.
struct SubsystemsDir(Arc<Nvme>);

impl Dir for SubsystemsDir {
    fn make_dir(&self, name: &CStr) -> Result<NewNode> {
        let n = name.to_bytes();
        if n.len() > NQN_MAX || n == DISCOVERY_NQN || self.0.discovery_nqn.lock().to_bytes() == n {
            return Err(EINVAL);
        }
        let s = Subsys::new(name, &self.0)?;
        let k = &self.0.kinds;
        let mut node = NewNode::new(name, &k.subsys, s.clone())?;
        node.add_default(NewNode::new(
            c"namespaces",
            &k.empty,
            Arc::new(NamespacesDir(s.clone()), GFP_KERNEL)?,
        )?);
        node.add_default(NewNode::new(
            c"allowed_hosts",
            &k.empty,
            Arc::new(AllowedHosts(s.clone()), GFP_KERNEL)?,
        )?);
        self.0.subsystems.lock().push(s, GFP_KERNEL)?;
        Ok(node)
    }
    fn drop_dir(&self, child: &Node) {
        if let Some(s) = child.downcast::<Subsys>() {
            self.0.subsystems.lock().retain(|x| !core::ptr::eq(&**x, s));
            // Its controllers go with it (their ports' links are gone already).
            s.end_ctrls();
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A subsystem's `attr_*` values.
struct SubsysAttrs {
    allow_any_host: bool,
    version: u32,
    serial: [u8; 20],
    serial_len: usize,
    model: [u8; 40],
    model_len: usize,
    firmware: [u8; 8],
    firmware_len: usize,
    cntlid_min: u16,
    cntlid_max: u16,
    qid_max: u16,
    ieee_oui: u32,
}

/// `subsystems/<nqn>`: an NVM subsystem. Its namespaces are the LUNs of a core port.
#[pin_data]
pub(crate) struct Subsys {
    pub(crate) nqn: CString,
    pub(crate) nvme: Arc<Nvme>,
    /// The core's view: one LUN per enabled namespace, numbered by NSID.
    pub(crate) core_port: Arc<Port>,
    #[pin]
    attrs: Mutex<SubsysAttrs>,
    #[pin]
    allowed: Mutex<KVec<CString>>,
    #[pin]
    namespaces: Mutex<KVec<Arc<Ns>>>,
    #[pin]
    ctrls: Mutex<KVec<Arc<Ctrl>>>,
    /// Where the next dynamic controller ID search starts.
    next_cntlid: Atomic<u32>,
    /// Attributes that cannot change once a host has connected are then refused.
    connected: Atomic<bool>,
    /// Each namespace's ANA group, read by every I/O command without a lock.
    pub(crate) ns_groups: NsGroups,
}

/// The ANA group of each NSID (1 until `ana_grpid` says otherwise), one atomic per NSID.
pub(crate) struct NsGroups([Atomic<i8>; NSID_MAX as usize]);

// Stored as `grpid - 1` in an `i8`'s bits: groups are 1..=128.
const _: () = assert!(crate::identify::ANA_GROUPS <= 256);

impl NsGroups {
    fn new() -> Self {
        NsGroups([const { Atomic::new(0) }; NSID_MAX as usize])
    }

    /// The group of `nsid`; 1 for an NSID out of range (refused later as such).
    pub(crate) fn get(&self, nsid: u32) -> u32 {
        let slot = nsid.checked_sub(1).and_then(|i| self.0.get(i as usize));
        slot.map_or(1, |g| u32::from(g.load(Relaxed) as u8) + 1)
    }

    fn set(&self, nsid: u32, grpid: u32) {
        if let (Some(slot), Ok(v)) = (
            nsid.checked_sub(1).and_then(|i| self.0.get(i as usize)),
            u8::try_from(grpid.wrapping_sub(1)),
        ) {
            slot.store(v as i8, Relaxed);
        }
    }
}

/// What a controller reports of its subsystem.
pub(crate) struct SubsysInfo {
    pub(crate) version: u32,
    pub(crate) serial: [u8; 20],
    pub(crate) serial_len: usize,
    pub(crate) model: [u8; 40],
    pub(crate) model_len: usize,
    pub(crate) firmware: [u8; 8],
    pub(crate) firmware_len: usize,
    pub(crate) ieee_oui: u32,
    pub(crate) qid_max: u16,
}

impl Subsys {
    fn new(nqn: &CStr, nvme: &Arc<Nvme>) -> Result<Arc<Subsys>> {
        // nvmet's default serial: 16 random hex digits.
        let mut rnd = [0u8; 8];
        rtarget_core::rt::crypto::random_bytes(&mut rnd);
        let mut serial = [0u8; 20];
        for (i, b) in rnd.iter().enumerate() {
            let hex = b"0123456789abcdef";
            serial[2 * i] = hex[usize::from(b >> 4)];
            serial[2 * i + 1] = hex[usize::from(b & 15)];
        }
        let mut model = [0u8; 40];
        let m = b"Linux";
        model[..m.len()].copy_from_slice(m);
        let mut firmware = [0u8; 8];
        let fw = b"7.3";
        firmware[..fw.len()].copy_from_slice(fw);
        Arc::pin_init(
            try_pin_init!(Subsys {
                nqn: nqn.to_cstring()?,
                nvme: nvme.clone(),
                // NVMe hosts appear to the core's reservations as name-identified nexuses.
                core_port: Port::new(c"nvme", Proto::Iscsi, nqn, 1)?,
                attrs <- kernel::new_mutex!(SubsysAttrs {
                    allow_any_host: false,
                    version: crate::identify::VERSION,
                    serial,
                    serial_len: 16,
                    model,
                    model_len: m.len(),
                    firmware,
                    firmware_len: fw.len(),
                    cntlid_min: 1,
                    cntlid_max: 0xffef,
                    qid_max: 128,
                    ieee_oui: 0,
                }),
                allowed <- kernel::new_mutex!(KVec::new()),
                namespaces <- kernel::new_mutex!(KVec::new()),
                ctrls <- kernel::new_mutex!(KVec::new()),
                next_cntlid: Atomic::new(0),
                connected: Atomic::new(false),
                ns_groups: NsGroups::new(),
            }? Error),
            GFP_KERNEL,
        )
    }

    /// Whether `hostnqn` may connect.
    pub(crate) fn allows(&self, hostnqn: &[u8]) -> bool {
        self.attrs.lock().allow_any_host
            || self
                .allowed
                .lock()
                .iter()
                .any(|h| h.to_bytes() == hostnqn)
    }

    pub(crate) fn info(&self) -> SubsysInfo {
        let a = self.attrs.lock();
        SubsysInfo {
            version: a.version,
            serial: a.serial,
            serial_len: a.serial_len,
            model: a.model,
            model_len: a.model_len,
            firmware: a.firmware,
            firmware_len: a.firmware_len,
            ieee_oui: a.ieee_oui,
            qid_max: a.qid_max,
        }
    }

    /// Registers a new controller with a free ID in `attr_cntlid_min..=max` (`want`: the
    /// static ID a host asks for, 0xFFFF for any).
    pub(crate) fn add_ctrl(&self, make: impl FnOnce(u16) -> Result<Arc<Ctrl>>) -> Result<Arc<Ctrl>> {
        self.connected.store(true, Relaxed);
        let (min, max) = {
            let a = self.attrs.lock();
            (a.cntlid_min, a.cntlid_max)
        };
        let mut ctrls = self.ctrls.lock();
        ctrls.reserve(1, GFP_KERNEL)?;
        let span = u32::from(max - min) + 1;
        let start = self.next_cntlid.fetch_add(1, Relaxed);
        let id = (0..span)
            .map(|i| min + ((start.wrapping_add(i)) % span) as u16)
            .find(|id| !ctrls.iter().any(|c| c.cntlid == *id))
            .ok_or(EBUSY)?;
        let c = make(id)?;
        ctrls.push(c.clone(), GFP_KERNEL)?;
        Ok(c)
    }

    pub(crate) fn remove_ctrl(&self, c: &Ctrl) {
        self.ctrls.lock().retain(|x| !core::ptr::eq(&**x, c));
    }

    /// The live controller `cntlid` of `hostnqn` (an I/O queue's Connect).
    pub(crate) fn ctrl(&self, cntlid: u16, hostnqn: &[u8]) -> Option<Arc<Ctrl>> {
        self.ctrls
            .lock()
            .iter()
            .find(|c| c.cntlid == cntlid && c.hostnqn.to_bytes() == hostnqn)
            .cloned()
    }

    fn snapshot_ctrls(&self) -> KVec<Arc<Ctrl>> {
        let mut v = KVec::new();
        for c in self.ctrls.lock().iter() {
            let _ = v.push(c.clone(), GFP_KERNEL);
        }
        v
    }

    /// Ends every controller (the subsystem goes).
    fn end_ctrls(&self) {
        for c in self.snapshot_ctrls().iter() {
            c.end();
        }
    }

    /// Ends the controllers connected through `port` (its link to the subsystem goes).
    fn end_ctrls_on(&self, port: &NvPort) {
        for c in self.snapshot_ctrls().iter() {
            if c.port_id == port.id {
                c.end();
            }
        }
    }

    /// A namespace moved to another ANA group: each controller's ANA log changes.
    fn ana_changed(&self) {
        for c in self.snapshot_ctrls().iter() {
            c.ana_changed();
        }
    }

    /// Tells every controller that namespace `nsid` changed.
    fn ns_changed(&self, nsid: u32) {
        for c in self.snapshot_ctrls().iter() {
            c.ns_changed(nsid);
        }
    }

    /// Calls `f` on each enabled namespace, in NSID order.
    pub(crate) fn for_each_ns(&self, mut f: impl FnMut(&Ns)) {
        let list = self.namespaces.lock();
        let mut last = 0u32;
        // A handful of namespaces: an ordered walk without sorting the list.
        loop {
            let next = list
                .iter()
                .filter(|n| n.nsid > last && n.enabled.load(Relaxed))
                .min_by_key(|n| n.nsid);
            match next {
                Some(n) => {
                    last = n.nsid;
                    f(n);
                }
                None => break,
            }
        }
    }

    /// Enabled namespace `nsid`.
    pub(crate) fn ns(&self, nsid: u32) -> Option<Arc<Ns>> {
        self.namespaces
            .lock()
            .iter()
            .find(|n| n.nsid == nsid && n.enabled.load(Relaxed))
            .cloned()
    }
}

fn set_ascii(v: &[u8], field: &mut [u8], len: &mut usize) -> Result {
    if v.is_empty() || v.len() > field.len() || !v.iter().all(|c| (0x20..0x7f).contains(c)) {
        return Err(EINVAL);
    }
    field.fill(0);
    field[..v.len()].copy_from_slice(v);
    *len = v.len();
    Ok(())
}

impl Dir for Subsys {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        let a = self.attrs.lock();
        match attr {
            b"attr_allow_any_host" => show(page, format_args!("{}\n", u8::from(a.allow_any_host))),
            b"attr_version" => {
                let v = a.version;
                match v & 0xff {
                    0 => show(page, format_args!("{}.{}\n", v >> 16, v >> 8 & 0xff)),
                    t => show(page, format_args!("{}.{}.{}\n", v >> 16, v >> 8 & 0xff, t)),
                }
            }
            b"attr_serial" => Ok(emit_line(page, &a.serial[..a.serial_len])),
            b"attr_model" => Ok(emit_line(page, &a.model[..a.model_len])),
            b"attr_firmware" => Ok(emit_line(page, &a.firmware[..a.firmware_len])),
            b"attr_cntlid_min" => show(page, format_args!("{}\n", a.cntlid_min)),
            b"attr_cntlid_max" => show(page, format_args!("{}\n", a.cntlid_max)),
            b"attr_qid_max" => show(page, format_args!("{}\n", a.qid_max)),
            b"attr_ieee_oui" => show(page, format_args!("0x{:06x}\n", a.ieee_oui)),
            _ => Err(EINVAL),
        }
    }

    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        let v = strip_nl(data);
        let connected = self.connected.load(Relaxed);
        let mut a = self.attrs.lock();
        match attr {
            b"attr_allow_any_host" => {
                let on = parse_bool(v)?;
                // nvmet: not with explicit hosts.
                if on && !self.allowed.lock().is_empty() {
                    return Err(EINVAL);
                }
                a.allow_any_host = on;
            }
            b"attr_version" if connected => return Err(EACCES),
            b"attr_version" => {
                let s = core::str::from_utf8(v).map_err(|_| EINVAL)?;
                let mut it = s.split('.');
                let major: u32 = it.next().and_then(|x| x.parse().ok()).ok_or(EINVAL)?;
                let minor: u32 = it.next().and_then(|x| x.parse().ok()).ok_or(EINVAL)?;
                let ter: u32 = match it.next() {
                    Some(x) => x.parse().map_err(|_| EINVAL)?,
                    None => 0,
                };
                if it.next().is_some() || major > 0xffff || minor > 0xff || ter > 0xff {
                    return Err(EINVAL);
                }
                a.version = major << 16 | minor << 8 | ter;
            }
            b"attr_serial" if connected => return Err(EACCES),
            b"attr_serial" => {
                let SubsysAttrs {
                    serial, serial_len, ..
                } = &mut *a;
                set_ascii(v, serial, serial_len)?
            }
            b"attr_model" if connected => return Err(EACCES),
            b"attr_model" => {
                let SubsysAttrs {
                    model, model_len, ..
                } = &mut *a;
                set_ascii(v, model, model_len)?
            }
            b"attr_firmware" if connected => return Err(EACCES),
            b"attr_firmware" => {
                let SubsysAttrs {
                    firmware,
                    firmware_len,
                    ..
                } = &mut *a;
                set_ascii(v, firmware, firmware_len)?
            }
            b"attr_cntlid_min" | b"attr_cntlid_max" if connected => return Err(EACCES),
            b"attr_cntlid_min" => {
                let n: u16 = parse(v)?;
                if n == 0 || n > a.cntlid_max || n > 0xffef {
                    return Err(EINVAL);
                }
                a.cntlid_min = n;
            }
            b"attr_cntlid_max" => {
                let n: u16 = parse(v)?;
                if n < a.cntlid_min || n > 0xffef {
                    return Err(EINVAL);
                }
                a.cntlid_max = n;
            }
            b"attr_qid_max" => {
                let n: u16 = parse(v)?;
                if n == 0 || n > 128 {
                    return Err(EINVAL);
                }
                a.qid_max = n;
            }
            b"attr_ieee_oui" if connected => return Err(EACCES),
            b"attr_ieee_oui" => {
                let s = core::str::from_utf8(v).map_err(|_| EINVAL)?;
                let s = s.strip_prefix("0x").unwrap_or(s);
                let n = u32::from_str_radix(s, 16).map_err(|_| EINVAL)?;
                if n > 0xff_ffff {
                    return Err(EINVAL);
                }
                a.ieee_oui = n;
            }
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `subsystems/<nqn>/allowed_hosts/`: symlinks to `hosts/<hostnqn>`.
struct AllowedHosts(Arc<Subsys>);

impl Dir for AllowedHosts {
    fn allow_link(&self, target: &Node) -> Result {
        let host = target.downcast::<Host>().ok_or(EINVAL)?;
        if self.0.attrs.lock().allow_any_host {
            return Err(EINVAL);
        }
        let mut allowed = self.0.allowed.lock();
        if allowed.iter().any(|h| h.to_bytes() == host.nqn.to_bytes()) {
            return Err(EEXIST);
        }
        allowed.push(host.nqn.to_cstring()?, GFP_KERNEL)?;
        drop(allowed);
        self.0.nvme.discovery_changed();
        Ok(())
    }
    fn drop_link(&self, target: &Node) {
        if let Some(host) = target.downcast::<Host>() {
            self.0.allowed.lock().retain(|h| h.to_bytes() != host.nqn.to_bytes());
            self.0.nvme.discovery_changed();
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `hosts/`.
struct HostsDir(Arc<Nvme>);

impl Dir for HostsDir {
    fn make_dir(&self, name: &CStr) -> Result<NewNode> {
        if name.to_bytes().len() > NQN_MAX {
            return Err(EINVAL);
        }
        NewNode::new(
            name,
            &self.0.kinds.empty,
            Arc::new(
                Host {
                    nqn: name.to_cstring()?,
                },
                GFP_KERNEL,
            )?,
        )
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `hosts/<hostnqn>`.
struct Host {
    nqn: CString,
}

impl Dir for Host {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `namespaces/`.
struct NamespacesDir(Arc<Subsys>);

impl Dir for NamespacesDir {
    fn make_dir(&self, name: &CStr) -> Result<NewNode> {
        let nsid: u32 = parse(name.to_bytes())?;
        if nsid == 0 || nsid > NSID_MAX {
            return Err(EINVAL);
        }
        let mut list = self.0.namespaces.lock();
        if list.iter().any(|n| n.nsid == nsid) {
            return Err(EEXIST);
        }
        let ns = Ns::new(nsid, &self.0)?;
        let node = NewNode::new(name, &self.0.nvme.kinds.ns, ns.clone())?;
        list.push(ns, GFP_KERNEL)?;
        self.0.ns_groups.set(nsid, 1);
        Ok(node)
    }
    fn drop_dir(&self, child: &Node) {
        if let Some(ns) = child.downcast::<Ns>() {
            // Its link is gone already (configfs removes links first), so it is disabled.
            self.0.namespaces.lock().retain(|n| n.nsid != ns.nsid);
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A namespace's settings and links.
struct NsState {
    device: Option<Arc<Device>>,
    lun: Option<Arc<Lun>>,
    uuid: [u8; 16],
    nguid: Option<[u8; 16]>,
    ana_grpid: u32,
    resv_enable: bool,
}

/// `namespaces/<nsid>`.
#[pin_data]
pub(crate) struct Ns {
    pub(crate) nsid: u32,
    subsys: Arc<Subsys>,
    pub(crate) enabled: Atomic<bool>,
    #[pin]
    state: Mutex<NsState>,
}

/// What Identify reports of a namespace.
pub(crate) struct NsView {
    pub(crate) device: Arc<Device>,
    pub(crate) uuid: [u8; 16],
    pub(crate) nguid: [u8; 16],
    pub(crate) ana_grpid: u32,
    pub(crate) resv_enable: bool,
}

/// A namespace's NGUID unless `device_nguid` sets one: the device's NAA designator (VPD
/// 83h), so both protocols name the same device; without one (no unit serial), the
/// namespace's UUID, so that namespaces never share an NGUID.
fn default_nguid(device: &Device, uuid: &[u8; 16]) -> [u8; 16] {
    device.facts().and_then(|f| f.designator).unwrap_or(*uuid)
}

impl Ns {
    fn new(nsid: u32, subsys: &Arc<Subsys>) -> Result<Arc<Ns>> {
        let mut uuid = [0u8; 16];
        rtarget_core::rt::crypto::random_bytes(&mut uuid);
        uuid[6] = uuid[6] & 0x0f | 0x40;
        uuid[8] = uuid[8] & 0x3f | 0x80;
        Arc::pin_init(
            try_pin_init!(Ns {
                nsid,
                subsys: subsys.clone(),
                enabled: Atomic::new(false),
                state <- kernel::new_mutex!(NsState {
                    device: None,
                    lun: None,
                    uuid,
                    nguid: None,
                    ana_grpid: 1,
                    resv_enable: false,
                }),
            }? Error),
            GFP_KERNEL,
        )
    }

    pub(crate) fn view(&self) -> Option<NsView> {
        let s = self.state.lock();
        let device = s.device.clone()?;
        let nguid = s.nguid.unwrap_or_else(|| default_nguid(&device, &s.uuid));
        Some(NsView {
            device,
            uuid: s.uuid,
            nguid,
            ana_grpid: s.ana_grpid,
            resv_enable: s.resv_enable,
        })
    }

    /// Whether reservation commands are taken (`resv_enable`).
    pub(crate) fn reservations(&self) -> bool {
        self.state.lock().resv_enable
    }

    fn set_enabled(&self, on: bool) -> Result {
        let changed = self.set_enabled_locked(&mut self.state.lock(), on)?;
        if changed {
            self.subsys.ns_changed(self.nsid);
        }
        Ok(())
    }

    /// Enables or disables the namespace under its lock; returns whether it changed.
    fn set_enabled_locked(&self, s: &mut NsState, on: bool) -> Result<bool> {
        if on == self.enabled.load(Relaxed) {
            return Ok(false);
        }
        if on {
            let dev = s.device.clone().ok_or(EINVAL)?;
            if !dev.is_enabled() {
                return Err(ENODEV);
            }
            s.lun = Some(self.subsys.core_port.link(u64::from(self.nsid), &dev)?);
            self.enabled.store(true, Relaxed);
        } else {
            self.enabled.store(false, Relaxed);
            if let Some(lun) = s.lun.take() {
                self.subsys.core_port.unlink(&lun, |_| {});
            }
        }
        Ok(true)
    }
}

impl Dir for Ns {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        let s = self.state.lock();
        match attr {
            b"enable" => show(page, format_args!("{}\n", u8::from(self.enabled.load(Relaxed)))),
            b"device_path" => {
                let mut f = Formatter::new(page);
                if let Some(d) = &s.device {
                    d.write_udev_path(&mut f).map_err(|_| EOVERFLOW)?;
                }
                f.write_str("\n").map_err(|_| EOVERFLOW)?;
                Ok(f.bytes_written())
            }
            b"device_uuid" => show_id(page, &s.uuid, true),
            b"device_nguid" => {
                let n = match (&s.device, s.nguid) {
                    (_, Some(n)) => n,
                    (Some(d), None) => default_nguid(d, &s.uuid),
                    (None, None) => [0; 16],
                };
                show_id(page, &n, true)
            }
            b"ana_grpid" => show(page, format_args!("{}\n", s.ana_grpid)),
            b"resv_enable" => show(page, format_args!("{}\n", u8::from(s.resv_enable))),
            _ => Err(EINVAL),
        }
    }

    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        if attr == b"enable" {
            return self.set_enabled(parse_bool(data)?);
        }
        let mut s = self.state.lock();
        // nvmet: the identity and settings change only while disabled (EBUSY), except the
        // ANA group.
        let enabled = self.enabled.load(Relaxed);
        match attr {
            b"device_uuid" if enabled => Err(EBUSY),
            b"device_uuid" => {
                s.uuid = crate::identify::parse_id(strip_nl(data)).ok_or(EINVAL)?;
                Ok(())
            }
            b"device_nguid" if enabled => Err(EBUSY),
            b"device_nguid" => {
                s.nguid = Some(crate::identify::parse_id(strip_nl(data)).ok_or(EINVAL)?);
                Ok(())
            }
            b"ana_grpid" => {
                let g: u32 = parse(data)?;
                if g == 0 || g > crate::identify::ANA_GROUPS {
                    return Err(EINVAL);
                }
                if s.ana_grpid != g {
                    s.ana_grpid = g;
                    self.subsys.ns_groups.set(self.nsid, g);
                    drop(s);
                    // As nvmet: the hosts reread the ANA log, which lists the move.
                    self.subsys.ana_changed();
                }
                Ok(())
            }
            b"resv_enable" if enabled => Err(EBUSY),
            b"resv_enable" => {
                s.resv_enable = parse_bool(data)?;
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }

    /// The namespace's one link to a core device, accepted for an enabled device while the
    /// namespace is disabled. The device counts as exported from then on.
    fn allow_link(&self, target: &Node) -> Result {
        let dev = device_of(target).ok_or(EPERM)?;
        let mut s = self.state.lock();
        if self.enabled.load(Relaxed) || s.device.is_some() {
            return Err(EBUSY);
        }
        if !dev.is_enabled() {
            return Err(ENODEV);
        }
        dev.hold_export();
        s.device = Some(dev);
        Ok(())
    }

    /// Removing the link disables the namespace (under one lock: an `enable` cannot slip in).
    fn drop_link(&self, _target: &Node) {
        let (changed, dev) = {
            let mut s = self.state.lock();
            let changed = self.set_enabled_locked(&mut s, false).unwrap_or(false);
            (changed, s.device.take())
        };
        if let Some(d) = dev {
            d.release_export();
        }
        if changed {
            self.subsys.ns_changed(self.nsid);
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `ports/`.
struct PortsDir(Arc<Nvme>);

impl Dir for PortsDir {
    fn make_dir(&self, name: &CStr) -> Result<NewNode> {
        let id: u16 = parse(name.to_bytes())?;
        let mut ports = self.0.ports.lock();
        if ports.iter().any(|p| p.id == id) {
            return Err(EEXIST);
        }
        let port = NvPort::new(id, &self.0)?;
        let k = &self.0.kinds;
        let mut node = NewNode::new(name, &k.port, port.clone())?;
        node.add_default(NewNode::new(
            c"subsystems",
            &k.empty,
            Arc::new(PortSubsystems(port.clone()), GFP_KERNEL)?,
        )?);
        node.add_default(NewNode::new(
            c"referrals",
            &k.empty,
            Arc::new(ReferralsDir(port.clone()), GFP_KERNEL)?,
        )?);
        let mut ana = NewNode::new(
            c"ana_groups",
            &k.empty,
            Arc::new(AnaGroupsDir(port.clone()), GFP_KERNEL)?,
        )?;
        ana.add_default(NewNode::new(
            c"1",
            &k.ana_group,
            Arc::new(AnaGroup { port: port.clone(), grpid: 1 }, GFP_KERNEL)?,
        )?);
        node.add_default(ana);
        ports.push(port, GFP_KERNEL)?;
        Ok(node)
    }
    fn drop_dir(&self, child: &Node) {
        if let Some(p) = child.downcast::<NvPort>() {
            self.0.ports.lock().retain(|x| !core::ptr::eq(&**x, p));
            p.disable();
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A port's address (`addr_*`).
#[derive(Clone)]
pub(crate) struct Addr {
    pub(crate) trtype: u8,
    pub(crate) adrfam: u8,
    pub(crate) treq: u8,
    pub(crate) traddr: [u8; 256],
    pub(crate) traddr_len: usize,
    pub(crate) trsvcid: [u8; 32],
    pub(crate) trsvcid_len: usize,
}

/// Transport types and address families (NVMe over Fabrics 1.1).
pub(crate) mod tr {
    pub(crate) const RDMA: u8 = 1;
    pub(crate) const FC: u8 = 2;
    pub(crate) const TCP: u8 = 3;
    pub(crate) const LOOP: u8 = 254;
    pub(crate) const IPV4: u8 = 1;
    pub(crate) const IPV6: u8 = 2;
    pub(crate) const ADRFAM_FC: u8 = 4;
    pub(crate) const ADRFAM_LOOP: u8 = 254;
}

const TRTYPES: &[(u8, &[u8])] = &[
    (tr::RDMA, b"rdma"),
    (tr::FC, b"fc"),
    (tr::TCP, b"tcp"),
    (tr::LOOP, b"loop"),
];
const ADRFAMS: &[(u8, &[u8])] = &[
    (tr::IPV4, b"ipv4"),
    (tr::IPV6, b"ipv6"),
    (tr::ADRFAM_FC, b"fc"),
    (tr::ADRFAM_LOOP, b"loop"),
];
/// TREQ bit 2: the port supports SQ flow control disabled.
const TREQ_DISABLE_SQFLOW: u8 = 1 << 2;

/// `addr_treq` (secure channel requirement bits 0-1).
const TREQS: &[(u8, &[u8])] = &[
    (0, b"not specified"),
    (1, b"required"),
    (2, b"not required"),
];

fn name_of(table: &[(u8, &'static [u8])], v: u8) -> &'static [u8] {
    table.iter().find(|(x, _)| *x == v).map_or(b"", |(_, n)| n)
}

fn value_of(table: &[(u8, &[u8])], name: &[u8]) -> Result<u8> {
    table
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(v, _)| *v)
        .ok_or(EINVAL)
}

impl Addr {
    const fn new() -> Addr {
        Addr {
            trtype: 0,
            adrfam: 0,
            // As nvmet: SQ flow control may be disabled (the Connect's CATTR bit 2).
            treq: TREQ_DISABLE_SQFLOW,
            traddr: [0; 256],
            traddr_len: 0,
            trsvcid: [0; 32],
            trsvcid_len: 0,
        }
    }
    pub(crate) fn traddr(&self) -> &[u8] {
        &self.traddr[..self.traddr_len]
    }
    pub(crate) fn trsvcid(&self) -> &[u8] {
        &self.trsvcid[..self.trsvcid_len]
    }

    fn show(&self, attr: &[u8], page: &mut [u8]) -> Option<Result<usize>> {
        Some(Ok(match attr {
            b"addr_trtype" => emit_line(page, name_of(TRTYPES, self.trtype)),
            b"addr_adrfam" => emit_line(page, name_of(ADRFAMS, self.adrfam)),
            b"addr_treq" => emit_line(page, name_of(TREQS, self.treq & 3)),
            b"addr_traddr" => emit_line(page, self.traddr()),
            b"addr_trsvcid" => emit_line(page, self.trsvcid()),
            _ => return None,
        }))
    }

    fn store(&mut self, attr: &[u8], v: &[u8]) -> Option<Result> {
        let r = match attr {
            b"addr_trtype" => value_of(TRTYPES, v).map(|t| self.trtype = t),
            b"addr_adrfam" => value_of(ADRFAMS, v).map(|t| self.adrfam = t),
            b"addr_treq" => value_of(TREQS, v).map(|t| self.treq = self.treq & !3 | t),
            b"addr_traddr" if v.len() < self.traddr.len() => {
                self.traddr.fill(0);
                self.traddr[..v.len()].copy_from_slice(v);
                self.traddr_len = v.len();
                Ok(())
            }
            b"addr_trsvcid" if v.len() < self.trsvcid.len() => {
                self.trsvcid.fill(0);
                self.trsvcid[..v.len()].copy_from_slice(v);
                self.trsvcid_len = v.len();
                Ok(())
            }
            b"addr_traddr" | b"addr_trsvcid" => Err(EINVAL),
            _ => return None,
        };
        Some(r)
    }

    /// The socket address to listen on: TCP, IPv4 or IPv6, a numeric address and port.
    fn sockaddr(&self) -> Result<SockAddr> {
        if self.trtype != tr::TCP {
            return Err(EINVAL);
        }
        let (host, svc) = (self.traddr(), self.trsvcid());
        // As an iSCSI portal name: `a.b.c.d:port` or `[v6]:port`.
        let mut name = [0u8; 300];
        let v6 = self.adrfam == tr::IPV6;
        let mut n = 0;
        for part in [
            if v6 { &b"["[..] } else { b"" },
            host,
            if v6 { &b"]:"[..] } else { b":" },
            svc,
        ] {
            name[n..n + part.len()].copy_from_slice(part);
            n += part.len();
        }
        match (crate::portal::parse(&name[..n]).ok_or(EINVAL)?, self.adrfam) {
            ((crate::portal::Ip::V4(a), port), tr::IPV4) => Ok(SockAddr::V4(a, port)),
            ((crate::portal::Ip::V6(a), port), tr::IPV6) => Ok(SockAddr::V6(a, port)),
            _ => Err(EINVAL),
        }
    }
}

/// `ports/<id>`'s settings.
struct PortState {
    addr: Addr,
    inline_data_size: u32,
    max_queue_size: u32,
    listening: Option<Listening>,
}

/// `ports/<id>`: a TCP listener, enabled while a subsystem is linked to it (as nvmet).
#[pin_data]
pub(crate) struct NvPort {
    pub(crate) id: u16,
    pub(crate) nvme: Arc<Nvme>,
    #[pin]
    state: Mutex<PortState>,
    #[pin]
    subsystems: Mutex<KVec<Arc<Subsys>>>,
    #[pin]
    referrals: Mutex<KVec<Arc<Referral>>>,
    /// ANA state per group (index `grpid - 1`); 0 where the group does not exist.
    ana: [Atomic<u32>; crate::identify::ANA_GROUPS as usize],
    /// Bumped by every ANA change (the ANA log's change count).
    pub(crate) ana_chgcnt: Atomic<u64>,
    #[pin]
    ctrls: Mutex<KVec<Arc<Ctrl>>>,
}

/// What a queue needs of its port's settings.
#[derive(Clone, Copy)]
pub(crate) struct PortParams {
    pub(crate) inline_data_size: u32,
    pub(crate) max_queue_size: u32,
}

impl NvPort {
    fn new(id: u16, nvme: &Arc<Nvme>) -> Result<Arc<NvPort>> {
        let p = Arc::pin_init(
            try_pin_init!(NvPort {
                id,
                nvme: nvme.clone(),
                state <- kernel::new_mutex!(PortState {
                    addr: Addr::new(),
                    inline_data_size: 16384,
                    max_queue_size: 128,
                    listening: None,
                }),
                subsystems <- kernel::new_mutex!(KVec::new()),
                referrals <- kernel::new_mutex!(KVec::new()),
                ana: [const { Atomic::new(0) }; crate::identify::ANA_GROUPS as usize],
                ana_chgcnt: Atomic::new(0),
                ctrls <- kernel::new_mutex!(KVec::new()),
            }? Error),
            GFP_KERNEL,
        )?;
        p.ana[0].store(ana::OPTIMIZED.into(), Relaxed);
        Ok(p)
    }

    pub(crate) fn params(&self) -> PortParams {
        let s = self.state.lock();
        PortParams {
            inline_data_size: s.inline_data_size,
            max_queue_size: s.max_queue_size,
        }
    }

    pub(crate) fn addr(&self) -> Addr {
        self.state.lock().addr.clone()
    }

    /// The subsystem `nqn` if it is linked to this port.
    pub(crate) fn subsystem(&self, nqn: &[u8]) -> Option<Arc<Subsys>> {
        self.subsystems
            .lock()
            .iter()
            .find(|s| s.nqn.to_bytes() == nqn)
            .cloned()
    }

    /// Calls `f` with each subsystem linked to the port.
    pub(crate) fn for_each_subsys(&self, mut f: impl FnMut(&Subsys)) {
        for s in self.subsystems.lock().iter() {
            f(s);
        }
    }

    /// Calls `f` with each enabled referral.
    pub(crate) fn for_each_referral(&self, mut f: impl FnMut(u16, &Addr)) {
        for r in self.referrals.lock().iter() {
            let s = r.state.lock();
            if s.enabled {
                f(s.portid, &s.addr);
            }
        }
    }

    /// The state of ANA group `grpid` on this port: inaccessible where the port does not
    /// have the group (nvmet's default).
    pub(crate) fn ana_state(&self, grpid: u32) -> u8 {
        let slot = grpid.checked_sub(1).and_then(|i| self.ana.get(i as usize));
        match slot.map_or(0, |a| a.load(Relaxed) as u8) {
            0 => ana::INACCESSIBLE,
            st => st,
        }
    }

    pub(crate) fn add_ctrl(&self, c: &Arc<Ctrl>) -> Result {
        self.ctrls.lock().push(c.clone(), GFP_KERNEL)?;
        Ok(())
    }

    pub(crate) fn remove_ctrl(&self, c: &Ctrl) {
        self.ctrls.lock().retain(|x| !core::ptr::eq(&**x, c));
    }

    fn for_each_ctrl(&self, mut f: impl FnMut(&Arc<Ctrl>)) {
        let mut v: KVec<Arc<Ctrl>> = KVec::new();
        for c in self.ctrls.lock().iter() {
            let _ = v.push(c.clone(), GFP_KERNEL);
        }
        for c in v.iter() {
            f(c);
        }
    }

    /// Binds the listener and starts accepting (the first subsystem link). The port's own
    /// lock only: other ports and subsystems go on meanwhile.
    fn enable(self: &Arc<Self>) -> Result {
        let mut s = self.state.lock();
        if s.listening.is_some() {
            return Ok(());
        }
        let addr = s.addr.sockaddr()?;
        let delay = crate::port_enable_delay_ms();
        if delay > 0 {
            fsleep(Delta::from_millis(i64::from(delay)));
        }
        s.listening = Some(Listening::start(addr, &LISTENING, self.clone(), serve_queue)?);
        Ok(())
    }

    /// Stops listening and ends every connection (the last subsystem link went).
    fn disable(&self) {
        let l = self.state.lock().listening.take();
        drop(l);
    }
}

impl Dir for NvPort {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        let s = self.state.lock();
        if let Some(r) = s.addr.show(attr, page) {
            return r;
        }
        match attr {
            b"param_inline_data_size" => show(page, format_args!("{}\n", s.inline_data_size)),
            b"param_max_queue_size" => show(page, format_args!("{}\n", s.max_queue_size)),
            _ => Err(EINVAL),
        }
    }

    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        let v = strip_nl(data);
        let mut s = self.state.lock();
        // nvmet: no change while enabled.
        if s.listening.is_some() {
            return Err(EACCES);
        }
        if let Some(r) = s.addr.store(attr, v) {
            return r;
        }
        match attr {
            b"param_inline_data_size" => {
                let n: u32 = parse(v)?;
                // Whole SQE-sized units up to what one capsule may carry here.
                if n > crate::queue::MAX_INLINE {
                    return Err(EINVAL);
                }
                s.inline_data_size = n;
            }
            b"param_max_queue_size" => {
                let n: u32 = parse(v)?;
                if !(16..=1024).contains(&n) {
                    return Err(EINVAL);
                }
                s.max_queue_size = n;
            }
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `ports/<id>/subsystems/`: links enable the port.
struct PortSubsystems(Arc<NvPort>);

impl Dir for PortSubsystems {
    fn allow_link(&self, target: &Node) -> Result {
        let s = target.downcast::<Subsys>().ok_or(EINVAL)?;
        let p = &self.0;
        let sub = p.nvme.subsystem(s.nqn.to_bytes()).ok_or(ENOENT)?;
        {
            let list = p.subsystems.lock();
            if list.iter().any(|x| core::ptr::eq(&**x, s)) {
                return Err(EEXIST);
            }
        }
        p.enable()?;
        p.subsystems.lock().push(sub, GFP_KERNEL)?;
        p.nvme.discovery_changed();
        Ok(())
    }
    fn drop_link(&self, target: &Node) {
        let Some(s) = target.downcast::<Subsys>() else {
            return;
        };
        let p = &self.0;
        let empty = {
            let mut list = p.subsystems.lock();
            list.retain(|x| !core::ptr::eq(&**x, s));
            list.is_empty()
        };
        s.end_ctrls_on(p);
        if empty {
            p.disable();
        }
        p.nvme.discovery_changed();
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `ports/<id>/ana_groups/`.
struct AnaGroupsDir(Arc<NvPort>);

impl Dir for AnaGroupsDir {
    fn make_dir(&self, name: &CStr) -> Result<NewNode> {
        let grpid: u32 = parse(name.to_bytes())?;
        if grpid <= 1 || grpid > crate::identify::ANA_GROUPS {
            return Err(EINVAL);
        }
        let slot = &self.0.ana[grpid as usize - 1];
        if slot.load(Relaxed) != 0 {
            return Err(EEXIST);
        }
        slot.store(ana::OPTIMIZED.into(), Relaxed);
        self.0.ana_changed();
        NewNode::new(
            name,
            &self.0.nvme.kinds.ana_group,
            Arc::new(
                AnaGroup {
                    port: self.0.clone(),
                    grpid,
                },
                GFP_KERNEL,
            )?,
        )
    }
    fn drop_dir(&self, child: &Node) {
        if let Some(g) = child.downcast::<AnaGroup>() {
            self.0.ana[g.grpid as usize - 1].store(0, Relaxed);
            self.0.ana_changed();
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl NvPort {
    fn ana_changed(&self) {
        self.ana_chgcnt.fetch_add(1, Relaxed);
        self.for_each_ctrl(|c| c.event(crate::admin::aen::ANA_CHANGE));
    }
}

const ANA_STATES: &[(u8, &[u8])] = &[
    (ana::OPTIMIZED, b"optimized"),
    (ana::NON_OPTIMIZED, b"non-optimized"),
    (ana::INACCESSIBLE, b"inaccessible"),
    (ana::PERSISTENT_LOSS, b"persistent-loss"),
    (ana::CHANGE, b"change"),
];

/// `ana_groups/<grpid>`.
struct AnaGroup {
    port: Arc<NvPort>,
    grpid: u32,
}

impl Dir for AnaGroup {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        match attr {
            b"ana_state" => Ok(emit_line(
                page,
                name_of(ANA_STATES, self.port.ana_state(self.grpid)),
            )),
            _ => Err(EINVAL),
        }
    }
    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        if attr != b"ana_state" {
            return Err(EINVAL);
        }
        let v = value_of(ANA_STATES, strip_nl(data))?;
        self.port.ana[self.grpid as usize - 1].store(v.into(), Relaxed);
        self.port.ana_changed();
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `referrals/`.
struct ReferralsDir(Arc<NvPort>);

impl Dir for ReferralsDir {
    fn make_dir(&self, name: &CStr) -> Result<NewNode> {
        let r = Arc::pin_init(
            try_pin_init!(Referral {
                port: self.0.clone(),
                state <- kernel::new_mutex!(RefState {
                    addr: Addr::new(),
                    portid: 0,
                    enabled: false,
                }),
            }? Error),
            GFP_KERNEL,
        )?;
        let node = NewNode::new(name, &self.0.nvme.kinds.referral, r.clone())?;
        self.0.referrals.lock().push(r, GFP_KERNEL)?;
        Ok(node)
    }
    fn drop_dir(&self, child: &Node) {
        if let Some(r) = child.downcast::<Referral>() {
            self.0.referrals.lock().retain(|x| !core::ptr::eq(&**x, r));
            self.0.nvme.discovery_changed();
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct RefState {
    addr: Addr,
    portid: u16,
    enabled: bool,
}

/// `referrals/<name>`: another discovery service, listed in this port's discovery log.
#[pin_data]
struct Referral {
    port: Arc<NvPort>,
    #[pin]
    state: Mutex<RefState>,
}

impl Dir for Referral {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        let s = self.state.lock();
        if let Some(r) = s.addr.show(attr, page) {
            return r;
        }
        match attr {
            b"portid" => show(page, format_args!("{}\n", s.portid)),
            b"enable" => show(page, format_args!("{}\n", u8::from(s.enabled))),
            _ => Err(EINVAL),
        }
    }
    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        let v = strip_nl(data);
        let mut s = self.state.lock();
        if attr == b"enable" {
            s.enabled = parse_bool(v)?;
            drop(s);
            self.port.nvme.discovery_changed();
            return Ok(());
        }
        if s.enabled {
            return Err(EACCES);
        }
        if let Some(r) = s.addr.store(attr, v) {
            return r;
        }
        match attr {
            b"portid" => {
                s.portid = parse(v)?;
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An enabled port's listener, its acceptor thread and its connections (each a queue).
type Listening = Acceptor<Arc<NvPort>>;

const LISTENING: AcceptorSetup = AcceptorSetup {
    backlog: BACKLOG,
    max_conns: MAX_CONNS,
    thread: c"rt_nvme_port",
    conn_thread: c"rt_nvme_queue",
};

fn serve_queue(stream: &Arc<Stream>, port: &Arc<NvPort>) {
    crate::queue::serve(stream, port);
}
