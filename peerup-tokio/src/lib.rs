//! # peerup-tokio
//!
//! peerup embedded in tokio applications. [`Node`] is the API: start a
//! node from [`NodeOptions`], expose local TCP services to the peers in
//! its `authorized_keys`, and reach other peers' services as streams
//! ([`Node::open_service`]) or local TCP ports ([`Node::forward`]),
//! directly, through a relay, or hole-punched. [`TokioRuntime`] implements
//! `peerup-net`'s runtime trait with tokio tasks, timers and sockets and
//! libp2p's tokio TCP, QUIC and DNS transports.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use peerup_tokio::{Attributes, Document, Node, NodeOptions, PeerId, ServiceRule};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let home: PeerId = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA".parse()?;
//! let mut authorized = Document::new();
//! authorized.add(home, Attributes::new(), Some("home"))?;
//! let options = NodeOptions::new(peerup_tokio::load_or_create_identity("app.key".as_ref())?)
//!     .with_relays(vec!["/ip4/203.0.113.7/tcp/7777/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA".parse()?])
//!     .with_authorized_keys(authorized, None)
//!     // Any service name: a `DnsLabel`, a `&str` or a `String`.
//!     .with_service("api", "127.0.0.1:8080", ServiceRule { enabled: true, allowed_peers: None })?;
//! let node = Node::start(options).await?;
//! println!("peer id: {}", node.peer_id());
//!
//! let mut ssh = node.open_service(home, "ssh").await?;
//! ssh.write_all(b"SSH-2.0-demo\r\n").await?;
//! ssh.shutdown().await?; // half-close: the service can still answer
//! let mut reply = Vec::new();
//! ssh.read_to_end(&mut reply).await?;
//! node.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Everything an embedder names is exported here, at the crate root;
//! [`net`] and [`core`] are the layers below, for what this crate does not
//! wrap. `examples/embed_tokio.rs` is a complete program.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod node;
mod runtime;

pub use node::{Node, ServiceStream};
// What an embedder names, one list for both adapters (peerup-net's
// `adapter::exports`).
pub use peerup_core as core;
pub use peerup_net::adapter::exports::*;
pub use peerup_net::{self as net, libp2p};
pub use runtime::{TokioRuntime, TokioTcp, quic_config};
