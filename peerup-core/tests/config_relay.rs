//! `relay-server.yaml` (WIRE.md §11): defaults, validation with path and
//! line, effective session limits, warnings and rendering.

// In a module so that `cargo test config` selects these tests.
mod config_relay {
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use peerup_core::Multiaddr;
    use peerup_core::config::relay::{
        self, OPEN_RELAY_SESSION_DATA_LIMIT, OPEN_RELAY_SESSION_DURATION,
    };
    use peerup_core::config::{ConfigError, RelayConfig, Warning, WarningKind};
    use peerup_core::wire::label::DnsLabel;

    const FILE: &str = "relay-server.yaml";

    fn parse(text: &str) -> (RelayConfig, Vec<Warning>) {
        match RelayConfig::parse(Path::new(FILE), text) {
            Ok(v) => v,
            Err(e) => panic!("unexpected error: {e}\n--- text ---\n{text}"),
        }
    }

    #[track_caller]
    fn assert_err(text: &str, path: &str, line: usize, column: usize, reason: &str) {
        let e = match RelayConfig::parse(Path::new(FILE), text) {
            Ok((c, _)) => panic!("accepted: {c:?}"),
            Err(e) => e,
        };
        let msg = e.to_string();
        assert_eq!(
            e.path().map(|p| p.to_string()).as_deref(),
            Some(path),
            "{msg}"
        );
        let loc = e.location().unwrap_or_else(|| panic!("no location: {msg}"));
        assert_eq!((loc.line, loc.column), (line, Some(column)), "{msg}");
        assert!(
            msg.starts_with(&format!("{FILE}:{line}:{column}: {path}: ")),
            "{msg}"
        );
        assert!(msg.contains(reason), "expected {reason:?} in: {msg}");
    }

