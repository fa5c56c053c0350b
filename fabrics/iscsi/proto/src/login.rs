//! The target's side of an iSCSI login (RFC 7143 6.3, 11.12, 11.13): one connection's login
//! phase from its first Login Request to full feature phase or a failure status. It checks the
//! PDUs' stages and identities, requires the names, finds the target and admits the
//! initiator through a [`Portal`], runs the security stage (AuthMethod, CHAP) and the
//! operational negotiation, and says what to answer.
//!
//! A Login Request with the C bit carries part of a text that continues in the next one: the
//! caller gathers the text and answers each such PDU with [`Login::partial`]'s empty response;
//! [`Login::step`] takes the whole text once the last part (C = 0) arrives.

use crate::chap::{Chap, ChapError, Crypto, Keys, Secret};
use crate::pdu::{login_status as status, Login as LoginPdu, Stage, VERSION};
use crate::text::{self, Declared, Negotiation, Params, SessionType, Writer};
use crate::tpg_param::VALUE_MAX;

/// Longest iSCSI name (RFC 7143 4.2.7.1).
pub const MAX_NAME: usize = 223;

/// A login status: class and detail (RFC 7143 11.13.5).
pub type Status = (u8, u8);

/// How an initiator must authenticate, with the credentials the target checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth<'a> {
    None,
    Chap {
        /// What the initiator proves.
        secret: Secret<'a>,
        /// What the target proves when the initiator asks (mutual CHAP).
        mutual: Option<Secret<'a>>,
    },
}

/// What a login needs from the portal it arrived on.
pub trait Portal {
    /// A target (its TPG on this portal), as the caller names it.
    type Target: Copy;
    /// The target named `name` that this portal serves: `NOT_FOUND` if none, `TARGET_REMOVED`
    /// or `SERVICE_UNAVAILABLE` if its TPG is not enabled.
    fn target(&self, name: &[u8]) -> Result<Self::Target, Status>;
    /// Whether `initiator` may log in to `target` (`None`: a discovery session), and how it
    /// authenticates: `FORBIDDEN` without an ACL unless demo mode is on.
    fn admit(&self, target: Option<Self::Target>, initiator: &[u8]) -> Result<Auth<'_>, Status>;
    /// The TPG's tag, sent in the first response of a normal session.
    fn tpgt(&self, target: Self::Target) -> u16;
    /// The TPG's TargetAlias, declared with its tag when not empty: written to `buf`, its
    /// length returned.
    fn target_alias(&self, _target: Self::Target, _buf: &mut [u8; VALUE_MAX]) -> usize {
        0
    }
    /// The operational values the target offers for `target`'s TPG (`param/`).
    fn params(&self, target: Option<Self::Target>) -> Params;
}

/// A name held by value (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name {
    bytes: [u8; MAX_NAME],
    len: u8,
}

impl Name {
    fn new(v: &[u8]) -> Option<Name> {
        if v.is_empty() || v.len() > MAX_NAME {
            return None;
        }
        let mut bytes = [0u8; MAX_NAME];
        bytes[..v.len()].copy_from_slice(v);
        Some(Name {
            bytes,
            len: v.len() as u8,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl core::fmt::Debug for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{:?}",
            core::str::from_utf8(self.as_bytes()).unwrap_or("<bytes>")
        )
    }
}

/// What to answer to a Login Request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A Login Response with status 0000h and these stage fields; the login goes on.
    Reply {
        transit: bool,
        csg: Stage,
        nsg: Stage,
    },
    /// The last Login Response (T = 1, NSG = full feature phase): the connection enters full
    /// feature phase with [`Login::agreed`].
    FullFeature { csg: Stage },
    /// A Login Response with this failure status; then the connection closes.
    Fail(Status),
}

/// The security stage's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    /// AuthMethod not agreed yet.
    Open,
    /// AuthMethod=None agreed.
    None,
    /// AuthMethod=CHAP agreed; the exchange's state.
    Chap(Chap),
}

