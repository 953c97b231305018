//! Relay pairing: the pairing code (invite code version 2, WIRE.md §13),
//! the `relay-pair` request and answer (§13), peer introductions (§14), and
//! the values pairing stores (`group=`, `hmac_proof=`, `verified=`, §15).

use std::collections::BTreeSet;

use data_encoding::BASE32_NOPAD;

use crate::authorized_keys::is_unsafe_char;
use crate::invite::code::{GROUP, group};
use crate::invite::pairing_code::{self, AnyCode, PairingCode, PairingToken};
use crate::invite::{DecodeError, InviteCode};
use crate::pairing::wire::{
    self, GroupId, IntroducedPeer, Introduction, Paired, PairedPeer, Proof, Request, Response,
};
use crate::relay_addr::RelayAddr;
use crate::verify;

use super::*;

// ---------------------------------------------------------------------------
// pairing_code

/// Pairing codes: the bytes go to [`AnyCode::from_bytes`] and, with the
/// first byte set to 2, to [`PairingCode::from_bytes`]; their base32 text
/// (grouped, then messed up with case and whitespace) to
/// [`AnyCode::decode`]; the bytes as text to `decode` as well.
///
/// # Panics
/// When a decoder accepts bytes that encoding does not give back, when
/// `AnyCode` disagrees with the decoder its first byte names, when the text
/// form decodes differently from the bytes, when a version-2 code outside
/// its bounds or with trailing bytes decodes, or when a decoded code does
/// not survive `encode`/`decode` or rebuilding from its relay address.
pub fn pairing_code(data: &[u8]) {
    let any = AnyCode::from_bytes(data);
    match data.first() {
        Some(&pairing_code::VERSION) => assert_eq!(
            any,
            PairingCode::from_bytes(data).map(AnyCode::Pairing),
            "AnyCode and PairingCode disagree on a version-2 code"
        ),
        _ => assert_eq!(
            any,
            InviteCode::from_bytes(data).map(AnyCode::Invite),
            "AnyCode and InviteCode disagree on a non-2 first byte"
        ),
    }
    if let Ok(code) = &any {
        let bytes = code
            .to_bytes()
            .unwrap_or_else(|e| panic!("a decoded code does not encode: {e}"));
        assert!(
            bytes == data,
            "AnyCode accepted bytes that to_bytes does not give back:\n{data:02x?}\n{bytes:02x?}"
        );
    }
    if !data.is_empty() {
        let text = group(&BASE32_NOPAD.encode(data));
        assert_eq!(
            AnyCode::decode(&text),
            any,
            "the text form decodes differently from the bytes: {text}"
        );
        let messy = format!("\t{}\n", text.to_lowercase().replace('-', "- \r\n"));
        assert_eq!(
            AnyCode::decode(&messy),
            any,
            "case and whitespace changed the decoding: {messy:?}"
        );
    }

    // The same bytes as a version-2 code, to reach past the version byte.
    let mut v2 = data.to_vec();
    if let Some(b) = v2.first_mut() {
        *b = pairing_code::VERSION;
    }
    match PairingCode::from_bytes(&v2) {
        Ok(code) => {
            check_pairing_code(&code);
            assert_eq!(
                code.to_bytes().ok().as_deref(),
                Some(v2.as_slice()),
                "from_bytes accepted bytes that to_bytes does not give back"
            );
        }
        Err(DecodeError::PairingCodeTooShort { len }) => {
            assert!(len < pairing_code::MIN_LEN && len == v2.len());
        }
        Err(DecodeError::TrailingBytes { len }) => {
            assert!(len > 0 && len < v2.len(), "TrailingBytes of {len}");
        }
        Err(_) => {}
    }
    if v2.len() > pairing_code::MAX_LEN {
        assert!(
            PairingCode::from_bytes(&v2).is_err(),
            "a code over MAX_LEN decoded"
        );
    }

    if let Ok(text) = core::str::from_utf8(data)
        && let Ok(AnyCode::Pairing(code)) = AnyCode::decode(text)
    {
        check_pairing_code(&code);
    }
}

