//! Relay pairing on a node (WIRE.md §13-§14): joining a relay's group
//! with a version-2 code, and applying the relay's introductions.
//!
//! The rules are the core's (`peerup_core::pairing::intro`); this module
//! runs the streams and writes the files: `authorized_keys` under its edit
//! lock, replaced atomically, then loaded, then the names into the config.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::io::AsyncWriteExt;
use libp2p::{PeerId, StreamProtocol};
use peerup_core::authorized_keys::{Attributes, Document, GROUP, HMAC_PROOF};
use peerup_core::invite::pairing_code::PairingCode;
use peerup_core::naming::Name;
use peerup_core::pairing::intro::{
    GROUP_SIZE, Introduced, NewMember, accept_answer, accept_introduction,
};
use peerup_core::pairing::wire::{GroupId, Introduction, Proof, Request, Response};
use peerup_core::relay_addr::RelayAddr;
use peerup_core::wire::protocol;

use super::invite::JoinError;
use super::{Event, Inner, Node};
use crate::fs;
use crate::streams::read_to_end_bounded;

/// Longest wait for the relay's answer, and for an introduction.
const PAIR_TIMEOUT: Duration = Duration::from_secs(20);

/// A group joined through a relay's pairing code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayJoined {
    /// The relay.
    pub relay: PeerId,
    /// The group.
    pub group: String,
    /// Codes in the group.
    pub group_size: u8,
    /// The members that had joined before us, as saved (names made valid
    /// and unique).
    pub members: Vec<(PeerId, Option<Name>)>,
    /// Whether the relay was added to the config's relays (a running
    /// daemon reserves on it after a restart).
    pub relay_added: bool,
}

impl Node {
    /// Joins the relay's pairing group in `code` (a version-2 code):
    /// reaches the relay at the code's address, presents the token and
    /// `name`, and saves what the relay answers: the relay (with the
    /// group and our proof) and every member listed, in `authorized_keys`
    /// and the names; the relay into the config's relays.
    ///
    /// # Errors
    /// [`JoinError`]: the relay unreachable, the code refused (wrong,
    /// used, burned or expired), a malformed answer, or the files.
    pub async fn join_relay(
        &self,
        code: &PairingCode,
        name: Option<Name>,
    ) -> Result<RelayJoined, JoinError> {
        let rt = self.runtime();
        let relay = code.relay_peer;
        let addr = code.relay_addr();
        let request = Request {
            token: code.token.clone(),
            name: name.as_ref().map(Name::to_string).unwrap_or_default(),
        };
        let bytes = request
            .encode()
            .map_err(|e| JoinError::Protocol(e.to_string()))?;
        let exchange = || async {
            self.dial(relay, vec![addr.clone()]).await.map_err(|e| {
                JoinError::Unreachable(format!("relay in the code: {}", crate::error::chain(&e)))
            })?;
            let mut out = self
                .inner()
                .control
                .open(relay, StreamProtocol::new(protocol::RELAY_PAIR))
                .await
                .map_err(|e| match e {
                    crate::streams::OpenError::Unsupported(_) => JoinError::Refused(
                        "the relay does not pair machines (is it peerup-relay with pairing, and are codes open?)".into(),
                    ),
                    _ => JoinError::RelayClosed,
                })?;
            out.stream
                .write_all(&bytes)
                .await
                .map_err(|_| JoinError::RelayClosed)?;
            out.stream
                .close()
                .await
                .map_err(|_| JoinError::RelayClosed)?;
            match read_to_end_bounded(&mut out.stream, Response::MAX_LEN).await {
                Some(b) if b.is_empty() => Err(JoinError::RelayClosed),
                Some(b) => Ok(b),
                None => Err(JoinError::Protocol(
                    "the relay's answer is too long or broke off".into(),
                )),
            }
        };
        let mut answer = rt
            .timeout(PAIR_TIMEOUT, exchange())
            .await
            .ok_or(JoinError::Timeout)?;
        if matches!(answer, Err(JoinError::RelayClosed)) {
            // A connection the relay had already closed (it refused us a
            // moment ago, when no codes were open) can still look open
            // here: try once more on a fresh one.
            self.disconnect_and_wait(relay).await;
            answer = rt
                .timeout(PAIR_TIMEOUT, exchange())
                .await
                .ok_or(JoinError::Timeout)?;
        }
        let answer = answer?;
        // The relay let this connection in on probation, for pairing only:
        // the next one (our reservation) is a fresh, authorized one.
        self.disconnect_and_wait(relay).await;
        let paired = match Response::decode(&answer)
            .map_err(|e| JoinError::Protocol(format!("the relay's answer: {e}")))?
        {
            Response::Failed { .. } => return Err(JoinError::PairingRefused),
            Response::Paired(p) => p,
        };
        let proof = Proof::compute(&code.token, &paired.group);
        let listed: Vec<Introduced> = paired
            .peers
            .iter()
            .map(|p| Introduced {
                peer: p.peer,
                name: p.name.clone(),
                proof: None,
            })
            .collect();
        let inner = self.inner();
        let relay_addr = RelayAddr::new(addr).map_err(|e| JoinError::Protocol(e.to_string()))?;
        let saved = save_group(
            inner,
            &paired.group,
            Some(&relay_addr),
            |doc, names, today| {
                let members = accept_answer(
                    &inner.peer_id,
                    &relay,
                    doc,
                    names,
                    paired.group_size,
                    &listed,
                    today,
                );
                let relay_line = RelayLine {
                    peer: relay,
                    group: paired.group.clone(),
                    proof,
                    size: paired.group_size,
                };
                (Some(relay_line), members)
            },
        )
        .map_err(JoinError::Save)?;
        let (saved, relay_added) = saved;
        // Reserve there now rather than at the next backoff.
        inner.command(super::driver::Command::RetryRelay { relay });
        tracing::info!(%relay, group = %paired.group, members = saved.len(), "joined the relay's pairing group");
        Ok(RelayJoined {
            relay,
            group: paired.group.as_str().to_owned(),
            group_size: paired.group_size,
            members: saved.into_iter().map(|m| (m.peer, m.name)).collect(),
            relay_added,
        })
    }

