//! # peerup-tokio
//!
//! peerup on tokio: [`TokioRuntime`] implements `peerup-net`'s runtime trait
//! with tokio tasks, timers and sockets and libp2p's tokio TCP, QUIC and DNS
//! transports; [`Node`] is the tokio-native API over `peerup-net`'s node.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use peerup_tokio::{Node, NodeOptions};
//! let keypair = peerup_tokio::generate_identity()?;
//! let node = Node::start(NodeOptions::new(keypair)).await?;
//! println!("peer id: {}", node.peer_id());
//! # Ok(()) }
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod node;
mod runtime;

pub use node::{Node, ServiceStream};
pub use peerup_core as core;
pub use peerup_net::node::invite::{
    Invite, InviteError, InviteOptions, InviteProgress, JoinError, Paired,
};
pub use peerup_net::node::service::{Forwarder, OpenServiceError};
pub use peerup_net::node::{
    ConnectError, Event, NodeOptions, PingReply, StartError, Status, generate_identity,
    load_or_create_identity,
};
pub use peerup_net::{self as net, libp2p};
pub use runtime::{TokioRuntime, TokioTcp};
