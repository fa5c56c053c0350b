// SPDX-License-Identifier: GPL-2.0

//! rtarget_loop: the loopback fabric (LIO's `tcm_loop`). Each `loopback/<wwn>` is a local
//! SCSI host; `tpgt_<N>` is SCSI target N on it, and each linked `lun_<M>` appears as a disk
//! (`/dev/sdX`). Writing `nexus` creates the TPG's one session. Each `scsi_cmnd` carries the
//! core's command slot in its private area; `queuecommand` hands it to the core on the
//! submitting CPU, and the core's completion (inline for rd_mcp, from the backend's
//! completion otherwise) ends in `scsi_done`. The midlayer's error handlers run the core's
//! task management.

use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::atomic::{ordering::Relaxed, Atomic};
use kernel::sync::{Arc, Mutex, SpinLock};
use rtarget_core::cmd::{self, Cmd, CmdRef, FabricOps};
use rtarget_core::fabric::{self, Fabric, FabricTpg, FabricWwn, TpgGroup};
use rtarget_core::lun::{Lun, Port};
use rtarget_core::proto::pi::PiType;
use rtarget_core::proto::sense::FIXED_SENSE_LEN;
use rtarget_core::proto::spc::Proto;
use rtarget_core::rt::configfs::{emit_line, strip_nl, Attr};
use rtarget_core::rt::live_ref::LiveRef;
use rtarget_core::rt::scsi_host::{self, Command, Host, HostOps, HostRef};
use rtarget_core::session::{Session, SessionPi};
use rtarget_core::tmf::{self, Tasks, TmfResponse, TMF_WAIT};

module! {
    type: RtargetLoop,
    name: "rtarget_loop",
    authors: ["rtarget developers"],
    description: "rtarget loopback fabric (tcm_loop compatible)",
    license: "GPL",
}

/// TPGs per WWN (SCSI target ids), as in tcm_loop.
const MAX_TPGS: usize = 32;

struct Loopback;

static LOOPBACK: Loopback = Loopback;

static TPG_ATTRS: [Attr; 3] = [
    Attr::rw(c"nexus"),
    Attr::rw(c"transport_status"),
    Attr::ro(c"address"),
];
static TPG_ATTRIB_ATTRS: [Attr; 1] = [Attr::rw(c"fabric_prot_type")];

