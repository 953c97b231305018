//! Invite code version 2: the relay pairing code (WIRE.md §13),
//! byte-compatible with Go peer-up's `EncodeV2`/`decodeV2`.
//!
//! ```text
//! [0x02][token: 16][IPv4: 4][port: u16 BE][u8 len][relay peer ID multihash]
//! [u8 len 0..63][network name, may be empty]
//! ```
//!
//! No inviter: the relay operator made the code, and the joiner pairs with
//! the relay (`/peerup/relay-pair/1.0.0`, [`crate::pairing::wire`]). Every
//! field has a length, so bytes after the network name are refused, unlike
//! version 1 whose inviter ID runs to the end. At least [`MIN_LEN`] bytes.
//!
//! The text form is version 1's ([`super::code`]): base32 in dash-joined
//! groups of four, decoded tolerant of case, dashes and whitespace.
//! [`AnyCode`] reads either version and tells them apart by the first byte;
//! a version above 2 is "newer than supported; please upgrade peerup".
//!
//! The 16-byte [`PairingToken`] is the code's secret, as version 1's
//! [`Token`](super::Token): zeroized on drop, compared in constant time,
//! redacted from `Debug` (a [`PairingCode`]'s `Debug` shows no token
//! either). Never log a code's text.

use core::fmt;
use core::net::Ipv4Addr;

use multiaddr::Protocol;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::code::{
    self, DecodeError, EncodeError, InviteCode, bytes_to_text, ipv4_tcp, network_name,
    text_to_bytes,
};
use crate::relay_addr::RelayAddr;
use crate::wire::label::DnsLabel;
use crate::{Multiaddr, PeerId};

/// The version byte of a pairing code.
pub const VERSION: u8 = 2;

/// Bytes in a [`PairingToken`].
pub const TOKEN_LEN: usize = 16;

/// Shortest byte string that can be a pairing code: version, token, IPv4,
/// port and the relay ID length byte.
pub const MIN_LEN: usize = 1 + TOKEN_LEN + 4 + 2 + 1;

/// Longest byte string that can be a pairing code: a 255-byte relay ID and
/// a 63-byte network name (real codes are about 66 bytes).
pub const MAX_LEN: usize = MIN_LEN + 255 + 1 + DnsLabel::MAX_LEN;

/// A pairing code's one-time secret, 16 random bytes. The relay keeps only
/// its SHA-256; the joiner proves it holds the token by sending it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PairingToken([u8; TOKEN_LEN]);

impl PairingToken {
    /// Wraps 16 random bytes the caller took from the OS.
    pub fn from_bytes(bytes: [u8; TOKEN_LEN]) -> Self {
        PairingToken(bytes)
    }

    /// The raw bytes (sent to the relay, and the HMAC key of the group
    /// proof).
    pub fn as_bytes(&self) -> &[u8; TOKEN_LEN] {
        &self.0
    }
}

impl PartialEq for PairingToken {
    /// Constant time.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for PairingToken {}

impl fmt::Debug for PairingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairingToken(<redacted>)")
    }
}

/// A decoded relay pairing code: everything a joiner needs to pair with
/// the relay.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingCode {
    /// The one-time secret.
    pub token: PairingToken,
    /// The relay's IPv4 address.
    pub relay_ip: Ipv4Addr,
    /// The relay's TCP port.
    pub relay_port: u16,
    /// The relay's peer ID.
    pub relay_peer: PeerId,
    /// The network (`discovery.network`) of the group, if any.
    pub network: Option<DnsLabel>,
}

impl fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PairingCode")
            .field("token", &self.token)
            .field("relay", &self.relay_addr().to_string())
            .field("network", &self.network)
            .finish()
    }
}

impl PairingCode {
    /// Builds a pairing code for the relay at `relay`.
    ///
    /// # Errors
    /// [`EncodeError::RelayNotIpv4Tcp`] unless the relay address is
    /// `/ip4/<ip>/tcp/<port>/p2p/<id>`; use
    /// [`pick_relay`](super::code::pick_relay) to choose one.
    pub fn new(
        token: PairingToken,
        relay: &RelayAddr,
        network: Option<DnsLabel>,
    ) -> Result<Self, EncodeError> {
        let (ip, port) =
            ipv4_tcp(relay.multiaddr()).ok_or_else(|| EncodeError::RelayNotIpv4Tcp {
                addr: relay.to_string(),
            })?;
        Ok(PairingCode {
            token,
            relay_ip: ip,
            relay_port: port,
            relay_peer: relay.peer_id(),
            network,
        })
    }

