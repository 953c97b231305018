//! Authorization decisions: who may connect, and who may use what.
//!
//! A [`Policy`] is built from the parsed `authorized_keys`
//! ([`crate::authorized_keys::Document`]), the gating switch and the
//! services' `allowed_peers`; it answers, for a peer at a given wall-clock
//! time:
//!
//! | what | rule |
//! |---|---|
//! | outbound connection or stream | always allowed (relays, DHT, peers we dial) |
//! | inbound connection | listed and unexpired; while a pairing window is open, anyone, but for the invite protocol only |
//! | inbound service stream | listed and unexpired, the service exists and is enabled, and the peer is in its `allowed_peers` when that list is set |
//! | inbound ping | listed and unexpired |
//! | inbound invite stream | only while a pairing window is open |
//! | gating disabled | every inbound connection and ping is allowed, flagged so the caller warns; `allowed_peers` still applies |
//!
//! Relayed and direct connections get the same answers: a relayed
//! connection is how a peer behind CGNAT reaches us at all (WIRE.md §1).
//! The `expires=` boundary: at `now == expires` the peer is expired.
//!
//! Decisions are pure. What changes them comes in as inputs:
//! [`Policy::reload`] (a new `authorized_keys`), [`Policy::open_pairing`] /
//! [`Policy::close_pairing`], and time. Each returns the connected peers
//! that are no longer allowed, which the caller disconnects: that is live
//! revocation. [`Policy::next_expiry`] tells the caller when to call
//! [`Policy::revalidate`] so an `expires=` passing mid-connection also
//! disconnects.

use std::collections::{BTreeMap, BTreeSet};

use crate::PeerId;
use crate::authorized_keys::{Document, Status};
use crate::time::UnixTime;
use crate::wire::ConnectionPath;
use crate::wire::label::DnsLabel;

/// Who started a connection or stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The peer reached us.
    Inbound,
    /// We reached the peer.
    Outbound,
}

/// The protocol of a stream, as far as authorization cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamKind<'a> {
    /// `/peerup/<service>/1.0.0`.
    Service(&'a DnsLabel),
    /// The application ping.
    Ping,
    /// `/peerup/invite/1.0.0`.
    Invite,
}

/// Why something was denied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DenyReason {
    /// The peer is not in authorized_keys.
    #[error("peer is not in authorized_keys")]
    NotListed,
    /// Its entry expired.
    #[error("authorization expired at {at}")]
    Expired {
        /// When.
        at: UnixTime,
    },
    /// An invalid line names the peer.
    #[error("authorized_keys line {line} naming this peer is invalid")]
    InvalidEntry {
        /// The line.
        line: usize,
    },
    /// No such service is exposed.
    #[error("no service `{service}` is exposed")]
    UnknownService {
        /// The service.
        service: String,
    },
    /// The service exists but is disabled.
    #[error("service `{service}` is disabled")]
    ServiceDisabled {
        /// The service.
        service: String,
    },
    /// The peer is not in the service's `allowed_peers`.
    #[error("peer is not in allowed_peers of service `{service}`")]
    NotAllowedForService {
        /// The service.
        service: String,
    },
    /// An invite stream with no pairing window open.
    #[error("no invite is open")]
    NoPairing,
    /// A peer let in only to pair opened something else.
    #[error("peer is connected only to pair; {what} needs authorization")]
    PairingOnly {
        /// What it tried.
        what: String,
    },
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// Allowed only because gating is disabled: the caller logs a warning.
    AllowUngated,
    /// A connection from a peer that may only run the invite protocol
    /// (a pairing window is open).
    AllowPairingOnly,
    /// Denied.
    Deny(DenyReason),
}

impl Decision {
    /// Whether the thing may proceed.
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Decision::Deny(_))
    }
}

/// One service's access rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRule {
    /// Whether the service is exposed.
    pub enabled: bool,
    /// When set, only these peers may use it.
    pub allowed_peers: Option<BTreeSet<PeerId>>,
}

/// A condition the caller must shout about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// Gating is disabled: any peer can connect and ping.
    GatingDisabled,
    /// Gating is on and nobody is authorized: nobody can connect.
    NoAuthorizedPeers,
    /// authorized_keys has invalid lines; the peers they name are denied.
    InvalidLines {
        /// Their line numbers.
        lines: Vec<usize>,
    },
}

