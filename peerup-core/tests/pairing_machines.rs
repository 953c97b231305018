//! The relay pairing machines (`pairing::{tokens, enroll, intro}`) against
//! reference models, in virtual time, under random operation sequences.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use libp2p_identity::{Keypair, PeerId};
use peerup_core::authorized_keys::{Attributes, Document, GROUP};
use peerup_core::naming::{Name, Names, unique_name};
use peerup_core::pairing::enroll::{
    Admission, Enrollment, MAX_PROBATION, MAX_STRIKES, PROBATION, Refusal,
};
use peerup_core::pairing::intro::{
    IntroLog, IntroRefusal, Introduced, RESEND_WINDOW, accept_answer, accept_introduction,
};
use peerup_core::pairing::tokens::{
    CreateError, GroupId, GroupSpec, MAX_FAILURES, RedeemError, Slot, TokenStore,
};
use peerup_core::pairing::wire::Proof;
use peerup_core::time::{Instant, UnixTime};
use proptest::prelude::*;

fn peer(n: u8) -> PeerId {
    let mut seed = [0u8; 32];
    seed[0] = n;
    seed[1] = 0xA5;
    Keypair::ed25519_from_bytes(seed)
        .unwrap()
        .public()
        .to_peer_id()
}

fn token(n: u8) -> [u8; 16] {
    [n; 16]
}

const T0: i64 = 1_800_000_000;

fn at(secs: u64) -> UnixTime {
    UnixTime::from_secs(T0).saturating_add(Duration::from_secs(secs))
}

fn group_of(store: &mut TokenStore, codes: u8, ttl: u64) -> GroupId {
    let tokens: Vec<[u8; 16]> = (0..codes).map(token).collect();
    store
        .create(
            at(0),
            GroupId::from_random([1, 2, 3, 4]),
            &tokens,
            GroupSpec {
                ttl: Duration::from_secs(ttl),
                ..GroupSpec::default()
            },
        )
        .unwrap()
}

#[test]
fn a_code_works_once() {
    let mut s = TokenStore::new();
    let g = group_of(&mut s, 3, 3600);
    let t = s.begin(at(1), &token(0), peer(1)).unwrap();
    let j = s
        .complete(at(1), &t, Some("laptop"), Proof::from_bytes([7; 32]))
        .unwrap();
    assert_eq!((&j.group, j.group_size), (&g, 3));
    assert!(j.others.is_empty());
    assert_eq!(
        s.begin(at(2), &token(0), peer(2)),
        Err(RedeemError::Unknown)
    );
    // The next member hears of the first.
    let t = s.begin(at(3), &token(1), peer(2)).unwrap();
    let j = s
        .complete(at(3), &t, None, Proof::from_bytes([8; 32]))
        .unwrap();
    assert_eq!(j.others.len(), 1);
    assert_eq!(j.others[0].peer, peer(1));
    assert_eq!(j.others[0].name, "laptop");
    assert!(j.member.name.starts_with("paired-"), "{}", j.member.name);
}

#[test]
fn three_failures_burn_a_code() {
    let mut s = TokenStore::new();
    let g = group_of(&mut s, 1, 3600);
    for i in 0..MAX_FAILURES {
        let t = s.begin(at(1), &token(0), peer(1)).unwrap();
        assert_eq!(s.abort(&t), i + 1 == MAX_FAILURES);
    }
    assert_eq!(s.slot(&g, 0), Some(&Slot::Burned));
    assert_eq!(
        s.begin(at(2), &token(0), peer(1)),
        Err(RedeemError::Unknown)
    );
    assert!(!s.enrolling(at(2)));
}

