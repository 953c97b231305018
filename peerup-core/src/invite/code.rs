//! Invite code version 1 (WIRE.md §5), byte-compatible with Go peer-up.
//!
//! ```text
//! [0x01][token: 8][IPv4: 4][port: u16 BE][u8 len][relay peer ID multihash]
//! [u8 len 0..63][network name, may be empty][inviter peer ID multihash, to the end]
//! ```
//!
//! Text form: RFC 4648 base32, alphabet `A-Z2-7`, no padding, upper case,
//! in groups of 4 characters joined by `-`. Decoding drops `-`, spaces,
//! tabs and newlines and ignores case, so a code survives being read out,
//! retyped, or wrapped by a terminal.
//!
//! Version 2 (relay pairing, WIRE.md §13) is [`super::pairing_code`]; it
//! shares the text form and the helpers here, and
//! [`AnyCode`](super::AnyCode) tells the two apart by the first byte.
//!
//! The token is the invite's secret: it is zeroized on drop, compared in
//! constant time, and redacted from `Debug`. An `InviteCode`'s `Debug` shows
//! no token either; never log a code's text.

use core::fmt;
use core::net::Ipv4Addr;

use data_encoding::BASE32_NOPAD;
use multiaddr::Protocol;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::relay_addr::RelayAddr;
use crate::wire::label::{DnsLabel, LabelError};
use crate::{Multiaddr, PeerId};

/// The only version this build reads and writes.
pub const VERSION: u8 = 1;

/// Shortest byte string that can be a code: version, token, IPv4, port and
/// the relay ID length byte.
pub const MIN_LEN: usize = 16;

/// Characters per group in the text form.
pub const GROUP: usize = 4;

/// The invite's one-time secret, 8 random bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Token([u8; 8]);

impl Token {
    /// Wraps 8 random bytes the caller took from the OS.
    pub fn from_bytes(bytes: [u8; 8]) -> Self {
        Token(bytes)
    }

    /// The raw bytes (they are mixed into the handshake key).
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl PartialEq for Token {
    /// Constant time.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Token {}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A decoded invite: everything a joiner needs to reach the inviter.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteCode {
    /// The one-time secret.
    pub token: Token,
    /// The relay's IPv4 address.
    pub relay_ip: Ipv4Addr,
    /// The relay's TCP port.
    pub relay_port: u16,
    /// The relay's peer ID.
    pub relay_peer: PeerId,
    /// The network (`discovery.network`) the inviter is in, if any.
    pub network: Option<DnsLabel>,
    /// The inviter's peer ID.
    pub inviter: PeerId,
}

impl fmt::Debug for InviteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InviteCode")
            .field("token", &self.token)
            .field("relay", &self.relay_addr_string())
            .field("network", &self.network)
            .field("inviter", &self.inviter)
            .finish()
    }
}

/// Why an invite cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The relay address is not `/ip4/<ip>/tcp/<port>/p2p/<id>`; a code can
    /// only carry that form.
    #[error(
        "relay address `{addr}` cannot go into an invite code: it must be /ip4/<ip>/tcp/<port>/p2p/<id>"
    )]
    RelayNotIpv4Tcp {
        /// The relay address.
        addr: String,
    },
    /// A peer ID longer than 255 bytes (never the case for Ed25519).
    #[error("relay peer ID is too long for an invite code")]
    RelayPeerIdTooLong,
}

