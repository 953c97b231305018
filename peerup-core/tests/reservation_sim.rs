//! `reservation::Reservations` driven in virtual time against a simulated
//! swarm (connections, one dial in flight per peer as
//! `PeerCondition::DisconnectedAndNotDialing` allows, circuit listeners)
//! and a reference model of the backoff and the deadlines, over random
//! event sequences.
//!
//! Invariants checked after every step:
//! - a `Dial` for a relay only when it is not connected and no dial of
//!   ours to it is unresolved (never two dials in flight);
//! - a `Listen` only when connected, after the identify that follows our
//!   dial, and never while the swarm holds a listener on that relay;
//! - a `Bootstrap` only right before that relay's `Listen`;
//! - every `Lost` waits the model's backoff (1 s doubling to 30 s, back
//!   to 1 s after a `Reserved`), within `[MIN_BACKOFF, MAX_BACKOFF]`;
//! - no `Dial` or `Listen` for a relay before its `retry_at`, and one when
//!   `handle_timeout` runs at or after it;
//! - `poll_timeout` is the earliest of the model's retries and the model's
//!   periodic check;
//! - one entry per relay peer, dialed at its addresses in config order.
//!
//! And at the end, once the network behaves: every relay gets reserved and
//! then nothing more is emitted, check after check.

use core::time::Duration;

use peerup_core::models::reservation::{Op, RELAYS, Sim, addr, peer, run};
use peerup_core::relay_addr::RelayAddr;
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    let r = 0..RELAYS;
    prop_oneof![
        (0u64..70_000).prop_map(Op::Advance),
        Just(Op::ToDeadline),
        Just(Op::Spurious),
        r.clone().prop_map(Op::DialOk),
        r.clone().prop_map(Op::DialErr),
        r.clone().prop_map(Op::OtherConnect),
        r.clone().prop_map(Op::OtherDialErr),
        r.clone().prop_map(Op::Identify),
        r.clone().prop_map(Op::Close),
        r.clone().prop_map(Op::ListenAddr),
        r.clone().prop_map(Op::ListenerClose),
        r.clone().prop_map(Op::ToggleListenFail),
        Just(Op::Stranger),
    ]
}

fn config() -> impl Strategy<Value = Vec<RelayAddr>> {
    proptest::collection::vec((0..RELAYS, 0u8..4), 1..7)
        .prop_map(|v| v.into_iter().map(|(r, a)| addr(r, a)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn random_events_keep_the_invariants(config in config(), ops in proptest::collection::vec(op(), 0..96)) {
        run(&config, &ops);
    }
}

#[test]
fn a_relay_refused_forever_backs_off_to_the_cap() {
    let mut sim = Sim::new(&[addr(0, 0)]);
    sim.m.handle_start();
    sim.drain();
    let mut waits = Vec::new();
    for _ in 0..8 {
        sim.apply(&Op::DialOk(0));
        // The gate closes the connection before identify.
        sim.apply(&Op::Close(0));
        waits.push(sim.m.retry_at(&peer(0)).unwrap() - sim.now);
        sim.apply(&Op::ToDeadline);
    }
    let secs: Vec<u64> = waits.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
}
