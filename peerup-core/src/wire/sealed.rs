//! Sealed frames of the invite handshake (WIRE.md §6).
//!
//! ```text
//! [u16 BE L][24-byte nonce][ciphertext || 16-byte tag]
//!  L = 24 + plaintext length + 16, 40 <= L <= 4096
//! ```
//! AEAD XChaCha20-Poly1305, no associated data, the same key both ways. The
//! nonce is random; it is an argument here (the core has no randomness).
//!
//! [`decode`] is incremental: it reports how many more bytes it needs, so a
//! caller can feed it whatever a stream read returned. An impossible length
//! prefix is rejected as soon as its two bytes are in, before any more is
//! read.

use core::fmt;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of the random nonce.
pub const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Length of the big-endian length prefix.
pub const HEADER_LEN: usize = 2;
/// Smallest valid `L`: an empty plaintext.
pub const MIN_LEN: usize = NONCE_LEN + TAG_LEN;
/// Largest valid `L`.
pub const MAX_LEN: usize = 4096;
/// Largest plaintext a frame can carry.
pub const MAX_PLAINTEXT: usize = MAX_LEN - MIN_LEN;

/// The 32-byte key both sides derive with HKDF. Zeroized on drop; its
/// `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl Key {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Key(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// One frame: the `L` bytes after the length prefix (nonce, ciphertext, tag).
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    body: Vec<u8>,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("len", &self.body.len())
            .finish()
    }
}

/// A length prefix that no valid frame has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// `L = 0`.
    #[error("sealed frame has length 0")]
    Empty,
    /// `L` below 40: no room for the nonce and tag.
    #[error("sealed frame length {len} is below the minimum of {MIN_LEN}")]
    TooShort {
        /// The length prefix.
        len: usize,
    },
    /// `L` above 4096.
    #[error("sealed frame length {len} exceeds the maximum of {MAX_LEN}")]
    TooLong {
        /// The length prefix.
        len: usize,
    },
}

/// The plaintext does not fit one frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plaintext of {len} bytes exceeds the sealed frame maximum of {MAX_PLAINTEXT}")]
pub struct SealError {
    /// The plaintext length.
    pub len: usize,
}

/// The frame does not open under the key: a wrong token (so a wrong key) or
/// tampering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sealed frame failed authentication (wrong key or tampered)")]
pub struct OpenError;

/// What [`decode`] found at the front of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame, and how many buffer bytes it used (prefix included).
    Frame(Frame, usize),
    /// Not enough bytes yet: at least this many more are needed.
    Incomplete {
        /// Missing bytes.
        needed: usize,
    },
}

impl Frame {
    /// Builds a frame from its parts; `ciphertext` includes the tag.
    ///
    /// # Errors
    /// [`FrameError`] when the resulting `L` is out of bounds.
    pub fn from_parts(nonce: [u8; NONCE_LEN], ciphertext: &[u8]) -> Result<Self, FrameError> {
        let len = NONCE_LEN + ciphertext.len();
        check_len(len)?;
        let mut body = Vec::with_capacity(len);
        body.extend_from_slice(&nonce);
        body.extend_from_slice(ciphertext);
        Ok(Frame { body })
    }

    /// The nonce.
    pub fn nonce(&self) -> &[u8] {
        &self.body[..NONCE_LEN]
    }

    /// Ciphertext followed by the tag.
    pub fn ciphertext(&self) -> &[u8] {
        &self.body[NONCE_LEN..]
    }

    /// The value of the length prefix, `L`.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    /// Never true: a frame holds at least a nonce and a tag.
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// Bytes on the wire: `2 + L`.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.body.len()
    }

    /// Appends the wire form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // L <= 4096 by construction, so it fits a u16.
        let len = u16::try_from(self.body.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.body);
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }
}

fn check_len(len: usize) -> Result<(), FrameError> {
    match len {
        0 => Err(FrameError::Empty),
        n if n < MIN_LEN => Err(FrameError::TooShort { len: n }),
        n if n > MAX_LEN => Err(FrameError::TooLong { len: n }),
        _ => Ok(()),
    }
}

/// Decodes one frame from the front of `buf`.
///
/// # Errors
/// [`FrameError`] as soon as the length prefix is known to be invalid.
pub fn decode(buf: &[u8]) -> Result<Decoded, FrameError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(Decoded::Incomplete {
            needed: HEADER_LEN - buf.len(),
        });
    };
    let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
    check_len(len)?;
    let total = HEADER_LEN + len;
    match buf.get(HEADER_LEN..total) {
        Some(body) => Ok(Decoded::Frame(
            Frame {
                body: body.to_vec(),
            },
            total,
        )),
        None => Ok(Decoded::Incomplete {
            needed: total - buf.len(),
        }),
    }
}