/// Why a text is not a valid invite code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Nothing but separators.
    #[error("invite code is empty")]
    Empty,
    /// A character outside base32.
    #[error("invite code has {found:?} at position {position}; codes use only A-Z, 2-7 and '-'")]
    InvalidCharacter {
        /// The character.
        found: char,
        /// Its 1-based position in the text as given.
        position: usize,
    },
    /// Base32 that does not decode (wrong length or trailing bits): most
    /// often a code cut short or with a character missing.
    #[error("invite code is not valid base32 (is part of it missing?)")]
    Base32,
    /// Fewer than 16 bytes.
    #[error(
        "invite code is too short ({len} bytes; at least {MIN_LEN} needed): paste the whole code"
    )]
    TooShort {
        /// Decoded length.
        len: usize,
    },
    /// A version above 1.
    #[error("invite code version {version} is newer than supported; please upgrade peerup")]
    NewerVersion {
        /// The version byte.
        version: u8,
    },
    /// Version 0.
    #[error("invite code version {version} is not valid")]
    InvalidVersion {
        /// The version byte.
        version: u8,
    },
    /// A length byte points past the end.
    #[error("invite code is truncated inside the {field}: paste the whole code")]
    Truncated {
        /// Which field was cut.
        field: &'static str,
    },
    /// The relay peer ID is not exactly one valid multihash.
    #[error("invite code has an invalid relay peer ID")]
    InvalidRelayPeerId,
    /// The inviter peer ID is not exactly one valid multihash.
    #[error("invite code has an invalid inviter peer ID")]
    InvalidInviterPeerId,
    /// Network name length above 63.
    #[error("invite code network name is {len} bytes; at most 63 are allowed")]
    NetworkNameTooLong {
        /// The length byte.
        len: usize,
    },
    /// The network name is not a DNS label.
    #[error("invite code network name is invalid: {0}")]
    InvalidNetworkName(LabelError),
    /// The relay port is 0.
    #[error("invite code has relay port 0")]
    RelayPortZero,
    /// A version-2 code (relay pairing) shorter than
    /// [`pairing_code::MIN_LEN`](super::pairing_code::MIN_LEN).
    #[error(
        "pairing code is too short ({len} bytes; at least {} needed): paste the whole code",
        super::pairing_code::MIN_LEN
    )]
    PairingCodeTooShort {
        /// Decoded length.
        len: usize,
    },
    /// Bytes after the last field of a code that has no open-ended field
    /// (version 2).
    #[error("invite code has {len} unexpected bytes at its end: paste only the code")]
    TrailingBytes {
        /// How many bytes follow the network name.
        len: usize,
    },
    /// A valid version that is not the one this decoder reads (a version-1
    /// invite given where a version-2 pairing code was expected).
    #[error("this is a version {version} invite code; a version {expected} code was expected here")]
    UnexpectedVersion {
        /// The version byte of the code.
        version: u8,
        /// The version this decoder reads.
        expected: u8,
    },
}

impl InviteCode {
    /// Builds a code for an invite through `relay`.
    ///
    /// # Errors
    /// [`EncodeError::RelayNotIpv4Tcp`] unless the relay address is
    /// `/ip4/<ip>/tcp/<port>/p2p/<id>`; use [`pick_relay`] to choose one.
    pub fn new(
        token: Token,
        relay: &RelayAddr,
        network: Option<DnsLabel>,
        inviter: PeerId,
    ) -> Result<Self, EncodeError> {
        let (ip, port) =
            ipv4_tcp(relay.multiaddr()).ok_or_else(|| EncodeError::RelayNotIpv4Tcp {
                addr: relay.to_string(),
            })?;
        Ok(InviteCode {
            token,
            relay_ip: ip,
            relay_port: port,
            relay_peer: relay.peer_id(),
            network,
            inviter,
        })
    }

    /// The relay address the code carries:
    /// `/ip4/<ip>/tcp/<port>/p2p/<relay>`.
    pub fn relay_addr(&self) -> Multiaddr {
        Multiaddr::from(self.relay_ip)
            .with(Protocol::Tcp(self.relay_port))
            .with(Protocol::P2p(self.relay_peer))
    }

    fn relay_addr_string(&self) -> String {
        self.relay_addr().to_string()
    }