/// A live connection, as the caller tracks it for revalidation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// The remote peer.
    pub peer: PeerId,
    /// Who dialed.
    pub direction: Direction,
    /// Whether it was let in only to pair ([`Decision::AllowPairingOnly`]).
    pub pairing_only: bool,
}

impl Connection {
    /// An inbound connection from an authorized peer.
    pub fn inbound(peer: PeerId) -> Self {
        Connection {
            peer,
            direction: Direction::Inbound,
            pairing_only: false,
        }
    }

    /// An outbound connection.
    pub fn outbound(peer: PeerId) -> Self {
        Connection {
            peer,
            direction: Direction::Outbound,
            pairing_only: false,
        }
    }

    /// An inbound connection let in only to pair.
    pub fn pairing(peer: PeerId) -> Self {
        Connection {
            peer,
            direction: Direction::Inbound,
            pairing_only: true,
        }
    }
}

/// What changed on a reload or revalidation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Connected peers that are no longer allowed: disconnect them.
    pub revoked: Vec<PeerId>,
    /// Every peer authorized before and not any more, connected or not
    /// (one admitted the moment before the reload may not be in the
    /// caller's list of connections yet): disconnect these too.
    pub removed: Vec<PeerId>,
    /// Warnings about the new state.
    pub warnings: Vec<Warning>,
}

/// The authorization policy of a node.
#[derive(Debug, Clone)]
pub struct Policy {
    gating: bool,
    /// Valid, untainted entries and their expiry.
    keys: BTreeMap<PeerId, Option<UnixTime>>,
    /// Peers named on invalid lines, with the first such line.
    tainted: BTreeMap<PeerId, usize>,
    services: BTreeMap<DnsLabel, ServiceRule>,
    pairing: bool,
    invalid_lines: Vec<usize>,
    /// The relays in the config: listed after relay pairing (WIRE.md §13)
    /// so their introductions are accepted, but never served a service
    /// unless its `allowed_peers` names them.
    relays: BTreeSet<PeerId>,
}

impl Policy {
    /// A policy from the parsed `authorized_keys` and the gating switch.
    /// Returns the warnings the caller must show.
    pub fn new(gating: bool, keys: &Document) -> (Self, Vec<Warning>) {
        let mut p = Policy {
            gating,
            keys: BTreeMap::new(),
            tainted: BTreeMap::new(),
            services: BTreeMap::new(),
            pairing: false,
            invalid_lines: Vec::new(),
            relays: BTreeSet::new(),
        };
        p.load(keys);
        let w = p.warnings();
        (p, w)
    }

    /// The relays of the config. A relay's `authorized_keys` line (relay
    /// pairing writes one) lets it connect and introduce peers; a service
    /// stream from it is refused unless the service's `allowed_peers`
    /// names it: the relay operator does not get the machines' services.
    pub fn set_relays(&mut self, relays: impl IntoIterator<Item = PeerId>) {
        self.relays = relays.into_iter().collect();
    }

    /// Adds or replaces a service's rule.
    pub fn with_service(mut self, name: DnsLabel, rule: ServiceRule) -> Self {
        self.set_service(name, rule);
        self
    }

    /// Adds or replaces a service's rule.
    pub fn set_service(&mut self, name: DnsLabel, rule: ServiceRule) {
        self.services.insert(name, rule);
    }

    /// Removes a service.
    pub fn remove_service(&mut self, name: &DnsLabel) {
        self.services.remove(name);
    }

    /// Whether gating is on.
    pub fn is_gating(&self) -> bool {
        self.gating
    }

    /// Whether a pairing window is open.
    pub fn is_pairing(&self) -> bool {
        self.pairing
    }

    fn load(&mut self, doc: &Document) {
        self.keys.clear();
        self.tainted.clear();
        self.invalid_lines.clear();
        for line in doc.lines() {
            if let Some(err) = line.error() {
                self.invalid_lines.push(err.line());
                if let Some(peer) = line.peer() {
                    self.tainted.entry(peer).or_insert(line.number());
                }
            }
        }
        for e in doc.entries() {
            if !self.tainted.contains_key(&e.peer()) {
                self.keys.insert(e.peer(), e.expires());
            }
        }
    }

