//! iSCSI text keys (RFC 7143 6 and 13): `key=value` pairs of Login and Text data segments,
//! parsed and checked, and the target's side of operational and security negotiation with
//! LIO's defaults (drivers/target/iscsi/iscsi_target_parameters.h).

/// MaxRecvDataSegmentLength of a side that does not declare one (RFC 7143 13.12).
pub const DEFAULT_SEGMENT: u32 = 8192;

/// Longest key name (RFC 7143 6.1).
pub const MAX_KEY: usize = 63;
/// Longest value this parser takes; simple values are further bounded to 255 bytes by the
/// negotiation, CHAP's binary values may reach 1024 bytes encoded (RFC 7143 12.1.4).
pub const MAX_VALUE: usize = 8192;

/// Why a text segment cannot be taken. Each is a protocol error: a login fails with
/// "initiator error" (0200h), a Text request is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextError {
    /// A pair without `=`.
    NoEquals,
    /// An empty key, a key longer than 63 bytes, or a byte RFC 7143 6.1 does not allow.
    BadKey,
    /// A value longer than allowed.
    TooLong,
    /// The last pair is not terminated by a NUL.
    Unterminated,
    /// A key sent twice in one negotiation (RFC 7143 6.2).
    Repeated,
    /// More pairs than the response can hold.
    ResponseFull,
}

fn key_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'@' | b'_')
}

/// A `key=value` pair, without the `=` and the NUL.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// The `key=value` pairs of a text data segment, in order. Empty items (padding NULs) are
/// skipped.
pub struct Pairs<'a> {
    rest: &'a [u8],
}

/// Iterates over the pairs of `data`.
pub fn pairs(data: &[u8]) -> Pairs<'_> {
    Pairs { rest: data }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<Pair<'a>, TextError>;

    fn next(&mut self) -> Option<Self::Item> {
        while let [0, rest @ ..] = self.rest {
            self.rest = rest;
        }
        if self.rest.is_empty() {
            return None;
        }
        let Some(end) = self.rest.iter().position(|&c| c == 0) else {
            self.rest = &[];
            return Some(Err(TextError::Unterminated));
        };
        let item = &self.rest[..end];
        self.rest = &self.rest[end + 1..];
        let Some(eq) = item.iter().position(|&c| c == b'=') else {
            return Some(Err(TextError::NoEquals));
        };
        let (key, value) = (&item[..eq], &item[eq + 1..]);
        if key.is_empty() || key.len() > MAX_KEY || !key.iter().all(|&c| key_byte(c)) {
            return Some(Err(TextError::BadKey));
        }
        if value.len() > MAX_VALUE {
            return Some(Err(TextError::TooLong));
        }
        Some(Ok((key, value)))
    }
}

/// Appends `key=value\0` pairs to a fixed buffer (a response's data segment).
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, len: 0 }
    }

    /// Bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What has been written.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Appends `key=` and the concatenation of `parts`, then a NUL; all or nothing.
    pub fn pair(&mut self, key: &[u8], parts: &[&[u8]]) -> Result<(), TextError> {
        let need = key.len() + 2 + parts.iter().map(|p| p.len()).sum::<usize>();
        let end = self
            .len
            .checked_add(need)
            .filter(|&e| e <= self.buf.len())
            .ok_or(TextError::ResponseFull)?;
        let mut at = self.len;
        for p in [key, b"=".as_slice()].iter().chain(parts.iter()) {
            self.buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        self.buf[at] = 0;
        debug_assert_eq!(at + 1, end);
        self.len = end;
        Ok(())
    }

    /// Appends `key=<decimal n>`.
    pub fn number(&mut self, key: &[u8], n: u32) -> Result<(), TextError> {
        let mut digits = [0u8; 10];
        self.pair(key, &[decimal(n, &mut digits)])
    }
}

/// `n` in decimal, in `buf`.
pub fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// A numerical value (RFC 7143 6.1): decimal, or hexadecimal with 0x. None if malformed or
/// beyond 32 bits.
pub fn number(v: &[u8]) -> Option<u32> {
    let (digits, radix) = match v {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
        _ => (v, 10),
    };
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in digits {
        n = n * radix + u64::from(char::from(c).to_digit(radix as u32)?);
    }
    u32::try_from(n).ok()
}

