//! The `peerup-relay` binary's management commands, run for real.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PEER: &str = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("peerup-relay-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn relay(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peerup-relay"))
        .current_dir(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn manages_authorized_peers() {
    let d = dir("auth");
    write(&d.join("relay-server.yaml"), "version: 1\n", 0o600);
    let o = relay(&d, &["authorize", PEER, "--comment", "laptop"]);
    assert!(o.status.success(), "{}", text(&o));
    let keys = d.join("relay_authorized_keys");
    assert_eq!(
        std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(&keys).unwrap(),
        format!("{PEER}  # laptop\n")
    );
    let o = relay(&d, &["list-peers"]);
    assert!(
        text(&o).contains(&format!("{PEER}  laptop")),
        "{}",
        text(&o)
    );
    let o = relay(&d, &["deauthorize", PEER]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&keys).unwrap(), "");
    let o = relay(&d, &["deauthorize", PEER]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("relay_authorized_keys"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn bad_input_fails_with_one_clear_line_and_changes_nothing() {
    let d = dir("bad");
    write(&d.join("relay-server.yaml"), "version: 1\n", 0o600);
    let o = relay(&d, &["authorize", "12D3KooWnotapeer"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("`12D3KooWnotapeer` is not a valid peer ID"),
        "{}",
        text(&o)
    );
    assert!(!d.join("relay_authorized_keys").exists());
    // A config others can read is refused with the fix.
    write(&d.join("relay-server.yaml"), "version: 1\n", 0o644);
    let o = relay(&d, &["config", "validate"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("expected 0600 - fix with: chmod 600"),
        "{}",
        text(&o)
    );
    // Bad YAML names the file, line and field.
    write(
        &d.join("relay-server.yaml"),
        "version: 1\nresources:\n  max_circuits: lots\n",
        0o600,
    );
    let o = relay(&d, &["config", "validate"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("relay-server.yaml:3"), "{}", text(&o));
    assert!(text(&o).contains("resources.max_circuits"), "{}", text(&o));
    // Gating on without relay_authorized_keys: serve refuses to start.
    write(
        &d.join("relay-server.yaml"),
        "version: 1\nnetwork:\n  listen_addresses: [\"/ip4/127.0.0.1/tcp/0\"]\nhealth:\n  enabled: false\n",
        0o600,
    );
    let o = relay(&d, &["serve"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("relay_authorized_keys does not exist"),
        "{}",
        text(&o)
    );
    // A usage error exits 2.
    assert_eq!(relay(&d, &["authorize"]).status.code(), Some(2));
    assert_eq!(relay(&d, &["frobnicate"]).status.code(), Some(2));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn version_and_help() {
    let d = dir("version");
    let o = relay(&d, &["version"]);
    assert!(o.status.success());
    assert!(text(&o).starts_with("peerup-relay "), "{}", text(&o));
    assert!(text(&o).contains("commit"));
    let o = relay(&d, &["--help"]);
    assert!(text(&o).contains("Examples:"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(d);
}

/// `authorize` and `deauthorize` ask a running relay to apply the change,
/// and fail unless it did (a bad line elsewhere in the file no longer
/// stops the reload; a bad line naming the peer itself denies it).
#[test]
fn a_running_relay_confirms_authorization_changes() {
    use std::io::{BufRead, BufReader};
    let d = dir("running");
    write(
        &d.join("relay-server.yaml"),
        "version: 1\nnetwork:\n  listen_addresses: [\"/ip4/127.0.0.1/tcp/0\"]\nhealth:\n  enabled: false\n",
        0o600,
    );
    // A bad line about another peer: it no longer stops a reload.
    let other = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA";
    write(
        &d.join("relay_authorized_keys"),
        &format!("{PEER}  # laptop\n{other}  expires=next-week\n"),
        0o600,
    );
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_peerup-relay"))
            .current_dir(&d)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The banner's last line comes after the control socket is bound.
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the relay did not start");
        if line.starts_with("Limits:") {
            break;
        }
    }
    let o = relay(&d, &["deauthorize", PEER]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("the running relay applied it"),
        "{}",
        text(&o)
    );
    assert!(
        !std::fs::read_to_string(d.join("relay_authorized_keys"))
            .unwrap()
            .contains(PEER)
    );
    // A change the running relay does not make its own fails the command:
    // an entry that expired before it was added is refused.
    let o = relay(
        &d,
        &["authorize", PEER, "--expires", "2000-01-01T00:00:00Z"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("still refuses"), "{}", text(&o));
    drop(child);
    let _ = std::fs::remove_dir_all(d);
}

/// Out of descriptors, an accept loop fails at once, every time: the
/// health endpoint backs off (10 ms, 20 ms, 40 ms...) instead of spinning
/// (one request kept a relay at 94% CPU).
#[test]
fn accept_errors_back_off() {
    use std::io::{BufRead, BufReader};
    let d = dir("emfile");
    write(
        &d.join("relay-server.yaml"),
        "version: 1\nnetwork:\n  listen_addresses: [\"/ip4/127.0.0.1/tcp/0\"]\nhealth:\n  listen_address: \"127.0.0.1:0\"\n",
        0o600,
    );
    write(
        &d.join("relay_authorized_keys"),
        &format!("{PEER}\n"),
        0o600,
    );
    let start = |limit: Option<usize>| {
        let mut c = Command::new("bash");
        let exe = env!("CARGO_BIN_EXE_peerup-relay");
        let script = match limit {
            Some(n) => format!("ulimit -n {n} && exec '{exe}'"),
            None => format!("exec '{exe}'"),
        };
        c.args(["-c", &script])
            .current_dir(&d)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        // The health endpoint is announced last, once it listens.
        let port: u16 = loop {
            let line = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("the relay did not start");
            if let Some(rest) = line.strip_prefix("Health:    http://127.0.0.1:") {
                break rest.split('/').next().unwrap().parse().unwrap();
            }
        };
        (KillOnDrop(child), rx, port)
    };
    // How many descriptors a relay holds once started.
    let (child, _rx, _) = start(None);
    let held = std::fs::read_dir(format!("/proc/{}/fd", child.0.id()))
        .map(|r| r.count())
        .unwrap_or(20);
    drop(child);
    // Again with two descriptors to spare; silent clients use them up.
    let (child, rx, port) = start(Some(held + 2));
    let clients: Vec<_> = (0..16)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    let mut waits = Vec::new();
    while waits.len() < 3 {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no back-off logged; saw {waits:?}"));
        if line.contains("health endpoint: accept failed")
            && let Some(w) = line.split("retry_in=").nth(1)
        {
            waits.push(w.split_whitespace().next().unwrap_or("").to_owned());
        }
    }
    assert_eq!(waits, ["10ms", "20ms", "40ms"], "{waits:?}");
    drop(clients);
    drop(child);
    let _ = std::fs::remove_dir_all(d);
}

/// A child process killed when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
