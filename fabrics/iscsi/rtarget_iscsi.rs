// SPDX-License-Identifier: GPL-2.0

//! rtarget_iscsi: the iSCSI fabric (RFC 7143) over kernel TCP, under LIO's `target/iscsi`.
//!
//! `iscsi/<iqn>/tpgt_<N>/np/<ip:port>` listens (IPv4, IPv6, `[::]` dual-stack), each accepted
//! connection gets its own kernel thread, logs in through `login.rs` (pure, host-tested and
//! fuzzed, like every codec here), and then serves a discovery session (SendTargets, NOP-Out,
//! Logout; below) or a normal session's SCSI commands (`session.rs`, with a transmit thread).
//!
//! Threads: one acceptor per portal, one per connection, plus a transmit thread per normal
//! session. `rmdir np/<portal>` shuts the listener and every connection's socket down, then
//! waits for their threads.

#![allow(missing_docs)]

use core::any::Any;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::atomic::{ordering::Relaxed, Atomic};
use kernel::sync::{Arc, Mutex};
use kernel::time::{delay::fsleep, Delta, Instant, Monotonic};
use rtarget_core::acl::NodeAcl;
use rtarget_core::fabric::{self, AclGroup, Fabric, FabricAcl, FabricTpg, FabricWwn, TpgGroup};
use rtarget_core::lun::Port;
use rtarget_core::proto::spc::Proto;
use rtarget_core::rt::configfs::{emit_line, strip_nl, Attr};
use rtarget_core::rt::crypto;
use rtarget_core::rt::net::{Acceptor, AcceptorSetup, SockAddr, Stream};
use rtarget_core::session::{Session, SessionPi};
use rtarget_core::tmf::Tasks;

mod acl;
mod session;

// The pure protocol crate (fabrics/iscsi/proto), module by module at the crate root, where its
// `crate::` paths resolve.
#[path = "proto/src/chap.rs"]
pub mod chap;
#[path = "proto/src/login.rs"]
pub mod login;
#[path = "proto/src/pdu.rs"]
pub mod pdu;
#[path = "proto/src/portal.rs"]
pub mod portal;
#[path = "proto/src/serial.rs"]
pub mod serial;
#[path = "proto/src/text.rs"]
pub mod text;
#[path = "proto/src/tpg_param.rs"]
pub mod tpg_param;
#[path = "proto/src/xfer.rs"]
pub mod xfer;

use login::{Auth, Login, Status, Step};
use pdu::{login_status, Framing, Request, Response, Sn, BHS_LEN, RESERVED_TAG};
use portal::Ip;
use text::{Params, SessionType, Writer};
use tpg_param::TpgParams;

module! {
    type: RtargetIscsi,
    name: "rtarget_iscsi",
    authors: ["rtarget developers"],
    description: "rtarget iSCSI fabric (RFC 7143, LIO's configfs tree)",
    license: "GPL",
}

/// The data segment the target takes in a login or Text request (its MaxRecvDataSegmentLength
/// during login, as LIO).
const LOGIN_SEGMENT: usize = 8192;
/// A login's text across Login Requests with the C bit, at most.
const LOGIN_TEXT_MAX: usize = 65536;
/// Pending connections per portal.
const BACKLOG: i32 = 256;
/// Connections served at once per portal; more are closed at accept.
const MAX_CONNS: usize = 1024;
/// Login Requests in one login, at most.
const LOGIN_PDUS: usize = 64;

struct Iscsi;

static ISCSI: Iscsi = Iscsi;

static TPG_ATTRS: [Attr; 2] = [Attr::rw(c"enable"), Attr::ro(c"dynamic_sessions")];

/// `tpgt_<N>/attrib`: LIO's names, defaults and bounds (iscsi_target_core.h, `TA_*`).
static ATTRIB: [(&CStr, u32, u32, u32); 13] = [
    (c"authentication", 1, 0, 1),
    (c"login_timeout", 15, 5, 30),
    (c"generate_node_acls", 0, 0, 1),
    (c"default_cmdsn_depth", 64, 1, 512),
    (c"cache_dynamic_acls", 0, 0, 1),
    (c"demo_mode_write_protect", 1, 0, 1),
    (c"prod_mode_write_protect", 0, 0, 1),
    (c"demo_mode_discovery", 1, 0, 1),
    (c"default_erl", 0, 0, 2),
    (c"t10_pi", 0, 0, 1),
    (c"fabric_prot_type", 0, 0, 3),
    (c"tpg_enabled_sendtargets", 1, 0, 1),
    (c"login_keys_workaround", 1, 0, 1),
];
static TPG_ATTRIB_ATTRS: [Attr; 13] = {
    let mut a = [Attr::rw(c"authentication"); 13];
    let mut i = 0;
    while i < a.len() {
        a[i] = Attr::rw(ATTRIB[i].0);
        i += 1;
    }
    a
};
/// `tpgt_<N>/param`: [`tpg_param::KEYS`], in LIO's order.
static TPG_PARAM_ATTRS: [Attr; 21] = [
    Attr::rw(c"AuthMethod"),
    Attr::rw(c"HeaderDigest"),
    Attr::rw(c"DataDigest"),
    Attr::rw(c"MaxConnections"),
    Attr::rw(c"TargetAlias"),
    Attr::rw(c"InitialR2T"),
    Attr::rw(c"ImmediateData"),
    Attr::rw(c"MaxRecvDataSegmentLength"),
    Attr::rw(c"MaxXmitDataSegmentLength"),
    Attr::rw(c"MaxBurstLength"),
    Attr::rw(c"FirstBurstLength"),
    Attr::rw(c"DefaultTime2Wait"),
    Attr::rw(c"DefaultTime2Retain"),
    Attr::rw(c"MaxOutstandingR2T"),
    Attr::rw(c"DataPDUInOrder"),
    Attr::rw(c"DataSequenceInOrder"),
    Attr::rw(c"ErrorRecoveryLevel"),
    Attr::rw(c"IFMarker"),
    Attr::rw(c"OFMarker"),
    Attr::rw(c"IFMarkInt"),
    Attr::rw(c"OFMarkInt"),
];
const AUTHENTICATION: usize = 0;
const LOGIN_TIMEOUT: usize = 1;
const GENERATE_NODE_ACLS: usize = 2;
const DEMO_MODE_WRITE_PROTECT: usize = 5;
const PROD_MODE_WRITE_PROTECT: usize = 6;
const DEMO_MODE_DISCOVERY: usize = 7;
const DEFAULT_CMDSN_DEPTH: usize = 3;
const TPG_ENABLED_SENDTARGETS: usize = 11;

