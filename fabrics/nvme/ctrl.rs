// SPDX-License-Identifier: GPL-2.0

//! Controllers: an I/O controller of a subsystem (its host a core session on the subsystem's
//! port) or a discovery controller, and their admin queue. Admin commands are answered in
//! turn by the admin queue's thread, from the pure builders of `proto/`; asynchronous events
//! (namespace, ANA and discovery log changes) complete the host's outstanding Asynchronous
//! Event Requests from whichever thread made the change.

use crate::admin::{self, Admin};
use crate::capsule::{self, Cqe, Sqe, Status, Transfer};
use crate::configfs::{Addr, NvPort, Subsys, DISCOVERY_NQN};
use crate::features::{fid, Features, Value};
use crate::identify::{self, cns, IDENTIFY_LEN};
use crate::log::{self, lid, GetLogPage};
use crate::queue::{Connected, Data, Link, MAX_TRANSFER, MDTS};
use crate::regs::{self, Change, Regs};
use crate::resv;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::atomic::{ordering::Relaxed, Atomic};
use kernel::sync::{Arc, Mutex};
use kernel::time::{Delta, Instant, Monotonic};
use rtarget_core::rt::net::Stream;
use rtarget_core::session::{Session, SessionPi};

/// The namespaces a controller reports (NN; NSIDs above are refused when made).
pub(crate) const MAX_NSID: u32 = resv::MASKED_NSIDS as u32;
/// How long a controller's end waits for its host's commands in the backends.
const CLOSE_WAIT: Delta = Delta::from_secs(30);
/// Changed namespaces remembered before the list overflows.
const CHANGED_MAX: usize = 1024;
/// The admin queue's receive timeout: how often the keep-alive timer is checked.
const KEEP_ALIVE_TICK_MS: u32 = 1000;
/// Discovery controller IDs.
static NEXT_DISC_CNTLID: Atomic<u32> = Atomic::new(0);

struct CtrlState {
    regs: Regs,
    features: Features,
    /// Command IDs of the outstanding Asynchronous Event Requests.
    aer: KVec<u16>,
    /// Events waiting for a request (type, information, log page).
    pending: KVec<(u8, u8, u8)>,
    /// Requests completed by an event, for the admin queue's thread to send.
    ready: KVec<(u16, (u8, u8, u8))>,
    /// Notices queued and not yet cleared by a read of their log.
    masked: admin::aen::Mask,
    changed: KVec<u32>,
    /// The reservation notification log.
    notices: resv::NoticeLog,
    /// Each namespace's Reservation Notification Mask.
    resv_masks: resv::NotifyMasks,
}

/// A controller.
#[pin_data]
pub(crate) struct Ctrl {
    pub(crate) cntlid: u16,
    pub(crate) port_id: u16,
    port: Arc<NvPort>,
    /// `None`: the discovery controller.
    subsys: Option<Arc<Subsys>>,
    pub(crate) hostnqn: CString,
    pub(crate) hostid: [u8; 16],
    /// The host as the core sees it (I/O controllers).
    pub(crate) session: Option<Arc<Session>>,
    #[pin]
    state: Mutex<CtrlState>,
    /// The admin queue's connection, while it lives.
    #[pin]
    admin: Mutex<Option<Arc<Link>>>,
    #[pin]
    io: Mutex<KVec<(u16, Arc<Stream>)>>,
    ended: Atomic<bool>,
    /// Set by I/O commands, cleared by the keep-alive check: traffic counts as keep-alive.
    pub(crate) traffic: Atomic<bool>,
}

fn nqn_cstring(b: &[u8]) -> Result<CString> {
    CString::try_from_fmt(format_args!(
        "{}",
        core::str::from_utf8(b).map_err(|_| EINVAL)?
    ))
}

type ConnectError = (Status, u64);

