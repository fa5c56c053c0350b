// SPDX-License-Identifier: GPL-2.0

//! The fabric boundary: what a fabric module implements ([`Fabric`], [`FabricWwn`],
//! [`FabricTpg`]) and how it registers ([`register`]). Fabric modules link against these
//! exported items (see `Kbuild`); the core calls them only through their vtables.

use crate::acl::NodeAcl;
use crate::device::Device;
use crate::lun::{Lun, Port};
use crate::proto::spc::Proto;
use crate::rt::configfs::{Attr, NewNode, Node};
use crate::rt::globals::FABRICS;
use crate::rt::module_ref::ModuleRef;
use kernel::prelude::*;
use kernel::sync::Arc;

/// A transport that exports LUNs: loopback, iSCSI, ... One static instance per fabric module.
pub trait Fabric: Sync {
    /// The configfs directory under `target/` (LIO's `fabric_alias`, e.g. `loopback`).
    fn name(&self) -> &'static CStr;
    /// The fabric's version line, shown in `target/<fabric>/version`.
    fn version(&self) -> &'static CStr;
    /// `mkdir target/<fabric>/<name>`: validates the WWN and creates the target.
    fn make_wwn(&self, _name: &CStr) -> Result<Arc<dyn FabricWwn>> {
        Err(EINVAL)
    }
    /// Attributes of `tpgt_<N>` (the core adds `rtpi`) and of its `attrib/`, `auth/` and
    /// `param/`.
    fn tpg_attrs(&self, _group: TpgGroup) -> &'static [Attr] {
        &[]
    }
    /// Attributes of `acls/<initiator>` and of its `attrib/`, `auth/` and `param/`.
    fn acl_attrs(&self, _group: AclGroup) -> &'static [Attr] {
        &[]
    }
    /// Whether the fabric lays out `target/<fabric>/` itself ([`Fabric::make_tree`]) rather
    /// than as LIO's `<wwn>/tpgt_<N>/` (NVMe/TCP keeps nvmet's names).
    fn owns_tree(&self) -> bool {
        false
    }
    /// `mkdir target/<fabric>` of a fabric that [`owns_tree`](Fabric::owns_tree): its root
    /// directory, which keeps `owner` (the fabric's module) while it exists.
    fn make_tree(&self, _name: &CStr, _owner: ModuleRef) -> Result<NewNode> {
        Err(EINVAL)
    }
}

/// The device a configfs directory is (`core/<hba>/<dev>`), for a fabric's symlinks to it.
pub fn device_of(target: &Node) -> Option<Arc<Device>> {
    crate::cfs::device_of(target)
}

/// The directories of a node ACL whose attributes the fabric serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclGroup {
    /// `acls/<initiator>` itself (iSCSI: `info`, `cmdsn_depth`, `tag`).
    Base,
    /// `attrib/`.
    Attrib,
    /// `auth/`.
    Auth,
    /// `param/`.
    Param,
}

/// The directories of a TPG whose attributes the fabric serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TpgGroup {
    /// `tpgt_<N>` itself (iSCSI: `enable`, `dynamic_sessions`).
    Base,
    /// `attrib/`.
    Attrib,
    /// `auth/` (iSCSI: the CHAP credentials of demo-mode sessions).
    Auth,
    /// `param/` (iSCSI: the values a login offers).
    Param,
}

/// The fabric's part of a node ACL.
pub trait FabricAcl: Send + Sync {
    /// Shows one of [`Fabric::acl_attrs`] of `group`.
    fn show(&self, _group: AclGroup, _attr: &[u8], _page: &mut [u8]) -> Result<usize> {
        Err(EINVAL)
    }
    /// Stores one of [`Fabric::acl_attrs`] of `group`.
    fn store(&self, _group: AclGroup, _attr: &[u8], _data: &[u8]) -> Result {
        Err(EINVAL)
    }
}

/// A fabric target (one WWN directory).
pub trait FabricWwn: Send + Sync + core::any::Any {
    /// The transport protocol the WWN implies.
    fn proto(&self) -> Proto;
    /// The target port name reported in VPD 83h.
    fn port_name(&self) -> &CStr;
    /// `mkdir tpgt_<tag>`; `port` is the core's view of it, holding its LUNs.
    fn make_tpg(&self, tag: u16, port: Arc<Port>) -> Result<Arc<dyn FabricTpg>>;
    /// `rmdir tpgt_<tag>` (its LUNs are gone by then).
    fn drop_tpg(&self, tag: u16);
}