    /// The binary form (WIRE.md §5).
    ///
    /// # Errors
    /// [`EncodeError::RelayPeerIdTooLong`] for a relay ID over 255 bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let relay = self.relay_peer.to_bytes();
        let relay_len = u8::try_from(relay.len()).map_err(|_| EncodeError::RelayPeerIdTooLong)?;
        let network = self
            .network
            .as_ref()
            .map_or("", DnsLabel::as_str)
            .as_bytes();
        let inviter = self.inviter.to_bytes();
        let mut out = Vec::with_capacity(MIN_LEN + relay.len() + 1 + network.len() + inviter.len());
        out.push(VERSION);
        out.extend_from_slice(self.token.as_bytes());
        out.extend_from_slice(&self.relay_ip.octets());
        out.extend_from_slice(&self.relay_port.to_be_bytes());
        out.push(relay_len);
        out.extend_from_slice(&relay);
        // A DNS label is at most 63 bytes.
        out.push(network.len() as u8);
        out.extend_from_slice(network);
        out.extend_from_slice(&inviter);
        Ok(out)
    }

    /// Parses the binary form.
    ///
    /// # Errors
    /// [`DecodeError`] naming the first problem.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, DecodeError> {
        if raw.len() < MIN_LEN {
            return Err(DecodeError::TooShort { len: raw.len() });
        }
        match raw[0] {
            VERSION => {}
            0 => return Err(DecodeError::InvalidVersion { version: 0 }),
            v => return Err(DecodeError::NewerVersion { version: v }),
        }
        let mut token = [0u8; 8];
        token.copy_from_slice(&raw[1..9]);
        let token = Token(token);
        let relay_ip = Ipv4Addr::new(raw[9], raw[10], raw[11], raw[12]);
        let relay_port = u16::from_be_bytes([raw[13], raw[14]]);
        if relay_port == 0 {
            return Err(DecodeError::RelayPortZero);
        }
        let relay_len = usize::from(raw[15]);
        let rest = &raw[16..];
        let relay_bytes = rest.get(..relay_len).ok_or(DecodeError::Truncated {
            field: "relay peer ID",
        })?;
        let relay_peer =
            PeerId::from_bytes(relay_bytes).map_err(|_| DecodeError::InvalidRelayPeerId)?;
        let rest = &rest[relay_len..];
        let (&net_len, rest) = rest.split_first().ok_or(DecodeError::Truncated {
            field: "network name length",
        })?;
        let net_len = usize::from(net_len);
        if net_len > DnsLabel::MAX_LEN {
            return Err(DecodeError::NetworkNameTooLong { len: net_len });
        }
        let net_bytes = rest.get(..net_len).ok_or(DecodeError::Truncated {
            field: "network name",
        })?;
        let network = network_name(net_bytes)?;
        let inviter_bytes = &rest[net_len..];
        if inviter_bytes.is_empty() {
            return Err(DecodeError::Truncated {
                field: "inviter peer ID",
            });
        }
        // `PeerId::from_bytes` rejects trailing bytes: exactly one multihash.
        let inviter =
            PeerId::from_bytes(inviter_bytes).map_err(|_| DecodeError::InvalidInviterPeerId)?;
        Ok(InviteCode {
            token,
            relay_ip,
            relay_port,
            relay_peer,
            network,
            inviter,
        })
    }

    /// The text form: base32 in dash-joined groups of four.
    ///
    /// # Errors
    /// As [`InviteCode::to_bytes`].
    pub fn encode(&self) -> Result<String, EncodeError> {
        Ok(bytes_to_text(&self.to_bytes()?))
    }

    /// Parses the text form, tolerant of case, dashes and whitespace.
    ///
    /// A version-2 code (relay pairing) is refused here as
    /// [`DecodeError::NewerVersion`]; [`AnyCode::decode`](super::AnyCode::decode)
    /// reads both versions.
    ///
    /// # Errors
    /// [`DecodeError`] naming the first problem (the position of a bad
    /// character is 1-based in `text` as given).
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        InviteCode::from_bytes(&text_to_bytes(text)?)
    }
}

/// The bytes of a code's text form: separators (`-`, spaces, tabs, line
/// breaks) dropped, case ignored, base32 decoded. Shared by both versions.
pub(crate) fn text_to_bytes(text: &str) -> Result<Vec<u8>, DecodeError> {
    let mut clean = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        match c {
            '-' | ' ' | '\t' | '\n' | '\r' => {}
            'a'..='z' | 'A'..='Z' | '2'..='7' => clean.push(c.to_ascii_uppercase()),
            _ => {
                return Err(DecodeError::InvalidCharacter {
                    found: c,
                    position: i + 1,
                });
            }
        }
    }
    if clean.is_empty() {
        return Err(DecodeError::Empty);
    }
    BASE32_NOPAD
        .decode(clean.as_bytes())
        .map_err(|_| DecodeError::Base32)
}

/// The text form of a code's bytes: base32 in dash-joined groups of four.
pub(crate) fn bytes_to_text(bytes: &[u8]) -> String {
    group(&BASE32_NOPAD.encode(bytes))
}

