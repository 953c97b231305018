//! The node's composed libp2p behaviour.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{StreamProtocol, autonat, dcutr, identify, kad, ping, relay};
use peerup_core::authz::Policy;

use crate::gate::{Gate, GateShared, PairingFilter};
use crate::lan::{Discoverer, Lan, SharedTable};
use crate::limits::{ConnectionLimits, Limits};
use crate::streams;

/// Everything a peerup node runs. The limits and the gate come first: a
/// connection any behaviour denies is denied as a whole, before the others
/// see it, and the gate marks the connections it lets in only to pair,
/// which every [`PairingFilter`] then keeps from its behaviour (and the
/// streams behaviour serves the invite protocol alone).
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Connection limits (pending, established, per peer, per IP).
    pub limits: Limits,
    /// Authorization of inbound connections.
    pub gate: Gate,
    /// Circuit relay v2 client: reservations and circuits.
    pub relay: PairingFilter<relay::client::Behaviour>,
    /// Hole punching over relayed connections (off when the node was
    /// started without it).
    pub dcutr: PairingFilter<Toggle<dcutr::Behaviour>>,
    /// Identify (`peerup/<version>`): addresses for DCUtR and the DHT.
    pub identify: PairingFilter<identify::Behaviour>,
    /// libp2p ping: liveness and RTT of every connection.
    pub ping: PairingFilter<ping::Behaviour>,
    /// AutoNAT (off when `force_private_reachability`).
    pub autonat: PairingFilter<Toggle<autonat::Behaviour>>,
    /// The private DHT.
    pub kad: PairingFilter<kad::Behaviour<kad::store::MemoryStore>>,
    /// peerup's own stream protocols.
    pub streams: streams::Behaviour,
    /// LAN discovery (mDNS), inert when off: records what it hears and
    /// gives dials the LAN addresses of authorized peers only.
    pub lan: Lan,
}

/// How often every connection is pinged.
pub(crate) const PING_INTERVAL: Duration = Duration::from_secs(5);
/// A ping unanswered this long fails; the driver closes the connection
/// on the second failure in a row (libp2p's ping lets the first pass). A
/// path that died without a word (a NAT that forgot the mapping, a relay
/// that lost power) is so closed 25 to 30 s after it died, not when TCP
/// gives up minutes later; a change of this machine's own addresses is
/// probed at once instead (`node::roam`). Then the reservation is made
/// again and the next dial finds a live path. 10 s is far beyond a live
/// path's round trip, even with a busy link's queue in front.
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// What the behaviour is built from.
pub(crate) struct Parts {
    pub keypair: Keypair,
    pub relay: relay::client::Behaviour,
    pub policy: Arc<RwLock<Policy>>,
    pub gate: Arc<GateShared>,
    pub agent: String,
    pub kad_protocol: StreamProtocol,
    pub autonat: bool,
    pub hole_punching: bool,
    pub limits: ConnectionLimits,
    pub rt: Arc<dyn crate::runtime::Runtime>,
    pub discoverer: Option<Box<dyn Discoverer>>,
    pub lan: SharedTable,
}

impl Behaviour {
    pub(crate) fn new(p: Parts) -> Self {
        let peer_id = p.keypair.public().to_peer_id();
        let mut kad_config = kad::Config::new(p.kad_protocol);
        kad_config.set_query_timeout(Duration::from_secs(30));
        let mut kad =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        // Server mode on every node: a node in client mode is never added
        // to others' routing tables, so it could not be found by peer ID.
        kad.set_mode(Some(kad::Mode::Server));
        let identify = identify::Behaviour::new(
            identify::Config::new("/peerup/1.0.0".to_owned(), p.keypair.public())
                .with_agent_version(p.agent)
                .with_push_listen_addr_updates(true),
        );
        let autonat = p
            .autonat
            .then(|| autonat::Behaviour::new(peer_id, autonat::Config::default()));
        let g = &p.gate;
        Behaviour {
            limits: Limits::new(p.limits),
            lan: Lan::new(p.discoverer, p.lan, p.policy.clone(), p.rt.clone()),
            gate: Gate::new(p.policy, p.gate.clone(), p.rt),
            relay: PairingFilter::new(p.relay, g.clone()),
            dcutr: PairingFilter::new(
                Toggle::from(p.hole_punching.then(|| dcutr::Behaviour::new(peer_id))),
                g.clone(),
            ),
            identify: PairingFilter::new(identify, g.clone()),
            ping: PairingFilter::new(
                ping::Behaviour::new(
                    ping::Config::new()
                        .with_interval(PING_INTERVAL)
                        .with_timeout(PING_TIMEOUT),
                ),
                g.clone(),
            ),
            autonat: PairingFilter::new(Toggle::from(autonat), g.clone()),
            kad: PairingFilter::new(kad, g.clone()),
            streams: streams::Behaviour::new().with_gate(g.clone()),
        }
    }
}