impl Fabric for Iscsi {
    fn name(&self) -> &'static CStr {
        c"iscsi"
    }

    fn version(&self) -> &'static CStr {
        c"rtarget iSCSI fabric v0.2"
    }

    fn make_wwn(&self, name: &CStr) -> Result<Arc<dyn FabricWwn>> {
        let s = name.to_bytes();
        // iSCSI names (RFC 7143 4.2.7): iqn., eui. or naa., at most 223 bytes, as LIO checks.
        let ok_prefix = s.starts_with(b"iqn.") || s.starts_with(b"eui.") || s.starts_with(b"naa.");
        if !ok_prefix || s.len() > login::MAX_NAME || s.iter().any(|c| c.is_ascii_whitespace()) {
            pr_warn!("iSCSI target names start with iqn., eui. or naa. (at most 223 bytes)\n");
            return Err(EINVAL);
        }
        let wwn = Arc::pin_init(
            try_pin_init!(IscsiWwn {
                name: name.to_cstring()?,
                tpgs <- kernel::new_mutex!(KVec::new()),
            }? Error),
            GFP_KERNEL,
        )?;
        Ok(wwn)
    }

    fn tpg_attrs(&self, group: TpgGroup) -> &'static [Attr] {
        match group {
            TpgGroup::Base => &TPG_ATTRS,
            TpgGroup::Attrib => &TPG_ATTRIB_ATTRS,
            TpgGroup::Auth => &acl::AUTH_ATTRS,
            TpgGroup::Param => &TPG_PARAM_ATTRS,
        }
    }

    fn acl_attrs(&self, group: AclGroup) -> &'static [Attr] {
        match group {
            AclGroup::Base => &acl::BASE_ATTRS,
            AclGroup::Attrib => &acl::ATTRIB_ATTRS,
            AclGroup::Auth => &acl::AUTH_ATTRS,
            AclGroup::Param => &acl::PARAM_ATTRS,
        }
    }
}

/// `iscsi/<iqn>`.
#[pin_data]
struct IscsiWwn {
    name: CString,
    #[pin]
    tpgs: Mutex<KVec<Arc<IscsiTpg>>>,
}

impl FabricWwn for IscsiWwn {
    fn proto(&self) -> Proto {
        Proto::Iscsi
    }

    fn port_name(&self) -> &CStr {
        &self.name
    }

    fn make_tpg(&self, tag: u16, port: Arc<Port>) -> Result<Arc<dyn FabricTpg>> {
        if tag == 0 {
            return Err(EINVAL);
        }
        // tpgt_1 and tpgt_01 are the same TPG.
        if self.tpgs.lock().iter().any(|t| t.tag == tag) {
            return Err(EEXIST);
        }
        let settings = Arc::pin_init(
            try_pin_init!(Settings {
                enabled: Atomic::new(false),
                attrib: core::array::from_fn(|i| Atomic::new(ATTRIB[i].1)),
                params <- kernel::new_mutex!(TpgParams::default()),
                auth <- acl::AuthStore::new(),
            }? Error),
            GFP_KERNEL,
        )?;
        let core = Arc::pin_init(
            try_pin_init!(TpgCore {
                target: self.name.to_cstring()?,
                port,
                sessions <- kernel::new_mutex!(KVec::new()),
                acls <- kernel::new_mutex!(KVec::new()),
            }? Error),
            GFP_KERNEL,
        )?;
        let tpg_core = core.clone();
        let tpg = Arc::pin_init(
            try_pin_init!(IscsiTpg {
                tag,
                settings,
                core: tpg_core,
                portals <- kernel::new_mutex!(KVec::new()),
            }? Error),
            GFP_KERNEL,
        )?;
        self.tpgs.lock().push(tpg.clone(), GFP_KERNEL)?;
        // PREEMPT AND ABORT finds the sessions' commands through the TPG.
        core.port.set_tasks(Some(core.clone()));
        Ok(tpg)
    }

    fn drop_tpg(&self, tag: u16) {
        let mut tpgs = self.tpgs.lock();
        if let Some(i) = tpgs.iter().position(|t| t.tag == tag) {
            if let Ok(t) = tpgs.remove(i) {
                t.core.port.set_tasks(None);
            }
        }
    }
}

/// What a TPG's connections read: `enable`, `attrib/`, `param/` and `auth/`.
#[pin_data]
struct Settings {
    enabled: Atomic<bool>,
    attrib: [Atomic<u32>; 13],
    #[pin]
    params: Mutex<TpgParams>,
    /// The credentials of demo-mode sessions.
    #[pin]
    auth: acl::AuthStore,
}

impl Settings {
    fn attrib(&self, i: usize) -> u32 {
        self.attrib[i].load(Relaxed)
    }
}

/// What a TPG's portals and sessions share.
#[pin_data]
struct TpgCore {
    /// The target's name (its WWN).
    target: CString,
    port: Arc<Port>,
    /// Its normal sessions, for reinstatement, `dynamic_sessions` and task management.
    #[pin]
    sessions: Mutex<KVec<SessionEntry>>,
    /// The iSCSI part of its node ACLs.
    #[pin]
    acls: Mutex<KVec<Arc<acl::IscsiAcl>>>,
}

/// A normal session logged in to a TPG.
struct SessionEntry {
    initiator: CString,
    isid: [u8; 6],
    tsih: u16,
    /// Opened under the initiator's ACL (not in demo mode).
    acl: bool,
    params: Params,
    stream: Arc<Stream>,
    pool: Arc<session::Pool>,
}