    fn warnings(&self) -> Vec<Warning> {
        let mut w = Vec::new();
        if !self.gating {
            w.push(Warning::GatingDisabled);
        } else if self.keys.is_empty() {
            w.push(Warning::NoAuthorizedPeers);
        }
        if !self.invalid_lines.is_empty() {
            w.push(Warning::InvalidLines {
                lines: self.invalid_lines.clone(),
            });
        }
        w
    }

    /// Whether `peer` is listed, valid and unexpired at `now`.
    pub fn status(&self, peer: &PeerId, now: UnixTime) -> Status {
        if let Some(line) = self.tainted.get(peer) {
            return Status::Invalid { line: *line };
        }
        match self.keys.get(peer) {
            None => Status::NotListed,
            Some(Some(at)) if now >= *at => Status::Expired { at: *at },
            Some(_) => Status::Authorized,
        }
    }

    fn listed(&self, peer: &PeerId, now: UnixTime) -> Result<(), DenyReason> {
        match self.status(peer, now) {
            Status::Authorized => Ok(()),
            Status::Expired { at } => Err(DenyReason::Expired { at }),
            Status::Invalid { line } => Err(DenyReason::InvalidEntry { line }),
            Status::NotListed => Err(DenyReason::NotListed),
        }
    }

    /// May a connection with `peer` exist? Checked when it is established,
    /// before any stream.
    pub fn decide_connection(
        &self,
        peer: &PeerId,
        direction: Direction,
        path: ConnectionPath,
        now: UnixTime,
    ) -> Decision {
        let _ = path;
        if direction == Direction::Outbound {
            return Decision::Allow;
        }
        if !self.gating {
            return Decision::AllowUngated;
        }
        match self.listed(peer, now) {
            Ok(()) => Decision::Allow,
            Err(_) if self.pairing => Decision::AllowPairingOnly,
            Err(reason) => Decision::Deny(reason),
        }
    }

    /// May `peer` open a stream of `kind`? Checked by every protocol
    /// handler, whatever the connection check said.
    pub fn decide_stream(
        &self,
        peer: &PeerId,
        kind: StreamKind<'_>,
        direction: Direction,
        path: ConnectionPath,
        now: UnixTime,
    ) -> Decision {
        let _ = path;
        if direction == Direction::Outbound {
            return Decision::Allow;
        }
        match kind {
            StreamKind::Invite => {
                if self.pairing {
                    Decision::Allow
                } else {
                    Decision::Deny(DenyReason::NoPairing)
                }
            }
            StreamKind::Ping => self.gate(peer, now, "ping"),
            StreamKind::Service(name) => {
                let Some(rule) = self.services.get(name) else {
                    return Decision::Deny(DenyReason::UnknownService {
                        service: name.to_string(),
                    });
                };
                if !rule.enabled {
                    return Decision::Deny(DenyReason::ServiceDisabled {
                        service: name.to_string(),
                    });
                }
                let decision = self.gate(peer, now, &format!("service `{name}`"));
                if !decision.is_allowed() {
                    return decision;
                }
                match &rule.allowed_peers {
                    Some(allowed) if !allowed.contains(peer) => {
                        Decision::Deny(DenyReason::NotAllowedForService {
                            service: name.to_string(),
                        })
                    }
                    None if self.relays.contains(peer) => {
                        Decision::Deny(DenyReason::NotAllowedForService {
                            service: name.to_string(),
                        })
                    }
                    _ => decision,
                }
            }
        }
    }

    fn gate(&self, peer: &PeerId, now: UnixTime, what: &str) -> Decision {
        if !self.gating {
            return Decision::AllowUngated;
        }
        match self.listed(peer, now) {
            Ok(()) => Decision::Allow,
            Err(_) if self.pairing => Decision::Deny(DenyReason::PairingOnly {
                what: what.to_owned(),
            }),
            Err(reason) => Decision::Deny(reason),
        }
    }

