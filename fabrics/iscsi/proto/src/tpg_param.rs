//! A TPG's `param/` (LIO's `lio_target_tpg_param_attrs`): the values a normal login to the
//! TPG offers, kept as the strings written, with LIO's names, initial values and checks
//! (iscsi_target_parameters.c). [`TpgParams::offer`] turns them into what the target
//! negotiates, bounded by what it implements.

use crate::text::{number, Digest, Params};
use crate::xfer::MAX_OUTSTANDING_R2T;

/// Longest value (LIO's `VALUE_MAXLEN`).
pub const VALUE_MAX: usize = 255;

/// How a key's value is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A list of KRB5, SPKM1, SPKM2, SRP, CHAP, None.
    Auth,
    /// A list of CRC32C, None.
    Digest,
    /// Yes or No.
    Bool,
    /// A number in `lo..=hi`.
    Number(u32, u32),
    /// Any text without a comma.
    Text,
}

/// The keys in LIO's order, with their initial values.
pub const KEYS: [(&[u8], &[u8]); 21] = [
    (b"AuthMethod", b"CHAP"),
    (b"HeaderDigest", b"CRC32C,None"),
    (b"DataDigest", b"CRC32C,None"),
    (b"MaxConnections", b"1"),
    (b"TargetAlias", b"LIO Target"),
    (b"InitialR2T", b"Yes"),
    (b"ImmediateData", b"Yes"),
    (b"MaxRecvDataSegmentLength", b"8192"),
    (b"MaxXmitDataSegmentLength", b"262144"),
    (b"MaxBurstLength", b"262144"),
    (b"FirstBurstLength", b"65536"),
    (b"DefaultTime2Wait", b"2"),
    (b"DefaultTime2Retain", b"20"),
    (b"MaxOutstandingR2T", b"1"),
    (b"DataPDUInOrder", b"Yes"),
    (b"DataSequenceInOrder", b"Yes"),
    (b"ErrorRecoveryLevel", b"0"),
    (b"IFMarker", b"No"),
    (b"OFMarker", b"No"),
    (b"IFMarkInt", b"Reject"),
    (b"OFMarkInt", b"Reject"),
];

const KINDS: [Kind; 21] = [
    Kind::Auth,
    Kind::Digest,
    Kind::Digest,
    Kind::Number(1, 65535),
    Kind::Text,
    Kind::Bool,
    Kind::Bool,
    Kind::Number(512, 16777215),
    Kind::Number(512, 16777215),
    Kind::Number(512, 16777215),
    Kind::Number(512, 16777215),
    Kind::Number(0, 3600),
    Kind::Number(0, 3600),
    Kind::Number(1, 65535),
    Kind::Bool,
    Kind::Bool,
    Kind::Number(0, 2),
    Kind::Bool,
    Kind::Bool,
    Kind::Text,
    Kind::Text,
];

const TARGET_ALIAS: usize = 4;
const MARK_INT: usize = 19;

/// Why a value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamError {
    UnknownKey,
    BadValue,
}

/// Text held by value, at most `N` bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Text<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> Text<N> {
    const EMPTY: Self = Text {
        bytes: [0; N],
        len: 0,
    };

    fn new(v: &[u8]) -> Option<Self> {
        if v.len() > N {
            return None;
        }
        let mut t = Self::EMPTY;
        t.bytes[..v.len()].copy_from_slice(v);
        t.len = v.len() as u8;
        Some(t)
    }

    fn get(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The authentication methods LIO's AuthMethod takes, by their names.
const METHODS: [&[u8]; 6] = [b"KRB5", b"SPKM1", b"SPKM2", b"SRP", b"CHAP", b"None"];
const METHOD_NONE: u8 = 5;
const METHOD_CHAP: u8 = 4;

/// A list of up to six indexes into a table of names, in the order written (AuthMethod,
/// the digests). A name may repeat, as LIO keeps what was written.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Choices {
    items: [u8; 6],
    len: u8,
}