    /// The relay address the code carries:
    /// `/ip4/<ip>/tcp/<port>/p2p/<relay>`.
    pub fn relay_addr(&self) -> Multiaddr {
        Multiaddr::from(self.relay_ip)
            .with(Protocol::Tcp(self.relay_port))
            .with(Protocol::P2p(self.relay_peer))
    }

    /// The binary form (WIRE.md §13).
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
        let mut out = Vec::with_capacity(MIN_LEN + relay.len() + 1 + network.len());
        out.push(VERSION);
        out.extend_from_slice(self.token.as_bytes());
        out.extend_from_slice(&self.relay_ip.octets());
        out.extend_from_slice(&self.relay_port.to_be_bytes());
        out.push(relay_len);
        out.extend_from_slice(&relay);
        // A DNS label is at most 63 bytes.
        out.push(network.len() as u8);
        out.extend_from_slice(network);
        Ok(out)
    }

    /// Parses the binary form.
    ///
    /// # Errors
    /// [`DecodeError`] naming the first problem: a version other than 2
    /// ([`DecodeError::UnexpectedVersion`] for a version-1 invite,
    /// [`DecodeError::NewerVersion`] above 2), fewer than [`MIN_LEN`]
    /// bytes, a length past the end, a relay ID that is not exactly one
    /// valid multihash, a network name that is not a DNS label, relay port
    /// 0, or bytes after the network name.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, DecodeError> {
        match raw.first() {
            None | Some(&VERSION) => {}
            Some(0) => return Err(DecodeError::InvalidVersion { version: 0 }),
            Some(&code::VERSION) => {
                return Err(DecodeError::UnexpectedVersion {
                    version: code::VERSION,
                    expected: VERSION,
                });
            }
            Some(&v) => return Err(DecodeError::NewerVersion { version: v }),
        }
        let Some((head, rest)) = raw.split_first_chunk::<MIN_LEN>() else {
            return Err(DecodeError::PairingCodeTooShort { len: raw.len() });
        };
        let mut token = [0u8; TOKEN_LEN];
        token.copy_from_slice(&head[1..=TOKEN_LEN]);
        let token = PairingToken(token);
        let relay_ip = Ipv4Addr::new(head[17], head[18], head[19], head[20]);
        let relay_port = u16::from_be_bytes([head[21], head[22]]);
        if relay_port == 0 {
            return Err(DecodeError::RelayPortZero);
        }
        let relay_len = usize::from(head[23]);
        let relay_bytes = rest.get(..relay_len).ok_or(DecodeError::Truncated {
            field: "relay peer ID",
        })?;
        // `PeerId::from_bytes` rejects trailing bytes: exactly one multihash.
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
        let trailing = rest.len() - net_len;
        if trailing > 0 {
            return Err(DecodeError::TrailingBytes { len: trailing });
        }
        Ok(PairingCode {
            token,
            relay_ip,
            relay_port,
            relay_peer,
            network,
        })
    }

    /// The text form: base32 in dash-joined groups of four.
    ///
    /// # Errors
    /// As [`PairingCode::to_bytes`].
    pub fn encode(&self) -> Result<String, EncodeError> {
        Ok(bytes_to_text(&self.to_bytes()?))
    }

    /// Parses the text form, tolerant of case, dashes and whitespace.
    ///
    /// # Errors
    /// [`DecodeError`] naming the first problem, as
    /// [`PairingCode::from_bytes`] and for the text as
    /// [`InviteCode::decode`].
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        PairingCode::from_bytes(&text_to_bytes(text)?)
    }
}

/// A code of either version, told apart by its first byte: what
/// `peerup join` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyCode {
    /// Version 1: an invite from a peer (WIRE.md §5, §6).
    Invite(InviteCode),
    /// Version 2: a relay pairing code (WIRE.md §13).
    Pairing(PairingCode),
}

impl AnyCode {
    /// Parses the binary form of either version.
    ///
    /// # Errors
    /// [`DecodeError`] of the version the first byte names:
    /// [`PairingCode::from_bytes`] for 2, else [`InviteCode::from_bytes`]
    /// (fewer than 16 bytes, version 0, or
    /// [`DecodeError::NewerVersion`] for a version above 2).
    pub fn from_bytes(raw: &[u8]) -> Result<Self, DecodeError> {
        match raw.first() {
            Some(&VERSION) => PairingCode::from_bytes(raw).map(AnyCode::Pairing),
            _ => InviteCode::from_bytes(raw).map(AnyCode::Invite),
        }
    }

