// SPDX-License-Identifier: GPL-2.0

//! `target/<fabric>/<wwn>/tpgt_<N>/lun/lun_<M>/<link>`: the fabric-independent part of LIO's
//! fabric tree. Fabric specifics (WWN formats, TPG attributes, what linking a LUN does) come
//! from the fabric through `crate::fabric`'s traits.

use super::backstore::DevDir;
use super::{autoload, plain, show_u32, Fixed, Kinds, Tree};
use crate::acl::NodeAcl;
use crate::device::parse_u32;
use crate::fabric::{self, AclGroup, Fabric, FabricAcl, FabricTpg, FabricWwn, TpgGroup};
use crate::lun::{Lun, Port};
use crate::rt::configfs::{emit, emit_line, strip_nl, Attr, Dir, Kind, NewNode, Node};
use crate::rt::module_ref::ModuleRef;
use core::any::Any;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::atomic::{ordering::Relaxed, Atomic};
use kernel::sync::{Arc, Mutex};

/// Item types that depend on the fabric's attribute lists.
struct FabricKinds {
    fabric_dir: Arc<Kind>,
    /// `tpgt_<N>` and its `attrib/`, `auth/`, `param/`, in [`TpgGroup`] order.
    tpg: [Arc<Kind>; 4],
    /// `acls/<initiator>` and its `attrib/`, `auth/`, `param/`, in [`AclGroup`] order.
    acl: [Arc<Kind>; 4],
    mapped_lun: Arc<Kind>,
}

/// `mkdir target/<name>`: binds a registered fabric, loading its module if needed. `iscsi`
/// without an iSCSI fabric gets a stub that only holds `discovery_auth/`, because rtslib
/// creates and reads it on every listing.
pub(super) fn make_fabric_dir(tree: &Arc<Tree>, name: &CStr) -> Result<NewNode> {
    let found = match fabric::get(name) {
        Ok(f) => Ok(f),
        Err(_) => {
            autoload(name);
            fabric::get(name)
        }
    };
    let k = &tree.kinds;
    if let Ok((fabric, _)) = &found {
        if fabric.owns_tree() {
            let (fabric, owner) = found?;
            return fabric.make_tree(name, owner);
        }
    }
    let (fabric, owner) = match found {
        Ok(f) => f,
        Err(_) if name.to_bytes() == b"iscsi" => {
            let stub = Arc::new(IscsiStub, GFP_KERNEL)?;
            return NewNode::new(name, &k.empty, stub)?.with_default(
                c"discovery_auth",
                &k.iscsi_discovery_auth,
                DiscoveryAuth::new()?,
            );
        }
        Err(_) => return Err(EINVAL),
    };
    let kinds = FabricKinds {
        fabric_dir: Kind::new(k.module, &[Attr::ro(c"version")])?,
        tpg: [
            Kind::new2(
                k.module,
                fabric.tpg_attrs(TpgGroup::Base),
                &[Attr::rw(c"rtpi")],
            )?,
            Kind::new(k.module, fabric.tpg_attrs(TpgGroup::Attrib))?,
            Kind::new(k.module, fabric.tpg_attrs(TpgGroup::Auth))?,
            Kind::new(k.module, fabric.tpg_attrs(TpgGroup::Param))?,
        ],
        acl: [
            Kind::new(k.module, fabric.acl_attrs(AclGroup::Base))?,
            Kind::new(k.module, fabric.acl_attrs(AclGroup::Attrib))?,
            Kind::new(k.module, fabric.acl_attrs(AclGroup::Auth))?,
            Kind::new(k.module, fabric.acl_attrs(AclGroup::Param))?,
        ],
        mapped_lun: Kind::new(k.module, &[Attr::rw(c"write_protect")])?,
    };
    let kinds = Arc::new(kinds, GFP_KERNEL)?;
    let fabric_kind = kinds.fabric_dir.clone();
    let dir = try_pin_init!(FabricDir {
        tree: tree.clone(),
        fabric,
        kinds,
        _owner: owner,
        discovery <- kernel::new_mutex!(None),
    }? Error);
    let fabric_dir = Arc::pin_init(dir, GFP_KERNEL)?;
    let node = NewNode::new(name, &fabric_kind, fabric_dir.clone())?;
    if name.to_bytes() == b"iscsi" {
        let auth = DiscoveryAuth::new()?;
        auth.enforceable.store(true, Relaxed);
        let node = node.with_default(c"discovery_auth", &k.iscsi_discovery_auth, auth.clone())?;
        let source: Arc<dyn fabric::DiscoveryAuthSource> = auth;
        fabric::set_discovery(name, source.clone());
        *fabric_dir.discovery.lock() = Some(source);
        Ok(node)
    } else {
        node.with_default(
            c"discovery_auth",
            &k.empty,
            Arc::new(super::Plain, GFP_KERNEL)?,
        )
    }
}

