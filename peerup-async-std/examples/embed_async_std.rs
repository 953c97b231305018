//! peerup embedded in an async-std program: the program exposes a service
//! of its own (`echo`, which sends back what it receives) to the peers it
//! authorizes, and reaches a service on another peer through the relay
//! (or directly, once DCUtR has punched a hole).
//!
//! ```text
//! embed --key <file> [--relay <multiaddr>]... [--authorize <peer-id>]...
//!       [--listen <multiaddr>]... [--peer <peer-id> --service <name>
//!       [--message <text>]] [--once] [--print-id]
//! ```
//!
//! - `--key`: the identity file, created (mode 0600) when missing.
//! - `--relay`: a relay's full address, `/ip4/<ip>/tcp/<port>/p2p/<relay-id>`
//!   (or `/dns4/<name>/...`). TCP only: QUIC is tokio-only.
//! - `--authorize`: a peer allowed to connect (and to use `echo`).
//! - `--listen`: default `/ip4/0.0.0.0/tcp/0`, needed for hole punching.
//! - `--peer`, `--service`, `--message`: send the message to that peer's
//!   service, half-close, print the whole answer.
//! - `--once`: exit after that instead of serving `echo` until Ctrl-C.
//! - `--print-id`: print the peer ID (creating the key) and exit.
//!
//! # By hand
//!
//! The other side can be any peerup node: `peerup daemon` (tokio), another
//! copy of this example, or your own program on either adapter.
//!
//! 1. `cargo run -p peerup-async-std --example embed_async_std -- --key /tmp/embed.key --print-id`
//!    prints this program's peer ID. Authorize it on the relay
//!    (`peerup-relay authorize <id>`) and on the other machine
//!    (`peerup auth add <id>`), whose `peerup daemon` exposes a service,
//!    say `ssh`. `peerup-relay info` prints the relay's address.
//! 2. Reach it, and serve `echo` to it:
//!    ```text
//!    cargo run -p peerup-async-std --example embed_async_std -- --key /tmp/embed.key \
//!        --relay /ip4/203.0.113.7/tcp/7777/p2p/<relay-id> \
//!        --authorize <other-id> --peer <other-id> --service ssh --message ''
//!    ```
//!    With `ssh`, the answer is the server's banner (`SSH-2.0-...`).
//! 3. From the other machine, `peerup proxy <this-id> echo 9000`, then
//!    `nc 127.0.0.1 9000` echoes what you type.
//!
//! # In CI
//!
//! `tests/embed_example.rs` includes this file and runs [`start`], [`reach`]
//! and [`run`] against a relay and a node on tokio (`peerup-tokio`), which
//! in turn reaches this program's `echo`.

use std::error::Error;
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use futures::StreamExt;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use peerup_async_std::{
    Attributes, Document, Multiaddr, Node, NodeOptions, PeerId, RelayAddr, ServiceRule,
};

/// Errors, boxed: this is a program.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// The name this program's own service is exposed under.
pub const ECHO: &str = "echo";

/// The command line.
#[derive(Debug, Clone)]
pub struct Args {
    /// `--key`.
    pub key: PathBuf,
    /// `--relay`.
    pub relays: Vec<RelayAddr>,
    /// `--authorize`.
    pub authorize: Vec<PeerId>,
    /// `--listen`.
    pub listen: Vec<Multiaddr>,
    /// `--peer` and `--service`.
    pub reach: Option<(PeerId, String)>,
    /// `--message`.
    pub message: String,
    /// `--once`.
    pub once: bool,
    /// `--print-id`.
    pub print_id: bool,
}

