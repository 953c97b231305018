//! Properties of the config formats: render -> parse is the identity over
//! generated configs, and no input makes a parser or the locator panic.

// In a module so that `cargo test config` selects these tests.
mod config_props {
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::path::Path;
    use std::time::Duration;

    use peerup_core::config::node::{Host, LocalAddress, PeerAddr, PeerRef, Service};
    use peerup_core::config::units::{self, MAX_DURATION};
    use peerup_core::config::{Config, FieldPath, RelayConfig, diag};
    use peerup_core::naming::{Name, Names};
    use peerup_core::relay_addr::RelayAddr;
    use peerup_core::wire::label::DnsLabel;
    use peerup_core::{Multiaddr, PeerId};
    use proptest::prelude::*;
    use proptest::sample::subsequence;
    use proptest::test_runner::FileFailurePersistence;

    const IDS: [&str; 2] = [
        "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL",
        "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA",
    ];

    fn peer() -> impl Strategy<Value = PeerId> {
        prop::sample::select(&IDS[..]).prop_map(|s| s.parse().unwrap())
    }

    /// Any text a path field accepts: non-empty, no NUL.
    fn path_text() -> impl Strategy<Value = String> {
        "[^\\x00]{1,24}"
    }

    fn duration(min_nanos: u64) -> impl Strategy<Value = Duration> {
        let max = u64::try_from(MAX_DURATION.as_nanos()).unwrap();
        prop_oneof![
            (min_nanos..=max).prop_map(Duration::from_nanos),
            (min_nanos.max(1)..100_000u64).prop_map(Duration::from_secs),
            (min_nanos..100_000u64).prop_map(Duration::from_millis),
        ]
    }