fn yes_no(v: &[u8]) -> Option<bool> {
    match v {
        b"Yes" => Some(true),
        b"No" => Some(false),
        _ => None,
    }
}

fn yes_no_str(b: bool) -> &'static [u8] {
    if b {
        b"Yes"
    } else {
        b"No"
    }
}

/// Session types (RFC 7143 13.21).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionType {
    Normal,
    Discovery,
}

/// Digests a connection may use (HeaderDigest, DataDigest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    None,
    Crc32c,
}

/// Authentication methods (AuthMethod).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    None,
    Chap,
}

/// The operational parameters of a session and its connection (RFC 7143 13), with LIO's
/// initial values. The target's own values come from the TPG's `param/`; negotiation turns
/// them into the agreed ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub header_digest: [Option<Digest>; 2],
    pub data_digest: [Option<Digest>; 2],
    pub max_connections: u32,
    pub initial_r2t: bool,
    pub immediate_data: bool,
    /// What the target can receive (declared by the target).
    pub max_recv_data_segment_length: u32,
    /// What the initiator can receive (declared by the initiator); LIO's MaxXmitDataSegmentLength
    /// bounds it from the target's side.
    pub max_xmit_data_segment_length: u32,
    pub max_burst_length: u32,
    pub first_burst_length: u32,
    pub default_time2wait: u32,
    pub default_time2retain: u32,
    pub max_outstanding_r2t: u32,
    pub data_pdu_in_order: bool,
    pub data_sequence_in_order: bool,
    pub error_recovery_level: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            header_digest: [Some(Digest::Crc32c), Some(Digest::None)],
            data_digest: [Some(Digest::Crc32c), Some(Digest::None)],
            max_connections: 1,
            initial_r2t: true,
            immediate_data: true,
            max_recv_data_segment_length: 8192,
            max_xmit_data_segment_length: 262144,
            max_burst_length: 262144,
            first_burst_length: 65536,
            default_time2wait: 2,
            default_time2retain: 20,
            max_outstanding_r2t: 1,
            data_pdu_in_order: true,
            data_sequence_in_order: true,
            error_recovery_level: 0,
        }
    }
}

/// How a key is negotiated (RFC 7143 6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// The responder picks the first value of the offer's list it supports.
    List,
    /// Result: both Yes.
    And,
    /// Result: either Yes.
    Or,
    /// Result: the smaller value, within `lo..=hi`.
    Min(u32, u32),
    /// Result: the larger value, within `lo..=hi`.
    Max(u32, u32),
    /// Each side states its own value; `lo..=hi` when numerical, 0..=0 for names.
    Declare(u32, u32),
}

/// Where a key may appear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// In the leading login of a session only; irrelevant to discovery sessions.
    SessionNormal,
    /// In any login (the connection's own), both session types.
    Connection,
    /// In the leading login of any session.
    Session,
    /// In the security stage only (authentication keys; the login state machine handles them).
    Security,
}

/// The keys the target knows (RFC 7143 13 and 12, iSER's RFC 7145 keys, and the obsolete
/// marker keys of RFC 3720), in the order responses list them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    AuthMethod,
    HeaderDigest,
    DataDigest,
    MaxConnections,
    SendTargets,
    TargetName,
    InitiatorName,
    TargetAlias,
    InitiatorAlias,
    TargetAddress,
    TargetPortalGroupTag,
    InitialR2T,
    ImmediateData,
    MaxRecvDataSegmentLength,
    MaxBurstLength,
    FirstBurstLength,
    DefaultTime2Wait,
    DefaultTime2Retain,
    MaxOutstandingR2T,
    DataPduInOrder,
    DataSequenceInOrder,
    ErrorRecoveryLevel,
    SessionType,
    IfMarker,
    OfMarker,
    IfMarkInt,
    OfMarkInt,
    RdmaExtensions,
    TaskReporting,
}