    /// Accepts the relays' introductions (`/peerup/peer-notify/1.0.0`)
    /// until the node stops: each is checked by the core's rules and
    /// applied at once.
    pub(super) fn serve_introductions(&self) {
        let Ok(mut incoming) = self
            .inner()
            .control
            .accept(StreamProtocol::new(protocol::PEER_NOTIFY))
        else {
            return;
        };
        let node = self.clone();
        self.inner().spawn_tracked(
            Some("peer-notify".into()),
            Box::pin(async move {
                while let Some(inbound) = incoming.next().await {
                    let from = inbound.peer;
                    let mut stream = inbound.stream;
                    // Only a configured relay may introduce; anyone else's
                    // stream is dropped unread.
                    if !node.is_relay(&from) {
                        tracing::warn!(peer = %from, "introduction from a peer that is not one of our relays: ignored");
                        continue;
                    }
                    let rt = node.runtime();
                    let bytes = rt
                        .timeout(PAIR_TIMEOUT, read_to_end_bounded(&mut stream, Introduction::MAX_LEN))
                        .await
                        .flatten();
                    drop(stream);
                    match bytes.map(|b| Introduction::decode(&b)) {
                        Some(Ok(intro)) => node.apply_introduction(from, &intro),
                        Some(Err(e)) => tracing::warn!(peer = %from, error = %e, "malformed introduction: ignored"),
                        None => tracing::warn!(peer = %from, "introduction too long or late: ignored"),
                    }
                }
            }),
        );
    }

    fn is_relay(&self, peer: &PeerId) -> bool {
        self.inner()
            .options
            .relays
            .iter()
            .any(|r| r.peer_id() == *peer)
    }

    fn apply_introduction(&self, from: PeerId, intro: &Introduction) {
        let inner = self.inner();
        let relays: BTreeSet<PeerId> = inner
            .options
            .relays
            .iter()
            .map(RelayAddr::peer_id)
            .collect();
        let listed: Vec<Introduced> = intro
            .peers
            .iter()
            .map(|p| Introduced {
                peer: p.peer,
                name: p.name.clone(),
                proof: p.proof.as_ref().map(|x| *x.as_bytes()),
            })
            .collect();
        let mut refusal = None;
        let saved =
            save_group(
                inner,
                &intro.group,
                None,
                |doc, names, today| match accept_introduction(
                    &inner.peer_id,
                    &from,
                    &relays,
                    doc,
                    names,
                    intro.group.as_str(),
                    intro.group_size,
                    &listed,
                    today,
                ) {
                    Ok(members) => (None, members),
                    Err(e) => {
                        refusal = Some(e);
                        (None, Vec::new())
                    }
                },
            );
        match (refusal, saved) {
            (Some(why), _) => tracing::warn!(relay = %from, "{why}"),
            (None, Err(e)) => {
                tracing::error!(relay = %from, error = %e, "could not save introduced peers")
            }
            (None, Ok((added, _))) if added.is_empty() => {}
            (None, Ok((added, _))) => {
                let peers: Vec<PeerId> = added.iter().map(|m| m.peer).collect();
                tracing::info!(relay = %from, group = %intro.group, ?peers, "introduced peers authorized");
                inner.publish(Event::Introduced {
                    group: intro.group.as_str().to_owned(),
                    peers,
                });
            }
        }
    }
}

/// The relay's own line after a pairing.
struct RelayLine {
    peer: PeerId,
    group: GroupId,
    proof: Proof,
    /// The group's size from the answer (`group_size=`): introductions
    /// never make the group bigger.
    size: u8,
}

