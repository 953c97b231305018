//! # peerup-async-std
//!
//! peerup embedded in async-std applications, with no tokio runtime in
//! the dependency tree (hyper, the metrics server's HTTP, brings tokio's
//! `sync` channels only). [`AsyncStdRuntime`] implements `peerup-net`'s
//! runtime trait with async-std tasks and async-io timers and sockets;
//! [`Node`] is the async-std API over `peerup-net`'s node, the same as
//! `peerup-tokio`'s.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use futures::io::{AsyncReadExt, AsyncWriteExt};
//! use peerup_async_std::{Attributes, Document, Node, NodeOptions, PeerId, ServiceRule};
//!
//! let home: PeerId = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA".parse()?;
//! let mut authorized = Document::new();
//! authorized.add(home, Attributes::new(), Some("home"))?;
//! let options = NodeOptions::new(peerup_async_std::generate_identity()?)
//!     .with_authorized_keys(authorized, None)
//!     // Any service name: a `DnsLabel`, a `&str` or a `String`.
//!     .with_service("echo", "127.0.0.1:7000", ServiceRule { enabled: true, allowed_peers: None })?;
//! let node = Node::start(options).await?;
//! println!("peer id: {}", node.peer_id());
//!
//! let mut ssh = node.open_service(home, "ssh").await?;
//! ssh.write_all(b"SSH-2.0-demo\r\n").await?;
//! ssh.close().await?; // half-close: the service can still answer
//! let mut reply = Vec::new();
//! ssh.read_to_end(&mut reply).await?;
//! node.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Everything an embedder names is exported here, at the crate root;
//! [`net`] and [`core`] are the layers below, for what this crate does not
//! wrap. `examples/embed_async_std.rs` is a complete program: it exposes a service
//! of its own and reaches a service of another peer.
//!
//! ## What differs from tokio
//!
//! rust-libp2p 0.57 dropped async-std: `libp2p-tcp` runs on tokio only and
//! its provider trait is private, `libp2p-dns` resolves with hickory on
//! tokio, and **QUIC, mDNS and UPnP exist only for tokio upstream**. So
//! this crate brings its own pieces:
//!
//! - [`tcp::Transport`]: a libp2p TCP transport on async-io, with the port
//!   reuse that DCUtR's TCP hole punching needs;
//! - [`dns::Transport`]: `/dns`, `/dns4` and `/dns6` resolved with the
//!   system resolver (async-std's `ToSocketAddrs`, off the executor).
//!
//! A node on async-std therefore speaks TCP only (TLS or Noise and yamux, like
//! every peerup node): it reaches and is reached by tokio nodes over TCP,
//! directly, through a relay circuit, or by hole punching. [`Node::start`]
//! leaves QUIC listen addresses out. Should peerup use mDNS or UPnP one
//! day, a node on async-std will go without them.
//!
//! ## async-std is discontinued; smol works too
//!
//! async-std is discontinued upstream (its authors point to smol). This
//! adapter uses only async-io primitives (`Async` sockets, `Timer`) plus a
//! spawn function, and async-io drives its own reactor thread, so it needs
//! no runtime context: the same code runs under smol or any executor.
//! [`AsyncStdRuntime::new`] spawns on async-std's global executor, which
//! starts on first use from any thread;
//! [`AsyncStdRuntime::with_spawner`] hands tasks to another executor,
//! e.g. smol's (`tests/smol.rs` runs shared scenarios that way).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod dns;
mod node;
mod runtime;
pub mod tcp;

pub use node::Node;
// What an embedder names, one list for both adapters (peerup-net's
// `adapter::exports`).
pub use peerup_core as core;
pub use peerup_net::adapter::exports::*;
pub use peerup_net::node::ServiceStream;
pub use peerup_net::{self as net, libp2p};
pub use runtime::AsyncStdRuntime;
pub use tcp::TcpStream as AsyncStdTcp;
