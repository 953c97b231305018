//! The daemon's persistent forwards (`forwards:` in the config): a local
//! TCP port per enabled forward, kept across the daemon's life and
//! changed live when the config changes.
//!
//! Each forward is a [`peerup_tokio::Node::forward`]: every accepted
//! connection reaches the peer on its own, connecting first when needed
//! (through the relays or the DHT), and gives up within
//! [`peerup_net::node::service::FORWARD_DEADLINE`] with its socket reset
//! and the reason in the log. So a forward needs no reconnect loop: when
//! the peer (or this daemon) restarts, the next local connection connects
//! again.
//!
//! A forward that cannot listen (its port is in use, or the address is
//! not on this machine) is a warning naming it, never a daemon failure:
//! the other forwards and the rest of the daemon run, `peerup proxy
//! --list` and `peerup status` show the reason, and it is tried again at
//! every reload and every 30 s (the daemon's watchdog tick) until it
//! listens.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use peerup_core::PeerId;
use peerup_core::config::{Config, Forward};
use peerup_core::wire::label::DnsLabel;
use peerup_net::node::Forwarder;
use peerup_tokio::Node;
use serde_json::{Value, json};

/// One forward as the daemon runs it.
struct Running {
    /// As configured.
    spec: Forward,
    /// Its peer, the name resolved when it was (re)started; `None` when
    /// the name did not resolve.
    peer: Option<PeerId>,
    /// Listening, or why not.
    state: Result<Forwarder, String>,
}

/// The daemon's forwards.
#[derive(Default)]
pub(crate) struct Forwards {
    running: Mutex<BTreeMap<DnsLabel, Running>>,
    /// The config last applied: what `document` lists.
    config: Mutex<Config>,
}

/// What [`Forwards::apply`] changed.
#[derive(Debug, Default)]
pub(crate) struct Change {
    pub added: Vec<DnsLabel>,
    pub removed: Vec<DnsLabel>,
    pub changed: Vec<DnsLabel>,
    /// Forwards that do not listen, with why.
    pub failed: Vec<(DnsLabel, String)>,
}

impl Change {
    /// `forwards unchanged`, or what changed.
    pub(crate) fn text(&self) -> String {
        let mut text = match crate::ui::changes([
            ("added", &self.added),
            ("removed", &self.removed),
            ("changed", &self.changed),
        ]) {
            Some(parts) => format!("forwards {parts}"),
            None => "forwards unchanged".to_owned(),
        };
        for (name, why) in &self.failed {
            text.push_str(&format!("; forward {name} NOT listening: {why}"));
        }
        text
    }
}

/// The bind error in words, naming the forward.
fn bind_error(name: &DnsLabel, addr: SocketAddr, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "local port {} is already in use on {} (another program, or a `peerup proxy`); free it or change forwards.{name}.local_address",
            addr.port(),
            addr.ip()
        ),
        std::io::ErrorKind::AddrNotAvailable => format!(
            "{} is not an address of this machine; change forwards.{name}.local_address",
            addr.ip()
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "not allowed to listen on {addr} (ports below 1024 need privileges); change forwards.{name}.local_address"
        ),
        _ => format!("cannot listen on {addr}: {e}"),
    }
}