    fn listen_addresses(port: u16) -> impl Strategy<Value = Vec<Multiaddr>> {
        let pool: Vec<Multiaddr> = [
            format!("/ip4/0.0.0.0/tcp/{port}"),
            format!("/ip4/0.0.0.0/udp/{port}/quic-v1"),
            format!("/ip6/::/tcp/{port}"),
            "/ip4/127.0.0.1/tcp/4001".to_owned(),
            "/dns4/example.com/tcp/443/wss".to_owned(),
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        subsequence(pool, 0..=5)
    }

    fn relay_addrs() -> impl Strategy<Value = Vec<RelayAddr>> {
        let pool: Vec<RelayAddr> = [
            format!("/ip4/203.0.113.7/tcp/7777/p2p/{}", IDS[0]),
            format!("/ip6/2001:db8::1/udp/7777/quic-v1/p2p/{}", IDS[1]),
            format!("/dns4/relay.example.com/tcp/443/p2p/{}", IDS[1]),
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        subsequence(pool, 0..=3).prop_shuffle()
    }

    fn peer_addrs() -> impl Strategy<Value = Vec<PeerAddr>> {
        let pool: Vec<PeerAddr> = [
            format!("/ip4/9.9.9.9/tcp/4001/p2p/{}", IDS[0]),
            format!("/dns/boot.example/udp/4001/quic-v1/p2p/{}", IDS[1]),
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        subsequence(pool, 0..=2)
    }

    fn label() -> impl Strategy<Value = DnsLabel> {
        "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"
            .prop_filter("reserved", |s| s != "kad" && s != "invite")
            .prop_map(|s| DnsLabel::new(&s).unwrap())
    }

    fn name() -> impl Strategy<Value = Name> {
        // Some short base58 texts (`1pao`) decode as identity-multihash peer
        // IDs, which a name may not be.
        "[A-Za-z0-9][A-Za-z0-9._-]{0,10}".prop_filter_map("is a peer ID", |s| Name::new(&s).ok())
    }

    fn local_address() -> impl Strategy<Value = LocalAddress> {
        let host = prop_oneof![
            Just(Host::Name("localhost".to_owned())),
            "[a-z]([a-z0-9-]{0,6}[a-z0-9])?(\\.[a-zA-Z]{1,4})?".prop_map(Host::Name),
            any::<u32>().prop_map(|n| Host::Ipv4(Ipv4Addr::from(n))),
            any::<u128>().prop_map(|n| Host::Ipv6(Ipv6Addr::from(n))),
        ];
        (host, 1..=u16::MAX).prop_map(|(h, p)| LocalAddress::new(h, p).unwrap())
    }

    fn service(names: Vec<Name>) -> impl Strategy<Value = Service> {
        let entry = if names.is_empty() {
            peer().prop_map(PeerRef::Id).boxed()
        } else {
            prop_oneof![
                peer().prop_map(PeerRef::Id),
                prop::sample::select(names).prop_map(PeerRef::Name)
            ]
            .boxed()
        };
        (
            local_address(),
            any::<bool>(),
            prop::option::of(prop::collection::vec(entry, 0..4)),
        )
            .prop_map(|(addr, enabled, allowed)| {
                let mut s = Service::new(addr);
                s.enabled = enabled;
                s.allowed_peers = allowed;
                s
            })
    }

    fn node_config() -> impl Strategy<Value = Config> {
        prop::collection::btree_map(name(), peer(), 0..4)
            .prop_flat_map(|names| {
                let keys: Vec<Name> = names.keys().cloned().collect();
                let sections = (
                    (
                        path_text(),
                        listen_addresses(0),
                        any::<bool>(),
                        any::<bool>(),
                    ),
                    (relay_addrs(), duration(1)),
                    ("[^\\x00]{1,20}", prop::option::of(label()), peer_addrs()),
                    (path_text(), any::<bool>()),
                    (any::<bool>(), "/[!-~]{1,20}"),
                    prop::collection::btree_map(label(), service(keys), 0..4),
                );
                (Just(names), sections)
            })
            .prop_map(|(names, (net, relay, disc, sec, ping, services))| {
                let mut c = Config::default();
                c.identity.key_file = net.0;
                c.network.listen_addresses = net.1;
                c.network.force_private_reachability = net.2;
                c.network.resource_limits_enabled = net.3;
                c.relay.addresses = relay.0;
                c.relay.reservation_interval = relay.1;
                c.discovery.rendezvous = disc.0;
                c.discovery.network = disc.1;
                c.discovery.bootstrap_peers = disc.2;
                c.security.authorized_keys_file = sec.0;
                c.security.enable_connection_gating = sec.1;
                c.protocols.ping_pong.enabled = ping.0;
                c.protocols.ping_pong.id = ping.1;
                c.services = services;
                c.names = names.into_iter().collect::<Names>();
                c
            })
    }

    fn relay_config() -> impl Strategy<Value = RelayConfig> {
        (
            (
                path_text(),
                listen_addresses(7777),
                prop::option::of(label()),
                path_text(),
                any::<bool>(),
            ),
            (
                1..=u32::MAX,
                1..=u32::MAX,
                1..=u32::MAX,
                1..=u32::MAX,
                1..=u32::MAX,
            ),
            (
                duration(1),
                prop::option::of(duration(0)),
                prop::option::of(any::<u64>()),
            ),
            (any::<bool>(), any::<IpAddr>(), any::<u16>()),
        )
            .prop_map(|(a, counts, limits, health)| {
                let mut c = RelayConfig::default();
                c.identity.key_file = a.0;
                c.network.listen_addresses = a.1;
                // A /tls/ws address needs its certificate, and only then.
                if c.network
                    .listen_addresses
                    .iter()
                    .any(peerup_core::config::relay::is_websocket_tls)
                {
                    c.network.websocket_tls = Some(peerup_core::config::relay::WebSocketTls::new(
                        "fullchain.pem",
                        "privkey.pem",
                    ));
                }
                c.discovery.network = a.2;
                c.security.authorized_keys_file = a.3;
                c.security.enable_connection_gating = a.4;
                c.resources.max_reservations = counts.0;
                c.resources.max_circuits = counts.1;
                c.resources.buffer_size = counts.2;
                c.resources.max_reservations_per_ip = counts.3;
                c.resources.max_reservations_per_asn = counts.4;
                c.resources.reservation_ttl = limits.0;
                c.resources.session_duration = limits.1;
                c.resources.session_data_limit = limits.2;
                c.health.enabled = health.0;
                c.health.listen_address = SocketAddr::new(health.1, health.2);
                c
            })
    }

    /// Line-shaped YAML built from the schema's own words, to reach deep
    /// into the parsers.
    fn yamlish() -> impl Strategy<Value = String> {
        let word = prop::sample::select(vec![
            "version",
            "identity",
            "key_file",
            "network",
            "listen_addresses",
            "relay",
            "addresses",
            "reservation_interval",
            "discovery",
            "rendezvous",
            "bootstrap_peers",
            "security",
            "services",
            "ssh",
            "local_address",
            "allowed_peers",
            "names",
            "home",
            "resources",
            "session_duration",
            "session_data_limit",
            "health",
            "listen_address",
            "kad",
            "enabled",
            "protocols",
            "ping_pong",
            "id",
        ]);
        let value = prop::sample::select(vec![
            "",
            " 1",
            " 2",
            " 0",
            " true",
            " ~",
            " []",
            " {}",
            " \"\"",
            " 2m",
            " 64MB",
            " localhost:22",
            " [home]",
            " /ip4/1.2.3.4/tcp/7777",
            " 12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL",
            " &a x",
            " *a",
            " |",
            " [",
            " \"",
            " '",
            " - x",
            " : :",
        ]);
        let line = (0usize..4, prop::bool::ANY, word, value, "[ \t#:-]{0,2}").prop_map(
            |(indent, dash, w, v, junk)| {
                format!(
                    "{}{}{w}:{v}{junk}",
                    "  ".repeat(indent),
                    if dash { "- " } else { "" }
                )
            },
        );
        prop::collection::vec(line, 0..16).prop_map(|lines| lines.join("\n"))
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/config_props.txt"))),
            ..ProptestConfig::default()
        })]

        #[test]
        fn node_config_render_parse_round_trips(c in node_config()) {
            let text = c.render();
            let parsed = Config::parse(Path::new("peerup.yaml"), &text);
            prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed.err().map(|e| e.to_string()), text);
            let (back, warnings) = parsed.unwrap();
            prop_assert_eq!(&back, &c, "{}", text);
            prop_assert!(warnings.iter().all(|w| w.kind != peerup_core::config::WarningKind::UnknownKey));
            let commented = c.render_commented();
            prop_assert_eq!(Config::parse(Path::new("peerup.yaml"), &commented).map(|r| r.0).ok(), Some(c), "{}", commented);
        }

