//! Every sample in `configs/` validates, with the library and with the
//! binaries' `config validate`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

fn private_copy(dir: &Path, name: &str, to: &str) -> PathBuf {
    let p = dir.join(to);
    std::fs::copy(configs().join(name), &p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

#[test]
fn node_sample_validates() {
    let path = configs().join("peerup.sample.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let (config, warnings) = peerup_core::config::Config::parse(&path, &text).unwrap();
    assert!(
        warnings.iter().all(|w| !w.to_string().contains("unknown")),
        "{warnings:?}"
    );
    assert_eq!(config.services.len(), 2);
    assert_eq!(config.forwards.len(), 1);
    assert!(config.names.get("laptop").is_some());

    let dir = std::env::temp_dir().join(format!("peerup-samples-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = private_copy(&dir, "peerup.sample.yaml", "config.yaml");
    private_copy(&dir, "authorized_keys.sample", "authorized_keys");
    let o = Command::new(env!("CARGO_BIN_EXE_peerup"))
        .args(["config", "validate", "--config", cfg.to_str().unwrap()])
        .env("HOME", &dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn relay_sample_validates() {
    let path = configs().join("relay-server.sample.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let (config, _) = peerup_core::config::RelayConfig::parse(&path, &text).unwrap();
    assert!(config.security.enable_connection_gating);
    assert_eq!(
        config.session_duration(),
        None,
        "gated relays default to unlimited sessions"
    );
}

#[test]
fn authorized_keys_sample_validates() {
    let text = std::fs::read_to_string(configs().join("authorized_keys.sample")).unwrap();
    let doc = peerup_core::authorized_keys::Document::parse_strict(&text).unwrap();
    assert_eq!(doc.len(), 2);
}

#[test]
fn systemd_units_are_notify_services_with_a_watchdog() {
    for unit in ["peerup.service", "peerup-relay.service"] {
        let text = std::fs::read_to_string(configs().join(unit)).unwrap();
        for line in ["Type=notify", "WatchdogSec=90", "Restart=always"] {
            assert!(
                text.lines().any(|l| l.trim() == line),
                "{unit} lacks {line}"
            );
        }
    }
    let deployed =
        std::fs::read_to_string(configs().join("../relay/deploy/peerup-relay.service")).unwrap();
    assert_eq!(
        deployed,
        std::fs::read_to_string(configs().join("peerup-relay.service")).unwrap()
    );
}

/// `peerup-proxy@.service`: the instance name `<target>-<service>-<port>`
/// becomes `peerup proxy <target> <service> <port>` (a target with dashes
/// of its own included), once systemd has expanded `%i`, `%%` and `$$` as
/// it does.
#[test]
fn proxy_unit_splits_its_instance_name() {
    let text = std::fs::read_to_string(configs().join("peerup-proxy@.service")).unwrap();
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/bin/sh -c '"))
        .and_then(|l| l.strip_suffix('\''))
        .expect("ExecStart=/bin/sh -c '...'");
    assert!(text.lines().any(|l| l == "Restart=on-failure"));
    for (instance, args) in [
        ("home-ssh-2222", "home ssh 2222"),
        ("my-nas-web-8080", "my-nas web 8080"),
    ] {
        // systemd's own expansion: specifiers, then `$$` -> `$`.
        let script = exec
            .replace("%i", instance)
            .replace("%%", "%")
            .replace("$$", "$")
            .replace("exec peerup proxy", "echo");
        let o = std::process::Command::new("/bin/sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            args,
            "{instance}"
        );
    }
}
