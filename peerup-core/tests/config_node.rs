//! `peerup.yaml` (WIRE.md §9): defaults, every field's validation with its
//! path and line, warnings, versions, duplicates, rendering and the `init`
//! template.

// In a module so that `cargo test config` selects these tests.
mod config_node {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use peerup_core::config::node::{self, Host, LocalAddress, PeerAddr, PeerRef, Service};
    use peerup_core::config::{
        Config, ConfigError, FieldPath, Warning, WarningKind, render_template,
    };
    use peerup_core::naming::Name;
    use peerup_core::relay_addr::RelayAddr;
    use peerup_core::wire::label::DnsLabel;
    use peerup_core::{Multiaddr, PeerId};

    const HOME: &str = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
    const PHONE: &str = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA";
    const FILE: &str = "peerup.yaml";

    fn parse(text: &str) -> (Config, Vec<Warning>) {
        match Config::parse(Path::new(FILE), text) {
            Ok(v) => v,
            Err(e) => panic!("unexpected error: {e}\n--- text ---\n{text}"),
        }
    }

    fn err(text: &str) -> ConfigError {
        match Config::parse(Path::new(FILE), text) {
            Ok((c, _)) => panic!("accepted: {c:?}\n--- text ---\n{text}"),
            Err(e) => e,
        }
    }

    /// Asserts the error's path, line, column and reason, and that its message
    /// starts with `peerup.yaml:<line>:<col>: <path>: `.
    #[track_caller]
    fn assert_err(text: &str, path: &str, line: usize, column: usize, reason: &str) {
        let e = err(text);
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

    fn id(s: &str) -> PeerId {
        s.parse().unwrap()
    }

    fn relay(ip: &str) -> RelayAddr {
        format!("/ip4/{ip}/tcp/7777/p2p/{HOME}").parse().unwrap()
    }

    fn label(s: &str) -> DnsLabel {
        DnsLabel::new(s).unwrap()
    }

    fn addrs(list: &[&str]) -> Vec<Multiaddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    fn kinds(warnings: &[Warning]) -> Vec<WarningKind> {
        warnings.iter().map(|w| w.kind.clone()).collect()
    }

    // ---------------------------------------------------------------------------
    // Defaults.

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.identity.key_file, "identity.key");
        assert_eq!(
            c.network.listen_addresses,
            addrs(&[
                "/ip4/0.0.0.0/tcp/0",
                "/ip4/0.0.0.0/udp/0/quic-v1",
                "/ip6/::/tcp/0",
                "/ip6/::/udp/0/quic-v1"
            ])
        );
        assert!(!c.network.force_private_reachability);
        assert!(c.network.resource_limits_enabled);
        assert!(c.relay.addresses.is_empty());
        assert_eq!(c.relay.reservation_interval, Duration::from_secs(120));
        assert_eq!(c.discovery.rendezvous, "peerup-default-network");
        assert_eq!(c.discovery.network, None);
        assert!(c.discovery.bootstrap_peers.is_empty());
        assert!(c.discovery.mdns, "mDNS is on by default");
        assert_eq!(c.security.authorized_keys_file, "authorized_keys");
        assert!(c.security.enable_connection_gating);
        assert!(c.protocols.ping_pong.enabled);
        assert_eq!(c.protocols.ping_pong.id, "/pingpong/1.0.0");
        assert!(c.services.is_empty());
        assert!(c.names.is_empty());
        assert_eq!(c.kad_protocol(), "/peerup/kad/1.0.0");
    }

    #[test]
    fn a_minimal_file_gets_every_default() {
        for text in [
            "version: 1\n",
            "identity:\n",
            "relay:\nservices:\nnames:\n",
            "{}",
            "relay: ~\nnetwork: null\n",
        ] {
            let (c, w) = parse(text);
            assert_eq!(c, Config::default(), "{text}");
            assert_eq!(kinds(&w), vec![WarningKind::NoRelayAddresses], "{text}");
        }
    }

    #[test]
    fn sections_with_null_values_keep_defaults() {
        let (c, _) = parse(
            "network:\n  listen_addresses:\nrelay:\n  addresses:\nservices:\n#  ssh:\n#    local_address: x\nnames: {}\n",
        );
        assert_eq!(c, Config::default());
    }

    // ---------------------------------------------------------------------------
    // The seed README's samples.

    /// The "Unified Config" sample of peer-up-go-README.md, verbatim except
    /// for the relay placeholder (`YOUR_VPS_IP`, `YOUR_RELAY_PEER_ID`).
    const SEED_SAMPLE: &str = r#"identity:
  key_file: "identity.key"

network:
  listen_addresses:
    - "/ip4/0.0.0.0/tcp/0"
    - "/ip4/0.0.0.0/udp/0/quic-v1"
  force_private_reachability: false  # Set true for server behind CGNAT

relay:
  addresses:
    - "/ip4/YOUR_VPS_IP/tcp/7777/p2p/YOUR_RELAY_PEER_ID"
  reservation_interval: "2m"

discovery:
  rendezvous: "peerup-default-network"
  bootstrap_peers: []