impl TpgCore {
    /// The ACL's `info`: its initiator's session, in LIO's format (rtslib parses it).
    fn session_info(&self, initiator: &CStr, page: &mut [u8]) -> Result<usize> {
        let sessions = self.sessions.lock();
        let Some(s) = sessions.iter().find(|s| *s.initiator == *initiator) else {
            let s = CString::try_from_fmt(fmt!(
                "No active iSCSI Session for Initiator Endpoint: {}",
                initiator.to_str().unwrap_or("")
            ))?;
            return Ok(emit_line(page, s.to_bytes()));
        };
        let i = s.isid;
        // The address alone, as LIO's `%pISc`.
        let mut peer = [0u8; 64];
        let n = match s.stream.peer_addr() {
            Ok(SockAddr::V4(a, p)) => portal::format(&Ip::V4(a), p, &mut peer),
            Ok(SockAddr::V6(a, p)) => portal::format(&Ip::V6(a), p, &mut peer),
            Err(_) => None,
        };
        let peer = core::str::from_utf8(&peer[..n.unwrap_or(0)]).unwrap_or("");
        let peer = peer.rsplit_once(':').map_or(peer, |(a, _)| a);
        let peer = peer.trim_start_matches('[').trim_end_matches(']');
        let text = CString::try_from_fmt(fmt!(
            "InitiatorName: {}\nInitiatorAlias: \nLIO Session ID: {}   ISID: \
             0x{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}  TSIH: {}  SessionType: Normal\n\
             Session State: TARG_SESS_STATE_LOGGED_IN\n\
             ----------------------[iSCSI Connections]-------------------------\n\
             CID: 0  Connection State: TARG_CONN_STATE_LOGGED_IN\n   Address {} TCP",
            initiator.to_str().unwrap_or(""),
            s.tsih,
            i[0],
            i[1],
            i[2],
            i[3],
            i[4],
            i[5],
            s.tsih,
            peer,
        ))?;
        Ok(emit_line(page, text.to_bytes()))
    }

    /// An ACL's `param/<attr>`: what its initiator's session negotiated.
    fn session_param(&self, initiator: &CStr, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        let sessions = self.sessions.lock();
        let Some(p) = sessions
            .iter()
            .find(|s| *s.initiator == *initiator)
            .map(|s| s.params)
        else {
            return Ok(emit_line(page, b"No Active iSCSI Session"));
        };
        let v = match attr {
            b"MaxConnections" => p.max_connections,
            b"InitialR2T" => u32::from(p.initial_r2t),
            b"ImmediateData" => u32::from(p.immediate_data),
            b"MaxBurstLength" => p.max_burst_length,
            b"FirstBurstLength" => p.first_burst_length,
            b"DefaultTime2Wait" => p.default_time2wait,
            b"DefaultTime2Retain" => p.default_time2retain,
            b"MaxOutstandingR2T" => p.max_outstanding_r2t,
            b"DataPDUInOrder" => u32::from(p.data_pdu_in_order),
            b"DataSequenceInOrder" => u32::from(p.data_sequence_in_order),
            b"ErrorRecoveryLevel" => p.error_recovery_level,
            _ => return Err(EINVAL),
        };
        let s = CString::try_from_fmt(fmt!("{v}"))?;
        Ok(emit_line(page, s.to_bytes()))
    }

    /// The iSCSI part of `initiator`'s ACL.
    fn acl_of(&self, initiator: &CStr) -> Option<Arc<acl::IscsiAcl>> {
        self.acls
            .lock()
            .iter()
            .find(|a| *a.acl.initiator == *initiator)
            .cloned()
    }

    /// Ends the sessions `pick` chooses and waits (bounded) until they are gone.
    fn end_sessions(&self, pick: impl Fn(&SessionEntry) -> bool) -> Result {
        let mut pools: KVec<Arc<session::Pool>> = KVec::new();
        for s in self.sessions.lock().iter().filter(|s| pick(s)) {
            s.stream.shutdown();
            pools.push(s.pool.clone(), GFP_KERNEL)?;
        }
        for _ in 0..REINSTATE_WAIT_MS / 10 {
            let sessions = self.sessions.lock();
            if !pools
                .iter()
                .any(|p| sessions.iter().any(|s| Arc::ptr_eq(&s.pool, p)))
            {
                return Ok(());
            }
            drop(sessions);
            fsleep(Delta::from_millis(10));
        }
        Err(EBUSY)
    }
}

impl Tasks for TpgCore {
    fn walk(&self, f: &mut dyn FnMut(&rtarget_core::cmd::Cmd)) {
        for s in self.sessions.lock().iter() {
            // WRITEs aborted while waiting for data (PREEMPT AND ABORT from another nexus):
            // their data may never come.
            session::sweep_waiting(&s.pool, false);
            s.pool.for_each_cmd(f);
        }
    }
}

/// How long a reinstatement waits for the old session to end.
const REINSTATE_WAIT_MS: u32 = 40_000;

/// `iscsi/<iqn>/tpgt_<N>`.
#[pin_data]
struct IscsiTpg {
    tag: u16,
    settings: Arc<Settings>,
    core: Arc<TpgCore>,
    #[pin]
    portals: Mutex<KVec<Portal>>,
}

impl FabricTpg for IscsiTpg {
    fn show(&self, group: TpgGroup, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        match group {
            TpgGroup::Base => self.show_base(attr, page),
            TpgGroup::Attrib => {
                let i = attrib_index(attr)?;
                let s = CString::try_from_fmt(fmt!("{}", self.settings.attrib(i)))?;
                Ok(emit_line(page, s.to_bytes()))
            }
            TpgGroup::Auth => self.settings.auth.show(attr, page),
            TpgGroup::Param => {
                let mut v = [0u8; tpg_param::VALUE_MAX];
                let n = self
                    .settings
                    .params
                    .lock()
                    .show(attr, &mut v)
                    .map_err(|_| EINVAL)?;
                Ok(emit_line(page, &v[..n]))
            }
        }
    }

