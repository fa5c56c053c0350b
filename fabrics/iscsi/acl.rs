// SPDX-License-Identifier: GPL-2.0

//! The iSCSI part of a node ACL (LIO's `iscsi_node_acl`): `info`, `cmdsn_depth` and `tag`,
//! the node attributes, the CHAP credentials a normal login of the initiator must prove, and
//! its session's negotiated parameters.

use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::atomic::{ordering::Relaxed, Atomic};
use kernel::sync::{Arc, Mutex};
use rtarget_core::acl::NodeAcl;
use rtarget_core::fabric::{AclGroup, FabricAcl};
use rtarget_core::rt::configfs::{emit, emit_line, strip_nl, Attr};

use crate::session::Timers;
use crate::TpgCore;

/// `acls/<initiator>`.
pub(crate) static BASE_ATTRS: [Attr; 3] = [
    Attr::ro(c"info"),
    Attr::rw(c"cmdsn_depth"),
    Attr::rw(c"tag"),
];

/// `attrib/`: LIO's names, defaults and bounds (`NA_*`); 0 is also allowed where the flag
/// says so. `authentication` (-1: the TPG's) is apart.
static ATTRIB: [(&CStr, u32, u32, u32, bool); 8] = [
    (c"dataout_timeout", 3, 2, 60, false),
    (c"dataout_timeout_retries", 5, 1, 15, false),
    (c"default_erl", 0, 0, 2, false),
    (c"nopin_timeout", 15, 3, 60, true),
    (c"nopin_response_timeout", 30, 3, 60, false),
    (c"random_datain_pdu_offsets", 0, 0, 1, false),
    (c"random_datain_seq_offsets", 0, 0, 1, false),
    (c"random_r2t_offsets", 0, 0, 1, false),
];

/// The timers of a session without an ACL (LIO's defaults for dynamic ACLs).
pub(crate) const DEFAULT_TIMERS: Timers = Timers {
    dataout: ATTRIB[0].1,
    nopin: ATTRIB[3].1,
    nopin_response: ATTRIB[4].1,
};

pub(crate) static ATTRIB_ATTRS: [Attr; 9] = {
    let mut a = [Attr::rw(c"authentication"); 9];
    let mut i = 0;
    while i < ATTRIB.len() {
        a[i] = Attr::rw(ATTRIB[i].0);
        i += 1;
    }
    a
};

pub(crate) static AUTH_ATTRS: [Attr; 5] = [
    Attr::rw(c"userid"),
    Attr::rw(c"password"),
    Attr::ro(c"authenticate_target"),
    Attr::rw(c"userid_mutual"),
    Attr::rw(c"password_mutual"),
];

/// `param/`: what the initiator's session negotiated.
pub(crate) static PARAM_ATTRS: [Attr; 11] = [
    Attr::ro(c"MaxConnections"),
    Attr::ro(c"InitialR2T"),
    Attr::ro(c"ImmediateData"),
    Attr::ro(c"MaxBurstLength"),
    Attr::ro(c"FirstBurstLength"),
    Attr::ro(c"DefaultTime2Wait"),
    Attr::ro(c"DefaultTime2Retain"),
    Attr::ro(c"MaxOutstandingR2T"),
    Attr::ro(c"DataPDUInOrder"),
    Attr::ro(c"DataSequenceInOrder"),
    Attr::ro(c"ErrorRecoveryLevel"),
];

/// Longest credential (LIO's `MAX_CHAP_NAME_LEN` less its NUL).
const CRED_MAX: usize = 255;
/// Longest tag (LIO's `MAX_ACL_TAG_SIZE` less its NUL).
const TAG_MAX: usize = 63;

const AUTH_NAMES: [&[u8]; 4] = [b"userid", b"password", b"userid_mutual", b"password_mutual"];

/// CHAP credentials: what the initiator proves, and what the target proves back (mutual).
#[derive(Default)]
pub(crate) struct Creds {
    pub(crate) user: KVec<u8>,
    pub(crate) password: KVec<u8>,
    pub(crate) user_mutual: KVec<u8>,
    pub(crate) password_mutual: KVec<u8>,
}

/// The CHAP credentials of an ACL's or a TPG's `auth/` (LIO's `iscsi_node_auth`).
#[pin_data]
pub(crate) struct AuthStore {
    #[pin]
    values: Mutex<[KVec<u8>; 4]>,
}

impl AuthStore {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(AuthStore {
            values <- kernel::new_mutex!([KVec::new(), KVec::new(), KVec::new(), KVec::new()]),
        })
    }

    /// A copy of the credentials, for one login.
    pub(crate) fn creds(&self) -> Result<Creds> {
        let a = self.values.lock();
        let copy = |v: &KVec<u8>| -> Result<KVec<u8>> {
            let mut c = KVec::new();
            c.extend_from_slice(v, GFP_KERNEL)?;
            Ok(c)
        };
        Ok(Creds {
            user: copy(&a[0])?,
            password: copy(&a[1])?,
            user_mutual: copy(&a[2])?,
            password_mutual: copy(&a[3])?,
        })
    }

    pub(crate) fn show(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        let a = self.values.lock();
        if attr == b"authenticate_target" {
            let mutual = !a[2].is_empty() && !a[3].is_empty();
            return fmt_line(page, fmt!("{}", u32::from(mutual)));
        }
        let i = AUTH_NAMES.iter().position(|n| *n == attr).ok_or(EINVAL)?;
        Ok(emit_line(page, &a[i]))
    }

    pub(crate) fn store(&self, attr: &[u8], data: &[u8]) -> Result {
        let i = AUTH_NAMES.iter().position(|n| *n == attr).ok_or(EINVAL)?;
        let v = strip_nl(data);
        if v.len() > CRED_MAX {
            return Err(EINVAL);
        }
        let mut a = self.values.lock();
        a[i].clear();
        // "NULL" unsets, as LIO.
        if !v.starts_with(b"NULL") {
            a[i].extend_from_slice(v, GFP_KERNEL)?;
        }
        Ok(())
    }
}