    fn kinds(warnings: &[Warning]) -> Vec<WarningKind> {
        warnings.iter().map(|w| w.kind.clone()).collect()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = RelayConfig::default();
        assert_eq!(c.identity.key_file, "relay_node.key");
        let listen: Vec<Multiaddr> = [
            "/ip4/0.0.0.0/tcp/7777",
            "/ip6/::/tcp/7777",
            "/ip4/0.0.0.0/udp/7777/quic-v1",
            "/ip6/::/udp/7777/quic-v1",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        assert_eq!(c.network.listen_addresses, listen);
        assert_eq!(c.discovery.network, None);
        assert_eq!(c.security.authorized_keys_file, "relay_authorized_keys");
        assert!(c.security.enable_connection_gating);
        let r = &c.resources;
        assert_eq!(r.max_reservations, 128);
        assert_eq!(r.max_circuits, 16);
        assert_eq!(r.buffer_size, 2048);
        assert_eq!(r.max_reservations_per_ip, 8);
        assert_eq!(r.max_reservations_per_asn, 32);
        assert_eq!(r.reservation_ttl, Duration::from_secs(3600));
        assert_eq!(r.session_duration, None);
        assert_eq!(r.session_data_limit, None);
        assert!(c.health.enabled);
        assert_eq!(
            c.health.listen_address,
            "127.0.0.1:9090".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(relay::DEFAULT_HEALTH_ADDRESS, c.health.listen_address);
        assert_eq!(c.kad_protocol(), "/peerup/kad/1.0.0");
    }

    #[test]
    fn a_minimal_file_gets_every_default() {
        for text in ["version: 1\n", "resources:\nhealth:\n", "{}"] {
            let (c, w) = parse(text);
            assert_eq!(c, RelayConfig::default(), "{text}");
            assert!(w.is_empty(), "{w:?}");
        }
    }

    #[test]
    fn a_full_file() {
        let text = "\
version: 1
identity:
  key_file: /var/lib/relay/node.key
network:
  listen_addresses:
    - /ip4/0.0.0.0/tcp/9000
discovery:
  network: family
security:
  authorized_keys_file: keys
  enable_connection_gating: true
resources:
  max_reservations: 64
  max_circuits: 4
  buffer_size: 4096
  max_reservations_per_ip: 2
  max_reservations_per_asn: 10
  reservation_ttl: 30m
  session_duration: 2h
  session_data_limit: 1GB
health:
  enabled: false
  listen_address: \"[::1]:9191\"
";
        let (c, w) = parse(text);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            c.network.listen_addresses,
            vec!["/ip4/0.0.0.0/tcp/9000".parse::<Multiaddr>().unwrap()]
        );
        assert_eq!(c.discovery.network, Some(DnsLabel::new("family").unwrap()));
        assert_eq!(c.kad_protocol(), "/peerup/family/kad/1.0.0");
        assert_eq!(c.resources.max_reservations, 64);
        assert_eq!(c.resources.max_circuits, 4);
        assert_eq!(c.resources.buffer_size, 4096);
        assert_eq!(c.resources.max_reservations_per_ip, 2);
        assert_eq!(c.resources.max_reservations_per_asn, 10);
        assert_eq!(c.resources.reservation_ttl, Duration::from_secs(1800));
        assert_eq!(c.session_duration(), Some(Duration::from_secs(7200)));
        assert_eq!(c.session_data_limit(), Some(1 << 30));
        assert!(!c.health.enabled);
        assert_eq!(
            c.health.listen_address,
            "[::1]:9191".parse::<SocketAddr>().unwrap()
        );
        let cfg = Path::new("/etc/relay/relay-server.yaml");
        assert_eq!(
            c.key_file_path(cfg),
            PathBuf::from("/var/lib/relay/node.key")
        );
        assert_eq!(
            c.authorized_keys_path(cfg),
            PathBuf::from("/etc/relay/keys")
        );
    }

    #[test]
    fn session_limits_in_effect() {
        // (gating, session_duration, session_data_limit) -> effective values.
        let unset_gated = parse("{}\n").0;
        assert_eq!(unset_gated.session_duration(), None);
        assert_eq!(unset_gated.session_data_limit(), None);

        let unset_open = parse("security:\n  enable_connection_gating: false\n").0;
        assert_eq!(
            unset_open.session_duration(),
            Some(OPEN_RELAY_SESSION_DURATION)
        );
        assert_eq!(
            unset_open.session_duration(),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            unset_open.session_data_limit(),
            Some(OPEN_RELAY_SESSION_DATA_LIMIT)
        );
        assert_eq!(unset_open.session_data_limit(), Some(64 * 1024 * 1024));

        let zero_open = parse("security:\n  enable_connection_gating: false\nresources:\n  session_duration: 0\n  session_data_limit: 0\n").0;
        assert_eq!(zero_open.resources.session_duration, Some(Duration::ZERO));
        assert_eq!(zero_open.resources.session_data_limit, Some(0));
        assert_eq!(zero_open.session_duration(), None);
        assert_eq!(zero_open.session_data_limit(), None);

        let set_gated =
            parse("resources:\n  session_duration: 1h30m\n  session_data_limit: 64MB\n").0;
        assert_eq!(
            set_gated.session_duration(),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(set_gated.session_data_limit(), Some(64 << 20));

        let int_size = parse("resources:\n  session_data_limit: 1048576\n").0;
        assert_eq!(int_size.session_data_limit(), Some(1 << 20));

        let nulls = parse("resources:\n  session_duration: ~\n  session_data_limit:\n").0;
        assert_eq!(nulls.resources.session_duration, None);
        assert_eq!(nulls.resources.session_data_limit, None);
    }

    #[test]
    fn resource_errors() {
        for field in [
            "max_reservations",
            "max_circuits",
            "buffer_size",
            "max_reservations_per_ip",
            "max_reservations_per_asn",
        ] {
            let col = field.len() + 5;
            let path = format!("resources.{field}");
            assert_err(
                &format!("resources:\n  {field}: 0\n"),
                &path,
                2,
                col,
                "must be at least 1",
            );
            assert_err(
                &format!("resources:\n  {field}: -3\n"),
                &path,
                2,
                col,
                "is not a whole number",
            );
            assert_err(
                &format!("resources:\n  {field}: 4294967296\n"),
                &path,
                2,
                col,
                "is not a whole number",
            );
            assert_err(
                &format!("resources:\n  {field}: lots\n"),
                &path,
                2,
                col,
                "is not a whole number",
            );
        }
        assert_err(
            "resources:\n  reservation_ttl: 0\n",
            "resources.reservation_ttl",
            2,
            20,
            "must be longer than zero",
        );
        assert_err(
            "resources:\n  reservation_ttl: 1\n",
            "resources.reservation_ttl",
            2,
            20,
            "needs a unit",
        );
        assert_err(
            "resources:\n  session_duration: 10\n",
            "resources.session_duration",
            2,
            21,
            "needs a unit",
        );
        assert_err(
            "resources:\n  session_duration: forever\n",
            "resources.session_duration",
            2,
            21,
            "is not a duration",
        );
        assert_err(
            "resources:\n  session_data_limit: 64XB\n",
            "resources.session_data_limit",
            2,
            23,
            "unknown unit `XB`",
        );
        assert_err(
            "resources:\n  session_data_limit: 1.5GB\n",
            "resources.session_data_limit",
            2,
            23,
            "whole number",
        );
        assert_err(
            "resources:\n  session_data_limit: 99999999999TB\n",
            "resources.session_data_limit",
            2,
            23,
            "too large",
        );
    }

    #[test]
    fn other_field_errors() {
        assert_err(
            "identity:\n  key_file: \"\"\n",
            "identity.key_file",
            2,
            13,
            "must not be empty",
        );
        assert_err(
            "network:\n  listen_addresses: [/ip4/x/tcp/1]\n",
            "network.listen_addresses[0]",
            2,
            22,
            "not a valid multiaddr",
        );
        assert_err(
            "discovery:\n  network: \"-x\"\n",
            "discovery.network",
            2,
            12,
            "network name",
        );
        assert_err(
            "security:\n  authorized_keys_file: \"\"\n",
            "security.authorized_keys_file",
            2,
            25,
            "must not be empty",
        );
        assert_err(
            "security:\n  enable_connection_gating: off\n",
            "security.enable_connection_gating",
            2,
            29,
            "expected a boolean",
        );
        assert_err(
            "health:\n  listen_address: localhost:9090\n",
            "health.listen_address",
            2,
            19,
            "is not an IP address and port",
        );
        assert_err(
            "health:\n  listen_address: 127.0.0.1\n",
            "health.listen_address",
            2,
            19,
            "is not an IP address and port",
        );
        assert_err(
            "health:\n  enabled: 2\n",
            "health.enabled",
            2,
            12,
            "expected a boolean",
        );
        assert_err(
            "resources:\n  max_circuits: 1\n  max_circuits: 2\n",
            "resources.max_circuits",
            3,
            3,
            "duplicate field",
        );
        assert_err(
            "version: 3\n",
            "version",
            1,
            1,
            "config version 3 is newer than this peerup supports (1); please upgrade peerup",
        );
    }

    #[test]
    fn empty_and_malformed() {
        assert!(matches!(
            RelayConfig::parse(Path::new(FILE), ""),
            Err(ConfigError::Empty { .. })
        ));
        let e = RelayConfig::parse(Path::new(FILE), "resources:\n\tmax_circuits: 1\n").unwrap_err();
        assert!(e.to_string().starts_with("relay-server.yaml:2:1: "), "{e}");
    }

    #[test]
    fn warnings() {
        let (_, w) = parse("resources:\n  max_circuit: 4\nhealth:\n  listen_adress: 0.0.0.0:1\n");
        let got: Vec<(String, usize)> = w
            .iter()
            .map(|w| (w.path.to_string(), w.location.unwrap().line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("resources.max_circuit".to_owned(), 2),
                ("health.listen_adress".to_owned(), 4)
            ]
        );
        assert!(w.iter().all(|w| w.kind == WarningKind::UnknownKey));

        let (_, w) = parse(
            "security:\n  enable_connection_gating: false\nhealth:\n  listen_address: 0.0.0.0:9090\n",
        );
        assert_eq!(
            kinds(&w),
            vec![
                WarningKind::RelayOpenToAll,
                WarningKind::HealthEndpointExposed {
                    address: "0.0.0.0:9090".to_owned()
                }
            ]
        );
        assert_eq!(w[0].location.map(|l| l.line), Some(2));
        assert_eq!(w[1].location.map(|l| l.line), Some(4));

        let (_, w) = parse(
            "security:\n  enable_connection_gating: false\nresources:\n  session_duration: 0\n",
        );
        assert_eq!(
            kinds(&w),
            vec![
                WarningKind::RelayOpenToAll,
                WarningKind::UnlimitedSessionsWithoutGating
            ]
        );

        let (_, w) = parse("health:\n  enabled: false\n  listen_address: 0.0.0.0:9090\n");
        assert!(w.is_empty(), "a disabled endpoint exposes nothing: {w:?}");
    }

    #[test]
    fn render_parses_back() {
        let mut c = RelayConfig::default();
        assert_eq!(parse(&c.render()).0, c);
        assert_eq!(parse(&c.render_commented()).0, c);
        c.identity.key_file = "k\u{e9}y #1.key".to_owned();
        c.network.listen_addresses = vec![];
        c.discovery.network = Some(DnsLabel::new("lab").unwrap());
        c.security.enable_connection_gating = false;
        c.resources.max_circuits = u32::MAX;
        c.resources.reservation_ttl = Duration::from_nanos(1);
        c.resources.session_duration = Some(Duration::ZERO);
        c.resources.session_data_limit = Some(1000);
        c.health.listen_address = "[2001:db8::1]:80".parse().unwrap();
        let text = c.render();
        assert_eq!(parse(&text).0, c, "{text}");
        assert!(
            text.contains("session_duration: \"0s\"\n  session_data_limit: \"1000B\"\n"),
            "{text}"
        );
        assert_eq!(parse(&c.render_commented()).0, c);
    }

    #[test]
    fn websocket_tls_goes_with_a_tls_listen_address() {
        let text = "network:\n  listen_addresses:\n    - /ip4/0.0.0.0/tcp/7777\n    - /ip4/0.0.0.0/tcp/443/tls/ws\n  websocket_tls:\n    certificate_file: fullchain.pem\n    key_file: privkey.pem\n";
        let (c, _) = parse(text);
        let (cert, key) = c
            .websocket_tls_paths(Path::new("/etc/peerup-relay/relay-server.yaml"))
            .unwrap();
        assert_eq!(cert, PathBuf::from("/etc/peerup-relay/fullchain.pem"));
        assert_eq!(key, PathBuf::from("/etc/peerup-relay/privkey.pem"));
        assert!(relay::is_websocket_tls(&c.network.listen_addresses[1]));
        // Renders and parses back.
        assert_eq!(parse(&c.render()).0, c);
        // A wss address with no certificate, and a certificate with no
        // wss address, are refused at their lines.
        assert_err(
            "network:\n  listen_addresses:\n    - /ip4/0.0.0.0/tcp/7777\n    - /ip4/0.0.0.0/tcp/443/wss\n",
            "network.listen_addresses[1]",
            4,
            5,
            "needs a certificate",
        );
        assert_err(
            "network:\n  listen_addresses:\n    - /ip4/0.0.0.0/tcp/443/ws\n  websocket_tls:\n    certificate_file: a.pem\n    key_file: b.pem\n",
            "network.websocket_tls",
            4,
            3,
            "no /tls/ws listen address",
        );
        // Both files are required.
        assert!(
            RelayConfig::parse(
                Path::new(FILE),
                "network:\n  listen_addresses: [/ip4/0.0.0.0/tcp/443/tls/ws]\n  websocket_tls:\n    certificate_file: a.pem\n"
            )
            .is_err()
        );
    }
}