        #[test]
        fn relay_config_render_parse_round_trips(c in relay_config()) {
            let text = c.render();
            let parsed = RelayConfig::parse(Path::new("relay-server.yaml"), &text);
            prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed.err().map(|e| e.to_string()), text);
            prop_assert_eq!(&parsed.unwrap().0, &c, "{}", text);
            let commented = c.render_commented();
            prop_assert_eq!(RelayConfig::parse(Path::new("r.yaml"), &commented).map(|r| r.0).ok(), Some(c), "{}", commented);
        }

        #[test]
        fn units_round_trip(d in duration(0), n in any::<u64>()) {
            prop_assert_eq!(units::parse_duration(&units::format_duration(d)), Ok(d));
            prop_assert_eq!(units::parse_size(&units::format_size(n)), Ok(n));
            let h: units::HumanDuration = units::format_duration(d).parse().unwrap();
            prop_assert_eq!(h.to_string().parse::<units::HumanDuration>(), Ok(h));
        }

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = Config::parse(Path::new("peerup.yaml"), &text);
            let _ = RelayConfig::parse(Path::new("relay-server.yaml"), &text);
            let _ = diag::locate(&text, &FieldPath::keys(&["a", "b"]).index(0));
        }

        #[test]
        fn yaml_shaped_text_never_panics(text in yamlish()) {
            let node = Config::parse(Path::new("peerup.yaml"), &text);
            let relay = RelayConfig::parse(Path::new("relay-server.yaml"), &text);
            // Every error names the file.
            if let Err(e) = node {
                prop_assert!(e.to_string().starts_with("peerup.yaml"));
            }
            if let Err(e) = relay {
                prop_assert!(e.to_string().starts_with("relay-server.yaml"));
            }
            let _ = diag::locate(&text, &FieldPath::keys(&["services", "ssh", "allowed_peers"]).index(1));
        }

        #[test]
        fn mutated_configs_never_panic(c in node_config(), cut in any::<prop::sample::Index>(), insert in ".{0,3}") {
            let mut text = c.render();
            let mut at = cut.index(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert_str(at, &insert);
            let _ = Config::parse(Path::new("peerup.yaml"), &text);
            let _ = Config::parse(Path::new("peerup.yaml"), &text[..at]);
        }
    }

    #[test]
    fn names_map_from_generated_keys_is_deterministic() {
        // BTreeMap order: rendering twice gives the same text.
        let mut c = Config::default();
        c.names = [("b", IDS[0]), ("a", IDS[1])]
            .iter()
            .map(|(n, p)| (Name::new(n).unwrap(), p.parse().unwrap()))
            .collect();
        c.services = BTreeMap::from([(
            DnsLabel::new("z").unwrap(),
            Service::new("localhost:1".parse().unwrap()),
        )]);
        assert_eq!(c.render(), c.clone().render());
        assert!(c.render().find("  a: ").unwrap() < c.render().find("  b: ").unwrap());
    }
}