impl Ctrl {
    /// An admin queue's Connect: a new controller.
    pub(crate) fn connect(
        port: &Arc<NvPort>,
        discovery: bool,
        d: &capsule::ConnectData<'_>,
        kato_ms: u32,
    ) -> core::result::Result<Arc<Ctrl>, ConnectError> {
        let internal = (Status::INTERNAL, 0);
        let hostnqn = nqn_cstring(d.hostnqn).map_err(|_| {
            (
                Status::CONNECT_INVALID_PARAM,
                capsule::connect_data_error(512),
            )
        })?;
        let features = Features {
            kato: kato_ms.div_ceil(1000),
            ..Features::default()
        };
        let name = &hostnqn;
        let make = |cntlid: u16, subsys: Option<Arc<Subsys>>, session: Option<Arc<Session>>| {
            Arc::pin_init(
                try_pin_init!(Ctrl {
                    cntlid,
                    port_id: port.id,
                    port: port.clone(),
                    subsys,
                    hostnqn: name.to_cstring()?,
                    hostid: d.hostid,
                    session,
                    state <- kernel::new_mutex!(CtrlState {
                        regs: Regs::default(),
                        features,
                        aer: KVec::with_capacity(identify::AER_LIMIT as usize, GFP_KERNEL)?,
                        pending: KVec::new(),
                        ready: KVec::with_capacity(identify::AER_LIMIT as usize, GFP_KERNEL)?,
                        masked: admin::aen::Mask::default(),
                        changed: KVec::new(),
                        notices: resv::NoticeLog::default(),
                        resv_masks: resv::NotifyMasks::default(),
                    }),
                    admin <- kernel::new_mutex!(None),
                    io <- kernel::new_mutex!(KVec::new()),
                    ended: Atomic::new(false),
                    traffic: Atomic::new(false),
                }? Error),
                GFP_KERNEL,
            )
        };
        let ctrl = if discovery {
            let id = (NEXT_DISC_CNTLID.fetch_add(1, Relaxed) % 0xffef + 1) as u16;
            make(id, None, None).map_err(|_| internal)?
        } else {
            let subsys = port.subsystem(d.subnqn).ok_or((
                Status::CONNECT_INVALID_PARAM,
                capsule::connect_data_error(256),
            ))?;
            if !subsys.allows(d.hostnqn) {
                return Err((
                    Status::CONNECT_INVALID_HOST,
                    capsule::connect_data_error(512),
                ));
            }
            let session = Session::new(&subsys.core_port, &hostnqn, SessionPi::default())
                .map_err(|_| internal)?;
            // NVMe hosts learn of changes from asynchronous events.
            session.without_unit_attentions();
            let s = subsys.clone();
            let r = subsys.add_ctrl(|id| make(id, Some(s), Some(session.clone())));
            match r {
                Ok(c) => c,
                Err(_) => {
                    session.close(CLOSE_WAIT);
                    return Err(internal);
                }
            }
        };
        if port.add_ctrl(&ctrl).is_err() {
            ctrl.gone();
            return Err(internal);
        }
        // The subsystem may have left the port meanwhile, its controllers ended before this
        // one was among them.
        if let Some(s) = &ctrl.subsys {
            if port.subsystem(s.nqn.to_bytes()).is_none() {
                ctrl.gone();
                return Err((
                    Status::CONNECT_INVALID_PARAM,
                    capsule::connect_data_error(256),
                ));
            }
        }
        Ok(ctrl)
    }

    /// An I/O queue's Connect: the controller it joins.
    pub(crate) fn find(
        port: &Arc<NvPort>,
        discovery: bool,
        d: &capsule::ConnectData<'_>,
        qid: u16,
    ) -> core::result::Result<Arc<Ctrl>, ConnectError> {
        // Where Connect's QID lies in the SQE.
        const QID_AT: u64 = 42;
        let subsys = match port.subsystem(d.subnqn) {
            Some(s) if !discovery => s,
            _ => {
                return Err((
                    Status::CONNECT_INVALID_PARAM,
                    capsule::connect_data_error(256),
                ))
            }
        };
        let ctrl = subsys.ctrl(d.cntlid, d.hostnqn).ok_or((
            Status::CONNECT_INVALID_PARAM,
            capsule::connect_data_error(16),
        ))?;
        if qid > subsys.info().qid_max {
            return Err((Status::CONNECT_INVALID_PARAM, QID_AT));
        }
        if ctrl.ended.load(Relaxed) || ctrl.state.lock().regs.csts & regs::CSTS_RDY == 0 {
            return Err((Status::SEQUENCE, 0));
        }
        Ok(ctrl)
    }

    /// Whether namespace `nsid` takes reservation commands.
    pub(crate) fn reservations(&self, nsid: u32) -> bool {
        self.subsys.as_ref().and_then(|s| s.ns(nsid)).is_some_and(|n| n.reservations())
    }

    /// The ANA path status of namespace `nsid` through this controller's port (nvmet's
    /// `nvmet_check_ana_state`): two atomic loads, the namespace's group and its state here.
    pub(crate) fn ana_check(&self, nsid: u32) -> core::result::Result<(), Status> {
        let grpid = self.subsys.as_ref().map_or(1, |s| s.ns_groups.get(nsid));
        crate::nvm::ana_check(self.port.ana_state(grpid))
    }