/// `target/<fabric>`: holds the fabric's module while it exists.
#[pin_data(PinnedDrop)]
struct FabricDir {
    tree: Arc<Tree>,
    fabric: &'static dyn Fabric,
    kinds: Arc<FabricKinds>,
    _owner: ModuleRef,
    /// Its `discovery_auth/` as registered with the fabric (iSCSI).
    #[pin]
    discovery: Mutex<Option<Arc<dyn fabric::DiscoveryAuthSource>>>,
}

#[pinned_drop]
impl PinnedDrop for FabricDir {
    fn drop(self: Pin<&mut Self>) {
        if let Some(d) = self.discovery.lock().take() {
            fabric::clear_discovery(self.fabric.name(), &d);
        }
    }
}

impl Dir for FabricDir {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        match attr {
            b"version" => Ok(emit_line(page, self.fabric.version().to_bytes())),
            _ => Err(EINVAL),
        }
    }

    fn make_dir(&self, name: &CStr) -> Result<NewNode> {
        let wwn = self.fabric.make_wwn(name)?;
        let k = &self.tree.kinds;
        let dir = WwnDir {
            tree: self.tree.clone(),
            kinds: self.kinds.clone(),
            fabric: self.fabric.name(),
            wwn: wwn.clone(),
        };
        let node = NewNode::new(name, &k.empty, Arc::new(dir, GFP_KERNEL)?)?
            .with_default(
                c"fabric_statistics",
                &k.empty,
                Arc::new(super::Plain, GFP_KERNEL)?,
            )?
            .with_default(
                c"param",
                &k.wwn_param,
                Arc::new(Fixed(WWN_PARAM), GFP_KERNEL)?,
            )?;
        fabric::add_wwn(self.fabric.name(), wwn)?;
        Ok(node)
    }

    fn drop_dir(&self, child: &Node) {
        if let Some(w) = child.downcast::<WwnDir>() {
            fabric::remove_wwn(self.fabric.name(), &w.wwn);
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `<wwn>/param`: LIO's completion/submission parameters (fixed here: rtarget completes in
/// the submitting context).
static WWN_PARAM: &[(&str, &str)] = &[
    ("cmd_completion_affinity", "-1\n"),
    ("default_complete_type", "2\n"),
    ("direct_complete_supported", "0\n"),
    ("default_submit_type", "2\n"),
    ("direct_submit_supported", "0\n"),
];

/// `target/<fabric>/<wwn>`.
struct WwnDir {
    tree: Arc<Tree>,
    kinds: Arc<FabricKinds>,
    fabric: &'static CStr,
    wwn: Arc<dyn FabricWwn>,
}

impl Dir for WwnDir {
    fn make_dir(&self, name: &CStr) -> Result<NewNode> {
        let tag = name
            .to_str()
            .ok()
            .and_then(|s| s.strip_prefix("tpgt_"))
            .ok_or(EINVAL)?;
        let tag: u16 = tag.parse().map_err(|_| EINVAL)?;
        let port = Port::new(self.fabric, self.wwn.proto(), self.wwn.port_name(), tag)?;
        let tpg = self.wwn.make_tpg(tag, port.clone())?;
        self.tpg_node(name, tag, port, tpg.clone())
            .inspect_err(|_| self.wwn.drop_tpg(tag))
    }

    fn drop_dir(&self, child: &Node) {
        if let Some(t) = child.downcast::<TpgDir>() {
            self.wwn.drop_tpg(t.tag);
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl WwnDir {
    /// The `tpgt_<N>` directory and its default groups.
    fn tpg_node(
        &self,
        name: &CStr,
        tag: u16,
        port: Arc<Port>,
        tpg: Arc<dyn FabricTpg>,
    ) -> Result<NewNode> {
        let k: &Kinds = &self.tree.kinds;
        let luns = LunGroup {
            tree: self.tree.clone(),
            port: port.clone(),
            tpg: tpg.clone(),
        };
        let dir = TpgDir {
            tpg: tpg.clone(),
            tag,
        };
        let sub = |group| Arc::new(TpgSub(group, tpg.clone()), GFP_KERNEL);
        let mut node = NewNode::new(name, &self.kinds.tpg[0], Arc::new(dir, GFP_KERNEL)?)?
            .with_default(c"lun", &k.empty, Arc::new(luns, GFP_KERNEL)?)?
            .with_default(c"attrib", &self.kinds.tpg[1], sub(TpgGroup::Attrib)?)?;
        let acls = AclsGroup {
            tree: self.tree.clone(),
            kinds: self.kinds.clone(),
            port,
            tpg: tpg.clone(),
        };
        node = node.with_default(c"acls", &k.empty, Arc::new(acls, GFP_KERNEL)?)?;
        let np = NpGroup {
            tpg: tpg.clone(),
            kind: k.empty.clone(),
        };
        node = node
            .with_default(c"np", &k.empty, Arc::new(np, GFP_KERNEL)?)?
            .with_default(c"auth", &self.kinds.tpg[2], sub(TpgGroup::Auth)?)?
            .with_default(c"param", &self.kinds.tpg[3], sub(TpgGroup::Param)?)?;
        Ok(node)
    }
}

/// `tpgt_<N>/np`: the fabric's network portals, one directory each.
struct NpGroup {
    tpg: Arc<dyn FabricTpg>,
    kind: Arc<Kind>,
}

/// `np/<portal>`.
struct NpDir {
    name: CString,
}

impl Dir for NpDir {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Dir for NpGroup {
    fn make_dir(&self, name: &CStr) -> Result<NewNode> {
        // The node first: if it cannot be built, no portal is left listening.
        let dir = NpDir {
            name: name.to_cstring()?,
        };
        let node = NewNode::new(name, &self.kind, Arc::new(dir, GFP_KERNEL)?)?;
        self.tpg.make_np(name)?;
        Ok(node)
    }

    fn drop_dir(&self, child: &Node) {
        if let Some(np) = child.downcast::<NpDir>() {
            self.tpg.drop_np(&np.name);
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `<wwn>/tpgt_<N>`: the fabric's attributes, then the core's `rtpi`.
struct TpgDir {
    tpg: Arc<dyn FabricTpg>,
    tag: u16,
}

impl Dir for TpgDir {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        match attr {
            b"rtpi" => show_u32(page, 0),
            _ => self.tpg.show(TpgGroup::Base, attr, page),
        }
    }

    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        match attr {
            // Relative target port ids are not assigned by loopback TPGs (as in LIO).
            b"rtpi" => match parse_u32(data)? {
                0 => Ok(()),
                _ => Err(ENOSYS),
            },
            _ => self.tpg.store(TpgGroup::Base, attr, data),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `tpgt_<N>/{attrib,auth,param}`: served by the fabric.
struct TpgSub(TpgGroup, Arc<dyn FabricTpg>);

impl Dir for TpgSub {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        self.1.show(self.0, attr, page)
    }
    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        self.1.store(self.0, attr, data)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `tpgt_<N>/lun`.
struct LunGroup {
    tree: Arc<Tree>,
    port: Arc<Port>,
    tpg: Arc<dyn FabricTpg>,
}

impl Dir for LunGroup {
    fn make_dir(&self, name: &CStr) -> Result<NewNode> {
        let index = name
            .to_str()
            .ok()
            .and_then(|s| s.strip_prefix("lun_"))
            .ok_or(EINVAL)?;
        let index = crate::device::parse_u64(index.as_bytes()).map_err(|_| EINVAL)?;
        let k = &self.tree.kinds;
        let dir = Arc::pin_init(
            try_pin_init!(LunDir {
                index,
                port: self.port.clone(),
                tpg: self.tpg.clone(),
                linked <- kernel::new_mutex!(None),
            }? Error),
            GFP_KERNEL,
        )?;
        let mut stats = plain(c"statistics", &k.empty)?;
        for (n, kind) in [
            (c"scsi_port", &k.stat_port),
            (c"scsi_tgt_port", &k.stat_tgt_port),
            (c"scsi_transport", &k.stat_transport),
        ] {
            stats.add_default(NewNode::new(
                n,
                kind,
                Arc::new(LunStat(dir.clone()), GFP_KERNEL)?,
            )?);
        }
        let mut node = NewNode::new(name, &k.lun, dir)?;
        node.add_default(stats);
        Ok(node)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `lun/lun_<M>`: exports the device its symlink points at.
#[pin_data]
struct LunDir {
    index: u64,
    port: Arc<Port>,
    tpg: Arc<dyn FabricTpg>,
    #[pin]
    linked: Mutex<Option<Arc<Lun>>>,
}

const ALUA_TG_PT_GP: &[u8] = b"TG Port Alias: default_tg_pt_gp\nTG Port Group ID: 0\n\
TG Port Primary Access State: Active/Optimized\nTG Port Primary Access Status: None\n\
TG Port Secondary Access State: None\nTG Port Secondary Access Status: None\n";

impl Dir for LunDir {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        if self.linked.lock().is_none() {
            return Err(ENODEV);
        }
        match attr {
            b"alua_tg_pt_gp" => Ok(emit(page, ALUA_TG_PT_GP)),
            _ => show_u32(page, 0),
        }
    }

    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        if self.linked.lock().is_none() {
            return Err(ENODEV);
        }
        match (attr, strip_nl(data)) {
            (b"alua_tg_pt_gp", b"default_tg_pt_gp") => Ok(()),
            (b"alua_tg_pt_gp", _) => Err(ENODEV),
            (_, b"0") => Ok(()),
            _ => Err(EINVAL),
        }
    }

    fn allow_link(&self, target: &Node) -> Result {
        let dev = &target.downcast::<DevDir>().ok_or(EPERM)?.dev;
        let mut linked = self.linked.lock();
        if linked.is_some() {
            return Err(EEXIST);
        }
        // `lun_0` and `lun_00` name the same LUN: only one of them may be linked.
        let lun = self.port.link(self.index, dev)?;
        *linked = Some(lun.clone());
        drop(linked);
        self.tpg.lun_linked(&lun);
        Ok(())
    }

    fn drop_link(&self, _target: &Node) {
        let Some(lun) = self.linked.lock().take() else {
            return;
        };
        // The fabric removes its view, waiting for commands in flight.
        self.port.unlink(&lun, |lun| self.tpg.lun_unlinking(lun));
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Longest initiator name an ACL takes (LIO's `TRANSPORT_IQN_LEN` less its NUL).
const INITIATOR_NAME_MAX: usize = 223;

/// `tpgt_<N>/acls`: one node ACL per initiator name.
struct AclsGroup {
    tree: Arc<Tree>,
    kinds: Arc<FabricKinds>,
    port: Arc<Port>,
    tpg: Arc<dyn FabricTpg>,
}

impl Dir for AclsGroup {
    fn make_dir(&self, name: &CStr) -> Result<NewNode> {
        let n = name.to_bytes();
        if n.is_empty() || n.len() > INITIATOR_NAME_MAX {
            return Err(EINVAL);
        }
        let acl = NodeAcl::new(&self.port, name, 0)?;
        let built = self.acl_node(name, &acl);
        if built.is_err() {
            self.port.remove_acl(&acl);
            self.tpg.drop_acl(&acl);
        }
        built
    }

    fn drop_dir(&self, child: &Node) {
        if let Some(a) = child.downcast::<AclDir>() {
            self.port.remove_acl(&a.acl);
            self.tpg.drop_acl(&a.acl);
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl AclsGroup {
    /// `acls/<initiator>` with its default groups.
    fn acl_node(&self, name: &CStr, acl: &Arc<NodeAcl>) -> Result<NewNode> {
        let fabric = self.tpg.make_acl(acl)?;
        let k = &self.tree.kinds;
        let dir = AclDir {
            acl: acl.clone(),
            fabric: fabric.clone(),
            port: self.port.clone(),
            tpg: self.tpg.clone(),
            kind: self.kinds.mapped_lun.clone(),
            empty: k.empty.clone(),
        };
        let mut node = NewNode::new(name, &self.kinds.acl[0], Arc::new(dir, GFP_KERNEL)?)?;
        for (n, group, kind) in [
            (c"attrib", AclGroup::Attrib, &self.kinds.acl[1]),
            (c"auth", AclGroup::Auth, &self.kinds.acl[2]),
            (c"param", AclGroup::Param, &self.kinds.acl[3]),
        ] {
            let part = AclPart {
                fabric: fabric.clone(),
                group,
            };
            node = node.with_default(n, kind, Arc::new(part, GFP_KERNEL)?)?;
        }
        node.add_default(plain(c"fabric_statistics", &k.empty)?);
        Ok(node)
    }
}

/// `acls/<initiator>`: the fabric's attributes, and `lun_<M>` mapped LUNs.
struct AclDir {
    acl: Arc<NodeAcl>,
    fabric: Arc<dyn FabricAcl>,
    port: Arc<Port>,
    tpg: Arc<dyn FabricTpg>,
    kind: Arc<Kind>,
    empty: Arc<Kind>,
}

impl Dir for AclDir {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        self.fabric.show(AclGroup::Base, attr, page)
    }

    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        self.fabric.store(AclGroup::Base, attr, data)
    }

    fn make_dir(&self, name: &CStr) -> Result<NewNode> {
        let index = name
            .to_str()
            .ok()
            .and_then(|s| s.strip_prefix("lun_"))
            .ok_or(EINVAL)?;
        let index = crate::device::parse_u64(index.as_bytes()).map_err(|_| EINVAL)?;
        if index > u64::from(u16::MAX) {
            return Err(EINVAL);
        }
        let dir = Arc::pin_init(
            try_pin_init!(MappedLunDir {
                index,
                acl: self.acl.clone(),
                port: self.port.clone(),
                tpg: self.tpg.clone(),
                linked <- kernel::new_mutex!(false),
            }? Error),
            GFP_KERNEL,
        )?;
        let mut stats = plain(c"statistics", &self.empty)?;
        for n in [c"scsi_auth_intr", c"scsi_att_intr_port"] {
            stats.add_default(plain(n, &self.empty)?);
        }
        let mut node = NewNode::new(name, &self.kind, dir)?;
        node.add_default(stats);
        Ok(node)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `acls/<initiator>/{attrib,auth,param}`: served by the fabric.
struct AclPart {
    fabric: Arc<dyn FabricAcl>,
    group: AclGroup,
}

impl Dir for AclPart {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        self.fabric.show(self.group, attr, page)
    }
    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        self.fabric.store(self.group, attr, data)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `acls/<initiator>/lun_<M>`: maps the TPG LUN its symlink points at.
#[pin_data]
struct MappedLunDir {
    index: u64,
    acl: Arc<NodeAcl>,
    port: Arc<Port>,
    tpg: Arc<dyn FabricTpg>,
    /// Linked: the ACL maps `index` (unless the TPG LUN went since, which unmapped it).
    #[pin]
    linked: Mutex<bool>,
}

impl Dir for MappedLunDir {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        match attr {
            // Nothing while unmapped, as LIO.
            b"write_protect" => match self.acl.lookup(self.index) {
                Some(m) => show_u32(page, u32::from(m.read_only)),
                None => Ok(0),
            },
            _ => Err(EINVAL),
        }
    }

    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        match (attr, parse_u32(data)?) {
            (b"write_protect", v @ (0 | 1)) => {
                self.acl.set_read_only(self.index, v == 1);
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }

    fn allow_link(&self, target: &Node) -> Result {
        let tpg_lun = target.downcast::<LunDir>().ok_or(EINVAL)?;
        // Only a LUN of the ACL's own TPG.
        if !Arc::ptr_eq(&tpg_lun.port, &self.port) {
            return Err(EINVAL);
        }
        let mut linked = self.linked.lock();
        if *linked {
            return Err(EEXIST);
        }
        // Held while mapping: an unlink of the TPG LUN then comes after, and unmaps it.
        let tpg_linked = tpg_lun.linked.lock();
        let lun = tpg_linked.clone().ok_or(EINVAL)?;
        // Write-protected from the start under `prod_mode_write_protect`, as LIO.
        let read_only = self.tpg.prod_mode_write_protect();
        self.acl.map(&self.port, self.index, lun, read_only)?;
        *linked = true;
        Ok(())
    }

    fn drop_link(&self, _target: &Node) {
        let mut linked = self.linked.lock();
        if *linked {
            *linked = false;
            self.acl.unmap(&self.port, self.index);
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `lun_<M>/statistics/*`.
struct LunStat(Arc<LunDir>);

impl Dir for LunStat {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        let linked = self.0.linked.lock();
        let lun = linked.as_ref().ok_or(ENODEV)?;
        match attr {
            b"inst" => show_u32(page, lun.device.hba_index),
            b"dev" | b"device" => show_u32(page, lun.device.index),
            b"indx" | b"port_index" => show_u32(page, self.0.index as u32),
            b"role" => Ok(emit(page, b"Device\n")),
            b"proto_id" => show_u32(page, u32::from(self.0.port.proto as u8)),
            b"name" | b"dev_name" => Ok(emit_line(page, self.0.port.wwn.to_bytes())),
            _ => show_u32(page, 0),
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `target/iscsi` while no iSCSI fabric exists: targets cannot be created.
struct IscsiStub;

impl Dir for IscsiStub {
    fn make_dir(&self, _name: &CStr) -> Result<NewNode> {
        pr_warn!("the iSCSI fabric is not implemented yet\n");
        Err(ENOSYS)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `iscsi/discovery_auth`: LIO's defaults. With the iSCSI fabric loaded its discovery
/// sessions read it (`fabric::discovery_auth`); the stub keeps the credentials unused and
/// refuses `enforce_discovery_auth`.
#[pin_data]
struct DiscoveryAuth {
    #[pin]
    creds: Mutex<[crate::device::Field<256>; 4]>,
    enforce: Atomic<bool>,
    /// A fabric serves discovery: enforcement can be turned on.
    enforceable: Atomic<bool>,
}

impl DiscoveryAuth {
    fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(DiscoveryAuth {
                creds <- kernel::new_mutex!([crate::device::Field::new(b"NULL"); 4]),
                enforce: Atomic::new(false),
                enforceable: Atomic::new(false),
            }? Error),
            GFP_KERNEL,
        )
    }

    fn slot(attr: &[u8]) -> Option<usize> {
        [
            &b"userid"[..],
            b"password",
            b"userid_mutual",
            b"password_mutual",
        ]
        .iter()
        .position(|n| *n == attr)
    }
}

/// A credential that is set (LIO shows unset ones as `NULL`).
fn is_set(v: &[u8]) -> bool {
    !v.is_empty() && v != b"NULL"
}

impl fabric::DiscoveryAuthSource for DiscoveryAuth {
    fn get(&self) -> Result<fabric::DiscoveryAuth> {
        let c = self.creds.lock();
        let take = |i: usize| -> Result<KVec<u8>> {
            let mut v = KVec::new();
            if is_set(c[i].get()) {
                v.extend_from_slice(c[i].get(), GFP_KERNEL)?;
            }
            Ok(v)
        };
        Ok(fabric::DiscoveryAuth {
            enforce: self.enforce.load(Relaxed),
            userid: take(0)?,
            password: take(1)?,
            userid_mutual: take(2)?,
            password_mutual: take(3)?,
        })
    }
}

impl Dir for DiscoveryAuth {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        if let Some(i) = DiscoveryAuth::slot(attr) {
            return Ok(emit_line(page, self.creds.lock()[i].get()));
        }
        match attr {
            // Mutual CHAP is possible once its credentials are set (LIO's rule).
            b"authenticate_target" => {
                let c = self.creds.lock();
                show_u32(page, u32::from(is_set(c[2].get()) && is_set(c[3].get())))
            }
            b"enforce_discovery_auth" => show_u32(page, u32::from(self.enforce.load(Relaxed))),
            _ => Err(EINVAL),
        }
    }

    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        if let Some(i) = DiscoveryAuth::slot(attr) {
            return self.creds.lock()[i].set(strip_nl(data), 255);
        }
        match (attr, parse_u32(data)?) {
            (b"enforce_discovery_auth", v @ (0 | 1)) => {
                if v == 1 && !self.enforceable.load(Relaxed) {
                    return Err(ENOSYS);
                }
                self.enforce.store(v == 1, Relaxed);
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