/// Under the `authorized_keys` edit lock: lets `decide` see the current
/// document and names and say what to write, writes it atomically, loads
/// it, and saves the new names. Returns the members added.
fn save_group(
    inner: &Arc<Inner>,
    group: &GroupId,
    relay_addr: Option<&RelayAddr>,
    decide: impl FnOnce(
        &Document,
        &peerup_core::naming::Names,
        &str,
    ) -> (Option<RelayLine>, Vec<NewMember>),
) -> Result<(Vec<NewMember>, bool), String> {
    let today = inner.wall_clock().date();
    let path = inner.options.authorized_keys_path.clone();
    let _edit = match &path {
        Some(p) => Some(fs::lock_for_edit(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let mut doc = match &path {
        Some(p) => match fs::read_private(p) {
            Ok(bytes) => Document::parse(&String::from_utf8_lossy(&bytes)),
            Err(e) if e.is_not_found() => Document::new(),
            Err(e) => return Err(e.to_string()),
        },
        None => inner.authorized_keys_doc(),
    };
    let names = inner
        .names
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let (relay_line, members) = decide(&doc, &names, &today);
    if relay_line.is_none() && members.is_empty() {
        return Ok((members, false));
    }
    if let Some(r) = &relay_line {
        let attrs = [
            (GROUP, r.group.as_str().to_owned()),
            (HMAC_PROOF, r.proof.to_hex()),
            (GROUP_SIZE, r.size.to_string()),
        ];
        if doc.contains(&r.peer) {
            for (k, v) in &attrs {
                doc.set_attribute(&r.peer, k, v)
                    .map_err(|e| e.to_string())?;
            }
        } else {
            let mut a = Attributes::new();
            for (k, v) in &attrs {
                a = a.with(k, v).map_err(|e| e.to_string())?;
            }
            doc.add(r.peer, a, Some("relay"))
                .map_err(|e| e.to_string())?;
        }
    }
    for m in &members {
        let mut a = Attributes::new()
            .with(GROUP, group.as_str())
            .map_err(|e| e.to_string())?;
        if let Some(p) = &m.proof {
            a = a.with(HMAC_PROOF, p).map_err(|e| e.to_string())?;
        }
        doc.add(m.peer, a, Some(&m.comment))
            .map_err(|e| e.to_string())?;
    }
    if let Some(p) = &path {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::ensure_private_dir(dir).map_err(|e| e.to_string())?;
        }
        let text = doc.render();
        fs::write_atomic(p, text.as_bytes()).map_err(|e| e.to_string())?;
        inner.set_ak_fingerprint(crate::watch::Fingerprint::of(text.as_bytes()));
    }
    // The policy first: whoever reads the document (status, tests) then
    // never sees a peer the gate would still refuse.
    let connections = inner.connections();
    let change = inner
        .policy
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .reload(&doc, connections, inner.wall_clock());
    inner.apply_change(change);
    inner.set_authorized_keys_doc(doc.clone());
    // Names: into the config file (comments kept), then live.
    let named: Vec<(Name, PeerId)> = members
        .iter()
        .filter_map(|m| m.name.clone().map(|n| (n, m.peer)))
        .collect();
    if let Some(path) = &inner.options.config_path {
        match fs::read_text(path) {
            Ok(text) => {
                let mut edited = text.clone();
                for (n, p) in &named {
                    edited = peerup_core::config::edit::set_name(&edited, n, *p)
                        .map_err(|e| e.to_string())?;
                }
                if edited != text {
                    fs::write_atomic(path, edited.as_bytes()).map_err(|e| e.to_string())?;
                }
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    {
        let mut live = inner.names.write().unwrap_or_else(|e| e.into_inner());
        for (n, p) in named {
            live.insert(n, p);
        }
    }
    // The relay into the config, still under the edit lock.
    let relay_added = match relay_addr {
        Some(r) => add_relay_to_config(inner, r)?,
        None => false,
    };
    Ok((members, relay_added))
}

/// Adds the relay to the config's `relay.addresses` if it is not there;
/// returns whether it was added.
fn add_relay_to_config(inner: &Arc<Inner>, relay: &RelayAddr) -> Result<bool, String> {
    if inner
        .options
        .relays
        .iter()
        .any(|r| r.peer_id() == relay.peer_id())
    {
        return Ok(false);
    }
    let Some(path) = &inner.options.config_path else {
        return Ok(false);
    };
    match fs::read_text(path) {
        Ok(text) => {
            let edited =
                peerup_core::config::edit::add_relay(&text, relay).map_err(|e| e.to_string())?;
            if edited != text {
                fs::write_atomic(path, edited.as_bytes()).map_err(|e| e.to_string())?;
                return Ok(true);
            }
            Ok(false)
        }
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}