    /// Its ANA log changed (a namespace moved group): the change count moves, the host is told.
    pub(crate) fn ana_changed(&self) {
        self.port.ana_chgcnt.fetch_add(1, Relaxed);
        self.event(admin::aen::ANA_CHANGE);
    }

    pub(crate) fn is_discovery(&self) -> bool {
        self.subsys.is_none()
    }

    pub(crate) fn add_io_queue(&self, qid: u16, stream: &Arc<Stream>) -> Result {
        let mut io = self.io.lock();
        if self.ended.load(Relaxed) || io.iter().any(|(q, _)| *q == qid) {
            return Err(EEXIST);
        }
        io.push((qid, stream.clone()), GFP_KERNEL)?;
        Ok(())
    }

    pub(crate) fn remove_io_queue(&self, qid: u16, stream: &Arc<Stream>) {
        self.io
            .lock()
            .retain(|(q, s)| !(*q == qid && Arc::ptr_eq(s, stream)));
    }

    /// Ends the I/O queues (a controller reset or shutdown).
    fn end_io_queues(&self) {
        for (_, s) in self.io.lock().iter() {
            s.shutdown();
        }
    }

    /// Ends the controller: every queue's connection is shut down; its threads finish.
    pub(crate) fn end(&self) {
        self.ended.store(true, Relaxed);
        if let Some(l) = self.admin.lock().as_ref() {
            l.stream.shutdown();
        }
        self.end_io_queues();
    }

    /// The admin queue is gone: the controller is forgotten and its host's nexus closes.
    pub(crate) fn gone(&self) {
        self.ended.store(true, Relaxed);
        *self.admin.lock() = None;
        self.end_io_queues();
        if let Some(s) = &self.subsys {
            s.remove_ctrl(self);
        }
        self.port.remove_ctrl(self);
        if let Some(s) = &self.session {
            if !s.close(CLOSE_WAIT) {
                pr_warn!("rtarget_nvme: a controller's host still has commands in a backend\n");
            }
        }
    }

    /// Namespace `nsid` changed: in the changed list, and a notice if the host wants it.
    pub(crate) fn ns_changed(&self, nsid: u32) {
        {
            let mut st = self.state.lock();
            st.resv_masks.reset(nsid);
            if !st.changed.contains(&nsid) && st.changed.len() <= CHANGED_MAX {
                let _ = st.changed.push(nsid, GFP_KERNEL);
            }
        }
        self.event(admin::aen::NS_CHANGED);
    }

    /// An asynchronous event: completes an outstanding request, or waits for one. Only the
    /// admin queue's thread sends (within its receive tick): a host that stops reading
    /// blocks nobody else, least of all the configfs writer that made the change. A notice
    /// once queued masks its kind until the host reads its log page.
    pub(crate) fn event(&self, ev: (u8, u8, u8)) {
        let mut st = self.state.lock();
        let enabled = match ev {
            admin::aen::NS_CHANGED => st.features.aen & 1 << 8 != 0,
            admin::aen::ANA_CHANGE => st.features.aen & 1 << 11 != 0,
            // Not a notice: Asynchronous Event Configuration does not gate it.
            admin::aen::RESERVATION => true,
            _ => st.features.aen & crate::features::AEN_DISCOVERY != 0,
        };
        if !enabled || !st.masked.admit(ev) {
            return;
        }
        match st.aer.pop() {
            // Room for it: `ready` has the capacity of `aer`.
            Some(cid) => {
                let _ = st.ready.push_within_capacity((cid, ev));
            }
            None => {
                if !st.pending.contains(&ev) && st.pending.push(ev, GFP_KERNEL).is_err() {
                    // Never sent, so never read: its kind must not stay masked.
                    st.masked.read(ev.2, false);
                }
            }
        }
    }
}

/// A discovery log entry for a subsystem (or referral) reached at `a`.
fn disc_entry<'a>(a: &'a Addr, portid: u16, subtype: u8, nqn: &'a [u8]) -> log::DiscEntry<'a> {
    log::DiscEntry {
        trtype: a.trtype,
        adrfam: a.adrfam,
        subtype,
        treq: a.treq,
        portid,
        trsvcid: a.trsvcid(),
        subnqn: nqn,
        traddr: a.traddr(),
    }
}

