// SPDX-License-Identifier: GPL-2.0

//! `core/rd_mcp_<N>/<dev>/`: backstore HBAs and devices, with LIO's default groups
//! (`action/ attrib/ pr/ wwn/ alua/default_tg_pt_gp/ statistics/`).

use super::{plain, show_fmt, show_u32, Fixed, Tree, TARGET_CORE_VERSION};
use crate::backend::{Applied, Plugin};
use crate::device::{parse_u32, At, Device, Field, ATTRIBS};
use crate::proto::pr::ResType;
use crate::reservation::Reg;
use crate::rt::configfs::{emit, emit_line as show_line, strip_nl, Dir, NewNode};
use core::any::Any;
use core::fmt::Write;
use kernel::prelude::*;
use kernel::str::Formatter;
use kernel::sync::atomic::{ordering::Relaxed, Atomic};
use kernel::sync::Arc;

/// `mkdir core/<plugin>_<id>`.
pub(super) fn make_hba(tree: &Arc<Tree>, name: &CStr) -> Result<NewNode> {
    let s = name.to_str().map_err(|_| EINVAL)?;
    if s.len() >= 64 {
        return Err(ENAMETOOLONG);
    }
    let (plugin, id) = s.rsplit_once('_').ok_or(EINVAL)?;
    parse_u32(id.as_bytes())?;
    let Some(plugin) = Plugin::from_name(plugin) else {
        pr_warn!("backstore plugin '{}' is not supported\n", plugin);
        return Err(EINVAL);
    };
    let hba = Hba {
        tree: tree.clone(),
        plugin,
        index: tree.next_hba_index.fetch_add(1, Relaxed),
        next_dev_id: Atomic::new(0),
    };
    NewNode::new(name, &tree.kinds.hba, Arc::new(hba, GFP_KERNEL)?)
}

/// `core/<plugin>_<N>`.
struct Hba {
    tree: Arc<Tree>,
    plugin: Plugin,
    index: u32,
    next_dev_id: Atomic<u32>,
}