    /// Replaces authorized_keys (a reload after an edit or SIGHUP); returns
    /// the `connected` peers that must now be dropped: every connection,
    /// whoever dialed it, to a peer that was authorized and no longer is
    /// (its streams into us could otherwise live on), and inbound
    /// connections that are no longer allowed.
    pub fn reload(
        &mut self,
        keys: &Document,
        connected: impl IntoIterator<Item = Connection>,
        now: UnixTime,
    ) -> Change {
        let before = self.authorized(now);
        self.load(keys);
        self.change_since(&before, connected, now)
    }

    /// After a change of the keys: the `connected` peers to drop (those
    /// revalidation refuses, and, with gating on, every connection to a
    /// peer in `before` that is no longer authorized), and every peer of
    /// `before` no longer authorized.
    fn change_since(
        &self,
        before: &BTreeSet<PeerId>,
        connected: impl IntoIterator<Item = Connection>,
        now: UnixTime,
    ) -> Change {
        let connected: Vec<Connection> = connected.into_iter().collect();
        let mut revoked: BTreeSet<PeerId> = self
            .revalidate(connected.iter().copied(), now)
            .revoked
            .into_iter()
            .collect();
        let mut removed = Vec::new();
        if self.gating {
            let gone = |p: &PeerId| before.contains(p) && self.status(p, now) != Status::Authorized;
            revoked.extend(connected.iter().filter(|c| gone(&c.peer)).map(|c| c.peer));
            removed = before.iter().filter(|p| gone(p)).copied().collect();
        }
        Change {
            revoked: revoked.into_iter().collect(),
            removed,
            warnings: self.warnings(),
        }
    }

    /// Applies only what `keys` takes away: peers it does not authorize
    /// lose their authorization, earlier `expires=` take effect, and
    /// nobody is added. For a file that cannot be trusted to add anyone
    /// (it failed its permission or ownership check) but whose removals
    /// are always safe to honour.
    pub fn reload_removals(
        &mut self,
        keys: &Document,
        connected: impl IntoIterator<Item = Connection>,
        now: UnixTime,
    ) -> Change {
        let (new, _) = Policy::new(self.gating, keys);
        let before = self.authorized(now);
        let peers: Vec<PeerId> = self.keys.keys().copied().collect();
        for peer in peers {
            match (new.status(&peer, now), new.keys.get(&peer)) {
                (Status::Authorized, Some(expiry)) => {
                    let old = self.keys.get(&peer).copied().flatten();
                    let earlier = match (old, *expiry) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    self.keys.insert(peer, earlier);
                }
                _ => {
                    self.keys.remove(&peer);
                }
            }
        }
        self.change_since(&before, connected, now)
    }