security:
  authorized_keys_file: "authorized_keys"
  enable_connection_gating: true

protocols:
  ping_pong:
    enabled: true
    id: "/pingpong/1.0.0"

# Services to expose (server only, uncomment as needed):
# services:
#   ssh:
#     enabled: true
#     local_address: "localhost:22"
#   xrdp:
#     enabled: true
#     local_address: "localhost:3389"

# Map friendly names to peer IDs:
names: {}
#  home: "12D3KooW..."
"#;

    #[test]
    fn seed_sample_parses_with_expected_values() {
        let text = SEED_SAMPLE
            .replace("YOUR_VPS_IP", "203.0.113.7")
            .replace("YOUR_RELAY_PEER_ID", HOME);
        let (c, w) = parse(&text);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.identity.key_file, "identity.key");
        assert_eq!(
            c.network.listen_addresses,
            addrs(&["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"])
        );
        assert!(!c.network.force_private_reachability);
        assert!(c.network.resource_limits_enabled);
        assert_eq!(c.relay.addresses, vec![relay("203.0.113.7")]);
        assert_eq!(c.relay.reservation_interval, Duration::from_secs(120));
        assert_eq!(c.discovery.rendezvous, "peerup-default-network");
        assert!(c.discovery.bootstrap_peers.is_empty());
        assert_eq!(
            c.bootstrap_peers(),
            vec![relay("203.0.113.7").multiaddr().clone()]
        );
        assert_eq!(c.security.authorized_keys_file, "authorized_keys");
        assert!(c.security.enable_connection_gating);
        assert!(c.protocols.ping_pong.enabled);
        assert_eq!(c.protocols.ping_pong.id, "/pingpong/1.0.0");
        assert!(c.services.is_empty());
        assert!(c.names.is_empty());
    }

    #[test]
    fn seed_sample_placeholder_is_reported_at_its_line() {
        assert_err(
            SEED_SAMPLE,
            "relay.addresses[0]",
            12,
            7,
            "is not a valid multiaddr",
        );
    }

    #[test]
    fn seed_server_snippet_parses() {
        let text = r#"
network:
  force_private_reachability: true  # Required for CGNAT (Starlink, etc.)

# Uncomment and enable services you want to expose:
services:
  ssh:
    enabled: true
    local_address: "localhost:22"
  xrdp:
    enabled: true
    local_address: "localhost:3389"
"#;
        let (c, _) = parse(text);
        assert!(c.network.force_private_reachability);
        assert_eq!(c.services.len(), 2);
        let ssh = &c.services[&label("ssh")];
        assert!(ssh.enabled);
        assert_eq!(ssh.local_address, "localhost:22".parse().unwrap());
        assert_eq!(ssh.allowed_peers, None);
        assert_eq!(c.services[&label("xrdp")].local_address.port(), 3389);
    }

    // ---------------------------------------------------------------------------
    // Each field's validation: path, line, column, reason.

    #[test]
    fn identity_key_file_errors() {
        assert_err(
            "identity:\n  key_file: \"\"\n",
            "identity.key_file",
            2,
            13,
            "must not be empty",
        );
        assert_err(
            "identity:\n  key_file: \"a\\0b\"\n",
            "identity.key_file",
            2,
            13,
            "NUL",
        );
        assert_err(
            "identity:\n  key_file: [a]\n",
            "identity.key_file",
            2,
            13,
            "expected a file path",
        );
        assert_err("identity: 5\n", "identity", 1, 11, "expected a mapping");
    }

    #[test]
    fn network_errors() {
        assert_err(
            "network:\n  listen_addresses:\n    - /ip4/0.0.0.0/tcp/0\n    - /ip4/0.0.0.0/tcpp/0\n",
            "network.listen_addresses[1]",
            4,
            7,
            "is not a valid multiaddr",
        );
        assert_err(
            "network:\n  listen_addresses: /ip4/0.0.0.0/tcp/0\n",
            "network.listen_addresses",
            2,
            21,
            "expected a list",
        );
        assert_err(
            "network:\n  force_private_reachability: yes\n",
            "network.force_private_reachability",
            2,
            31,
            "expected a boolean",
        );
        assert_err(
            "discovery:\n  mdns: off\n",
            "discovery.mdns",
            2,
            9,
            "expected a boolean",
        );
        assert_err(
            "network:\n  resource_limits_enabled:\n",
            "network.resource_limits_enabled",
            2,
            27,
            "nothing (null)",
        );
    }

    #[test]
    fn relay_errors() {
        let good = format!("/ip4/1.2.3.4/tcp/7777/p2p/{HOME}");
        assert_err(
            &format!("relay:\n  addresses:\n    - {good}\n    - /ip4/1.2.3.4/tcp/7777\n"),
            "relay.addresses[1]",
            4,
            7,
            "relay address `/ip4/1.2.3.4/tcp/7777` must end with /p2p/<relay-peer-id>",
        );
        assert_err(
            &format!("relay:\n  addresses: [\"/ip4/1.2.3.4/tcp/0/p2p/{HOME}\"]\n"),
            "relay.addresses[0]",
            2,
            15,
            "port 0",
        );
        assert_err(
            "relay:\n  reservation_interval: 0\n",
            "relay.reservation_interval",
            2,
            25,
            "must be longer than zero",
        );
        assert_err(
            "relay:\n  reservation_interval: 0s\n",
            "relay.reservation_interval",
            2,
            25,
            "must be longer than zero",
        );
        assert_err(
            "relay:\n  reservation_interval: 5\n",
            "relay.reservation_interval",
            2,
            25,
            "needs a unit",
        );
        assert_err(
            "relay:\n  reservation_interval: -2m\n",
            "relay.reservation_interval",
            2,
            25,
            "must not have a sign",
        );
        assert_err(
            "relay:\n  reservation_interval: 2d\n",
            "relay.reservation_interval",
            2,
            25,
            "unknown unit `d`",
        );
    }

    #[test]
    fn the_full_error_message() {
        let e = err("version: 1\nrelay:\n  addresses:\n    - /ip4/1.2.3.4/tcp/7777\n");
        assert_eq!(
            e.to_string(),
            "peerup.yaml:4:7: relay.addresses[0]: relay address `/ip4/1.2.3.4/tcp/7777` must end with /p2p/<relay-peer-id>"
        );
        assert_eq!(e.file(), Path::new("peerup.yaml"));
    }

    #[test]
    fn discovery_errors() {
        assert_err(
            "discovery:\n  rendezvous: \"\"\n",
            "discovery.rendezvous",
            2,
            15,
            "must not be empty",
        );
        assert_err(
            "discovery:\n  network: Family\n",
            "discovery.network",
            2,
            12,
            "network name `Family`",
        );
        assert_err(
            "discovery:\n  network: my_net\n",
            "discovery.network",
            2,
            12,
            "'_'",
        );
        assert_err(
            "discovery:\n  bootstrap_peers:\n    - /ip4/1.2.3.4/tcp/4001\n",
            "discovery.bootstrap_peers[0]",
            3,
            7,
            "must end with /p2p/<peer-id>",
        );
    }

    #[test]
    fn discovery_network_empty_means_none() {
        let (c, _) = parse("discovery:\n  network: \"\"\n");
        assert_eq!(c.discovery.network, None);
        let (c, _) = parse("discovery:\n  network:\n");
        assert_eq!(c.discovery.network, None);
        let (c, _) = parse("discovery:\n  network: family\n");
        assert_eq!(c.discovery.network, Some(label("family")));
        assert_eq!(c.kad_protocol(), "/peerup/family/kad/1.0.0");
    }

    #[test]
    fn security_errors() {
        assert_err(
            "security:\n  authorized_keys_file: \"\"\n",
            "security.authorized_keys_file",
            2,
            25,
            "must not be empty",
        );
        assert_err(
            "security:\n  enable_connection_gating: 1\n",
            "security.enable_connection_gating",
            2,
            29,
            "expected a boolean",
        );
    }

    #[test]
    fn protocol_errors() {
        assert_err(
            "protocols:\n  ping_pong:\n    id: pingpong\n",
            "protocols.ping_pong.id",
            3,
            9,
            "is not a protocol ID",
        );
        assert_err(
            "protocols:\n  ping_pong:\n    id: \"/ping pong\"\n",
            "protocols.ping_pong.id",
            3,
            9,
            "is not a protocol ID",
        );
        assert_err(
            "protocols:\n  ping_pong:\n    enabled: maybe\n",
            "protocols.ping_pong.enabled",
            3,
            14,
            "expected a boolean",
        );
    }

    #[test]
    fn service_errors() {
        assert_err(
            "services:\n  ssh:\n    local_address: localhost\n",
            "services.ssh.local_address",
            3,
            20,
            "needs a port",
        );
        assert_err(
            "services:\n  ssh:\n    local_address: localhost:0\n",
            "services.ssh.local_address",
            3,
            20,
            "invalid port `0`",
        );
        assert_err(
            "services:\n  ssh:\n    local_address: localhost:65536\n",
            "services.ssh.local_address",
            3,
            20,
            "invalid port",
        );
        assert_err(
            "services:\n  ssh:\n    local_address: \"::1:22\"\n",
            "services.ssh.local_address",
            3,
            20,
            "brackets",
        );
        assert_err(
            "services:\n  ssh:\n    local_address: \"my host:22\"\n",
            "services.ssh.local_address",
            3,
            20,
            "invalid host",
        );
        assert_err(
            "services:\n  ssh:\n    enabled: true\n",
            "services.ssh",
            2,
            3,
            "missing field `local_address`",
        );
        assert_err(
            "services:\n  ssh:\n",
            "services.ssh",
            2,
            3,
            "missing field `local_address`",
        );
        assert_err(
            "services:\n  ssh:\n    local_address: localhost:22\n    enabled: sure\n",
            "services.ssh.enabled",
            4,
            14,
            "expected a boolean",
        );
        assert_err(
            "services:\n  ssh:\n    local_address: localhost:22\n    allowed_peers:\n      - home\n      - bad name\n",
            "services.ssh.allowed_peers[1]",
            6,
            9,
            "`bad name` is neither a peer ID (12D3KooW...) nor a valid name",
        );
        assert_err("services: [ssh]\n", "services", 1, 11, "expected a mapping");
    }

    #[test]
    fn service_names_must_be_labels_and_not_reserved() {
        assert_err(
            "services:\n  kad:\n    local_address: localhost:1\n",
            "services.kad",
            2,
            3,
            "service name `kad` is reserved",
        );
        assert_err(
            "services:\n  invite:\n    local_address: localhost:1\n",
            "services.invite",
            2,
            3,
            "service name `invite` is reserved",
        );
        assert_err(
            "services:\n  SSH:\n    local_address: localhost:1\n",
            "services.SSH",
            2,
            3,
            "service name `SSH` contains 'S'",
        );
        assert_err(
            "services:\n  ssh/1.0.0:\n    local_address: localhost:1\n",
            "services.\"ssh/1.0.0\"",
            2,
            3,
            "contains '/'",
        );
    }

    #[test]
    fn name_errors() {
        assert_err(
            &format!("names:\n  \"bad name\": {HOME}\n"),
            "names.\"bad name\"",
            2,
            3,
            "name `bad name` has ' '",
        );
        assert_err(
            &format!("names:\n  {PHONE}: {HOME}\n"),
            &format!("names.{PHONE}"),
            2,
            3,
            "is itself a peer ID",
        );
        assert_err(
            "names:\n  home: notapeer\n",
            "names.home",
            2,
            9,
            "`notapeer` is not a valid peer ID",
        );
        assert_err(
            "names:\n  home:\n",
            "names.home",
            2,
            8,
            "is not a valid peer ID",
        );
    }

    #[test]
    fn allowed_peers_resolve_names_and_ids() {
        let text = format!(
            "services:\n  ssh:\n    local_address: localhost:22\n    allowed_peers: [laptop, {PHONE}]\n  web:\n    local_address: \"[::1]:8080\"\nnames:\n  laptop: {HOME}\n"
        );
        let (c, _) = parse(&text);
        let ssh = &c.services[&label("ssh")];
        assert_eq!(
            ssh.allowed_peers,
            Some(vec![
                PeerRef::Name(Name::new("laptop").unwrap()),
                PeerRef::Id(id(PHONE))
            ])
        );
        assert_eq!(
            ssh.resolve_allowed_peers(&c.names).unwrap(),
            Some(BTreeSet::from([id(HOME), id(PHONE)]))
        );
        let web = &c.services[&label("web")];
        assert_eq!(web.resolve_allowed_peers(&c.names).unwrap(), None);
        assert_eq!(
            web.local_address.host(),
            &Host::Ipv6(std::net::Ipv6Addr::LOCALHOST)
        );
        assert_eq!(c.names.get("laptop"), Some(id(HOME)));
    }

    #[test]
    fn unknown_name_in_allowed_peers_is_an_error_at_its_line() {
        let text = format!(
            "services:\n  ssh:\n    local_address: localhost:22\n    allowed_peers:\n      - home\n      - hmoe\nnames:\n  home: {HOME}\n"
        );
        let e = err(&text);
        match &e {
            ConfigError::UnknownPeerName { name, known, .. } => {
                assert_eq!(name, "hmoe");
                assert_eq!(known, &vec!["home".to_owned()]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            e.to_string(),
            "peerup.yaml:6:7: services.ssh.allowed_peers[1]: `hmoe` is neither a peer ID nor a name under `names:` (defined names: home)"
        );
        // In a flow list, the key's line.
        let e = err(
            "services:\n  ssh:\n    local_address: localhost:22\n    allowed_peers: [laptop]\n",
        );
        assert_eq!(e.location().map(|l| l.line), Some(4));
        assert!(e.to_string().contains("no names are defined"), "{e}");
    }

    #[test]
    fn resolving_a_hand_built_service_reports_unknown_names() {
        let mut s = Service::new("localhost:22".parse().unwrap());
        s.allowed_peers = Some(vec![PeerRef::Name(Name::new("ghost").unwrap())]);
        let e = s.resolve_allowed_peers(&Default::default()).unwrap_err();
        assert_eq!(e.target, "ghost");
    }

    // ---------------------------------------------------------------------------
    // Versions.

    #[test]
    fn version_one_or_absent_is_accepted() {
        assert_eq!(parse("version: 1\n").0, Config::default());
        assert_eq!(parse("identity: {}\n").0, Config::default());
    }

    #[test]
    fn newer_version_asks_to_upgrade() {
        let e = err("version: 2\n");
        assert!(
            matches!(e, ConfigError::UnsupportedVersion { found: 2, .. }),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "peerup.yaml:1:1: version: config version 2 is newer than this peerup supports (1); please upgrade peerup"
        );
        // Checked before anything else: a newer file may use fields we do not
        // know, so their errors must not hide the real reason.
        let e = err("relay:\n  addresses: [nonsense]\nversion: 7\nnew_section: {a: b}\n");
        assert!(
            matches!(e, ConfigError::UnsupportedVersion { found: 7, .. }),
            "{e:?}"
        );
        assert_eq!(e.location().map(|l| l.line), Some(3));
    }

    #[test]
    fn invalid_versions_are_errors() {
        assert_err(
            "version: 0\n",
            "version",
            1,
            1,
            "config version 0 is not valid",
        );
        assert_err(
            "version: \"1\"\n",
            "version",
            1,
            10,
            "must be a whole number",
        );
        assert_err("version: -1\n", "version", 1, 10, "must be a whole number");
        assert_err("version: 1.0\n", "version", 1, 10, "must be a whole number");
        assert_err("version: [1]\n", "version", 1, 10, "must be a whole number");
        assert!(matches!(
            err("version: 18446744073709551616\n"),
            ConfigError::Invalid { .. }
        ));
    }

    // ---------------------------------------------------------------------------
    // Duplicates: errors at the second occurrence.

    #[test]
    fn duplicate_keys_are_errors() {
        assert_err(
            "relay:\n  addresses: []\nrelay:\n  addresses: []\n",
            "relay",
            3,
            1,
            "duplicate field `relay`",
        );
        assert_err(
            "network:\n  force_private_reachability: true\n  force_private_reachability: false\n",
            "network.force_private_reachability",
            3,
            3,
            "duplicate field",
        );
        assert_err(
            "services:\n  ssh:\n    local_address: localhost:1\n  ssh:\n    local_address: localhost:2\n",
            "services.ssh",
            4,
            3,
            "duplicate key `ssh`",
        );
        assert_err(
            "services:\n  ssh:\n    local_address: localhost:1\n    local_address: localhost:2\n",
            "services.ssh.local_address",
            4,
            5,
            "duplicate field `local_address`",
        );
        assert_err(
            &format!("names:\n  home: {HOME}\n  home: {PHONE}\n"),
            "names.home",
            3,
            3,
            "duplicate key `home`",
        );
        assert_err(
            "protocols:\n  ping_pong:\n    id: /a\n    enabled: true\n    id: /b\n",
            "protocols.ping_pong.id",
            5,
            5,
            "duplicate field",
        );
    }

    // ---------------------------------------------------------------------------
    // Empty, malformed and garbage files.

    #[test]
    fn empty_files_are_a_clear_error() {
        for text in [
            "",
            "\n\n",
            "   \n",
            "# just a comment\n# another\n",
            "---\n",
            "\u{feff}",
        ] {
            let e = err(text);
            assert!(matches!(e, ConfigError::Empty { .. }), "{text:?}: {e:?}");
            assert_eq!(
                e.to_string(),
                "peerup.yaml: is empty (no settings); write the settings, or run `peerup init` to create a config"
            );
        }
    }

    #[test]
    fn tabs_are_explained() {
        let e = err("relay:\n\taddresses: []\n");
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e:?}");
        assert_eq!(e.location().map(|l| l.line), Some(2));
        assert!(e.to_string().starts_with("peerup.yaml:2:1: "), "{e}");
        assert!(
            e.to_string()
                .contains("YAML indentation must use spaces, not tabs"),
            "{e}"
        );
    }

    #[test]
    fn malformed_yaml_is_a_syntax_error_with_position() {
        let cases: &[(&str, usize)] = &[
            ("relay:\n  addresses: [a, b\n", 3),
            ("key: \"unterminated\n", 2),
            ("a:\n  b: 1\n c: 2\n", 3),
            ("a: *nowhere\n", 1),
            ("a: b: c\n", 1),
        ];
        for (text, line) in cases {
            let e = err(text);
            assert!(matches!(e, ConfigError::Syntax { .. }), "{text:?}: {e:?}");
            assert_eq!(e.location().map(|l| l.line), Some(*line), "{text:?}: {e}");
        }
        let e = err("# two documents\na: 1\n---\nb: 2\n");
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "peerup.yaml:3:1: the file holds more than one YAML document (a second `---`); a config is a single document"
        );
        let e = err("--- {a: 1}\n--- {b: 2}\n");
        assert_eq!(e.location().map(|l| l.line), Some(2), "{e}");
    }

    #[test]
    fn hostile_documents_fail_cleanly() {
        let deep = "[".repeat(100_000);
        assert!(matches!(err(&deep), ConfigError::Syntax { .. }));
        // Nested deeper than any config: refused, at its line.
        let nested = (0..300)
            .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
            .collect::<String>();
        let e = err(&nested);
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
        assert!(e.to_string().contains("nested"), "{e}");
        let nested = (0..20)
            .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
            .collect::<String>();
        // Unknown, so ignored whole: one warning, at its line.
        let (_, w) = parse(&nested);
        assert_eq!(w[0].path.to_string(), "k0");
        assert_eq!(w[0].location.map(|l| l.line), Some(1));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            bomb.push_str(&format!(
                "{}: &{} [*{}, *{}, *{}, *{}, *{}, *{}, *{}, *{}, *{}]\n",
                (b'a' + i) as char,
                (b'a' + i) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char
            ));
        }
        // 9^11 values from 400 bytes: refused on the first pass, quickly.
        let e = err(&bomb);
        assert!(e.to_string().contains("anchors and aliases"), "{e}");
        let many_unknown = (0..20_000)
            .map(|i| format!("k{i}: 1\n"))
            .collect::<String>();
        let (_, w) = parse(&many_unknown);
        let unknown = w
            .iter()
            .filter(|w| w.kind == WarningKind::UnknownKey)
            .count();
        assert_eq!(unknown, peerup_core::config::diag::MAX_UNKNOWN_KEYS);
        assert!(
            w.iter()
                .any(|w| w.kind == WarningKind::MoreUnknownKeys { count: 19_900 })
        );
    }

    #[test]
    fn garbage_documents_are_refused() {
        for text in [
            "hello",
            "- a\n- b\n",
            "42",
            "~",
            "null",
            "[1, 2]",
            "\"quoted\"",
            "\u{0}\u{1}\u{2}",
            "key",
        ] {
            let e = Config::parse(Path::new(FILE), text).unwrap_err();
            assert!(
                matches!(e, ConfigError::Invalid { .. } | ConfigError::Syntax { .. }),
                "{text:?}: {e:?}"
            );
            assert!(e.to_string().starts_with("peerup.yaml"), "{e}");
        }
        let e = err("- a\n");
        assert!(
            e.to_string().contains("expected a mapping of settings"),
            "{e}"
        );
        assert_err("? [a]\n: 1\n", "?", 1, 3, "");
    }

    // ---------------------------------------------------------------------------
    // Warnings.

    #[test]
    fn unknown_keys_are_warnings_with_path_and_line() {
        let text = format!(
            "version: 1\nnetwork:\n  listen_adresses: []\n  extra:\n    deeper: 1\nrelay:\n  addresses:\n    - /ip4/1.2.3.4/tcp/7777/p2p/{HOME}\nservices:\n  ssh:\n    local_address: localhost:22\n    allowed: [x]\nfuture_section: {{a: 1}}\n"
        );
        let (c, w) = parse(&text);
        assert_eq!(c.network, Config::default().network);
        let got: Vec<(String, usize, Option<usize>)> = w
            .iter()
            .map(|w| {
                assert_eq!(w.kind, WarningKind::UnknownKey);
                let l = w.location.unwrap();
                (w.path.to_string(), l.line, l.column)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("network.listen_adresses".to_owned(), 3, Some(3)),
                ("network.extra".to_owned(), 4, Some(3)),
                ("services.ssh.allowed".to_owned(), 12, Some(5)),
                ("future_section".to_owned(), 13, Some(1)),
            ]
        );
        assert_eq!(
            w[0].to_string(),
            "peerup.yaml:3:3: network.listen_adresses: unknown key (ignored); check its spelling and indentation"
        );
    }

    #[test]
    fn advice_warnings() {
        let text = format!(
            "identity:\n  key_file: ~/.peerup/identity.key\nnetwork:\n  listen_addresses: []\nsecurity:\n  enable_connection_gating: false\nservices:\n  ssh:\n    enabled: false\n    local_address: localhost:22\n  web:\n    local_address: localhost:80\n    allowed_peers: []\nnames:\n  home: {HOME}\n"
        );
        let (_, w) = parse(&text);
        assert_eq!(
            kinds(&w),
            vec![
                WarningKind::TildeNotExpanded {
                    value: "~/.peerup/identity.key".to_owned()
                },
                WarningKind::NoListenAddresses,
                WarningKind::NoRelayAddresses,
                WarningKind::ConnectionGatingDisabled,
                WarningKind::ServiceDisabled {
                    service: "ssh".to_owned()
                },
                WarningKind::NobodyAllowed {
                    service: "web".to_owned()
                },
            ]
        );
        let lines: Vec<Option<usize>> = w.iter().map(|w| w.location.map(|l| l.line)).collect();
        assert_eq!(
            lines,
            vec![Some(2), Some(4), None, Some(6), Some(9), Some(13)]
        );
        assert_eq!(
            w[2].to_string(),
            "peerup.yaml: relay.addresses: no relay addresses configured: peers behind NAT cannot reach this node; add one with `peerup relay add`"
        );
    }

    #[test]
    fn a_complete_file_has_no_warnings() {
        let (_, w) = parse(&format!(
            "relay:\n  addresses: [/ip4/1.2.3.4/tcp/7777/p2p/{HOME}]\n"
        ));
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn listen_addresses_null_is_default_and_empty_list_is_empty() {
        let (c, _) = parse("network:\n  listen_addresses: ~\n");
        assert_eq!(
            c.network.listen_addresses,
            Config::default().network.listen_addresses
        );
        let (c, w) = parse("network:\n  listen_addresses: []\n");
        assert!(c.network.listen_addresses.is_empty());
        assert!(kinds(&w).contains(&WarningKind::NoListenAddresses));
    }

    // ---------------------------------------------------------------------------
    // Paths and effective values.

    #[test]
    fn file_paths_resolve_against_the_config_directory() {
        let mut c = Config::default();
        let cfg = Path::new("/home/ada/.config/peerup/config.yaml");
        assert_eq!(
            c.key_file_path(cfg),
            PathBuf::from("/home/ada/.config/peerup/identity.key")
        );
        assert_eq!(
            c.authorized_keys_path(cfg),
            PathBuf::from("/home/ada/.config/peerup/authorized_keys")
        );
        c.identity.key_file = "/var/lib/peerup/id.key".to_owned();
        c.security.authorized_keys_file = "../shared/authorized_keys".to_owned();
        assert_eq!(
            c.key_file_path(cfg),
            PathBuf::from("/var/lib/peerup/id.key")
        );
        assert_eq!(
            c.authorized_keys_path(cfg),
            PathBuf::from("/home/ada/.config/peerup/../shared/authorized_keys")
        );
        c.identity.key_file = "~/id.key".to_owned();
        assert_eq!(
            c.key_file_path(cfg),
            PathBuf::from("/home/ada/.config/peerup/~/id.key")
        );
    }

    #[test]
    fn bootstrap_peers_default_to_the_relays() {
        let mut c = Config::default();
        assert!(c.bootstrap_peers().is_empty());
        c.relay.addresses = vec![relay("1.2.3.4"), relay("5.6.7.8")];
        assert_eq!(
            c.bootstrap_peers(),
            vec![
                relay("1.2.3.4").multiaddr().clone(),
                relay("5.6.7.8").multiaddr().clone()
            ]
        );
        let boot: PeerAddr = format!("/dns4/boot.example/tcp/4001/p2p/{PHONE}")
            .parse()
            .unwrap();
        c.discovery.bootstrap_peers = vec![boot.clone()];
        assert_eq!(c.bootstrap_peers(), vec![boot.multiaddr().clone()]);
    }

    // ---------------------------------------------------------------------------
    // Rendering and the template.

    fn full_config() -> Config {
        let mut c = Config::default();
        c.identity.key_file = "keys/my \"key\".key".to_owned();
        c.network.listen_addresses = addrs(&["/ip4/0.0.0.0/tcp/4001", "/ip6/::/udp/4001/quic-v1"]);
        c.network.force_private_reachability = true;
        c.network.resource_limits_enabled = false;
        c.relay.addresses = vec![
            relay("203.0.113.7"),
            format!("/dns4/relay.example.com/udp/7777/quic-v1/p2p/{PHONE}")
                .parse()
                .unwrap(),
        ];
        c.relay.reservation_interval = Duration::from_millis(90_500);
        c.discovery.rendezvous = "yes".to_owned();
        c.discovery.network = Some(label("family"));
        c.discovery.bootstrap_peers = vec![
            format!("/ip4/9.9.9.9/tcp/4001/p2p/{PHONE}")
                .parse()
                .unwrap(),
        ];
        c.discovery.mdns = false;
        c.security.authorized_keys_file = "/etc/peerup/authorized_keys".to_owned();
        c.security.enable_connection_gating = false;
        c.protocols.ping_pong.enabled = false;
        c.protocols.ping_pong.id = "/my-ping/2.0.0".to_owned();
        let mut ssh = Service::new("localhost:22".parse().unwrap());
        ssh.allowed_peers = Some(vec![
            PeerRef::Name(Name::new("true").unwrap()),
            PeerRef::Id(id(PHONE)),
        ]);
        let mut web = Service::new(
            LocalAddress::new(Host::Ipv6(std::net::Ipv6Addr::LOCALHOST), 8080).unwrap(),
        );
        web.enabled = false;
        web.allowed_peers = Some(vec![]);
        c.services = BTreeMap::from([(label("ssh"), ssh), (label("123"), web)]);
        let mut off = peerup_core::config::Forward::new(
            PeerRef::Id(id(PHONE)),
            label("web"),
            "[::1]:8080".parse().unwrap(),
        );
        off.enabled = false;
        c.forwards = BTreeMap::from([
            (
                label("home-ssh"),
                peerup_core::config::Forward::new(
                    PeerRef::Name(Name::new("true").unwrap()),
                    label("ssh"),
                    "127.0.0.1:2222".parse().unwrap(),
                ),
            ),
            (label("9"), off),
        ]);
        c.names = [
            (Name::new("true").unwrap(), id(HOME)),
            (Name::new("nas.garage").unwrap(), id(PHONE)),
        ]
        .into_iter()
        .collect();
        c
    }

    #[test]
    fn render_parses_back_to_the_same_config() {
        for c in [Config::default(), full_config()] {
            let text = c.render();
            assert_eq!(parse(&text).0, c, "{text}");
            let commented = c.render_commented();
            assert_eq!(parse(&commented).0, c, "{commented}");
        }
    }

    #[test]
    fn render_of_the_defaults() {
        assert_eq!(
            Config::default().render(),
            r#"version: 1

identity:
  key_file: "identity.key"

network:
  listen_addresses:
    - "/ip4/0.0.0.0/tcp/0"
    - "/ip4/0.0.0.0/udp/0/quic-v1"
    - "/ip6/::/tcp/0"
    - "/ip6/::/udp/0/quic-v1"
  force_private_reachability: false
  resource_limits_enabled: true
  max_pending_connections: 64
  max_pending_connections_per_ip: 8
  max_inbound_connections: 256
  max_connections_per_peer: 8
  handshake_timeout: "5s"

relay:
  addresses: []
  reservation_interval: "2m"

discovery:
  rendezvous: "peerup-default-network"
  bootstrap_peers: []
  mdns: true

security:
  authorized_keys_file: "authorized_keys"
  enable_connection_gating: true

protocols:
  ping_pong:
    enabled: true
    id: "/pingpong/1.0.0"

services: {}

forwards: {}

names: {}
"#
        );
    }

    #[test]
    fn template_is_commented_and_parses_back() {
        let text = render_template("identity.key", &[relay("203.0.113.7")], None);
        assert!(
        text.contains(
            "# services:\n#   ssh:\n#     enabled: true\n#     local_address: \"localhost:22\"\n"
        ),
        "{text}"
    );
        assert!(text.contains("version: 1\n"));
        assert!(
            text.lines()
                .filter(|l| l.trim_start().starts_with('#'))
                .count()
                >= 15,
            "{text}"
        );
        let (c, w) = parse(&text);
        assert!(w.is_empty(), "{w:?}");
        let mut expected = Config::default();
        expected.relay.addresses = vec![relay("203.0.113.7")];
        assert_eq!(c, expected);
    }

    #[test]
    fn template_without_relays_shows_an_example() {
        let text = render_template("node.key", &[], None);
        assert!(text.contains("# addresses:\n  #   - \"/ip4/YOUR_VPS_IP/tcp/7777/p2p/YOUR_RELAY_PEER_ID\"\n  addresses: []\n"), "{text}");
        let (c, w) = parse(&text);
        assert_eq!(c.identity.key_file, "node.key");
        assert_eq!(kinds(&w), vec![WarningKind::NoRelayAddresses]);
    }

    #[test]
    fn template_with_services() {
        let services =
            BTreeMap::from([(label("ssh"), Service::new("localhost:22".parse().unwrap()))]);
        let text = render_template("identity.key", &[relay("203.0.113.7")], Some(&services));
        assert!(!text.contains("# services:"), "{text}");
        let (c, _) = parse(&text);
        assert_eq!(c.services, services);
    }

    #[test]
    fn node_constants_match_defaults() {
        assert_eq!(node::DEFAULT_KEY_FILE, Config::default().identity.key_file);
        assert_eq!(node::DEFAULT_RESERVATION_INTERVAL, Duration::from_secs(120));
        assert_eq!(FieldPath::keys(&["a", "b"]).index(2).to_string(), "a.b[2]");
    }

    /// 2,000 unknown keys under an anchor, aliased 2,000 times: 46 KB of
    /// text, 4 million values once expanded (17 s and 1.4 GB before the
    /// expansion was bounded). Refused on its first pass, naming the cause.
    #[test]
    fn alias_expansion_is_refused() {
        let mut text = String::from("version: 1\nx: &a\n");
        for i in 0..2000 {
            text.push_str(&format!("  k{i}: 1\n"));
        }
        text.push_str("y:\n");
        for i in 0..2000 {
            text.push_str(&format!("  - *a # {i}\n"));
        }
        let e = err(&text);
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
        assert!(e.to_string().contains("anchors and aliases"), "{e}");
        // An alias or two that expand to little are still accepted.
        let (_, w) = parse("network: &n\n  force_private_reachability: true\nother: *n\n");
        assert_eq!(
            kinds(&w),
            vec![WarningKind::UnknownKey, WarningKind::NoRelayAddresses]
        );
    }

    #[test]
    fn unknown_keys_are_listed_up_to_a_bound() {
        let mut text = String::from("version: 1\n");
        for i in 0..150 {
            text.push_str(&format!("k{i}: 1\n"));
        }
        let (_, w) = parse(&text);
        let unknown = w
            .iter()
            .filter(|w| w.kind == WarningKind::UnknownKey)
            .count();
        assert_eq!(unknown, peerup_core::config::diag::MAX_UNKNOWN_KEYS);
        assert!(
            w.iter()
                .any(|w| w.kind == WarningKind::MoreUnknownKeys { count: 50 })
        );
    }

    #[test]
    fn limits_are_read_and_validated() {
        let (c, w) = parse(
            "network:\n  max_pending_connections: 10\n  max_pending_connections_per_ip: 2\n  max_inbound_connections: 20\n  max_connections_per_peer: 3\n  handshake_timeout: 2s\n  resource_limits_enabled: false\n",
        );
        assert_eq!(kinds(&w), vec![WarningKind::NoRelayAddresses]);
        let n = &c.network;
        assert_eq!(
            (
                n.max_pending_connections,
                n.max_pending_connections_per_ip,
                n.max_inbound_connections,
                n.max_connections_per_peer,
                n.handshake_timeout,
                n.resource_limits_enabled
            ),
            (10, 2, 20, 3, Duration::from_secs(2), false)
        );
        assert_err(
            "network:\n  max_inbound_connections: 0\n",
            "network.max_inbound_connections",
            2,
            28,
            "at least 1",
        );
        assert_err(
            "network:\n  handshake_timeout: 0s\n",
            "network.handshake_timeout",
            2,
            22,
            "longer than zero",
        );
    }
}
