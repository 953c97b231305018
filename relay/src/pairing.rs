//! Relay pairing on the relay (WIRE.md §13-§14): the operator's groups of
//! one-time codes, the `/peerup/relay-pair/1.0.0` handler, and the
//! introductions sent over `/peerup/peer-notify/1.0.0`.
//!
//! The decisions are the core's (`peerup_core::pairing`): the token store
//! (single use, burned at 3 failures, TTL, revoke), probation
//! (`peerup_net::gate::Probation`, consulted by the gate) and the
//! re-send window of introductions. This module carries them out: it
//! reads a request within its bounds, writes `relay_authorized_keys`
//! atomically before it answers, and opens the introduction streams.
//!
//! Order of a pairing, and what a failure at each step leaves:
//! 1. read the request (at most [`Request::MAX_LEN`] bytes, within
//!    [`PAIR_TIMEOUT`]): a bad or late one is a strike, nothing held;
//! 2. hold the token's slot ([`TokenStore::begin`]): an unknown, used,
//!    burned or expired code is a strike;
//! 3. add the joiner to `relay_authorized_keys` (file lock, atomic write)
//!    and load it: a failure frees the slot and counts against the token
//!    (burned at the third);
//! 4. record the member ([`TokenStore::complete`]) and answer;
//! 5. end the joiner's probation (its pairing-only connections close: it
//!    comes back as an authorized peer) and introduce it to the group's
//!    connected members.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use futures::AsyncWriteExt;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use peerup_core::authorized_keys::{Attributes, Document, GROUP};
use peerup_core::invite::pairing_code::{PairingCode, PairingToken};
use peerup_core::pairing::intro::IntroLog;
use peerup_core::pairing::tokens::{GroupInfo, GroupSpec, Member, TokenStore};
use peerup_core::pairing::wire::{
    GroupId, IntroducedPeer, Introduction, Paired, PairedPeer, Proof, Request, Response,
};
use peerup_core::relay_addr::RelayAddr;
use peerup_core::wire::protocol;
use peerup_net::streams::{Inbound, read_to_end_bounded};

use crate::server::Relay;

/// Longest wait for a joiner's request, and for an introduction's
/// delivery.
pub(crate) const PAIR_TIMEOUT: Duration = Duration::from_secs(10);

/// Pairing requests served at once (probation already bounds strangers;
/// this bounds authorized peers that pair again).
pub(crate) const MAX_CONCURRENT_PAIRINGS: usize = 16;

/// The relay's pairing state.
#[derive(Default)]
pub(crate) struct PairingState {
    pub(crate) tokens: Mutex<TokenStore>,
    pub(crate) intros: Mutex<IntroLog>,
    pub(crate) in_flight: std::sync::atomic::AtomicUsize,
    /// Peers with a pairing stream being served: one each.
    pub(crate) pairing_peers: Mutex<std::collections::HashSet<PeerId>>,
}