fn check_pairing_code(code: &PairingCode) {
    assert_ne!(code.relay_port, 0, "a code with relay port 0 decoded");
    let bytes = code
        .to_bytes()
        .unwrap_or_else(|e| panic!("a decoded pairing code does not encode: {e}"));
    assert!(
        (pairing_code::MIN_LEN..=pairing_code::MAX_LEN).contains(&bytes.len()),
        "a pairing code of {} bytes",
        bytes.len()
    );
    assert_eq!(
        PairingCode::from_bytes(&bytes).as_ref(),
        Ok(code),
        "from_bytes(to_bytes(c)) != c"
    );
    let text = code
        .encode()
        .unwrap_or_else(|e| panic!("a decoded pairing code does not encode: {e}"));
    assert!(
        text.split('-').all(|g| (1..=GROUP).contains(&g.len()))
            && text
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)),
        "encode wrote an odd text: {text}"
    );
    assert_eq!(
        AnyCode::decode(&text),
        Ok(AnyCode::Pairing(code.clone())),
        "decode(encode(c)) != c"
    );
    let relay = RelayAddr::new(code.relay_addr())
        .unwrap_or_else(|e| panic!("a decoded code carries an unusable relay address: {e}"));
    let rebuilt = PairingCode::new(code.token.clone(), &relay, code.network.clone())
        .unwrap_or_else(|e| panic!("PairingCode::new refused a decoded code's relay: {e}"));
    assert_eq!(&rebuilt, code, "PairingCode::new built another code");
}

// ---------------------------------------------------------------------------
// relay_pair

/// The `relay-pair` stream (WIRE.md §13). The whole input is decoded as a
/// request (what a joiner sends the relay) and as an answer (what the relay
/// sends a joiner), and, when it is text, as a group ID. Then it is read as
/// a script that builds an answer and a request (peers from a fixed pool,
/// names and a group ID from the input) for the round trip.
///
/// # Panics
/// When a decoder accepts non-canonical bytes, a message over its bound,
/// an answer that breaks its rules (as many peers as the group size, a
/// peer twice, a bad name), when a strict prefix of an accepted message is
/// not reported as truncated, or when an encodable message does not decode
/// to itself.
pub fn relay_pair(data: &[u8]) {
    if let Ok(request) = Request::decode(data) {
        check_request(&request, data);
    }
    if let Ok(response) = Response::decode(data) {
        check_response(&response, data);
    }
    if let Ok(text) = core::str::from_utf8(data)
        && let Ok(id) = GroupId::new(text)
    {
        assert_eq!(id.as_str(), text, "GroupId changed its text");
        check_group_id(&id);
    }

    let mut input = Input::new(data);
    let request = Request {
        token: PairingToken::from_bytes(input.array()),
        name: input.text(80),
    };
    match request.encode() {
        Ok(bytes) => {
            assert_eq!(bytes.len(), request.encoded_len());
            assert_eq!(
                Request::decode(&bytes).as_ref(),
                Ok(&request),
                "decode(encode(r)) != r"
            );
        }
        Err(e) => {
            assert!(
                matches!(e, wire::EncodeError::InvalidName(_)),
                "encode refused a request: {e}"
            );
            assert!(
                request.name.len() > wire::MAX_NAME_LEN
                    || request
                        .name
                        .chars()
                        .any(|c| c.is_control() || is_unsafe_char(c)),
                "encode refused a valid name {:?}: {e}",
                request.name
            );
        }
    }
    let response = if input.bool() {
        Response::Failed {
            message: input.text(40),
        }
    } else {
        let group = pick_group(&mut input);
        let group_size = input.u8();
        let count = input.below(12);
        let peers = (0..count)
            .map(|_| PairedPeer {
                peer: peer(input.below(POOL)),
                name: input.text(70),
            })
            .collect();
        Response::Paired(Paired {
            group,
            group_size,
            peers,
        })
    };
    if let Ok(bytes) = response.encode() {
        assert_eq!(bytes.len(), response.encoded_len());
        assert_eq!(
            Response::decode(&bytes).as_ref(),
            Ok(&response),
            "decode(encode(r)) != r"
        );
        check_response(&response, &bytes);
    }
}