    fn store(&self, group: TpgGroup, attr: &[u8], data: &[u8]) -> Result {
        match group {
            TpgGroup::Base => self.store_base(attr, data),
            TpgGroup::Attrib => self.store_attrib(attr, data),
            TpgGroup::Auth => self.settings.auth.store(attr, data),
            // Read by logins from then on, as LIO.
            TpgGroup::Param => self
                .settings
                .params
                .lock()
                .set(attr, strip_nl(data))
                .map_err(|_| EINVAL),
        }
    }

    fn make_acl(&self, acl: &Arc<NodeAcl>) -> Result<Arc<dyn FabricAcl>> {
        acl.set_depth(self.settings.attrib(DEFAULT_CMDSN_DEPTH));
        let a = acl::IscsiAcl::new(acl.clone(), self.core.clone())?;
        self.core.acls.lock().push(a.clone(), GFP_KERNEL)?;
        Ok(a)
    }

    fn drop_acl(&self, acl: &Arc<NodeAcl>) {
        self.core.acls.lock().retain(|a| !Arc::ptr_eq(&a.acl, acl));
        // Its sessions see no LUN any more: end them, as LIO does.
        if self
            .core
            .end_sessions(|s| *s.initiator == *acl.initiator)
            .is_err()
        {
            pr_warn!("iSCSI: a session of a removed ACL did not end\n");
        }
    }

    fn prod_mode_write_protect(&self) -> bool {
        self.settings.attrib(PROD_MODE_WRITE_PROTECT) != 0
    }

    fn make_np(&self, name: &CStr) -> Result {
        let (ip, port) = portal::parse(name.to_bytes()).ok_or(EINVAL)?;
        let addr = match ip {
            Ip::V4(a) => SockAddr::V4(a, port),
            Ip::V6(a) => SockAddr::V6(a, port),
        };
        let context = PortalCtx {
            ip,
            port,
            tag: self.tag,
            settings: self.settings.clone(),
            tpg: self.core.clone(),
        };
        let name = name.to_cstring()?;
        // Room first: once the acceptor runs, nothing may fail (configfs serialises mkdir in
        // np/, so the room is still there).
        self.portals.lock().reserve(1, GFP_KERNEL)?;
        let acceptor = Acceptor::start(addr, &PORTAL, context, serve_connection)?;
        let portal = Portal { name, acceptor };
        let mut portals = self.portals.lock();
        if let Err(e) = portals.push_within_capacity(portal) {
            drop(portals);
            drop(e);
            return Err(ENOMEM);
        }
        Ok(())
    }

    fn drop_np(&self, name: &CStr) {
        let portal = {
            let mut portals = self.portals.lock();
            match portals.iter().position(|p| *p.name == *name) {
                Some(i) => portals.remove(i).ok(),
                None => None,
            }
        };
        // Stopped outside the lock: connection threads take it for SendTargets.
        drop(portal);
    }
}

impl IscsiTpg {
    fn show_base(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        match attr {
            b"enable" => Ok(emit_line(
                page,
                if self.settings.enabled.load(Relaxed) {
                    b"1"
                } else {
                    b"0"
                },
            )),
            b"dynamic_sessions" => {
                // One initiator name per line, as LIO lists its demo-mode sessions.
                let mut at = 0;
                for s in self.core.sessions.lock().iter().filter(|s| !s.acl) {
                    let name = s.initiator.to_bytes();
                    if at + name.len() + 1 > page.len() {
                        break;
                    }
                    page[at..at + name.len()].copy_from_slice(name);
                    page[at + name.len()] = b'\n';
                    at += name.len() + 1;
                }
                Ok(at)
            }
            _ => Err(EINVAL),
        }
    }

    fn store_base(&self, attr: &[u8], data: &[u8]) -> Result {
        let s = &self.settings;
        match (attr, strip_nl(data)) {
            (b"enable", b"0") => s.enabled.store(false, Relaxed),
            (b"enable", b"1") => {
                // As LIO's enable: an enforcing TPG's AuthMethod loses None.
                if s.attrib(AUTHENTICATION) != 0 {
                    s.params.lock().authentication(true);
                }
                s.enabled.store(true, Relaxed)
            }
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    fn store_attrib(&self, attr: &[u8], data: &[u8]) -> Result {
        let i = attrib_index(attr)?;
        let v: u32 = core::str::from_utf8(strip_nl(data))
            .map_err(|_| EINVAL)?
            .parse()
            .map_err(|_| EINVAL)?;
        let (_, _, lo, hi) = ATTRIB[i];
        if !(lo..=hi).contains(&v) || (ATTRIB[i].0 == c"fabric_prot_type" && v == 2) {
            return Err(EINVAL);
        }
        if i == AUTHENTICATION {
            // As LIO: AuthMethod follows (None taken out, or added).
            self.settings.params.lock().authentication(v != 0);
        }
        self.settings.attrib[i].store(v, Relaxed);
        Ok(())
    }
}

fn attrib_index(attr: &[u8]) -> Result<usize> {
    ATTRIB
        .iter()
        .position(|a| a.0.to_bytes() == attr)
        .ok_or(EINVAL)
}

/// A listening portal of a TPG.
struct Portal {
    name: CString,
    acceptor: Acceptor<PortalCtx>,
}

impl Portal {
    fn ctx(&self) -> &PortalCtx {
        self.acceptor.context()
    }
}

const PORTAL: AcceptorSetup = AcceptorSetup {
    backlog: BACKLOG,
    max_conns: MAX_CONNS,
    thread: c"rt_iscsi_np",
    conn_thread: c"rt_iscsi_conn",
};

/// What a portal's connections are served with.
struct PortalCtx {
    ip: Ip,
    port: u16,
    tag: u16,
    settings: Arc<Settings>,
    tpg: Arc<TpgCore>,
}

fn serve_connection(stream: &Arc<Stream>, portal: &PortalCtx) {
    // Whatever ended the connection (a logout, a failed login, an error), it closes.
    let _ = Connection::new(stream, portal).run();
}

/// TSIHs handed out (never 0).
static NEXT_TSIH: Atomic<u32> = Atomic::new(1);

fn next_tsih() -> u16 {
    loop {
        let t = NEXT_TSIH.fetch_add(1, Relaxed) as u16;
        if t != 0 {
            return t;
        }
    }
}

/// The login's view of the portal: its TPG for normal sessions, discovery otherwise.
struct LoginPortal<'a> {
    shared: &'a PortalCtx,
    /// `iscsi/discovery_auth` when the login started.
    discovery: Option<fabric::DiscoveryAuth>,
    /// The initiator's ACL credentials, once read.
    creds: core::cell::OnceCell<acl::Creds>,
    /// The ACL the initiator was admitted under (`None`: demo mode).
    admitted: core::cell::OnceCell<Option<Arc<NodeAcl>>>,
}

impl login::Portal for LoginPortal<'_> {
    type Target = u16;

