//! peerup's protocol IDs (WIRE.md §2).
//!
//! | ID | purpose |
//! |---|---|
//! | `/peerup/<service>/1.0.0` | one per exposed TCP service |
//! | `/pingpong/1.0.0` (configurable) | application ping |
//! | `/peerup/invite/1.0.0` | invite/join pairing |
//! | `/peerup/relay-pair/1.0.0` | relay pairing, joiner -> relay (WIRE.md §13) |
//! | `/peerup/peer-notify/1.0.0` | peer introductions, relay -> node (WIRE.md §14) |
//! | `/peerup/kad/1.0.0`, `/peerup/<network>/kad/1.0.0` | private Kademlia |

use super::label::DnsLabel;

/// The invite/join handshake, opened by the joiner (WIRE.md §6).
pub const INVITE: &str = "/peerup/invite/1.0.0";

/// Relay pairing, opened by the joiner on the relay (WIRE.md §13); the
/// messages are [`crate::pairing::wire`].
pub const RELAY_PAIR: &str = "/peerup/relay-pair/1.0.0";

/// Peer introductions, opened by the relay on a node (WIRE.md §14); the
/// message is [`crate::pairing::wire::Introduction`].
pub const PEER_NOTIFY: &str = "/peerup/peer-notify/1.0.0";

/// The default application ping protocol (WIRE.md §3).
pub const PING_PONG: &str = "/pingpong/1.0.0";

/// The private Kademlia protocol when no `discovery.network` is set.
pub const KAD: &str = "/peerup/kad/1.0.0";

/// Identify agent version prefix of a node: `peerup/<version>`.
pub const NODE_AGENT_PREFIX: &str = "peerup/";

/// Identify agent version prefix of a relay: `relay-server/<version>`.
pub const RELAY_AGENT_PREFIX: &str = "relay-server/";

/// Service names that would collide with peerup's own protocols:
/// a service `kad` would be `/peerup/kad/1.0.0`, the DHT; `invite`,
/// `relay-pair` and `peer-notify` would be the pairing protocols.
pub const RESERVED_SERVICE_NAMES: &[&str] = &["kad", "invite", "relay-pair", "peer-notify"];

/// Whether `name` is reserved and so cannot name a service.
pub fn is_reserved_service_name(name: &str) -> bool {
    RESERVED_SERVICE_NAMES.contains(&name)
}

/// The protocol ID of a service: `/peerup/<service>/1.0.0`.
pub fn service(name: &DnsLabel) -> String {
    format!("/peerup/{name}/1.0.0")
}

/// The service name in a service protocol ID, if `protocol` is one
/// (`/peerup/ssh/1.0.0` -> `ssh`). Reserved names and non-labels are not
/// services.
pub fn service_name(protocol: &str) -> Option<DnsLabel> {
    let rest = protocol.strip_prefix("/peerup/")?.strip_suffix("/1.0.0")?;
    if is_reserved_service_name(rest) {
        return None;
    }
    DnsLabel::new(rest).ok()
}

/// The Kademlia protocol ID: `/peerup/kad/1.0.0`, or
/// `/peerup/<network>/kad/1.0.0` for a named network.
pub fn kad(network: Option<&DnsLabel>) -> String {
    match network {
        None => KAD.to_owned(),
        Some(n) => format!("/peerup/{n}/kad/1.0.0"),
    }
}

/// Identify agent version of a node.
pub fn node_agent(version: &str) -> String {
    format!("{NODE_AGENT_PREFIX}{version}")
}

/// Identify agent version of a relay.
pub fn relay_agent(version: &str) -> String {
    format!("{RELAY_AGENT_PREFIX}{version}")
}

/// Whether `id` is acceptable as a libp2p protocol ID for
/// `protocols.ping_pong.id`: starts with `/`, printable ASCII without
/// spaces, at most 128 bytes.
pub fn is_valid_protocol_id(id: &str) -> bool {
    id.len() >= 2
        && id.len() <= 128
        && id.starts_with('/')
        && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(s: &str) -> DnsLabel {
        DnsLabel::new(s).unwrap()
    }

    #[test]
    fn service_ids() {
        assert_eq!(service(&label("ssh")), "/peerup/ssh/1.0.0");
        assert_eq!(service_name("/peerup/ssh/1.0.0"), Some(label("ssh")));
        assert_eq!(service_name("/peerup/kad/1.0.0"), None);
        assert_eq!(service_name(INVITE), None);
        assert_eq!(service_name(RELAY_PAIR), None);
        assert_eq!(service_name(PEER_NOTIFY), None);
        assert_eq!(service_name("/peerup/a/b/1.0.0"), None);
        assert_eq!(service_name("/pingpong/1.0.0"), None);
    }

    #[test]
    fn kad_ids() {
        assert_eq!(kad(None), "/peerup/kad/1.0.0");
        assert_eq!(kad(Some(&label("family"))), "/peerup/family/kad/1.0.0");
    }

    #[test]
    fn protocol_id_shape() {
        assert!(is_valid_protocol_id("/pingpong/1.0.0"));
        assert!(!is_valid_protocol_id("pingpong"));
        assert!(!is_valid_protocol_id("/ping pong"));
        assert!(!is_valid_protocol_id("/"));
    }
}