impl Choices {
    const EMPTY: Choices = Choices {
        items: [0; 6],
        len: 0,
    };

    fn parse(v: &[u8], names: &[&[u8]]) -> Option<Choices> {
        let mut c = Choices::EMPTY;
        for item in list(v) {
            let i = names.iter().position(|n| *n == item)?;
            if usize::from(c.len) == c.items.len() {
                return None;
            }
            c.items[usize::from(c.len)] = i as u8;
            c.len += 1;
        }
        Some(c)
    }

    fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        self.items[..usize::from(self.len)].iter().copied()
    }

    fn contains(&self, i: u8) -> bool {
        self.iter().any(|x| x == i)
    }

    fn push(&mut self, i: u8) {
        if usize::from(self.len) < self.items.len() {
            self.items[usize::from(self.len)] = i;
            self.len += 1;
        }
    }
}

const DIGESTS: [&[u8]; 2] = [b"CRC32C", b"None"];

/// A TPG's `param/` values. Numbers are shown in decimal whatever base they were written in.
#[derive(Clone, Copy)]
pub struct TpgParams {
    auth_method: Choices,
    digests: [Choices; 2],
    target_alias: Text<VALUE_MAX>,
    /// IFMarkInt, OFMarkInt: kept, never used (no markers).
    mark_int: [Text<VALUE_MAX>; 2],
    /// The numbers and Yes/No values, by index into [`KEYS`] (unused slots stay 0).
    values: [u32; 21],
}

impl Default for TpgParams {
    fn default() -> Self {
        let mut p = TpgParams {
            auth_method: Choices::EMPTY,
            digests: [Choices::EMPTY; 2],
            target_alias: Text::EMPTY,
            mark_int: [Text::EMPTY; 2],
            values: [0; 21],
        };
        for (k, v) in KEYS {
            // The initial values pass the checks.
            let _ = p.set(k, v);
        }
        p
    }
}

fn index(key: &[u8]) -> Result<usize, ParamError> {
    KEYS.iter()
        .position(|k| k.0 == key)
        .ok_or(ParamError::UnknownKey)
}

fn list(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&c| c == b',')
}

/// Writes `parts` one after another into `out`; how many bytes fit.
fn write(out: &mut [u8], parts: &[&[u8]]) -> usize {
    let mut n = 0;
    for p in parts {
        let k = p.len().min(out.len() - n);
        out[n..n + k].copy_from_slice(&p[..k]);
        n += k;
    }
    n
}

fn write_list(out: &mut [u8], c: &Choices, names: &[&[u8]]) -> usize {
    let mut n = 0;
    for (j, i) in c.iter().enumerate() {
        let sep: &[u8] = if j > 0 { b"," } else { b"" };
        n += write(&mut out[n..], &[sep, names[usize::from(i)]]);
    }
    n
}

impl TpgParams {
    /// Writes the value of `key` into `out` (without a newline); its length.
    pub fn show(&self, key: &[u8], out: &mut [u8]) -> Result<usize, ParamError> {
        let i = index(key)?;
        Ok(match (i, KINDS[i]) {
            (_, Kind::Auth) => write_list(out, &self.auth_method, &METHODS),
            (_, Kind::Digest) => write_list(out, &self.digests[i - 1], &DIGESTS),
            (TARGET_ALIAS, _) => write(out, &[self.target_alias.get()]),
            (_, Kind::Text) => write(out, &[self.mark_int[i - MARK_INT].get()]),
            (_, Kind::Bool) => write(out, &[if self.values[i] != 0 { b"Yes" } else { b"No" }]),
            (_, Kind::Number(..)) => {
                let mut digits = [0u8; 10];
                write(out, &[crate::text::decimal(self.values[i], &mut digits)])
            }
        })
    }

