//! The invite handshake machines produce and accept exactly the bytes an
//! independent implementation computes (`tests/vectors/invite_handshake.py`:
//! PyNaCl and cryptography, not this crate).

use std::net::Ipv4Addr;

use peerup_core::PeerId;
use peerup_core::invite::handshake::{Failure, SessionRandom, derive_key};
use peerup_core::invite::{
    InviteCode, Inviter, InviterConfig, InviterEvent, InviterOutput, Joiner, JoinerConfig,
    JoinerOutput, Token,
};
use peerup_core::naming::Name;
use peerup_core::time::{Instant, UnixTime};

const JOINER: &str = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
const INVITER: &str = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA";

struct Case(serde_json::Value);

impl Case {
    fn bytes(&self, field: &str) -> Vec<u8> {
        hex::decode(
            self.0[field]
                .as_str()
                .unwrap_or_else(|| panic!("missing {field}")),
        )
        .unwrap()
    }
    fn array<const N: usize>(&self, field: &str) -> [u8; N] {
        self.bytes(field).try_into().unwrap()
    }
    fn text(&self, field: &str) -> &str {
        self.0[field].as_str().unwrap()
    }
}

fn cases() -> Vec<Case> {
    let text = include_str!("vectors/invite_handshake.json");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(Case)
        .collect()
}

fn case(name: &str) -> Case {
    cases()
        .into_iter()
        .find(|c| c.text("name") == name)
        .unwrap()
}

fn code(token: [u8; 8]) -> InviteCode {
    InviteCode {
        token: Token::from_bytes(token),
        relay_ip: Ipv4Addr::new(203, 0, 113, 7),
        relay_port: 7777,
        relay_peer: JOINER.parse().unwrap(),
        network: None,
        inviter: INVITER.parse().unwrap(),
    }
}

fn name(s: &str) -> Option<Name> {
    (!s.is_empty()).then(|| Name::new(s).unwrap())
}

fn inviter(c: &Case, inviter_name: Option<Name>) -> Inviter {
    let config = InviterConfig::new(UnixTime::from_secs(1_000_000)).with_name(inviter_name);
    Inviter::new(
        Token::from_bytes(c.array("token")),
        config,
        Instant::ZERO,
        UnixTime::from_secs(0),
    )
}

fn inviter_random(c: &Case) -> SessionRandom {
    SessionRandom {
        ephemeral: c.array("inviter_secret"),
        nonce: c.array("inviter_nonce"),
    }
}

fn drain_inviter(i: &mut Inviter) -> Vec<InviterOutput> {
    std::iter::from_fn(|| i.poll_output()).collect()
}

fn drain_joiner(j: &mut Joiner) -> Vec<JoinerOutput> {
    std::iter::from_fn(|| j.poll_output()).collect()
}

#[test]
fn both_sides_derive_the_independent_key() {
    for c in cases() {
        let secret = x25519_dalek::StaticSecret::from(c.array::<32>("inviter_secret"));
        let hello = c.bytes("hello");
        let theirs: [u8; 32] = hello[1..].try_into().unwrap();
        let key = derive_key(&secret, &theirs, &Token::from_bytes(c.array("token"))).unwrap();
        assert_eq!(
            key.as_bytes().as_slice(),
            c.bytes("key").as_slice(),
            "{}",
            c.text("name")
        );
    }
}

#[test]
fn inviter_produces_and_accepts_the_vectors() {
    for case_name in ["ok_named", "ok_unnamed"] {
        let c = case(case_name);
        let reply = c.text("reply");
        let inviter_name = name(reply.strip_prefix("OK ").unwrap());
        let mut i = inviter(&c, inviter_name);
        let joiner: PeerId = JOINER.parse().unwrap();
        i.handle_stream(Instant::ZERO, 1, joiner, inviter_random(&c));
        assert!(drain_inviter(&mut i).is_empty());
        i.handle_data(Instant::ZERO, 1, &c.bytes("hello"));
        assert_eq!(
            drain_inviter(&mut i),
            vec![InviterOutput::Send {
                stream: 1,
                data: c.bytes("inviter_public")
            }]
        );
        i.handle_data(Instant::ZERO, 1, &c.bytes("name_frame"));
        let joiner_name = name(c.text("joiner_name"));
        assert_eq!(
            drain_inviter(&mut i),
            vec![InviterOutput::Authorize {
                stream: 1,
                peer: joiner,
                name: joiner_name.clone()
            }]
        );
        i.handle_authorized(Instant::ZERO, 1, Ok(()));
        assert_eq!(
            drain_inviter(&mut i),
            vec![
                InviterOutput::Send {
                    stream: 1,
                    data: c.bytes("reply_frame")
                },
                InviterOutput::Finish { stream: 1 },
                InviterOutput::Event(InviterEvent::Paired {
                    peer: joiner,
                    name: joiner_name
                }),
            ],
            "{case_name}"
        );
    }
}