impl Forwards {
    /// Makes the running forwards those of `config`: removed or disabled
    /// ones stop listening (their open connections go on), new or changed
    /// ones start, and ones that could not listen are tried again. Never
    /// fails as a whole: a forward that cannot listen is reported in
    /// [`Change::failed`] and logged.
    pub(crate) async fn apply(&self, node: &Node, config: &Config) -> Change {
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = config.clone();
        let mut change = Change::default();
        // What the config asks for, names resolved (`Config::parse`
        // checked them).
        let wanted: BTreeMap<DnsLabel, (Forward, Result<PeerId, String>)> = config
            .forwards
            .iter()
            .filter(|(_, f)| f.enabled)
            .map(|(name, f)| {
                let peer = f
                    .resolve_peer(&config.names)
                    .map_err(|e| format!("forwards.{name}.peer: {e}"));
                (name.clone(), (f.clone(), peer))
            })
            .collect();
        // Stops first, so that a port moved from one forward to another
        // is free when the other starts. `listened`: the forwards that
        // listened before, stopped or kept.
        let mut listened = Vec::new();
        let mut start = Vec::new();
        let mut stopped = Vec::new();
        {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            let names: Vec<DnsLabel> = running.keys().cloned().collect();
            for name in names {
                let Some(r) = running.get(&name) else {
                    continue;
                };
                if r.state.is_ok() {
                    listened.push(name.clone());
                }
                let keep = wanted.get(&name).is_some_and(|(f, peer)| {
                    r.spec == *f && peer.as_ref().ok() == r.peer.as_ref() && r.state.is_ok()
                });
                if keep {
                    continue;
                }
                if let Some(r) = running.remove(&name) {
                    if !wanted.contains_key(&name) {
                        tracing::info!(forward = %name, local = %r.spec.local_address, "forward removed or disabled: no longer listening (open connections go on)");
                        change.removed.push(name.clone());
                    }
                    stopped.extend(r.state.ok());
                }
            }
            for (name, (f, peer)) in &wanted {
                if !running.contains_key(name) {
                    start.push((name.clone(), f.clone(), peer.clone()));
                }
            }
        }
        // Their sockets closed before any port is bound again.
        for fw in stopped {
            fw.close().await;
        }
        for (name, f, peer) in start {
            let state = match &peer {
                Ok(p) => node
                    .forward(f.local_address, *p, f.service.as_str())
                    .await
                    .map_err(|e| bind_error(&name, f.local_address, &e)),
                Err(e) => Err(e.clone()),
            };
            match &state {
                Ok(fw) => {
                    tracing::info!(forward = %name, local = %fw.local_addr(), peer = %f.peer, service = %f.service, "forward listening");
                    if listened.contains(&name) {
                        change.changed.push(name.clone());
                    } else {
                        change.added.push(name.clone());
                    }
                }
                Err(why) => {
                    tracing::warn!(forward = %name, local = %f.local_address, "forward {name} NOT listening: {why}");
                    change.failed.push((name.clone(), why.clone()));
                }
            }
            self.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    name,
                    Running {
                        peer: peer.ok(),
                        spec: f,
                        state,
                    },
                );
        }
        change
    }

    /// Tries again the forwards that could not listen; logs only those
    /// that listen now (their failure was logged once already).
    pub(crate) async fn retry_failed(&self, node: &Node) {
        let failed: Vec<(DnsLabel, Forward, PeerId)> = {
            let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running
                .iter()
                .filter(|(_, r)| r.state.is_err())
                .filter_map(|(n, r)| Some((n.clone(), r.spec.clone(), r.peer?)))
                .collect()
        };
        for (name, f, peer) in failed {
            let Ok(fw) = node
                .forward(f.local_address, peer, f.service.as_str())
                .await
            else {
                continue;
            };
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            // Still wanted as it was (no reload in between)?
            if let Some(r) = running.get_mut(&name)
                && r.spec == f
                && r.state.is_err()
            {
                tracing::info!(forward = %name, local = %fw.local_addr(), "forward listening now");
                r.state = Ok(fw);
            }
        }
    }

    /// Whether `name` listens now: `Some(Ok(addr))`, `Some(Err(why))`, or
    /// `None` when it is not run (not configured, or disabled).
    pub(crate) fn state(&self, name: &str) -> Option<Result<SocketAddr, String>> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, r)| match &r.state {
                Ok(fw) => Ok(fw.local_addr()),
                Err(e) => Err(e.clone()),
            })
    }

    /// The forwards for `peerup status --json` and `peerup proxy --list`:
    /// each configured one with whether it listens and its open
    /// connections.
    pub(crate) fn document(&self) -> Value {
        let config = self
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let config = &config;
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let list: Vec<Value> = config
            .forwards
            .iter()
            .map(|(name, f)| {
                let r = running.get(name).filter(|r| r.spec == *f);
                let mut v = entry(name, f, config);
                v["listening"] = json!(r.is_some_and(|r| r.state.is_ok()));
                v["connections"] = json!(
                    r.and_then(|r| r.state.as_ref().ok())
                        .map_or(0, Forwarder::open_connections)
                );
                v["error"] = json!(r.and_then(|r| r.state.as_ref().err()));
                v
            })
            .collect();
        Value::Array(list)
    }

    /// One line per forward for the daemon's banner.
    pub(crate) fn banner(&self) -> Vec<String> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .iter()
            .map(|(name, r)| match &r.state {
                Ok(fw) => format!(
                    "{name} {} -> {} service {}",
                    fw.local_addr(),
                    r.spec.peer,
                    r.spec.service
                ),
                Err(why) => format!("{name} NOT listening: {why}"),
            })
            .collect()
    }
}

/// A configured forward as JSON (without the daemon's view of it).
pub(crate) fn entry(name: &DnsLabel, f: &Forward, config: &Config) -> Value {
    json!({
        "name": name.as_str(),
        "peer": f.peer.to_string(),
        "peer_id": f.resolve_peer(&config.names).ok().map(|p| p.to_string()),
        "service": f.service.as_str(),
        "local_address": f.local_address.to_string(),
        "enabled": f.enabled,
    })
}