const KEYS: [(Key, &[u8], Rule, Scope); 29] = [
    (Key::AuthMethod, b"AuthMethod", Rule::List, Scope::Security),
    (
        Key::HeaderDigest,
        b"HeaderDigest",
        Rule::List,
        Scope::Connection,
    ),
    (
        Key::DataDigest,
        b"DataDigest",
        Rule::List,
        Scope::Connection,
    ),
    (
        Key::MaxConnections,
        b"MaxConnections",
        Rule::Min(1, 65535),
        Scope::SessionNormal,
    ),
    (
        Key::SendTargets,
        b"SendTargets",
        Rule::Declare(0, 0),
        Scope::Session,
    ),
    (
        Key::TargetName,
        b"TargetName",
        Rule::Declare(0, 0),
        Scope::Session,
    ),
    (
        Key::InitiatorName,
        b"InitiatorName",
        Rule::Declare(0, 0),
        Scope::Session,
    ),
    (
        Key::TargetAlias,
        b"TargetAlias",
        Rule::Declare(0, 0),
        Scope::Session,
    ),
    (
        Key::InitiatorAlias,
        b"InitiatorAlias",
        Rule::Declare(0, 0),
        Scope::Session,
    ),
    (
        Key::TargetAddress,
        b"TargetAddress",
        Rule::Declare(0, 0),
        Scope::Session,
    ),
    (
        Key::TargetPortalGroupTag,
        b"TargetPortalGroupTag",
        Rule::Declare(0, 65535),
        Scope::Session,
    ),
    (
        Key::InitialR2T,
        b"InitialR2T",
        Rule::Or,
        Scope::SessionNormal,
    ),
    (
        Key::ImmediateData,
        b"ImmediateData",
        Rule::And,
        Scope::SessionNormal,
    ),
    (
        Key::MaxRecvDataSegmentLength,
        b"MaxRecvDataSegmentLength",
        Rule::Declare(512, 16777215),
        Scope::Connection,
    ),
    (
        Key::MaxBurstLength,
        b"MaxBurstLength",
        Rule::Min(512, 16777215),
        Scope::SessionNormal,
    ),
    (
        Key::FirstBurstLength,
        b"FirstBurstLength",
        Rule::Min(512, 16777215),
        Scope::SessionNormal,
    ),
    (
        Key::DefaultTime2Wait,
        b"DefaultTime2Wait",
        Rule::Max(0, 3600),
        Scope::Session,
    ),
    (
        Key::DefaultTime2Retain,
        b"DefaultTime2Retain",
        Rule::Min(0, 3600),
        Scope::Session,
    ),
    (
        Key::MaxOutstandingR2T,
        b"MaxOutstandingR2T",
        Rule::Min(1, 65535),
        Scope::SessionNormal,
    ),
    (
        Key::DataPduInOrder,
        b"DataPDUInOrder",
        Rule::Or,
        Scope::SessionNormal,
    ),
    (
        Key::DataSequenceInOrder,
        b"DataSequenceInOrder",
        Rule::Or,
        Scope::SessionNormal,
    ),
    (
        Key::ErrorRecoveryLevel,
        b"ErrorRecoveryLevel",
        Rule::Min(0, 2),
        Scope::Session,
    ),
    (
        Key::SessionType,
        b"SessionType",
        Rule::Declare(0, 0),
        Scope::Session,
    ),
    (Key::IfMarker, b"IFMarker", Rule::And, Scope::Connection),
    (Key::OfMarker, b"OFMarker", Rule::And, Scope::Connection),
    (
        Key::IfMarkInt,
        b"IFMarkInt",
        Rule::Declare(0, 0),
        Scope::Connection,
    ),
    (
        Key::OfMarkInt,
        b"OFMarkInt",
        Rule::Declare(0, 0),
        Scope::Connection,
    ),
    (
        Key::RdmaExtensions,
        b"RDMAExtensions",
        Rule::And,
        Scope::SessionNormal,
    ),
    (
        Key::TaskReporting,
        b"TaskReporting",
        Rule::List,
        Scope::SessionNormal,
    ),
];