#[test]
fn a_held_code_is_busy_and_a_name_prefix_names_the_nameless() {
    let mut s = TokenStore::new();
    let g = s
        .create(
            at(0),
            GroupId::from_random([9; 4]),
            &[token(0), token(1)],
            GroupSpec {
                name_prefix: Some("lab".into()),
                authorization_ttl: Some(Duration::from_secs(60)),
                ..GroupSpec::default()
            },
        )
        .unwrap();
    let t = s.begin(at(1), &token(1), peer(1)).unwrap();
    assert_eq!(s.begin(at(1), &token(1), peer(2)), Err(RedeemError::Busy));
    let j = s
        .complete(at(5), &t, Some(""), Proof::from_bytes([0; 32]))
        .unwrap();
    assert_eq!(j.member.name, "lab-2");
    assert_eq!(j.authorization_expires, Some(at(65)));
    assert_eq!(s.members(&g).len(), 1);
    assert_eq!(s.groups_of(&peer(1)), vec![g]);
}

#[test]
fn creation_is_bounded() {
    let mut s = TokenStore::new();
    let id = GroupId::from_random([0; 4]);
    let many: Vec<[u8; 16]> = (0..=100u8).map(token).collect();
    assert_eq!(
        s.create(at(0), id.clone(), &many, GroupSpec::default()),
        Err(CreateError::Count(101))
    );
    assert_eq!(
        s.create(at(0), id.clone(), &[], GroupSpec::default()),
        Err(CreateError::Count(0))
    );
    assert_eq!(
        s.create(
            at(0),
            id.clone(),
            &[token(1), token(1)],
            GroupSpec::default()
        ),
        Err(CreateError::DuplicateToken)
    );
    let zero = GroupSpec {
        ttl: Duration::ZERO,
        ..GroupSpec::default()
    };
    assert_eq!(
        s.create(at(0), id.clone(), &[token(1)], zero),
        Err(CreateError::Ttl)
    );
    let bad = GroupSpec {
        name_prefix: Some("-x".into()),
        ..GroupSpec::default()
    };
    assert!(matches!(
        s.create(at(0), id.clone(), &[token(1)], bad),
        Err(CreateError::NamePrefix(_))
    ));
    s.create(at(0), id.clone(), &[token(1)], GroupSpec::default())
        .unwrap();
    assert_eq!(
        s.create(at(0), id.clone(), &[token(2)], GroupSpec::default()),
        Err(CreateError::IdTaken(id.clone()))
    );
}

/// What one code can be, in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum M {
    Unused(u8),
    Pending(u8, u8),
    Used,
    Burned,
}

#[derive(Debug, Clone)]
enum Op {
    Begin { code: u8, who: u8 },
    Complete { code: u8 },
    Abort { code: u8 },
    Advance(u64),
    Revoke,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, 0u8..4).prop_map(|(code, who)| Op::Begin { code, who }),
        2 => (0u8..6).prop_map(|code| Op::Complete { code }),
        3 => (0u8..6).prop_map(|code| Op::Abort { code }),
        1 => (0u64..1500).prop_map(Op::Advance),
        1 => Just(Op::Revoke),
    ]
}