impl Args {
    /// Parses the arguments (without the program name).
    ///
    /// # Errors
    /// A usage message.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String>
        where
            T::Err: std::fmt::Display,
        {
            let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
            v.parse().map_err(|e| format!("{flag} {v}: {e}"))
        }
        let mut key = None;
        let mut relays = Vec::new();
        let mut authorize = Vec::new();
        let mut listen = Vec::new();
        let (mut peer, mut service) = (None, None);
        let mut message = String::from("hello from async-std\n");
        let (mut once, mut print_id) = (false, false);
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            match flag.as_str() {
                "--key" => key = Some(value::<PathBuf>(&flag, args.next())?),
                "--relay" => relays.push(value(&flag, args.next())?),
                "--authorize" => authorize.push(value(&flag, args.next())?),
                "--listen" => listen.push(value(&flag, args.next())?),
                "--peer" => peer = Some(value::<PeerId>(&flag, args.next())?),
                "--service" => service = Some(value::<String>(&flag, args.next())?),
                "--message" => message = value(&flag, args.next())?,
                "--once" => once = true,
                "--print-id" => print_id = true,
                other => return Err(format!("unknown argument {other}")),
            }
        }
        let reach = match (peer, service) {
            (Some(p), Some(s)) => Some((p, s)),
            (None, None) => None,
            _ => return Err("--peer and --service go together".into()),
        };
        if listen.is_empty() {
            listen.push(value("--listen", Some("/ip4/0.0.0.0/tcp/0".into()))?);
        }
        Ok(Args {
            key: key.ok_or("--key <file> is required")?,
            relays,
            authorize,
            listen,
            reach,
            message,
            once,
            print_id,
        })
    }
}

/// The running program: its node and its own service's local address.
#[derive(Debug)]
pub struct Embedded {
    /// The peerup node.
    pub node: Node,
    /// Where `echo` listens locally.
    pub echo: SocketAddr,
}

/// Starts `echo` on a local port and a node that exposes it to the
/// authorized peers and keeps a reservation on the relays.
///
/// # Errors
/// The key file, the local port, the node's start.
pub async fn start(args: &Args) -> Result<Embedded, BoxError> {
    let keypair = peerup_async_std::load_or_create_identity(&args.key)?;
    let echo = start_echo().await?;
    let mut authorized = Document::new();
    for p in &args.authorize {
        authorized.add(*p, Attributes::new(), Some("embed --authorize"))?;
    }
    let options = NodeOptions::new(keypair)
        .with_listen(args.listen.clone())
        .with_relays(args.relays.clone())
        .with_authorized_keys(authorized, None)
        .with_service(
            ECHO,
            echo.to_string(),
            ServiceRule {
                enabled: true,
                allowed_peers: None,
            },
        )?;
    let node = Node::start(options).await?;
    Ok(Embedded { node, echo })
}

/// Sends `message` to `service` on `peer`, half-closes, and returns the
/// whole answer.
///
/// # Errors
/// The service could not be reached, or the stream failed.
pub async fn reach(
    node: &Node,
    peer: PeerId,
    service: &str,
    message: &[u8],
) -> Result<Vec<u8>, BoxError> {
    let mut stream = node.open_service(peer, service).await?;
    eprintln!("connected to {service} on {peer} ({})", stream.path());
    stream.write_all(message).await?;
    stream.close().await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(answer)
}

/// A local TCP service that sends back what it receives, one task per
/// connection.
async fn start_echo() -> std::io::Result<SocketAddr> {
    let listener = async_std::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    async_std::task::spawn(async move {
        let mut incoming = listener.incoming();
        while let Some(Ok(stream)) = incoming.next().await {
            async_std::task::spawn(async move {
                let (reader, mut writer) = (stream.clone(), stream.clone());
                let _ = futures::io::copy(reader, &mut writer).await;
                let _ = stream.shutdown(Shutdown::Write);
            });
        }
    });
    Ok(addr)
}

/// The whole program.
///
/// # Errors
/// What [`start`] or [`reach`] return.
pub async fn run(args: Args) -> Result<(), BoxError> {
    if args.print_id {
        let keypair = peerup_async_std::load_or_create_identity(&args.key)?;
        println!("{}", keypair.public().to_peer_id());
        return Ok(());
    }
    let Embedded { node, echo } = start(&args).await?;
    println!("peer id: {}", node.peer_id());
    for a in node.listen_addrs() {
        println!("listening on {a}");
    }
    println!("exposing {ECHO} (local {echo})");
    let mut events = node.events();
    if let Some((peer, service)) = &args.reach {
        let answer = reach(&node, *peer, service, args.message.as_bytes()).await;
        match answer {
            Ok(a) => println!("{service} answered: {}", String::from_utf8_lossy(&a)),
            Err(e) => {
                node.shutdown().await;
                return Err(e);
            }
        }
    }
    if !args.once {
        while let Some(event) = events.next().await {
            println!("{event:?}");
        }
    }
    node.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(usage) => {
            eprintln!("embed: {usage}");
            return ExitCode::from(2);
        }
    };
    match async_std::task::block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embed: {e}");
            ExitCode::FAILURE
        }
    }
}