/// Runs a controller's admin queue until it ends.
pub(crate) fn serve_admin(link: Link, c: Connected) {
    let ctrl = c.ctrl;
    let Ok(link) = Arc::new(link, GFP_KERNEL) else {
        ctrl.gone();
        return;
    };
    *ctrl.admin.lock() = Some(link.clone());
    // Ended before its connection was known: nothing shut it down.
    if ctrl.ended.load(Relaxed) {
        ctrl.gone();
        return;
    }
    let mut data = KVec::new();
    if data
        .resize(capsule::ADMIN_IN_CAPSULE as usize, 0, GFP_KERNEL)
        .is_err()
    {
        ctrl.gone();
        return;
    }
    let mut q = AdminQueue {
        ctrl: &ctrl,
        link: &link,
        last_ka: Instant::now(),
        sqhd: 1,
        size: c.size,
    };
    q.run(&mut data);
    ctrl.gone();
}

struct AdminQueue<'a> {
    ctrl: &'a Arc<Ctrl>,
    link: &'a Arc<Link>,
    last_ka: Instant<Monotonic>,
    sqhd: u16,
    size: u32,
}

/// What an admin command answers: its status, completion dword 0 and data.
struct Answer {
    status: Status,
    result: u64,
    data: Option<KVec<u8>>,
}

impl Answer {
    fn status(status: Status) -> Answer {
        Answer {
            status,
            result: 0,
            data: None,
        }
    }
    fn ok(result: u64) -> Answer {
        Answer {
            status: Status::SUCCESS,
            result,
            data: None,
        }
    }
    fn data(d: KVec<u8>) -> Answer {
        Answer {
            status: Status::SUCCESS,
            result: 0,
            data: Some(d),
        }
    }
}