impl Key {
    /// The key named `name`.
    pub fn named(name: &[u8]) -> Option<Key> {
        KEYS.iter().find(|k| k.1 == name).map(|k| k.0)
    }

    fn def(self) -> &'static (Key, &'static [u8], Rule, Scope) {
        &KEYS[self as usize]
    }

    /// The key's name on the wire.
    pub fn name(self) -> &'static [u8] {
        self.def().1
    }
}

/// The declarations a login collects for the login state machine (names and session type).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Declared<'a> {
    pub initiator_name: Option<&'a [u8]>,
    pub initiator_alias: Option<&'a [u8]>,
    pub target_name: Option<&'a [u8]>,
    pub session_type: Option<SessionType>,
    pub auth_methods: Option<&'a [u8]>,
}

/// The target's side of one negotiation: what it offers (`ours`), what has been agreed so far,
/// and which keys the initiator has sent (each at most once per login or Text exchange).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiation {
    pub ours: Params,
    pub agreed: Params,
    seen: u32,
    /// Whether the target has already declared its MaxRecvDataSegmentLength on this connection.
    declared_mrdsl: bool,
}

/// What the target answers to one key (the response pair is written by [`Negotiation::offer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A negotiated or declared value.
    Value,
    /// Not a key this target knows: `key=NotUnderstood`.
    NotUnderstood,
    /// The key does not apply here (discovery session, a later connection): `key=Irrelevant`.
    Irrelevant,
    /// The offered value is malformed or outside the key's range: `key=Reject`.
    Reject,
    /// A declaration the target only records (no response).
    Recorded,
}

impl Negotiation {
    pub fn new(ours: Params) -> Self {
        let mut agreed = ours;
        // Until the initiator declares its MaxRecvDataSegmentLength: RFC 7143's default.
        agreed.max_xmit_data_segment_length =
            ours.max_xmit_data_segment_length.min(DEFAULT_SEGMENT);
        Negotiation {
            ours,
            agreed,
            seen: 0,
            declared_mrdsl: false,
        }
    }

    /// Forgets which keys were seen (a new Text exchange on a session in full feature phase).
    pub fn next_exchange(&mut self) {
        self.seen = 0;
    }