proptest! {
    /// The store behaves as the model: single use, burned at the third
    /// failure, busy while held, nothing after the TTL or a revoke; codes
    /// 4 and 5 never existed. A pairing under way (a held slot) finishes
    /// or fails against its group while the store still has it: the TTL
    /// bounds when a code can be presented, and the store drops an expired
    /// group when a code is next presented.
    #[test]
    fn token_store_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let mut s = TokenStore::new();
        let g = group_of(&mut s, 4, 3600);
        let mut model = [M::Unused(0); 4];
        let mut present = true;
        let mut now = 0u64;
        let mut tickets = BTreeMap::new();
        for op in ops {
            match op {
                Op::Advance(d) => now += d,
                Op::Revoke => {
                    let r = s.revoke(&g);
                    prop_assert_eq!(r.is_some(), present);
                    present = false;
                }
                Op::Begin { code, who } => {
                    if now >= 3600 {
                        present = false;
                    }
                    let live = present;
                    let got = s.begin(at(now), &token(code), peer(who));
                    let want = match model.get(usize::from(code)) {
                        Some(M::Unused(_)) if live => Ok(()),
                        Some(M::Pending(..)) if live => Err(RedeemError::Busy),
                        _ => Err(RedeemError::Unknown),
                    };
                    prop_assert_eq!(got.as_ref().map(|_| ()).map_err(|e| *e), want);
                    if let Ok(t) = got {
                        let M::Unused(f) = model[usize::from(code)] else { unreachable!() };
                        model[usize::from(code)] = M::Pending(f, who);
                        tickets.insert(code, t);
                    }
                }
                Op::Complete { code } => {
                    if let Some(t) = tickets.remove(&code) {
                        let got = s.complete(at(now), &t, Some("m"), Proof::from_bytes([0; 32]));
                        let held = present && matches!(model[usize::from(code)], M::Pending(..));
                        prop_assert_eq!(got.is_ok(), held);
                        if got.is_ok() {
                            model[usize::from(code)] = M::Used;
                        }
                    }
                }
                Op::Abort { code } => {
                    if let Some(t) = tickets.remove(&code) {
                        let burned = s.abort(&t);
                        if let (true, M::Pending(f, _)) = (present, model[usize::from(code)]) {
                            let f = f + 1;
                            prop_assert_eq!(burned, f >= MAX_FAILURES);
                            model[usize::from(code)] = if f >= MAX_FAILURES { M::Burned } else { M::Unused(f) };
                        } else {
                            prop_assert!(!burned);
                        }
                    }
                }
            }
            let open = present
                && now < 3600
                && model.iter().any(|m| matches!(m, M::Unused(_) | M::Pending(..)));
            prop_assert_eq!(s.enrolling(at(now)), open);
            if present {
                let used = model.iter().filter(|m| **m == M::Used).count();
                prop_assert_eq!(s.members(&g).len(), used);
            }
        }
    }
}

fn inst(secs: u64) -> Instant {
    Instant::from_duration(Duration::from_secs(secs))
}

#[test]
fn probation_is_bounded_and_ends() {
    let mut e = Enrollment::new();
    for n in 0..MAX_PROBATION as u8 {
        assert!(matches!(
            e.handle_connection(inst(0), peer(n), true),
            Admission::Probation { .. }
        ));
    }
    assert_eq!(
        e.handle_connection(inst(0), peer(200), true),
        Admission::Refused(Refusal::Full)
    );
    assert_eq!(e.next_deadline(), Some(inst(0).saturating_add(PROBATION)));
    assert!(e.handle_timeout(inst(14), true).is_empty());
    let closed = e.handle_timeout(inst(15), true);
    assert_eq!(closed.len(), MAX_PROBATION);
    assert!(e.is_empty());
    assert_eq!(
        e.handle_connection(inst(16), peer(1), false),
        Admission::Refused(Refusal::NotEnrolling)
    );
}

#[test]
fn strikes_refuse_a_peer_until_enrollment_ends() {
    let mut e = Enrollment::new();
    for _ in 0..MAX_STRIKES {
        assert!(matches!(
            e.handle_connection(inst(0), peer(1), true),
            Admission::Probation { .. }
        ));
        assert!(e.handle_failed(peer(1)));
    }
    assert_eq!(
        e.handle_connection(inst(0), peer(1), true),
        Admission::Refused(Refusal::Struck)
    );
    e.handle_timeout(inst(1), false);
    assert!(matches!(
        e.handle_connection(inst(2), peer(1), true),
        Admission::Probation { .. }
    ));
    e.handle_paired(&peer(1));
    assert!(!e.on_probation(&peer(1)));
}

#[derive(Debug, Clone)]
enum EOp {
    Connect(u8, bool),
    Close(u8),
    Paired(u8),
    Failed(u8),
    Tick(u64),
}

fn eop() -> impl Strategy<Value = EOp> {
    prop_oneof![
        5 => (0u8..24, proptest::bool::weighted(0.9)).prop_map(|(p, e)| EOp::Connect(p, e)),
        2 => (0u8..24).prop_map(EOp::Close),
        1 => (0u8..24).prop_map(EOp::Paired),
        2 => (0u8..24).prop_map(EOp::Failed),
        2 => (0u64..20).prop_map(EOp::Tick),
    ]
}

