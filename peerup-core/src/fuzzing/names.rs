//! `peerup relay add` input and friendly names.

use std::collections::BTreeMap;

use multiaddr::Protocol;

use crate::naming::{Name, Names};
use crate::relay_addr::{self, RelayAddr, RelayInputError};
use crate::{Multiaddr, PeerId};

use super::*;

// ---------------------------------------------------------------------------
// relay_addr

/// `peerup relay add` input: the first byte picks the `--peer-id` (none or
/// one of two peers), the rest, lossily decoded, is the input. The input
/// is also parsed as a [`RelayAddr`], and the raw bytes as a binary
/// multiaddr.
///
/// # Panics
/// When an accepted input does not round-trip through its text form, does
/// not keep the given peer ID, or is not a valid relay address.
pub fn relay_addr(data: &[u8]) {
    let mut input = Input::new(data);
    let given = match input.u8() % 3 {
        0 => None,
        n => Some(peer(usize::from(n))),
    };
    let raw = input.rest();
    let text = String::from_utf8_lossy(raw);
    match relay_addr::parse_input(&text, given) {
        Ok(addr) => {
            check_relay_addr(&addr);
            if let Some(p) = given {
                assert_eq!(addr.peer_id(), p, "parse_input dropped --peer-id");
            }
            let shown = addr.to_string();
            assert_eq!(
                relay_addr::parse_input(&shown, None).as_ref(),
                Ok(&addr),
                "the text form does not parse back"
            );
            assert_eq!(
                relay_addr::parse_input(&shown, Some(addr.peer_id())).as_ref(),
                Ok(&addr),
                "the text form with its own --peer-id does not parse back"
            );
        }
        Err(RelayInputError::MissingPeerId { transport, .. }) => {
            assert!(given.is_none(), "MissingPeerId though --peer-id was given");
            assert!(
                !matches!(transport.iter().last(), Some(Protocol::P2p(_))),
                "MissingPeerId for an address ending in /p2p/"
            );
        }
        Err(RelayInputError::PeerIdMismatch {
            in_addr, given: g, ..
        }) => {
            assert_ne!(in_addr, g, "PeerIdMismatch of equal IDs");
        }
        Err(_) => {}
    }
    if let Ok(addr) = text.parse::<RelayAddr>() {
        check_relay_addr(&addr);
    }
    if let Ok(m) = Multiaddr::try_from(raw.to_vec())
        && let Ok(addr) = RelayAddr::new(m)
    {
        assert!(addr.multiaddr().iter().last() == Some(Protocol::P2p(addr.peer_id())));
    }
}

fn check_relay_addr(addr: &RelayAddr) {
    let back: RelayAddr = addr
        .to_string()
        .parse()
        .unwrap_or_else(|e| panic!("a relay address does not parse from its text: {e}"));
    assert_eq!(&back, addr, "a relay address changed through its text form");
    let protos: Vec<Protocol<'_>> = addr.multiaddr().iter().collect();
    assert_eq!(protos.last(), Some(&Protocol::P2p(addr.peer_id())));
    assert!(
        !protos.contains(&Protocol::P2pCircuit),
        "a circuit address was accepted"
    );
    let port = match (protos.get(1), protos.get(2)) {
        (Some(Protocol::Tcp(p)), _) | (Some(Protocol::Udp(p)), Some(Protocol::QuicV1)) => *p,
        _ => panic!("a relay address without a transport: {addr}"),
    };
    assert_ne!(port, 0, "a relay address with port 0: {addr}");
    assert_eq!(
        addr.transport().with(Protocol::P2p(addr.peer_id())),
        *addr.multiaddr()
    );
    let circuit = addr.circuit_to(peer(5));
    assert!(circuit.to_string().starts_with(&addr.to_string()));
}

// ---------------------------------------------------------------------------
// names

/// Friendly names and target resolution: a script of operations
/// (`Name::new`, `insert`, `remove`, `get`, `resolve`, `names_of`) on one
/// [`Names`], each with a text from the input, checked against the naming
/// rule and a `BTreeMap` model.
///
/// # Panics
/// When [`Name::new`] disagrees with the rule (1-63 of `A-Za-z0-9._-`,
/// starting with a letter or digit, never a full-length peer ID), or
/// [`Names`] disagrees with the model (a name first, then a peer ID).
pub fn names(data: &[u8]) {
    let mut input = Input::new(data);
    let mut names = Names::new();
    let mut model: BTreeMap<String, PeerId> = BTreeMap::new();
    while !input.is_empty() {
        let op = input.u8();
        let who = peer(input.below(4));
        let text = match (op / 8) % 4 {
            0 => who.to_string(),
            1 => format!(" {} ", ["home", "laptop", "12D3KooW"][input.below(3)]),
            _ => input.text(80),
        };
        check_name(&text);
        match op % 6 {
            0 => {
                if let Ok(n) = Name::new(&text) {
                    assert_eq!(names.insert(n, who), model.insert(text.clone(), who));
                }
            }
            1 => assert_eq!(names.remove(&text), model.remove(&text), "remove({text:?})"),
            2 => assert_eq!(names.get(&text), model.get(&text).copied(), "get({text:?})"),
            3 | 4 => {
                let trimmed = text.trim();
                let expected = match model.get(trimmed) {
                    Some(p) => Some(*p),
                    None => crate::identity::parse_peer_id_text(trimmed),
                };
                match names.resolve(&text) {
                    Ok(p) => assert_eq!(Some(p), expected, "resolve({text:?})"),
                    Err(e) => {
                        assert_eq!(expected, None, "resolve({text:?}) failed: {e}");
                        assert_eq!(e.target, crate::identity::excerpt(&text));
                        let known: Vec<String> = model.keys().cloned().collect();
                        assert_eq!(e.known, known, "the error lists other names");
                    }
                }
            }
            _ => {
                let of: Vec<&str> = names.names_of(&who).map(Name::as_str).collect();
                let want: Vec<&str> = model
                    .iter()
                    .filter(|(_, p)| **p == who)
                    .map(|(n, _)| n.as_str())
                    .collect();
                assert_eq!(of, want, "names_of");
            }
        }
        assert_eq!(names.len(), model.len());
        assert!(
            names
                .iter()
                .map(|(n, p)| (n.as_str(), *p))
                .eq(model.iter().map(|(n, p)| (n.as_str(), *p))),
            "the names map differs from the model"
        );
    }
}

/// Checks [`Name::new`] on `text` against the rule.
fn check_name(text: &str) {
    let charset = text
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphanumeric() || (i > 0 && matches!(c, '.' | '_' | '-')));
    let is_peer_id = text.len() >= 32 && crate::identity::parse_peer_id_text(text).is_some();
    let valid = !text.is_empty() && text.len() <= Name::MAX_LEN && charset && !is_peer_id;
    match Name::new(text) {
        Ok(n) => {
            assert!(valid, "Name::new accepted {text:?}");
            assert_eq!(n.as_str(), text);
            assert_eq!(n.to_string(), text);
            assert_eq!(text.parse::<Name>().as_ref(), Ok(&n));
        }
        Err(e) => assert!(!valid, "Name::new refused {text:?}: {e}"),
    }
}