    /// Sets `key` to `value` (without its newline) if LIO's checks allow it.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), ParamError> {
        let i = index(key)?;
        let bad = ParamError::BadValue;
        match (i, KINDS[i]) {
            (_, Kind::Auth) => self.auth_method = Choices::parse(value, &METHODS).ok_or(bad)?,
            (_, Kind::Digest) => {
                self.digests[i - 1] = Choices::parse(value, &DIGESTS).ok_or(bad)?
            }
            // A NUL would end the value on the wire.
            (_, Kind::Text) if value.contains(&b',') || value.contains(&0) => return Err(bad),
            (TARGET_ALIAS, _) => self.target_alias = Text::new(value).ok_or(bad)?,
            (_, Kind::Text) => self.mark_int[i - MARK_INT] = Text::new(value).ok_or(bad)?,
            (_, Kind::Bool) => {
                self.values[i] = match value {
                    b"Yes" => 1,
                    b"No" => 0,
                    _ => return Err(bad),
                }
            }
            (_, Kind::Number(lo, hi)) => {
                self.values[i] = number(value).filter(|n| (lo..=hi).contains(n)).ok_or(bad)?
            }
        }
        Ok(())
    }

    /// The TPG's `attrib/authentication` changed: as LIO, enforcing it takes None out of
    /// AuthMethod (CHAP if nothing is left), and lifting it adds None.
    pub fn authentication(&mut self, on: bool) {
        let cur = self.auth_method;
        if on {
            self.auth_method.len = 0;
            for m in cur.iter().filter(|&m| m != METHOD_NONE) {
                self.auth_method.push(m);
            }
            if self.auth_method.len == 0 {
                self.auth_method.push(METHOD_CHAP);
            }
        } else if !cur.contains(METHOD_NONE) {
            self.auth_method.push(METHOD_NONE);
        }
    }

    /// TargetAlias (empty: none).
    pub fn target_alias(&self) -> &[u8] {
        self.target_alias.get()
    }

    /// What a normal login offers: the values, bounded by what the target implements (one
    /// connection per session, ErrorRecoveryLevel 0, data in order, at most
    /// [`MAX_OUTSTANDING_R2T`] R2Ts per command).
    pub fn offer(&self) -> Params {
        let v = &self.values;
        let digests = |c: &Choices| {
            let mut out = [None, None];
            let mut n = 0;
            for d in c.iter() {
                let d = if d == 0 { Digest::Crc32c } else { Digest::None };
                if n < 2 && !out.contains(&Some(d)) {
                    out[n] = Some(d);
                    n += 1;
                }
            }
            out
        };
        Params {
            header_digest: digests(&self.digests[0]),
            data_digest: digests(&self.digests[1]),
            max_connections: 1,
            initial_r2t: v[5] != 0,
            immediate_data: v[6] != 0,
            max_recv_data_segment_length: v[7],
            max_xmit_data_segment_length: v[8],
            max_burst_length: v[9],
            first_burst_length: v[10],
            default_time2wait: v[11],
            default_time2retain: v[12],
            max_outstanding_r2t: v[13].clamp(1, MAX_OUTSTANDING_R2T as u32),
            data_pdu_in_order: true,
            data_sequence_in_order: true,
            error_recovery_level: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(p: &TpgParams, key: &[u8]) -> Result<Vec<u8>, ParamError> {
        let mut out = [0u8; 300];
        let n = p.show(key, &mut out)?;
        Ok(out[..n].to_vec())
    }

    #[test]
    fn defaults_are_lios() {
        let p = TpgParams::default();
        assert_eq!(get(&p, b"AuthMethod"), Ok(b"CHAP".to_vec()));
        assert_eq!(get(&p, b"IFMarkInt"), Ok(b"Reject".to_vec()));
        assert_eq!(get(&p, b"TargetAlias"), Ok(b"LIO Target".to_vec()));
        assert_eq!(get(&p, b"Nope"), Err(ParamError::UnknownKey));
        assert_eq!(p.offer(), Params::default());
    }

    #[test]
    fn checks_as_lio() {
        let mut p = TpgParams::default();
        for (k, v) in [
            (&b"HeaderDigest"[..], &b"None"[..]),
            (b"DataDigest", b"None,CRC32C"),
            (b"AuthMethod", b"SRP,CHAP,None"),
            (b"MaxRecvDataSegmentLength", b"65536"),
            (b"MaxBurstLength", b"16777215"),
            (b"DefaultTime2Wait", b"0"),
            (b"ErrorRecoveryLevel", b"2"),
            (b"InitialR2T", b"No"),
            (b"TargetAlias", b""),
            (b"OFMarkInt", b"2048~65535"),
        ] {
            assert_eq!(p.set(k, v), Ok(()), "{k:?}={v:?}");
            assert_eq!(get(&p, k), Ok(v.to_vec()));
        }
        for (k, v) in [
            (&b"HeaderDigest"[..], &b"CRC32"[..]),
            (b"HeaderDigest", b""),
            (b"AuthMethod", b"CHAP,,None"),
            (b"MaxRecvDataSegmentLength", b"511"),
            (b"MaxRecvDataSegmentLength", b"16777216"),
            (b"MaxRecvDataSegmentLength", b"8192x"),
            (b"MaxConnections", b"0"),
            (b"ErrorRecoveryLevel", b"3"),
            (b"InitialR2T", b"yes"),
            (b"TargetAlias", b"a,b"),
            (b"TargetAlias", b"a\0b"),
            (b"DefaultTime2Retain", b"-1"),
        ] {
            assert_eq!(p.set(k, v), Err(ParamError::BadValue), "{k:?}={v:?}");
        }
        assert!(p.set(b"TargetAlias", &[b'a'; 256]).is_err());
        assert_eq!(p.set(b"FirstBurstLength", b"0x10000"), Ok(()));
        assert_eq!(get(&p, b"FirstBurstLength"), Ok(b"65536".to_vec()));
        assert_eq!(get(&p, b"MaxConnections"), Ok(b"1".to_vec()));
    }

    #[test]
    fn offer_bounds_to_what_is_implemented() {
        let mut p = TpgParams::default();
        for (k, v) in [
            (&b"HeaderDigest"[..], &b"None"[..]),
            (b"ImmediateData", b"No"),
            (b"MaxRecvDataSegmentLength", b"65536"),
            (b"MaxOutstandingR2T", b"64"),
            (b"MaxConnections", b"8"),
            (b"ErrorRecoveryLevel", b"2"),
            (b"DataPDUInOrder", b"No"),
        ] {
            p.set(k, v).unwrap();
        }
        let o = p.offer();
        assert_eq!(o.header_digest, [Some(Digest::None), None]);
        assert_eq!(o.data_digest, Params::default().data_digest);
        assert!(!o.immediate_data);
        assert_eq!(o.max_recv_data_segment_length, 65536);
        assert_eq!(o.max_outstanding_r2t, MAX_OUTSTANDING_R2T as u32);
        assert_eq!(o.max_connections, 1);
        assert_eq!(o.error_recovery_level, 0);
        assert!(o.data_pdu_in_order);
    }

    #[test]
    fn authentication_edits_auth_method_as_lio() {
        let mut p = TpgParams::default();
        p.authentication(false);
        assert_eq!(get(&p, b"AuthMethod"), Ok(b"CHAP,None".to_vec()));
        p.authentication(false);
        assert_eq!(get(&p, b"AuthMethod"), Ok(b"CHAP,None".to_vec()));
        p.authentication(true);
        assert_eq!(get(&p, b"AuthMethod"), Ok(b"CHAP".to_vec()));
        p.set(b"AuthMethod", b"None").unwrap();
        p.authentication(true);
        assert_eq!(get(&p, b"AuthMethod"), Ok(b"CHAP".to_vec()));
        p.set(b"AuthMethod", b"None,SRP").unwrap();
        p.authentication(true);
        assert_eq!(get(&p, b"AuthMethod"), Ok(b"SRP".to_vec()));
    }
}