fn check_request(request: &Request, data: &[u8]) {
    assert!(data.len() <= Request::MAX_LEN, "a request over MAX_LEN");
    assert_eq!(
        request.encode().ok().as_deref(),
        Some(data),
        "Request::decode accepted non-canonical bytes"
    );
    check_name(&request.name, wire::MAX_NAME_LEN);
    for cut in [0, data.len() / 2, data.len() - 1] {
        match Request::decode(&data[..cut]) {
            Err(e) => assert!(e.is_truncated(), "a prefix of a request: {e}"),
            Ok(m) => panic!("a strict prefix of a request decoded: {m:?}"),
        }
    }
}

fn check_response(response: &Response, data: &[u8]) {
    assert!(data.len() <= Response::MAX_LEN, "an answer over MAX_LEN");
    assert_eq!(
        response.encode().ok().as_deref(),
        Some(data),
        "Response::decode accepted non-canonical bytes"
    );
    match response {
        Response::Failed { message } => {
            assert!(
                message.bytes().all(|b| (0x20..=0x7e).contains(&b)),
                "a failure message with unprintable bytes: {message:?}"
            );
        }
        Response::Paired(p) => {
            check_group_id(&p.group);
            check_list(p.group_size, p.peers.iter().map(|p| p.peer));
            for peer in &p.peers {
                check_name(&peer.name, wire::MAX_NAME_LEN);
            }
        }
    }
    for cut in [0, data.len() / 2, data.len() - 1] {
        match Response::decode(&data[..cut]) {
            Err(e) => assert!(e.is_truncated(), "a prefix of an answer: {e}"),
            Ok(m) => panic!("a strict prefix of an answer decoded: {m:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// peer_notify

/// Peer introductions (WIRE.md §14). The whole input is decoded as an
/// introduction (what a relay sends a node), and, when it is text, as an
/// `hmac_proof=` and a `verified=` value. Then it is read as a script that
/// builds an introduction (peers from a fixed pool, names, proofs and a
/// group ID from the input) for the round trip.
///
/// # Panics
/// When the decoder accepts non-canonical bytes, a message over its bound,
/// an introduction that breaks its rules, when a strict prefix of an
/// accepted introduction is not reported as truncated, when an encodable
/// introduction does not decode to itself, when a proof's hex does not
/// round-trip, or when a `verified=` value matches a pair it was not made
/// for.
pub fn peer_notify(data: &[u8]) {
    if let Ok(intro) = Introduction::decode(data) {
        check_introduction(&intro, data);
    }
    if let Ok(text) = core::str::from_utf8(data) {
        if let Ok(proof) = Proof::from_hex(text) {
            assert!(
                proof.to_hex().eq_ignore_ascii_case(text),
                "a proof's hex changed"
            );
        }
        let code = verify::Code::new(&peer(0), &peer(1));
        if code.matches_verified(text) {
            assert!(
                text.eq_ignore_ascii_case(&code.verified_value()),
                "verified={text:?} matched another pair's code"
            );
            assert!(
                crate::authorized_keys::Attributes::new()
                    .with("verified", text)
                    .is_ok(),
                "a matching verified= value is not a valid attribute"
            );
        }
    }

    let mut input = Input::new(data);
    let group = pick_group(&mut input);
    let group_size = input.u8();
    let count = input.below(12);
    let peers = (0..count)
        .map(|_| {
            let peer = peer(input.below(POOL));
            let name = input.text(255);
            let proof = match input.below(3) {
                0 => None,
                1 => Some(Proof::compute(
                    &PairingToken::from_bytes(input.array()),
                    &group,
                )),
                _ => Some(Proof::from_bytes(input.array())),
            };
            IntroducedPeer { peer, name, proof }
        })
        .collect();
    let intro = Introduction {
        group,
        group_size,
        peers,
    };
    if let Ok(bytes) = intro.encode() {
        assert_eq!(bytes.len(), intro.encoded_len());
        let back = Introduction::decode(&bytes)
            .unwrap_or_else(|e| panic!("an encoded introduction does not decode: {e}"));
        // An all-zero proof is written as absent.
        let mut want = intro.clone();
        for p in &mut want.peers {
            p.proof = p.proof.filter(|p| p.as_bytes() != &[0; wire::PROOF_LEN]);
        }
        assert_eq!(back, want, "decode(encode(i)) != i");
        check_introduction(&back, &bytes);
    }
}

fn check_introduction(intro: &Introduction, data: &[u8]) {
    assert!(
        data.len() <= Introduction::MAX_LEN,
        "an introduction over MAX_LEN"
    );
    assert_eq!(
        intro.encode().ok().as_deref(),
        Some(data),
        "Introduction::decode accepted non-canonical bytes"
    );
    check_group_id(&intro.group);
    check_list(intro.group_size, intro.peers.iter().map(|p| p.peer));
    for p in &intro.peers {
        check_name(&p.name, wire::MAX_INTRODUCED_NAME_LEN);
        assert!(
            p.proof
                .is_none_or(|proof| proof.as_bytes() != &[0; wire::PROOF_LEN]),
            "a zero proof decoded as present"
        );
    }
    for cut in [0, data.len() / 2, data.len() - 1] {
        match Introduction::decode(&data[..cut]) {
            Err(e) => assert!(e.is_truncated(), "a prefix of an introduction: {e}"),
            Ok(m) => panic!("a strict prefix of an introduction decoded: {m:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Shared checks

/// A group ID from the input: usually a valid one, sometimes raw text.
fn pick_group(input: &mut Input<'_>) -> GroupId {
    match input.below(4) {
        0 => GroupId::from_random(input.array()),
        1 => GroupId::new(&input.text(70)).unwrap_or_else(|_| GroupId::from_random([0; 4])),
        2 => GroupId::new("ab12cd34").unwrap_or_else(|_| GroupId::from_random([1; 4])),
        _ => GroupId::new(&"g".repeat(GroupId::MAX_LEN))
            .unwrap_or_else(|_| GroupId::from_random([2; 4])),
    }
}

fn check_group_id(id: &GroupId) {
    let text = id.as_str();
    assert!(
        !text.is_empty()
            && text.len() <= GroupId::MAX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')),
        "an invalid group ID was accepted: {text:?}"
    );
    assert!(
        crate::authorized_keys::Attributes::new()
            .with("group", text)
            .is_ok(),
        "group ID {text:?} is not a valid group= value"
    );
}

fn check_list(group_size: u8, peers: impl ExactSizeIterator<Item = PeerId>) {
    assert!(group_size > 0, "group size 0 accepted");
    assert!(
        peers.len() < usize::from(group_size),
        "{} peers in a group of {group_size}",
        peers.len()
    );
    let mut seen = BTreeSet::new();
    for p in peers {
        assert!(seen.insert(p), "peer {p} listed twice");
    }
}

fn check_name(name: &str, max: usize) {
    assert!(name.len() <= max, "a name of {} bytes", name.len());
    assert!(
        crate::authorized_keys::render_entry(&peer(0), &Default::default(), Some(name)).is_ok(),
        "name {name:?} is not a valid authorized_keys comment"
    );
    assert!(
        !name.chars().any(char::is_control),
        "a name with a control character: {name:?}"
    );
}