/// One initiator's ACL on an iSCSI TPG.
#[pin_data]
pub(crate) struct IscsiAcl {
    pub(crate) acl: Arc<NodeAcl>,
    tpg: Arc<TpgCore>,
    attrib: [Atomic<u32>; 8],
    /// 0, 1, or -1: the TPG's `authentication`.
    authentication: Atomic<i32>,
    #[pin]
    pub(crate) auth: AuthStore,
    #[pin]
    tag: Mutex<KVec<u8>>,
}

impl IscsiAcl {
    pub(crate) fn new(acl: Arc<NodeAcl>, tpg: Arc<TpgCore>) -> Result<Arc<IscsiAcl>> {
        Arc::pin_init(
            try_pin_init!(IscsiAcl {
                acl,
                tpg,
                attrib: core::array::from_fn(|i| Atomic::new(ATTRIB[i].1)),
                authentication: Atomic::new(-1),
                auth <- AuthStore::new(),
                tag <- kernel::new_mutex!(KVec::new()),
            }? Error),
            GFP_KERNEL,
        )
    }

    /// The session timers its `attrib/` sets.
    pub(crate) fn timers(&self) -> Timers {
        let a = |i: usize| self.attrib[i].load(Relaxed);
        Timers {
            dataout: a(0),
            nopin: a(3),
            nopin_response: a(4),
        }
    }

    /// Whether a login must authenticate: the ACL's own setting, or the TPG's.
    pub(crate) fn authentication(&self, tpg_default: bool) -> bool {
        match self.authentication.load(Relaxed) {
            -1 => tpg_default,
            v => v == 1,
        }
    }

    fn show_base(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        match attr {
            b"cmdsn_depth" => fmt_line(page, fmt!("{}", self.acl.depth())),
            // No newline, as LIO; empty while unset.
            b"tag" => Ok(emit(page, &self.tag.lock())),
            b"info" => self.tpg.session_info(&self.acl.initiator, page),
            _ => Err(EINVAL),
        }
    }

    fn store_base(&self, attr: &[u8], data: &[u8]) -> Result {
        match attr {
            b"cmdsn_depth" => {
                let v = parse_u32(data)?;
                if v > 512 {
                    return Err(EINVAL);
                }
                // LIO takes 0 as 1, and ends the initiator's session so that its next login
                // gets the new depth.
                let v = v.max(1);
                if v != self.acl.depth() {
                    self.acl.set_depth(v);
                    let name = &self.acl.initiator;
                    self.tpg.end_sessions(|s| *s.initiator == **name)?;
                }
                Ok(())
            }
            b"tag" => {
                let v = strip_nl(data);
                let mut tag = self.tag.lock();
                tag.clear();
                if v.starts_with(b"NULL") {
                    return Ok(());
                }
                if v.len() > TAG_MAX {
                    return Err(EINVAL);
                }
                tag.extend_from_slice(v, GFP_KERNEL)?;
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }

    fn show_attrib(&self, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        if attr == b"authentication" {
            return fmt_line(page, fmt!("{}", self.authentication.load(Relaxed)));
        }
        let i = attrib_index(attr)?;
        fmt_line(page, fmt!("{}", self.attrib[i].load(Relaxed)))
    }

    fn store_attrib(&self, attr: &[u8], data: &[u8]) -> Result {
        if attr == b"authentication" {
            let v: i32 = core::str::from_utf8(strip_nl(data))
                .map_err(|_| EINVAL)?
                .parse()
                .map_err(|_| EINVAL)?;
            if !matches!(v, -1..=1) {
                return Err(EINVAL);
            }
            self.authentication.store(v, Relaxed);
            return Ok(());
        }
        let i = attrib_index(attr)?;
        let v = parse_u32(data)?;
        let (_, _, lo, hi, zero) = ATTRIB[i];
        if !((lo..=hi).contains(&v) || (zero && v == 0)) {
            return Err(EINVAL);
        }
        self.attrib[i].store(v, Relaxed);
        Ok(())
    }
}

impl FabricAcl for IscsiAcl {
    fn show(&self, group: AclGroup, attr: &[u8], page: &mut [u8]) -> Result<usize> {
        match group {
            AclGroup::Base => self.show_base(attr, page),
            AclGroup::Attrib => self.show_attrib(attr, page),
            AclGroup::Auth => self.auth.show(attr, page),
            AclGroup::Param => self.tpg.session_param(&self.acl.initiator, attr, page),
        }
    }

    fn store(&self, group: AclGroup, attr: &[u8], data: &[u8]) -> Result {
        match group {
            AclGroup::Base => self.store_base(attr, data),
            AclGroup::Attrib => self.store_attrib(attr, data),
            AclGroup::Auth => self.auth.store(attr, data),
            AclGroup::Param => Err(EPERM),
        }
    }
}

fn attrib_index(attr: &[u8]) -> Result<usize> {
    ATTRIB
        .iter()
        .position(|a| a.0.to_bytes() == attr)
        .ok_or(EINVAL)
}

fn parse_u32(data: &[u8]) -> Result<u32> {
    core::str::from_utf8(strip_nl(data))
        .map_err(|_| EINVAL)?
        .parse()
        .map_err(|_| EINVAL)
}

fn fmt_line(page: &mut [u8], args: core::fmt::Arguments<'_>) -> Result<usize> {
    let s = CString::try_from_fmt(args)?;
    Ok(emit_line(page, s.to_bytes()))
}
