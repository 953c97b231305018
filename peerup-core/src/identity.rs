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

/// The longest text accepted as a peer ID. Real ones are 46 (`Qm...`) or
/// 52-53 (`12D3KooW...`, `16Uiu2...`) characters; a CID form is about 60.
/// Base58 decoding takes time quadratic in the length (a 160 KB token on
/// one `authorized_keys` line took 7.5 s), so longer texts are refused
/// before any decoding.
pub const MAX_PEER_ID_TEXT: usize = 128;

/// The longest text accepted as a multiaddr (relay and peer addresses):
/// the `/p2p/` part is base58 too.
pub const MAX_MULTIADDR_TEXT: usize = 1024;

/// Parses a peer ID, refusing texts longer than [`MAX_PEER_ID_TEXT`]
/// before decoding them. Every peer ID that comes from a file, a command
/// line or the network goes through here.
pub fn parse_peer_id_text(text: &str) -> Option<PeerId> {
    if text.len() > MAX_PEER_ID_TEXT {
        return None;
    }
    text.parse().ok()
}

/// Parses a multiaddr, refusing texts longer than [`MAX_MULTIADDR_TEXT`]
/// before decoding them.
///
/// # Errors
/// The multiaddr error, or one saying the text is too long.
pub fn parse_multiaddr_text(text: &str) -> Result<multiaddr::Multiaddr, String> {
    if text.len() > MAX_MULTIADDR_TEXT {
        return Err(format!(
            "longer than {MAX_MULTIADDR_TEXT} characters ({} given)",
            text.len()
        ));
    }
    text.parse().map_err(|e: multiaddr::Error| e.to_string())
}

/// Quotes at most the first 64 characters of `text` for an error message
/// (a hostile file can hold a megabyte on one line).
pub fn excerpt(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], text.len()),
        None => text.to_owned(),
    }
}

/// The owner and mode of a file or directory, as `stat` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileFacts {
    /// `st_uid`.
    pub uid: u32,
    /// `st_mode`.
    pub mode: u32,
}

/// Why a key, config or authorized_keys file cannot be trusted: someone
/// other than this user (or root) could have written it, or could replace
/// it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OwnershipError {
    /// The file belongs to another user.
    #[error(
        "{path} belongs to user {owner}, not to this user ({user}) or root: another user could have written it - fix with: chown {user} {path}"
    )]
    FileOwner {
        /// The file.
        path: String,
        /// Its owner's uid.
        owner: u32,
        /// This process's effective uid.
        user: u32,
    },
    /// Its directory belongs to another user.
    #[error(
        "the directory {dir} (holding {path}) belongs to user {owner}, not to this user ({user}) or root: that user could replace the file - move the file to a directory of your own"
    )]
    DirOwner {
        /// The directory.
        dir: String,
        /// The file.
        path: String,
        /// Its owner's uid.
        owner: u32,
        /// This process's effective uid.
        user: u32,
    },
    /// Its directory is writable by other users.
    #[error(
        "the directory {dir} (holding {path}) is writable by other users (mode {mode:04o}): anyone could replace the file - fix with: chmod o-w {dir}"
    )]
    DirWritable {
        /// The directory.
        dir: String,
        /// The file.
        path: String,
        /// The directory's permission bits.
        mode: u32,
    },
}

/// The ownership rule for key, config and authorized_keys files: the file
/// and its directory belong to this user (`euid`) or to root, and the
/// directory is not writable by others. The mode bits alone
/// ([`check_mode`]) do not say who could have written the file, or who
/// could swap it for another.
///
/// # Errors
/// [`OwnershipError`] with the fix.
pub fn check_ownership(
    path: &Path,
    file: FileFacts,
    dir: &Path,
    dir_facts: FileFacts,
    euid: u32,
) -> Result<(), OwnershipError> {
    let trusted = |uid: u32| uid == euid || uid == 0;
    let p = || path.display().to_string();
    if !trusted(file.uid) {
        return Err(OwnershipError::FileOwner {
            path: p(),
            owner: file.uid,
            user: euid,
        });
    }
    if !trusted(dir_facts.uid) {
        return Err(OwnershipError::DirOwner {
            dir: dir.display().to_string(),
            path: p(),
            owner: dir_facts.uid,
            user: euid,
        });
    }
    if dir_facts.mode & 0o002 != 0 {
        return Err(OwnershipError::DirWritable {
            dir: dir.display().to_string(),
            path: p(),
            mode: dir_facts.mode & 0o7777,
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

    #[test]
    fn ownership_rule() {
        let p = Path::new("/home/a/.config/peerup/config.yaml");
        let d = Path::new("/home/a/.config/peerup");
        let me = 1000;
        let f = |uid, mode| FileFacts { uid, mode };
        assert_eq!(
            check_ownership(p, f(me, 0o600), d, f(me, 0o700), me),
            Ok(())
        );
        // root's files and directories (/etc/peerup) are fine.
        assert_eq!(check_ownership(p, f(0, 0o600), d, f(0, 0o755), me), Ok(()));
        let e = check_ownership(p, f(1001, 0o600), d, f(me, 0o700), me).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("fix with: chown 1000 /home/a/.config/peerup/config.yaml"),
            "{e}"
        );
        assert!(matches!(
            check_ownership(p, f(me, 0o600), d, f(1001, 0o755), me),
            Err(OwnershipError::DirOwner { owner: 1001, .. })
        ));
        // Writable by others, even with the sticky bit: refused.
        for mode in [0o777, 0o1777, 0o703] {
            let e = check_ownership(p, f(me, 0o600), d, f(me, mode), me).unwrap_err();
            assert!(
                e.to_string()
                    .ends_with("fix with: chmod o-w /home/a/.config/peerup"),
                "{e}"
            );
        }
        // Group-writable directories are the group's business.
        assert_eq!(
            check_ownership(p, f(me, 0o600), d, f(me, 0o770), me),
            Ok(())
        );
    }

    #[test]
    fn long_texts_are_refused_before_decoding() {
        let id = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
        assert!(parse_peer_id_text(id).is_some());
        let long = "1".repeat(MAX_PEER_ID_TEXT + 1);
        assert!(parse_peer_id_text(&long).is_none());
        assert!(parse_multiaddr_text(&format!("/dns4/{}/tcp/1", "a".repeat(2000))).is_err());
        let e = excerpt(&"x".repeat(100_000));
        assert!(e.len() < 100 && e.ends_with("... (100000 bytes)"), "{e}");
    }

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