#[test]
fn joiner_produces_and_accepts_the_vectors() {
    for case_name in ["ok_named", "ok_unnamed"] {
        let c = case(case_name);
        let random = SessionRandom {
            ephemeral: c.array("joiner_secret"),
            nonce: c.array("joiner_nonce"),
        };
        let config = JoinerConfig::default().with_name(name(c.text("joiner_name")));
        let mut j = Joiner::new(&code(c.array("token")), config, Instant::ZERO, random);
        assert_eq!(
            drain_joiner(&mut j),
            vec![JoinerOutput::Send(c.bytes("hello"))]
        );
        j.handle_data(Instant::ZERO, &c.bytes("inviter_public"));
        assert_eq!(
            drain_joiner(&mut j),
            vec![JoinerOutput::Send(c.bytes("name_frame"))]
        );
        j.handle_data(Instant::ZERO, &c.bytes("reply_frame"));
        let inviter_name = name(c.text("reply").strip_prefix("OK ").unwrap());
        assert_eq!(
            drain_joiner(&mut j),
            vec![
                JoinerOutput::Paired {
                    peer: INVITER.parse().unwrap(),
                    name: inviter_name
                },
                JoinerOutput::Finish
            ],
            "{case_name}"
        );
        assert!(j.is_finished());
    }
}

#[test]
fn refusal_vector_both_ways() {
    let c = case("refused");
    // The inviter refuses a second valid joiner while the first one's
    // pairing is being saved: exactly the vector's ERR frame.
    let mut i = inviter(&c, name("home"));
    let first: PeerId = INVITER.parse().unwrap();
    let j_other = SessionRandom {
        ephemeral: [7; 32],
        nonce: [8; 24],
    };
    let mut other = Joiner::new(
        &code(c.array("token")),
        JoinerConfig::default(),
        Instant::ZERO,
        j_other,
    );
    i.handle_stream(
        Instant::ZERO,
        9,
        first,
        SessionRandom {
            ephemeral: [5; 32],
            nonce: [6; 24],
        },
    );
    for out in drain_joiner(&mut other) {
        if let JoinerOutput::Send(d) = out {
            i.handle_data(Instant::ZERO, 9, &d);
        }
    }
    for out in drain_inviter(&mut i) {
        if let InviterOutput::Send { data, .. } = out {
            other.handle_data(Instant::ZERO, &data);
        }
    }
    for out in drain_joiner(&mut other) {
        if let JoinerOutput::Send(d) = out {
            i.handle_data(Instant::ZERO, 9, &d);
        }
    }
    assert!(matches!(
        drain_inviter(&mut i).as_slice(),
        [InviterOutput::Authorize { stream: 9, .. }]
    ));

    let joiner: PeerId = JOINER.parse().unwrap();
    i.handle_stream(Instant::ZERO, 1, joiner, inviter_random(&c));
    i.handle_data(Instant::ZERO, 1, &c.bytes("hello"));
    i.handle_data(Instant::ZERO, 1, &c.bytes("name_frame"));
    let out = drain_inviter(&mut i);
    assert_eq!(
        out[0],
        InviterOutput::Send {
            stream: 1,
            data: c.bytes("inviter_public")
        }
    );
    assert_eq!(
        out[1],
        InviterOutput::Send {
            stream: 1,
            data: c.bytes("reply_frame")
        }
    );
    assert_eq!(out[2], InviterOutput::Finish { stream: 1 });
    assert!(matches!(
        &out[3],
        InviterOutput::Event(InviterEvent::AttemptFailed {
            reason: Failure::AlreadyUsed,
            counted: false,
            ..
        })
    ));

    // The joiner reads the refusal and reports it; nothing to save.
    let random = SessionRandom {
        ephemeral: c.array("joiner_secret"),
        nonce: c.array("joiner_nonce"),
    };
    let config = JoinerConfig::default().with_name(name("laptop"));
    let mut j = Joiner::new(&code(c.array("token")), config, Instant::ZERO, random);
    drain_joiner(&mut j);
    j.handle_data(Instant::ZERO, &c.bytes("inviter_public"));
    assert_eq!(
        drain_joiner(&mut j),
        vec![JoinerOutput::Send(c.bytes("name_frame"))]
    );
    j.handle_data(Instant::ZERO, &c.bytes("reply_frame"));
    assert_eq!(
        drain_joiner(&mut j),
        vec![
            JoinerOutput::Finish,
            JoinerOutput::Failed(Failure::Refused("invite already used".into()))
        ]
    );
}