/// A fabric target portal group.
pub trait FabricTpg: Send + Sync {
    /// Shows one of [`Fabric::tpg_attrs`] of `group`.
    fn show(&self, _group: TpgGroup, _attr: &[u8], _page: &mut [u8]) -> Result<usize> {
        Err(EINVAL)
    }
    /// Stores one of [`Fabric::tpg_attrs`] of `group`.
    fn store(&self, _group: TpgGroup, _attr: &[u8], _data: &[u8]) -> Result {
        Err(EINVAL)
    }
    /// `mkdir np/<name>`: a network portal (`<ipv4>:<port>` or `[<ipv6>]:<port>`); the fabric
    /// parses the name and starts listening. LIO's `fabric_make_np`.
    fn make_np(&self, _name: &CStr) -> Result {
        Err(EPERM)
    }
    /// `rmdir np/<name>`: the portal stops listening before this returns.
    fn drop_np(&self, _name: &CStr) {}
    /// `mkdir acls/<initiator>`: the core made and registered `acl`; the fabric adds its
    /// part (LIO's `fabric_init_nodeacl`). Fabrics without ACLs refuse.
    fn make_acl(&self, _acl: &Arc<NodeAcl>) -> Result<Arc<dyn FabricAcl>> {
        Err(EPERM)
    }
    /// `rmdir acls/<initiator>`: the core has unregistered `acl`; the sessions opened under
    /// it end before this returns.
    fn drop_acl(&self, _acl: &Arc<NodeAcl>) {}
    /// Whether LUNs mapped in an ACL start write-protected (`prod_mode_write_protect`).
    fn prod_mode_write_protect(&self) -> bool {
        false
    }
    /// A LUN was linked and accepts commands (LIO's `fabric_post_link`).
    fn lun_linked(&self, _lun: &Arc<Lun>) {}
    /// A LUN is being unlinked; when this returns, the fabric sends it no more commands
    /// (LIO's `fabric_pre_unlink`).
    fn lun_unlinking(&self, _lun: &Lun) {}
}

/// A registered fabric: its operations and the module that implements them.
pub(crate) struct FabricEntry {
    pub(crate) fabric: &'static dyn Fabric,
    pub(crate) owner: &'static ThisModule,
    /// Its WWNs (`target/<fabric>/<wwn>`), in creation order.
    pub(crate) wwns: KVec<Arc<dyn FabricWwn>>,
    /// `target/iscsi/discovery_auth`, while `target/<fabric>` exists.
    pub(crate) discovery: Option<Arc<dyn DiscoveryAuthSource>>,
}

/// Where [`discovery_auth`] reads a fabric's `discovery_auth/` from (the configfs node).
pub(crate) trait DiscoveryAuthSource: Send + Sync {
    fn get(&self) -> Result<DiscoveryAuth>;
}

/// An iSCSI fabric's `discovery_auth/`: whether discovery sessions must authenticate (CHAP)
/// and with what. Empty credentials are unset (LIO shows them as `NULL`).
pub struct DiscoveryAuth {
    /// `enforce_discovery_auth`.
    pub enforce: bool,
    /// `userid`, `password`: what the initiator proves.
    pub userid: KVec<u8>,
    /// The initiator's secret.
    pub password: KVec<u8>,
    /// `userid_mutual`, `password_mutual`: what the target proves (mutual CHAP).
    pub userid_mutual: KVec<u8>,
    /// The target's secret.
    pub password_mutual: KVec<u8>,
}

/// The current `discovery_auth/` of fabric `name` (none while `target/<name>` does not exist).
#[inline(never)]
pub fn discovery_auth(name: &CStr) -> Option<DiscoveryAuth> {
    let source = FABRICS
        .lock()
        .iter()
        .find(|e| e.fabric.name() == name)
        .and_then(|e| e.discovery.clone())?;
    source.get().ok()
}

/// Records where fabric `name`'s `discovery_auth/` is.
pub(crate) fn set_discovery(name: &CStr, source: Arc<dyn DiscoveryAuthSource>) {
    if let Some(e) = FABRICS.lock().iter_mut().find(|e| e.fabric.name() == name) {
        e.discovery = Some(source);
    }
}

/// Forgets fabric `name`'s `discovery_auth/` if it is still `source` (a new `target/<name>`
/// may have replaced it).
pub(crate) fn clear_discovery(name: &CStr, source: &Arc<dyn DiscoveryAuthSource>) {
    if let Some(e) = FABRICS.lock().iter_mut().find(|e| e.fabric.name() == name) {
        if e.discovery.as_ref().is_some_and(|d| Arc::ptr_eq(d, source)) {
            e.discovery = None;
        }
    }
}

