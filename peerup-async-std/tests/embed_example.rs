//! `examples/embed_async_std.rs` (an async-std program) against a relay and a node
//! on tokio: the example reaches the tokio node's service, and the tokio
//! node reaches the example's own `echo`.

use peerup_test_kit as common;
#[path = "../examples/embed_async_std.rs"]
#[allow(dead_code, unreachable_pub)]
mod embed;
mod support;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use peerup_async_std::load_or_create_identity;
use support::{Tokio, rt};

use common::*;

#[async_std::test]
async fn embed_example_against_a_tokio_node() {
    let _ = rt();
    let tokio = Tokio::new();
    let trt = tokio.rt.clone();
    let dir = temp_dir("embed");
    let key_path = dir.join("identity.key");
    let embed_id = load_or_create_identity(&key_path)
        .unwrap()
        .public()
        .to_peer_id();
    let hk = key();
    let home_id = hk.public().to_peer_id();
    // A tokio relay, and a tokio node whose `data` service answers with
    // the SHA-256 of what it got.
    let (relay, home) = tokio
        .run(async move {
            let relay = start_relay(&trt, &[home_id, embed_id]).await;
            let svc = start_service(&trt, 0).await;
            let o = node_options(&trt, hk, &relay, &[embed_id])
                .with_service(label("data"), svc.addr.to_string(), open())
                .unwrap();
            let home = start_reserved(&trt, o).await;
            (relay, home)
        })
        .await;

    let message = "hello from async-std";
    let argv = [
        "--key",
        key_path.to_str().unwrap(),
        "--relay",
        &relay_addr(&relay).to_string(),
        "--authorize",
        &home_id.to_string(),
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--peer",
        &home_id.to_string(),
        "--service",
        "data",
        "--message",
        message,
        "--once",
    ]
    .map(String::from);
    let args = embed::Args::parse(argv.clone()).unwrap();

    // The example's steps, one by one.
    let embedded = embed::start(&args).await.unwrap();
    assert_eq!(embedded.node.peer_id(), embed_id);
    let answer = embed::reach(&embedded.node, home_id, "data", message.as_bytes())
        .await
        .unwrap();
    assert_eq!(answer, sha(message.as_bytes()));
    // The tokio node uses the example's service.
    let home = tokio
        .run(async move {
            let mut s = home.open_service(embed_id, embed::ECHO).await.unwrap();
            s.write_all(b"ping from tokio").await.unwrap();
            s.close().await.unwrap();
            let mut echoed = Vec::new();
            s.read_to_end(&mut echoed).await.unwrap();
            assert_eq!(echoed, b"ping from tokio");
            home
        })
        .await;
    embedded.node.shutdown().await;

    // And the whole program, as `main` runs it (`--once`: reach, then exit).
    embed::run(args).await.unwrap();
    embed::run(
        embed::Args::parse([
            "--key".into(),
            key_path.to_str().unwrap().into(),
            "--print-id".into(),
        ])
        .unwrap(),
    )
    .await
    .unwrap();

    tokio
        .run(async move {
            home.shutdown().await;
            relay.shutdown().await;
        })
        .await;
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn embed_example_arguments() {
    let parse = |a: &[&str]| embed::Args::parse(a.iter().map(|s| s.to_string()));
    let a = parse(&["--key", "k"]).unwrap();
    assert_eq!(a.listen[0].to_string(), "/ip4/0.0.0.0/tcp/0");
    assert!(a.reach.is_none() && !a.once);
    assert!(parse(&[]).unwrap_err().contains("--key"));
    assert!(parse(&["--key", "k", "--peer", "x"]).is_err());
    assert!(
        parse(&["--key", "k", "--service", "ssh"])
            .unwrap_err()
            .contains("together")
    );
    assert!(parse(&["--key", "k", "--relay", "/ip4/1.2.3.4/tcp/1"]).is_err());
    assert!(parse(&["--key", "k", "--frobnicate"]).is_err());
}
