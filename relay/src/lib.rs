//! # peerup-relay
//!
//! The relay server as a library: circuit relay v2 for peers behind NAT,
//! gated by `relay_authorized_keys`, with limits that do not cut the SSH
//! and RDP sessions it carries, and the DHT's bootstrap node. It runs on
//! any `peerup-net` [`Runtime`](peerup_net::Runtime); the `peerup-relay`
//! binary runs it on tokio.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod announce;
pub mod health;
mod pairing;
mod server;

pub use pairing::{PairingError, PairingGroup};
pub use server::{Limits, Relay, RelayError, RelayEvent, RelayOptions, RelayStats};
