//! The config files (WIRE.md §9, §10): `peerup.yaml`, `relay-server.yaml` and commit-confirmed apply.

use core::net::Ipv4Addr;
use core::time::Duration;
use std::path::Path;

use multiaddr::Protocol;

use crate::Multiaddr;
use crate::config::archive::PendingMarker;
use crate::config::confirm::{ConfirmError, Event, MarkerState, OnDisk};
use crate::config::edit::{self, EditError};
use crate::config::node::{Host, LocalAddress, PeerRef, Service};
use crate::config::{Config, RelayConfig, WarningKind};
use crate::naming::Name;
use crate::relay_addr::RelayAddr;
use crate::time::UnixTime;
use crate::wire::label::DnsLabel;

use super::*;
use crate::models::Disk;

// ---------------------------------------------------------------------------
// config_node and config_relay

/// `peerup.yaml` (WIRE.md §9): the input, lossily decoded, goes to
/// [`Config::parse`]. A config that parses is rendered (plain and
/// commented) and parsed back, and edited with
/// [`edit::set_name`], [`edit::remove_name`], [`edit::add_relay`],
/// [`edit::remove_relay`], [`edit::add_service`], [`edit::remove_service`],
/// [`edit::set_service_enabled`], [`edit::add_forward`] and
/// [`edit::remove_forward`] (what to edit is picked from a hash of the
/// input).
///
/// # Panics
/// When an error does not name the file, when a rendered config does not
/// parse back to itself or warns of unknown keys, when an edit of a
/// config that parses reports `Invalid`, `Broke` or `NoEffect`, gives a
/// text that does not parse to exactly the asked-for config, or drops a
/// comment line (other than one inside a removed service).
pub fn config_node(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let file = Path::new("peerup.yaml");
    let config = match Config::parse(file, &text) {
        Ok((config, _)) => config,
        Err(e) => {
            assert!(
                e.to_string().starts_with("peerup.yaml"),
                "an error does not name the file: {e}"
            );
            return;
        }
    };
    for rendered in [config.render(), config.render_commented()] {
        let (back, warnings) = Config::parse(file, &rendered)
            .unwrap_or_else(|e| panic!("a rendered config does not parse: {e}\n{rendered}"));
        assert_eq!(back, config, "parse(render(c)) != c\n{rendered}");
        assert!(
            warnings.iter().all(|w| w.kind != WarningKind::UnknownKey),
            "render wrote an unknown key: {warnings:?}\n{rendered}"
        );
    }
    assert_eq!(
        config.render(),
        Config::parse(file, &config.render())
            .map(|(c, _)| c.render())
            .unwrap_or_default(),
        "render is not stable"
    );
    node_edits(&text, &config, data);
}

