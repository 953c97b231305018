//! # peerup-net
//!
//! peerup bound to rust-libp2p once, for every async runtime: the node's
//! behaviours and event loop, the stream protocols (services, ping-pong,
//! invite), the proxy copy loop, and the file side of the core's decisions.
//! It runs against the small [`Runtime`] trait, which `peerup-tokio` and
//! `peerup-async-std` implement; this crate has no runtime of its own.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

#[doc(hidden)]
pub mod adapter;
pub mod confirm;
pub mod error;
pub mod fs;
pub mod gate;
pub mod http;
pub mod lan;
pub mod limits;
pub mod memory;
pub mod metering;
pub mod metrics;
pub mod node;
pub mod runtime;
pub mod splice;
pub mod streams;
pub mod tls;
pub mod watch;

pub use node::{Event, Node, NodeOptions, StartError, Status};
pub use runtime::{BoxFuture, Runtime, TcpListener, TcpStream, TransportOptions};

pub use libp2p;
pub use peerup_core as core;