proptest! {
    /// Never more than 10 strangers; none kept past its probation once
    /// the timer fired; a peer with 3 strikes is never admitted.
    #[test]
    fn enrollment_holds_its_bounds(ops in proptest::collection::vec(eop(), 1..150)) {
        let mut e = Enrollment::new();
        let mut now = 0u64;
        let mut strikes: BTreeMap<u8, u8> = BTreeMap::new();
        let mut enrolling = true;
        for op in ops {
            match op {
                EOp::Connect(p, en) => {
                    enrolling = en;
                    let a = e.handle_connection(inst(now), peer(p), en);
                    if let Admission::Probation { until } = a {
                        prop_assert!(en);
                        prop_assert!(strikes.get(&p).copied().unwrap_or(0) < MAX_STRIKES);
                        prop_assert!(until <= inst(now).saturating_add(PROBATION));
                    }
                }
                EOp::Close(p) => e.handle_closed(&peer(p)),
                EOp::Paired(p) => {
                    e.handle_paired(&peer(p));
                    strikes.remove(&p);
                }
                EOp::Failed(p) => {
                    e.handle_failed(peer(p));
                    *strikes.entry(p).or_insert(0) += 1;
                }
                EOp::Tick(d) => {
                    now += d;
                    e.handle_timeout(inst(now), enrolling);
                    if !enrolling {
                        strikes.clear();
                        prop_assert!(e.is_empty());
                    }
                    if let Some(next) = e.next_deadline() {
                        prop_assert!(next > inst(now));
                    }
                }
            }
            prop_assert!(e.len() <= MAX_PROBATION);
        }
    }
}

fn doc_with(lines: &[(PeerId, Option<&str>)]) -> Document {
    let mut d = Document::new();
    for (p, g) in lines {
        let mut a = Attributes::new();
        if let Some(g) = g {
            a = a.with(GROUP, g).unwrap();
        }
        d.add(*p, a, None).unwrap();
    }
    d
}

fn intro(p: PeerId, name: &str) -> Introduced {
    Introduced {
        peer: p,
        name: name.into(),
        proof: Some([0xab; 32]),
    }
}

#[test]
fn introductions_follow_the_rules() {
    let (us, relay, a, b, c) = (peer(1), peer(2), peer(3), peer(4), peer(5));
    let relays = BTreeSet::from([relay]);
    let doc = doc_with(&[(relay, Some("g1")), (a, Some("g1"))]);
    let names = Names::new();
    let from_stranger = accept_introduction(
        &us,
        &c,
        &relays,
        &doc,
        &names,
        "g1",
        4,
        &[intro(b, "b")],
        "2026-12-06",
    );
    assert_eq!(from_stranger, Err(IntroRefusal::NotOurRelay(c)));
    let other_group = accept_introduction(
        &us,
        &relay,
        &relays,
        &doc,
        &names,
        "g2",
        4,
        &[intro(b, "b")],
        "2026-12-06",
    );
    assert_eq!(other_group, Err(IntroRefusal::UnknownGroup("g2".into())));
    // Known a + us + b, c = 4 > 3.
    let too_many = accept_introduction(
        &us,
        &relay,
        &relays,
        &doc,
        &names,
        "g1",
        3,
        &[intro(b, "b"), intro(c, "c")],
        "2026-12-06",
    );
    assert!(matches!(
        too_many,
        Err(IntroRefusal::TooMany {
            total: 4,
            size: 3,
            ..
        })
    ));
    let ok = accept_introduction(
        &us,
        &relay,
        &relays,
        &doc,
        &names,
        "g1",
        4,
        &[
            intro(a, "a"),
            intro(us, "me"),
            intro(relay, "r"),
            intro(b, "b b"),
            intro(b, "b"),
        ],
        "2026-12-06",
    )
    .unwrap();
    assert_eq!(ok.len(), 1, "{ok:?}");
    // Another configured relay cannot add to a group it did not make.
    let other_relay = peer(6);
    let both = BTreeSet::from([relay, other_relay]);
    let doc2 = doc_with(&[(relay, Some("g1")), (other_relay, None), (a, Some("g1"))]);
    assert_eq!(
        accept_introduction(
            &us,
            &other_relay,
            &both,
            &doc2,
            &names,
            "g1",
            4,
            &[intro(b, "b")],
            "2026-12-06",
        ),
        Err(IntroRefusal::UnknownGroup("g1".into()))
    );
    // The size the relay answered at join caps what it states later.
    let mut capped = Document::new();
    capped
        .add(
            relay,
            Attributes::new()
                .with(GROUP, "g1")
                .unwrap()
                .with(peerup_core::pairing::intro::GROUP_SIZE, "2")
                .unwrap(),
            None,
        )
        .unwrap();
    assert!(matches!(
        accept_introduction(
            &us,
            &relay,
            &relays,
            &capped,
            &names,
            "g1",
            100,
            &[intro(b, "b"), intro(c, "c")],
            "2026-12-06",
        ),
        Err(IntroRefusal::TooMany { size: 2, .. })
    ));
    assert_eq!(ok[0].peer, b);
    assert_eq!(ok[0].name.as_ref().map(Name::as_str), Some("b-b"));
    assert_eq!(ok[0].proof.as_deref(), Some(&"ab".repeat(32)[..]));
}