/// Seals `plaintext` under `key` with `nonce`.
///
/// # Errors
/// [`SealError`] when the plaintext is longer than [`MAX_PLAINTEXT`].
pub fn seal(key: &Key, nonce: [u8; NONCE_LEN], plaintext: &[u8]) -> Result<Frame, SealError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(SealError {
            len: plaintext.len(),
        });
    }
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    let ciphertext = cipher
        .encrypt(XNonce::from_slice(&nonce), plaintext)
        .map_err(|_| SealError {
            len: plaintext.len(),
        })?;
    Frame::from_parts(nonce, &ciphertext).map_err(|_| SealError {
        len: plaintext.len(),
    })
}

/// Opens `frame` under `key`.
///
/// # Errors
/// [`OpenError`] when authentication fails.
pub fn open(key: &Key, frame: &Frame) -> Result<Vec<u8>, OpenError> {
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    cipher
        .decrypt(XNonce::from_slice(frame.nonce()), frame.ciphertext())
        .map_err(|_| OpenError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> Key {
        Key::from_bytes([b; 32])
    }

    #[test]
    fn layout_is_length_nonce_ciphertext_tag() {
        let f = seal(&key(7), [9; 24], b"home").unwrap();
        let wire = f.encode();
        assert_eq!(wire.len(), 2 + 24 + 4 + 16);
        assert_eq!(&wire[..2], &[0, 44]);
        assert_eq!(&wire[2..26], &[9; 24]);
        assert_eq!(open(&key(7), &f).unwrap(), b"home");
    }

    #[test]
    fn rejects_impossible_lengths_from_the_prefix_alone() {
        assert_eq!(decode(&[0, 0]), Err(FrameError::Empty));
        assert_eq!(decode(&[0, 39]), Err(FrameError::TooShort { len: 39 }));
        assert_eq!(
            decode(&[0x10, 0x01]),
            Err(FrameError::TooLong { len: 4097 })
        );
        assert_eq!(
            decode(&[0xff, 0xff]),
            Err(FrameError::TooLong { len: 65535 })
        );
        assert_eq!(
            decode(&[0x10, 0x00]),
            Ok(Decoded::Incomplete { needed: 4096 })
        );
    }

    #[test]
    fn incomplete_reports_missing_bytes() {
        assert_eq!(decode(&[]), Ok(Decoded::Incomplete { needed: 2 }));
        assert_eq!(decode(&[0]), Ok(Decoded::Incomplete { needed: 1 }));
        let wire = seal(&key(1), [2; 24], b"x").unwrap().encode();
        assert_eq!(
            decode(&wire[..10]),
            Ok(Decoded::Incomplete {
                needed: wire.len() - 10
            })
        );
    }

    #[test]
    fn wrong_key_or_tamper_fails_to_open() {
        let f = seal(&key(1), [2; 24], b"OK home").unwrap();
        assert_eq!(open(&key(2), &f), Err(OpenError));
        let mut wire = f.encode();
        let last = wire.len() - 1;
        wire[last] ^= 1;
        let Decoded::Frame(g, _) = decode(&wire).unwrap() else {
            panic!()
        };
        assert_eq!(open(&key(1), &g), Err(OpenError));
    }

    #[test]
    fn plaintext_bounds() {
        assert!(seal(&key(1), [0; 24], &[0; MAX_PLAINTEXT]).is_ok());
        assert_eq!(
            seal(&key(1), [0; 24], &[0; MAX_PLAINTEXT + 1]),
            Err(SealError {
                len: MAX_PLAINTEXT + 1
            })
        );
        assert_eq!(seal(&key(1), [0; 24], b"").unwrap().len(), MIN_LEN);
    }

    #[test]
    fn key_debug_is_redacted() {
        assert_eq!(format!("{:?}", key(0x41)), "Key(<redacted>)");
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(
            k in any::<[u8; 32]>(), n in any::<[u8; 24]>(),
            pt in proptest::collection::vec(any::<u8>(), 0..=MAX_PLAINTEXT),
            trailing in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let f = seal(&Key::from_bytes(k), n, &pt).unwrap();
            let mut wire = f.encode();
            prop_assert_eq!(wire.len(), f.encoded_len());
            wire.extend_from_slice(&trailing);
            let Decoded::Frame(g, used) = decode(&wire).unwrap() else { panic!("incomplete") };
            prop_assert_eq!(used, f.encoded_len());
            prop_assert_eq!(open(&Key::from_bytes(k), &g).unwrap(), pt);
        }

        #[test]
        fn decode_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&buf);
        }
    }
}
