//! `/metrics` and `/healthz` of a relay and of a node, scraped over real
//! HTTP: the Grafana dashboard's metrics are all exported, the text is
//! OpenMetrics, the counts match what the test did, and the server's
//! answers to bad requests and its bounds (peerup_net::http).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use peerup_net::http::{MAX_CLIENTS, OPENMETRICS};
use peerup_net::runtime::Runtime;

use super::*;

/// The dashboard shipped in configs/.
const DASHBOARD: &str = include_str!("../../configs/grafana/peerup.json");

/// One HTTP exchange: `request` sent as is, everything read until the
/// server closes (or resets: what was read by then).
pub async fn http(rt: &Arc<dyn Runtime>, addr: SocketAddr, request: &[u8]) -> String {
    let exchange = async {
        let mut s = rt.tcp_connect(addr).await.unwrap();
        // The server may answer and close before it has read everything
        // (an oversized request): a failed write is part of the answer.
        let _ = s.write_all(request).await;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    rt.timeout(LIMIT, exchange)
        .await
        .expect("the HTTP server never closed the connection")
}

/// `GET path`: the status line's code and the body.
pub async fn get(rt: &Arc<dyn Runtime>, addr: SocketAddr, path: &str) -> (u16, String, String) {
    let text = http(
        rt,
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
    .await;
    parse_response(&text)
}

/// The status code, the headers (lower-cased) and the body.
fn parse_response(text: &str) -> (u16, String, String) {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let code = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_lowercase(), body.to_owned())
}

/// Every `peerup_*` and `libp2p_*` name in the dashboard's queries.
pub fn dashboard_metric_names() -> BTreeSet<String> {
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    let mut exprs = Vec::new();
    fn walk<'a>(v: &'a serde_json::Value, exprs: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr", serde_json::Value::String(e)) => exprs.push(e),
                        _ => walk(v, exprs),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, exprs)),
            _ => {}
        }
    }
    walk(&dashboard, &mut exprs);
    assert!(
        exprs.len() >= 20,
        "the dashboard has too few queries: {exprs:?}"
    );
    exprs
        .iter()
        .flat_map(|e| e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')))
        .filter(|t| t.starts_with("peerup_") || t.starts_with("libp2p_"))
        .map(str::to_owned)
        .collect()
}

/// The metric families an OpenMetrics text declares (`# TYPE <name>`).
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// Whether `name` (a sample name, as a query writes it) belongs to one
/// of `families`: itself, or its family without the suffix OpenMetrics
/// adds to counters and histograms.
fn is_exported(name: &str, families: &BTreeSet<String>) -> bool {
    families.contains(name)
        || ["_total", "_bucket", "_sum", "_count", "_created"]
            .iter()
            .filter_map(|s| name.strip_suffix(s))
            .any(|base| families.contains(base))
}

/// The value of the sample `series` (its name and labels exactly as
/// encoded).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
}