impl Fabric for Loopback {
    fn name(&self) -> &'static CStr {
        c"loopback"
    }

    fn version(&self) -> &'static CStr {
        c"TCM Loopback Fabric module v2.1-rc2"
    }

    fn make_wwn(&self, name: &CStr) -> Result<Arc<dyn FabricWwn>> {
        let s = name.to_bytes();
        if s.len() >= 256 {
            return Err(EINVAL);
        }
        // As tcm_loop: the first of naa./fc./iqn. found anywhere in the name decides.
        let (proto, port_name) = if contains(s, b"naa.") {
            (Proto::Sas, s)
        } else if let Some(i) = find(s, b"fc.") {
            (Proto::Fcp, &s[i + 3..])
        } else if contains(s, b"iqn.") {
            (Proto::Iscsi, s)
        } else {
            pr_warn!("loopback WWN must contain naa., fc. or iqn.\n");
            return Err(EINVAL);
        };
        let ops = Arc::pin_init(
            try_pin_init!(LoopHost { tpgs <- kernel::new_spinlock!(core::array::from_fn(|_| None)) }? Error),
            GFP_KERNEL,
        )?;
        let host = Arc::new(Host::new(ops)?, GFP_KERNEL)?;
        let port_name = CString::try_from_fmt(fmt!(
            "{}",
            core::str::from_utf8(port_name).map_err(|_| EINVAL)?
        ))?;
        Ok(Arc::new(
            LoopWwn {
                proto,
                port_name,
                host,
            },
            GFP_KERNEL,
        )?)
    }

    fn tpg_attrs(&self, group: TpgGroup) -> &'static [Attr] {
        match group {
            TpgGroup::Base => &TPG_ATTRS,
            TpgGroup::Attrib => &TPG_ATTRIB_ATTRS,
            TpgGroup::Auth | TpgGroup::Param => &[],
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// `loopback/<wwn>`: one SCSI host.
struct LoopWwn {
    proto: Proto,
    port_name: CString,
    host: Arc<Host<LoopHost>>,
}

impl FabricWwn for LoopWwn {
    fn proto(&self) -> Proto {
        self.proto
    }

    fn port_name(&self) -> &CStr {
        &self.port_name
    }

    fn make_tpg(&self, tag: u16, port: Arc<Port>) -> Result<Arc<dyn FabricTpg>> {
        let slot = usize::from(tag);
        if slot >= MAX_TPGS {
            return Err(EINVAL);
        }
        let tpg = Arc::pin_init(
            try_pin_init!(LoopTpg {
                tag,
                proto: self.proto,
                port,
                host: self.host.clone(),
                session <- kernel::new_mutex!(None),
                state: Arc::new(TpgState { offline: Atomic::new(false) }, GFP_KERNEL)?,
                fabric_prot_type: Atomic::new(0),
            }? Error),
            GFP_KERNEL,
        )?;
        {
            let mut tpgs = self.host.ops().tpgs.lock();
            if tpgs[slot].is_some() {
                return Err(EEXIST);
            }
            tpgs[slot] = Some(tpg.clone());
        }
        tpg.port
            .set_tasks(Some(Arc::new(HostTasks(self.host.clone()), GFP_KERNEL)?));
        Ok(tpg)
    }

    fn drop_tpg(&self, tag: u16) {
        let tpg = self
            .host
            .ops()
            .tpgs
            .lock()
            .get_mut(usize::from(tag))
            .and_then(|t| t.take());
        if let Some(t) = tpg {
            t.port.set_tasks(None);
        }
    }
}

/// The commands of a host's TPGs, for the task management the core starts (PREEMPT AND
/// ABORT). The port holds it until its TPG goes.
struct HostTasks(Arc<Host<LoopHost>>);

impl Tasks for HostTasks {
    fn walk(&self, f: &mut dyn FnMut(&Cmd)) {
        self.0.for_each_cmd(f)
    }
}

/// `tpgt_<N>`: SCSI target N of its WWN's host.
#[pin_data(PinnedDrop)]
struct LoopTpg {
    tag: u16,
    proto: Proto,
    port: Arc<Port>,
    host: Arc<Host<LoopHost>>,
    /// The I_T nexus, once `nexus` is written.
    #[pin]
    session: Mutex<Option<Arc<Session>>>,
    state: Arc<TpgState>,
    /// `attrib/fabric_prot_type`: 0, 1 or 3.
    fabric_prot_type: Atomic<u32>,
}

/// What the I/O path checks of its TPG. Disks hold this, not the TPG, so a disk never keeps
/// the SCSI host alive.
struct TpgState {
    offline: Atomic<bool>,
}

/// How long dropping a nexus waits for its commands.
const NEXUS_DRAIN: kernel::time::Delta = kernel::time::Delta::from_secs(8);

impl LoopTpg {
    fn set_nexus(&self, value: &[u8]) -> Result {
        let mut nexus = self.session.lock();
        if value.starts_with(b"NULL") {
            if nexus.is_none() {
                return Err(ENODEV);
            }
            if self.port.lun_count() > 0 {
                return Err(EPERM);
            }
            if let Some(s) = nexus.take() {
                s.close(NEXUS_DRAIN);
            }
            return Ok(());
        }
        if value.len() >= 256 {
            return Err(EINVAL);
        }
        // The initiator port name must be of the target's protocol.
        let name = match self.proto {
            Proto::Sas if contains(value, b"naa.") => value,
            Proto::Fcp => &value[find(value, b"fc.").ok_or(EINVAL)? + 3..],
            Proto::Iscsi if contains(value, b"iqn.") => value,
            _ => return Err(EINVAL),
        };
        if nexus.is_some() {
            return Err(EEXIST);
        }
        let name =
            CString::try_from_fmt(fmt!("{}", core::str::from_utf8(name).map_err(|_| EINVAL)?))?;
        // The host carries protection information (DIX), as tcm_loop's; `fabric_prot_type`
        // is read when the nexus is made, as in LIO.
        let pi = SessionPi {
            carries: true,
            fabric_type: PiType::from_attr(self.fabric_prot_type.load(Relaxed)),
        };
        *nexus = Some(Session::new(&self.port, &name, pi)?);
        Ok(())
    }
}

#[pinned_drop]
impl PinnedDrop for LoopTpg {
    fn drop(self: Pin<&mut Self>) {
        if let Some(s) = self.session.lock().take() {
            s.close(NEXUS_DRAIN);
        }
    }
}

impl FabricTpg for LoopTpg {
    fn show(&self, group: TpgGroup, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        match group {
            TpgGroup::Base => self.show_base(attr, page),
            TpgGroup::Attrib => self.show_attrib(attr, page),
            _ => Err(EINVAL),
        }
    }

    fn store(&self, group: TpgGroup, attr: &[u8], data: &[u8]) -> Result {
        match group {
            TpgGroup::Base => self.store_base(attr, data),
            TpgGroup::Attrib => self.store_attrib(attr, data),
            _ => Err(EINVAL),
        }
    }

    fn lun_linked(&self, lun: &Arc<Lun>) {
        if let Err(e) = self.host.add_device(u32::from(self.tag), lun.index) {
            pr_warn!(
                "adding SCSI device {}:0:{}:{} failed: {:?}\n",
                self.host.host_no(),
                self.tag,
                lun.index,
                e
            );
        }
    }

    fn lun_unlinking(&self, lun: &Lun) {
        self.host.remove_device(u32::from(self.tag), lun.index);
    }
}

impl LoopTpg {
    fn show_base(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        match attr {
            b"nexus" => match &*self.session.lock() {
                Some(s) => Ok(emit_line(page, s.initiator.to_bytes())),
                None => Err(ENODEV),
            },
            b"transport_status" => Ok(emit_line(
                page,
                if self.state.offline.load(Relaxed) {
                    b"offline"
                } else {
                    b"online"
                },
            )),
            b"address" => {
                let s = CString::try_from_fmt(fmt!("{}:0:{}", self.host.host_no(), self.tag))?;
                Ok(emit_line(page, s.to_bytes()))
            }
            _ => Err(EINVAL),
        }
    }

    fn store_base(&self, attr: &[u8], data: &[u8]) -> Result {
        let v = strip_nl(data);
        match attr {
            b"nexus" => self.set_nexus(v),
            b"transport_status" if v.starts_with(b"online") => {
                self.state.offline.store(false, Relaxed);
                Ok(())
            }
            b"transport_status" if v.starts_with(b"offline") => {
                self.state.offline.store(true, Relaxed);
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }

    fn show_attrib(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        match attr {
            b"fabric_prot_type" => {
                let v = [b'0' + self.fabric_prot_type.load(Relaxed) as u8];
                Ok(emit_line(page, &v))
            }
            _ => Err(EINVAL),
        }
    }

    fn store_attrib(&self, attr: &[u8], data: &[u8]) -> Result {
        match (attr, strip_nl(data)) {
            // As tcm_loop: 0, 1 or 3, for nexuses made from now on.
            (b"fabric_prot_type", v @ (b"0" | b"1" | b"3")) => {
                self.fabric_prot_type.store(u32::from(v[0] - b'0'), Relaxed);
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }
}

/// The SCSI host side: maps `(target id, lun)` to the core's LUN.
#[pin_data]
struct LoopHost {
    #[pin]
    tpgs: SpinLock<[Option<Arc<LoopTpg>>; MAX_TPGS]>,
}

/// What a `scsi_device` of ours points at: its LUN, and the nexus it was found through
/// (`None`: no nexus when the disk was scanned, so it answers nothing, as in tcm_loop).
struct LoopLun {
    lun: Arc<Lun>,
    session: Option<Arc<Session>>,
    tpg: Arc<TpgState>,
}

/// The loopback fabric's side of the command lifecycle: responses go to `scsi_done`.
struct LoopOps;

static LOOP_OPS: LoopOps = LoopOps;

impl FabricOps for LoopOps {
    fn queue_status(&self, cmd: CmdRef) {
        let (status, sense, resid) = (cmd.status(), cmd.sense(), cmd.resid());
        let mut c = match Command::from_cmd::<LoopHost>(cmd) {
            Ok(c) => c,
            Err(other) => {
                pr_err!("rtarget_loop: a command of another fabric came back\n");
                other.release();
                return;
            }
        };
        c.set_resid(resid);
        match (status, sense) {
            (cmd::CHECK_CONDITION, Some(sense)) => {
                let mut buf = [0u8; FIXED_SENSE_LEN];
                let n = sense.write_fixed(&mut buf);
                c.done_sense(&buf[..n]);
            }
            (status, _) => c.done(status),
        }
    }

    fn aborted(&self, cmd: CmdRef) {
        match Command::from_aborted::<LoopHost>(cmd) {
            // Timed out: the error handler that aborted it owns the `scsi_cmnd`.
            Ok(None) => {}
            // Aborted by a reset the initiator asked for: the midlayer retries it.
            Ok(Some(c)) => c.done_host(scsi_host::DID_RESET),
            Err(other) => {
                other.release();
            }
        }
    }
}

impl LoopHost {
    /// Calls `f` with the session of every TPG of the host that has one.
    fn sessions(&self, mut f: impl FnMut(&Arc<Session>)) {
        // The TPGs under the spinlock, their sessions (a mutex) after it.
        let tpgs: [Option<Arc<LoopTpg>>; MAX_TPGS] = self.tpgs.lock().clone();
        for tpg in tpgs.iter().flatten() {
            let session = tpg.session.lock().clone();
            if let Some(s) = session {
                f(&s);
            }
        }
    }
}

/// How often the host reset, which waits for every command, says what it is waiting for.
const HOST_RESET_WARN: kernel::time::Delta = kernel::time::Delta::from_secs(10);

impl HostOps for LoopHost {
    type Lun = LoopLun;
    const NAME: &'static CStr = c"rtarget_loop";
    const MODULE: &'static ThisModule = kernel::module::this_module::<crate::LocalModule>();
    // Per hardware queue (one per CPU): far above what a CPU keeps in flight here.
    const CAN_QUEUE: i32 = 256;
    const MAX_SECTORS: u32 = 0xffff;
    const SG_TABLESIZE: u16 = 256;
    const MAX_TARGETS: u32 = MAX_TPGS as u32;
    const MAX_LUNS: u64 = 65536;
    const PI: bool = true;

    fn sdev_init(&self, channel: u32, id: u32, lun: u64) -> Result<Arc<LoopLun>> {
        if channel != 0 {
            return Err(ENXIO);
        }
        let tpg = self
            .tpgs
            .lock()
            .get(id as usize)
            .and_then(|t| t.clone())
            .ok_or(ENXIO)?;
        let lun = tpg.port.lun(lun).ok_or(ENXIO)?;
        let session = tpg.session.lock().clone();
        Ok(Arc::new(
            LoopLun {
                lun,
                session,
                tpg: tpg.state.clone(),
            },
            GFP_KERNEL,
        )?)
    }

    fn queue_command(&self, l: &LoopLun, cmd: Command<'_>) {
        let Some(session) = &l.session else {
            return cmd.done_host(scsi_host::DID_NO_CONNECT);
        };
        if l.tpg.offline.load(Relaxed) {
            return cmd.done_host(scsi_host::DID_TRANSPORT_DISRUPTED);
        }
        // Per-CPU references: no cache line shared by the CPUs is written.
        let (Some(session), Some(lun)) = (LiveRef::try_new(&**session), LiveRef::try_new(&*l.lun))
        else {
            // The nexus is closing or the LUN is being unlinked.
            return cmd.done_host(scsi_host::DID_NO_CONNECT);
        };
        let c = cmd.start::<LoopHost>(session, lun, &LOOP_OPS);
        cmd::submit(c)
    }

    fn abort(&self, _l: &LoopLun, c: &Cmd, _host: HostRef<'_>) -> bool {
        tmf::abort_task(c, TMF_WAIT) != TmfResponse::Failed
    }

    fn device_reset(&self, l: &LoopLun, host: HostRef<'_>) -> bool {
        let Some(s) = &l.session else { return true };
        tmf::lun_reset(s, l.lun.index, &|f| host.for_each_cmd(f), TMF_WAIT) == TmfResponse::Complete
    }

    fn target_reset(&self, l: &LoopLun, host: HostRef<'_>) -> bool {
        let Some(s) = &l.session else { return true };
        tmf::nexus_reset(s, &|f| host.for_each_cmd(f), TMF_WAIT) == TmfResponse::Complete
    }

    /// The last escalation: after it the midlayer may finish and reuse every command, so it
    /// returns only when the core holds none of them, however long the backend takes (as LIO
    /// does), sleeping in short steps and saying what it waits for.
    fn host_reset(&self, host: HostRef<'_>) -> bool {
        self.sessions(|s| {
            tmf::nexus_reset(s, &|f| host.for_each_cmd(f), TMF_WAIT);
        });
        loop {
            let mut held = 0;
            host.for_each_cmd(&mut |c| held += u32::from(c.in_flight()));
            if held == 0 {
                return true;
            }
            pr_warn!(
                "rtarget_loop: host reset waits for {} commands held by backends\n",
                held
            );
            tmf::wait_for(HOST_RESET_WARN, &|f| host.for_each_cmd(f));
        }
    }
}

struct RtargetLoop {
    _registration: fabric::Registration,
}

impl kernel::Module for RtargetLoop {
    fn init(module: &'static ThisModule) -> Result<Self> {
        Ok(RtargetLoop {
            _registration: fabric::register(&LOOPBACK, module)?,
        })
    }
}

#[kunit_tests(rtarget_loop_bound)]
mod tests {
    use super::*;

    /// The core reaches this module's `Fabric` implementation through its vtable.
    #[test]
    fn core_calls_back_through_the_trait() {
        assert_eq!(fabric::version_of(c"loopback"), Some(LOOPBACK.version()));
    }

    #[test]
    fn wwn_prefix_picks_the_protocol() {
        assert!(LOOPBACK.make_wwn(c"bogus").is_err());
        assert!(
            matches!(LOOPBACK.make_wwn(c"fc.500140512345678"), Ok(w) if w.proto() == Proto::Fcp && w.port_name() == c"500140512345678")
        );
    }
}
