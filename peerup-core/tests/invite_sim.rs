//! The invite handshake, simulated over 1,000 seeds per scenario: random
//! delays, chunking and interleaving (and, in one scenario, stream loss).
//! Every scenario ends in its expected outcome, and no failure path
//! authorizes anybody. A failure names its seed; replay it with
//! `SEED=<n> cargo test -p peerup-core --test invite_sim <scenario>`.

use core::time::Duration;
use std::net::Ipv4Addr;

use peerup_core::PeerId;
use peerup_core::identity::keypair_from_seed;
use peerup_core::invite::handshake::{
    DEFAULT_HELLO_DEADLINE, DEFAULT_STREAM_DEADLINE, Failure, InviteState, SessionRandom,
};
use peerup_core::invite::{
    InviteCode, Inviter, InviterConfig, InviterEvent, Joiner, JoinerConfig, Token,
};
use peerup_core::naming::Name;
use peerup_core::sim::{Clients, InviterEnd, JoinerEnd, LinkConfig, Pair, Tamper};
use peerup_core::time::{Instant, UnixTime};

const SEEDS: u64 = 1_000;
const WALL: UnixTime = UnixTime::from_secs(1_800_000_000);

/// Runs `scenario` for every seed (or only `$SEED`), reporting the first
/// failing seed.
fn for_seeds(scenario: &str, f: impl Fn(u64) -> Result<(), String>) {
    let seeds: Vec<u64> = match std::env::var("SEED") {
        Ok(s) => vec![s.parse().expect("SEED must be a number")],
        Err(_) => (0..SEEDS).collect(),
    };
    for seed in seeds {
        if let Err(e) = f(seed) {
            panic!(
                "{scenario} failed with seed {seed}: {e}\nreplay: SEED={seed} cargo test -p peerup-core --test invite_sim {scenario}"
            );
        }
    }
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

fn peer(n: u8) -> PeerId {
    keypair_from_seed([n; 32]).public().to_peer_id()
}

fn name(s: &str) -> Option<Name> {
    Some(Name::new(s).unwrap())
}

fn token_of(seed: u64) -> [u8; 8] {
    seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes()
}

struct Setup {
    token: [u8; 8],
    inviter_peer: PeerId,
}

impl Setup {
    fn new(seed: u64) -> Self {
        Setup {
            token: token_of(seed),
            inviter_peer: peer(1),
        }
    }

    fn code(&self, token: [u8; 8]) -> InviteCode {
        InviteCode {
            token: Token::from_bytes(token),
            relay_ip: Ipv4Addr::new(192, 0, 2, 1),
            relay_port: 7777,
            relay_peer: peer(0),
            network: None,
            inviter: self.inviter_peer,
        }
    }

    fn inviter(&self, config: InviterConfig) -> InviterEnd {
        InviterEnd::new(Inviter::new(
            Token::from_bytes(self.token),
            config.with_name(name("home")),
            Instant::ZERO,
            WALL,
        ))
    }

    fn config(&self) -> InviterConfig {
        InviterConfig::new(WALL.saturating_add(Duration::from_secs(600)))
    }

    fn joiner(&self, n: u8, token: [u8; 8], tamper: Tamper, seed: u64) -> JoinerEnd {
        let random = SessionRandom {
            ephemeral: [n ^ (seed as u8); 32],
            nonce: [n; 24],
        };
        let config = JoinerConfig::default().with_name(name(&format!("laptop{n}")));
        JoinerEnd::new(
            Joiner::new(&self.code(token), config, Instant::ZERO, random),
            peer(n),
            u64::from(n),
            tamper,
        )
    }

    fn honest(&self, n: u8, seed: u64) -> JoinerEnd {
        self.joiner(n, self.token, Tamper::None, seed)
    }
}

/// The pairing outcome must be consistent: a joiner that reports `Paired`
/// was authorized by the inviter, the inviter authorized only joiners that
/// hold the token, and at most one of them.
/// Drives until every joiner has finished and the inviter has no session
/// left (the invite's own expiry timer may still be pending).
fn settle(pair: &mut Pair<InviterEnd, Clients>) {
    pair.drive_until(|i, c| {
        c.0.iter().all(JoinerEnd::is_finished) && i.machine.active_sessions() == 0
    });
}

fn check_consistent(
    inviter: &InviterEnd,
    clients: &Clients,
    honest: &[PeerId],
) -> Result<(), String> {
    ensure!(
        inviter.authorized.len() <= 1,
        "invite used twice: {:?}",
        inviter.authorized
    );
    for (p, _) in &inviter.authorized {
        ensure!(
            honest.contains(p),
            "authorized {p}, who does not hold the token"
        );
    }
    for j in &clients.0 {
        if let Some((p, n)) = &j.paired {
            ensure!(
                *p == peer(1) && *n == name("home"),
                "paired with the wrong inviter: {p} {n:?}"
            );
            ensure!(
                inviter.authorized.iter().any(|(a, _)| *a == j.me),
                "joiner {} paired but the inviter did not authorize it",
                j.me
            );
        }
    }
    Ok(())
}

#[test]
fn success() {
    for_seeds("success", |seed| {
        let s = Setup::new(seed);
        let mut pair = Pair::new(
            s.inviter(s.config()),
            Clients(vec![s.honest(2, seed)]),
            seed,
            LinkConfig::default(),
        );
        pair.drive();
        let (i, c) = (&pair.a, &pair.b);
        ensure!(
            c.0[0].paired == Some((peer(1), name("home"))),
            "joiner: {:?} {:?}",
            c.0[0].paired,
            c.0[0].failed
        );
        ensure!(
            i.authorized == vec![(peer(2), name("laptop2"))],
            "inviter authorized {:?}",
            i.authorized
        );
        ensure!(
            i.events
                .contains(&InviterEvent::Acknowledged { peer: peer(2) }),
            "no ack: {:?}",
            i.events
        );
        ensure!(
            i.machine.state() == InviteState::Used && i.machine.is_finished(),
            "state {:?}",
            i.machine.state()
        );
        check_consistent(i, c, &[peer(2)])
    });
}

#[test]
fn wrong_token() {
    for_seeds("wrong_token", |seed| {
        let s = Setup::new(seed);
        let mut bad = s.token;
        bad[(seed % 8) as usize] ^= 1 << (seed % 7);
        let mut pair = Pair::new(
            s.inviter(s.config()),
            Clients(vec![s.joiner(2, bad, Tamper::None, seed)]),
            seed,
            LinkConfig::default(),
        );
        settle(&mut pair);
        let (i, c) = (&pair.a, &pair.b);
        ensure!(
            c.0[0].failed == Some(Failure::WrongCode),
            "joiner: {:?}",
            c.0[0].failed
        );
        ensure!(
            pair.now() < Instant::ZERO + Duration::from_secs(600),
            "ran to expiry"
        );
        ensure!(i.authorized.is_empty(), "authorized {:?}", i.authorized);
        ensure!(
            i.machine.failed_attempts() == 1 && i.machine.state() == InviteState::Open,
            "{:?}",
            i.machine
        );
        Ok(())
    });
}

#[test]
fn expired_invite() {
    for_seeds("expired_invite", |seed| {
        let s = Setup::new(seed);
        // Expires before the joiner's stream can arrive (link delay >= 20 ms).
        let ttl = Duration::from_millis(seed % 20);
        let config = InviterConfig::new(WALL.saturating_add(ttl));
        let mut pair = Pair::new(
            s.inviter(config),
            Clients(vec![s.honest(2, seed)]),
            seed,
            LinkConfig::default(),
        );
        pair.drive();
        let (i, c) = (&pair.a, &pair.b);
        ensure!(
            c.0[0].failed == Some(Failure::Reset),
            "joiner: {:?} {:?}",
            c.0[0].paired,
            c.0[0].failed
        );
        ensure!(i.authorized.is_empty(), "authorized {:?}", i.authorized);
        ensure!(i.events.contains(&InviterEvent::Expired), "{:?}", i.events);
        ensure!(
            i.machine.state() == InviteState::Expired && i.machine.is_finished(),
            "{:?}",
            i.machine.state()
        );
        Ok(())
    });
}

#[test]
fn expiry_racing_the_join() {
    for_seeds("expiry_racing_the_join", |seed| {
        let s = Setup::new(seed);
        let ttl = Duration::from_millis(seed % 800);
        let config = InviterConfig::new(WALL.saturating_add(ttl));
        let mut pair = Pair::new(
            s.inviter(config),
            Clients(vec![s.honest(2, seed)]),
            seed,
            LinkConfig::default(),
        );
        pair.drive();
        let (i, c) = (&pair.a, &pair.b);
        check_consistent(i, c, &[peer(2)])?;
        let j = &c.0[0];
        ensure!(j.is_finished(), "joiner did not finish");
        if j.paired.is_none() {
            ensure!(
                i.authorized.is_empty(),
                "authorized {:?} but joiner failed {:?}",
                i.authorized,
                j.failed
            );
            ensure!(
                matches!(j.failed, Some(Failure::Reset) | Some(Failure::Refused(_))),
                "unexpected failure {:?}",
                j.failed
            );
        }
        Ok(())
    });
}

#[test]
fn reused_code() {
    for_seeds("reused_code", |seed| {
        let s = Setup::new(seed);
        let mut pair = Pair::new(
            s.inviter(s.config()),
            Clients(vec![s.honest(2, seed)]),
            seed,
            LinkConfig::default(),
        );
        pair.drive();
        ensure!(
            pair.b.0[0].paired.is_some(),
            "first join failed: {:?}",
            pair.b.0[0].failed
        );
        // The same code again, from another machine, after the first join.
        pair.b.0.push(s.honest(3, seed));
        pair.drive();
        let (i, c) = (&pair.a, &pair.b);
        ensure!(
            c.0[1].paired.is_none() && c.0[1].failed == Some(Failure::Reset),
            "second: {:?}",
            c.0[1].failed
        );
        ensure!(
            i.authorized == vec![(peer(2), name("laptop2"))],
            "authorized {:?}",
            i.authorized
        );
        check_consistent(i, c, &[peer(2), peer(3)])
    });
}

#[test]
fn concurrent_joins_pair_exactly_one() {
    for_seeds("concurrent_joins_pair_exactly_one", |seed| {
        let s = Setup::new(seed);
        let clients = Clients(vec![s.honest(2, seed), s.honest(3, seed)]);
        let mut pair = Pair::new(s.inviter(s.config()), clients, seed, LinkConfig::default());
        pair.drive();
        let (i, c) = (&pair.a, &pair.b);
        let paired: Vec<_> = c.0.iter().filter(|j| j.paired.is_some()).collect();
        ensure!(paired.len() == 1, "{} joiners paired", paired.len());
        let loser = c.0.iter().find(|j| j.paired.is_none()).ok_or("no loser")?;
        ensure!(
            matches!(&loser.failed, Some(Failure::Refused(r)) if r == "invite already used")
                || loser.failed == Some(Failure::Reset),
            "loser: {:?}",
            loser.failed
        );
        ensure!(i.authorized.len() == 1, "authorized {:?}", i.authorized);
        check_consistent(i, c, &[peer(2), peer(3)])
    });
}

#[test]
fn attempt_limit_burns_the_invite() {
    for_seeds("attempt_limit_burns_the_invite", |seed| {
        let s = Setup::new(seed);
        let mut bad = s.token;
        bad[0] ^= 0x80;
        let config = s.config().with_max_failed_attempts(3);
        let attackers = (2..5)
            .map(|n| s.joiner(n, bad, Tamper::None, seed))
            .collect();
        let mut pair = Pair::new(
            s.inviter(config),
            Clients(attackers),
            seed,
            LinkConfig::default(),
        );
        pair.drive();
        ensure!(
            pair.a.machine.state() == InviteState::Burned,
            "state {:?}",
            pair.a.machine.state()
        );
        ensure!(
            pair.a.events.contains(&InviterEvent::Burned),
            "{:?}",
            pair.a.events
        );
        // The rightful joiner comes too late: the invite is burned.
        pair.b.0.push(s.honest(9, seed));
        pair.drive();
        let (i, c) = (&pair.a, &pair.b);
        ensure!(c.0.iter().all(|j| j.paired.is_none()), "someone paired");
        ensure!(
            c.0[3].failed == Some(Failure::Reset),
            "honest: {:?}",
            c.0[3].failed
        );
        ensure!(i.authorized.is_empty(), "authorized {:?}", i.authorized);
        ensure!(
            i.machine.failed_attempts() == 3,
            "attempts {}",
            i.machine.failed_attempts()
        );
        Ok(())
    });
}

fn tampered(scenario: &str, tamper: impl Fn(u64) -> Tamper, counted: bool) {
    for_seeds(scenario, |seed| {
        let s = Setup::new(seed);
        let t = tamper(seed);
        let mut pair = Pair::new(
            s.inviter(s.config()),
            Clients(vec![s.joiner(2, s.token, t.clone(), seed)]),
            seed,
            LinkConfig::default(),
        );
        settle(&mut pair);
        let (i, c) = (&pair.a, &pair.b);
        ensure!(c.0[0].paired.is_none(), "tampered joiner ({t:?}) paired");
        ensure!(i.authorized.is_empty(), "authorized {:?}", i.authorized);
        ensure!(i.machine.active_sessions() == 0, "session left behind");
        let expected = u32::from(counted);
        ensure!(
            i.machine.failed_attempts() == expected,
            "attempts {} for {t:?}",
            i.machine.failed_attempts()
        );
        ensure!(
            i.machine.state() == InviteState::Open,
            "state {:?}",
            i.machine.state()
        );
        // The invite still works for its rightful holder afterwards.
        pair.b.0.push(s.honest(3, seed));
        settle(&mut pair);
        ensure!(
            pair.b.0[1].paired.is_some(),
            "honest joiner after {t:?}: {:?}",
            pair.b.0[1].failed
        );
        check_consistent(&pair.a, &pair.b, &[peer(3)])
    });
}

#[test]
fn truncated_frame() {
    tampered(
        "truncated_frame",
        |seed| Tamper::TruncateFrame(1 + (seed as usize % 45)),
        false,
    );
}

#[test]
fn oversized_frame() {
    tampered("oversized_frame", |_| Tamper::OversizeFrame, true);
}

#[test]
fn garbage_frame() {
    tampered("garbage_frame", |_| Tamper::GarbageFrame, true);
}

#[test]
fn garbage_hello() {
    tampered("garbage_hello", |_| Tamper::GarbageHello, true);
}

#[test]
fn peer_silent_until_the_deadline() {
    // A stream silent from the start gives its slot back at the hello
    // deadline; one silent after its hello, at the stream deadline.
    for (scenario, tamper, deadline) in [
        ("silent", Tamper::Silent, DEFAULT_HELLO_DEADLINE),
        (
            "silent_after_hello",
            Tamper::SilentAfterHello,
            DEFAULT_STREAM_DEADLINE,
        ),
    ] {
        for_seeds(scenario, |seed| {
            let s = Setup::new(seed);
            let clients = Clients(vec![s.joiner(2, s.token, tamper.clone(), seed)]);
            let mut pair = Pair::new(s.inviter(s.config()), clients, seed, LinkConfig::default());
            settle(&mut pair);
            let (i, c) = (&pair.a, &pair.b);
            ensure!(
                pair.now() >= Instant::ZERO + deadline,
                "ended at {:?}",
                pair.now()
            );
            ensure!(
                matches!(c.0[0].failed, Some(Failure::Timeout | Failure::Reset)),
                "joiner: {:?}",
                c.0[0].failed
            );
            ensure!(
                i.machine.strikes(&peer(2)) == 1,
                "strikes: {}",
                i.machine.strikes(&peer(2))
            );
            ensure!(i.authorized.is_empty(), "authorized {:?}", i.authorized);
            ensure!(
                i.events.iter().any(|e| matches!(
                    e,
                    InviterEvent::AttemptFailed {
                        reason: Failure::Timeout | Failure::Reset,
                        counted: false,
                        ..
                    }
                )),
                "{:?}",
                i.events
            );
            ensure!(
                i.machine.state() == InviteState::Open && i.machine.failed_attempts() == 0,
                "{:?}",
                i.machine
            );
            Ok(())
        });
    }
}

#[test]
fn failed_save_keeps_the_invite_open() {
    for_seeds("failed_save_keeps_the_invite_open", |seed| {
        let s = Setup::new(seed);
        let mut inviter = s.inviter(s.config());
        inviter.save_fails = true;
        let mut pair = Pair::new(
            inviter,
            Clients(vec![s.honest(2, seed)]),
            seed,
            LinkConfig::default(),
        );
        settle(&mut pair);
        let j = &pair.b.0[0];
        ensure!(
            matches!(&j.failed, Some(Failure::Refused(r)) if r.starts_with("could not save the pairing")),
            "joiner: {:?} {:?}",
            j.paired,
            j.failed
        );
        ensure!(
            pair.a.authorized.is_empty(),
            "authorized {:?}",
            pair.a.authorized
        );
        ensure!(
            pair.a.machine.state() == InviteState::Open,
            "state {:?}",
            pair.a.machine.state()
        );
        Ok(())
    });
}

#[test]
fn attacks_alongside_a_rightful_join_under_loss() {
    for_seeds("attacks_alongside_a_rightful_join_under_loss", |seed| {
        let s = Setup::new(seed);
        let mut bad = s.token;
        bad[7] ^= 1;
        let clients = Clients(vec![
            s.joiner(2, bad, Tamper::None, seed),
            s.joiner(3, s.token, Tamper::GarbageFrame, seed),
            s.honest(4, seed),
            s.joiner(5, s.token, Tamper::OversizeFrame, seed),
        ]);
        let link = LinkConfig::default().with_loss_per_million(20_000);
        let mut pair = Pair::new(s.inviter(s.config()), clients, seed, link);
        settle(&mut pair);
        let (i, c) = (&pair.a, &pair.b);
        check_consistent(i, c, &[peer(4)])?;
        ensure!(
            c.0.iter().all(|j| j.is_finished()),
            "a joiner never finished"
        );
        for j in &c.0[..2] {
            ensure!(j.paired.is_none(), "attacker {} paired", j.me);
        }
        ensure!(c.0[3].paired.is_none(), "attacker {} paired", c.0[3].me);
        Ok(())
    });
}
