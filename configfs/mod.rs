// SPDX-License-Identifier: GPL-2.0

//! The LIO configfs ABI (`/sys/kernel/config/target`), built on `rt::configfs`. Directory
//! names, attribute names, modes, default groups and symlink semantics follow LIO 7.3, so
//! rtslib-fb and targetcli-fb drive rtarget unmodified.
//!
//! ```text
//! target/                 version dbroot
//! ├─ core/alua/lu_gps/default_lu_gp/
//! ├─ core/rd_mcp_<N>/<dev>/          backstore.rs
//! └─ <fabric>/<wwn>/tpgt_<N>/lun/lun_<M>/<link → dev>    fabric.rs
//! ```

mod backstore;
mod fabric;

use crate::rt::configfs::{emit, Attr, Dir, Kind, NewNode, Node, Subsystem};
use crate::rt::module_ref::request_module;
use crate::rt::{uts, vfs};
use core::any::Any;
use core::fmt::Write;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::str::Formatter;
use kernel::sync::atomic::{ordering::Relaxed, Atomic};
use kernel::sync::{Arc, Mutex};

/// LIO's core version string.
pub(crate) const TARGET_CORE_VERSION: &str = "v5.0";

/// Formats into a configfs page.
pub(crate) fn show_fmt(page: &mut [u8], args: core::fmt::Arguments<'_>) -> Result<usize> {
    let mut f = Formatter::new(page);
    f.write_fmt(args).map_err(|_| EOVERFLOW)?;
    Ok(f.bytes_written())
}

/// `"%u\n"`.
pub(crate) fn show_u32(page: &mut [u8], v: u32) -> Result<usize> {
    show_fmt(page, format_args!("{v}\n"))
}

/// A directory with no behaviour of its own (a default group that only holds others).
pub(crate) struct Plain;