fn node_edits(text: &str, config: &Config, data: &[u8]) {
    let pick = data.iter().fold(data.len(), |h, &b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    let existing: Vec<Name> = config.names.iter().map(|(n, _)| n.clone()).collect();
    let fallback = ["home", "laptop", "nas.garage", "x"][(pick >> 1) % 4];
    let name = match existing.get((pick >> 1) % existing.len().max(1)) {
        Some(n) if pick & 1 == 0 => n.clone(),
        _ => match Name::new(fallback) {
            Ok(n) => n,
            Err(e) => panic!("{fallback}: {e}"),
        },
    };
    let who = peer(pick >> 4);

    let mut expected = config.clone();
    expected.names.insert(name.clone(), who);
    checked_edit(
        text,
        edit::set_name(text, &name, who),
        &expected,
        "set_name",
    );

    let mut expected = config.clone();
    expected.names.remove(name.as_str());
    checked_edit(
        text,
        edit::remove_name(text, &name),
        &expected,
        "remove_name",
    );

    let relay = match config
        .relay
        .addresses
        .get((pick >> 6) % config.relay.addresses.len().max(1))
    {
        Some(r) if pick & 32 == 0 => r.clone(),
        _ => {
            let host = Ipv4Addr::from(u32::try_from(pick & 0xffff_ffff).unwrap_or(1));
            let addr = Multiaddr::from(host)
                .with(Protocol::Tcp(7777))
                .with(Protocol::P2p(peer(0)));
            match RelayAddr::new(addr) {
                Ok(r) => r,
                Err(e) => panic!("{e}"),
            }
        }
    };
    let mut expected = config.clone();
    expected.relay.addresses.push(relay.clone());
    checked_edit(text, edit::add_relay(text, &relay), &expected, "add_relay");

    let mut expected = config.clone();
    expected.relay.addresses.retain(|a| *a != relay);
    checked_edit(
        text,
        edit::remove_relay(text, &relay),
        &expected,
        "remove_relay",
    );

    let existing: Vec<DnsLabel> = config.services.keys().cloned().collect();
    let fallback = ["ssh", "web", "x-1"][(pick >> 7) % 3];
    let service = match existing.get((pick >> 9) % existing.len().max(1)) {
        Some(s) if pick & 64 == 0 => s.clone(),
        _ => match DnsLabel::new(fallback) {
            Ok(l) => l,
            Err(e) => panic!("{fallback}: {e}"),
        },
    };
    let local = match LocalAddress::new(Host::Ipv4(Ipv4Addr::LOCALHOST), 22) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let mut new = Service::new(local);
    if pick & 128 == 0 {
        new.allowed_peers = Some(vec![PeerRef::Id(who)]);
    }
    let mut expected = config.clone();
    expected.services.insert(service.clone(), new.clone());
    checked_edit(
        text,
        edit::add_service(text, &service, &new),
        &expected,
        "add_service",
    );

    let enabled = pick & 256 == 0;
    let mut expected = config.clone();
    if let Some(s) = expected.services.get_mut(&service) {
        s.enabled = enabled;
    }
    checked_edit(
        text,
        edit::set_service_enabled(text, &service, enabled),
        &expected,
        "set_service_enabled",
    );

    let mut expected = config.clone();
    expected.services.remove(&service);
    // The removed service's own comment lines go with it.
    let removed = edit::remove_service(text, &service);
    if let Ok(out) = &removed {
        checked_config(text, out, &expected, "remove_service");
    } else {
        checked_edit(text, removed, &expected, "remove_service");
    }

    let existing: Vec<DnsLabel> = config.forwards.keys().cloned().collect();
    let forward = match existing.get((pick >> 10) % existing.len().max(1)) {
        Some(f) if pick & 512 == 0 => f.clone(),
        _ => service.clone(),
    };
    let port = u16::try_from((pick >> 11) % 65_535 + 1).unwrap_or(2222);
    let new = crate::config::Forward::new(
        PeerRef::Id(who),
        service.clone(),
        core::net::SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
    );
    let mut expected = config.clone();
    expected.forwards.insert(forward.clone(), new.clone());
    checked_edit(
        text,
        edit::add_forward(text, &forward, &new),
        &expected,
        "add_forward",
    );
    let mut expected = config.clone();
    expected.forwards.remove(&forward);
    let removed = edit::remove_forward(text, &forward);
    if let Ok(out) = &removed {
        checked_config(text, out, &expected, "remove_forward");
    } else {
        checked_edit(text, removed, &expected, "remove_forward");
    }
}

fn checked_edit(text: &str, result: Result<String, EditError>, expected: &Config, what: &str) {
    let new = match result {
        Ok(new) => new,
        Err(EditError::Invalid { error }) => {
            panic!("{what} refused a config that parses: {error}\n{text}")
        }
        // The editor's own safety net caught a shape it misjudged. With
        // line breaks that YAML knows and the editor does not (a lone `\r`,
        // NEL, LS, PS) that is a documented refusal; otherwise a bug.
        Err(e @ (EditError::Broke { .. } | EditError::NoEffect { .. })) => {
            let exotic = text
                .replace("\r\n", "\n")
                .contains(['\r', '\u{85}', '\u{2028}', '\u{2029}']);
            assert!(exotic, "{what}: editor bug: {e}\n{text}");
            return;
        }
        Err(_) => return,
    };
    checked_config(text, &new, expected, what);
    // Comment lines survive an edit, in order.
    let mut after = new.lines().map(str::trim);
    for comment in text.lines().map(str::trim).filter(|l| l.starts_with('#')) {
        assert!(
            after.any(|l| l == comment),
            "{what} dropped the comment {comment:?}\n--- before\n{text}\n--- after\n{new}"
        );
    }
}

fn checked_config(text: &str, new: &str, expected: &Config, what: &str) {
    match Config::parse(Path::new("peerup.yaml"), new) {
        Ok((c, _)) => assert!(
            c == *expected,
            "{what} gave another config\n--- before\n{text}\n--- after\n{new}"
        ),
        Err(e) => panic!("{what} gave a config that does not parse: {e}\n{new}"),
    }
}

/// `relay-server.yaml` (WIRE.md §11): the input, lossily decoded, goes to
/// [`RelayConfig::parse`]; a config that parses is rendered (plain and
/// commented) and parsed back.
///
/// # Panics
/// When an error does not name the file or a rendered config does not
/// parse back to itself.
pub fn config_relay(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let file = Path::new("relay-server.yaml");
    let config = match RelayConfig::parse(file, &text) {
        Ok((config, _)) => config,
        Err(e) => {
            assert!(
                e.to_string().starts_with("relay-server.yaml"),
                "an error does not name the file: {e}"
            );
            return;
        }
    };
    for rendered in [config.render(), config.render_commented()] {
        let (back, warnings) = RelayConfig::parse(file, &rendered)
            .unwrap_or_else(|e| panic!("a rendered relay config does not parse: {e}\n{rendered}"));
        assert_eq!(back, config, "parse(render(c)) != c\n{rendered}");
        assert!(
            warnings.iter().all(|w| w.kind != WarningKind::UnknownKey),
            "render wrote an unknown key: {warnings:?}\n{rendered}"
        );
        // Derived values agree.
        assert_eq!(back.session_duration(), config.session_duration());
        assert_eq!(back.session_data_limit(), config.session_data_limit());
    }
}

// ---------------------------------------------------------------------------
// confirm

/// The config file of the commit-confirmed scenarios.
const CFG: &str = "/etc/peerup/config.yaml";

/// Commit-confirmed (WIRE.md §10): each op of the input is an apply (with
/// a timeout and a crash after 0-3 of its actions, or none), a confirm in
/// the daemon or from the CLI (which may crash too), a restart, a time
/// step, a rollback, or a damaged marker, carried out on an in-memory disk
/// as the `model` proptest of `config::confirm` does. At the end every
/// deadline passes.
///
/// # Panics
/// When two changes are pending at once, the config is one that was never
/// written, the archive holds a config that was never confirmed, a settled
/// machine runs an unconfirmed config, a restart past the deadline keeps
/// the new config, an action renames a missing file, a marker does not
/// round-trip, or an unconfirmed config survives its deadline.
pub fn confirm(data: &[u8]) {
    let mut input = Input::new(data);
    let mut d = Disk::new(CFG, b"v0");
    let mut now = UnixTime::from_secs(1_000);
    // Every config ever confirmed (the first counts), and ever written.
    let mut confirmed: Vec<Vec<u8>> = vec![b"v0".to_vec()];
    let mut written: Vec<Vec<u8>> = vec![b"v0".to_vec()];
    // (old, new, deadline) of an unresolved apply.
    let mut pending: Option<(Vec<u8>, Vec<u8>, UnixTime)> = None;
    let mut next = 1u32;
    let (mut daemon, _, mut exit) = d.start(now);
    let mut ops = 0;
    while !input.is_empty() && ops < 256 {
        ops += 1;
        let mut restarts = 0;
        while exit {
            restarts += 1;
            assert!(restarts < 8, "the daemon keeps exiting at start");
            let (m, _, e) = d.start(now);
            daemon = m;
            exit = e;
            if let Some((old, _, deadline)) = &pending
                && now >= *deadline
            {
                assert!(
                    d.config() == *old,
                    "a restart past the deadline kept the new config"
                );
                pending = None;
            }
        }
        let b = input.u8();
        let crash_after = if b & 0x80 == 0 {
            None
        } else {
            Some(usize::from((b >> 5) & 3))
        };
        match b % 7 {
            0 => {
                let secs = 1 + u64::from(input.u16() % 599);
                let new = format!("v{next}").into_bytes();
                next += 1;
                let mut cli = d.cli();
                let current = d.config();
                match cli.apply(now, &current, &new, Duration::from_secs(secs)) {
                    Err(ConfirmError::AlreadyPending { .. }) => {
                        assert!(
                            pending.is_some()
                                || matches!(d.on_disk().marker, MarkerState::Present(_)),
                            "apply refused with nothing pending"
                        );
                        assert!(cli.poll_output().is_none(), "a refused apply wrote");
                    }
                    Err(e) => panic!("apply failed: {e}"),
                    Ok(()) => {
                        assert!(
                            pending.is_none(),
                            "apply accepted while another change is pending"
                        );
                        written.push(new.clone());
                        let crashed = d.run(&mut cli, crash_after.unwrap_or(usize::MAX)).2;
                        // The marker (second action) makes the change pending.
                        if !crashed || crash_after.unwrap_or(0) >= 2 {
                            pending =
                                Some((current, new, now.saturating_add(Duration::from_secs(secs))));
                        }
                    }
                }
                // README: apply, then restart the service.
                let (m, _, e) = d.start(now);
                daemon = m;
                exit = e;
            }
            1 => {
                let current = d.config();
                let outside_confirm = d.on_disk().marker == MarkerState::Absent;
                if daemon.confirm(&current).is_ok() {
                    // The daemon may not have seen a confirm from another
                    // process yet; confirming again is harmless.
                    assert!(
                        pending.is_some() || outside_confirm,
                        "the daemon confirmed with nothing pending"
                    );
                    d.run(&mut daemon, usize::MAX);
                    confirmed.push(current);
                    pending = None;
                }
            }
            2 => {
                let mut cli = d.cli();
                let current = d.config();
                if cli.confirm(&current).is_ok() {
                    let crashed = d.run(&mut cli, crash_after.unwrap_or(usize::MAX)).2;
                    // The marker's removal (first action) is the commit.
                    if !crashed || crash_after.unwrap_or(0) >= 1 {
                        confirmed.push(current);
                        pending = None;
                    }
                }
            }
            3 => {
                let (m, _, e) = d.start(now);
                daemon = m;
                exit = e;
            }
            4 => {
                now = now.saturating_add(Duration::from_secs(u64::from(input.u16() % 900)));
                if daemon
                    .poll_timeout()
                    .is_some_and(|deadline| deadline <= now)
                {
                    daemon.handle_timeout(now, &d.on_disk());
                    exit = d.run(&mut daemon, usize::MAX).1;
                }
            }
            5 => {
                let mut cli = d.cli();
                let archive = d.archive();
                if cli.rollback(archive.as_deref()).is_ok() {
                    d.run(&mut cli, usize::MAX);
                    pending = None;
                    let (m, _, e) = d.start(now);
                    daemon = m;
                    exit = e;
                }
            }
            _ => {
                // The marker is damaged on disk (a bad disk, a hand edit):
                // the change counts as unconfirmed and reverts at start.
                let junk = input.bytes(64).to_vec();
                if let Ok(marker) = PendingMarker::decode(&String::from_utf8_lossy(&junk)) {
                    let text = marker
                        .encode()
                        .unwrap_or_else(|e| panic!("a decoded marker does not encode: {e}"));
                    assert_eq!(
                        PendingMarker::decode(&text).as_ref(),
                        Ok(&marker),
                        "a marker does not round-trip"
                    );
                }
                let old = d.files.insert(d.paths.pending.clone(), junk);
                if !matches!(d.on_disk().marker, MarkerState::Damaged(_)) {
                    // Not damaged after all: put the file back.
                    match old {
                        Some(o) => d.files.insert(d.paths.pending.clone(), o),
                        None => d.files.remove(&d.paths.pending),
                    };
                } else {
                    let (m, events, e) = d.start(now);
                    assert!(
                        matches!(events.first(), Some(Event::DamagedMarker { .. })),
                        "a damaged marker went unreported: {events:?}"
                    );
                    if let Some((old, _, _)) = &pending {
                        assert!(
                            e && d.config() == *old,
                            "a damaged marker did not revert to the old config"
                        );
                    }
                    pending = None;
                    daemon = m;
                    exit = e;
                }
            }
        }
        // Invariants after every step.
        let config = d.config();
        assert!(
            written.contains(&config),
            "the config is neither old nor new"
        );
        if let Some(a) = d.archive() {
            assert!(
                confirmed.contains(&a),
                "the archive holds an unconfirmed config {a:?}"
            );
        }
        if let Some((old, new, _)) = &pending {
            assert!(
                config == *old || config == *new,
                "the config is neither old nor new"
            );
        }
        let marker = matches!(d.on_disk().marker, MarkerState::Present(_));
        if !marker && pending.is_none() {
            assert!(
                confirmed.contains(&config),
                "settled on an unconfirmed config"
            );
        }
    }
    // Finally every deadline passes: an unconfirmed change reverts, a
    // confirmed one stays.
    now = now.saturating_add(Duration::from_secs(10_000));
    let mut settled = false;
    for _ in 0..8 {
        let (mut m, _, e) = d.start(now);
        if !e {
            m.handle_timeout(now, &d.on_disk());
            if !d.run(&mut m, usize::MAX).1 {
                settled = true;
                break;
            }
        }
    }
    assert!(
        settled,
        "the daemon keeps exiting after every deadline passed"
    );
    assert!(
        confirmed.contains(&d.config()),
        "an unconfirmed config survived its deadline"
    );
    assert_eq!(d.on_disk(), OnDisk::settled(), "files left behind");
}