/// A relay and two nodes with their HTTP servers; a service stream from
/// one node to the other through the relay: every metric the dashboard
/// names is exported by the relay or the node, both documents are
/// OpenMetrics, and the node's counts match the stream.
pub async fn dashboard_metrics_are_exported(rt: Arc<dyn Runtime>) {
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&rt, &[home_id, laptop_id]).await;
    let relay_http =
        peerup_relay::health::serve(rt.clone(), relay.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    let mut svc = start_service(&rt, 0).await;
    let home = start_reserved(
        &rt,
        node_options(&rt, hk, &relay, &[laptop_id])
            .with_listen(vec![])
            .with_service(label("data"), svc.addr.to_string(), open())
            .unwrap(),
    )
    .await;
    let home_http = peerup_net::metrics::serve(&home, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let laptop = start_reserved(
        &rt,
        node_options(&rt, lk, &relay, &[home_id]).with_listen(vec![]),
    )
    .await;
    let mut stream = laptop.open_service(home_id, "data").await.unwrap();
    stream.write_all(&[7u8; 100_000]).await.unwrap();
    stream.flush().await.unwrap();
    svc.received(&rt, 100_000).await;

    let (code, head, relay_text) = get(&rt, relay_http, "/metrics").await;
    assert_eq!(code, 200, "{head}");
    assert!(head.contains(&OPENMETRICS.to_lowercase()), "{head}");
    assert!(relay_text.ends_with("# EOF\n"), "{relay_text}");
    let (code, head, home_text) = get(&rt, home_http.local_addr(), "/metrics").await;
    assert_eq!(code, 200, "{head}");
    assert!(head.contains(&OPENMETRICS.to_lowercase()), "{head}");
    assert!(home_text.ends_with("# EOF\n"), "{home_text}");
    // The same registry as the node's own encoding (encoded after the
    // scrape: a series may have appeared since, none gone).
    let encoded = home.encode_metrics();
    assert!(encoded.ends_with("# EOF\n"));
    let (scraped, now) = (families(&home_text), families(&encoded));
    assert!(
        scraped.is_subset(&now),
        "scraped but not encoded: {:?}",
        scraped.difference(&now).collect::<Vec<_>>()
    );

    let exported: BTreeSet<String> = families(&relay_text)
        .union(&families(&home_text))
        .cloned()
        .collect();
    let names = dashboard_metric_names();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !is_exported(n, &exported))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard names metrics nobody exports: {missing:?}\nexported: {exported:?}"
    );
    assert!(names.iter().any(|n| n.starts_with("peerup_relay_")));
    assert!(names.iter().any(|n| n.starts_with("libp2p_")));

    // The relay: its own families and libp2p's, one registry.
    assert_eq!(sample(&relay_text, "peerup_relay_up"), Some(1.0));
    assert_eq!(sample(&relay_text, "peerup_relay_reservations"), Some(2.0));
    assert_eq!(
        sample(&relay_text, "peerup_relay_reservations_accepted_total"),
        Some(2.0)
    );
    assert!(sample(&relay_text, "peerup_relay_sent_bytes_total").unwrap() >= 100_000.0);
    assert!(relay_text.contains("libp2p_relay_events_total{event=\"ReservationReqAccepted\"}"));

    // The node: the reservation, the relayed connection, the stream and
    // its bytes.
    let relay_series = format!("peerup_relay_reserved{{relay=\"{}\"}}", relay.peer_id());
    assert_eq!(sample(&home_text, &relay_series), Some(1.0), "{home_text}");
    assert!(
        sample(&home_text, "peerup_connections{path=\"relayed\"}").unwrap() >= 1.0,
        "{home_text}"
    );
    assert!(
        sample(&home_text, "peerup_connections{path=\"direct\"}").unwrap() >= 1.0,
        "the relay's connection: {home_text}"
    );
    assert_eq!(
        sample(
            &home_text,
            "peerup_streams_total{kind=\"service\",service=\"data\",decision=\"accepted\",reason=\"\"}"
        ),
        Some(1.0),
        "{home_text}"
    );
    assert!(
        sample(
            &home_text,
            "peerup_proxy_bytes_total{service=\"data\",side=\"inbound\",direction=\"received\"}"
        )
        .unwrap()
            >= 100_000.0,
        "{home_text}"
    );
    assert_eq!(
        sample(
            &home_text,
            "peerup_proxies{service=\"data\",side=\"inbound\"}"
        ),
        Some(1.0),
        "{home_text}"
    );
    assert!(home_text.contains("libp2p_swarm_connections_established_total{"));
    // No remote peer but the relay is a label.
    assert!(!home_text.contains(&laptop_id.to_string()), "{home_text}");

    let (code, _, health) = get(&rt, home_http.local_addr(), "/healthz").await;
    assert_eq!(code, 200);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["peer_id"], home_id.to_string());
    assert_eq!(health["reserved_relays"], 1);
    assert_eq!(health["open_proxies"], 1);

    // The laptop goes: its relayed connection leaves the gauge.
    let mut events = home.events();
    drop(stream);
    laptop.shutdown().await;
    wait_for(
        &rt,
        &mut events,
        "the laptop's disconnection",
        |e| matches!(e, Event::Disconnected { peer, remaining: 0 } if *peer == laptop_id),
    )
    .await;
    let (_, _, home_text) = get(&rt, home_http.local_addr(), "/metrics").await;
    assert_eq!(
        sample(&home_text, "peerup_connections{path=\"relayed\"}"),
        Some(0.0),
        "{home_text}"
    );

    home_http.stop();
    home.shutdown().await;
    relay.shutdown().await;
}

