//! CHAP for iSCSI (RFC 7143 12.1.3, RFC 1994), the target's side: algorithm choice (CHAP_A
//! with LIO 7.3's digests), the challenge, the check of the initiator's response and, for
//! mutual CHAP, the target's own response. Digests and random bytes come from the caller (the
//! kernel crypto API in the module), so this stays pure.

use crate::text::{TextError, Writer};

/// CHAP digest algorithms (CHAP_A values, as LIO numbers them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Md5 = 5,
    Sha1 = 6,
    Sha256 = 7,
    Sha3_256 = 8,
}

impl Alg {
    fn from_number(n: u32) -> Option<Alg> {
        match n {
            5 => Some(Alg::Md5),
            6 => Some(Alg::Sha1),
            7 => Some(Alg::Sha256),
            8 => Some(Alg::Sha3_256),
            _ => None,
        }
    }

    /// Digest length in bytes; also the challenge length (as LIO).
    pub fn digest_len(self) -> usize {
        match self {
            Alg::Md5 => 16,
            Alg::Sha1 => 20,
            Alg::Sha256 | Alg::Sha3_256 => 32,
        }
    }
}

/// Longest digest.
pub const MAX_DIGEST: usize = 32;
/// Longest binary value (challenge) the target accepts from an initiator.
pub const MAX_BINARY: usize = 1024;

/// What the target needs from its environment.
pub trait Crypto {
    /// Whether algorithm `alg` is available.
    fn has(&self, alg: Alg) -> bool;
    /// The digest of the concatenation of `parts` into `out` (`alg.digest_len()` bytes);
    /// false if it could not be computed (the exchange then fails).
    fn digest(&self, alg: Alg, parts: &[&[u8]], out: &mut [u8]) -> bool;
    /// Fills `out` with random bytes.
    fn random(&self, out: &mut [u8]);
}

/// Credentials of one direction: the user name and the secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Secret<'a> {
    pub user: &'a [u8],
    pub password: &'a [u8],
}

/// Decodes a CHAP binary value: `0x` hexadecimal or `0b` base64 (RFC 7143 6.1) into `out`.
pub fn decode_binary(v: &[u8], out: &mut [u8]) -> Option<usize> {
    match v {
        [b'0', b'x' | b'X', hex @ ..] => {
            // An odd number of digits has an implied leading zero.
            let n = hex.len().div_ceil(2);
            if hex.is_empty() || n > out.len() {
                return None;
            }
            let odd = hex.len() % 2;
            for (i, o) in out[..n].iter_mut().enumerate() {
                let hi = if i == 0 && odd == 1 {
                    0
                } else {
                    hex_digit(hex[2 * i - odd])?
                };
                *o = (hi << 4) | hex_digit(hex[2 * i + 1 - odd])?;
            }
            Some(n)
        }
        [b'0', b'b' | b'B', b64 @ ..] => base64(b64, out),
        _ => None,
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).map(|d| d as u8)
}

fn base64(s: &[u8], out: &mut [u8]) -> Option<usize> {
    if s.is_empty() || !s.len().is_multiple_of(4) {
        return None;
    }
    let pads = s.iter().rev().take_while(|&&c| c == b'=').count();
    if pads > 2 {
        return None;
    }
    let n = s.len() / 4 * 3 - pads;
    if n > out.len() {
        return None;
    }
    let mut at = 0;
    for (q, quad) in s.chunks(4).enumerate() {
        let last = q == s.len() / 4 - 1;
        let mut v: u32 = 0;
        for (i, &c) in quad.iter().enumerate() {
            let d = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' if last && i >= 4 - pads => 0,
                _ => return None,
            };
            v = (v << 6) | u32::from(d);
        }
        for k in 0..3 {
            if at < n {
                out[at] = (v >> (16 - 8 * k)) as u8;
                at += 1;
            }
        }
    }
    Some(n)
}

/// Writes `key=0x<hex of bytes>`.
fn hex_pair(out: &mut Writer<'_>, key: &[u8], bytes: &[u8]) -> Result<(), TextError> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 2 * MAX_DIGEST];
    for (i, b) in bytes.iter().enumerate() {
        hex[2 * i] = DIGITS[usize::from(b >> 4)];
        hex[2 * i + 1] = DIGITS[usize::from(b & 15)];
    }
    out.pair(key, &[b"0x", &hex[..2 * bytes.len()]])
}