/// Keeps a fabric registered; dropping it (in the fabric's module exit) unregisters.
pub struct Registration {
    name: &'static CStr,
}

/// Registers `fabric`, implemented by module `owner`. Fails with `EEXIST` if a fabric of the
/// same name is registered.
#[inline(never)]
pub fn register(fabric: &'static dyn Fabric, owner: &'static ThisModule) -> Result<Registration> {
    let name = fabric.name();
    let mut table = FABRICS.lock();
    if table.iter().any(|e| e.fabric.name() == name) {
        return Err(EEXIST);
    }
    table.push(
        FabricEntry {
            fabric,
            owner,
            wwns: KVec::new(),
            discovery: None,
        },
        GFP_KERNEL,
    )?;
    pr_info!("fabric {} registered: {}\n", name, fabric.version());
    Ok(Registration { name })
}

impl Drop for Registration {
    #[inline(never)]
    fn drop(&mut self) {
        let mut table = FABRICS.lock();
        if let Some(i) = table.iter().position(|e| e.fabric.name() == self.name) {
            table.remove(i).ok();
        }
        pr_info!("fabric {} unregistered\n", self.name);
    }
}

/// The version line of the registered fabric `name`, read through its [`Fabric`] vtable.
#[inline(never)]
pub fn version_of(name: &CStr) -> Option<&'static CStr> {
    FABRICS
        .lock()
        .iter()
        .find(|e| e.fabric.name() == name)
        .map(|e| e.fabric.version())
}

/// Calls `f` with each WWN of fabric `name` (a fabric finds its own targets: iSCSI's
/// SendTargets). Configuration paths only: it holds the registry's lock.
#[inline(never)]
pub fn for_each_wwn(name: &CStr, f: &mut dyn FnMut(&Arc<dyn FabricWwn>)) {
    if let Some(e) = FABRICS.lock().iter().find(|e| e.fabric.name() == name) {
        e.wwns.iter().for_each(f);
    }
}

/// Records a new WWN of fabric `name`.
pub(crate) fn add_wwn(name: &CStr, wwn: Arc<dyn FabricWwn>) -> Result {
    let mut table = FABRICS.lock();
    let e = table
        .iter_mut()
        .find(|e| e.fabric.name() == name)
        .ok_or(ENOENT)?;
    e.wwns.push(wwn, GFP_KERNEL)?;
    Ok(())
}

/// Forgets a WWN of fabric `name`.
pub(crate) fn remove_wwn(name: &CStr, wwn: &Arc<dyn FabricWwn>) {
    let mut table = FABRICS.lock();
    if let Some(e) = table.iter_mut().find(|e| e.fabric.name() == name) {
        if let Some(i) = e.wwns.iter().position(|w| Arc::ptr_eq(w, wwn)) {
            e.wwns.remove(i).ok();
        }
    }
}

/// Finds fabric `name` and pins its module, so its vtable stays valid while the returned
/// reference lives (LIO holds the same reference while `target/<fabric>` exists).
pub(crate) fn get(name: &CStr) -> Result<(&'static dyn Fabric, ModuleRef)> {
    let table = FABRICS.lock();
    let e = table
        .iter()
        .find(|e| e.fabric.name() == name)
        .ok_or(ENOENT)?;
    Ok((e.fabric, ModuleRef::get(e.owner)?))
}

#[kunit_tests(rtarget_core_fabric)]
mod tests {
    use super::*;

    struct Dummy;
    impl Fabric for Dummy {
        fn name(&self) -> &'static CStr {
            c"rtarget_kunit_dummy"
        }
        fn version(&self) -> &'static CStr {
            c"dummy v0"
        }
    }
    static DUMMY: Dummy = Dummy;

    #[test]
    fn register_lookup_unregister() {
        assert!(version_of(c"rtarget_kunit_dummy").is_none());
        let reg = register(&DUMMY, kernel::module::this_module::<crate::LocalModule>())
            .expect("register");
        assert_eq!(version_of(c"rtarget_kunit_dummy"), Some(c"dummy v0"));
        assert!(
            matches!(register(&DUMMY, kernel::module::this_module::<crate::LocalModule>()), Err(e) if e == EEXIST)
        );
        drop(reg);
        assert!(version_of(c"rtarget_kunit_dummy").is_none());
    }
}