impl PairingState {
    pub(crate) fn tokens<T>(&self, f: impl FnOnce(&mut TokenStore) -> T) -> T {
        f(&mut self.tokens.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A group the operator made: its codes (text, in order) and where they
/// point.
#[derive(Debug, Clone)]
pub struct PairingGroup {
    /// The group.
    pub id: GroupId,
    /// One code per machine, each usable once.
    pub codes: Vec<String>,
    /// When the codes stop working.
    pub expires: peerup_core::time::UnixTime,
    /// The relay address the codes carry.
    pub relay_addr: Multiaddr,
}

/// Why a group could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PairingError {
    /// The request is out of bounds (count, TTL, prefix, too many groups).
    #[error(transparent)]
    Create(#[from] peerup_core::pairing::tokens::CreateError),
    /// No address a code can carry.
    #[error(
        "the relay has no IPv4 TCP address a pairing code can carry; pass one with --addr /ip4/<public-ip>/tcp/<port>"
    )]
    NoAddress,
    /// The address given cannot go into a code.
    #[error(transparent)]
    Encode(#[from] peerup_core::invite::code::EncodeError),
    /// No randomness.
    #[error(transparent)]
    Random(#[from] peerup_net::error::RandomError),
}

/// The address a code should carry: `preferred` when given (made
/// `/ip4/../tcp/..`), else the first listen address that is IPv4 TCP,
/// public ones first, then private, then loopback.
fn code_address(relay: &Relay, preferred: Option<&Multiaddr>) -> Option<Multiaddr> {
    let ipv4_tcp = |a: &Multiaddr| {
        let mut it = a.iter();
        match (it.next(), it.next()) {
            (Some(Protocol::Ip4(ip)), Some(Protocol::Tcp(port))) => Some((ip, port)),
            _ => None,
        }
    };
    if let Some(p) = preferred {
        let (ip, port) = ipv4_tcp(p)?;
        return Some(Multiaddr::from(ip).with(Protocol::Tcp(port)));
    }
    let mut candidates: Vec<(u8, Multiaddr)> = relay
        .listen_addrs()
        .iter()
        .filter_map(ipv4_tcp)
        .filter(|(ip, _)| !ip.is_unspecified())
        .map(|(ip, port)| {
            let rank = if ip.is_loopback() {
                2
            } else if ip.is_private() || ip.is_link_local() {
                1
            } else {
                0
            };
            (rank, Multiaddr::from(ip).with(Protocol::Tcp(port)))
        })
        .collect();
    candidates.sort_by_key(|(rank, _)| *rank);
    candidates.into_iter().next().map(|(_, a)| a)
}

impl Relay {
    /// Makes a group of `count` one-time pairing codes (WIRE.md §13) that
    /// point at `address` (or the relay's best listen address). While a
    /// code is unused, strangers are admitted on probation to pair.
    ///
    /// # Errors
    /// [`PairingError`]: bounds, no address a code can carry, no
    /// randomness.
    pub async fn create_pairing_group(
        &self,
        count: usize,
        spec: GroupSpec,
        address: Option<&Multiaddr>,
    ) -> Result<PairingGroup, PairingError> {
        let addr = code_address(self, address).ok_or(PairingError::NoAddress)?;
        let relay_addr = RelayAddr::new(addr.clone().with(Protocol::P2p(self.peer_id())))
            .map_err(|_| PairingError::NoAddress)?;
        let network = kad_network(self.kad_protocol());
        let now = self.runtime().wall_clock();
        let mut tokens = Vec::with_capacity(count.min(256));
        for _ in 0..count.min(peerup_core::pairing::tokens::MAX_CODES + 1) {
            tokens.push(peerup_net::error::random::<16>()?);
        }
        let ttl = spec.ttl;
        let id = loop {
            let id = GroupId::from_random(peerup_net::error::random::<4>()?);
            match self
                .pairing()
                .tokens(|t| t.create(now, id.clone(), &tokens, spec.clone()))
            {
                Err(peerup_core::pairing::tokens::CreateError::IdTaken(_)) => continue,
                other => break other?,
            }
        };
        let codes = tokens
            .iter()
            .map(|t| {
                PairingCode::new(PairingToken::from_bytes(*t), &relay_addr, network.clone())?
                    .encode()
            })
            .collect::<Result<Vec<String>, _>>()?;
        self.sync_enrollment().await;
        tracing::info!(group = %id, count = codes.len(), ttl = ?ttl, "pairing group created");
        Ok(PairingGroup {
            id,
            codes,
            expires: now.saturating_add(ttl),
            relay_addr: relay_addr.multiaddr().clone(),
        })
    }

    /// The live pairing groups, oldest first.
    pub fn pairing_groups(&self) -> Vec<GroupInfo> {
        let now = self.runtime().wall_clock();
        self.pairing().tokens(|t| t.list(now))
    }

    /// Revokes a group: its unused codes stop working at once. Its
    /// members stay authorized (`peerup-relay deauthorize` removes them);
    /// they are returned. `None` for an unknown group.
    pub async fn revoke_pairing_group(&self, id: &GroupId) -> Option<Vec<Member>> {
        let members = self.pairing().tokens(|t| t.revoke(id));
        self.sync_enrollment().await;
        if members.is_some() {
            tracing::info!(group = %id, "pairing group revoked");
        }
        members
    }
}

fn kad_network(kad: &str) -> Option<peerup_core::wire::label::DnsLabel> {
    let rest = kad.strip_prefix("/peerup/")?.strip_suffix("/kad/1.0.0")?;
    peerup_core::wire::label::DnsLabel::new(rest).ok()
}

/// Serves `/peerup/relay-pair/1.0.0` streams until the relay stops.
pub(crate) async fn serve(relay: Relay, mut incoming: peerup_net::streams::Incoming) {
    use futures::StreamExt;
    use std::sync::atomic::Ordering;
    while let Some(inbound) = incoming.next().await {
        let state = relay.pairing();
        let peer = inbound.peer;
        // No codes open: nothing to pair (an authorized peer is served
        // only while a group enrolls, so it cannot hold the slots).
        let now = relay.runtime().wall_clock();
        if !state.tokens(|t| t.enrolling(now)) {
            tracing::debug!(%peer, "pairing stream while no codes are open: dropped");
            continue;
        }
        // One stream at a time per peer, so one peer cannot take the
        // places of others.
        if !state
            .pairing_peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(peer)
        {
            tracing::debug!(%peer, "a second pairing stream from one peer: dropped");
            continue;
        }
        if state.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_CONCURRENT_PAIRINGS {
            state.in_flight.fetch_sub(1, Ordering::AcqRel);
            state
                .pairing_peers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&peer);
            tracing::warn!(%peer, "too many pairings at once: refusing one");
            continue;
        }
        let r = relay.clone();
        relay.runtime().spawn(Box::pin(async move {
            pair_one(&r, inbound).await;
            let state = r.pairing();
            state.in_flight.fetch_sub(1, Ordering::AcqRel);
            state
                .pairing_peers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&peer);
        }));
    }
}

async fn pair_one(relay: &Relay, inbound: Inbound) {
    let peer = inbound.peer;
    let mut stream = inbound.stream;
    let rt = relay.runtime();
    let request = rt
        .timeout(
            PAIR_TIMEOUT,
            read_to_end_bounded(&mut stream, Request::MAX_LEN),
        )
        .await
        .flatten()
        .and_then(|b| Request::decode(&b).ok());
    let answer = match request {
        Some(request) => redeem(relay, peer, &request).await,
        None => {
            tracing::warn!(%peer, "pairing: no valid request in time");
            Err(())
        }
    };
    let (response, joined) = match answer {
        Ok((paired, joined)) => (Response::Paired(paired), Some(joined)),
        Err(()) => {
            // Counted before the answer goes out: whoever reads the answer
            // sees the count.
            relay
                .stats()
                .pairing_failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (Response::failed(), None)
        }
    };
    if let Ok(bytes) = response.encode() {
        let _ = rt
            .timeout(PAIR_TIMEOUT, async {
                stream.write_all(&bytes).await?;
                stream.close().await
            })
            .await;
    }
    drop(stream);
    match joined {
        Some(joined) => {
            relay.end_probation(peer, true).await;
            introduce_group(relay, &joined.group, Some(peer)).await;
        }
        None => {
            relay.end_probation(peer, false).await;
        }
    }
}

/// What the relay learned from a successful pairing.
struct JoinedGroup {
    group: GroupId,
}

async fn redeem(
    relay: &Relay,
    peer: PeerId,
    request: &Request,
) -> Result<(Paired, JoinedGroup), ()> {
    let now = relay.runtime().wall_clock();
    let ticket = match relay
        .pairing()
        .tokens(|t| t.begin(now, request.token.as_bytes(), peer))
    {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(%peer, reason = %e, "pairing refused");
            return Err(());
        }
    };
    let group = ticket.group.clone();
    let (name, expires) = relay.pairing().tokens(|t| {
        let spec_expiry = t.authorization_ttl(&group).map(|d| now.saturating_add(d));
        (
            t.member_name(&ticket, Some(&request.name), now),
            spec_expiry,
        )
    });
    let added = match authorize_member(relay, peer, &name, &group, expires).await {
        Ok(added) => added,
        Err(e) => {
            let burned = relay.pairing().tokens(|t| t.abort(&ticket));
            tracing::error!(%peer, error = %e, burned, "pairing: could not authorize the joiner; the code stays usable until it fails 3 times");
            return Err(());
        }
    };
    let proof = Proof::compute(&request.token, &group);
    let joined = match relay
        .pairing()
        .tokens(|t| t.complete(now, &ticket, Some(&name), proof))
    {
        Ok(j) => j,
        Err(e) => {
            // Revoked or expired while we wrote the file: take back the
            // authorization this pairing made (fail closed).
            tracing::warn!(%peer, reason = %e, "pairing: the group went away; undoing the authorization");
            if added {
                let _ = unauthorize(relay, peer).await;
            }
            return Err(());
        }
    };
    tracing::info!(%peer, name = %joined.member.name, group = %group, "pairing: joined");
    relay.publish_paired(peer, &group);
    Ok((
        Paired {
            group: group.clone(),
            group_size: joined.group_size,
            peers: joined
                .others
                .iter()
                .filter(|m| relay.is_authorized(&m.peer))
                .map(|m| PairedPeer {
                    peer: m.peer,
                    name: m.name.clone(),
                })
                .collect(),
        },
        JoinedGroup { group },
    ))
}