/// Why CHAP failed: the login ends with AUTHENTICATION FAILURE (0201h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChapError {
    /// No algorithm of CHAP_A is available.
    NoAlgorithm,
    /// A key missing, repeated, out of order or malformed.
    Protocol,
    /// CHAP_N is not the configured user, or CHAP_R is not the expected response.
    Mismatch,
    /// The initiator asked for mutual CHAP and the target has no mutual credentials, or the
    /// initiator's challenge is the target's own (a reflection attack).
    Mutual,
    /// The response would not fit.
    Full,
}

impl From<TextError> for ChapError {
    fn from(_: TextError) -> Self {
        ChapError::Full
    }
}

/// The keys of one CHAP step, gathered from a login's text segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keys<'a> {
    pub a: Option<&'a [u8]>,
    pub i: Option<&'a [u8]>,
    pub c: Option<&'a [u8]>,
    pub n: Option<&'a [u8]>,
    pub r: Option<&'a [u8]>,
}

impl<'a> Keys<'a> {
    /// Records `key=value` if it is a CHAP key; a repeated key is a protocol error.
    pub fn take(&mut self, key: &[u8], value: &'a [u8]) -> Result<bool, ChapError> {
        let slot = match key {
            b"CHAP_A" => &mut self.a,
            b"CHAP_I" => &mut self.i,
            b"CHAP_C" => &mut self.c,
            b"CHAP_N" => &mut self.n,
            b"CHAP_R" => &mut self.r,
            _ => return Ok(false),
        };
        if slot.replace(value).is_some() {
            return Err(ChapError::Protocol);
        }
        Ok(true)
    }

    fn any(&self) -> bool {
        self.a.is_some()
            || self.i.is_some()
            || self.c.is_some()
            || self.n.is_some()
            || self.r.is_some()
    }
}

/// Where the exchange stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for CHAP_A.
    Start,
    /// Challenge sent; waiting for CHAP_N and CHAP_R.
    Challenged {
        alg: Alg,
        id: u8,
        challenge: [u8; MAX_DIGEST],
    },
    /// The initiator is authenticated (and, if it asked, the target too).
    Done,
}

/// The target's side of one CHAP exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chap {
    state: State,
}

impl Default for Chap {
    fn default() -> Self {
        Self::new()
    }
}

impl Chap {
    pub fn new() -> Self {
        Chap {
            state: State::Start,
        }
    }