    /// Takes the initiator's `key=value` in a login of a `session` session (`leading`: the
    /// session's first connection), writes the answer to `out` and records the agreed value.
    /// The security keys (AuthMethod aside) and SendTargets belong to the caller: they answer
    /// [`Answer::Recorded`] and leave `declared` to describe them.
    pub fn offer<'v>(
        &mut self,
        key: &[u8],
        value: &'v [u8],
        session: SessionType,
        leading: bool,
        declared: &mut Declared<'v>,
        out: &mut Writer<'_>,
    ) -> Result<Answer, TextError> {
        let Some(k) = Key::named(key) else {
            // CHAP's keys belong to the authentication exchange; anything else (private X-
            // extensions included) is not understood.
            if key.starts_with(b"CHAP_") {
                return Ok(Answer::Recorded);
            }
            out.pair(key, &[b"NotUnderstood"])?;
            return Ok(Answer::NotUnderstood);
        };
        let bit = 1u32 << (k as u32);
        if self.seen & bit != 0 {
            return Err(TextError::Repeated);
        }
        self.seen |= bit;
        let (_, name, rule, scope) = *k.def();
        if value.len() > 255 {
            out.pair(name, &[b"Reject"])?;
            return Ok(Answer::Reject);
        }
        let irrelevant = match scope {
            Scope::SessionNormal => session == SessionType::Discovery || !leading,
            Scope::Session => !leading,
            Scope::Connection | Scope::Security => false,
        };
        if irrelevant {
            out.pair(name, &[b"Irrelevant"])?;
            return Ok(Answer::Irrelevant);
        }
        let a = &mut self.agreed;
        let o = &self.ours;
        let answer = match (k, rule) {
            (Key::InitiatorName, _) => {
                declared.initiator_name = Some(value);
                return Ok(Answer::Recorded);
            }
            (Key::InitiatorAlias, _) => {
                declared.initiator_alias = Some(value);
                return Ok(Answer::Recorded);
            }
            (Key::TargetName, _) => {
                declared.target_name = Some(value);
                return Ok(Answer::Recorded);
            }
            (Key::SessionType, _) => {
                declared.session_type = match value {
                    b"Normal" => Some(SessionType::Normal),
                    b"Discovery" => Some(SessionType::Discovery),
                    _ => {
                        out.pair(name, &[b"Reject"])?;
                        return Ok(Answer::Reject);
                    }
                };
                return Ok(Answer::Recorded);
            }
            (Key::AuthMethod, _) => {
                declared.auth_methods = Some(value);
                return Ok(Answer::Recorded);
            }
            (Key::SendTargets, _) => return Ok(Answer::Recorded),
            (Key::TargetAlias | Key::TargetAddress | Key::TargetPortalGroupTag, _) => {
                // Only the target declares these.
                out.pair(name, &[b"Reject"])?;
                return Ok(Answer::Reject);
            }
            (Key::HeaderDigest | Key::DataDigest, _) => {
                let ours = if k == Key::HeaderDigest {
                    &o.header_digest
                } else {
                    &o.data_digest
                };
                match pick_digest(value, ours) {
                    Some(d) => {
                        let set = [Some(d), None];
                        if k == Key::HeaderDigest {
                            a.header_digest = set;
                        } else {
                            a.data_digest = set;
                        }
                        out.pair(name, &[digest_name(d)])?;
                        Answer::Value
                    }
                    None => Answer::Reject,
                }
            }
            (Key::IfMarker | Key::OfMarker | Key::RdmaExtensions, _) => match yes_no(value) {
                // Markers and iSER are not offered: the AND is always No.
                Some(_) => {
                    out.pair(name, &[b"No"])?;
                    Answer::Value
                }
                None => Answer::Reject,
            },
            (Key::IfMarkInt | Key::OfMarkInt, _) => {
                // Without markers the interval does not apply (RFC 3720 A.3.2).
                out.pair(name, &[b"Irrelevant"])?;
                return Ok(Answer::Irrelevant);
            }
            (Key::TaskReporting, _) => {
                // RFC 7143 13.23: RFC3720 semantics only.
                if value.split(|&c| c == b',').any(|v| v == b"RFC3720") {
                    out.pair(name, &[b"RFC3720"])?;
                    Answer::Value
                } else {
                    Answer::Reject
                }
            }
            (Key::MaxRecvDataSegmentLength, Rule::Declare(lo, hi)) => match number(value) {
                Some(n) if (lo..=hi).contains(&n) => {
                    a.max_xmit_data_segment_length = n.min(o.max_xmit_data_segment_length);
                    if !self.declared_mrdsl {
                        self.declared_mrdsl = true;
                        out.number(name, o.max_recv_data_segment_length)?;
                    }
                    Answer::Value
                }
                _ => Answer::Reject,
            },
            (_, Rule::And | Rule::Or) => match yes_no(value) {
                Some(theirs) => {
                    let (mine, slot) = bool_slot(k, o, a);
                    *slot = if rule == Rule::And {
                        mine && theirs
                    } else {
                        mine || theirs
                    };
                    out.pair(name, &[yes_no_str(*slot)])?;
                    Answer::Value
                }
                None => Answer::Reject,
            },
            (_, Rule::Min(lo, hi) | Rule::Max(lo, hi)) => match number(value) {
                Some(theirs) if (lo..=hi).contains(&theirs) => {
                    let (mine, slot) = number_slot(k, o, a);
                    *slot = if matches!(rule, Rule::Min(..)) {
                        mine.min(theirs)
                    } else {
                        mine.max(theirs)
                    };
                    out.number(name, *slot)?;
                    Answer::Value
                }
                _ => Answer::Reject,
            },
            _ => Answer::Reject,
        };
        if answer == Answer::Reject {
            out.pair(name, &[b"Reject"])?;
        }
        Ok(answer)
    }

    /// After the operational stage: the declarations the target owes in its last response
    /// (its MaxRecvDataSegmentLength if the initiator did not ask) and the consistency rules
    /// between agreed values (FirstBurstLength ≤ MaxBurstLength, RFC 7143 13.14).
    pub fn finish(&mut self, out: &mut Writer<'_>) -> Result<(), TextError> {
        if !self.declared_mrdsl {
            self.declared_mrdsl = true;
            out.number(
                Key::MaxRecvDataSegmentLength.name(),
                self.ours.max_recv_data_segment_length,
            )?;
        }
        if self.agreed.first_burst_length > self.agreed.max_burst_length {
            self.agreed.first_burst_length = self.agreed.max_burst_length;
        }
        Ok(())
    }
}