impl Dir for Plain {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Builds a plain directory `name` of `kind`.
pub(crate) fn plain(name: &CStr, kind: &Arc<Kind>) -> Result<NewNode> {
    NewNode::new(name, kind, Arc::new(Plain, GFP_KERNEL)?)
}

/// A directory whose files show fixed text (e.g. `pr/` without reservations).
pub(crate) struct Fixed(pub(crate) &'static [(&'static str, &'static str)]);

impl Dir for Fixed {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        let (_, v) = self
            .0
            .iter()
            .find(|(n, _)| n.as_bytes() == attr)
            .ok_or(EINVAL)?;
        Ok(emit(page, v.as_bytes()))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The item types of the tree, created once at module load.
pub(crate) struct Kinds {
    pub(crate) module: &'static ThisModule,
    pub(crate) empty: Arc<Kind>,
    root: Arc<Kind>,
    lu_gp: Arc<Kind>,
    pub(crate) hba: Arc<Kind>,
    pub(crate) dev: Arc<Kind>,
    pub(crate) attrib: Arc<Kind>,
    pub(crate) pr: Arc<Kind>,
    pub(crate) wwn: Arc<Kind>,
    pub(crate) tg_pt_gp: Arc<Kind>,
    pub(crate) stat_scsi_dev: Arc<Kind>,
    pub(crate) stat_tgt_dev: Arc<Kind>,
    pub(crate) stat_lu: Arc<Kind>,
    pub(crate) iscsi_discovery_auth: Arc<Kind>,
    pub(crate) wwn_param: Arc<Kind>,
    pub(crate) lun: Arc<Kind>,
    pub(crate) stat_port: Arc<Kind>,
    pub(crate) stat_tgt_port: Arc<Kind>,
    pub(crate) stat_transport: Arc<Kind>,
}

impl Kinds {
    fn new(m: &'static ThisModule) -> Result<Arc<Kinds>> {
        let ro = Attr::ro;
        let rw = Attr::rw;
        let mut attrib = KVec::new();
        for a in crate::device::ATTRIBS.iter() {
            attrib.push(Attr::new(a.name, a.writable()), GFP_KERNEL)?;
        }
        Ok(Arc::new(
            Kinds {
                module: m,
                empty: Kind::new(m, &[])?,
                root: Kind::new(m, &[ro(c"version"), rw(c"dbroot")])?,
                lu_gp: Kind::new(m, &[rw(c"lu_gp_id"), ro(c"members")])?,
                hba: Kind::new(m, &[ro(c"hba_info"), rw(c"hba_mode")])?,
                dev: Kind::new(
                    m,
                    &[
                        ro(c"info"),
                        Attr::wo(c"control"),
                        rw(c"alias"),
                        rw(c"udev_path"),
                        rw(c"enable"),
                        rw(c"alua_lu_gp"),
                        rw(c"lba_map"),
                    ],
                )?,
                attrib: Kind::new(m, &attrib)?,
                pr: Kind::new(
                    m,
                    &[
                        ro(c"res_holder"),
                        ro(c"res_pr_all_tgt_pts"),
                        ro(c"res_pr_generation"),
                        ro(c"res_pr_holder_tg_port"),
                        ro(c"res_pr_registered_i_pts"),
                        ro(c"res_pr_type"),
                        ro(c"res_type"),
                        ro(c"res_aptpl_active"),
                        rw(c"res_aptpl_metadata"),
                    ],
                )?,
                wwn: Kind::new(
                    m,
                    &[
                        rw(c"vendor_id"),
                        rw(c"product_id"),
                        rw(c"revision"),
                        rw(c"company_id"),
                        rw(c"vpd_unit_serial"),
                        ro(c"vpd_protocol_identifier"),
                        ro(c"vpd_assoc_logical_unit"),
                        ro(c"vpd_assoc_target_port"),
                        ro(c"vpd_assoc_scsi_target_device"),
                        rw(c"pd_text_id_info"),
                    ],
                )?,
                tg_pt_gp: Kind::new(
                    m,
                    &[
                        rw(c"alua_access_state"),
                        rw(c"alua_access_status"),
                        rw(c"alua_access_type"),
                        rw(c"alua_support_transitioning"),
                        rw(c"alua_support_offline"),
                        rw(c"alua_support_lba_dependent"),
                        rw(c"alua_support_unavailable"),
                        rw(c"alua_support_standby"),
                        rw(c"alua_support_active_nonoptimized"),
                        rw(c"alua_support_active_optimized"),
                        rw(c"alua_write_metadata"),
                        rw(c"nonop_delay_msecs"),
                        rw(c"trans_delay_msecs"),
                        rw(c"implicit_trans_secs"),
                        rw(c"preferred"),
                        rw(c"tg_pt_gp_id"),
                        ro(c"members"),
                    ],
                )?,
                stat_scsi_dev: Kind::new(
                    m,
                    &[ro(c"inst"), ro(c"indx"), ro(c"role"), ro(c"ports")],
                )?,
                stat_tgt_dev: Kind::new(
                    m,
                    &[
                        ro(c"inst"),
                        ro(c"indx"),
                        ro(c"num_lus"),
                        ro(c"status"),
                        ro(c"non_access_lus"),
                        ro(c"resets"),
                        ro(c"aborts_complete"),
                        ro(c"aborts_no_task"),
                    ],
                )?,
                stat_lu: Kind::new(
                    m,
                    &[
                        ro(c"inst"),
                        ro(c"dev"),
                        ro(c"indx"),
                        ro(c"lun"),
                        ro(c"lu_name"),
                        ro(c"vend"),
                        ro(c"prod"),
                        ro(c"rev"),
                        ro(c"dev_type"),
                        ro(c"status"),
                        ro(c"state_bit"),
                        ro(c"num_cmds"),
                        ro(c"read_mbytes"),
                        ro(c"write_mbytes"),
                        ro(c"resets"),
                        ro(c"full_stat"),
                        ro(c"hs_num_cmds"),
                        ro(c"creation_time"),
                    ],
                )?,
                iscsi_discovery_auth: Kind::new(
                    m,
                    &[
                        rw(c"userid"),
                        rw(c"password"),
                        ro(c"authenticate_target"),
                        rw(c"userid_mutual"),
                        rw(c"password_mutual"),
                        rw(c"enforce_discovery_auth"),
                    ],
                )?,
                wwn_param: Kind::new(
                    m,
                    &[
                        rw(c"cmd_completion_affinity"),
                        ro(c"default_complete_type"),
                        ro(c"direct_complete_supported"),
                        ro(c"default_submit_type"),
                        ro(c"direct_submit_supported"),
                    ],
                )?,
                lun: Kind::new(
                    m,
                    &[
                        rw(c"alua_tg_pt_gp"),
                        rw(c"alua_tg_pt_offline"),
                        rw(c"alua_tg_pt_status"),
                        rw(c"alua_tg_pt_write_md"),
                    ],
                )?,
                stat_port: Kind::new(
                    m,
                    &[
                        ro(c"inst"),
                        ro(c"dev"),
                        ro(c"indx"),
                        ro(c"role"),
                        ro(c"busy_count"),
                    ],
                )?,
                stat_tgt_port: Kind::new(
                    m,
                    &[
                        ro(c"inst"),
                        ro(c"dev"),
                        ro(c"indx"),
                        ro(c"name"),
                        ro(c"port_index"),
                        ro(c"in_cmds"),
                        ro(c"write_mbytes"),
                        ro(c"read_mbytes"),
                        ro(c"hs_in_cmds"),
                    ],
                )?,
                stat_transport: Kind::new(
                    m,
                    &[
                        ro(c"inst"),
                        ro(c"device"),
                        ro(c"indx"),
                        ro(c"dev_name"),
                        ro(c"proto_id"),
                    ],
                )?,
            },
            GFP_KERNEL,
        )?)
    }
}

/// State shared by the whole tree.
#[pin_data]
pub(crate) struct Tree {
    pub(crate) kinds: Arc<Kinds>,
    /// Devices that exist (LIO refuses `dbroot` changes while any does).
    pub(crate) devices: Atomic<u32>,
    /// Next device index (statistics `indx`).
    pub(crate) next_dev_index: Atomic<u32>,
    /// Next HBA index (`hba_info`); 0 is LIO's internal HBA, so users start at 1.
    pub(crate) next_hba_index: Atomic<u32>,
    #[pin]
    dbroot: Mutex<CString>,
}

/// `target/`.
struct Root {
    tree: Arc<Tree>,
}

impl Dir for Root {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        match attr {
            b"version" => show_fmt(
                page,
                format_args!(
                    "Target Engine Core ConfigFS Infrastructure {} on Linux/{} on {}\n",
                    TARGET_CORE_VERSION,
                    uts::machine().to_str().unwrap_or("?"),
                    uts::release().to_str().unwrap_or("?"),
                ),
            ),
            b"dbroot" => show_fmt(
                page,
                format_args!("{}\n", self.tree.dbroot.lock().to_str().unwrap_or("?")),
            ),
            _ => Err(EINVAL),
        }
    }

    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        if attr != b"dbroot" {
            return Err(EINVAL);
        }
        let path = crate::rt::configfs::strip_nl(data);
        if self.tree.devices.load(Relaxed) > 0 || path.len() >= 4096 {
            return Err(EINVAL);
        }
        let path = CString::try_from_fmt(format_args!(
            "{}",
            core::str::from_utf8(path).map_err(|_| EINVAL)?
        ))?;
        vfs::check_dir(&path)?;
        *self.tree.dbroot.lock() = path;
        Ok(())
    }

    fn make_dir(&self, name: &CStr) -> Result<NewNode> {
        fabric::make_fabric_dir(&self.tree, name)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `target/core/`: backstore HBAs.
struct Core {
    tree: Arc<Tree>,
}

impl Dir for Core {
    fn make_dir(&self, name: &CStr) -> Result<NewNode> {
        backstore::make_hba(&self.tree, name)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `core/alua/lu_gps/default_lu_gp`.
struct LuGp;

impl Dir for LuGp {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        match attr {
            b"lu_gp_id" => show_u32(page, 0),
            b"members" => Ok(0),
            _ => Err(EINVAL),
        }
    }
    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        // The default group's id is fixed.
        match (attr, crate::device::parse_u32(data)?) {
            (b"lu_gp_id", 0) => Ok(()),
            _ => Err(EINVAL),
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Registers `target/` (with `core/` and its ALUA default groups).
pub(crate) fn register(module: &'static ThisModule) -> Result<Subsystem> {
    let kinds = Kinds::new(module)?;
    let dbroot = if vfs::check_dir(c"/etc/target").is_ok() {
        c"/etc/target"
    } else {
        c"/var/target"
    };
    let tree_kinds = kinds.clone();
    let tree = Arc::pin_init(
        try_pin_init!(Tree {
            kinds: tree_kinds,
            devices: Atomic::new(0),
            next_dev_index: Atomic::new(1),
            next_hba_index: Atomic::new(1),
            dbroot <- kernel::new_mutex!(dbroot.to_cstring()?),
        }? Error),
        GFP_KERNEL,
    )?;
    let lu_gps = plain(c"lu_gps", &kinds.empty)?.with_default(
        c"default_lu_gp",
        &kinds.lu_gp,
        Arc::new(LuGp, GFP_KERNEL)?,
    )?;
    let mut alua = plain(c"alua", &kinds.empty)?;
    alua.add_default(lu_gps);
    let mut core = NewNode::new(
        c"core",
        &kinds.empty,
        Arc::new(Core { tree: tree.clone() }, GFP_KERNEL)?,
    )?;
    core.add_default(alua);
    let mut root = NewNode::new(c"target", &kinds.root, Arc::new(Root { tree }, GFP_KERNEL)?)?;
    root.add_default(core);
    Subsystem::register(root)
}

/// The device behind `core/<hba>/<dev>`.
pub(crate) fn device_of(node: &Node) -> Option<Arc<crate::device::Device>> {
    node.downcast::<backstore::DevDir>().map(|d| d.dev.clone())
}

/// Loads the module of fabric `name` on `mkdir target/<name>`, as LIO loads `tcm_loop`.
pub(crate) fn autoload(name: &CStr) {
    let module = match name.to_bytes() {
        b"loopback" => c"rtarget_loop",
        b"iscsi" => c"rtarget_iscsi",
        b"nvme" => c"rtarget_nvme",
        _ => return,
    };
    // A failed load shows up as the fabric still missing.
    let _ = request_module(module);
}
