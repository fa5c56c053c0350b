//! Network portal names as LIO's configfs spells them (`np/<ipv4>:<port>`,
//! `np/[<ipv6>]:<port>`) and as SendTargets reports them (`TargetAddress=<addr>:<port>,<tpgt>`).

/// An IP address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ip {
    /// IPv4.
    V4([u8; 4]),
    /// IPv6.
    V6([u8; 16]),
}

impl Ip {
    /// The wildcard address (`0.0.0.0`, `[::]`): a portal on every address.
    pub fn is_any(&self) -> bool {
        match self {
            Ip::V4(a) => *a == [0; 4],
            Ip::V6(a) => *a == [0; 16],
        }
    }
}

/// Parses a portal directory name.
pub fn parse(name: &[u8]) -> Option<(Ip, u16)> {
    let (ip, port) = if let Some(rest) = name.strip_prefix(b"[") {
        let close = rest.iter().position(|&c| c == b']')?;
        let port = rest[close + 1..].strip_prefix(b":")?;
        (Ip::V6(ipv6(&rest[..close])?), port)
    } else {
        let colon = name.iter().rposition(|&c| c == b':')?;
        (Ip::V4(ipv4(&name[..colon])?), &name[colon + 1..])
    };
    Some((ip, decimal(port, 65535)? as u16))
}

fn decimal(s: &[u8], max: u32) -> Option<u32> {
    if s.is_empty() || s.len() > 5 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = s.iter().fold(0u32, |n, &c| n * 10 + u32::from(c - b'0'));
    (n <= max).then_some(n)
}

fn ipv4(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = s.split(|&c| c == b'.');
    for o in out.iter_mut() {
        let p = parts.next()?;
        if p.len() > 3 {
            return None;
        }
        *o = decimal(p, 255)? as u8;
    }
    parts.next().is_none().then_some(out)
}

fn ipv6(s: &[u8]) -> Option<[u8; 16]> {
    // An IPv4 address in the last 32 bits (`::ffff:127.0.0.1`) counts as two groups.
    if s.contains(&b'.') {
        let colon = s.iter().rposition(|&c| c == b':')?;
        let v4 = ipv4(&s[colon + 1..])?;
        let mut hex = [0u8; 64];
        let head = &s[..=colon];
        let n = head.len();
        if n + 9 > hex.len() {
            return None;
        }
        hex[..n].copy_from_slice(head);
        let groups = [
            u16::from_be_bytes([v4[0], v4[1]]),
            u16::from_be_bytes([v4[2], v4[3]]),
        ];
        let mut w = Cursor {
            out: &mut hex,
            at: n,
        };
        w.num(u32::from(groups[0]), 16)?;
        w.put(b":")?;
        w.num(u32::from(groups[1]), 16)?;
        let end = w.at;
        return ipv6(&hex[..end]);
    }
    // Groups before and after a `::`.
    let (head, tail) = match s.windows(2).position(|w| w == b"::") {
        Some(i) => (&s[..i], Some(&s[i + 2..])),
        None => (s, None),
    };
    let mut groups = [0u16; 8];
    let mut n = 0;
    let parse_into = |part: &[u8], groups: &mut [u16; 8], at: &mut usize| -> Option<()> {
        if part.is_empty() {
            return Some(());
        }
        for g in part.split(|&c| c == b':') {
            if g.is_empty() || g.len() > 4 || *at >= 8 {
                return None;
            }
            groups[*at] = g.iter().try_fold(0u16, |v, &c| {
                Some(v << 4 | char::from(c).to_digit(16)? as u16)
            })?;
            *at += 1;
        }
        Some(())
    };
    parse_into(head, &mut groups, &mut n)?;
    if let Some(tail) = tail {
        let mut t = [0u16; 8];
        let mut m = 0;
        parse_into(tail, &mut t, &mut m)?;
        if n + m > 7 {
            return None;
        }
        groups[8 - m..].copy_from_slice(&t[..m]);
    } else if n != 8 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, g) in groups.iter().enumerate() {
        out[2 * i..2 * i + 2].copy_from_slice(&g.to_be_bytes());
    }
    Some(out)
}