/// The names and session type a first Login Request declares (before any negotiation, which
/// depends on the target they name).
fn declarations(text: &[u8]) -> Result<Declared<'_>, Status> {
    let mut d = Declared::default();
    for pair in text::pairs(text) {
        let (key, value) = pair.map_err(|_| status::INITIATOR_ERROR)?;
        let slot = match key {
            b"InitiatorName" => &mut d.initiator_name,
            b"TargetName" => &mut d.target_name,
            b"SessionType" => {
                d.session_type = Some(match value {
                    b"Normal" => SessionType::Normal,
                    b"Discovery" => SessionType::Discovery,
                    _ => return Err(status::SESSION_TYPE_UNSUPPORTED),
                });
                continue;
            }
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(status::INITIATOR_ERROR);
        }
    }
    Ok(d)
}

/// One connection's login.
#[derive(Clone, Copy, Debug)]
pub struct Login<T: Copy> {
    started: bool,
    stage: Stage,
    isid: [u8; 6],
    tsih: u16,
    cid: u16,
    pub session: SessionType,
    pub initiator: Option<Name>,
    pub target: Option<T>,
    security: Security,
    pub negotiation: Negotiation,
}

impl<T: Copy> Default for Login<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy> Login<T> {
    pub fn new() -> Self {
        Login {
            started: false,
            stage: Stage::Security,
            isid: [0; 6],
            tsih: 0,
            cid: 0,
            session: SessionType::Normal,
            initiator: None,
            target: None,
            security: Security::Open,
            negotiation: Negotiation::new(Params::default()),
        }
    }

    /// The ISID and TSIH of the first Login Request.
    pub fn identity(&self) -> ([u8; 6], u16) {
        (self.isid, self.tsih)
    }

    /// The session's first connection (TSIH 0): a new session, or a reinstatement.
    pub fn leading(&self) -> bool {
        self.tsih == 0
    }

    /// The values agreed for the session and connection.
    pub fn agreed(&self) -> &Params {
        &self.negotiation.agreed
    }

    /// The answer to a Login Request with the C bit: an empty response in the same stage.
    pub fn partial(&self, pdu: &LoginPdu) -> Step {
        Step::Reply {
            transit: false,
            csg: pdu.csg,
            nsg: pdu.csg,
        }
    }

    /// Takes a Login Request and its whole text; writes the response text to `out`.
    pub fn step<P: Portal<Target = T>, C: Crypto>(
        &mut self,
        pdu: &LoginPdu,
        text: &[u8],
        portal: &P,
        crypto: &C,
        out: &mut Writer<'_>,
    ) -> Step {
        match self.take(pdu, text, portal, crypto, out) {
            Ok(step) => step,
            Err(s) => Step::Fail(s),
        }
    }