#[test]
fn an_answer_is_bounded_by_its_group_size() {
    let (us, relay) = (peer(1), peer(2));
    let peers: Vec<Introduced> = (10..30).map(|n| intro(peer(n), "m")).collect();
    let added = accept_answer(
        &us,
        &relay,
        &Document::new(),
        &Names::new(),
        5,
        &peers,
        "2026-12-06",
    );
    assert_eq!(added.len(), 4);
    let got: Vec<&str> = added
        .iter()
        .filter_map(|m| m.name.as_ref().map(Name::as_str))
        .collect();
    assert_eq!(got, ["m", "m-2", "m-3", "m-4"]);
}

#[test]
fn the_relay_resends_introductions_after_its_window() {
    let mut log = IntroLog::new();
    assert!(log.should_send(inst(0), peer(1), "g"));
    assert!(!log.should_send(inst(29), peer(1), "g"));
    assert!(log.should_send(inst(29), peer(2), "g"));
    assert!(log.should_send(inst(0) + RESEND_WINDOW, peer(1), "g"));
    log.forget_group("g");
    assert!(log.is_empty());
}

proptest! {
    /// A made name is valid, is the peer's own or free, and never takes a
    /// name another peer has.
    #[test]
    fn unique_names_never_clash(
        wanted in "\\PC{0,80}",
        taken in proptest::collection::vec(("[a-z]{1,3}(-[0-9])?", 0u8..5), 0..12),
        who in 0u8..5,
    ) {
        let mut names = Names::new();
        for (n, p) in &taken {
            if let Ok(n) = Name::new(n) {
                names.insert(n, peer(*p));
            }
        }
        if let Some(n) = unique_name(&wanted, &peer(who), &names) {
            prop_assert!(Name::new(n.as_str()).is_ok());
            prop_assert!(names.get(n.as_str()).is_none_or(|p| p == peer(who)));
        }
    }

    /// Whatever the introduction says, the node never adds itself, the
    /// relay, or a peer it has; and never more than the group holds.
    #[test]
    fn introductions_never_overfill(
        listed in proptest::collection::vec(0u8..12, 0..20),
        size in 0u8..12,
    ) {
        let (us, relay) = (peer(0), peer(1));
        let relays = BTreeSet::from([relay]);
        let doc = doc_with(&[(relay, Some("g")), (peer(2), Some("g")), (peer(3), None)]);
        let peers: Vec<Introduced> = listed.iter().map(|n| intro(peer(*n), "x")).collect();
        if let Ok(added) = accept_introduction(
            &us, &relay, &relays, &doc, &Names::new(), "g", size, &peers, "2026-12-06",
        ) {
            prop_assert!(added.len() + 2 <= usize::from(size));
            let set: BTreeSet<PeerId> = added.iter().map(|m| m.peer).collect();
            prop_assert_eq!(set.len(), added.len());
            for p in [us, relay, peer(2), peer(3)] {
                prop_assert!(!set.contains(&p));
            }
        }
    }
}