    fn target(&self, name: &[u8]) -> Result<u16, Status> {
        if name != self.shared.tpg.target.to_bytes() {
            return Err(login_status::NOT_FOUND);
        }
        // A TPG that is not enabled takes no sessions (LIO: service unavailable).
        if !self.shared.settings.enabled.load(Relaxed) {
            return Err(login_status::SERVICE_UNAVAILABLE);
        }
        Ok(self.shared.tag)
    }

    fn admit(&self, target: Option<u16>, initiator: &[u8]) -> Result<Auth<'_>, Status> {
        if target.is_some() {
            let s = &self.shared.settings;
            let name = CString::try_from_fmt(fmt!("{}", kernel::str::BStr::from_bytes(initiator)))
                .map_err(|_| login_status::OUT_OF_RESOURCES)?;
            let acl = self.shared.tpg.acl_of(&name);
            // Only `authentication` decides, as LIO (AuthMethod follows it).
            let required = s.attrib(AUTHENTICATION) != 0;
            let required = match &acl {
                Some(a) => a.authentication(required),
                // No ACL: only demo mode (generate_node_acls) admits.
                None if s.attrib(GENERATE_NODE_ACLS) == 0 => return Err(login_status::FORBIDDEN),
                None => required,
            };
            let _ = self.admitted.set(acl.as_ref().map(|a| a.acl.clone()));
            if !required {
                return Ok(Auth::None);
            }
            if self.creds.get().is_none() {
                // The ACL's credentials, or the TPG's `auth/` in demo mode (as LIO).
                let auth = acl.as_ref().map_or(&s.auth, |a| &a.auth);
                let c = auth.creds().map_err(|_| login_status::OUT_OF_RESOURCES)?;
                let _ = self.creds.set(c);
            }
            let c = self.creds.get().ok_or(login_status::OUT_OF_RESOURCES)?;
            return chap_auth(&c.user, &c.password, &c.user_mutual, &c.password_mutual);
        }
        if self.shared.settings.attrib(DEMO_MODE_DISCOVERY) == 0 {
            return Err(login_status::FORBIDDEN);
        }
        match &self.discovery {
            // discovery_auth/ could not be read: refuse rather than skip authentication.
            None => Err(login_status::OUT_OF_RESOURCES),
            Some(d) if d.enforce => {
                chap_auth(&d.userid, &d.password, &d.userid_mutual, &d.password_mutual)
            }
            Some(_) => Ok(Auth::None),
        }
    }

    fn tpgt(&self, _target: u16) -> u16 {
        self.shared.tag
    }

    fn target_alias(&self, _target: u16, buf: &mut [u8; tpg_param::VALUE_MAX]) -> usize {
        let params = self.shared.settings.params.lock();
        let alias = params.target_alias();
        buf[..alias.len()].copy_from_slice(alias);
        alias.len()
    }

    /// The TPG's `param/` for a normal session; LIO's initial values for discovery.
    fn params(&self, target: Option<u16>) -> Params {
        match target {
            Some(_) => self.shared.settings.params.lock().offer(),
            None => Params::default(),
        }
    }
}

/// CHAP with `user` / `password` for the initiator to prove, and mutual CHAP when the target's
/// own `user_mutual` / `password_mutual` are set. Required without credentials: nobody can log
/// in (as LIO).
fn chap_auth<'a>(
    user: &'a [u8],
    password: &'a [u8],
    user_mutual: &'a [u8],
    password_mutual: &'a [u8],
) -> Result<Auth<'a>, Status> {
    if user.is_empty() || password.is_empty() {
        return Err(login_status::AUTH_FAILED);
    }
    let mutual = (!user_mutual.is_empty() && !password_mutual.is_empty()).then_some(chap::Secret {
        user: user_mutual,
        password: password_mutual,
    });
    Ok(Auth::Chap {
        secret: chap::Secret { user, password },
        mutual,
    })
}

/// CHAP's digests from the kernel crypto API (what LIO 7.3 offers: MD5, SHA-1, SHA-256 and
/// SHA3-256, each if the kernel has it) and the kernel's random bytes.
struct KernelCrypto;

fn hash_of(alg: chap::Alg) -> Result<crypto::Hash> {
    crypto::Hash::new(match alg {
        chap::Alg::Md5 => c"md5",
        chap::Alg::Sha1 => c"sha1",
        chap::Alg::Sha256 => c"sha256",
        chap::Alg::Sha3_256 => c"sha3-256",
    })
}

impl chap::Crypto for KernelCrypto {
    fn has(&self, alg: chap::Alg) -> bool {
        hash_of(alg).is_ok_and(|h| h.len() == alg.digest_len())
    }
    fn digest(&self, alg: chap::Alg, parts: &[&[u8]], out: &mut [u8]) -> bool {
        hash_of(alg).and_then(|h| h.digest(parts, out)).is_ok()
    }
    fn random(&self, out: &mut [u8]) {
        crypto::random_bytes(out)
    }
}