impl AdminQueue<'_> {
    fn expired(&self) -> bool {
        let kato = self.ctrl.state.lock().features.kato;
        if kato == 0 {
            return false;
        }
        // nvmet's grace: the timeout once more.
        self.last_ka.elapsed() > Delta::from_secs(2 * i64::from(kato))
    }

    /// Logs the reservation changes the core queued on the host's nexus (the unit
    /// attentions a SCSI nexus gets), unless the Reservation Notification Mask hides their
    /// kind, and tells the host.
    fn log_reservation_notices(&self) {
        let Some(session) = &self.ctrl.session else {
            return;
        };
        while let Some((lun, (asc, ascq))) = session.take_reservation_notice() {
            let (Some(kind), Ok(nsid)) = (resv::notice_of_ua(asc, ascq), u32::try_from(lun)) else {
                continue;
            };
            let logged = {
                let mut st = self.ctrl.state.lock();
                !st.resv_masks.hides(nsid, kind) && st.notices.push(kind, nsid)
            };
            if logged {
                self.ctrl.event(admin::aen::RESERVATION);
            }
        }
    }

    /// Sends the completions events made ready.
    fn send_events(&self) -> Result {
        loop {
            let Some((cid, (t, info, page))) = self.ctrl.state.lock().ready.pop() else {
                return Ok(());
            };
            self.link.send_cqe(&Cqe {
                result: u64::from(admin::async_event(t, info, page)),
                sqhd: self.sqhd,
                sqid: 0,
                cid,
                status: Status::SUCCESS,
            })?;
        }
    }

    fn run(&mut self, data: &mut KVec<u8>) {
        let mut r = crate::queue::Received::new();
        loop {
            if self.ctrl.traffic.xchg(false, Relaxed) {
                self.last_ka = Instant::now();
            }
            self.log_reservation_notices();
            if self.send_events().is_err() {
                return;
            }
            let tick = Some(KEEP_ALIVE_TICK_MS);
            match crate::queue::recv_header(&self.link.stream, Some(&self.link.neg), &mut r, tick) {
                Ok(()) => {}
                Err(crate::queue::RecvError::Idle) => {
                    if self.ctrl.ended.load(Relaxed) {
                        return;
                    }
                    if self.expired() {
                        pr_info!(
                            "rtarget_nvme: controller {} of {}: keep-alive timeout\n",
                            self.ctrl.cntlid,
                            self.ctrl.hostnqn.to_str().unwrap_or("?")
                        );
                        return;
                    }
                    continue;
                }
                Err(crate::queue::RecvError::Fatal(f, n)) => {
                    return self.link.terminate(f, &r.h[..n]);
                }
                Err(crate::queue::RecvError::Closed) => return,
            }
            if r.f.header.ty != crate::pdu::ty::CAPSULE_CMD {
                // No R2T is ever sent on an admin queue: H2CData is out of sequence;
                // H2CTermReq ends the connection.
                if r.f.header.ty == crate::pdu::ty::H2C_DATA {
                    let n = usize::from(r.f.header.hlen);
                    self.link.terminate(
                        crate::pdu::Fatal {
                            fes: crate::pdu::Fes::PduSequence,
                            fei: 0,
                        },
                        &r.h[..n],
                    );
                }
                return;
            }
            let n = r.f.data as usize;
            if n > data.len() {
                return;
            }
            match crate::queue::recv_data_bytes(&self.link.stream, &r.f, &mut data[..n]) {
                Ok(true) => {}
                _ => return,
            }
            let raw = crate::pdu::sqe(&core::array::from_fn(|i| r.h[i]));
            let sqe = Sqe::decode(&raw);
            self.last_ka = Instant::now();
            let sqhd = self.sqhd;
            self.sqhd = ((u32::from(self.sqhd) + 1) % self.size) as u16;
            let Some(a) = self.command(&sqe, &raw, &data[..n]) else {
                // An Asynchronous Event Request: answered when an event comes.
                continue;
            };
            let sent = match &a.data {
                Some(d) if a.status == Status::SUCCESS && !d.is_empty() => {
                    self.link.send_data(sqe.cid, Data::Bytes(d), false)
                }
                _ => Ok(()),
            }
            .and_then(|()| {
                self.link.send_cqe(&Cqe {
                    result: a.result,
                    sqhd,
                    sqid: 0,
                    cid: sqe.cid,
                    status: a.status,
                })
            });
            if sent.is_err() {
                return;
            }
        }
    }

    /// One admin or Fabrics command; `None` for an Asynchronous Event Request kept for later.
    fn command(&mut self, sqe: &Sqe, raw: &[u8; 64], in_capsule: &[u8]) -> Option<Answer> {
        let ctrl = self.ctrl;
        let discovery = ctrl.is_discovery();
        if sqe.opcode == capsule::FABRICS {
            return Some(self.fabrics(sqe, raw));
        }
        if ctrl.state.lock().regs.csts & regs::CSTS_RDY == 0 {
            return Some(Answer::status(Status::SEQUENCE));
        }
        let limits = capsule::Limits {
            in_capsule: capsule::ADMIN_IN_CAPSULE,
            transfer: MAX_TRANSFER,
        };
        let len = match capsule::transfer(sqe, in_capsule.len() as u32, &limits) {
            Ok(Transfer::None) => 0,
            Ok(Transfer::Remote(n)) if sqe.direction().1 => n,
            // No admin command here takes data from the host.
            Ok(_) => return Some(Answer::status(Status::INVALID_FIELD)),
            Err(s) => return Some(Answer::status(s)),
        };
        let cmd = match admin::decode(sqe, discovery, len) {
            Ok(c) => c,
            Err(s) => return Some(Answer::status(s)),
        };
        Some(match cmd {
            Admin::Identify { cns, nsid } => self.identify(cns, nsid),
            Admin::GetLogPage(g) => self.log_page(&g),
            Admin::SetFeatures | Admin::GetFeatures if !discovery && sqe.cdw[0] as u8 == fid::RESV_MASK => {
                self.resv_mask(sqe, matches!(cmd, Admin::SetFeatures))
            }
            Admin::SetFeatures => {
                let max_qid = self.max_qid();
                let r = ctrl.state.lock().features.set(sqe, max_qid, discovery);
                match r {
                    Ok(v) => Answer::ok(u64::from(v)),
                    Err(s) => Answer::status(s),
                }
            }
            Admin::GetFeatures => {
                let max_qid = self.max_qid();
                let r = ctrl.state.lock().features.get(sqe, max_qid, true);
                match r {
                    Ok(Value::Dword(v)) => Answer::ok(u64::from(v)),
                    Ok(Value::HostId) => {
                        let mut d = KVec::new();
                        if d.extend_from_slice(&ctrl.hostid, GFP_KERNEL).is_err() {
                            return Some(Answer::status(Status::INTERNAL));
                        }
                        Answer::data(d)
                    }
                    Err(s) => Answer::status(s),
                }
            }
            Admin::KeepAlive => Answer::ok(0),
            Admin::AsyncEvent => {
                let mut st = ctrl.state.lock();
                if let Some(ev) = (!st.pending.is_empty()).then(|| st.pending.remove(0).ok()).flatten() {
                    drop(st);
                    return Some(Answer::ok(u64::from(admin::async_event(ev.0, ev.1, ev.2))));
                }
                if st.aer.push_within_capacity(sqe.cid).is_err() {
                    // Asynchronous Event Request Limit Exceeded.
                    return Some(Answer::status(Status::specific(0x05)));
                }
                return None;
            }
            // Nothing is ever aborted here (as nvmet): bit 0 says so.
            Admin::Abort { .. } => Answer::ok(1),
        })
    }

    fn max_qid(&self) -> u16 {
        self.ctrl.subsys.as_ref().map_or(0, |s| s.info().qid_max)
    }

    fn fabrics(&mut self, sqe: &Sqe, raw: &[u8; 64]) -> Answer {
        let ctrl = self.ctrl;
        let discovery = ctrl.is_discovery();
        let p = match capsule::property(raw) {
            Ok(p) => p,
            Err(s) => return Answer::status(s),
        };
        match sqe.nsid as u8 {
            capsule::fctype::PROPERTY_GET => {
                let cap = regs::cap(self.ctrl.port.params().max_queue_size as u16);
                let version = ctrl.subsys.as_ref().map_or(identify::VERSION, |s| s.info().version);
                match ctrl.state.lock().regs.get(&p, cap, version) {
                    Ok(v) => Answer::ok(v),
                    Err(s) => Answer::status(s),
                }
            }
            capsule::fctype::PROPERTY_SET => {
                let r = ctrl.state.lock().regs.set(&p, discovery);
                match r {
                    Ok(Change::Reset | Change::Shutdown) => {
                        ctrl.end_io_queues();
                        Answer::ok(0)
                    }
                    Ok(_) => Answer::ok(0),
                    Err(s) => Answer::status(s),
                }
            }
            _ => Answer::status(Status::INVALID_OPCODE),
        }
    }

    fn identify(&self, cns: u8, nsid: u32) -> Answer {
        let mut d = KVec::new();
        if d.resize(IDENTIFY_LEN, 0, GFP_KERNEL).is_err() {
            return Answer::status(Status::INTERNAL);
        }
        let out: &mut [u8; IDENTIFY_LEN] = match (&mut d[..]).try_into() {
            Ok(o) => o,
            Err(_) => return Answer::status(Status::INTERNAL),
        };
        let ctrl = self.ctrl;
        match (cns, &ctrl.subsys) {
            (cns::CTRL, s) => {
                let params = ctrl.port.params();
                let info = s.as_ref().map(|s| s.info());
                let disc_nqn = ctrl.port.nvme.discovery_nqn.lock().to_cstring();
                let subnqn: &[u8] = match (s, &disc_nqn) {
                    (Some(s), _) => s.nqn.to_bytes(),
                    (None, Ok(n)) => n.to_bytes(),
                    (None, Err(_)) => DISCOVERY_NQN,
                };
                let empty = [0u8; 0];
                let c = identify::CtrlInfo {
                    serial: info.as_ref().map_or(&empty[..], |i| &i.serial[..i.serial_len]),
                    model: info.as_ref().map_or(&b"Linux"[..], |i| &i.model[..i.model_len]),
                    firmware: info
                        .as_ref()
                        .map_or(&b"7.3"[..], |i| &i.firmware[..i.firmware_len]),
                    ieee_oui: info.as_ref().map_or(0, |i| i.ieee_oui),
                    cntlid: ctrl.cntlid,
                    version: info.as_ref().map_or(identify::VERSION, |i| i.version),
                    subnqn,
                    discovery: s.is_none(),
                    mdts: MDTS,
                    maxcmd: params.max_queue_size as u16,
                    nn: MAX_NSID,
                    inline_data: params.inline_data_size,
                    vwc: true,
                };
                identify::ctrl(&c, out);
            }
            (cns::NS, Some(s)) => {
                if nsid == 0 || nsid == 0xffff_ffff {
                    return Answer::status(Status::INVALID_NS);
                }
                // An inactive NSID reads as zeroes.
                out.fill(0);
                if let Some(v) = s.ns(nsid).and_then(|n| n.view()) {
                    if let Some(g) = v.device.facts() {
                        let state = ctrl.port.ana_state(v.ana_grpid);
                        identify::ns(
                            &identify::NsInfo {
                                blocks: g.blocks,
                                block_shift: g.block_shift,
                                zeroes_after_deallocate: g.unmap && g.unmap_zeroes,
                                nguid: v.nguid,
                                anagrpid: v.ana_grpid,
                                read_only: false,
                                reservations: v.resv_enable,
                                nsid,
                                accessible: crate::nvm::ana_check(state).is_ok(),
                            },
                            out,
                        );
                    }
                }
            }
            (cns::ACTIVE_NS_LIST, Some(s)) => {
                if nsid >= 0xffff_fffe {
                    return Answer::status(Status::INVALID_NS);
                }
                let mut ids = [0u32; IDENTIFY_LEN / 4];
                let mut n = 0;
                s.for_each_ns(|ns| {
                    if ns.nsid > nsid && n < ids.len() {
                        ids[n] = ns.nsid;
                        n += 1;
                    }
                });
                identify::active_ns_list(ids[..n].iter().copied(), nsid, out);
            }
            (cns::NS_DESC_LIST, Some(s)) => match s.ns(nsid).and_then(|n| n.view()) {
                Some(v) => identify::ns_desc_list(&v.uuid, &v.nguid, out),
                None => return Answer::status(Status::INVALID_NS),
            },
            _ => return Answer::status(Status::INVALID_FIELD),
        }
        Answer::data(d)
    }

    /// Set or Get Features 82h: a namespace's Reservation Notification Mask (or, set,
    /// every namespace's).
    fn resv_mask(&self, sqe: &Sqe, set: bool) -> Answer {
        let Some(s) = &self.ctrl.subsys else {
            return Answer::status(Status::INVALID_FIELD);
        };
        // The namespaces that take one, listed before the controller's lock is taken.
        let mut takers: KVec<u32> = KVec::new();
        let mut listed = true;
        s.for_each_ns(|n| {
            if n.reservations() && takers.push(n.nsid, GFP_KERNEL).is_err() {
                listed = false;
            }
        });
        if !listed {
            return Answer::status(Status::INTERNAL);
        }
        let takes = |nsid: u32| takers.contains(&nsid);
        let mut st = self.ctrl.state.lock();
        let r = if set {
            st.resv_masks.set(sqe.nsid, sqe.cdw[1], takes)
        } else {
            st.resv_masks.get(sqe.nsid, takes)
        };
        match r {
            Ok(v) => Answer::ok(u64::from(v)),
            Err(e) => Answer::status(e),
        }
    }

    fn log_page(&self, g: &GetLogPage) -> Answer {
        let ctrl = self.ctrl;
        // Unmasked before the page is built: a change made meanwhile is sent, not lost.
        ctrl.state.lock().masked.read(g.lid, g.rae);
        let mut page = KVec::new();
        let built = match g.lid {
            lid::ERROR => page.resize(64 * usize::from(identify::ERROR_LOG_SLOTS), 0, GFP_KERNEL),
            lid::SMART => page.resize(log::SMART_LEN, 0, GFP_KERNEL).map(|()| {
                if let Ok(o) = (&mut page[..]).try_into() {
                    log::smart(&log::Smart::default(), o);
                }
            }),
            lid::FW_SLOT => page.resize(log::FW_SLOT_LEN, 0, GFP_KERNEL).map(|()| {
                let fw = ctrl.subsys.as_ref().map(|s| s.info());
                if let (Ok(o), Some(i)) = ((&mut page[..]).try_into(), fw) {
                    log::fw_slot(&i.firmware[..i.firmware_len], o);
                }
            }),
            lid::CMD_EFFECTS => page.resize(log::CMD_EFFECTS_LEN, 0, GFP_KERNEL).map(|()| {
                if let Ok(o) = (&mut page[..]).try_into() {
                    log::cmd_effects(o);
                }
            }),
            lid::CHANGED_NS => page.resize(log::CHANGED_NS_LEN, 0, GFP_KERNEL).map(|()| {
                let mut st = ctrl.state.lock();
                if let Ok(o) = (&mut page[..]).try_into() {
                    log::changed_ns(&st.changed, o);
                }
                if !g.rae {
                    st.changed.clear();
                }
            }),
            lid::ANA => self.ana_log(g, &mut page),
            lid::RESERVATION => page.resize(resv::NOTICE_LEN, 0, GFP_KERNEL).map(|()| {
                if let Ok(o) = (&mut page[..]).try_into() {
                    ctrl.state.lock().notices.pop(o);
                }
            }),
            lid::DISCOVERY => self.discovery_log(&mut page),
            _ => return Answer::status(Status::INVALID_FIELD),
        };
        if built.is_err() {
            return Answer::status(Status::INTERNAL);
        }
        // Hosts read a page in pieces: past the end of any page but the discovery log (whose
        // offsets nvmet checks) there are only zeroes.
        let range = match g.window(page.len()) {
            Ok(r) => r,
            Err(_) if g.lid != lid::DISCOVERY => 0..0,
            Err(s) => return Answer::status(s),
        };
        let mut d = KVec::new();
        if d.resize(g.len as usize, 0, GFP_KERNEL).is_err() {
            return Answer::status(Status::INTERNAL);
        }
        let n = range.len();
        d[..n].copy_from_slice(&page[range]);
        Answer::data(d)
    }

    /// The ANA log: group 1 and every group a namespace of the subsystem is in, each with
    /// its state on this port (inaccessible where the port lacks it) and its enabled
    /// namespaces (RGO: groups only), as nvmet lists them.
    fn ana_log(&self, g: &GetLogPage, page: &mut KVec<u8>) -> core::result::Result<(), kernel::alloc::AllocError> {
        let Some(s) = &self.ctrl.subsys else {
            return Ok(());
        };
        let rgo = g.lsp & 1 != 0;
        let mut nsids: KVec<(u32, u32)> = KVec::new();
        let mut err = Ok(());
        s.for_each_ns(|ns| {
            if let Some(v) = ns.view() {
                if nsids.push((v.ana_grpid, ns.nsid), GFP_KERNEL).is_err() {
                    err = Err(kernel::alloc::AllocError);
                }
            }
        });
        err?;
        let mut ids: KVec<u32> = KVec::with_capacity(nsids.len(), GFP_KERNEL)?;
        let mut groups: KVec<(u32, u8, usize, usize)> = KVec::new();
        for grpid in 1..=identify::ANA_GROUPS {
            if grpid != 1 && !nsids.iter().any(|(g, _)| *g == grpid) {
                continue;
            }
            let state = self.ctrl.port.ana_state(grpid);
            let start = ids.len();
            for (gid, nsid) in nsids.iter() {
                if *gid == grpid {
                    ids.push(*nsid, GFP_KERNEL)?;
                }
            }
            groups.push((grpid, state, start, ids.len()), GFP_KERNEL)?;
        }
        let mut list: KVec<log::AnaGroup<'_>> = KVec::with_capacity(groups.len(), GFP_KERNEL)?;
        for (grpid, state, a, b) in groups.iter() {
            list.push(
                log::AnaGroup {
                    grpid: *grpid,
                    state: *state,
                    nsids: &ids[*a..*b],
                },
                GFP_KERNEL,
            )?;
        }
        page.resize(16 + 32 * list.len() + 4 * ids.len(), 0, GFP_KERNEL)?;
        let chgcnt = self.ctrl.port.ana_chgcnt.load(Relaxed);
        let n = log::ana_page(&list, chgcnt, rgo, page);
        page.truncate(n);
        Ok(())
    }

    /// The discovery log of this port for this host: the discovery subsystem itself, the
    /// subsystems it may connect to, then the referrals.
    fn discovery_log(&self, page: &mut KVec<u8>) -> core::result::Result<(), kernel::alloc::AllocError> {
        let port = &self.ctrl.port;
        let addr = port.addr();
        let host = self.ctrl.hostnqn.to_bytes();
        let disc = port.nvme.discovery_nqn.lock().to_cstring().map_err(|_| kernel::alloc::AllocError)?;
        let mut nqns: KVec<CString> = KVec::new();
        let mut err = Ok(());
        port.for_each_subsys(|s| {
            if s.allows(host) {
                match s.nqn.to_cstring() {
                    Ok(n) => {
                        if nqns.push(n, GFP_KERNEL).is_err() {
                            err = Err(kernel::alloc::AllocError);
                        }
                    }
                    Err(_) => err = Err(kernel::alloc::AllocError),
                }
            }
        });
        err?;
        let mut refs: KVec<(u16, Addr)> = KVec::new();
        port.for_each_referral(|id, a| {
            if refs.push((id, a.clone()), GFP_KERNEL).is_err() {
                err = Err(kernel::alloc::AllocError);
            }
        });
        err?;
        let mut entries: KVec<log::DiscEntry<'_>> = KVec::new();
        entries.push(disc_entry(&addr, port.id, log::subtype::CURRENT, disc.to_bytes()), GFP_KERNEL)?;
        for n in nqns.iter() {
            entries.push(disc_entry(&addr, port.id, log::subtype::NVME, n.to_bytes()), GFP_KERNEL)?;
        }
        for (id, a) in refs.iter() {
            entries.push(disc_entry(a, *id, log::subtype::REFERRAL, DISCOVERY_NQN), GFP_KERNEL)?;
        }
        page.resize(log::DISC_RECORD_LEN * (entries.len() + 1), 0, GFP_KERNEL)?;
        let genctr = port.nvme.genctr.load(Relaxed);
        let n = log::discovery_page(&entries, genctr, page);
        page.truncate(n);
        Ok(())
    }
}