/// The health server answers `404` to an unknown path and `405` to a
/// method other than GET, refuses an oversized request head and closes
/// it, closes a connection over [`MAX_CLIENTS`] at once while the others
/// are served, closes a silent client after its deadline, and goes on
/// serving through all of it.
pub async fn metrics_http_errors_and_bounds(rt: Arc<dyn Runtime>) {
    let relay = start_relay(&rt, &[]).await;
    let addr =
        peerup_relay::health::serve(rt.clone(), relay.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    let (code, _, body) = get(&rt, addr, "/healthz").await;
    assert_eq!(code, 200);
    // The fields tests/e2e reads.
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    for field in [
        "status",
        "peer_id",
        "bytes_relayed",
        "reservations",
        "connected_peers",
    ] {
        assert!(json.get(field).is_some(), "{field} missing from {json}");
    }
    assert_eq!(get(&rt, addr, "/nope").await.0, 404);
    assert_eq!(get(&rt, addr, "/metrics?x=1").await.0, 200);
    let post = http(
        &rt,
        addr,
        b"POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\nhi",
    )
    .await;
    let (code, head, _) = parse_response(&post);
    assert_eq!(code, 405, "{post}");
    assert!(head.contains("allow: get"), "{post}");
    assert_eq!(
        parse_response(
            &http(
                &rt,
                addr,
                b"HEAD /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            )
            .await
        )
        .0,
        405
    );
    // A name other than localhost (a web page's, rebound to 127.0.0.1) or
    // no Host at all: refused; IP literals and localhost answered.
    for host in [
        "evil.example:9091",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
    ] {
        let req = format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let answer = http(&rt, addr, req.as_bytes()).await;
        assert_eq!(parse_response(&answer).0, 403, "{host}: {answer}");
    }
    let answer = http(&rt, addr, b"GET /metrics HTTP/1.0\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.0 403 "), "no Host: {answer}");
    for host in ["127.0.0.1", "127.0.0.1:9091", "[::1]:9091", "LOCALHOST"] {
        let req = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let answer = http(&rt, addr, req.as_bytes()).await;
        assert_eq!(parse_response(&answer).0, 200, "{host}: {answer}");
    }
    // Not HTTP at all: an error answer or a close, never a 200.
    let garbage = http(&rt, addr, b"\x16\x03\x01 hello\r\n\r\n").await;
    assert!(!garbage.contains(" 200 "), "{garbage}");

    // 100 KiB of headers, never ended: refused (431) or reset once the
    // 8 KiB head limit is reached, not read to the end.
    let mut big = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Fill: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 100 * 1024));
    let answer = http(&rt, addr, &big).await;
    let code = parse_response(&answer).0;
    assert!(code == 431 || answer.is_empty(), "{answer}");

    // MAX_CLIENTS silent connections take every slot; one more is closed
    // at once, while the first of them is still served.
    let mut held = Vec::new();
    for _ in 0..MAX_CLIENTS {
        held.push(rt.tcp_connect(addr).await.unwrap());
    }
    let mut extra = rt.tcp_connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = rt
        .timeout(LIMIT, extra.read(&mut buf))
        .await
        .expect("the connection over the limit was not closed");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    let first = &mut held[0];
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost:9091\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    rt.timeout(LIMIT, first.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // A silent client is closed at its deadline.
    let silent = &mut held[1];
    let n = rt
        .timeout(LIMIT, silent.read(&mut buf))
        .await
        .expect("a silent client was never closed");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    drop(held);

    assert_eq!(get(&rt, addr, "/healthz").await.0, 200);
    relay.shutdown().await;
}
