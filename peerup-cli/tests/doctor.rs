//! `peerup doctor` against a real relay on 127.0.0.1 (TCP, QUIC and
//! WebSocket), in
//! temporary config directories: its JSON document and exit status.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use peerup_core::PeerId;
use serde_json::Value;

mod common;
use common::{PLACEHOLDER, TestRelay};

/// The relay's addresses in these tests: TCP, QUIC and WebSocket.
const DOCTOR_LISTEN: &[&str] = &[
    "/ip4/127.0.0.1/tcp/0",
    "/ip4/127.0.0.1/udp/0/quic-v1",
    "/ip4/127.0.0.1/tcp/0/ws",
];

/// Its own HOME and working directory; removed on drop.
struct Sandbox {
    root: PathBuf,
}

impl Sandbox {
    fn new(tag: &str) -> Self {
        let root = std::env::temp_dir().join(format!("peerup-doctor-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("home")).unwrap();
        Sandbox { root }
    }

    fn config(&self) -> PathBuf {
        self.root.join("node").join("config.yaml")
    }

    fn peerup(&self, args: &[&str]) -> Output {
        let cfg = self.config();
        let mut all = vec!["--config", cfg.to_str().unwrap()];
        all.extend_from_slice(args);
        Command::new(env!("CARGO_BIN_EXE_peerup"))
            .args(&all)
            .current_dir(&self.root)
            .env("HOME", self.root.join("home"))
            .env_remove("PEERUP_CONFIG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `init` with a placeholder relay; returns this machine's peer ID.
    fn init(&self) -> PeerId {
        let dir = self.root.join("node");
        let o = Command::new(env!("CARGO_BIN_EXE_peerup"))
            .args([
                "init",
                "--dir",
                dir.to_str().unwrap(),
                "--relay",
                PLACEHOLDER,
                "--yes",
            ])
            .current_dir(&self.root)
            .env("HOME", self.root.join("home"))
            .env_remove("PEERUP_CONFIG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let o = self.peerup(&["whoami"]);
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    }

    /// Replaces the placeholder with the relay's addresses.
    fn use_relay(&self, relay: &TestRelay) {
        for a in &relay.addrs {
            let o = self.peerup(&["relay", "add", a]);
            assert!(o.status.success(), "{}", text(&o));
        }
        let o = self.peerup(&["relay", "remove", "-f", PLACEHOLDER]);
        assert!(o.status.success(), "{}", text(&o));
    }

    /// `doctor --json`: its exit success and document.
    fn doctor(&self) -> (bool, Value) {
        let o = self.peerup(&["doctor", "--json", "--timeout", "20s"]);
        let doc: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("doctor --json printed no JSON ({e}):\n{}", text(&o)));
        (o.status.success(), doc)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The checks with `id`.
fn checks<'a>(doc: &'a Value, id: &str) -> Vec<&'a Value> {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .collect()
}

fn status_of(doc: &Value, id: &str) -> String {
    let c = checks(doc, id);
    assert!(!c.is_empty(), "no check {id} in {doc:#}");
    c[0]["status"].as_str().unwrap().to_owned()
}

#[test]
fn an_authorized_machine_reaches_the_relay_over_each_transport_and_reserves() {
    let sb = Sandbox::new("ok");
    let us = sb.init();
    let relay = TestRelay::start_on(&[us], DOCTOR_LISTEN);
    assert_eq!(relay.addrs.len(), 3, "{:?}", relay.addrs);
    sb.use_relay(&relay);
    let (success, doc) = sb.doctor();
    assert!(success, "doctor failed:\n{doc:#}");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["peer_id"], us.to_string());
    for id in [
        "config",
        "identity",
        "relay.addresses",
        "relay.tcp",
        "relay.quic",
        "relay.ws",
        "relay.reservation",
    ] {
        assert_eq!(status_of(&doc, id), "ok", "{id}: {doc:#}");
    }
    // Nothing FAILs; what is not ok carries its fix.
    for c in doc["checks"].as_array().unwrap() {
        assert_ne!(c["status"], "fail", "{c}");
        if c["status"] == "warn" {
            assert!(c["fix"].is_string(), "a warning without a fix: {c}");
        }
    }
    let relays = doc["relays"].as_array().unwrap();
    assert_eq!(relays.len(), 3);
    let mut transports: Vec<&str> = relays
        .iter()
        .map(|r| r["transport"].as_str().unwrap())
        .collect();
    transports.sort_unstable();
    assert_eq!(transports, ["quic", "tcp", "ws"]);
    for r in relays {
        assert_eq!(r["reachable"], true, "{r}");
        assert!(r["connect_ms"].as_f64().is_some(), "{r}");
        assert!(r["rtt_ms"].as_f64().is_some(), "{r}");
        assert!(
            r["observed"]
                .as_str()
                .unwrap()
                .starts_with("/ip4/127.0.0.1/"),
            "{r}"
        );
        assert_eq!(r["reservation"]["held"], true, "{r}");
    }
    // On loopback the relay sees our own address: no NAT. TCP dials are
    // not compared (their source ports are not known).
    assert_eq!(doc["nat"]["behaviour"], "no-nat", "{:#}", doc["nat"]);
    assert_eq!(doc["nat"]["udp"]["behaviour"], "no-nat", "{:#}", doc["nat"]);
    assert_eq!(
        doc["nat"]["tcp"]["behaviour"], "unknown",
        "{:#}",
        doc["nat"]
    );
}

#[test]
fn a_machine_the_relay_does_not_authorize_fails_with_the_fix() {
    let sb = Sandbox::new("unauthorized");
    let us = sb.init();
    let relay = TestRelay::start_on(&[], DOCTOR_LISTEN);
    sb.use_relay(&relay);
    let (success, doc) = sb.doctor();
    assert!(!success, "doctor passed:\n{doc:#}");
    assert_eq!(doc["ok"], false);
    for id in ["relay.tcp", "relay.quic", "relay.ws"] {
        let c = checks(&doc, id)[0];
        assert_eq!(c["status"], "fail", "{c}");
        assert!(
            c["detail"]
                .as_str()
                .unwrap()
                .contains("relay_authorized_keys"),
            "{c}"
        );
        assert!(
            c["fix"]
                .as_str()
                .unwrap()
                .contains(&format!("peerup-relay authorize {us}")),
            "{c}"
        );
    }
    assert!(
        doc["relays"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["reachable"] == false)
    );
}

#[test]
fn a_file_others_can_read_fails_with_the_chmod_fix() {
    let sb = Sandbox::new("mode");
    sb.init();
    let ak = sb.root.join("node").join("authorized_keys");
    std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o644)).unwrap();
    // No relay runs: the checks of the files do not depend on it.
    let (success, doc) = sb.doctor();
    assert!(!success);
    let c = checks(&doc, "authorized_keys")[0];
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(c["fix"], format!("chmod 600 {}", ak.display()), "{c}");
    // The one file with a bad mode is the one named.
    assert_eq!(status_of(&doc, "config"), "ok");
}

/// The doctor writes nothing: a missing identity key is said, with
/// `peerup init` to run, the network checks are skipped, and no key is
/// made behind the user's back (a daemon started later would take it,
/// and every peer would have to authorize it again).
#[test]
fn a_missing_identity_is_said_and_not_created() {
    let sb = Sandbox::new("nokey");
    sb.init();
    let key = sb.root.join("node").join("identity.key");
    std::fs::remove_file(&key).unwrap();
    let (_, doc) = sb.doctor();
    let c = checks(&doc, "identity")[0];
    assert_ne!(c["status"], "ok", "{c}");
    assert!(
        c["fix"].as_str().unwrap_or("").contains("peerup init"),
        "{c}"
    );
    assert_eq!(status_of(&doc, "network"), "skip", "{doc}");
    assert!(!key.exists(), "the doctor created {}", key.display());
}

/// Kills the child on drop (a failed assertion leaves no daemon behind).
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn with_a_daemon_running_its_reservation_is_reported() {
    let sb = Sandbox::new("daemon");
    let us = sb.init();
    let relay = TestRelay::start_on(&[us], DOCTOR_LISTEN);
    sb.use_relay(&relay);
    let cfg = sb.config();
    let _daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_peerup"))
            .args(["--config", cfg.to_str().unwrap(), "daemon"])
            .current_dir(&sb.root)
            .env("HOME", sb.root.join("home"))
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Bounded: the daemon reserves on a loopback relay within moments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let o = sb.peerup(&["status", "--json"]);
        let reserved = serde_json::from_slice::<Value>(&o.stdout)
            .map(|s| {
                s["relays"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|r| r["reserved"] == true)
            })
            .unwrap_or(false);
        if reserved {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not reserve: {}",
            text(&o)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The daemon holds the identity: the doctor still dials every address,
    // and reports the daemon's reservation rather than making its own.
    let (success, doc) = sb.doctor();
    assert!(success, "doctor failed:\n{doc:#}");
    assert_eq!(status_of(&doc, "daemon"), "ok");
    assert_eq!(status_of(&doc, "relay.tcp"), "ok");
    assert_eq!(status_of(&doc, "relay.quic"), "ok");
    assert_eq!(status_of(&doc, "relay.ws"), "ok");
    assert_eq!(status_of(&doc, "relay.reservation"), "ok");
    for r in doc["relays"].as_array().unwrap() {
        assert_eq!(r["reservation"]["by"], "daemon", "{r}");
        assert_eq!(r["reservation"]["held"], true, "{r}");
    }
}
