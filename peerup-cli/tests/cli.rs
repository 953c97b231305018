//! The real `peerup` binary, in temporary config directories, with a relay
//! in the test process, on 127.0.0.1.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerup_core::PeerId;

mod common;
use common::{PLACEHOLDER, TestRelay};

/// Bound for any single wait; reached only when something is broken.
const LIMIT: Duration = Duration::from_secs(60);

fn temp(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "peerup-cli-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A sandbox: its own HOME and working directory, so nothing outside it
/// is read or written.
struct Sandbox {
    root: PathBuf,
}

impl Sandbox {
    fn new(tag: &str) -> Self {
        let root = temp(tag);
        std::fs::create_dir_all(root.join("home")).unwrap();
        Sandbox { root }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_peerup"));
        c.args(args)
            .current_dir(&self.root)
            .env("HOME", self.root.join("home"))
            .env_remove("PEERUP_CONFIG")
            .env_remove("PEERUP_INVITE_CODE")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs with the config of `node`.
    fn peerup(&self, node: &str, args: &[&str]) -> Output {
        let cfg = self.config(node);
        let mut all = vec!["--config", cfg.to_str().unwrap()];
        all.extend_from_slice(args);
        self.run(&all)
    }

    fn config(&self, node: &str) -> PathBuf {
        self.root.join(node).join("config.yaml")
    }

    fn spawn(&self, node: &str, args: &[&str]) -> Proc {
        let cfg = self.config(node);
        let mut all = vec!["--config", cfg.to_str().unwrap()];
        all.extend_from_slice(args);
        let mut cmd = self.cmd(&all);
        cmd.env("RUST_LOG", "info,libp2p=warn,yamux=error,libp2p_kad=error");
        Proc::spawn(cmd)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A child whose output lines arrive on a channel as they are written.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (tx, log) = (tx.clone(), log.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        Proc {
            child,
            lines: rx,
            log,
        }
    }

    /// Waits for an output line containing `needle`; returns it.
    fn wait_line(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => panic!("no line with {needle:?}; output so far:\n{}", self.log()),
            }
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "process did not exit; output:\n{}",
                self.log()
            );
            // Drain lines so the wait makes progress on output events.
            let _ = self.lines.recv_timeout(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        // SIGTERM: the daemon's graceful path.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An echo service on 127.0.0.1 (a thread per connection).
fn echo_service() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 65536];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Sends `data`, half-closes, and reads the echo.
fn echo_through(port: u16, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(LIMIT))?;
    s.write_all(data)?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut back = Vec::new();
    s.read_to_end(&mut back)?;
    Ok(back)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn init(sb: &Sandbox, node: &str, relay: &str) -> PeerId {
    let dir = sb.root.join(node);
    let o = sb.run(&[
        "init",
        "--dir",
        dir.to_str().unwrap(),
        "--relay",
        relay,
        "--yes",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    let o = sb.peerup(node, &["whoami"]);
    assert!(o.status.success(), "{}", out(&o));
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

fn add_service(sb: &Sandbox, node: &str, name: &str, addr: SocketAddr) {
    let path = sb.config(node);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "services:\n  {name}:\n    enabled: true\n    local_address: \"{addr}\"\n"
    ));
    std::fs::write(&path, text).unwrap();
}

/// `init` on two machines and a relay -> `daemon` -> `invite`/`join`
/// through the relay -> `proxy` to an echo service -> `ping` -> `auth
/// remove` -> the next connection is denied.
#[test]
fn the_whole_journey() {
    let sb = Sandbox::new("journey");
    // Keys first (the relay must know them), then the relay.
    let home = init(&sb, "home", PLACEHOLDER);
    let laptop = init(&sb, "laptop", PLACEHOLDER);
    let relay = TestRelay::start(&[home, laptop]);
    for node in ["home", "laptop"] {
        let o = sb.peerup(node, &["relay", "add", &relay.addr]);
        assert!(o.status.success(), "{}", out(&o));
        let o = sb.peerup(node, &["relay", "remove", PLACEHOLDER]);
        assert!(o.status.success(), "{}", out(&o));
        let o = sb.peerup(node, &["relay", "list"]);
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), relay.addr);
    }
    let echo = echo_service();
    add_service(&sb, "home", "echo", echo);
    let o = sb.peerup("home", &["config", "validate"]);
    assert!(o.status.success(), "{}", out(&o));

    // sd_notify: a datagram socket standing in for systemd.
    let notify_path = sb.root.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(LIMIT)).unwrap();
    let cfg = sb.config("home");
    let mut cmd = sb.cmd(&["--config", cfg.to_str().unwrap(), "daemon"]);
    cmd.env("RUST_LOG", "info,libp2p=warn,yamux=error,libp2p_kad=error")
        .env("NOTIFY_SOCKET", &notify_path);
    let mut daemon = Proc::spawn(cmd);
    // Pairing, the invite going through the running daemon, even when it
    // starts while the daemon is still starting: the daemon holds the
    // identity (logged with its connection limits) before its control
    // socket exists, and the invite waits for the socket rather than run
    // a second node with the same key.
    daemon.wait_line("connection limits");
    let mut invite = sb.spawn("home", &["invite", "--name", "home", "--non-interactive"]);
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).unwrap();
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim(), "READY=1");
    daemon.wait_line("Service:  echo");
    daemon.wait_line("relay reservation accepted");
    let code = invite.wait_line("-");
    // (Logged before or after the reservation: look in the whole log.)
    if !daemon.log().contains("invite open") {
        daemon.wait_line("invite open");
    }
    // `--non-interactive`, as a script would: stdout is the paired peer
    // and its name, alone on one line.
    let o = sb.peerup(
        "laptop",
        &["join", "--non-interactive", code.trim(), "--name", "laptop"],
    );
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("{home} home\n"),
        "{}",
        out(&o)
    );
    assert!(invite.wait().success(), "{}", invite.log());
    assert!(
        invite.log().contains("Paired with laptop"),
        "{}",
        invite.log()
    );
    let keys = std::fs::read_to_string(sb.root.join("home/authorized_keys")).unwrap();
    assert!(keys.contains(&format!("{laptop}  # laptop")), "{keys}");
    let keys = std::fs::read_to_string(sb.root.join("laptop/authorized_keys")).unwrap();
    assert!(keys.contains(&format!("{home}  # home")), "{keys}");

    // An invite whose `peerup invite` goes away (killed, Ctrl-C) is
    // cancelled in the daemon: its code stops working and the next
    // invite can open.
    let abandoned = sb.spawn("home", &["invite", "--non-interactive"]);
    abandoned.wait_line("-");
    let o = sb.peerup("home", &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(status["invite"].is_object(), "{status}");
    drop(abandoned);
    daemon.wait_line("invite cancelled");
    let o = sb.peerup("home", &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(status["invite"].is_null(), "{status}");
    let mut again = sb.spawn("home", &["invite", "--non-interactive"]);
    again.wait_line("-");
    let o = sb.peerup("home", &["invite", "--cancel"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("invite cancelled"), "{}", out(&o));
    assert!(!again.wait().success());
    assert!(again.log().contains("cancelled"), "{}", again.log());

    // The proxy, by name.
    let port = free_port();
    let mut proxy = sb.spawn("laptop", &["proxy", "home", "echo", &port.to_string()]);
    proxy.wait_line("Forwarding");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(echo_through(port, &data).unwrap(), data);

    // A service the peer does not expose: the client is told which.
    let port2 = free_port();
    let mut wrong = sb.spawn("laptop", &["proxy", "home", "nosuch", &port2.to_string()]);
    wrong.wait_line("Forwarding");
    assert!(
        echo_through(port2, b"x")
            .map(|v| v.is_empty())
            .unwrap_or(true)
    );
    wrong.wait_line("does not expose a service `nosuch`");
    wrong.stop();

    let o = sb.peerup(
        "laptop",
        &["ping", "home", "-c", "2", "--interval", "100ms"],
    );
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("2 sent, 2 received, 0% loss"),
        "{}",
        out(&o)
    );
    let o = sb.peerup("laptop", &["ping", "home", "-c", "1", "--json"]);
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert!(
        first["path"] == "DIRECT" || first["path"] == "RELAYED",
        "{first}"
    );
    // A relayed reply is followed by what became of the path: the hole
    // punch's direct connection, or why it stays relayed; a direct one
    // needs no such line.
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let said = lines
        .iter()
        .any(|l| l.get("path_change").is_some() || l.get("path_stays").is_some());
    assert_eq!(said, first["path"] == "RELAYED", "{lines:?}");

    let o = sb.peerup("home", &["status", "--json"]);
    assert!(o.status.success(), "{}", out(&o));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["peer_id"], home.to_string());
    assert_eq!(status["relays"][0]["reserved"], true);
    assert_eq!(status["services"][0]["name"], "echo");

    // A bad line in authorized_keys (a typo by hand) no longer stops a
    // reload: it denies the peer it names, and the rest applies.
    let other = peerup_core::identity::keypair_from_seed([7; 32])
        .public()
        .to_peer_id();
    let ak = sb.root.join("home/authorized_keys");
    let mut keys = std::fs::read_to_string(&ak).unwrap();
    keys.push_str(&format!("{other}  expires=next-week\n"));
    std::fs::write(&ak, keys).unwrap();
    // A change the running daemon does not make its own fails the
    // command: an entry that expired before it was added is denied.
    let expired = peerup_core::identity::keypair_from_seed([8; 32])
        .public()
        .to_peer_id()
        .to_string();
    let o = sb.peerup(
        "home",
        &["auth", "add", &expired, "--expires", "2000-01-01T00:00:00Z"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("still denies"), "{}", out(&o));

    // Revoke the laptop: the daemon applies it live, and the next
    // connection through the proxy is denied.
    let o = sb.peerup("home", &["auth", "remove", "laptop"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("Running daemon: authorized_keys reloaded"),
        "{}",
        out(&o)
    );
    daemon.wait_line("authorized_keys reloaded");
    let denied = echo_through(port, b"are you there?");
    assert!(
        denied.is_err() || denied.as_ref().is_ok_and(Vec::is_empty),
        "{denied:?}"
    );
    daemon.wait_line("DENIED");
    proxy.stop();
    daemon.stop();
    assert!(daemon.log().contains("stopping"), "{}", daemon.log());
    // WATCHDOG=1 while healthy (the first tick is at start), then STOPPING=1.
    let mut seen = Vec::new();
    while !seen.contains(&"STOPPING=1".to_owned()) {
        let n = notify.recv(&mut buf).unwrap();
        seen.push(String::from_utf8_lossy(&buf[..n]).trim().to_owned());
    }
    assert!(seen.contains(&"WATCHDOG=1".to_owned()), "{seen:?}");
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().map_while(Result::ok) {
            let p = e.path();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else {
                m.insert(
                    p.clone(),
                    (
                        std::fs::read(&p).unwrap_or_default(),
                        meta.permissions().mode(),
                    ),
                );
            }
        }
    }
    m
}

/// Every bad input exits non-zero with one line naming the thing and the
/// fix, and changes nothing on disk.
#[test]
fn bad_input_fails_with_one_line_and_changes_nothing() {
    let sb = Sandbox::new("bad");
    let relay = "/ip4/127.0.0.1/tcp/7777/p2p/12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
    init(&sb, "a", relay);
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let cfg = sb.config("a");
    let cfg = cfg.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (
            vec!["--config", cfg, "auth", "add", "12D3KooWnotapeer"],
            "`12D3KooWnotapeer` is not a valid peer ID",
            1,
        ),
        (
            vec!["--config", cfg, "auth", "remove", "nobody"],
            "cannot resolve target `nobody`",
            1,
        ),
        (
            vec!["--config", cfg, "relay", "add", "/ip4/1.2.3.4/tcpx/7777"],
            "is not a valid multiaddr",
            1,
        ),
        (
            vec!["--config", cfg, "relay", "add", "relay.example.com"],
            "is a host name; write it as a multiaddr",
            1,
        ),
        (
            vec!["--config", cfg, "relay", "remove", relay],
            "is the only relay",
            1,
        ),
        (
            vec!["--config", cfg, "join", "ABCD-EFGH-1234"],
            "invalid invite code",
            1,
        ),
        (
            vec!["--config", cfg, "ping", "nosuchname"],
            "cannot resolve target `nosuchname`",
            1,
        ),
        (
            vec!["--config", cfg, "proxy", "nosuchname", "ssh", "2222"],
            "cannot resolve target `nosuchname`",
            1,
        ),
        (
            vec![
                "--config",
                cfg,
                "proxy",
                relay_peer(relay),
                "Not_A_Service",
                "2222",
            ],
            "service name",
            1,
        ),
        (
            vec![
                "--config",
                cfg,
                "proxy",
                relay_peer(relay),
                "ssh",
                &busy_port,
            ],
            "is already in use",
            1,
        ),
        (
            vec!["--config", cfg, "invite", "--ttl", "soon"],
            "invalid value 'soon'",
            2,
        ),
        (
            vec!["--config", cfg, "config", "apply", "/nonexistent/new.yaml"],
            "/nonexistent/new.yaml",
            1,
        ),
        (
            vec!["--config", "/nonexistent/peerup.yaml", "whoami"],
            "/nonexistent/peerup.yaml",
            1,
        ),
        (
            vec!["--config", cfg, "service", "add", "SSH", "localhost:22"],
            "service name `SSH` contains 'S'",
            1,
        ),
        (
            vec!["--config", cfg, "service", "add", "kad", "localhost:22"],
            "service name `kad` is reserved",
            1,
        ),
        (
            vec!["--config", cfg, "service", "add", "ssh", "localhost"],
            "address `localhost` needs a port",
            1,
        ),
        (
            vec!["--config", cfg, "service", "add", "ssh", "localhost:0"],
            "invalid port `0`",
            1,
        ),
        (
            vec![
                "--config",
                cfg,
                "service",
                "add",
                "ssh",
                "localhost:22",
                "--allow",
                "nobody",
            ],
            "--allow: cannot resolve target `nobody`",
            1,
        ),
        (
            vec!["--config", cfg, "service", "remove", "nosuch"],
            "no service `nosuch`",
            1,
        ),
        (
            vec!["--config", cfg, "service", "disable", "nosuch"],
            "no services are configured",
            1,
        ),
        (
            vec!["--config", cfg, "service", "add", "ssh"],
            "required",
            2,
        ),
        (
            vec!["--config", cfg, "join", "--non-interactive"],
            "no invite code: with --non-interactive",
            1,
        ),
        (
            vec![
                "--config",
                cfg,
                "join",
                "--non-interactive",
                "ABCD-EFGH-1234",
            ],
            "invalid invite code",
            1,
        ),
        // Before looking for a config: nothing is created.
        (vec!["join", "--non-interactive"], "no invite code", 1),
        (vec!["whoami"], "no config file found", 1),
        (vec!["ping"], "required", 2),
        (vec!["frobnicate"], "unrecognized subcommand", 2),
    ];
    let before = snapshot(&sb.root);
    for (args, expect, code) in &cases {
        let o = sb.run(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(*code), "{args:?}: {}", out(&o));
        assert!(
            err.contains(expect),
            "{args:?}: expected {expect:?} in: {err}"
        );
        if *code == 1 {
            assert_eq!(
                err.trim_end().lines().count(),
                1,
                "{args:?}: not one line: {err}"
            );
            assert!(err.starts_with("error: "), "{args:?}: {err}");
        }
        assert_eq!(snapshot(&sb.root), before, "{args:?} changed files on disk");
    }

    // Bad YAML names the file, the line and the field.
    std::fs::write(
        sb.config("a"),
        "version: 1\nrelay:\n  reservation_interval: sometimes\n",
    )
    .unwrap();
    let before = snapshot(&sb.root);
    let o = sb.peerup("a", &["config", "validate"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("config.yaml:3") && err.contains("relay.reservation_interval"),
        "{err}"
    );
    assert_eq!(snapshot(&sb.root), before);

    // A key others can read is refused with the fix.
    let o = sb.run(&[
        "init",
        "--dir",
        sb.root.join("b").to_str().unwrap(),
        "--relay",
        relay,
        "--yes",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    let key = sb.root.join("b/identity.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = snapshot(&sb.root);
    let o = sb.peerup("b", &["whoami"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "expected 0600 - fix with: chmod 600 {}",
            key.display()
        )),
        "{err}"
    );
    assert_eq!(snapshot(&sb.root), before);
    // So is the config.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(sb.config("b"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = sb.peerup("b", &["whoami"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("fix with: chmod 600"),
        "{}",
        out(&o)
    );
    // init refuses to overwrite.
    let o = sb.run(&[
        "init",
        "--dir",
        sb.root.join("b").to_str().unwrap(),
        "--relay",
        relay,
        "--yes",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already exists; pass --force"),
        "{}",
        out(&o)
    );
    drop(busy);
}

/// The comment lines of `text`, in order.
fn comments(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect()
}

/// `service add|list|disable|enable|remove` without a daemon: the config is
/// edited in place (every comment kept, the file back to what it was plus
/// `services: {}` at the end), repeated changes are no-ops, conflicts and
/// shapes the editor cannot change fail naming the file.
#[test]
fn service_commands_edit_the_config_keeping_comments() {
    let sb = Sandbox::new("service");
    let relay = "/ip4/127.0.0.1/tcp/7777/p2p/12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
    init(&sb, "a", relay);
    let path = sb.config("a");
    let mut original = std::fs::read_to_string(&path).unwrap();
    original.push_str("# my own note\n");
    std::fs::write(&path, &original).unwrap();
    let laptop = peerup_core::identity::keypair_from_seed([5; 32])
        .public()
        .to_peer_id()
        .to_string();
    let run = |args: &[&str]| {
        let o = sb.peerup("a", args);
        let now = std::fs::read_to_string(&path).unwrap();
        let mut kept = comments(&now).into_iter();
        for c in comments(&original) {
            assert!(kept.any(|k| k == c), "{args:?} lost {c:?}:\n{now}");
        }
        o
    };
    let ok = |args: &[&str], expect: &str| {
        let o = run(args);
        assert!(o.status.success(), "{args:?}: {}", out(&o));
        assert!(out(&o).contains(expect), "{args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };

    ok(&["service", "list"], "No services in");
    let added = ok(
        &["service", "add", "ssh", "localhost:22"],
        "Added service ssh -> localhost:22",
    );
    assert!(added.contains("No daemon is running"), "{added}");
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .ends_with("# my own note\n\nservices:\n  ssh:\n    enabled: true\n    local_address: \"localhost:22\"\n")
    );
    ok(
        &[
            "service",
            "add",
            "web",
            "127.0.0.1:8080",
            "--allow",
            &laptop,
        ],
        "Added service web",
    );
    let table = ok(&["service", "list"], "NAME");
    assert!(
        table.lines().any(|l| l.starts_with("ssh ")
            && l.contains("localhost:22")
            && l.contains("enabled")
            && l.ends_with("every authorized peer")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("web ") && l.ends_with(&laptop)),
        "{table}"
    );
    let o = run(&["service", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list[0]["name"], "ssh");
    assert_eq!(list[0]["allowed_peers"], serde_json::Value::Null);
    assert_eq!(list[1]["local_address"], "127.0.0.1:8080");
    assert_eq!(list[1]["allowed_peers"][0], laptop.as_str());

    ok(&["service", "disable", "web"], "Service web disabled");
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("    enabled: false\n")
    );
    ok(&["service", "list"], "disabled");
    ok(&["service", "disable", "web"], "already disabled");
    // A disabled one is not added over: enabled, or removed first.
    let o = run(&["service", "add", "web", "127.0.0.1:9090"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("peerup service enable web"), "{}", out(&o));
    ok(&["service", "enable", "web"], "Service web enabled");
    ok(&["config", "validate"], "OK");
    // The same again changes nothing; another address is a conflict.
    ok(
        &["service", "add", "ssh", "localhost:22"],
        "nothing to change",
    );
    let before = std::fs::read_to_string(&path).unwrap();
    let o = run(&["service", "add", "ssh", "localhost:2222"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("service `ssh` is already in") && err.contains("peerup service remove ssh"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);

    ok(&["service", "remove", "ssh"], "Removed service ssh");
    ok(&["service", "remove", "web"], "Removed service web");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{original}\nservices: {{}}\n")
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // A shape the editor does not change: refused, naming file and line.
    let flow = format!("{original}services: {{ssh: {{local_address: \"localhost:22\"}}}}\n");
    std::fs::write(&path, &flow).unwrap();
    let line = flow.lines().count();
    for args in [
        &["service", "add", "web", "localhost:80"][..],
        &["service", "disable", "ssh"][..],
        &["service", "remove", "ssh"][..],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", out(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!(
                "{}: cannot edit services safely: line {line}",
                path.display()
            )) && err.contains("edit the file by hand"),
            "{args:?}: {err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), flow);
    }
}

/// `join --non-interactive` reads neither a prompt nor stdin: with stdin
/// held open and no code it fails at once; a code from the environment is
/// used (and checked); stdout stays empty on failure.
#[test]
fn join_non_interactive_never_waits_for_input() {
    let sb = Sandbox::new("join-ni");
    let relay = "/ip4/127.0.0.1/tcp/7777/p2p/12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
    init(&sb, "a", relay);
    let cfg = sb.config("a");
    let cfg = cfg.to_str().unwrap();
    let run = |env: Option<&str>| {
        let mut c = sb.cmd(&[
            "--config",
            cfg,
            "join",
            "--non-interactive",
            "--name",
            "laptop",
        ]);
        if let Some(code) = env {
            c.env("PEERUP_INVITE_CODE", code);
        }
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Held open, never written: a prompt or a read of stdin would wait
        // here until the limit.
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let o = rx
            .recv_timeout(LIMIT)
            .expect("join --non-interactive waited for input")
            .unwrap();
        drop(stdin);
        o
    };
    let o = run(None);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(o.stdout.is_empty(), "{}", out(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no invite code") && err.contains("$PEERUP_INVITE_CODE"),
        "{err}"
    );
    let o = run(Some("NOT-A-CODE"));
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(o.stdout.is_empty(), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("invalid invite code"),
        "{}",
        out(&o)
    );
    // Blank in the environment counts as none.
    let o = run(Some("   "));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no invite code"),
        "{}",
        out(&o)
    );
}

/// With a daemon running, `service add|disable|enable|remove` apply at
/// once (no restart) and say so: a peer proxies to a service added live,
/// an open proxied connection is cut when the service is disabled and new
/// ones are refused, re-enabled it serves again, removed it is unknown; a
/// hand edit of the file applies the same way.
#[test]
fn service_changes_apply_to_a_running_daemon() {
    let sb = Sandbox::new("live");
    let (home, _laptop, _relay) = two_machines(&sb);
    let echo = echo_service();
    let mut daemon = sb.spawn("home", &["daemon"]);
    daemon.wait_line("Services: none");
    daemon.wait_line("relay reservation accepted");

    let ok = |args: &[&str], expect: &str| {
        let o = sb.peerup("home", args);
        assert!(o.status.success(), "{args:?}: {}", out(&o));
        assert!(out(&o).contains(expect), "{args:?}: {}", out(&o));
    };
    ok(
        &["service", "add", "echo", &echo.to_string()],
        "Running daemon: names reloaded; services added echo",
    );
    let port = free_port();
    let home_id = home.to_string();
    let mut proxy = sb.spawn("laptop", &["proxy", &home_id, "echo", &port.to_string()]);
    proxy.wait_line("Forwarding");
    assert_eq!(echo_through(port, b"hello").unwrap(), b"hello");

    // An open connection, then the service is disabled: it is cut.
    let mut open = TcpStream::connect(("127.0.0.1", port)).unwrap();
    open.set_read_timeout(Some(LIMIT)).unwrap();
    open.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    open.read_exact(&mut buf).unwrap();
    ok(
        &["service", "disable", "echo"],
        "services changed echo (1 proxied connection(s) no longer allowed were cut)",
    );
    let mut rest = Vec::new();
    let cut = open.read_to_end(&mut rest);
    assert!(cut.is_err() || rest.is_empty(), "{cut:?} {rest:?}");
    let denied = echo_through(port, b"anyone?");
    assert!(
        denied.is_err() || denied.as_ref().is_ok_and(Vec::is_empty),
        "{denied:?}"
    );
    daemon.wait_line("service `echo` is disabled");

    ok(&["service", "enable", "echo"], "services changed echo");
    assert_eq!(echo_through(port, b"back").unwrap(), b"back");

    // A second one added, the first removed: unknown to the peer now.
    ok(
        &["service", "add", "other", &echo.to_string()],
        "services added other",
    );
    ok(&["service", "remove", "echo"], "services removed echo");
    let gone = echo_through(port, b"x");
    assert!(
        gone.is_err() || gone.as_ref().is_ok_and(Vec::is_empty),
        "{gone:?}"
    );
    proxy.wait_line("does not expose a service `echo`");
    let o = sb.peerup("home", &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["services"].as_array().unwrap().len(), 1, "{status}");
    assert_eq!(status["services"][0]["name"], "other");

    // A hand edit (the file watch) applies too.
    let path = sb.config("home");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("enabled: true", "enabled: false")).unwrap();
    daemon.wait_line("services changed other");
    let o = sb.peerup("home", &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["services"].as_array().unwrap().len(), 0, "{status}");

    // All of it in one daemon: it never restarted.
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "{}",
        daemon.log()
    );
    assert_eq!(
        daemon.log().matches("Peer ID:").count(),
        1,
        "{}",
        daemon.log()
    );
    proxy.stop();
    daemon.stop();
}

fn relay_peer(addr: &str) -> &str {
    addr.rsplit('/').next().unwrap()
}

/// Runs `peerup daemon` the way a service manager would: restarted when it
/// exits with the restart code (75), until stopped.
struct Supervised {
    current: Arc<Mutex<Option<Proc>>>,
    restarts: mpsc::Receiver<String>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Supervised {
    fn start(sb: &Sandbox, node: &str) -> Supervised {
        let cmd_args = vec![
            "--config".to_owned(),
            sb.config(node).to_str().unwrap().to_owned(),
            "daemon".to_owned(),
        ];
        let root = sb.root.clone();
        let current: Arc<Mutex<Option<Proc>>> = Arc::new(Mutex::new(None));
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cur, stop2) = (current.clone(), stop.clone());
        std::thread::spawn(move || {
            loop {
                let mut c = Command::new(env!("CARGO_BIN_EXE_peerup"));
                c.args(&cmd_args)
                    .current_dir(&root)
                    .env("HOME", root.join("home"))
                    .env("RUST_LOG", "info,libp2p=warn,yamux=error,libp2p_kad=error")
                    .env_remove("NOTIFY_SOCKET");
                let p = Proc::spawn(c);
                let lines_tx = tx.clone();
                *cur.lock().unwrap() = Some(p);
                // Forward this run's lines.
                let status = loop {
                    let mut guard = cur.lock().unwrap();
                    let p = guard.as_mut().unwrap();
                    while let Ok(l) = p.lines.try_recv() {
                        let _ = lines_tx.send(l);
                    }
                    if let Some(s) = p.child.try_wait().unwrap() {
                        while let Ok(l) = p.lines.recv_timeout(Duration::from_millis(100)) {
                            let _ = lines_tx.send(l);
                        }
                        break s;
                    }
                    drop(guard);
                    std::thread::sleep(Duration::from_millis(20));
                };
                let _ = tx.send(format!("<exited {:?}>", status.code()));
                if stop2.load(std::sync::atomic::Ordering::SeqCst) || status.code() != Some(75) {
                    return;
                }
            }
        });
        Supervised {
            current,
            restarts: rx,
            stop,
        }
    }

    fn wait_line(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            match self
                .restarts
                .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => panic!("daemon never printed {needle:?}"),
            }
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(p) = self.current.lock().unwrap().as_mut() {
            p.stop();
        }
    }
}

/// `config apply --confirm-timeout 3s` on a running daemon reverts and
/// restarts onto the old config when not confirmed; `config confirm` in
/// time keeps the new one; `rollback` restores last-good.
#[test]
fn commit_confirmed_apply_confirm_and_rollback() {
    let sb = Sandbox::new("confirm");
    let relay = TestRelay::start(&[]);
    init(&sb, "a", &relay.addr);
    let echo = echo_service();
    add_service(&sb, "a", "one", echo);
    let old = std::fs::read_to_string(sb.config("a")).unwrap();
    let new_path = sb.root.join("new.yaml");
    std::fs::write(&new_path, old.replace("  one:", "  two:")).unwrap();
    let daemon = Supervised::start(&sb, "a");
    daemon.wait_line("Service:  one");

    // Not confirmed: reverted at the deadline, restarted on the old config.
    let o = sb.peerup(
        "a",
        &[
            "config",
            "apply",
            new_path.to_str().unwrap(),
            "--confirm-timeout",
            "3s",
        ],
    );
    assert!(o.status.success(), "{}", out(&o));
    daemon.wait_line("<exited Some(75)>");
    daemon.wait_line("Config change pending");
    daemon.wait_line("Service:  two");
    daemon.wait_line("commit-confirmed timeout");
    daemon.wait_line("<exited Some(75)>");
    daemon.wait_line("Service:  one");
    assert_eq!(std::fs::read_to_string(sb.config("a")).unwrap(), old);

    // Confirmed in time: kept, even past the deadline.
    let o = sb.peerup(
        "a",
        &[
            "config",
            "apply",
            new_path.to_str().unwrap(),
            "--confirm-timeout",
            "3s",
        ],
    );
    assert!(o.status.success(), "{}", out(&o));
    daemon.wait_line("Service:  two");
    let o = sb.peerup("a", &["config", "confirm"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("confirmed"), "{}", out(&o));
    // The deadline passes (this wait is what is being tested, not a sync).
    std::thread::sleep(Duration::from_secs(4));
    let o = sb.peerup("a", &["status", "--json"]);
    assert!(o.status.success(), "daemon went away: {}", out(&o));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["services"][0]["name"], "two");
    let confirmed = std::fs::read_to_string(sb.config("a")).unwrap();
    assert!(confirmed.contains("  two:"));

    // rollback restores the last-known-good (the confirmed config).
    let o = sb.peerup("a", &["config", "rollback"]);
    assert!(o.status.success(), "{}", out(&o));
    std::fs::write(sb.config("a"), old.replace("  one:", "  three:")).unwrap();
    let o = sb.peerup("a", &["config", "rollback"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(std::fs::read_to_string(sb.config("a")).unwrap(), confirmed);
    drop(daemon);
}

/// Adds `name: peer` to `node`'s `names:` (the template's `names: {}`).
fn add_name(sb: &Sandbox, node: &str, name: &str, peer: PeerId) {
    let path = sb.config(node);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\nnames: {}"), "{text}");
    std::fs::write(
        &path,
        text.replace("\nnames: {}", &format!("\nnames:\n  {name}: \"{peer}\"")),
    )
    .unwrap();
}

/// Points `node` at `relay` in place of [`PLACEHOLDER`].
fn use_relay(sb: &Sandbox, node: &str, relay: &TestRelay) {
    for args in [
        vec!["relay", "add", relay.addr.as_str()],
        vec!["relay", "remove", "-f", PLACEHOLDER],
    ] {
        let o = sb.peerup(node, &args);
        assert!(o.status.success(), "{}", out(&o));
    }
}

/// Two machines, "home" and "laptop", on one test relay, each in the
/// other's authorized_keys (added by hand, not paired): their peer IDs
/// and the relay.
fn two_machines(sb: &Sandbox) -> (PeerId, PeerId, TestRelay) {
    let home = init(sb, "home", PLACEHOLDER);
    let laptop = init(sb, "laptop", PLACEHOLDER);
    let relay = TestRelay::start(&[home, laptop]);
    for (node, other) in [("home", laptop), ("laptop", home)] {
        use_relay(sb, node, &relay);
        let o = sb.peerup(node, &["auth", "add", &other.to_string()]);
        assert!(o.status.success(), "{}", out(&o));
    }
    (home, laptop, relay)
}

/// `proxy --persist|--list|--remove` without a daemon: the forward is
/// written into `forwards:` (comments kept), listed, kept idempotent,
/// refused on a port another forward takes, removed by port; bad
/// arguments fail with one line and exit 1 (or 2 for usage).
#[test]
fn proxy_persist_list_remove_without_a_daemon() {
    let sb = Sandbox::new("forwards");
    let relay = "/ip4/127.0.0.1/tcp/7777/p2p/12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
    init(&sb, "a", relay);
    let home = peerup_core::identity::keypair_from_seed([5; 32])
        .public()
        .to_peer_id();
    add_name(&sb, "a", "home", home);
    let path = sb.config("a");
    let original = std::fs::read_to_string(&path).unwrap();
    let run = |args: &[&str]| {
        let o = sb.peerup("a", args);
        let now = std::fs::read_to_string(&path).unwrap();
        let mut kept = comments(&now).into_iter();
        for c in comments(&original) {
            assert!(kept.any(|k| k == c), "{args:?} lost {c:?}:\n{now}");
        }
        o
    };
    let ok = |args: &[&str], expect: &str| {
        let o = run(args);
        assert!(o.status.success(), "{args:?}: {}", out(&o));
        assert!(out(&o).contains(expect), "{args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let fails = |args: &[&str], code: i32, expect: &str| {
        let before = std::fs::read_to_string(&path).unwrap();
        let o = run(args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", out(&o));
        assert!(out(&o).contains(expect), "{args:?}: {}", out(&o));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before, "{args:?}");
    };

    ok(&["proxy", "--list"], "No forwards in");
    let added = ok(
        &["proxy", "home", "ssh", "2222", "--persist"],
        "Added forward home-ssh-2222: 127.0.0.1:2222 -> home service ssh",
    );
    assert!(added.contains("No daemon is running"), "{added}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(
            "forwards:\n  home-ssh-2222:\n    peer: \"home\"\n    service: \"ssh\"\n    local_address: \"127.0.0.1:2222\"\n    enabled: true\n"
        ),
        "{text}"
    );
    ok(&["config", "validate"], "");
    // The same again: nothing to change, exit 0 (scripts can repeat it).
    ok(&["proxy", "home", "ssh", "2222", "--persist"], "already in");
    // By peer ID, named, on all interfaces.
    ok(
        &[
            "proxy",
            &home.to_string(),
            "web",
            "8080",
            "--persist",
            "--name",
            "web",
            "--bind",
            "0.0.0.0",
        ],
        "Added forward web: 0.0.0.0:8080",
    );
    let listed = ok(&["proxy", "--list"], "home-ssh-2222");
    assert!(listed.contains("no daemon running"), "{listed}");
    let o = run(&["proxy", "--list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list[0]["name"], "home-ssh-2222");
    assert_eq!(list[0]["peer_id"], home.to_string());
    assert_eq!(list[0]["listening"], serde_json::Value::Null);
    assert_eq!(list[1]["local_address"], "0.0.0.0:8080");

    // Refusals: nothing written, one line naming the problem.
    fails(
        &["proxy", "home", "rdp", "8080", "--persist"],
        1,
        "127.0.0.1:8080 takes the same port as forward `web` (0.0.0.0:8080)",
    );
    fails(
        &["proxy", "home", "ssh", "2223", "--persist", "--name", "web"],
        1,
        "forward `web` is already in",
    );
    fails(
        &["proxy", "nobody", "ssh", "2224", "--persist"],
        1,
        "nobody",
    );
    fails(
        &["proxy", "home", "kad", "2224", "--persist"],
        1,
        "reserved",
    );
    fails(
        &[
            "proxy",
            "home",
            "ssh",
            "2224",
            "--persist",
            "--name",
            "Bad Name",
        ],
        1,
        "--name",
    );
    fails(&["proxy", "home", "ssh", "0", "--persist"], 1, "1-65535");
    fails(
        &["proxy", "--remove", "nope"],
        1,
        "no forward named or listening on `nope`",
    );
    fails(&["proxy", "--list", "home"], 2, "cannot be used with");
    fails(&["proxy", "home", "ssh"], 2, "required");

    ok(
        &["proxy", "--remove", "2222"],
        "Removed forward home-ssh-2222",
    );
    ok(&["proxy", "--remove", "web"], "Removed forward web");
    ok(&["proxy", "--list"], "No forwards in");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\nforwards: {}\n"), "{text}");
    assert_eq!(text, original);
}

/// The forward a daemon keeps (`proxy --persist`) survives restarts of
/// either daemon: it listens from the laptop daemon's start, reaches
/// home's echo service through the relay, fails a connection (closed, the
/// reason in the log) while home is down, works again once home is back,
/// and again after the laptop daemon restarts. A forward whose port is
/// taken is a warning, not a failed start, and `proxy --persist` says so.
#[test]
fn persistent_forward_survives_daemon_restarts() {
    let sb = Sandbox::new("persist");
    let (home, _laptop, _relay) = two_machines(&sb);
    add_name(&sb, "laptop", "home", home);
    let echo = echo_service();
    add_service(&sb, "home", "echo", echo);
    let port = free_port();
    let p = port.to_string();
    // Added before the laptop's daemon runs: it listens from its start.
    let o = sb.peerup("laptop", &["proxy", "home", "echo", &p, "--persist"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("No daemon is running"), "{}", out(&o));
    let name = format!("home-echo-{port}");

    let start = |node: &str| {
        let d = sb.spawn(node, &["daemon"]);
        d.wait_line("relay reservation accepted");
        d
    };
    let mut home_d = start("home");
    let mut laptop_d = sb.spawn("laptop", &["daemon"]);
    laptop_d.wait_line(&format!(
        "Forward:  {name} 127.0.0.1:{port} -> home service echo"
    ));
    laptop_d.wait_line("relay reservation accepted");
    assert_eq!(echo_through(port, b"one").unwrap(), b"one");

    // Home restarts: down, a connection is closed with the reason logged;
    // back, the same forward works.
    home_d.stop();
    let down = echo_through(port, b"anyone?");
    assert!(
        down.is_err() || down.as_ref().is_ok_and(Vec::is_empty),
        "{down:?}"
    );
    laptop_d.wait_line("cannot reach the remote service");
    home_d = start("home");
    assert_eq!(echo_through(port, b"two").unwrap(), b"two");

    // The laptop's daemon restarts: the forward is listened on again.
    laptop_d.stop();
    let mut laptop_d = sb.spawn("laptop", &["daemon"]);
    laptop_d.wait_line(&format!("Forward:  {name} 127.0.0.1:{port}"));
    laptop_d.wait_line("relay reservation accepted");
    assert_eq!(echo_through(port, b"three").unwrap(), b"three");

    // Listed as listening, through the running daemon.
    let o = sb.peerup("laptop", &["proxy", "--list", "--json"]);
    assert!(o.status.success(), "{}", out(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list[0]["name"], name.as_str(), "{list}");
    assert_eq!(list[0]["listening"], true, "{list}");
    assert_eq!(list[0]["connections"], 0, "{list}");

    // A hand edit changing the forward in place (its peer by ID now, the
    // same port): applied live, the port listened on again at once.
    let path = sb.config("laptop");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("peer: \"home\"", &format!("peer: \"{home}\"")),
    )
    .unwrap();
    laptop_d.wait_line(&format!("forwards changed {name}"));
    assert_eq!(echo_through(port, b"changed").unwrap(), b"changed");

    // A port another program holds: the daemon warns, keeps running, and
    // `--persist` exits 1 saying why; the other forward still works.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let o = sb.peerup(
        "laptop",
        &[
            "proxy",
            "home",
            "echo",
            &busy_port,
            "--persist",
            "--name",
            "busy",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o).contains("forward busy is NOT listening: local port"),
        "{}",
        out(&o)
    );
    laptop_d.wait_line("forward busy NOT listening");
    let o = sb.peerup("laptop", &["proxy", "--list"]);
    assert!(out(&o).contains("NOT listening: local port"), "{}", out(&o));
    assert_eq!(echo_through(port, b"four").unwrap(), b"four");
    let o = sb.peerup("laptop", &["proxy", "--remove", "busy"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("Running daemon: forward busy no longer listening"),
        "{}",
        out(&o)
    );
    // Removed live, by port.
    let o = sb.peerup("laptop", &["proxy", "--remove", &p]);
    assert!(o.status.success(), "{}", out(&o));
    laptop_d.wait_line("forward removed or disabled");
    let o = sb.peerup("laptop", &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["forwards"], serde_json::json!([]), "{status}");
    assert!(
        laptop_d.child.try_wait().unwrap().is_none(),
        "{}",
        laptop_d.log()
    );
    drop(busy);
    laptop_d.stop();
    home_d.stop();
}

/// One HTTP GET on 127.0.0.1:`port`: the whole answer.
fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .unwrap();
    let mut back = String::new();
    s.read_to_string(&mut back).unwrap();
    back
}

/// `metrics:` in the config: the daemon refuses a remote address without
/// `allow_remote`, fails to start on an address it cannot bind (naming the
/// field), and otherwise serves `/metrics` and `/healthz` at the URL it
/// prints, with its relay's reservation in them.
#[test]
fn daemon_serves_metrics_when_configured() {
    let sb = Sandbox::new("metrics");
    let home = init(&sb, "home", PLACEHOLDER);
    let relay = TestRelay::start(&[home]);
    use_relay(&sb, "home", &relay);
    let base = std::fs::read_to_string(sb.config("home")).unwrap();
    let with_metrics = |section: &str| {
        std::fs::write(sb.config("home"), format!("{base}metrics:\n{section}")).unwrap();
    };

    with_metrics("  listen_address: 0.0.0.0:9091\n");
    let o = sb.peerup("home", &["daemon"]);
    assert!(!o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("metrics.listen_address"), "{}", out(&o));
    assert!(out(&o).contains("allow_remote: true"), "{}", out(&o));

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    with_metrics(&format!("  listen_address: 127.0.0.1:{port}\n"));
    let mut daemon = sb.spawn("home", &["daemon"]);
    let status = daemon.wait();
    assert!(!status.success(), "{}", daemon.log());
    assert!(
        daemon
            .log()
            .contains(&format!("cannot serve metrics on 127.0.0.1:{port}")),
        "{}",
        daemon.log()
    );
    assert!(
        daemon.log().contains("metrics.listen_address"),
        "{}",
        daemon.log()
    );
    drop(taken);

    let port = free_port();
    with_metrics(&format!("  listen_address: 127.0.0.1:{port}\n"));
    let mut daemon = sb.spawn("home", &["daemon"]);
    let line = daemon.wait_line("Metrics:");
    assert!(
        line.contains(&format!("http://127.0.0.1:{port}/metrics")),
        "{line}"
    );
    daemon.wait_line("relay reservation accepted");
    let metrics = http_get(port, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");
    let reserved = format!(
        "peerup_relay_reserved{{relay=\"{}\"}} 1\n",
        relay.relay.peer_id()
    );
    assert!(metrics.contains(&reserved), "{metrics}");
    let health = http_get(port, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(
        health.contains(&format!("\"peer_id\":\"{home}\"")),
        "{health}"
    );
    assert!(http_get(port, "/nope").starts_with("HTTP/1.1 404"));
    daemon.stop();
}