    /// The initiator is authenticated.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes one login PDU's CHAP keys and writes the target's keys to `out`. `secret` is what
    /// the initiator must prove; `mutual`, what the target proves if asked.
    pub fn step<C: Crypto>(
        &mut self,
        keys: &Keys<'_>,
        crypto: &C,
        secret: Secret<'_>,
        mutual: Option<Secret<'_>>,
        out: &mut Writer<'_>,
    ) -> Result<(), ChapError> {
        match self.state {
            State::Start => {
                let list = keys.a.ok_or(ChapError::Protocol)?;
                if keys.i.is_some() || keys.c.is_some() || keys.n.is_some() || keys.r.is_some() {
                    return Err(ChapError::Protocol);
                }
                let alg = list
                    .split(|&c| c == b',')
                    .filter_map(|v| crate::text::number(v).and_then(Alg::from_number))
                    .find(|a| crypto.has(*a))
                    .ok_or(ChapError::NoAlgorithm)?;
                let mut challenge = [0u8; MAX_DIGEST];
                crypto.random(&mut challenge[..alg.digest_len()]);
                let mut id = [0u8; 1];
                crypto.random(&mut id);
                let mut digits = [0u8; 10];
                out.number(b"CHAP_A", alg as u32)?;
                out.pair(
                    b"CHAP_I",
                    &[crate::text::decimal(u32::from(id[0]), &mut digits)],
                )?;
                hex_pair(out, b"CHAP_C", &challenge[..alg.digest_len()])?;
                self.state = State::Challenged {
                    alg,
                    id: id[0],
                    challenge,
                };
                Ok(())
            }
            State::Challenged { alg, id, challenge } => {
                if keys.a.is_some() {
                    return Err(ChapError::Protocol);
                }
                let (n, r) = keys.n.zip(keys.r).ok_or(ChapError::Protocol)?;
                let mut got = [0u8; MAX_DIGEST];
                let len = decode_binary(r, &mut got).ok_or(ChapError::Protocol)?;
                if n != secret.user {
                    return Err(ChapError::Mismatch);
                }
                let mut want = [0u8; MAX_DIGEST];
                let computed = crypto.digest(
                    alg,
                    &[&[id], secret.password, &challenge[..alg.digest_len()]],
                    &mut want[..alg.digest_len()],
                );
                if !computed || len != alg.digest_len() || !same(&got[..len], &want[..len]) {
                    return Err(ChapError::Mismatch);
                }
                // Mutual CHAP: the initiator's identifier and challenge come with its response.
                match (keys.i, keys.c) {
                    (None, None) => {}
                    (Some(i), Some(c)) => {
                        let m = mutual.ok_or(ChapError::Mutual)?;
                        let i = crate::text::number(i)
                            .filter(|&i| i < 256)
                            .ok_or(ChapError::Protocol)?;
                        let mut theirs = [0u8; MAX_BINARY];
                        let clen = decode_binary(c, &mut theirs).ok_or(ChapError::Protocol)?;
                        if clen == 0 || theirs[..clen] == challenge[..alg.digest_len()] {
                            return Err(ChapError::Mutual);
                        }
                        let mut resp = [0u8; MAX_DIGEST];
                        if !crypto.digest(
                            alg,
                            &[&[i as u8], m.password, &theirs[..clen]],
                            &mut resp[..alg.digest_len()],
                        ) {
                            return Err(ChapError::Mutual);
                        }
                        out.pair(b"CHAP_N", &[m.user])?;
                        hex_pair(out, b"CHAP_R", &resp[..alg.digest_len()])?;
                    }
                    _ => return Err(ChapError::Protocol),
                }
                self.state = State::Done;
                Ok(())
            }
            State::Done if keys.any() => Err(ChapError::Protocol),
            State::Done => Ok(()),
        }
    }
}