/// Adds (or tags) `peer` in `relay_authorized_keys` and loads it;
/// returns whether this added its line. A peer whose line exists but does
/// not authorize it (expired, invalid) is refused: a code does not lift a
/// decision the operator made.
async fn authorize_member(
    relay: &Relay,
    peer: PeerId,
    name: &str,
    group: &GroupId,
    expires: Option<peerup_core::time::UnixTime>,
) -> Result<bool, String> {
    let now = relay.runtime().wall_clock();
    let mut added = false;
    let mut edit = |doc: &mut Document| -> Result<(), String> {
        if doc.lines().iter().any(|l| l.peer() == Some(peer)) {
            if doc.status(&peer, now) != peerup_core::authorized_keys::Status::Authorized {
                return Err(format!(
                    "{peer} has a line in relay_authorized_keys that does not authorize it (expired or invalid); the operator decides"
                ));
            }
            doc.set_attribute(&peer, GROUP, group.as_str())
                .map_err(|e| e.to_string())?;
            return Ok(());
        }
        added = true;
        let mut attrs = Attributes::new()
            .with(GROUP, group.as_str())
            .map_err(|e| e.to_string())?;
        if let Some(at) = expires {
            attrs = attrs.with_expires(at);
        }
        doc.add(peer, attrs, Some(name)).map_err(|e| e.to_string())
    };
    match relay.authorized_keys_path() {
        Some(path) => {
            edit_file(path, edit)?;
            // Load the file as it is now (and record its fingerprint), not
            // the document written: an operator's edit that landed since
            // must not be undone.
            relay
                .reload_authorized_keys_file(path)
                .await
                .map_err(|e| peerup_net::error::chain(&e))?;
        }
        None => {
            let mut doc = relay.authorized_keys_doc();
            edit(&mut doc)?;
            relay.reload_authorized_keys(doc).await;
        }
    }
    Ok(added)
}

