//! Wire formats: protocol IDs and the names that go into them, the sealed
//! frame of the invite handshake, and the ping-pong line protocol.
//!
//! See WIRE.md §2 (protocol IDs), §3 (ping-pong) and §6 (sealed frames).

pub mod label;
pub mod mtu;
pub mod path;
pub mod pingpong;
pub mod protocol;
pub mod sealed;

pub use label::{DnsLabel, LabelError};
pub use path::ConnectionPath;