/// Compares without an early exit, so the time taken does not tell where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::text::pairs;

    /// A stand-in digest (not cryptographic): position-weighted sums, so order and every byte
    /// matter. Random bytes count up.
    pub(crate) struct Fake(pub core::cell::Cell<u8>, pub &'static [Alg]);

    impl Crypto for Fake {
        fn has(&self, alg: Alg) -> bool {
            self.1.contains(&alg)
        }
        fn digest(&self, alg: Alg, parts: &[&[u8]], out: &mut [u8]) -> bool {
            assert_eq!(out.len(), alg.digest_len());
            let mut acc = alg as u32;
            for (k, b) in parts.iter().flat_map(|p| p.iter()).enumerate() {
                acc = acc.wrapping_mul(31).wrapping_add(u32::from(*b) ^ k as u32);
            }
            for (i, o) in out.iter_mut().enumerate() {
                *o = (acc >> (i % 4 * 8)) as u8 ^ i as u8;
            }
            true
        }
        fn random(&self, out: &mut [u8]) {
            for o in out {
                *o = self.0.get();
                self.0.set(self.0.get().wrapping_add(1));
            }
        }
    }

    pub(crate) const USER: Secret<'static> = Secret {
        user: b"alice",
        password: b"secret12secret",
    };
    pub(crate) const TARGET: Secret<'static> = Secret {
        user: b"target",
        password: b"mutualsecret",
    };

    fn keys(text: &[u8]) -> Keys<'_> {
        let mut k = Keys::default();
        for p in pairs(text) {
            let (key, v) = p.unwrap();
            assert!(k.take(key, v).unwrap());
        }
        k
    }

    fn value<'a>(text: &'a [u8], key: &[u8]) -> &'a [u8] {
        pairs(text)
            .map(|p| p.unwrap())
            .find(|p| p.0 == key)
            .unwrap()
            .1
    }

    /// What an initiator answers to the target's challenge in `sent`.
    pub(crate) fn respond(crypto: &Fake, sent: &[u8], secret: Secret<'_>) -> Vec<u8> {
        let alg = Alg::from_number(crate::text::number(value(sent, b"CHAP_A")).unwrap()).unwrap();
        let id = crate::text::number(value(sent, b"CHAP_I")).unwrap() as u8;
        let mut c = [0u8; MAX_BINARY];
        let n = decode_binary(value(sent, b"CHAP_C"), &mut c).unwrap();
        let mut r = vec![0u8; alg.digest_len()];
        crypto.digest(alg, &[&[id], secret.password, &c[..n]], &mut r);
        let mut s = b"CHAP_N=".to_vec();
        s.extend_from_slice(secret.user);
        s.extend_from_slice(b"\0CHAP_R=0x");
        for b in r {
            s.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        s.push(0);
        s
    }

    fn run(
        offer: &[u8],
        answer: impl Fn(&[u8]) -> Vec<u8>,
        mutual: Option<Secret<'_>>,
    ) -> Result<Vec<u8>, ChapError> {
        let crypto = Fake(core::cell::Cell::new(7), &[Alg::Md5, Alg::Sha256]);
        let mut chap = Chap::new();
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        chap.step(&keys(offer), &crypto, USER, mutual, &mut w)?;
        let sent = w.bytes().to_vec();
        let reply = answer(&sent);
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        chap.step(&keys(&reply), &crypto, USER, mutual, &mut w)?;
        assert!(chap.done());
        Ok(w.bytes().to_vec())
    }

    #[test]
    fn binary_values() {
        let mut out = [0u8; 8];
        assert_eq!(decode_binary(b"0x0aff", &mut out), Some(2));
        assert_eq!(&out[..2], &[0x0a, 0xff]);
        assert_eq!(decode_binary(b"0xABC", &mut out), Some(2));
        assert_eq!(&out[..2], &[0x0a, 0xbc]);
        assert_eq!(decode_binary(b"0bAQID", &mut out), Some(3));
        assert_eq!(&out[..3], &[1, 2, 3]);
        assert_eq!(decode_binary(b"0bAQI=", &mut out), Some(2));
        assert_eq!(decode_binary(b"0bAQ==", &mut out), Some(1));
        for bad in [
            &b"0x"[..],
            b"0xg0",
            b"12",
            b"0bAQ=",
            b"0bA===",
            b"0bA=QI",
            b"0x112233445566778899",
        ] {
            assert_eq!(decode_binary(bad, &mut out), None, "{bad:?}");
        }
    }

    #[test]
    fn one_way() {
        let crypto = Fake(core::cell::Cell::new(7), &[Alg::Md5, Alg::Sha256]);
        assert_eq!(
            run(b"CHAP_A=7,5\0", |s| respond(&crypto_for(s), s, USER), None),
            Ok(vec![])
        );
        // The initiator's order picks the algorithm; unknown and unavailable ones are skipped.
        let mut buf = [0u8; 256];
        let mut w = Writer::new(&mut buf);
        Chap::new()
            .step(&keys(b"CHAP_A=9,6,5,7\0"), &crypto, USER, None, &mut w)
            .unwrap();
        assert!(w
            .bytes()
            .starts_with(b"CHAP_A=5\0CHAP_I=23\0CHAP_C=0x0708090a"));
        assert_eq!(value(w.bytes(), b"CHAP_C").len(), 2 + 32);
    }

    /// The Fake's digest does not depend on its counter, so any instance answers.
    fn crypto_for(_: &[u8]) -> Fake {
        Fake(core::cell::Cell::new(0), &[])
    }

    #[test]
    fn failures() {
        assert_eq!(
            run(b"CHAP_A=6\0", |_| vec![], None),
            Err(ChapError::NoAlgorithm)
        );
        assert_eq!(
            run(b"CHAP_A=5\0CHAP_N=x\0", |_| vec![], None),
            Err(ChapError::Protocol)
        );
        let wrong = Secret {
            user: USER.user,
            password: b"wrong-secret",
        };
        assert_eq!(
            run(b"CHAP_A=5\0", |s| respond(&crypto_for(s), s, wrong), None),
            Err(ChapError::Mismatch)
        );
        let other = Secret {
            user: b"bob",
            password: USER.password,
        };
        assert_eq!(
            run(b"CHAP_A=5\0", |s| respond(&crypto_for(s), s, other), None),
            Err(ChapError::Mismatch)
        );
        assert_eq!(
            run(b"CHAP_A=5\0", |_| b"CHAP_N=alice\0".to_vec(), None),
            Err(ChapError::Protocol)
        );
        assert_eq!(
            run(
                b"CHAP_A=5\0",
                |_| b"CHAP_N=alice\0CHAP_R=0xzz\0".to_vec(),
                None
            ),
            Err(ChapError::Protocol)
        );
        // A truncated response.
        assert_eq!(
            run(
                b"CHAP_A=5\0",
                |_| b"CHAP_N=alice\0CHAP_R=0x00\0".to_vec(),
                None
            ),
            Err(ChapError::Mismatch)
        );
        let mut k = Keys::default();
        k.take(b"CHAP_A", b"5").unwrap();
        assert_eq!(k.take(b"CHAP_A", b"5"), Err(ChapError::Protocol));
        assert_eq!(k.take(b"CHAP_X", b"5"), Ok(false));
    }

    /// A digest that cannot be computed never authenticates anyone.
    #[test]
    fn failed_digest_fails() {
        struct Broken;
        impl Crypto for Broken {
            fn has(&self, _: Alg) -> bool {
                true
            }
            fn digest(&self, _: Alg, _: &[&[u8]], out: &mut [u8]) -> bool {
                out.fill(0);
                false
            }
            fn random(&self, out: &mut [u8]) {
                out.fill(0);
            }
        }
        let mut chap = Chap::new();
        let mut buf = [0u8; 256];
        let mut w = Writer::new(&mut buf);
        chap.step(&keys(b"CHAP_A=5\0"), &Broken, USER, None, &mut w)
            .unwrap();
        // All zeroes: what a broken digest would have left in its buffer.
        let zeroes = b"CHAP_N=alice\0CHAP_R=0x00000000000000000000000000000000\0";
        let mut w = Writer::new(&mut buf);
        assert_eq!(
            chap.step(&keys(zeroes), &Broken, USER, None, &mut w),
            Err(ChapError::Mismatch)
        );
    }

    #[test]
    fn mutual() {
        let with_challenge = |s: &[u8], c: &[u8]| {
            let mut r = respond(&crypto_for(s), s, USER);
            r.extend_from_slice(b"CHAP_I=3\0CHAP_C=");
            r.extend_from_slice(c);
            r.push(0);
            r
        };
        let sent = run(
            b"CHAP_A=5\0",
            |s| with_challenge(s, b"0x0102030405"),
            Some(TARGET),
        )
        .unwrap();
        let mut want = [0u8; 16];
        crypto_for(b"").digest(
            Alg::Md5,
            &[&[3], TARGET.password, &[1, 2, 3, 4, 5]],
            &mut want,
        );
        let mut r = [0u8; 16];
        assert_eq!(value(&sent, b"CHAP_N"), b"target");
        assert_eq!(decode_binary(value(&sent, b"CHAP_R"), &mut r), Some(16));
        assert_eq!(r, want);
        // No mutual credentials; a reflected challenge; an identifier out of range.
        assert_eq!(
            run(b"CHAP_A=5\0", |s| with_challenge(s, b"0x01"), None),
            Err(ChapError::Mutual)
        );
        assert_eq!(
            run(
                b"CHAP_A=5\0",
                |s| {
                    let c = value(s, b"CHAP_C").to_vec();
                    with_challenge(s, &c)
                },
                Some(TARGET)
            ),
            Err(ChapError::Mutual)
        );
        assert_eq!(
            run(
                b"CHAP_A=5\0",
                |s| {
                    let mut r = respond(&crypto_for(s), s, USER);
                    r.extend_from_slice(b"CHAP_I=256\0CHAP_C=0x01\0");
                    r
                },
                Some(TARGET)
            ),
            Err(ChapError::Protocol)
        );
    }
}