/// One connection: its socket, sequence numbers and buffers.
struct Connection<'a> {
    stream: &'a Arc<Stream>,
    shared: &'a PortalCtx,
    statsn: u32,
    exp_cmdsn: u32,
    /// The session's TSIH, once logged in.
    tsih: u16,
    /// The node ACL the login was admitted under (`None`: demo mode).
    admitted: Option<Arc<NodeAcl>>,
    /// The initiator's MaxRecvDataSegmentLength.
    xmit_segment: usize,
    /// CRC32C digests agreed for the full feature phase.
    header_digest: bool,
    data_digest: bool,
    /// A Text response still being sent in parts (C bit).
    pending_text: KVec<u8>,
    pending_at: usize,
}

impl<'a> Connection<'a> {
    fn new(stream: &'a Arc<Stream>, shared: &'a PortalCtx) -> Self {
        Connection {
            stream,
            shared,
            statsn: 1,
            exp_cmdsn: 0,
            tsih: 0,
            admitted: None,
            xmit_segment: LOGIN_SEGMENT,
            header_digest: false,
            data_digest: false,
            pending_text: KVec::new(),
            pending_at: 0,
        }
    }

    fn sn(&self) -> Sn {
        let depth = self.shared.settings.attrib(DEFAULT_CMDSN_DEPTH).max(1);
        Sn {
            statsn: self.statsn,
            exp_cmdsn: self.exp_cmdsn,
            max_cmdsn: self.exp_cmdsn.wrapping_add(depth - 1),
        }
    }

    /// Sends a PDU: its BHS, then its data padded to four bytes. Responses that carry status
    /// advance StatSN.
    fn send(&mut self, r: &Response, data: &[u8], advance: bool) -> Result {
        let mut bhs = [0u8; BHS_LEN];
        pdu::encode(r, self.sn(), data.len() as u32, &mut bhs);
        let pad = &[0u8; 3][..pdu::pad4(data.len()) - data.len()];
        let hd = digest(&[&bhs]);
        let dd = digest(&[data, pad]);
        let parts: [&[u8]; 5] = [
            &bhs,
            if self.header_digest { &hd } else { &[] },
            data,
            pad,
            if self.data_digest && !data.is_empty() {
                &dd
            } else {
                &[]
            },
        ];
        // MSG_MORE on all but the last part: the PDU leaves in as few segments as it can.
        let last = parts.iter().rposition(|p| !p.is_empty()).unwrap_or(0);
        for (i, p) in parts.iter().enumerate().filter(|(_, p)| !p.is_empty()) {
            self.stream.send(p, i != last)?;
        }
        if advance {
            self.statsn = self.statsn.wrapping_add(1);
        }
        Ok(())
    }

    /// Receives the AHS and data segment after `bhs` into `buf` (data only, unpadded), with
    /// their digests once negotiated. Fails if the segment exceeds `max` or the header
    /// digest is wrong (the connection ends, RFC 7143 7.8); a wrong data digest gives
    /// `Ok(false)`: the PDU is rejected and dropped.
    fn recv_tail(&self, bhs: &[u8; BHS_LEN], buf: &mut KVec<u8>, max: usize) -> Result<bool> {
        let f = Framing::of(bhs, self.header_digest, self.data_digest);
        if f.data > max {
            return Err(EPROTO);
        }
        buf.clear();
        buf.resize(f.tail_len(), 0, GFP_KERNEL)?;
        self.recv(buf)?;
        let (ahs, rest) = buf.split_at(f.ahs);
        if f.header_digest && rest[..4] != digest(&[bhs, ahs]) {
            return Err(EBADMSG);
        }
        let padded = pdu::pad4(f.data);
        let data = &buf[f.data_at()..f.data_at() + padded];
        let good = !f.data_digest || f.data == 0 || buf[f.data_at() + padded..] == digest(&[data]);
        buf.copy_within(f.data_at()..f.data_at() + f.data, 0);
        buf.truncate(f.data);
        Ok(good)
    }

    fn recv(&self, buf: &mut [u8]) -> Result {
        match self.stream.recv_exact(buf)? {
            true => Ok(()),
            false => Err(ECONNRESET),
        }
    }

    fn run(&mut self) -> Result {
        // The whole login must finish within `login_timeout` seconds (as LIO's login timer),
        // in at most LOGIN_PDUS requests.
        let limit = i64::from(self.shared.settings.attrib(LOGIN_TIMEOUT)) * 1000;
        let start = Instant::<Monotonic>::now();
        let mut login: Login<u16> = Login::new();
        let mut gathered = KVec::new();
        let mut seg = KVec::new();
        let mut out = KVec::from_elem(0u8, LOGIN_SEGMENT, GFP_KERNEL)?;
        let mut tsih = 0;
        // The login phase.
        for _ in 0..LOGIN_PDUS {
            let left = limit - start.elapsed().as_millis();
            if left <= 0 {
                return Err(ETIMEDOUT);
            }
            self.stream.set_recv_timeout(left as u32);
            let mut bhs = [0u8; BHS_LEN];
            self.recv(&mut bhs)?;
            let Ok(pdu::Pdu {
                request: Request::Login(req),
                itt,
                ahs_len,
                ..
            }) = pdu::parse(&bhs)
            else {
                // Only Login Requests belong to the login phase.
                return Err(EPROTO);
            };
            self.exp_cmdsn = req.cmdsn;
            let ok = ahs_len == 0 && self.recv_tail(&bhs, &mut seg, LOGIN_SEGMENT).is_ok();
            // (No digests during login: recv_tail's Ok(false) cannot happen.)
            let mut w = Writer::new(&mut out);
            let step = if !ok || gathered.len() + seg.len() > LOGIN_TEXT_MAX {
                Step::Fail(login_status::INITIATOR_ERROR)
            } else {
                gathered.extend_from_slice(&seg, GFP_KERNEL)?;
                if req.continue_ {
                    login.partial(&req)
                } else {
                    let portal = LoginPortal {
                        shared: self.shared,
                        discovery: fabric::discovery_auth(c"iscsi"),
                        creds: core::cell::OnceCell::new(),
                        admitted: core::cell::OnceCell::new(),
                    };
                    let s = login.step(&req, &gathered, &portal, &KernelCrypto, &mut w);
                    if let Some(a) = portal.admitted.into_inner() {
                        self.admitted = a;
                    }
                    gathered.clear();
                    s
                }
            };
            let (transit, csg, nsg, status) = match step {
                Step::Reply { transit, csg, nsg } => (transit, csg, nsg, login_status::SUCCESS),
                // One connection per session, no connection recovery: a login to add or
                // reinstate a connection names no session we keep.
                Step::FullFeature { .. }
                    if !login.leading() && login.session == SessionType::Normal =>
                {
                    (
                        false,
                        req.csg,
                        req.csg,
                        login_status::SESSION_DOES_NOT_EXIST,
                    )
                }
                Step::FullFeature { csg } => {
                    tsih = if login.leading() {
                        next_tsih()
                    } else {
                        req.tsih
                    };
                    (true, csg, pdu::Stage::FullFeature, login_status::SUCCESS)
                }
                Step::Fail(s) => (false, req.csg, req.csg, s),
            };
            let len = if status == login_status::SUCCESS {
                w.len()
            } else {
                0
            };
            let r = Response::Login {
                transit,
                continue_: false,
                csg,
                nsg,
                isid: req.isid,
                tsih,
                itt,
                class: status.0,
                detail: status.1,
            };
            self.send(&r, &out[..len], true)?;
            if status != login_status::SUCCESS {
                return Ok(());
            }
            match step {
                Step::Fail(_) => return Ok(()),
                Step::FullFeature { .. } => {
                    self.tsih = tsih;
                    return self.full_feature(&login, &mut seg);
                }
                Step::Reply { .. } => {}
            }
        }
        Err(EPROTO)
    }