    /// Parses the text form of either version.
    ///
    /// # Errors
    /// As [`AnyCode::from_bytes`], and for the text as
    /// [`InviteCode::decode`].
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        AnyCode::from_bytes(&text_to_bytes(text)?)
    }

    /// The binary form.
    ///
    /// # Errors
    /// As the version's `to_bytes`.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        match self {
            AnyCode::Invite(c) => c.to_bytes(),
            AnyCode::Pairing(c) => c.to_bytes(),
        }
    }

    /// The text form.
    ///
    /// # Errors
    /// As the version's `encode`.
    pub fn encode(&self) -> Result<String, EncodeError> {
        Ok(bytes_to_text(&self.to_bytes()?))
    }

    /// The version byte: 1 or 2.
    pub fn version(&self) -> u8 {
        match self {
            AnyCode::Invite(_) => code::VERSION,
            AnyCode::Pairing(_) => VERSION,
        }
    }

    /// The relay address the code carries.
    pub fn relay_addr(&self) -> Multiaddr {
        match self {
            AnyCode::Invite(c) => c.relay_addr(),
            AnyCode::Pairing(c) => c.relay_addr(),
        }
    }

    /// The network the code names, if any.
    pub fn network(&self) -> Option<&DnsLabel> {
        match self {
            AnyCode::Invite(c) => c.network.as_ref(),
            AnyCode::Pairing(c) => c.network.as_ref(),
        }
    }
}

impl From<InviteCode> for AnyCode {
    fn from(code: InviteCode) -> Self {
        AnyCode::Invite(code)
    }
}