    fn take<P: Portal<Target = T>, C: Crypto>(
        &mut self,
        pdu: &LoginPdu,
        text: &[u8],
        portal: &P,
        crypto: &C,
        out: &mut Writer<'_>,
    ) -> Result<Step, Status> {
        let first = !self.started;
        if first {
            if pdu.version_min > VERSION {
                return Err(status::UNSUPPORTED_VERSION);
            }
            self.started = true;
            self.isid = pdu.isid;
            self.tsih = pdu.tsih;
            self.cid = pdu.cid;
            self.stage = pdu.csg;
        } else if (pdu.isid, pdu.tsih, pdu.cid) != (self.isid, self.tsih, self.cid)
            || pdu.csg != self.stage
        {
            return Err(status::INITIATOR_ERROR);
        }
        if pdu.transit && pdu.nsg as u8 <= pdu.csg as u8 {
            return Err(status::INITIATOR_ERROR);
        }

        if first {
            self.admit(&declarations(text)?, portal, out)?;
        }
        // Operational keys and CHAP's keys (the names again, which count as declared).
        let mut declared = Declared::default();
        let mut chap = Keys::default();
        for pair in text::pairs(text) {
            let (key, value) = pair.map_err(|_| status::INITIATOR_ERROR)?;
            if chap.take(key, value).map_err(|_| status::INITIATOR_ERROR)? {
                continue;
            }
            self.negotiation
                .offer(key, value, self.session, self.leading(), &mut declared, out)
                .map_err(|_| status::INITIATOR_ERROR)?;
        }
        if !first
            && (declared.initiator_name.is_some()
                || declared.target_name.is_some()
                || declared.session_type.is_some())
        {
            // Declared once, in the first request.
            return Err(status::INITIATOR_ERROR);
        }

        let auth = portal.admit(
            self.target,
            self.initiator.as_ref().map_or(&[][..], Name::as_bytes),
        )?;
        match pdu.csg {
            Stage::Security => self.security(&declared, &chap, auth, crypto, out)?,
            _ => {
                if chap.a.is_some() || chap.n.is_some() || declared.auth_methods.is_some() {
                    return Err(status::INITIATOR_ERROR);
                }
                // Skipping the security stage is only for targets that do not authenticate.
                if first && auth != Auth::None {
                    return Err(status::AUTH_FAILED);
                }
            }
        }
        if !pdu.transit {
            return Ok(Step::Reply {
                transit: false,
                csg: pdu.csg,
                nsg: pdu.csg,
            });
        }
        if pdu.csg == Stage::Security {
            let authenticated = match self.security {
                Security::None => true,
                Security::Chap(c) => c.done(),
                Security::Open => auth == Auth::None,
            };
            if !authenticated {
                // CHAP under way: an initiator may offer to move on from its first request
                // (open-iscsi does); the target stays until the exchange is done (RFC 7143
                // 6.3, as LIO).
                if matches!(self.security, Security::Chap(_)) {
                    return Ok(Step::Reply {
                        transit: false,
                        csg: Stage::Security,
                        nsg: Stage::Security,
                    });
                }
                return Err(status::AUTH_FAILED);
            }
        }
        if pdu.nsg == Stage::FullFeature {
            self.negotiation
                .finish(out)
                .map_err(|_| status::TARGET_ERROR)?;
            return Ok(Step::FullFeature { csg: pdu.csg });
        }
        self.stage = pdu.nsg;
        Ok(Step::Reply {
            transit: true,
            csg: pdu.csg,
            nsg: pdu.nsg,
        })
    }

    /// The first request: names, the target, the initiator's admission, the TPG's offer.
    fn admit<P: Portal<Target = T>>(
        &mut self,
        d: &Declared<'_>,
        portal: &P,
        out: &mut Writer<'_>,
    ) -> Result<(), Status> {
        let initiator = d.initiator_name.ok_or(status::MISSING_PARAMETER)?;
        self.initiator = Some(Name::new(initiator).ok_or(status::INITIATOR_ERROR)?);
        self.session = d.session_type.unwrap_or(SessionType::Normal);
        if self.session == SessionType::Normal {
            let name = d.target_name.ok_or(status::MISSING_PARAMETER)?;
            let target = portal.target(name)?;
            self.target = Some(target);
            let mut alias = [0u8; VALUE_MAX];
            let n = portal.target_alias(target, &mut alias);
            if n > 0 {
                out.pair(b"TargetAlias", &[&alias[..n]])
                    .map_err(|_| status::TARGET_ERROR)?;
            }
            let mut digits = [0u8; 10];
            out.pair(
                b"TargetPortalGroupTag",
                &[text::decimal(u32::from(portal.tpgt(target)), &mut digits)],
            )
            .map_err(|_| status::TARGET_ERROR)?;
        } else if !self.leading() {
            // A discovery session has one connection.
            return Err(status::INITIATOR_ERROR);
        }
        portal.admit(self.target, initiator)?;
        self.negotiation = Negotiation::new(portal.params(self.target));
        Ok(())
    }