fn digest_name(d: Digest) -> &'static [u8] {
    match d {
        Digest::None => b"None",
        Digest::Crc32c => b"CRC32C",
    }
}

/// The first digest of the offered list that the target allows.
fn pick_digest(list: &[u8], ours: &[Option<Digest>; 2]) -> Option<Digest> {
    list.split(|&c| c == b',')
        .filter_map(|v| match v {
            b"None" => Some(Digest::None),
            b"CRC32C" => Some(Digest::Crc32c),
            _ => None,
        })
        .find(|d| ours.contains(&Some(*d)))
}

fn bool_slot<'a>(k: Key, o: &Params, a: &'a mut Params) -> (bool, &'a mut bool) {
    match k {
        Key::InitialR2T => (o.initial_r2t, &mut a.initial_r2t),
        Key::ImmediateData => (o.immediate_data, &mut a.immediate_data),
        Key::DataPduInOrder => (o.data_pdu_in_order, &mut a.data_pdu_in_order),
        _ => (o.data_sequence_in_order, &mut a.data_sequence_in_order),
    }
}

fn number_slot<'a>(k: Key, o: &Params, a: &'a mut Params) -> (u32, &'a mut u32) {
    match k {
        Key::MaxConnections => (o.max_connections, &mut a.max_connections),
        Key::MaxBurstLength => (o.max_burst_length, &mut a.max_burst_length),
        Key::FirstBurstLength => (o.first_burst_length, &mut a.first_burst_length),
        Key::DefaultTime2Wait => (o.default_time2wait, &mut a.default_time2wait),
        Key::DefaultTime2Retain => (o.default_time2retain, &mut a.default_time2retain),
        Key::MaxOutstandingR2T => (o.max_outstanding_r2t, &mut a.max_outstanding_r2t),
        _ => (o.error_recovery_level, &mut a.error_recovery_level),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(data: &[u8]) -> Vec<Result<Pair<'_>, TextError>> {
        pairs(data).collect()
    }

    #[test]
    fn pairs_parse_and_refuse() {
        assert_eq!(
            all(b"InitiatorName=iqn.x\0SessionType=Normal\0\0\0"),
            vec![
                Ok((&b"InitiatorName"[..], &b"iqn.x"[..])),
                Ok((&b"SessionType"[..], &b"Normal"[..]))
            ]
        );
        assert_eq!(all(b"a=\0"), vec![Ok((&b"a"[..], &b""[..]))]);
        assert_eq!(all(b"a=b=c\0"), vec![Ok((&b"a"[..], &b"b=c"[..]))]);
        assert_eq!(all(b"novalue\0"), vec![Err(TextError::NoEquals)]);
        assert_eq!(all(b"=v\0"), vec![Err(TextError::BadKey)]);
        assert_eq!(all(b"sp ace=v\0"), vec![Err(TextError::BadKey)]);
        let long = [b'k'; 64];
        let mut d = long.to_vec();
        d.extend_from_slice(b"=v\0");
        assert_eq!(all(&d), vec![Err(TextError::BadKey)]);
        assert_eq!(all(b"a=b"), vec![Err(TextError::Unterminated)]);
    }

    #[test]
    fn numbers() {
        assert_eq!(number(b"8192"), Some(8192));
        assert_eq!(number(b"0x2000"), Some(8192));
        assert_eq!(number(b"4294967295"), Some(u32::MAX));
        assert_eq!(number(b"4294967296"), None);
        assert_eq!(number(b""), None);
        assert_eq!(number(b"0x"), None);
        assert_eq!(number(b"12a"), None);
        assert_eq!(number(b"-1"), None);
        let mut buf = [0u8; 10];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(u32::MAX, &mut buf), b"4294967295");
    }

    #[test]
    fn writer_is_all_or_nothing() {
        let mut buf = [0u8; 12];
        let mut w = Writer::new(&mut buf);
        w.pair(b"Ab", &[b"Yes"]).unwrap();
        assert_eq!(w.bytes(), b"Ab=Yes\0");
        assert_eq!(w.number(b"Cd", 12345), Err(TextError::ResponseFull));
        assert_eq!(w.bytes(), b"Ab=Yes\0");
        w.number(b"C", 12).unwrap();
        assert_eq!(w.len(), 12);
    }

    /// Negotiates `offer` (a text segment) as a leading login of `session` and returns the
    /// response segment and the negotiation.
    fn negotiate(
        offer: &[u8],
        session: SessionType,
    ) -> (Vec<u8>, Negotiation, Result<(), TextError>) {
        let mut n = Negotiation::new(Params::default());
        let mut buf = [0u8; 1024];
        let mut w = Writer::new(&mut buf);
        let mut d = Declared::default();
        let mut r = Ok(());
        for p in pairs(offer) {
            match p.and_then(|(k, v)| n.offer(k, v, session, true, &mut d, &mut w)) {
                Ok(_) => {}
                Err(e) => {
                    r = Err(e);
                    break;
                }
            }
        }
        if r.is_ok() {
            r = n.finish(&mut w);
        }
        (w.bytes().to_vec(), n, r)
    }

    #[test]
    fn open_iscsi_operational_offer() {
        // What iscsiadm sends by default in the operational stage.
        let offer =
            b"HeaderDigest=None\0DataDigest=None\0DefaultTime2Wait=2\0DefaultTime2Retain=0\0\
IFMarker=No\0OFMarker=No\0ErrorRecoveryLevel=0\0InitialR2T=No\0ImmediateData=Yes\0\
MaxBurstLength=16776192\0FirstBurstLength=262144\0MaxOutstandingR2T=1\0MaxConnections=1\0\
DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0MaxRecvDataSegmentLength=262144\0";
        let (resp, n, r) = negotiate(offer, SessionType::Normal);
        assert_eq!(r, Ok(()));
        assert_eq!(
            resp,
            b"HeaderDigest=None\0DataDigest=None\0DefaultTime2Wait=2\0DefaultTime2Retain=0\0\
IFMarker=No\0OFMarker=No\0ErrorRecoveryLevel=0\0InitialR2T=Yes\0ImmediateData=Yes\0\
MaxBurstLength=262144\0FirstBurstLength=65536\0MaxOutstandingR2T=1\0MaxConnections=1\0\
DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0MaxRecvDataSegmentLength=8192\0"
                .to_vec()
        );
        let a = n.agreed;
        assert_eq!(a.header_digest, [Some(Digest::None), None]);
        assert!(a.initial_r2t && a.immediate_data);
        assert_eq!(
            (
                a.max_burst_length,
                a.first_burst_length,
                a.default_time2retain
            ),
            (262144, 65536, 0)
        );
        assert_eq!(a.max_xmit_data_segment_length, 262144);
    }

    #[test]
    fn digests_follow_the_offers_order() {
        let (resp, n, _) = negotiate(
            b"HeaderDigest=CRC32C,None\0DataDigest=None,CRC32C\0",
            SessionType::Normal,
        );
        assert_eq!(
            resp,
            b"HeaderDigest=CRC32C\0DataDigest=None\0MaxRecvDataSegmentLength=8192\0".to_vec()
        );
        assert_eq!(n.agreed.header_digest[0], Some(Digest::Crc32c));
        let (resp, _, _) = negotiate(b"HeaderDigest=MD5\0", SessionType::Normal);
        assert!(resp.starts_with(b"HeaderDigest=Reject\0"));
    }

    #[test]
    fn bad_values_unknown_keys_and_repeats() {
        let (resp, n, r) = negotiate(
            b"MaxBurstLength=100\0FirstBurstLength=abc\0InitialR2T=Maybe\0ErrorRecoveryLevel=3\0\
X-com.example.Foo=1\0TargetPortalGroupTag=1\0",
            SessionType::Normal,
        );
        assert_eq!(r, Ok(()));
        assert_eq!(
            resp,
            b"MaxBurstLength=Reject\0FirstBurstLength=Reject\0InitialR2T=Reject\0ErrorRecoveryLevel=Reject\0\
X-com.example.Foo=NotUnderstood\0TargetPortalGroupTag=Reject\0MaxRecvDataSegmentLength=8192\0"
                .to_vec()
        );
        // Nothing agreed; without a declaration the initiator takes RFC 7143's 8 KiB.
        let undeclared = Params {
            max_xmit_data_segment_length: DEFAULT_SEGMENT,
            ..Params::default()
        };
        assert_eq!(n.agreed, undeclared);
        let (_, _, r) = negotiate(b"MaxConnections=1\0MaxConnections=1\0", SessionType::Normal);
        assert_eq!(r, Err(TextError::Repeated));
        let mut long = b"InitiatorAlias=".to_vec();
        long.extend_from_slice(&[b'a'; 256]);
        long.push(0);
        let (resp, _, _) = negotiate(&long, SessionType::Normal);
        assert!(resp.starts_with(b"InitiatorAlias=Reject\0"));
    }

    #[test]
    fn discovery_sessions_and_later_connections() {
        let (resp, _, _) = negotiate(
            b"MaxBurstLength=512\0ImmediateData=No\0HeaderDigest=None\0",
            SessionType::Discovery,
        );
        assert_eq!(
            resp,
            b"MaxBurstLength=Irrelevant\0ImmediateData=Irrelevant\0HeaderDigest=None\0MaxRecvDataSegmentLength=8192\0"
                .to_vec()
        );
        let mut n = Negotiation::new(Params::default());
        let mut buf = [0u8; 128];
        let mut w = Writer::new(&mut buf);
        let mut d = Declared::default();
        assert_eq!(
            n.offer(
                b"DefaultTime2Wait",
                b"5",
                SessionType::Normal,
                false,
                &mut d,
                &mut w
            ),
            Ok(Answer::Irrelevant)
        );
        assert_eq!(
            n.offer(
                b"MaxRecvDataSegmentLength",
                b"4096",
                SessionType::Normal,
                false,
                &mut d,
                &mut w
            ),
            Ok(Answer::Value)
        );
        assert_eq!(n.agreed.max_xmit_data_segment_length, 4096);
    }

    #[test]
    fn declarations_are_recorded() {
        let mut n = Negotiation::new(Params::default());
        let mut buf = [0u8; 128];
        let mut w = Writer::new(&mut buf);
        let mut d = Declared::default();
        let text = b"InitiatorName=iqn.1994-05.com.redhat:x\0SessionType=Discovery\0AuthMethod=CHAP,None\0";
        for p in pairs(text) {
            let (k, v) = p.unwrap();
            assert_eq!(
                n.offer(k, v, SessionType::Normal, true, &mut d, &mut w),
                Ok(Answer::Recorded)
            );
        }
        assert!(w.is_empty());
        assert_eq!(d.initiator_name, Some(&b"iqn.1994-05.com.redhat:x"[..]));
        assert_eq!(d.session_type, Some(SessionType::Discovery));
        assert_eq!(d.auth_methods, Some(&b"CHAP,None"[..]));
    }

    #[test]
    fn first_burst_never_exceeds_max_burst() {
        let (_, n, _) = negotiate(b"MaxBurstLength=4096\0", SessionType::Normal);
        assert_eq!(
            (n.agreed.max_burst_length, n.agreed.first_burst_length),
            (4096, 4096)
        );
    }

    #[test]
    fn key_table_is_indexed_by_key() {
        for (i, k) in KEYS.iter().enumerate() {
            assert_eq!(k.0 as usize, i);
            assert_eq!(Key::named(k.1), Some(k.0));
        }
        assert!(KEYS.len() <= 32, "seen is a u32 bitmap");
    }
}
