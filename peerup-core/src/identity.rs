//! The identity key file and the 0600 rule (WIRE.md §1, §8).
//!
//! The file holds the libp2p protobuf encoding of an Ed25519 private key,
//! exactly 68 bytes:
//!
//! ```text
//! 08 01            field 1 (KeyType), varint 1 = Ed25519
//! 12 40            field 2 (Data), length 64
//! <32-byte seed><32-byte public key>
//! ```
//!
//! This is what go-libp2p's `crypto.MarshalPrivateKey` writes, so key files
//! move between the Go and Rust implementations. The peer ID is the identity
//! multihash of the protobuf public key (`12D3KooW...`).
//!
//! Creating a key takes 32 random bytes from the caller; reading one takes
//! the file's bytes. The caller writes the file (mode 0600, atomically) and
//! checks the mode of every key and config file with [`check_mode`] before
//! trusting it.

use core::fmt;
use std::path::Path;

use libp2p_identity::{Keypair, PeerId};
use zeroize::Zeroizing;

/// Length of an encoded key file.
pub const KEY_FILE_LEN: usize = 68;

/// The four bytes every Ed25519 key file starts with.
pub const KEY_FILE_PREFIX: [u8; 4] = [0x08, 0x01, 0x12, 0x40];

/// Why key file bytes are not an Ed25519 identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file is empty.
    #[error("identity key file is empty")]
    Empty,
    /// Wrong length.
    #[error("identity key file has {len} bytes; an Ed25519 key file has exactly {KEY_FILE_LEN}")]
    Length {
        /// Actual length.
        len: usize,
    },
    /// Protobuf header is not `08 01 12 40`.
    #[error(
        "identity key file does not start with 08 01 12 40 (a libp2p Ed25519 private key); found {found}"
    )]
    Header {
        /// The first four bytes, hex.
        found: String,
    },
    /// The public half does not belong to the secret half.
    #[error("identity key file is corrupt: its public key does not match its private key")]
    Mismatch,
}

/// Builds the Ed25519 identity whose secret seed is `seed` (32 random
/// bytes the caller took from the OS).
pub fn keypair_from_seed(seed: [u8; 32]) -> Keypair {
    let mut seed = Zeroizing::new(seed);
    // 32 bytes is always a valid Ed25519 seed: any value is a secret key.
    match Keypair::ed25519_from_bytes(&mut *seed) {
        Ok(kp) => kp,
        Err(_) => unreachable!("any 32 bytes are an Ed25519 secret key"),
    }
}

/// Encodes an Ed25519 identity as key file bytes.
///
/// Returns `None` for a key that is not Ed25519 (peerup only creates
/// Ed25519 keys).
pub fn encode(keypair: &Keypair) -> Option<Zeroizing<[u8; KEY_FILE_LEN]>> {
    let ed = keypair.clone().try_into_ed25519().ok()?;
    let mut out = Zeroizing::new([0u8; KEY_FILE_LEN]);
    out[..4].copy_from_slice(&KEY_FILE_PREFIX);
    out[4..].copy_from_slice(&ed.to_bytes());
    Some(out)
}

/// Decodes key file bytes into the identity.
///
/// # Errors
/// [`KeyFileError`] naming what is wrong; the secret is never echoed.
pub fn decode(bytes: &[u8]) -> Result<Keypair, KeyFileError> {
    if bytes.is_empty() {
        return Err(KeyFileError::Empty);
    }
    if bytes.len() != KEY_FILE_LEN {
        return Err(KeyFileError::Length { len: bytes.len() });
    }
    if bytes[..4] != KEY_FILE_PREFIX {
        let found = bytes[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(KeyFileError::Header { found });
    }
    let mut pair = Zeroizing::new([0u8; 64]);
    pair.copy_from_slice(&bytes[4..]);
    // libp2p-identity checks that the public half matches the seed.
    let ed = libp2p_identity::ed25519::Keypair::try_from_bytes(&mut *pair)
        .map_err(|_| KeyFileError::Mismatch)?;
    Ok(Keypair::from(ed))
}

/// The peer ID of key file bytes.
///
/// # Errors
/// As [`decode`].
pub fn peer_id_of(bytes: &[u8]) -> Result<PeerId, KeyFileError> {
    Ok(decode(bytes)?.public().to_peer_id())
}

/// A key or config file readable or writable by group or others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{path} has mode {mode:04o}, which lets other users read it; expected 0600 - fix with: chmod 600 {path}"
)]
pub struct ModeError {
    /// The file, as the caller named it.
    pub path: String,
    /// The permission bits found.
    pub mode: u32,
}

