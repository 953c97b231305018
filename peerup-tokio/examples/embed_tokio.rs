//! A tokio program embedding peerup: exposes a local service, and reaches
//! a peer's service through a stream and through a local TCP port.
//!
//! ```sh
//! cargo run -p peerup-tokio --example embed_tokio -- <relay-multiaddr> [<peer-id> <service>]
//! ```
//! With only the relay, it exposes `api` (127.0.0.1:8080) and prints its
//! peer ID; with a peer and a service, it also opens that service, pings the
//! peer, and forwards 127.0.0.1:18080 to it until Ctrl-C.

use peerup_tokio::{Node, NodeOptions, ServiceRule};
use tokio::io::AsyncWriteExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let relay = args
        .next()
        .ok_or("usage: embed <relay-multiaddr> [<peer-id> <service>]")?;
    let keypair = peerup_tokio::load_or_create_identity("embed.key".as_ref())?;
    let node = Node::start(
        NodeOptions::new(keypair)
            .with_relays(vec![relay.parse()?])
            .with_service(
                "api",
                "127.0.0.1:8080",
                ServiceRule {
                    enabled: true,
                    allowed_peers: None,
                },
            )?,
    )
    .await?;
    println!(
        "peer ID {} (authorize it on the other side and on the relay)",
        node.peer_id()
    );
    if let (Some(peer), Some(service)) = (args.next(), args.next()) {
        let peer = node.resolve(&peer)?;
        let mut stream = node.open_service(peer, &service).await?;
        println!("stream to {service} on {peer} [{}]", stream.path());
        stream.shutdown().await?;
        println!("ping: {:?}", node.ping(peer).await?);
        let fwd = node
            .forward("127.0.0.1:18080".parse()?, peer, &service)
            .await?;
        println!(
            "forwarding {} -> {peer}/{service}; Ctrl-C to stop",
            fwd.local_addr()
        );
    }
    tokio::signal::ctrl_c().await?;
    node.shutdown().await;
    Ok(())
}