impl Dir for Hba {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        match attr {
            b"hba_info" => show_fmt(
                page,
                format_args!(
                    "HBA Index: {} plugin: {} version: {}\n",
                    self.index,
                    self.plugin.name(),
                    TARGET_CORE_VERSION
                ),
            ),
            b"hba_mode" => show_u32(page, 0),
            _ => Err(EINVAL),
        }
    }

    fn store(&self, _attr: &[u8], _data: &[u8]) -> Result {
        // Only pscsi has a passthrough mode.
        Err(EINVAL)
    }

    fn make_dir(&self, name: &CStr) -> Result<NewNode> {
        let k = &self.tree.kinds;
        let index = self.tree.next_dev_index.fetch_add(1, Relaxed);
        let id = self.next_dev_id.fetch_add(1, Relaxed);
        let dev = Device::new(name, self.plugin, self.index, index, id)?;
        let dir = DevDir { dev: dev.clone() };
        let mut stats = plain(c"statistics", &k.empty)?;
        for (n, kind, which) in [
            (c"scsi_dev", &k.stat_scsi_dev, Stat::Dev),
            (c"scsi_tgt_dev", &k.stat_tgt_dev, Stat::TgtDev),
            (c"scsi_lu", &k.stat_lu, Stat::Lu),
        ] {
            stats.add_default(NewNode::new(
                n,
                kind,
                Arc::new(
                    DevStat {
                        dev: dev.clone(),
                        which,
                    },
                    GFP_KERNEL,
                )?,
            )?);
        }
        let alua = plain(c"alua", &k.empty)?.with_default(
            c"default_tg_pt_gp",
            &k.tg_pt_gp,
            Arc::new(TgPtGp, GFP_KERNEL)?,
        )?;
        let mut node = NewNode::new(name, &k.dev, Arc::new(dir, GFP_KERNEL)?)?
            .with_default(c"action", &k.empty, Arc::new(super::Plain, GFP_KERNEL)?)?
            .with_default(
                c"attrib",
                &k.attrib,
                Arc::new(AttribDir { dev: dev.clone() }, GFP_KERNEL)?,
            )?
            .with_default(
                c"pr",
                &k.pr,
                Arc::new(PrDir { dev: dev.clone() }, GFP_KERNEL)?,
            )?
            .with_default(c"wwn", &k.wwn, Arc::new(WwnDir { dev }, GFP_KERNEL)?)?;
        node.add_default(alua);
        node.add_default(stats);
        self.tree.devices.fetch_add(1, Relaxed);
        Ok(node)
    }

    fn drop_dir(&self, child: &crate::rt::configfs::Node) {
        if let Some(d) = child.downcast::<DevDir>() {
            d.dev.stop_sanitize();
        }
        self.tree.devices.fetch_sub(1, Relaxed);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `core/<plugin>_<N>/<dev>`; also the target of LUN symlinks.
pub(crate) struct DevDir {
    pub(crate) dev: Arc<Device>,
}

/// `control`: `key=value` pairs separated by commas or newlines, each handed to the backend
/// in order. Unlike LIO, an unknown key or a malformed value is refused (EINVAL).
fn parse_control(dev: &Device, data: &[u8]) -> Result {
    let mut cfg = dev.config.lock();
    let enabled = dev.enabled();
    for tok in data
        .split(|&c| c == b',' || c == b'\n')
        .filter(|t| !t.is_empty())
    {
        let eq = tok.iter().position(|&c| c == b'=').ok_or(EINVAL)?;
        let (key, value) = (&tok[..eq], &tok[eq + 1..]);
        match cfg.backend.control(key, value, enabled)? {
            Applied::Unknown => {
                pr_warn!(
                    "control: unknown parameter '{}'\n",
                    core::str::from_utf8(key).unwrap_or("?")
                );
                return Err(EINVAL);
            }
            Applied::Done => {}
            Applied::Resize(bytes) => dev.resize(bytes)?,
        }
    }
    Ok(())
}

impl Dir for DevDir {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        let d = &self.dev;
        match attr {
            b"info" => {
                let cfg = d.config.lock();
                let mut f = kernel::str::Formatter::new(page);
                write!(
                    f,
                    "Status: {}  Max Queue Depth: {}  SectorSize: {}  HwMaxSectors: {}\n        ",
                    if d.exported() {
                        "ACTIVATED"
                    } else {
                        "DEACTIVATED"
                    },
                    d.info_queue_depth(),
                    d.attr(At::BlockSize),
                    d.attr(At::HwMaxSectors),
                )
                .and_then(|()| cfg.backend.info(&mut f))
                .map_err(|_| EOVERFLOW)?;
                Ok(f.bytes_written())
            }
            b"alias" => Ok(d
                .config
                .lock()
                .alias
                .map_or(0, |a| show_line(page, a.get()))),
            b"udev_path" => {
                let cfg = d.config.lock();
                Ok(cfg.udev_path.map_or(0, |p| show_line(page, p.get())))
            }
            b"enable" => show_u32(page, u32::from(d.enabled())),
            b"alua_lu_gp" if d.enabled() => Ok(emit(
                page,
                b"LU Group Alias: default_lu_gp\nLU Group ID: 0\n",
            )),
            b"alua_lu_gp" | b"lba_map" => Ok(0),
            _ => Err(EINVAL),
        }
    }

    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        let d = &self.dev;
        match attr {
            b"control" => parse_control(d, data),
            b"enable" => {
                if !data.contains(&b'1') {
                    return Err(EINVAL);
                }
                d.enable()
            }
            b"alias" | b"udev_path" => {
                let v = strip_nl(data);
                if v.is_empty() || data.len() > 511 {
                    return Err(EINVAL);
                }
                let mut f = Field::new(b"");
                f.set(v, 511)?;
                let mut cfg = d.config.lock();
                if attr == b"alias" {
                    cfg.alias = Some(f);
                } else {
                    cfg.udev_path = Some(f);
                }
                Ok(())
            }
            b"alua_lu_gp" => match strip_nl(data) {
                b"default_lu_gp" if d.enabled() => Ok(()),
                _ => Err(EINVAL),
            },
            // LBA maps (REPORT REFERRALS) are not implemented.
            _ => Err(EINVAL),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `<dev>/attrib`.
struct AttribDir {
    dev: Arc<Device>,
}

fn attrib_index(attr: &[u8]) -> Result<usize> {
    ATTRIBS
        .iter()
        .position(|a| a.name.to_bytes() == attr)
        .ok_or(EINVAL)
}

impl Dir for AttribDir {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        let i = attrib_index(attr)?;
        // pi_prot_format always reads 0 in LIO.
        show_u32(
            page,
            if attr == b"pi_prot_format" {
                0
            } else {
                self.dev.attrib(i)
            },
        )
    }
    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        self.dev.store_attrib(attrib_index(attr)?, data)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `<dev>/pr`: the device's reservations, in LIO's words. APTPL metadata is refused.
struct PrDir {
    dev: Arc<Device>,
}

const NO_HOLDER: &str = "No SPC-3 Reservation holder\n";

impl Dir for PrDir {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        let dev = &self.dev;
        let on = dev.attr(At::EmulatePr) != 0;
        let mut f = Formatter::new(page);
        match attr {
            b"res_type" if !on => f.write_str("SPC_RESERVATIONS_DISABLED\n"),
            b"res_holder" if !on => f.write_str("SPC_RESERVATIONS_DISABLED\n"),
            b"res_aptpl_active" | b"res_aptpl_metadata" if !on => Ok(()),
            b"res_type" if dev.spc2_held() => f.write_str("SPC2_RESERVATIONS\n"),
            b"res_type" => f.write_str("SPC3_PERSISTENT_RESERVATIONS\n"),
            b"res_holder" if dev.spc2_held() => match dev.spc2_session() {
                Some(s) => writeln!(
                    f,
                    "SPC-2 Reservation: {} Initiator: {}",
                    s.port.fabric.to_str().unwrap_or("?"),
                    s.initiator.to_str().unwrap_or("?")
                ),
                None => f.write_str("No SPC-2 Reservation holder\n"),
            },
            b"res_aptpl_active" => f.write_str("APTPL Bit Status: Disabled\n"),
            b"res_aptpl_metadata" => f.write_str("Ready to process PR APTPL metadata..\n"),
            b"res_pr_holder_tg_port" => {
                // The holder is taken under the reservation lock; its LUN is looked up (under
                // the exports mutex) after it.
                let holder = dev.pr.with_state(|st| {
                    st.reservation?;
                    let r = st.regs.iter().find(|r| r.holder).or(st.regs.first())?;
                    Some(r.nexus.clone())
                });
                match holder {
                    None => f.write_str(NO_HOLDER),
                    Some(h) => {
                        let fabric = h.fabric.to_str().unwrap_or("?");
                        let wwn = h.port_wwn.to_str().unwrap_or("?");
                        let tpgt = h.tpgt;
                        let lun = dev.lun_on(wwn.as_bytes(), tpgt).unwrap_or(0);
                        writeln!(f, "SPC-3 Reservation: {fabric} Target Node Endpoint: {wwn}")?;
                        writeln!(f, "SPC-3 Reservation: Relative Port Identifier Tag: 0 {fabric} Portal Group Tag: {tpgt} {fabric} Logical Unit: {lun}")
                    }
                }
            }
            _ => dev.pr.with_state(|st| {
                let holder = st.reservation.and_then(|_| {
                    st.regs.iter().find(|r| r.holder).or(st.regs.first())
                });
                fn name(r: &Reg) -> (&str, &str) {
                    (
                        r.nexus.fabric.to_str().unwrap_or("?"),
                        r.nexus.initiator.to_str().unwrap_or("?"),
                    )
                }
                match (attr, holder) {
                    (b"res_pr_generation", _) => writeln!(f, "0x{:08x}", st.generation),
                    (b"res_pr_registered_i_pts", _) => {
                        f.write_str("SPC-3 PR Registrations:\n")?;
                        for r in st.regs.iter() {
                            let (fabric, node) = name(r);
                            writeln!(f, "{fabric} Node: {node} Key: 0x{:016x} PRgen: 0x{:08x}", r.key, r.generation)?;
                        }
                        if st.regs.is_empty() {
                            f.write_str("None\n")?;
                        }
                        Ok(())
                    }
                    (_, None) => f.write_str(NO_HOLDER),
                    (b"res_holder", Some(r)) => {
                        let (fabric, node) = name(r);
                        writeln!(f, "SPC-3 Reservation: {fabric} Initiator: {node}")
                    }
                    (b"res_pr_all_tgt_pts", Some(r)) => writeln!(
                        f,
                        "SPC-3 Reservation: {} Target Port registration",
                        if r.all_tg_pt { "All" } else { "Single" }
                    ),
                    (b"res_pr_type", Some(_)) => writeln!(
                        f,
                        "SPC-3 Reservation Type: {}",
                        st.reservation.map_or("", type_name)
                    ),
                    _ => Err(core::fmt::Error),
                }
            }),
        }
        .map_err(|_| EINVAL)?;
        Ok(f.bytes_written())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// How LIO names a reservation type.
fn type_name(t: ResType) -> &'static str {
    match t {
        ResType::WriteExclusive => "Write Exclusive Access",
        ResType::ExclusiveAccess => "Exclusive Access",
        ResType::WriteExclusiveRegistrants => "Write Exclusive Access, Registrants Only",
        ResType::ExclusiveAccessRegistrants => "Exclusive Access, Registrants Only",
        ResType::WriteExclusiveAll => "Write Exclusive Access, All Registrants",
        ResType::ExclusiveAccessAll => "Exclusive Access, All Registrants",
    }
}

/// `<dev>/wwn`.
struct WwnDir {
    dev: Arc<Device>,
}

fn printable(v: &[u8]) -> Result<&[u8]> {
    if v.iter().all(|&c| (0x20..0x7f).contains(&c)) {
        Ok(v)
    } else {
        Err(EINVAL)
    }
}

impl Dir for WwnDir {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        let w = *self.dev.wwn.lock();
        Ok(match attr {
            b"vendor_id" => show_line(page, w.vendor.get()),
            b"product_id" => show_line(page, w.product.get()),
            b"revision" => show_line(page, w.revision.get()),
            b"company_id" => return show_fmt(page, format_args!("{:#08x}\n", w.company_id)),
            b"vpd_unit_serial" => {
                let n = emit(page, b"T10 VPD Unit Serial Number: ");
                n + show_line(&mut page[n..], w.unit_serial.get())
            }
            b"pd_text_id_info" => show_line(page, w.pd_text_id_info.get()),
            b"vpd_protocol_identifier"
            | b"vpd_assoc_logical_unit"
            | b"vpd_assoc_target_port"
            | b"vpd_assoc_scsi_target_device" => 0,
            _ => return Err(EINVAL),
        })
    }

    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        if self.dev.exported() {
            return Err(EINVAL);
        }
        let v = strip_nl(data);
        let mut w = self.dev.wwn.lock();
        match attr {
            b"vendor_id" => w.vendor.set(printable(v)?, 8),
            b"product_id" => w.product.set(printable(v)?, 16),
            b"revision" => w.revision.set(printable(v)?, 4),
            b"pd_text_id_info" => w.pd_text_id_info.set(v, 255),
            b"vpd_unit_serial" => w.unit_serial.set(printable(v.trim_ascii())?, 253),
            b"company_id" => {
                drop(w);
                let id = parse_u32(v)?;
                if id >= 0x100_0000 {
                    return Err(EOVERFLOW);
                }
                self.dev.wwn.lock().company_id = id;
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `<dev>/alua/default_tg_pt_gp`: LIO's defaults. ALUA is not implemented, so writes are
/// accepted only if they change nothing.
struct TgPtGp;

const TG_PT_GP_FILES: &[(&str, &str)] = &[
    ("alua_access_state", "0\n"),
    ("alua_access_status", "None\n"),
    ("alua_access_type", "Implicit and Explicit\n"),
    ("alua_support_transitioning", "1\n"),
    ("alua_support_offline", "1\n"),
    ("alua_support_lba_dependent", "0\n"),
    ("alua_support_unavailable", "1\n"),
    ("alua_support_standby", "1\n"),
    ("alua_support_active_nonoptimized", "1\n"),
    ("alua_support_active_optimized", "1\n"),
    ("alua_write_metadata", "0\n"),
    ("nonop_delay_msecs", "100\n"),
    ("trans_delay_msecs", "0\n"),
    ("implicit_trans_secs", "0\n"),
    ("preferred", "0\n"),
    ("tg_pt_gp_id", "0\n"),
    ("members", ""),
];

impl Dir for TgPtGp {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        Fixed(TG_PT_GP_FILES).show(attr, page)
    }
    fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        let (_, cur) = TG_PT_GP_FILES
            .iter()
            .find(|(n, _)| n.as_bytes() == attr)
            .ok_or(EINVAL)?;
        if strip_nl(data) == strip_nl(cur.as_bytes()) {
            Ok(())
        } else {
            Err(EINVAL)
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[derive(Clone, Copy)]
enum Stat {
    Dev,
    TgtDev,
    Lu,
}

/// `<dev>/statistics/*` (SCSI-MIB style, read-only).
struct DevStat {
    dev: Arc<Device>,
    which: Stat,
}

impl Dir for DevStat {
    fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        let d = &self.dev;
        let on = d.exported();
        match (self.which, attr) {
            (_, b"inst") => show_u32(page, d.hba_index),
            (Stat::Lu, b"dev") => show_u32(page, d.index),
            (Stat::Lu, b"indx") => show_u32(page, 0),
            (_, b"indx") => show_u32(page, d.index),
            (Stat::Dev, b"role") => Ok(emit(page, b"Target\n")),
            (Stat::Dev, b"ports") => show_u32(page, d.export_count()),
            (Stat::TgtDev, b"num_lus") => show_u32(page, 1),
            (Stat::TgtDev, b"status") => Ok(emit(
                page,
                if on { b"activated\n" } else { b"deactivated\n" },
            )),
            (Stat::TgtDev, b"non_access_lus") => show_u32(page, u32::from(!on)),
            (Stat::Lu, b"lu_name") => {
                let w = *d.wwn.lock();
                let s = w.unit_serial.get();
                Ok(show_line(page, if s.is_empty() { b"None" } else { s }))
            }
            (Stat::Lu, b"vend") => Ok(show_line(page, d.wwn.lock().vendor.get())),
            (Stat::Lu, b"prod") => Ok(show_line(page, d.wwn.lock().product.get())),
            (Stat::Lu, b"rev") => Ok(show_line(page, d.wwn.lock().revision.get())),
            (Stat::Lu, b"status") => Ok(emit(
                page,
                if on {
                    b"available\n"
                } else {
                    b"notavailable\n"
                },
            )),
            (Stat::Lu, b"state_bit") => Ok(emit(page, b"exposed\n")),
            _ => show_u32(page, 0),
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