/// Removes `peer`'s line (a pairing undone) and loads the file.
async fn unauthorize(relay: &Relay, peer: PeerId) -> Result<(), String> {
    match relay.authorized_keys_path() {
        Some(path) => {
            edit_file(path, |doc| {
                let _ = doc.remove(&peer);
                Ok(())
            })?;
            relay
                .reload_authorized_keys_file(path)
                .await
                .map_err(|e| peerup_net::error::chain(&e))?;
        }
        None => {
            let mut doc = relay.authorized_keys_doc();
            let _ = doc.remove(&peer);
            relay.reload_authorized_keys(doc).await;
        }
    }
    Ok(())
}

/// Reads, edits and atomically replaces the `authorized_keys` file under
/// its edit lock; returns the new document.
fn edit_file(
    path: &Path,
    edit: impl FnOnce(&mut Document) -> Result<(), String>,
) -> Result<Document, String> {
    let _lock = peerup_net::fs::lock_for_edit(path).map_err(|e| e.to_string())?;
    let bytes = match peerup_net::fs::read_private(path) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e.to_string()),
    };
    let mut doc = Document::parse(&String::from_utf8_lossy(&bytes));
    edit(&mut doc)?;
    peerup_net::fs::write_atomic(path, doc.render().as_bytes()).map_err(|e| e.to_string())?;
    Ok(doc)
}