/// Writes `ip:port` (IPv6 in brackets, compressed as RFC 5952 and the kernel's `%pI6c` write
/// it, as LIO's SendTargets does) into `out`; the length written, or None if `out` is too
/// short.
pub fn format(ip: &Ip, port: u16, out: &mut [u8]) -> Option<usize> {
    let mut w = Cursor { out, at: 0 };
    match ip {
        Ip::V4(a) => {
            for (i, b) in a.iter().enumerate() {
                if i > 0 {
                    w.put(b".")?;
                }
                w.num(u32::from(*b), 10)?;
            }
        }
        Ip::V6(a) => {
            w.put(b"[")?;
            let g = |i: usize| u16::from_be_bytes([a[2 * i], a[2 * i + 1]]);
            if a[..10] == [0; 10] && g(5) == 0xffff {
                // IPv4-mapped, as the kernel's %pI6c prints it: ::ffff:a.b.c.d
                w.put(b"::ffff:")?;
                for (i, b) in a[12..].iter().enumerate() {
                    if i > 0 {
                        w.put(b".")?;
                    }
                    w.num(u32::from(*b), 10)?;
                }
            } else {
                // RFC 5952: the longest run of two or more zero groups (the first of equal
                // ones) becomes "::".
                let (mut best, mut run) = ((0, 0), (0, 0));
                for i in 0..8 {
                    if g(i) == 0 {
                        run = if run.1 == 0 {
                            (i, 1)
                        } else {
                            (run.0, run.1 + 1)
                        };
                        if run.1 > best.1 {
                            best = run;
                        }
                    } else {
                        run = (0, 0);
                    }
                }
                let mut i = 0;
                while i < 8 {
                    if best.1 >= 2 && i == best.0 {
                        w.put(b"::")?;
                        i += best.1;
                        continue;
                    }
                    if i > 0 && !(best.1 >= 2 && i == best.0 + best.1) {
                        w.put(b":")?;
                    }
                    w.num(u32::from(g(i)), 16)?;
                    i += 1;
                }
            }
            w.put(b"]")?;
        }
    }
    w.put(b":")?;
    w.num(u32::from(port), 10)?;
    Some(w.at)
}

struct Cursor<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Cursor<'_> {
    fn put(&mut self, s: &[u8]) -> Option<()> {
        let end = self
            .at
            .checked_add(s.len())
            .filter(|&e| e <= self.out.len())?;
        self.out[self.at..end].copy_from_slice(s);
        self.at = end;
        Some(())
    }

    fn num(&mut self, mut n: u32, radix: u32) -> Option<()> {
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b"0123456789abcdef"[(n % radix) as usize];
            n /= radix;
            if n == 0 {
                break;
            }
        }
        self.put(&digits[i..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse(b"127.0.0.1:3260"),
            Some((Ip::V4([127, 0, 0, 1]), 3260))
        );
        assert_eq!(parse(b"0.0.0.0:3260"), Some((Ip::V4([0; 4]), 3260)));
        assert_eq!(parse(b"[::0]:3260"), Some((Ip::V6([0; 16]), 3260)));
        let mut one = [0u8; 16];
        one[15] = 1;
        assert_eq!(parse(b"[::1]:860"), Some((Ip::V6(one), 860)));
        let full = parse(b"[fe80:0:0:0:1:2:3:4]:1").unwrap().0;
        assert_eq!(full, parse(b"[fe80::1:2:3:4]:1").unwrap().0);
        for bad in [
            &b"127.0.0.1"[..],
            b"127.0.0:3260",
            b"127.0.0.1.1:3260",
            b"256.0.0.1:3260",
            b"1.2.3.4:65536",
            b"1.2.3.4:",
            b"1.2.3.4:-1",
            b"::1:3260",
            b"[::1]3260",
            b"[1:2:3:4:5:6:7:8:9]:1",
            b"[1::2::3]:1",
            b"[12345::]:1",
            b"[1:2:3:4:5:6:7]:1",
            b"[::ffff:1.2.3]:1",
            b"[1.2.3.4]:1",
            b"[::1.2.3.4.5]:1",
            b"",
        ] {
            assert_eq!(parse(bad), None, "{:?}", core::str::from_utf8(bad));
        }
    }

    #[test]
    fn formatting() {
        let mut b = [0u8; 64];
        let n = format(&Ip::V4([192, 168, 0, 10]), 3260, &mut b).unwrap();
        assert_eq!(&b[..n], b"192.168.0.10:3260");
        let (ip, _) = parse(b"[fe80::1]:1").unwrap();
        let n = format(&ip, 3260, &mut b).unwrap();
        assert_eq!(&b[..n], b"[fe80::1]:3260");
        for (name, want) in [
            (&b"[::]:1"[..], &b"[::]:1"[..]),
            (b"[::1]:1", b"[::1]:1"),
            (b"[1:0:0:2:0:0:0:3]:1", b"[1:0:0:2::3]:1"),
            (b"[1:0:0:2:0:0:3:4]:1", b"[1::2:0:0:3:4]:1"),
            (b"[1:2:3:4:5:6:7:0]:1", b"[1:2:3:4:5:6:7:0]:1"),
            (b"[2001:db8::ff00:42:8329]:1", b"[2001:db8::ff00:42:8329]:1"),
            (b"[::ffff:7f00:1]:1", b"[::ffff:127.0.0.1]:1"),
            (b"[::ffff:127.0.0.1]:1", b"[::ffff:127.0.0.1]:1"),
        ] {
            let (ip, port) = parse(name).unwrap();
            let n = format(&ip, port, &mut b).unwrap();
            assert_eq!(&b[..n], want, "{:?}", core::str::from_utf8(name));
        }
        assert_eq!(format(&ip, 3260, &mut b[..10]), None);
        assert!(Ip::V6([0; 16]).is_any() && !ip.is_any());
    }
}
