//! The relay pairing formats (WIRE.md §13-§15) produce and accept exactly
//! the bytes an independent implementation computes
//! (`tests/vectors/relay_pairing.py`: the Python standard library, peer IDs
//! built by hand from RFC 8032 arithmetic, not this crate).

use std::net::Ipv4Addr;

use peerup_core::PeerId;
use peerup_core::identity::keypair_from_seed;
use peerup_core::invite::{AnyCode, PairingCode, PairingToken};
use peerup_core::pairing::wire::{
    GroupId, IntroducedPeer, Introduction, Paired, PairedPeer, Proof, Request, Response,
};
use peerup_core::verify::{Code, EMOJI};
use peerup_core::wire::DnsLabel;
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/relay_pairing.json")).unwrap()
}

fn list<'a>(v: &'a Value, field: &str) -> &'a Vec<Value> {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("missing {field}"))
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("missing {field}"))
}

fn bytes(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(text(v, field)).unwrap()
}

fn array<const N: usize>(v: &Value, field: &str) -> [u8; N] {
    bytes(v, field).try_into().unwrap()
}

fn num(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("missing {field}"))
}

fn peer(text: &str) -> PeerId {
    text.parse().unwrap()
}

fn group(v: &Value) -> GroupId {
    GroupId::new(text(v, "group")).unwrap()
}

#[test]
fn peer_ids_built_by_hand_are_the_crates() {
    for p in list(&vectors(), "peers") {
        let id = peer(text(p, "text"));
        assert_eq!(id.to_bytes(), bytes(p, "bytes"));
        assert_eq!(PeerId::from_bytes(&bytes(p, "bytes")).unwrap(), id);
        if let Some(seed) = p["seed"].as_u64() {
            // The Python RFC 8032 arithmetic agrees with ed25519-dalek.
            let ours = keypair_from_seed([seed as u8; 32]).public().to_peer_id();
            assert_eq!(ours, id, "seed {seed}");
        }
    }
}

#[test]
fn pairing_codes() {
    for c in list(&vectors(), "codes") {
        let name = text(c, "name");
        let network = text(c, "network");
        let code = PairingCode {
            token: PairingToken::from_bytes(array(c, "token")),
            relay_ip: text(c, "ip").parse::<Ipv4Addr>().unwrap(),
            relay_port: num(c, "port") as u16,
            relay_peer: peer(text(c, "relay")),
            network: (!network.is_empty()).then(|| DnsLabel::new(network).unwrap()),
        };
        assert_eq!(code.to_bytes().unwrap(), bytes(c, "bytes"), "{name}");
        assert_eq!(code.encode().unwrap(), text(c, "text"), "{name}");
        assert_eq!(PairingCode::from_bytes(&bytes(c, "bytes")).unwrap(), code);
        assert_eq!(PairingCode::decode(text(c, "text")).unwrap(), code);
        let any = AnyCode::decode(&text(c, "text").to_lowercase()).unwrap();
        assert_eq!(any, AnyCode::Pairing(code.clone()), "{name}");
        assert_eq!(any.relay_addr().to_string(), text(c, "relay_addr"));
        assert_eq!(code.relay_addr().to_string(), text(c, "relay_addr"));
    }
}

#[test]
fn pairing_requests() {
    for r in list(&vectors(), "requests") {
        let request = Request {
            token: PairingToken::from_bytes(array(r, "token")),
            name: text(r, "name").to_owned(),
        };
        assert_eq!(request.encode().unwrap(), bytes(r, "bytes"));
        assert_eq!(request.encoded_len(), bytes(r, "bytes").len());
        assert_eq!(Request::decode(&bytes(r, "bytes")).unwrap(), request);
    }
}

#[test]
fn failure_answer() {
    let v = vectors();
    let f = &v["failure"];
    assert_eq!(text(f, "message"), "pairing failed");
    assert_eq!(Response::failed().encode().unwrap(), bytes(f, "bytes"));
    assert_eq!(
        Response::decode(&bytes(f, "bytes")).unwrap(),
        Response::failed()
    );
}