    fn security<C: Crypto>(
        &mut self,
        d: &Declared<'_>,
        keys: &Keys<'_>,
        auth: Auth<'_>,
        crypto: &C,
        out: &mut Writer<'_>,
    ) -> Result<(), Status> {
        if let Some(methods) = d.auth_methods {
            if self.security != Security::Open {
                return Err(status::INITIATOR_ERROR);
            }
            let want: &[u8] = if auth == Auth::None { b"None" } else { b"CHAP" };
            if !methods.split(|&c| c == b',').any(|m| m == want) {
                out.pair(b"AuthMethod", &[b"Reject"]).ok();
                return Err(status::AUTH_FAILED);
            }
            out.pair(b"AuthMethod", &[want])
                .map_err(|_| status::TARGET_ERROR)?;
            self.security = if auth == Auth::None {
                Security::None
            } else {
                Security::Chap(Chap::new())
            };
        }
        match (&mut self.security, auth) {
            (Security::Chap(chap), Auth::Chap { secret, mutual }) => {
                if keys.a.is_some()
                    || keys.n.is_some()
                    || keys.r.is_some()
                    || keys.i.is_some()
                    || keys.c.is_some()
                {
                    chap.step(keys, crypto, secret, mutual, out)
                        .map_err(|e| match e {
                            ChapError::Full => status::TARGET_ERROR,
                            _ => status::AUTH_FAILED,
                        })?;
                }
                Ok(())
            }
            (Security::Chap(_), Auth::None) => Err(status::AUTH_FAILED),
            _ if keys.a.is_some() || keys.n.is_some() => Err(status::INITIATOR_ERROR),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chap::tests::{respond, Fake, TARGET, USER};
    use crate::chap::Alg;
    use crate::pdu::login_status as st;
    use core::cell::Cell;

    const IQN: &[u8] = b"iqn.2003-01.org.linux-iscsi.host:t1";
    const INI: &[u8] = b"iqn.1994-05.com.redhat:init";

    /// One target, TPG 1; the ACL of `INI` (or demo mode) with the given authentication.
    struct TestPortal {
        auth: Auth<'static>,
        demo: bool,
        enabled: bool,
        alias: &'static [u8],
    }

    impl Portal for TestPortal {
        type Target = u8;
        fn target(&self, name: &[u8]) -> Result<u8, Status> {
            match name {
                IQN if self.enabled => Ok(1),
                IQN => Err(st::SERVICE_UNAVAILABLE),
                _ => Err(st::NOT_FOUND),
            }
        }
        fn admit(&self, _: Option<u8>, initiator: &[u8]) -> Result<Auth<'_>, Status> {
            if initiator == INI || self.demo {
                Ok(self.auth)
            } else {
                Err(st::FORBIDDEN)
            }
        }
        fn tpgt(&self, _: u8) -> u16 {
            1
        }
        fn target_alias(&self, _: u8, buf: &mut [u8; VALUE_MAX]) -> usize {
            buf[..self.alias.len()].copy_from_slice(self.alias);
            self.alias.len()
        }
        fn params(&self, _: Option<u8>) -> Params {
            Params {
                max_recv_data_segment_length: 65536,
                ..Params::default()
            }
        }
    }

    fn portal(auth: Auth<'static>) -> TestPortal {
        TestPortal {
            auth,
            demo: false,
            enabled: true,
            alias: b"",
        }
    }

    fn req(transit: bool, csg: Stage, nsg: Stage) -> LoginPdu {
        LoginPdu {
            transit,
            continue_: false,
            csg,
            nsg,
            version_max: 0,
            version_min: 0,
            isid: [0x80, 0, 0, 0, 0, 1],
            tsih: 0,
            cid: 0,
            cmdsn: 0,
            exp_statsn: 0,
        }
    }

    struct Run {
        login: Login<u8>,
        crypto: Fake,
        last: Vec<u8>,
    }

    impl Run {
        fn new() -> Self {
            Run {
                login: Login::new(),
                crypto: Fake(
                    Cell::new(1),
                    &[Alg::Md5, Alg::Sha1, Alg::Sha256, Alg::Sha3_256],
                ),
                last: vec![],
            }
        }
        fn step(&mut self, p: &TestPortal, pdu: LoginPdu, text: &[u8]) -> Step {
            let mut buf = [0u8; 2048];
            let mut w = Writer::new(&mut buf);
            let s = self.login.step(&pdu, text, p, &self.crypto, &mut w);
            self.last = w.bytes().to_vec();
            s
        }
    }

    fn names(session: &[u8]) -> Vec<u8> {
        let mut t = b"InitiatorName=".to_vec();
        t.extend_from_slice(INI);
        t.extend_from_slice(b"\0SessionType=");
        t.extend_from_slice(session);
        t.push(0);
        if session == b"Normal" {
            t.extend_from_slice(b"TargetName=");
            t.extend_from_slice(IQN);
            t.push(0);
        }
        t
    }

    const OPERATIONAL: &[u8] =
        b"HeaderDigest=None\0DataDigest=None\0MaxRecvDataSegmentLength=262144\0\
InitialR2T=No\0ImmediateData=Yes\0MaxBurstLength=16776192\0FirstBurstLength=262144\0";

    #[test]
    fn target_alias_declared_with_the_tag() {
        let p = TestPortal {
            alias: b"LIO Target",
            ..portal(Auth::None)
        };
        let mut r = Run::new();
        let mut t = names(b"Normal");
        t.extend_from_slice(b"AuthMethod=None\0");
        r.step(&p, req(false, Stage::Security, Stage::Security), &t);
        assert_eq!(
            r.last,
            b"TargetAlias=LIO Target\0TargetPortalGroupTag=1\0AuthMethod=None\0".to_vec()
        );
        // Discovery sessions name no target: nothing declared.
        let mut r = Run::new();
        let mut t = names(b"Discovery");
        t.extend_from_slice(b"AuthMethod=None\0");
        r.step(&p, req(false, Stage::Security, Stage::Security), &t);
        assert_eq!(r.last, b"AuthMethod=None\0".to_vec());
    }

    #[test]
    fn without_authentication_like_open_iscsi() {
        let p = portal(Auth::None);
        let mut r = Run::new();
        let mut t = names(b"Normal");
        t.extend_from_slice(b"AuthMethod=None\0");
        assert_eq!(
            r.step(&p, req(true, Stage::Security, Stage::Operational), &t),
            Step::Reply {
                transit: true,
                csg: Stage::Security,
                nsg: Stage::Operational
            }
        );
        assert_eq!(
            r.last,
            b"TargetPortalGroupTag=1\0AuthMethod=None\0".to_vec()
        );
        assert_eq!(
            r.step(
                &p,
                req(true, Stage::Operational, Stage::FullFeature),
                OPERATIONAL
            ),
            Step::FullFeature {
                csg: Stage::Operational
            }
        );
        assert_eq!(
            r.last,
            b"HeaderDigest=None\0DataDigest=None\0MaxRecvDataSegmentLength=65536\0InitialR2T=Yes\0\
ImmediateData=Yes\0MaxBurstLength=262144\0FirstBurstLength=65536\0"
                .to_vec()
        );
        assert_eq!(r.login.initiator.unwrap().as_bytes(), INI);
        assert_eq!(
            (r.login.target, r.login.session, r.login.leading()),
            (Some(1), SessionType::Normal, true)
        );
        assert_eq!(r.login.agreed().max_xmit_data_segment_length, 262144);
    }

    #[test]
    fn straight_to_operational_and_discovery() {
        let p = portal(Auth::None);
        let mut r = Run::new();
        let mut t = names(b"Discovery");
        t.extend_from_slice(b"MaxBurstLength=512\0");
        assert_eq!(
            r.step(&p, req(true, Stage::Operational, Stage::FullFeature), &t),
            Step::FullFeature {
                csg: Stage::Operational
            }
        );
        assert_eq!(
            r.last,
            b"MaxBurstLength=Irrelevant\0MaxRecvDataSegmentLength=65536\0".to_vec()
        );
        assert_eq!(
            (r.login.session, r.login.target),
            (SessionType::Discovery, None)
        );
    }

    #[test]
    fn chap_one_way_and_mutual() {
        for mutual in [false, true] {
            let p = portal(Auth::Chap {
                secret: USER,
                mutual: Some(TARGET),
            });
            let mut r = Run::new();
            let mut t = names(b"Normal");
            t.extend_from_slice(b"AuthMethod=CHAP,None\0");
            let sec = req(false, Stage::Security, Stage::Security);
            assert!(matches!(
                r.step(&p, sec, &t),
                Step::Reply { transit: false, .. }
            ));
            assert_eq!(
                r.last,
                b"TargetPortalGroupTag=1\0AuthMethod=CHAP\0".to_vec()
            );
            assert!(matches!(
                r.step(&p, sec, b"CHAP_A=7,5\0"),
                Step::Reply { transit: false, .. }
            ));
            assert!(
                r.last.starts_with(b"CHAP_A=7\0CHAP_I="),
                "{:?}",
                String::from_utf8_lossy(&r.last)
            );
            let mut answer = respond(&r.crypto, &r.last, USER);
            if mutual {
                answer.extend_from_slice(b"CHAP_I=9\0CHAP_C=0xaabbccdd\0");
            }
            assert_eq!(
                r.step(&p, req(true, Stage::Security, Stage::Operational), &answer),
                Step::Reply {
                    transit: true,
                    csg: Stage::Security,
                    nsg: Stage::Operational
                }
            );
            assert_eq!(r.last.starts_with(b"CHAP_N=target\0CHAP_R=0x"), mutual);
            assert!(matches!(
                r.step(
                    &p,
                    req(true, Stage::Operational, Stage::FullFeature),
                    OPERATIONAL
                ),
                Step::FullFeature { .. }
            ));
        }
    }

    #[test]
    fn authentication_failures() {
        let chap = portal(Auth::Chap {
            secret: USER,
            mutual: None,
        });
        let with = |extra: &[u8]| {
            let mut t = names(b"Normal");
            t.extend_from_slice(extra);
            t
        };
        // Leaving security before CHAP is done: the target stays, and CHAP goes on.
        let mut r = Run::new();
        let leave = req(true, Stage::Security, Stage::Operational);
        assert_eq!(
            r.step(&chap, leave, &with(b"AuthMethod=CHAP,None\0")),
            Step::Reply {
                transit: false,
                csg: Stage::Security,
                nsg: Stage::Security
            }
        );
        assert!(r.last.ends_with(b"AuthMethod=CHAP\0"));
        r.step(&chap, leave, b"CHAP_A=5\0");
        assert!(r.last.starts_with(b"CHAP_A=5\0CHAP_I="));
        let answer = respond(&r.crypto, &r.last, USER);
        assert!(matches!(
            r.step(&chap, leave, &answer),
            Step::Reply { transit: true, .. }
        ));
        // Skipping security, offering only None to a target that wants CHAP.
        for (pdu, extra) in [
            (req(true, Stage::Operational, Stage::FullFeature), &b""[..]),
            (
                req(false, Stage::Security, Stage::Security),
                b"AuthMethod=None\0",
            ),
        ] {
            let step = Run::new().step(&chap, pdu, &with(extra));
            assert_eq!(step, Step::Fail(st::AUTH_FAILED), "{extra:?}");
        }
        // A wrong secret.
        let mut r = Run::new();
        let sec = req(false, Stage::Security, Stage::Security);
        r.step(&chap, sec, &with(b"AuthMethod=CHAP\0"));
        r.step(&chap, sec, b"CHAP_A=5\0");
        let bad = respond(
            &r.crypto,
            &r.last,
            Secret {
                user: USER.user,
                password: b"not-the-secret",
            },
        );
        assert_eq!(r.step(&chap, sec, &bad), Step::Fail(st::AUTH_FAILED));
        // Mutual CHAP asked of a target without mutual credentials.
        let mut r = Run::new();
        r.step(&chap, sec, &with(b"AuthMethod=CHAP\0"));
        r.step(&chap, sec, b"CHAP_A=5\0");
        let mut ans = respond(&r.crypto, &r.last, USER);
        ans.extend_from_slice(b"CHAP_I=1\0CHAP_C=0x01\0");
        assert_eq!(r.step(&chap, sec, &ans), Step::Fail(st::AUTH_FAILED));
    }

    #[test]
    fn names_targets_and_acls() {
        let p = portal(Auth::None);
        let op = req(true, Stage::Operational, Stage::FullFeature);
        let fail = |p: &TestPortal, t: &[u8]| Run::new().step(p, op, t);
        assert_eq!(
            fail(&p, b"SessionType=Normal\0"),
            Step::Fail(st::MISSING_PARAMETER)
        );
        let mut t = b"InitiatorName=".to_vec();
        t.extend_from_slice(INI);
        t.push(0);
        assert_eq!(
            fail(&p, &t),
            Step::Fail(st::MISSING_PARAMETER),
            "a normal session names its target"
        );
        let mut other = t.clone();
        other.extend_from_slice(b"TargetName=iqn.2003-01.org.example:nope\0");
        assert_eq!(fail(&p, &other), Step::Fail(st::NOT_FOUND));
        let off = TestPortal {
            enabled: false,
            ..portal(Auth::None)
        };
        assert_eq!(
            fail(&off, &names(b"Normal")),
            Step::Fail(st::SERVICE_UNAVAILABLE)
        );
        let stranger = {
            let mut t = b"InitiatorName=iqn.2000-01.org.example:stranger\0TargetName=".to_vec();
            t.extend_from_slice(IQN);
            t.push(0);
            t
        };
        assert_eq!(fail(&p, &stranger), Step::Fail(st::FORBIDDEN));
        let demo = TestPortal {
            demo: true,
            ..portal(Auth::None)
        };
        assert!(matches!(fail(&demo, &stranger), Step::FullFeature { .. }));
        let mut odd = names(b"Normal");
        odd.extend_from_slice(b"SessionType=Other\0");
        assert_eq!(fail(&p, &odd), Step::Fail(st::SESSION_TYPE_UNSUPPORTED));
    }

    #[test]
    fn protocol_errors() {
        let p = portal(Auth::None);
        let mut bad_version = req(true, Stage::Operational, Stage::FullFeature);
        bad_version.version_min = 1;
        assert_eq!(
            Run::new().step(&p, bad_version, &names(b"Normal")),
            Step::Fail(st::UNSUPPORTED_VERSION)
        );
        // Going back a stage, NSG not past CSG, an ISID that changes, names declared twice.
        let mut r = Run::new();
        r.step(
            &p,
            req(true, Stage::Security, Stage::Operational),
            &names(b"Normal"),
        );
        assert_eq!(
            r.step(&p, req(false, Stage::Security, Stage::Security), b""),
            Step::Fail(st::INITIATOR_ERROR)
        );
        let mut r = Run::new();
        r.step(
            &p,
            req(false, Stage::Operational, Stage::Operational),
            &names(b"Normal"),
        );
        let mut moved = req(false, Stage::Operational, Stage::Operational);
        moved.isid[5] = 2;
        assert_eq!(r.step(&p, moved, b""), Step::Fail(st::INITIATOR_ERROR));
        let mut r = Run::new();
        r.step(
            &p,
            req(false, Stage::Operational, Stage::Operational),
            &names(b"Normal"),
        );
        assert_eq!(
            r.step(
                &p,
                req(false, Stage::Operational, Stage::Operational),
                &names(b"Normal")
            ),
            Step::Fail(st::INITIATOR_ERROR)
        );
        let mut r = Run::new();
        assert_eq!(
            r.step(
                &p,
                req(true, Stage::Operational, Stage::Operational),
                &names(b"Normal")
            ),
            Step::Fail(st::INITIATOR_ERROR)
        );
        // Malformed text, a repeated key, CHAP keys in the operational stage.
        for extra in [
            &b"Garbage\0"[..],
            b"MaxBurstLength=512\0MaxBurstLength=512\0",
            b"CHAP_A=5\0",
        ] {
            let mut t = names(b"Normal");
            t.extend_from_slice(extra);
            assert_eq!(
                Run::new().step(&p, req(true, Stage::Operational, Stage::FullFeature), &t),
                Step::Fail(st::INITIATOR_ERROR),
                "{extra:?}"
            );
        }
    }
}