/// The network name field of a code: empty is no network, else a DNS label.
pub(crate) fn network_name(bytes: &[u8]) -> Result<Option<DnsLabel>, DecodeError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let text = core::str::from_utf8(bytes).map_err(|_| {
        DecodeError::InvalidNetworkName(LabelError::InvalidChar {
            text: String::from_utf8_lossy(bytes).into_owned(),
            found: char::REPLACEMENT_CHARACTER,
            position: 1,
        })
    })?;
    DnsLabel::new(text)
        .map(Some)
        .map_err(DecodeError::InvalidNetworkName)
}

/// Joins `text` in groups of [`GROUP`] characters with `-`.
pub(crate) fn group(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / GROUP);
    for (i, c) in text.chars().enumerate() {
        if i > 0 && i % GROUP == 0 {
            out.push('-');
        }
        out.push(c);
    }
    out
}

pub(crate) fn ipv4_tcp(addr: &Multiaddr) -> Option<(Ipv4Addr, u16)> {
    let mut it = addr.iter();
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(Protocol::Ip4(ip)), Some(Protocol::Tcp(port)), Some(Protocol::P2p(_)), None) => {
            Some((ip, port))
        }
        _ => None,
    }
}

/// The first relay address an invite code can carry
/// (`/ip4/<ip>/tcp/<port>/p2p/<id>`).
pub fn pick_relay<'a>(relays: impl IntoIterator<Item = &'a RelayAddr>) -> Option<&'a RelayAddr> {
    relays
        .into_iter()
        .find(|r| ipv4_tcp(r.multiaddr()).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RELAY: &str = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
    const INVITER: &str = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA";

    fn peer(s: &str) -> PeerId {
        s.parse().unwrap()
    }

    fn code(network: Option<&str>) -> InviteCode {
        InviteCode {
            token: Token::from_bytes([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]),
            relay_ip: Ipv4Addr::new(203, 0, 113, 7),
            relay_port: 7777,
            relay_peer: peer(RELAY),
            network: network.map(|n| DnsLabel::new(n).unwrap()),
            inviter: peer(INVITER),
        }
    }

    /// The multihash bytes of a peer ID, decoded by hand from base58 (not
    /// through `PeerId::to_bytes`).
    fn mh(s: &str) -> Vec<u8> {
        bs58::decode(s).into_vec().unwrap()
    }

    /// WIRE.md §5, assembled field by field.
    fn known_bytes(network: &[u8]) -> Vec<u8> {
        let mut v = vec![0x01];
        v.extend([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        v.extend([203, 0, 113, 7]);
        v.extend([0x1e, 0x61]); // 7777
        let relay = mh(RELAY);
        assert_eq!(relay.len(), 38);
        v.push(38);
        v.extend(relay);
        v.push(network.len() as u8);
        v.extend(network);
        v.extend(mh(INVITER));
        v
    }

    // Computed outside this crate (Python: `base64.b32encode(bytes)`, padding
    // stripped, grouped by 4) from the bytes of `known_bytes`.
    const KNOWN_PLAIN: &str = "AEAS-GRLH-RGV4-336L-ABYQ-OHTB-EYAC-ICAB-CIQJ-URQQ-A4VQ-VYOH-X7AK-G7OP-AC77-ZTZF-DIVQ-7MTL-TDTI-2AWC-PI43-2VYA-AASA-QAIS-EDHM-YFIH-3QO5-24UV-SUOC-SCEI-6CK2-3OIE-JUNX-HVUN-P2RM-N2VB-3WTU-S";
    const KNOWN_NETWORK: &str = "AEAS-GRLH-RGV4-336L-ABYQ-OHTB-EYAC-ICAB-CIQJ-URQQ-A4VQ-VYOH-X7AK-G7OP-AC77-ZTZF-DIVQ-7MTL-TDTI-2AWC-PI43-2VYG-MZQW-22LM-PEAC-ICAB-CIQM-5TAV-A7OB-3XLS-SWKR-YKII-RDYJ-LLNZ-ARGR-W46W-RV7K-FRXK-UHO2-OSI";

    #[test]
    fn known_answer_without_network() {
        let bytes = known_bytes(b"");
        assert_eq!(code(None).to_bytes().unwrap(), bytes);
        assert_eq!(InviteCode::from_bytes(&bytes).unwrap(), code(None));
        assert_eq!(code(None).encode().unwrap(), KNOWN_PLAIN);
        assert_eq!(KNOWN_PLAIN.len(), 186);
        assert_eq!(InviteCode::decode(KNOWN_PLAIN).unwrap(), code(None));
    }

    #[test]
    fn known_answer_go_layout_with_network() {
        let bytes = known_bytes(b"family");
        assert_eq!(code(Some("family")).to_bytes().unwrap(), bytes);
        let text = code(Some("family")).encode().unwrap();
        assert_eq!(text, KNOWN_NETWORK);
        let back = InviteCode::decode(KNOWN_NETWORK).unwrap();
        assert_eq!(back.network.as_ref().map(DnsLabel::as_str), Some("family"));
        assert_eq!(
            back.relay_addr().to_string(),
            format!("/ip4/203.0.113.7/tcp/7777/p2p/{RELAY}")
        );
        assert_eq!(back.inviter, peer(INVITER));
    }

    #[test]
    fn decoding_is_tolerant_of_case_dashes_and_whitespace() {
        let text = code(None).encode().unwrap();
        let messy = format!(
            "  {}\n",
            text.to_lowercase()
                .replace('-', " - ")
                .replacen(' ', "\r\n\t", 3)
        );
        assert_eq!(InviteCode::decode(&messy).unwrap(), code(None));
        assert_eq!(
            InviteCode::decode(&text.replace('-', "")).unwrap(),
            code(None)
        );
    }

    #[test]
    fn grouping_is_fours_joined_by_dashes() {
        let text = code(Some("family")).encode().unwrap();
        let groups: Vec<&str> = text.split('-').collect();
        assert!(groups[..groups.len() - 1].iter().all(|g| g.len() == 4));
        assert!((1..=4).contains(&groups.last().unwrap().len()));
        assert!(
            text.chars()
                .all(|c| c == '-' || c.is_ascii_uppercase() || ('2'..='7').contains(&c))
        );
        // About 186 characters for Ed25519 IDs (WIRE.md §5).
        assert!((150..=200).contains(&text.len()), "{}", text.len());
    }

    fn b32(bytes: &[u8]) -> String {
        BASE32_NOPAD.encode(bytes)
    }

    #[test]
    fn rejections() {
        use DecodeError::*;
        assert_eq!(InviteCode::decode(""), Err(Empty));
        assert_eq!(InviteCode::decode(" - \n"), Err(Empty));
        assert_eq!(
            InviteCode::decode("ABCD-EF1H"),
            Err(InvalidCharacter {
                found: '1',
                position: 8
            })
        );
        assert_eq!(
            InviteCode::decode("ABCD-EF=H"),
            Err(InvalidCharacter {
                found: '=',
                position: 8
            })
        );
        assert_eq!(InviteCode::decode("A"), Err(Base32));
        assert_eq!(
            InviteCode::decode(&b32(&[1; 15])),
            Err(TooShort { len: 15 })
        );
        let mut v = known_bytes(b"");
        v[0] = 2;
        assert_eq!(
            InviteCode::decode(&b32(&v)),
            Err(NewerVersion { version: 2 })
        );
        assert!(
            InviteCode::decode(&b32(&v))
                .unwrap_err()
                .to_string()
                .contains("please upgrade peerup")
        );
        v[0] = 0;
        assert_eq!(
            InviteCode::from_bytes(&v),
            Err(InvalidVersion { version: 0 })
        );
        let mut v = known_bytes(b"");
        v[13] = 0;
        v[14] = 0;
        assert_eq!(InviteCode::from_bytes(&v), Err(RelayPortZero));
        // Relay length past the end.
        let mut v = known_bytes(b"")[..16].to_vec();
        v[15] = 38;
        assert_eq!(
            InviteCode::from_bytes(&v),
            Err(Truncated {
                field: "relay peer ID"
            })
        );
        // Relay length one short: the relay multihash is not whole.
        let mut v = known_bytes(b"");
        v[15] = 37;
        assert_eq!(InviteCode::from_bytes(&v), Err(InvalidRelayPeerId));
        // Garbage relay multihash.
        let mut v = known_bytes(b"");
        v[16] = 0x55;
        assert_eq!(InviteCode::from_bytes(&v), Err(InvalidRelayPeerId));
        // No network length byte.
        let v = known_bytes(b"")[..16 + 38].to_vec();
        assert_eq!(
            InviteCode::from_bytes(&v),
            Err(Truncated {
                field: "network name length"
            })
        );
        // Network length over 63.
        let mut v = known_bytes(b"")[..16 + 38].to_vec();
        v.push(64);
        v.extend([b'a'; 64]);
        v.extend(mh(INVITER));
        assert_eq!(
            InviteCode::from_bytes(&v),
            Err(NetworkNameTooLong { len: 64 })
        );
        // Network name not a label.
        let v = known_bytes(b"Fam/ily");
        assert!(matches!(
            InviteCode::from_bytes(&v),
            Err(InvalidNetworkName(_))
        ));
        let v = known_bytes(&[0xff, 0xfe]);
        assert!(matches!(
            InviteCode::from_bytes(&v),
            Err(InvalidNetworkName(_))
        ));
        // Network length past the end.
        let mut v = known_bytes(b"")[..16 + 38].to_vec();
        v.push(10);
        v.extend(b"abc");
        assert_eq!(
            InviteCode::from_bytes(&v),
            Err(Truncated {
                field: "network name"
            })
        );
        // No inviter.
        let v = known_bytes(b"")[..16 + 38 + 1].to_vec();
        assert_eq!(
            InviteCode::from_bytes(&v),
            Err(Truncated {
                field: "inviter peer ID"
            })
        );
        // Trailing bytes after the inviter: not exactly one multihash.
        let mut v = known_bytes(b"");
        v.push(0);
        assert_eq!(InviteCode::from_bytes(&v), Err(InvalidInviterPeerId));
        // Inviter cut short.
        let v = known_bytes(b"");
        assert_eq!(
            InviteCode::from_bytes(&v[..v.len() - 1]),
            Err(InvalidInviterPeerId)
        );
    }

    #[test]
    fn debug_redacts_the_token() {
        let d = format!("{:?}", code(None));
        assert!(
            d.contains("<redacted>") && !d.contains("35") && !d.contains("0x01"),
            "{d}"
        );
    }

    #[test]
    fn builds_from_relay_addresses() {
        let v4: RelayAddr = format!("/ip4/203.0.113.7/tcp/7777/p2p/{RELAY}")
            .parse()
            .unwrap();
        let v6: RelayAddr = format!("/ip6/2001:db8::1/tcp/7777/p2p/{RELAY}")
            .parse()
            .unwrap();
        let quic: RelayAddr = format!("/ip4/203.0.113.7/udp/7777/quic-v1/p2p/{RELAY}")
            .parse()
            .unwrap();
        assert_eq!(pick_relay([&v6, &quic, &v4]), Some(&v4));
        assert_eq!(pick_relay([&v6, &quic]), None);
        let c = InviteCode::new(
            Token::from_bytes(*code(None).token.as_bytes()),
            &v4,
            None,
            peer(INVITER),
        )
        .unwrap();
        assert_eq!(c, code(None));
        assert!(matches!(
            InviteCode::new(Token::from_bytes([0; 8]), &v6, None, peer(INVITER)),
            Err(EncodeError::RelayNotIpv4Tcp { .. })
        ));
    }

    fn arb_peer() -> impl Strategy<Value = PeerId> {
        any::<[u8; 32]>().prop_map(|seed| {
            crate::identity::keypair_from_seed(seed)
                .public()
                .to_peer_id()
        })
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(
            token in any::<[u8; 8]>(), ip in any::<[u8; 4]>(), port in 1u16.., relay in arb_peer(),
            network in proptest::option::of("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"), inviter in arb_peer(),
        ) {
            let c = InviteCode {
                token: Token::from_bytes(token), relay_ip: Ipv4Addr::from(ip), relay_port: port, relay_peer: relay,
                network: network.map(|n| DnsLabel::new(&n).unwrap()), inviter,
            };
            let text = c.encode().unwrap();
            prop_assert_eq!(InviteCode::decode(&text).unwrap(), c.clone());
            prop_assert_eq!(InviteCode::from_bytes(&c.to_bytes().unwrap()).unwrap(), c);
        }

        #[test]
        fn decode_never_panics(text in ".{0,300}") {
            let _ = InviteCode::decode(&text);
        }

        #[test]
        fn from_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = InviteCode::from_bytes(&bytes);
        }
    }
}
