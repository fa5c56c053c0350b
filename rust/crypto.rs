// SPDX-License-Identifier: GPL-2.0

//! Digests for the network fabrics: CRC-32C (iSCSI header and data digests, NVMe/TCP's) from
//! the kernel's crc library, message digests of the kernel crypto API (CHAP: MD5, SHA-1,
//! SHA-256, SHA3-256) and random bytes.
//!
//! C side: `rust/net_helpers.c`.

use super::bindings;
use core::ptr::NonNull;
use kernel::error::from_err_ptr;
use kernel::prelude::*;

/// CRC-32C of `data`, continued from `crc` (the kernel's `crc32c`).
pub fn crc32c(crc: u32, data: &[u8]) -> u32 {
    // SAFETY: `data` is valid for reads of its length.
    unsafe { bindings::rt_crc32c(crc, data.as_ptr().cast(), data.len()) }
}

/// Fills `buf` with random bytes (`get_random_bytes`).
pub fn random_bytes(buf: &mut [u8]) {
    // SAFETY: `buf` is valid for writes of its length.
    unsafe { bindings::rt_random_bytes(buf.as_mut_ptr().cast(), buf.len()) }
}

/// A message digest algorithm of the kernel crypto API, or the kernel's MD5 library when the
/// crypto API has no "md5" (CHAP's MD5 is what Windows and VMware initiators speak).
///
/// # Invariants
///
/// `tfm`, if any, is a transform from `crypto_alloc_shash`, freed only in `drop`; `None` is the
/// MD5 library.
pub struct Hash {
    tfm: Option<NonNull<core::ffi::c_void>>,
}

/// MD5's digest length.
const MD5_LEN: usize = 16;

// SAFETY: a shash transform is immutable once allocated and may be used from any thread
// (each digest runs on its own descriptor).
unsafe impl Send for Hash {}
// SAFETY: as above.
unsafe impl Sync for Hash {}

impl Hash {
    /// The algorithm named `name` ("md5", "sha1", "sha256", "sha3-256"); `ENOENT` if the
    /// kernel has none (may sleep: it can load a module).
    pub fn new(name: &CStr) -> Result<Hash> {
        // SAFETY: `name` is a valid C string.
        let tfm = match from_err_ptr(unsafe { bindings::rt_shash_alloc(name.as_char_ptr()) }) {
            Ok(t) => t,
            Err(e) if name == c"md5" => {
                let lib = Hash { tfm: None };
                let mut out = [0u8; MD5_LEN];
                // The library exists if it digests.
                return lib.digest(&[], &mut out).map(|()| lib).map_err(|_| e);
            }
            Err(e) => return Err(e),
        };
        Ok(Hash {
            // INVARIANT: allocated above.
            tfm: Some(NonNull::new(tfm).ok_or(ENOMEM)?),
        })
    }

    /// Digest length in bytes.
    pub fn len(&self) -> usize {
        match self.tfm {
            // SAFETY: `tfm` is live (type invariant).
            Some(tfm) => unsafe { bindings::rt_shash_digestsize(tfm.as_ptr()) as usize },
            None => MD5_LEN,
        }
    }

    /// Always false: digests have a length.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the digest of the concatenation of `parts` (at most 8) to `out`, which must hold
    /// [`Hash::len`] bytes.
    pub fn digest(&self, parts: &[&[u8]], out: &mut [u8]) -> Result {
        if out.len() < self.len() || parts.len() > 8 {
            return Err(EINVAL);
        }
        let mut bufs = [core::ptr::null::<core::ffi::c_void>(); 8];
        let mut lens = [0usize; 8];
        for (i, p) in parts.iter().enumerate() {
            bufs[i] = p.as_ptr().cast();
            lens[i] = p.len();
        }
        let n = parts.len() as u32;
        let (bufs, lens, out) = (bufs.as_ptr(), lens.as_ptr(), out.as_mut_ptr());
        kernel::error::to_result(match self.tfm {
            // SAFETY: `tfm` is live; each of the first `n` buffers is valid for its length;
            // `out` holds the digest's length.
            Some(tfm) => unsafe { bindings::rt_shash_digest(tfm.as_ptr(), bufs, lens, n, out) },
            // SAFETY: as above, without a transform.
            None => unsafe { bindings::rt_md5_digest(bufs, lens, n, out) },
        })
    }
}

impl Drop for Hash {
    fn drop(&mut self) {
        if let Some(tfm) = self.tfm {
            // SAFETY: `tfm` is live (type invariant) and freed once, here.
            unsafe { bindings::rt_shash_free(tfm.as_ptr()) }
        }
    }
}

#[kunit_tests(rtarget_crypto)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() -> Result {
        // CRC-32C check value (RFC 3720 B.4's polynomial): "123456789" -> E3069283.
        assert_eq!(!crc32c(!0, b"123456789"), 0xe306_9283);
        let sha = Hash::new(c"sha256")?;
        assert_eq!(sha.len(), 32);
        let mut out = [0u8; 32];
        // SHA-256("abc"), split across parts.
        sha.digest(&[b"a", b"", b"bc"], &mut out)?;
        assert_eq!(&out[..4], &[0xba, 0x78, 0x16, 0xbf]);
        assert_eq!(&out[28..], &[0xf2, 0x00, 0x15, 0xad]);
        assert!(Hash::new(c"no-such-digest").is_err());
        // From the crypto API or the library: RFC 1321's "abc".
        let md5 = Hash::new(c"md5")?;
        let mut out = [0u8; 16];
        md5.digest(&[b"ab", b"c"], &mut out)?;
        assert_eq!(&out[..4], &[0x90, 0x01, 0x50, 0x98]);
        let mut r = [0u8; 32];
        random_bytes(&mut r);
        assert!(r != [0u8; 32]);
        Ok(())
    }
}

/// CRC-32C of `len` bytes of `sgl` from byte `skip`, continued from `crc`.
pub fn crc32c_sgl(mut crc: u32, sgl: &super::io::Sgl, skip: u32, len: u32) -> u32 {
    let mut chunk = [0u8; 256];
    let mut at = skip as usize;
    let end = skip.saturating_add(len).min(sgl.len()) as usize;
    while at < end {
        let n = (end - at).min(chunk.len());
        let got = sgl.copy_from(at, &mut chunk[..n]);
        if got == 0 {
            break;
        }
        crc = crc32c(crc, &chunk[..got]);
        at += got;
    }
    crc
}
