//! How a connection reaches a peer: [`ConnectionPath::Direct`] or
//! [`ConnectionPath::Relayed`], read from the connection's remote address.
//!
//! Used by the authorization policy (relayed connections may be refused),
//! the stream layer (which connection a stream opens on), the ping reply
//! (`path=[DIRECT]`, WIRE.md §3) and the node status. It serializes as
//! `"DIRECT"` / `"RELAYED"` (`peerup status --json`). Named so as not to
//! clash with `std::path::Path`; it lived in [`pingpong`](super::pingpong)
//! as `Path`.

use core::fmt;

use multiaddr::Protocol;

use crate::Multiaddr;

/// How a connection reaches the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ConnectionPath {
    /// A direct connection (possibly hole-punched).
    Direct,
    /// Through a relay circuit.
    Relayed,
}

impl ConnectionPath {
    /// The path of a connection with this remote address: relayed when it
    /// contains `/p2p-circuit`.
    pub fn of(remote: &Multiaddr) -> ConnectionPath {
        if remote.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
            ConnectionPath::Relayed
        } else {
            ConnectionPath::Direct
        }
    }
}

impl fmt::Display for ConnectionPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectionPath::Direct => "DIRECT",
            ConnectionPath::Relayed => "RELAYED",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_from_remote_address() {
        let relayed: Multiaddr =
            "/ip4/1.2.3.4/tcp/7777/p2p/12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL/p2p-circuit".parse().unwrap();
        let direct: Multiaddr = "/ip4/1.2.3.4/udp/5000/quic-v1".parse().unwrap();
        assert_eq!(ConnectionPath::of(&relayed), ConnectionPath::Relayed);
        assert_eq!(ConnectionPath::of(&direct), ConnectionPath::Direct);
    }
}