#[test]
fn success_answers() {
    for s in list(&vectors(), "success") {
        let answer = Response::Paired(Paired {
            group: group(s),
            group_size: num(s, "group_size") as u8,
            peers: list(s, "peers")
                .iter()
                .map(|p| PairedPeer {
                    peer: peer(text(p, "peer")),
                    name: text(p, "name").to_owned(),
                })
                .collect(),
        });
        assert_eq!(answer.encode().unwrap(), bytes(s, "bytes"));
        assert_eq!(answer.encoded_len(), bytes(s, "bytes").len());
        assert_eq!(Response::decode(&bytes(s, "bytes")).unwrap(), answer);
    }
}

#[test]
fn introductions() {
    for i in list(&vectors(), "introductions") {
        let intro = Introduction {
            group: group(i),
            group_size: num(i, "group_size") as u8,
            peers: list(i, "peers")
                .iter()
                .map(|p| IntroducedPeer {
                    peer: peer(text(p, "peer")),
                    name: text(p, "name").to_owned(),
                    proof: p["proof"].as_str().map(|h| Proof::from_hex(h).unwrap()),
                })
                .collect(),
        };
        assert_eq!(intro.encode().unwrap(), bytes(i, "bytes"));
        assert_eq!(intro.encoded_len(), bytes(i, "bytes").len());
        assert_eq!(Introduction::decode(&bytes(i, "bytes")).unwrap(), intro);
    }
}

#[test]
fn group_proofs() {
    for p in list(&vectors(), "proofs") {
        let token = PairingToken::from_bytes(array(p, "token"));
        let group = group(p);
        let proof = Proof::compute(&token, &group);
        assert_eq!(proof.to_hex(), text(p, "proof"));
        assert!(
            Proof::from_hex(text(p, "proof"))
                .unwrap()
                .is_proof_of(&token, &group)
        );
    }
}

#[test]
fn verification_codes() {
    for v in list(&vectors(), "verification") {
        let (a, b) = (peer(text(v, "a")), peer(text(v, "b")));
        for code in [Code::new(&a, &b), Code::new(&b, &a)] {
            assert_eq!(code.hash().as_slice(), bytes(v, "hash").as_slice());
            let indices: Vec<u8> = list(v, "emoji_indices")
                .iter()
                .map(|i| i.as_u64().unwrap() as u8)
                .collect();
            assert_eq!(code.emoji_indices().as_slice(), indices.as_slice());
            let emoji: Vec<&str> = list(v, "emoji")
                .iter()
                .map(|e| e.as_str().unwrap())
                .collect();
            assert_eq!(code.emoji().as_slice(), emoji.as_slice());
            assert_eq!(
                emoji,
                indices
                    .iter()
                    .map(|&i| EMOJI[usize::from(i)])
                    .collect::<Vec<_>>()
            );
            assert_eq!(code.emoji_text(), text(v, "emoji_text"));
            assert_eq!(u64::from(code.number()), num(v, "number"));
            assert_eq!(code.number_text(), text(v, "number_text"));
            assert_eq!(code.verified_value(), text(v, "verified"));
            assert!(code.matches_verified(text(v, "verified")));
            let attrs = peerup_core::authorized_keys::Attributes::new()
                .with("verified", text(v, "verified"))
                .unwrap();
            assert!(attrs.is_verified_for(&code));
        }
    }
    // Each vector's value belongs to its pair only.
    let all = list(&vectors(), "verification").clone();
    for (i, v) in all.iter().enumerate() {
        for (j, w) in all.iter().enumerate() {
            let code = Code::new(&peer(text(w, "a")), &peer(text(w, "b")));
            assert_eq!(code.matches_verified(text(v, "verified")), i == j);
        }
    }
}