    /// After a successful login.
    fn full_feature(&mut self, login: &Login<u16>, seg: &mut KVec<u8>) -> Result {
        self.stream.set_recv_timeout(0);
        let agreed = login.agreed();
        self.xmit_segment = agreed.max_xmit_data_segment_length as usize;
        self.header_digest = agreed.header_digest[0] == Some(text::Digest::Crc32c);
        self.data_digest = agreed.data_digest[0] == Some(text::Digest::Crc32c);
        if login.session != SessionType::Discovery {
            return self.normal(login);
        }
        self.discovery(seg)
    }

    /// A normal session: reinstates an older one of the same initiator port (name and
    /// ISID), opens the nexus and serves it until it ends.
    fn normal(&mut self, login: &Login<u16>) -> Result {
        let tpg = &self.shared.tpg;
        let name = login.initiator.as_ref().ok_or(EINVAL)?;
        let initiator =
            CString::try_from_fmt(fmt!("{}", kernel::str::BStr::from_bytes(name.as_bytes())))?;
        let (isid, _) = login.identity();
        self.reinstate(&initiator, isid)?;
        let session = Session::new(&tpg.port, &initiator, SessionPi::default())?;
        // The ACL may have come or gone since the login admitted (and authenticated) the
        // initiator: a session under other rules than those it logged in by is refused.
        let same = match (session.acl(), &self.admitted) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            session.close(Delta::ZERO);
            return Err(EACCES);
        }
        let depth = match session.acl() {
            // The ACL's mapped LUNs, each with its own write protection.
            Some(acl) => acl.depth(),
            None => {
                // Demo mode: every LUN of the TPG, read-only unless demo_mode_write_protect
                // is 0.
                session.set_read_only(self.shared.settings.attrib(DEMO_MODE_WRITE_PROTECT) != 0);
                self.shared.settings.attrib(DEFAULT_CMDSN_DEPTH)
            }
        }
        .max(1);
        let pool = match session::new_pool(depth, self.exp_cmdsn) {
            Ok(p) => p,
            Err(e) => {
                session.close(Delta::ZERO);
                return Err(e);
            }
        };
        let entry = SessionEntry {
            initiator,
            isid,
            tsih: self.tsih,
            acl: session.acl().is_some(),
            params: *login.agreed(),
            stream: self.stream.clone(),
            pool: pool.clone(),
        };
        if let Err(e) = tpg.sessions.lock().push(entry, GFP_KERNEL) {
            session.close(Delta::ZERO);
            return Err(e.into());
        }
        let agreed = login.agreed();
        let timers = match session.acl() {
            Some(a) => tpg
                .acl_of(&a.initiator)
                .map_or(acl::DEFAULT_TIMERS, |a| a.timers()),
            None => acl::DEFAULT_TIMERS,
        };
        let start = session::Start {
            stream: self.stream,
            link: session::Link {
                header_digest: self.header_digest,
                data_digest: self.data_digest,
                limits: xfer::Limits::of(agreed),
            },
            session,
            statsn: self.statsn,
            exp_cmdsn: self.exp_cmdsn,
            depth,
            timers,
        };
        let r = session::serve(start, pool.clone());
        tpg.sessions.lock().retain(|s| !Arc::ptr_eq(&s.pool, &pool));
        r
    }

    /// Ends the session of the same initiator port, if any, and waits (bounded) until it is
    /// gone (RFC 7143 6.3.5: session reinstatement).
    fn reinstate(&self, initiator: &CStr, isid: [u8; 6]) -> Result {
        self.shared
            .tpg
            .end_sessions(|s| *s.initiator == *initiator && s.isid == isid)
    }

    /// Full feature phase of a discovery session: Text (SendTargets), NOP-Out, Logout.
    fn discovery(&mut self, seg: &mut KVec<u8>) -> Result {
        loop {
            let mut bhs = [0u8; BHS_LEN];
            self.recv(&mut bhs)?;
            let parsed = pdu::parse(&bhs);
            if !self.recv_tail(&bhs, seg, LOGIN_SEGMENT)? {
                let r = Response::Reject {
                    reason: pdu::RejectReason::DataDigest,
                    datasn: 0,
                };
                self.send(&r, &bhs, true)?;
                continue;
            }
            let p = match parsed {
                Ok(p) => p,
                Err(refused) => {
                    let r = Response::Reject {
                        reason: refused.reason,
                        datasn: 0,
                    };
                    self.send(&r, &bhs, true)?;
                    continue;
                }
            };
            if !p.immediate && !matches!(p.request, Request::Nop(_) if p.itt == RESERVED_TAG) {
                self.exp_cmdsn = self.exp_cmdsn.wrapping_add(1);
            }
            match p.request {
                Request::Text(t) => self.text(p.itt, &t, seg, &bhs)?,
                Request::Nop(n) if p.itt != RESERVED_TAG => {
                    let r = Response::NopIn {
                        lun: n.lun,
                        itt: p.itt,
                        ttt: RESERVED_TAG,
                    };
                    let data = core::mem::take(seg);
                    let n = data.len().min(self.xmit_segment);
                    self.send(&r, &data[..n], true)?;
                    *seg = data;
                }
                Request::Nop(_) => {}
                Request::Logout(_) => {
                    let r = Response::Logout {
                        itt: p.itt,
                        response: 0,
                        time2wait: 0,
                        time2retain: 0,
                    };
                    self.send(&r, &[], true)?;
                    return Ok(());
                }
                // A discovery session carries no commands (RFC 7143 6.3).
                _ => {
                    let r = Response::Reject {
                        reason: pdu::RejectReason::ProtocolError,
                        datasn: 0,
                    };
                    self.send(&r, &bhs, true)?;
                }
            }
        }
    }

    fn text(&mut self, itt: u32, t: &pdu::Text, data: &[u8], bhs: &[u8; BHS_LEN]) -> Result {
        if t.ttt == RESERVED_TAG {
            // A new exchange: SendTargets=All (or one target's name).
            let mut which: Option<&[u8]> = None;
            for p in text::pairs(data) {
                match p {
                    Ok((b"SendTargets", v)) => which = Some(v),
                    Ok(_) => {}
                    Err(_) => return self.reject(bhs),
                }
            }
            self.pending_text.clear();
            self.pending_at = 0;
            if let Some(w) = which {
                self.send_targets(w)?;
            }
        }
        let rest = self.pending_text.len() - self.pending_at;
        let n = rest.min(self.xmit_segment.max(512));
        let more = n < rest;
        let r = Response::Text {
            final_: !more,
            continue_: more,
            lun: 0,
            itt,
            ttt: if more { 1 } else { RESERVED_TAG },
        };
        let chunk = core::mem::take(&mut self.pending_text);
        let res = self.send(&r, &chunk[self.pending_at..self.pending_at + n], true);
        self.pending_text = chunk;
        self.pending_at += n;
        res
    }

    /// A Reject (protocol error) carrying the rejected header.
    fn reject(&mut self, bhs: &[u8; BHS_LEN]) -> Result {
        let r = Response::Reject {
            reason: pdu::RejectReason::ProtocolError,
            datasn: 0,
        };
        self.send(&r, bhs, true)
    }

    /// Builds the SendTargets answer in `pending_text`: each target with an enabled TPG (or
    /// any TPG, when `tpg_enabled_sendtargets` is 0) and its portals; a wildcard portal is
    /// reported as the address this connection arrived on.
    fn send_targets(&mut self, which: &[u8]) -> Result {
        let local = self.stream.local_addr()?;
        let mut out = KVec::new();
        let mut failed = Ok(());
        fabric::for_each_wwn(c"iscsi", &mut |w| {
            let any: &dyn Any = &**w;
            let Some(wwn) = any.downcast_ref::<IscsiWwn>() else {
                return;
            };
            let name = wwn.name.to_bytes();
            if which != b"All" && which != name {
                return;
            }
            let mut named = false;
            for tpg in wwn.tpgs.lock().iter() {
                let s = &tpg.settings;
                if !s.enabled.load(Relaxed) && s.attrib(TPG_ENABLED_SENDTARGETS) == 1 {
                    continue;
                }
                for p in tpg.portals.lock().iter() {
                    let r = add_target(&mut out, name, &mut named, p, &local, tpg.tag);
                    if r.is_err() {
                        failed = r;
                    }
                }
            }
        });
        failed?;
        self.pending_text = out;
        Ok(())
    }
}