/// Introduces `group`'s members to each other: every connected member
/// (but `except`... none: the joiner got the list in its answer) hears of
/// the others. With `fresh` (a member just joined) the re-send window is
/// reset so everyone hears at once.
pub(crate) async fn introduce_group(relay: &Relay, group: &GroupId, joined: Option<PeerId>) {
    if joined.is_some() {
        relay
            .pairing()
            .intros
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget_group(group.as_str());
    }
    let members = std::sync::Arc::new(group_members(relay, group));
    // One task per member: a member that stalls its stream does not delay
    // the others, nor hold the joiner's pairing place.
    for m in members.iter().map(|(p, _)| *p) {
        if Some(m) == joined || !relay.is_connected(&m) {
            continue;
        }
        let (r, g, all) = (relay.clone(), group.clone(), members.clone());
        relay.runtime().spawn(Box::pin(async move {
            introduce(&r, m, &g, &all).await;
        }));
    }
}

/// Introduces `member` to the other members of each group its line names
/// (a member reconnected), within the re-send window.
pub(crate) async fn introduce_to(relay: &Relay, member: PeerId) {
    let Some(group) = relay
        .authorized_keys_doc()
        .get(&member)
        .and_then(|e| e.attributes().get(GROUP).map(str::to_owned))
        .and_then(|g| GroupId::new(&g).ok())
    else {
        return;
    };
    let members = group_members(relay, &group);
    introduce(relay, member, &group, &members).await;
}

/// The group's members from `relay_authorized_keys` (lines with its
/// `group=`), with the proofs the token store still has.
fn group_members(relay: &Relay, group: &GroupId) -> Vec<(PeerId, IntroducedPeer)> {
    let live: Vec<Member> = relay.pairing().tokens(|t| t.members(group));
    relay
        .authorized_keys_doc()
        .entries()
        .filter(|e| e.attributes().get(GROUP) == Some(group.as_str()))
        // Only peers the relay lets in now: an expired or deauthorized
        // member is not handed to anyone.
        .filter(|e| relay.is_authorized(&e.peer()))
        .map(|e| {
            let peer = e.peer();
            let from_store = live.iter().find(|m| m.peer == peer);
            // An operator's comment may hold anything: only the characters
            // a name can, so the introduction always encodes.
            let name: String = from_store
                .map(|m| m.name.clone())
                .or_else(|| e.comment().map(str::to_owned))
                .unwrap_or_default()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                .take(peerup_core::pairing::tokens::MAX_NAME_LEN)
                .collect();
            (
                peer,
                IntroducedPeer {
                    peer,
                    name,
                    proof: from_store.map(|m| m.proof),
                },
            )
        })
        .collect()
}

async fn introduce(
    relay: &Relay,
    to: PeerId,
    group: &GroupId,
    members: &[(PeerId, IntroducedPeer)],
) {
    let others: Vec<IntroducedPeer> = members
        .iter()
        .filter(|(p, _)| *p != to)
        .map(|(_, m)| m.clone())
        .collect();
    if others.is_empty() || !members.iter().any(|(p, _)| *p == to) {
        return;
    }
    let now = relay.probation_now();
    let send = relay
        .pairing()
        .intros
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .should_send(now, to, group.as_str());
    if !send {
        return;
    }
    let size = relay
        .pairing()
        .tokens(|t| t.group_size(group))
        .unwrap_or_else(|| u8::try_from(members.len()).unwrap_or(u8::MAX));
    let message = Introduction {
        group: group.clone(),
        group_size: size,
        peers: others,
    };
    let Ok(bytes) = message.encode() else {
        return;
    };
    let rt = relay.runtime();
    let control = relay.streams();
    let sent = rt
        .timeout(PAIR_TIMEOUT, async {
            let mut out = control
                .open(to, StreamProtocol::new(protocol::PEER_NOTIFY))
                .await
                .ok()?;
            out.stream.write_all(&bytes).await.ok()?;
            out.stream.close().await.ok()
        })
        .await
        .flatten()
        .is_some();
    let count = message.peers.len();
    if sent {
        tracing::info!(peer = %to, %group, count, "introduced group members");
    } else {
        tracing::debug!(peer = %to, %group, "could not deliver introductions");
    }
}