#[test]
fn wrong_token_vector_closes_without_reply() {
    let c = case("wrong_token");
    assert_ne!(c.bytes("key"), c.bytes("joiner_key"));
    // The joiner with the wrong token produces exactly the vector's frame.
    let random = SessionRandom {
        ephemeral: c.array("joiner_secret"),
        nonce: c.array("joiner_nonce"),
    };
    let config = JoinerConfig::default().with_name(name("laptop"));
    let mut j = Joiner::new(
        &code(c.array("joiner_token")),
        config,
        Instant::ZERO,
        random,
    );
    drain_joiner(&mut j);
    j.handle_data(Instant::ZERO, &c.bytes("inviter_public"));
    assert_eq!(
        drain_joiner(&mut j),
        vec![JoinerOutput::Send(c.bytes("name_frame"))]
    );
    // The inviter cannot open it: it closes without a reply, counts an
    // attempt and authorizes nobody.
    let mut i = inviter(&c, name("home"));
    let joiner: PeerId = JOINER.parse().unwrap();
    i.handle_stream(Instant::ZERO, 1, joiner, inviter_random(&c));
    i.handle_data(Instant::ZERO, 1, &c.bytes("hello"));
    i.handle_data(Instant::ZERO, 1, &c.bytes("name_frame"));
    let out = drain_inviter(&mut i);
    assert_eq!(
        out[0],
        InviterOutput::Send {
            stream: 1,
            data: c.bytes("inviter_public")
        }
    );
    assert_eq!(out[1], InviterOutput::Finish { stream: 1 });
    assert!(matches!(
        &out[2],
        InviterOutput::Event(InviterEvent::AttemptFailed {
            reason: Failure::WrongCode,
            counted: true,
            ..
        })
    ));
    assert_eq!(out.len(), 3);
    assert_eq!(i.failed_attempts(), 1);
    // The joiner sees the close and reports a wrong or expired code.
    j.handle_eof(Instant::ZERO);
    assert_eq!(
        drain_joiner(&mut j),
        vec![
            JoinerOutput::Reset,
            JoinerOutput::Failed(Failure::WrongCode)
        ]
    );
}

#[test]
fn secrets_never_appear_in_debug() {
    let c = case("ok_named");
    let mut i = inviter(&c, name("home"));
    let joiner: PeerId = JOINER.parse().unwrap();
    i.handle_stream(Instant::ZERO, 1, joiner, inviter_random(&c));
    i.handle_data(Instant::ZERO, 1, &c.bytes("hello"));
    let random = SessionRandom {
        ephemeral: c.array("joiner_secret"),
        nonce: c.array("joiner_nonce"),
    };
    let mut j = Joiner::new(
        &code(c.array("token")),
        JoinerConfig::default(),
        Instant::ZERO,
        random.clone(),
    );
    j.handle_data(Instant::ZERO, &c.bytes("inviter_public"));
    let shown = format!(
        "{i:?} {j:?} {random:?} {:?} {:?}",
        code(c.array("token")),
        Token::from_bytes(c.array("token"))
    );
    let lower = shown.to_lowercase();
    for secret in ["token", "key", "joiner_secret", "inviter_secret"] {
        let hex = c.text(secret);
        assert!(
            !lower.contains(hex),
            "{secret} appears in Debug output: {shown}"
        );
        // Also as a decimal byte list, the derive(Debug) form of an array.
        let bytes = c.bytes(secret);
        let list = format!("{:?}", &bytes[..4])
            .trim_end_matches(']')
            .to_owned();
        assert!(
            !shown.contains(&list),
            "{secret} bytes appear in Debug output: {shown}"
        );
    }
    assert!(shown.contains("<redacted>"));
}