/// An iSCSI digest (RFC 7143 13.1): CRC-32C of the parts, as the four bytes on the wire.
fn digest(parts: &[&[u8]]) -> [u8; 4] {
    let crc = parts.iter().fold(!0, |crc, p| crypto::crc32c(crc, p));
    (!crc).to_le_bytes()
}

/// Appends `TargetName=` (once per target) and the portal's `TargetAddress=`.
fn add_target(
    out: &mut KVec<u8>,
    name: &[u8],
    named: &mut bool,
    p: &Portal,
    local: &SockAddr,
    tag: u16,
) -> Result {
    let ip = match (p.ctx().ip.is_any(), local) {
        (false, _) => p.ctx().ip,
        (true, SockAddr::V4(a, _)) => Ip::V4(*a),
        // An IPv4 client of a dual-stack portal: its IPv4 address, as LIO reports it.
        (true, SockAddr::V6(a, _)) if a[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] => {
            Ip::V4([a[12], a[13], a[14], a[15]])
        }
        (true, SockAddr::V6(a, _)) => Ip::V6(*a),
    };
    let mut addr = [0u8; 64];
    let n = portal::format(&ip, p.ctx().port, &mut addr).ok_or(EINVAL)?;
    if !*named {
        *named = true;
        out.extend_from_slice(b"TargetName=", GFP_KERNEL)?;
        out.extend_from_slice(name, GFP_KERNEL)?;
        out.push(0, GFP_KERNEL)?;
    }
    let tag = CString::try_from_fmt(fmt!(",{}", tag))?;
    out.extend_from_slice(b"TargetAddress=", GFP_KERNEL)?;
    out.extend_from_slice(&addr[..n], GFP_KERNEL)?;
    out.extend_from_slice(tag.to_bytes(), GFP_KERNEL)?;
    out.push(0, GFP_KERNEL)?;
    Ok(())
}

struct RtargetIscsi {
    _registration: fabric::Registration,
}

impl kernel::Module for RtargetIscsi {
    fn init(module: &'static ThisModule) -> Result<Self> {
        Ok(RtargetIscsi {
            _registration: fabric::register(&ISCSI, module)?,
        })
    }
}