/// The 0600 rule: refuse a file whose mode grants any group or other
/// permission (`mode & 0o077 != 0`). `mode` is the `st_mode` the caller
/// read; only its permission bits are considered.
///
/// # Errors
/// [`ModeError`] with the exact fix (WIRE.md §8).
pub fn check_mode(path: &Path, mode: u32) -> Result<(), ModeError> {
    if mode & 0o077 != 0 {
        return Err(ModeError {
            path: path.display().to_string(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// Formats a peer ID shortened for narrow output: `12D3KooW...HCVL`.
pub fn short(peer: &PeerId) -> impl fmt::Display + use<> {
    let s = peer.to_base58();
    if s.len() <= 16 {
        s
    } else {
        format!("{}...{}", &s[..8], &s[s.len() - 4..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // RFC 8032 §7.1, test 1.
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    /// Assembled by hand from WIRE.md §8, not by the encoder.
    fn known_file() -> Vec<u8> {
        let mut v = vec![0x08, 0x01, 0x12, 0x40];
        v.extend(hex::decode(SEED).unwrap());
        v.extend(hex::decode(PUBLIC).unwrap());
        v
    }

    /// The peer ID assembled by hand: base58btc of the identity multihash
    /// `00 24` over the protobuf public key `08 01 12 20 <public>`.
    fn known_peer_id() -> String {
        let mut mh = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
        mh.extend(hex::decode(PUBLIC).unwrap());
        bs58::encode(mh).into_string()
    }

    #[test]
    fn known_answer_key_file() {
        let seed: [u8; 32] = hex::decode(SEED).unwrap().try_into().unwrap();
        let kp = keypair_from_seed(seed);
        assert_eq!(encode(&kp).unwrap().as_slice(), known_file().as_slice());
        let back = decode(&known_file()).unwrap();
        assert_eq!(back.public(), kp.public());
    }

    #[test]
    fn known_answer_peer_id() {
        let id = peer_id_of(&known_file()).unwrap().to_string();
        assert_eq!(id, known_peer_id());
        assert!(id.starts_with("12D3KooW"), "{id}");
        // Literal, so a change in the base58 helper cannot hide a change here.
        assert_eq!(id, "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5pV");
    }

    #[test]
    fn rejects_bad_files() {
        assert_eq!(decode(&[]).unwrap_err(), KeyFileError::Empty);
        assert_eq!(
            decode(&[0; 67]).unwrap_err(),
            KeyFileError::Length { len: 67 }
        );
        assert_eq!(
            decode(&[0; 69]).unwrap_err(),
            KeyFileError::Length { len: 69 }
        );
        let mut f = known_file();
        f[1] = 0x02; // secp256k1
        assert!(
            matches!(decode(&f).unwrap_err(), KeyFileError::Header { found } if found == "08 02 12 40")
        );
        let mut f = known_file();
        f[67] ^= 1;
        assert_eq!(decode(&f).unwrap_err(), KeyFileError::Mismatch);
    }

    #[test]
    fn mode_rule_and_fix_message() {
        let p = Path::new("/home/a/.config/peerup/identity.key");
        assert!(check_mode(p, 0o100600).is_ok());
        assert!(check_mode(p, 0o400).is_ok());
        assert!(check_mode(p, 0o700).is_ok());
        for bad in [0o644, 0o640, 0o604, 0o601, 0o610, 0o100666] {
            let e = check_mode(p, bad).unwrap_err();
            assert!(
                e.to_string().ends_with(
                    "expected 0600 - fix with: chmod 600 /home/a/.config/peerup/identity.key"
                ),
                "{e}"
            );
        }
        assert_eq!(check_mode(p, 0o100644).unwrap_err().mode, 0o644);
    }

    #[test]
    fn short_form() {
        let id: PeerId = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL"
            .parse()
            .unwrap();
        assert_eq!(short(&id).to_string(), "12D3KooW...HCVL");
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(seed in any::<[u8; 32]>()) {
            let kp = keypair_from_seed(seed);
            let file = encode(&kp).unwrap();
            prop_assert_eq!(&file[..4], &KEY_FILE_PREFIX[..]);
            prop_assert_eq!(&file[4..36], &seed[..]);
            let back = decode(file.as_slice()).unwrap();
            prop_assert_eq!(back.public().to_peer_id(), kp.public().to_peer_id());
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode(&bytes);
        }
    }
}