    /// Which `connected` peers are no longer allowed at `now`: a listed
    /// peer that expired (every connection to it, whoever dialed), an
    /// inbound peer that is not allowed, and a pairing-only peer that did
    /// not pair once the window closed (every connection to it, whoever
    /// dialed). A peer that was authorized and no longer is gets dropped
    /// even while a pairing window is open. Peers that were never listed
    /// and that we dialed (relays, the DHT) are kept.
    ///
    /// A connection let in only to pair is served the invite protocol
    /// alone; the caller closes it when the window closes even when its
    /// peer paired (the peer reconnects with every protocol).
    pub fn revalidate(
        &self,
        connected: impl IntoIterator<Item = Connection>,
        now: UnixTime,
    ) -> Change {
        let connected: Vec<Connection> = connected.into_iter().collect();
        // A peer let in to pair that did not pair leaves with the window,
        // by every connection, including any we dialed to it meanwhile.
        let strangers: BTreeSet<PeerId> = if self.gating && !self.pairing {
            connected
                .iter()
                .filter(|c| c.pairing_only && self.status(&c.peer, now) != Status::Authorized)
                .map(|c| c.peer)
                .collect()
        } else {
            BTreeSet::new()
        };
        let revoked = connected
            .into_iter()
            .filter(|c| {
                if strangers.contains(&c.peer) {
                    return true;
                }
                if self.gating
                    && matches!(
                        self.status(&c.peer, now),
                        Status::Expired { .. } | Status::Invalid { .. }
                    )
                {
                    return true;
                }
                let decision =
                    self.decide_connection(&c.peer, c.direction, ConnectionPath::Direct, now);
                let keep = match decision {
                    Decision::Allow | Decision::AllowUngated => true,
                    Decision::AllowPairingOnly => c.pairing_only,
                    Decision::Deny(_) => false,
                };
                !keep
            })
            .map(|c| c.peer)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        Change {
            revoked,
            removed: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Opens a pairing window (an invite is waiting): unauthorized peers
    /// may connect, for the invite protocol only.
    pub fn open_pairing(&mut self) {
        self.pairing = true;
    }

    /// Closes the pairing window; returns the connected peers that were let
    /// in only to pair (and did not become authorized): drop them.
    pub fn close_pairing(
        &mut self,
        connected: impl IntoIterator<Item = Connection>,
        now: UnixTime,
    ) -> Change {
        self.pairing = false;
        self.revalidate(connected, now)
    }

    /// The earliest `expires` after `now`, when [`Policy::revalidate`]
    /// should run next.
    pub fn next_expiry(&self, now: UnixTime) -> Option<UnixTime> {
        self.keys
            .values()
            .flatten()
            .filter(|at| **at > now)
            .min()
            .copied()
    }

    /// The peers authorized at `now`.
    pub fn authorized(&self, now: UnixTime) -> BTreeSet<PeerId> {
        self.keys
            .keys()
            .filter(|p| self.status(p, now) == Status::Authorized)
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
    const B: &str = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA";

    fn p(s: &str) -> PeerId {
        s.parse().unwrap()
    }

    fn stranger() -> PeerId {
        crate::identity::keypair_from_seed([9; 32])
            .public()
            .to_peer_id()
    }

    fn t(secs: i64) -> UnixTime {
        UnixTime::from_secs(secs)
    }

    fn doc(text: &str) -> Document {
        Document::parse(text)
    }

    fn ssh() -> DnsLabel {
        DnsLabel::new("ssh").unwrap()
    }

    fn policy(text: &str) -> Policy {
        Policy::new(true, &doc(text)).0
    }

    const IN: Direction = Direction::Inbound;
    const OUT: Direction = Direction::Outbound;

    #[test]
    fn outbound_is_always_allowed() {
        let pol = policy("");
        for path in [ConnectionPath::Direct, ConnectionPath::Relayed] {
            assert_eq!(
                pol.decide_connection(&stranger(), OUT, path, t(0)),
                Decision::Allow
            );
            let s = ssh();
            assert_eq!(
                pol.decide_stream(&stranger(), StreamKind::Service(&s), OUT, path, t(0)),
                Decision::Allow
            );
        }
    }

    #[test]
    fn a_listed_relay_gets_no_service_unless_named() {
        let mut pol = policy(&format!("{A}\n{B}\n")).with_service(
            ssh(),
            ServiceRule {
                enabled: true,
                allowed_peers: None,
            },
        );
        pol.set_relays([p(B)]);
        let s = ssh();
        let path = ConnectionPath::Direct;
        assert_eq!(
            pol.decide_stream(&p(A), StreamKind::Service(&s), IN, path, t(0)),
            Decision::Allow
        );
        assert_eq!(
            pol.decide_stream(&p(B), StreamKind::Service(&s), IN, path, t(0)),
            Decision::Deny(DenyReason::NotAllowedForService {
                service: "ssh".into()
            })
        );
        // Its connection and ping are allowed: it is listed.
        assert_eq!(
            pol.decide_connection(&p(B), IN, path, t(0)),
            Decision::Allow
        );
        // Named in allowed_peers, it is served.
        pol.set_service(
            ssh(),
            ServiceRule {
                enabled: true,
                allowed_peers: Some([p(B)].into()),
            },
        );
        assert_eq!(
            pol.decide_stream(&p(B), StreamKind::Service(&s), IN, path, t(0)),
            Decision::Allow
        );
    }

    #[test]
    fn inbound_only_for_listed_peers_direct_and_relayed() {
        let pol = policy(&format!("{A}\n"));
        for path in [ConnectionPath::Direct, ConnectionPath::Relayed] {
            assert_eq!(
                pol.decide_connection(&p(A), IN, path, t(0)),
                Decision::Allow
            );
            assert_eq!(
                pol.decide_connection(&stranger(), IN, path, t(0)),
                Decision::Deny(DenyReason::NotListed)
            );
            assert_eq!(
                pol.decide_stream(&p(A), StreamKind::Ping, IN, path, t(0)),
                Decision::Allow
            );
            assert_eq!(
                pol.decide_stream(&stranger(), StreamKind::Ping, IN, path, t(0)),
                Decision::Deny(DenyReason::NotListed)
            );
        }
    }

    #[test]
    fn expiry_boundary_is_exclusive() {
        let pol = policy(&format!("{A}  expires=1970-01-01T00:01:40Z\n"));
        assert_eq!(
            pol.decide_connection(&p(A), IN, ConnectionPath::Direct, t(99)),
            Decision::Allow
        );
        assert_eq!(
            pol.decide_connection(
                &p(A),
                IN,
                ConnectionPath::Direct,
                UnixTime::from_millis(99_999)
            ),
            Decision::Allow
        );
        assert_eq!(
            pol.decide_connection(&p(A), IN, ConnectionPath::Direct, t(100)),
            Decision::Deny(DenyReason::Expired { at: t(100) })
        );
        assert_eq!(
            pol.decide_stream(&p(A), StreamKind::Ping, IN, ConnectionPath::Relayed, t(101)),
            Decision::Deny(DenyReason::Expired { at: t(100) })
        );
        assert_eq!(pol.next_expiry(t(0)), Some(t(100)));
        assert_eq!(pol.next_expiry(t(100)), None);
    }

    #[test]
    fn expiry_mid_connection_revokes() {
        let pol = policy(&format!("{A}  expires=1970-01-01T00:01:40Z\n{B}\n"));
        let connected = [Connection::inbound(p(A)), Connection::inbound(p(B))];
        assert!(pol.revalidate(connected, t(99)).revoked.is_empty());
        assert_eq!(pol.revalidate(connected, t(100)).revoked, vec![p(A)]);
        // Every connection to an expired peer goes, whoever dialed it: its
        // streams into us must not outlive its authorization.
        assert_eq!(
            pol.revalidate([Connection::outbound(p(A))], t(100)).revoked,
            vec![p(A)]
        );
        // A never-listed peer we dialed (a relay) stays.
        assert!(
            pol.revalidate([Connection::outbound(stranger())], t(100))
                .revoked
                .is_empty()
        );
    }

    #[test]
    fn invalid_line_denies_the_peer_it_names() {
        let (pol, warnings) = Policy::new(true, &doc(&format!("{A}\n{A}  expires=never\n")));
        assert_eq!(
            pol.decide_connection(&p(A), IN, ConnectionPath::Direct, t(0)),
            Decision::Deny(DenyReason::InvalidEntry { line: 2 })
        );
        assert!(
            warnings.contains(&Warning::InvalidLines { lines: vec![2] }),
            "{warnings:?}"
        );
    }

    #[test]
    fn service_rules() {
        let s = ssh();
        let web = DnsLabel::new("web").unwrap();
        let off = DnsLabel::new("off").unwrap();
        let pol = policy(&format!("{A}\n{B}\n"))
            .with_service(
                s.clone(),
                ServiceRule {
                    enabled: true,
                    allowed_peers: Some([p(A)].into()),
                },
            )
            .with_service(
                web.clone(),
                ServiceRule {
                    enabled: true,
                    allowed_peers: None,
                },
            )
            .with_service(
                off.clone(),
                ServiceRule {
                    enabled: false,
                    allowed_peers: None,
                },
            );
        let d = |peer: &PeerId, svc: &DnsLabel| {
            pol.decide_stream(
                peer,
                StreamKind::Service(svc),
                IN,
                ConnectionPath::Relayed,
                t(0),
            )
        };
        assert_eq!(d(&p(A), &s), Decision::Allow);
        assert_eq!(
            d(&p(B), &s),
            Decision::Deny(DenyReason::NotAllowedForService {
                service: "ssh".into()
            })
        );
        assert_eq!(d(&p(B), &web), Decision::Allow);
        assert_eq!(d(&stranger(), &web), Decision::Deny(DenyReason::NotListed));
        assert_eq!(
            d(&p(A), &off),
            Decision::Deny(DenyReason::ServiceDisabled {
                service: "off".into()
            })
        );
        let nope = DnsLabel::new("nope").unwrap();
        assert_eq!(
            d(&p(A), &nope),
            Decision::Deny(DenyReason::UnknownService {
                service: "nope".into()
            })
        );
    }

    #[test]
    fn gating_disabled_allows_with_a_warning_but_keeps_allowed_peers() {
        let s = ssh();
        let (pol, warnings) = Policy::new(false, &doc(""));
        let pol = pol.with_service(
            s.clone(),
            ServiceRule {
                enabled: true,
                allowed_peers: Some([p(A)].into()),
            },
        );
        assert_eq!(warnings, vec![Warning::GatingDisabled]);
        assert_eq!(
            pol.decide_connection(&stranger(), IN, ConnectionPath::Relayed, t(0)),
            Decision::AllowUngated
        );
        assert_eq!(
            pol.decide_stream(
                &stranger(),
                StreamKind::Ping,
                IN,
                ConnectionPath::Direct,
                t(0)
            ),
            Decision::AllowUngated
        );
        assert_eq!(
            pol.decide_stream(
                &p(A),
                StreamKind::Service(&s),
                IN,
                ConnectionPath::Direct,
                t(0)
            ),
            Decision::AllowUngated
        );
        assert_eq!(
            pol.decide_stream(
                &stranger(),
                StreamKind::Service(&s),
                IN,
                ConnectionPath::Direct,
                t(0)
            ),
            Decision::Deny(DenyReason::NotAllowedForService {
                service: "ssh".into()
            })
        );
    }

    #[test]
    fn empty_list_warns() {
        let (_, warnings) = Policy::new(true, &doc("# nobody yet\n"));
        assert_eq!(warnings, vec![Warning::NoAuthorizedPeers]);
    }

    #[test]
    fn pairing_window_lets_strangers_in_for_the_invite_only() {
        let mut pol = policy(&format!("{A}\n")).with_service(
            ssh(),
            ServiceRule {
                enabled: true,
                allowed_peers: None,
            },
        );
        let s = ssh();
        assert_eq!(
            pol.decide_stream(
                &stranger(),
                StreamKind::Invite,
                IN,
                ConnectionPath::Relayed,
                t(0)
            ),
            Decision::Deny(DenyReason::NoPairing)
        );
        pol.open_pairing();
        assert_eq!(
            pol.decide_connection(&stranger(), IN, ConnectionPath::Relayed, t(0)),
            Decision::AllowPairingOnly
        );
        assert_eq!(
            pol.decide_connection(&p(A), IN, ConnectionPath::Relayed, t(0)),
            Decision::Allow
        );
        assert_eq!(
            pol.decide_stream(
                &stranger(),
                StreamKind::Invite,
                IN,
                ConnectionPath::Relayed,
                t(0)
            ),
            Decision::Allow
        );
        assert!(matches!(
            pol.decide_stream(
                &stranger(),
                StreamKind::Service(&s),
                IN,
                ConnectionPath::Relayed,
                t(0)
            ),
            Decision::Deny(DenyReason::PairingOnly { .. })
        ));
        assert!(matches!(
            pol.decide_stream(
                &stranger(),
                StreamKind::Ping,
                IN,
                ConnectionPath::Relayed,
                t(0)
            ),
            Decision::Deny(DenyReason::PairingOnly { .. })
        ));
        // Closing the window drops the stranger but keeps A.
        let change = pol.close_pairing(
            [Connection::pairing(stranger()), Connection::inbound(p(A))],
            t(0),
        );
        assert_eq!(change.revoked, vec![stranger()]);
        assert!(!pol.is_pairing());
    }

    #[test]
    fn revocation_applies_during_a_pairing_window() {
        let mut pol = policy(&format!("{A}\n"));
        pol.open_pairing();
        let connected = [Connection::inbound(p(A)), Connection::pairing(stranger())];
        let change = pol.reload(&doc(""), connected, t(0));
        assert_eq!(change.revoked, vec![p(A)]);
        // The joiner that paired is kept when the window closes.
        pol.reload(&doc(&format!("{B}\n")), [], t(0));
        let change = pol.close_pairing(
            [Connection::pairing(p(B)), Connection::pairing(stranger())],
            t(0),
        );
        assert_eq!(change.revoked, vec![stranger()]);
    }

    #[test]
    fn removals_apply_from_an_untrusted_file_and_nothing_else() {
        let mut pol = policy(&format!("{A}\n{B}  expires=2030-01-01T00:00:00Z\n"));
        // The new file drops A, adds the stranger, and brings B's expiry
        // forward: only the removal and the earlier expiry apply.
        let s = stranger();
        let new = doc(&format!("{s}\n{B}  expires=2029-01-01T00:00:00Z\n"));
        let change = pol.reload_removals(&new, [Connection::inbound(p(A))], t(0));
        assert_eq!(change.revoked, vec![p(A)]);
        assert_eq!(change.removed, vec![p(A)]);
        assert_eq!(pol.status(&s, t(0)), Status::NotListed);
        let at = UnixTime::parse_rfc3339("2029-01-01T00:00:00Z").unwrap();
        assert_eq!(pol.next_expiry(t(0)), Some(at));
        // A later expiry in the untrusted file does not extend it.
        let later = doc(&format!("{B}  expires=2031-01-01T00:00:00Z\n"));
        pol.reload_removals(&later, [], t(0));
        assert_eq!(pol.next_expiry(t(0)), Some(at));
    }

    #[test]
    fn a_removed_peer_not_yet_seen_connected_is_reported() {
        let mut pol = policy(&format!("{A}\n{B}\n"));
        let change = pol.reload(&doc(&format!("{B}\n")), [], t(0));
        assert!(change.revoked.is_empty());
        assert_eq!(change.removed, vec![p(A)]);
    }

    #[test]
    fn a_stranger_that_did_not_pair_leaves_by_every_connection() {
        let mut pol = policy(&format!("{A}\n"));
        pol.open_pairing();
        // While the window is open we dialed the stranger back (a hole
        // punch, the DHT): that connection is kept for now...
        let connected = [
            Connection::pairing(stranger()),
            Connection::outbound(stranger()),
            Connection::outbound(p(B)),
        ];
        assert!(pol.revalidate(connected, t(0)).revoked.is_empty());
        // ...and goes with the window, as does the pairing connection.
        // B, never listed but dialed by us (a relay), stays.
        let change = pol.close_pairing(connected, t(0));
        assert_eq!(change.revoked, vec![stranger()]);
        // A peer dialed by us that never asked to pair is not affected.
        let change = pol.revalidate([Connection::outbound(stranger())], t(0));
        assert!(change.revoked.is_empty());
    }

    #[test]
    fn reload_revokes_removed_peers_live() {
        let mut pol = policy(&format!("{A}\n{B}\n"));
        // A was authorized: its connection goes even though we dialed it.
        let connected = [
            Connection::outbound(p(A)),
            Connection::inbound(p(B)),
            Connection::outbound(stranger()),
        ];
        let change = pol.reload(&doc(&format!("{B}\n")), connected, t(0));
        assert_eq!(change.revoked, vec![p(A)]);
        assert!(change.warnings.is_empty());
        assert_eq!(pol.authorized(t(0)), [p(B)].into());
        let change = pol.reload(&doc(""), [Connection::inbound(p(B))], t(0));
        assert_eq!(change.revoked, vec![p(B)]);
        assert_eq!(change.warnings, vec![Warning::NoAuthorizedPeers]);
    }

    #[test]
    fn reload_that_adds_a_peer_lets_it_in() {
        let mut pol = policy("");
        assert!(
            !pol.decide_connection(&p(A), IN, ConnectionPath::Direct, t(0))
                .is_allowed()
        );
        pol.reload(&doc(&format!("{A}\n")), [], t(0));
        assert!(
            pol.decide_connection(&p(A), IN, ConnectionPath::Direct, t(0))
                .is_allowed()
        );
    }
}