impl From<PairingCode> for AnyCode {
    fn from(code: PairingCode) -> Self {
        AnyCode::Pairing(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invite::Token;
    use data_encoding::BASE32_NOPAD;
    use proptest::prelude::*;

    const RELAY: &str = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
    const INVITER: &str = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA";
    /// The relay of Go peer-up's `internal/invite/code_test.go`.
    const GO_RELAY: &str = "12D3KooWRzaGMTqQbRHNMZkAYj8ALUXoK99qSjhiFLanDoVWK9An";

    fn peer(s: &str) -> PeerId {
        s.parse().unwrap()
    }

    fn token() -> PairingToken {
        PairingToken::from_bytes(core::array::from_fn(|i| i as u8 + 1))
    }

    fn code(network: Option<&str>) -> PairingCode {
        PairingCode {
            token: token(),
            relay_ip: Ipv4Addr::new(203, 0, 113, 7),
            relay_port: 7777,
            relay_peer: peer(RELAY),
            network: network.map(|n| DnsLabel::new(n).unwrap()),
        }
    }

    /// The multihash bytes of a peer ID, decoded by hand from base58.
    fn mh(s: &str) -> Vec<u8> {
        bs58::decode(s).into_vec().unwrap()
    }

    /// WIRE.md §13, assembled field by field.
    fn known_bytes(network: &[u8]) -> Vec<u8> {
        let mut v = vec![0x02];
        v.extend(1..=16u8);
        v.extend([203, 0, 113, 7]);
        v.extend([0x1e, 0x61]); // 7777
        let relay = mh(RELAY);
        v.push(relay.len() as u8);
        v.extend(relay);
        v.push(network.len() as u8);
        v.extend(network);
        v
    }

    fn b32(bytes: &[u8]) -> String {
        BASE32_NOPAD.encode(bytes)
    }

    #[test]
    fn layout_field_by_field() {
        for net in [None, Some("family")] {
            let bytes = known_bytes(net.unwrap_or("").as_bytes());
            assert_eq!(code(net).to_bytes().unwrap(), bytes);
            assert_eq!(PairingCode::from_bytes(&bytes).unwrap(), code(net));
            let text = code(net).encode().unwrap();
            assert_eq!(PairingCode::decode(&text).unwrap(), code(net));
            assert_eq!(AnyCode::decode(&text).unwrap(), AnyCode::Pairing(code(net)));
        }
        assert_eq!(known_bytes(b"").len(), MIN_LEN + 38 + 1);
    }

    /// Go's `TestV2EncodeDecodeRoundTrip` and `TestV2ShorterThanV1`: token
    /// 1..=16, relay 203.0.113.50:7777; a v2 code is shorter than a v1 code
    /// for the same relay (8 more token bytes, no 38-byte inviter).
    #[test]
    fn go_test_inputs() {
        let relay: RelayAddr = format!("/ip4/203.0.113.50/tcp/7777/p2p/{GO_RELAY}")
            .parse()
            .unwrap();
        let v2 = PairingCode::new(token(), &relay, None).unwrap();
        let text = v2.encode().unwrap();
        let back = AnyCode::decode(&text).unwrap();
        assert_eq!(back.version(), 2);
        let AnyCode::Pairing(back) = back else {
            panic!("not a pairing code")
        };
        assert_eq!(
            back.token.as_bytes(),
            &core::array::from_fn(|i| i as u8 + 1)
        );
        assert_eq!(back.network, None);
        assert_eq!(
            back.relay_addr().to_string(),
            format!("/ip4/203.0.113.50/tcp/7777/p2p/{GO_RELAY}")
        );
        let v1 = InviteCode::new(
            Token::from_bytes([1, 2, 3, 4, 5, 6, 7, 8]),
            &relay,
            None,
            peer(INVITER),
        )
        .unwrap();
        assert!(text.len() < v1.encode().unwrap().len());
        // `TestV2RejectsTrailingJunk`: four more base32 characters.
        assert!(AnyCode::decode(&format!("{text}AAAA")).is_err());
        // `TestDecodeFutureVersion`: 30 bytes, version 3.
        let mut raw = [0u8; 30];
        raw[0] = 3;
        let e = AnyCode::decode(&b32(&raw)).unwrap_err();
        assert_eq!(e, DecodeError::NewerVersion { version: 3 });
        assert!(
            e.to_string()
                .contains("newer than supported; please upgrade peerup")
        );
    }

    #[test]
    fn any_code_tells_versions_apart() {
        let v1 = InviteCode {
            token: Token::from_bytes([9; 8]),
            relay_ip: Ipv4Addr::new(203, 0, 113, 7),
            relay_port: 7777,
            relay_peer: peer(RELAY),
            network: None,
            inviter: peer(INVITER),
        };
        let text = v1.encode().unwrap();
        assert_eq!(AnyCode::decode(&text).unwrap(), AnyCode::Invite(v1.clone()));
        assert_eq!(
            PairingCode::decode(&text),
            Err(DecodeError::UnexpectedVersion {
                version: 1,
                expected: 2
            })
        );
        let any = AnyCode::from(code(Some("family")));
        assert_eq!(
            any.encode().unwrap(),
            code(Some("family")).encode().unwrap()
        );
        assert_eq!(any.network().map(DnsLabel::as_str), Some("family"));
        assert_eq!(AnyCode::from(v1.clone()).relay_addr(), v1.relay_addr());
        assert_eq!(AnyCode::from(v1).version(), 1);
    }

    #[test]
    fn rejections() {
        use DecodeError::*;
        assert_eq!(PairingCode::decode(""), Err(Empty));
        assert_eq!(
            PairingCode::from_bytes(&[]),
            Err(PairingCodeTooShort { len: 0 })
        );
        let full = known_bytes(b"");
        for len in 1..MIN_LEN {
            assert_eq!(
                PairingCode::from_bytes(&full[..len]),
                Err(PairingCodeTooShort { len })
            );
            assert_eq!(
                AnyCode::from_bytes(&full[..len]),
                Err(PairingCodeTooShort { len })
            );
        }
        // Below 16 bytes, a non-2 first byte gets version 1's answer.
        assert_eq!(AnyCode::from_bytes(&[1; 15]), Err(TooShort { len: 15 }));
        assert_eq!(AnyCode::from_bytes(&[7; 15]), Err(TooShort { len: 15 }));
        let mut v = full.clone();
        v[0] = 0;
        assert_eq!(
            PairingCode::from_bytes(&v),
            Err(InvalidVersion { version: 0 })
        );
        assert_eq!(AnyCode::from_bytes(&v), Err(InvalidVersion { version: 0 }));
        v[0] = 3;
        assert_eq!(
            PairingCode::from_bytes(&v),
            Err(NewerVersion { version: 3 })
        );
        assert_eq!(AnyCode::from_bytes(&v), Err(NewerVersion { version: 3 }));
        v[0] = 255;
        assert_eq!(AnyCode::from_bytes(&v), Err(NewerVersion { version: 255 }));
        let mut v = full.clone();
        v[21] = 0;
        v[22] = 0;
        assert_eq!(PairingCode::from_bytes(&v), Err(RelayPortZero));
        // Relay length past the end.
        let mut v = full[..MIN_LEN].to_vec();
        v[MIN_LEN - 1] = 38;
        assert_eq!(
            PairingCode::from_bytes(&v),
            Err(Truncated {
                field: "relay peer ID"
            })
        );
        // Relay length one short, or garbage: not one whole multihash.
        let mut v = full.clone();
        v[MIN_LEN - 1] = 37;
        assert_eq!(PairingCode::from_bytes(&v), Err(InvalidRelayPeerId));
        let mut v = full.clone();
        v[MIN_LEN] = 0x55;
        assert_eq!(PairingCode::from_bytes(&v), Err(InvalidRelayPeerId));
        // No network length byte.
        assert_eq!(
            PairingCode::from_bytes(&full[..full.len() - 1]),
            Err(Truncated {
                field: "network name length"
            })
        );
        // Network length over 63, past the end, not a label.
        let mut v = full.clone();
        *v.last_mut().unwrap() = 64;
        v.extend([b'a'; 64]);
        assert_eq!(
            PairingCode::from_bytes(&v),
            Err(NetworkNameTooLong { len: 64 })
        );
        let mut v = full.clone();
        *v.last_mut().unwrap() = 10;
        v.extend(b"abc");
        assert_eq!(
            PairingCode::from_bytes(&v),
            Err(Truncated {
                field: "network name"
            })
        );
        assert!(matches!(
            PairingCode::from_bytes(&known_bytes(b"Fam/ily")),
            Err(InvalidNetworkName(_))
        ));
        assert!(matches!(
            PairingCode::from_bytes(&known_bytes(&[0xff, 0xfe])),
            Err(InvalidNetworkName(_))
        ));
        // Trailing bytes: after no network, and after a network.
        let mut v = full.clone();
        v.push(0);
        assert_eq!(PairingCode::from_bytes(&v), Err(TrailingBytes { len: 1 }));
        let mut v = known_bytes(b"family");
        v.extend(mh(INVITER));
        assert_eq!(PairingCode::from_bytes(&v), Err(TrailingBytes { len: 38 }));
        assert!(
            PairingCode::from_bytes(&v)
                .unwrap_err()
                .to_string()
                .contains("38 unexpected bytes")
        );
    }

    #[test]
    fn longest_code_fits_max_len() {
        let mut v = known_bytes(&[b'a'; 63]);
        assert!(v.len() <= MAX_LEN);
        assert!(PairingCode::from_bytes(&v).is_ok());
        v.truncate(MIN_LEN);
        assert_eq!(MAX_LEN, 24 + 255 + 1 + 63);
    }

    #[test]
    fn debug_redacts_the_token() {
        let c = PairingCode {
            token: PairingToken::from_bytes([0xab; 16]),
            ..code(None)
        };
        let d = format!("{c:?} {:?}", AnyCode::from(c.clone()));
        assert!(d.contains("<redacted>"), "{d}");
        assert!(
            !d.contains("171") && !d.to_lowercase().contains("abab"),
            "{d}"
        );
    }

    #[test]
    fn tokens_compare_by_value() {
        assert_eq!(
            PairingToken::from_bytes([1; 16]),
            PairingToken::from_bytes([1; 16])
        );
        assert_ne!(
            PairingToken::from_bytes([1; 16]),
            PairingToken::from_bytes([2; 16])
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
        assert_eq!(PairingCode::new(token(), &v4, None).unwrap(), code(None));
        assert!(matches!(
            PairingCode::new(token(), &v6, None),
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
            token in any::<[u8; 16]>(), ip in any::<[u8; 4]>(), port in 1u16.., relay in arb_peer(),
            network in proptest::option::of("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"),
        ) {
            let c = PairingCode {
                token: PairingToken::from_bytes(token), relay_ip: Ipv4Addr::from(ip), relay_port: port,
                relay_peer: relay, network: network.map(|n| DnsLabel::new(&n).unwrap()),
            };
            let bytes = c.to_bytes().unwrap();
            prop_assert!(bytes.len() >= MIN_LEN && bytes.len() <= MAX_LEN);
            prop_assert_eq!(PairingCode::from_bytes(&bytes).unwrap(), c.clone());
            let text = c.encode().unwrap();
            prop_assert_eq!(PairingCode::decode(&text).unwrap(), c.clone());
            prop_assert_eq!(AnyCode::decode(&text).unwrap(), AnyCode::Pairing(c));
        }

        #[test]
        fn decode_never_panics(text in ".{0,300}") {
            let _ = AnyCode::decode(&text);
            let _ = PairingCode::decode(&text);
        }

        #[test]
        fn from_bytes_never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = AnyCode::from_bytes(&bytes);
            if let Some(b) = bytes.first_mut() {
                *b = VERSION;
            }
            let _ = PairingCode::from_bytes(&bytes);
        }
    }
}
