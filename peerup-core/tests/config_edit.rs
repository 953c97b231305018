//! `config::edit`: minimal, comment-keeping edits of `names:`,
//! `relay.addresses` and `services:`, checked by re-parsing.

// In a module so that `cargo test config` selects these tests.
mod config_edit {
    use std::collections::BTreeMap;
    use std::path::Path;

    use peerup_core::PeerId;
    use peerup_core::config::edit::{
        EditError, add_relay, add_service, remove_name, remove_relay, remove_service, set_name,
        set_service_enabled,
    };
    use peerup_core::config::node::{LocalAddress, PeerRef, Service};
    use peerup_core::config::{Config, ConfigError, render_template};
    use peerup_core::identity::keypair_from_seed;
    use peerup_core::naming::Name;
    use peerup_core::relay_addr::RelayAddr;
    use peerup_core::wire::label::DnsLabel;
    use proptest::prelude::*;
    use proptest::sample::{select, subsequence};
    use proptest::test_runner::FileFailurePersistence;

    const HOME: &str = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
    const PHONE: &str = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA";

    /// The seed README's "Unified Config" sample with its placeholders
    /// filled in.
    const README: &str = r#"identity:
  key_file: "identity.key"

network:
  listen_addresses:
    - "/ip4/0.0.0.0/tcp/0"
    - "/ip4/0.0.0.0/udp/0/quic-v1"
  force_private_reachability: false  # Set true for server behind CGNAT

relay:
  addresses:
    - "/ip4/203.0.113.7/tcp/7777/p2p/12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL"
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

    fn parse(text: &str) -> Config {
        match Config::parse(Path::new("peerup.yaml"), text) {
            Ok((c, _)) => c,
            Err(e) => panic!("{e}\n---\n{text}"),
        }
    }

    fn name(s: &str) -> Name {
        Name::new(s).unwrap()
    }

    fn pid(s: &str) -> PeerId {
        s.parse().unwrap()
    }

    fn seeded_peer(n: u8) -> PeerId {
        keypair_from_seed([n; 32]).public().to_peer_id()
    }

    fn relay(s: &str) -> RelayAddr {
        s.parse().unwrap()
    }

    fn vps() -> RelayAddr {
        relay(&format!("/ip4/203.0.113.7/tcp/7777/p2p/{HOME}"))
    }

    fn other_relay() -> RelayAddr {
        relay(&format!(
            "/dns4/relay.example.com/udp/7777/quic-v1/p2p/{PHONE}"
        ))
    }

    /// The lines that differ once the common first and last lines are
    /// set aside: (old, new), without their line ends.
    fn middle<'a>(old: &'a str, new: &'a str) -> (Vec<&'a str>, Vec<&'a str>) {
        let a: Vec<&str> = old.lines().collect();
        let b: Vec<&str> = new.lines().collect();
        let p = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let s = a[p..]
            .iter()
            .rev()
            .zip(b[p..].iter().rev())
            .take_while(|(x, y)| x == y)
            .count();
        (a[p..a.len() - s].to_vec(), b[p..b.len() - s].to_vec())
    }

    fn with_name(text: &str, n: &str, p: &str) -> Config {
        let mut c = parse(text);
        c.names.insert(name(n), pid(p));
        c
    }

    // -----------------------------------------------------------------
    // names

    #[test]
    fn sets_a_name_in_the_readme_sample_keeping_its_comments() {
        let out = set_name(README, &name("laptop"), pid(PHONE)).unwrap();
        let expected = README.replace(
            "names: {}\n#  home:",
            &format!("names:\n  laptop: \"{PHONE}\"\n#  home:"),
        );
        assert_eq!(out, expected);
        assert_eq!(parse(&out), with_name(README, "laptop", PHONE));
        // A second name goes after the first, before the commented example.
        let out2 = set_name(&out, &name("home"), pid(HOME)).unwrap();
        assert!(
            out2.ends_with(&format!(
                "names:\n  laptop: \"{PHONE}\"\n  home: \"{HOME}\"\n#  home: \"12D3KooW...\"\n"
            )),
            "{out2}"
        );
        // Removing both gives the sample back, byte for byte.
        let back = remove_name(&remove_name(&out2, &name("laptop")).unwrap(), &name("home"));
        assert_eq!(back.unwrap(), README);
    }

    #[test]
    fn sets_a_name_in_the_init_template() {
        let template = render_template("identity.key", &[vps()], None);
        let out = set_name(&template, &name("home"), pid(HOME)).unwrap();
        let (old, new) = middle(&template, &out);
        assert_eq!(old, ["names: {}"]);
        assert_eq!(new, ["names:".to_owned(), format!("  home: \"{HOME}\"")]);
        assert_eq!(parse(&out), with_name(&template, "home", HOME));
        assert_eq!(remove_name(&out, &name("home")).unwrap(), template);
    }

    #[test]
    fn appends_a_names_block_when_there_is_none() {
        let text = "relay:\n  addresses: []\n# the end";
        let out = set_name(text, &name("home"), pid(HOME)).unwrap();
        assert_eq!(
            out,
            format!("relay:\n  addresses: []\n# the end\n\nnames:\n  home: \"{HOME}\"\n")
        );
        // The file's own indent step is used.
        let text = "relay:\n    addresses: []\n\n";
        let out = set_name(text, &name("home"), pid(HOME)).unwrap();
        assert_eq!(
            out,
            format!("relay:\n    addresses: []\n\nnames:\n    home: \"{HOME}\"\n")
        );
    }

    #[test]
    fn fills_empty_names_in_every_spelling() {
        let entry = format!("  home: \"{HOME}\"");
        for (before, head) in [
            ("names:", "names:"),
            ("names: {}", "names:"),
            ("names: { }", "names:"),
            ("names: ~", "names:"),
            ("names: null", "names:"),
            ("names: {}  # friends", "names:  # friends"),
            ("names: ~ # friends", "names: # friends"),
            ("names:   # friends", "names:   # friends"),
        ] {
            let text = format!("version: 1\n{before}\n#  home: \"12D3KooW...\"\n# end\n");
            let out = set_name(&text, &name("home"), pid(HOME)).unwrap();
            assert_eq!(
                out,
                format!("version: 1\n{head}\n{entry}\n#  home: \"12D3KooW...\"\n# end\n"),
                "{before}"
            );
        }
    }

    #[test]
    fn inserts_after_the_last_entry_with_its_indent() {
        let text = format!(
            "names:\n    home: {HOME}   # the desktop\n    # laptop: later\n    'phone': '{PHONE}'\n\n# trailing comment\nversion: 1\n"
        );
        let p = seeded_peer(3);
        let out = set_name(&text, &name("nas.garage"), p).unwrap();
        assert_eq!(
            out,
            format!(
                "names:\n    home: {HOME}   # the desktop\n    # laptop: later\n    'phone': '{PHONE}'\n    nas.garage: \"{p}\"\n\n# trailing comment\nversion: 1\n"
            )
        );
        // Keys YAML would read as something else are quoted.
        let out = set_name(&text, &name("123"), p).unwrap();
        assert!(out.contains(&format!("    \"123\": \"{p}\"\n")), "{out}");
        assert_eq!(parse(&out).names.get("123"), Some(p));
    }

    #[test]
    fn replaces_a_value_in_place_keeping_its_comment() {
        let text = format!("names:\n  home: {HOME}   # the desktop\n  phone: \"{PHONE}\"\n");
        let p = seeded_peer(7);
        let out = set_name(&text, &name("home"), p).unwrap();
        assert_eq!(
            out,
            format!("names:\n  home: \"{p}\"   # the desktop\n  phone: \"{PHONE}\"\n")
        );
        let out = set_name(&text, &name("phone"), p).unwrap();
        assert_eq!(
            out,
            format!("names:\n  home: {HOME}   # the desktop\n  phone: \"{p}\"\n")
        );
        // A quoted key is found too.
        let text = format!("names:\n  \"home\": '{HOME}'\n");
        let out = set_name(&text, &name("home"), p).unwrap();
        assert_eq!(out, format!("names:\n  \"home\": \"{p}\"\n"));
    }

    #[test]
    fn setting_the_same_peer_changes_nothing() {
        let text = format!("names:\n  home:   {HOME}  # odd spacing\n");
        assert_eq!(set_name(&text, &name("home"), pid(HOME)).unwrap(), text);
    }

    #[test]
    fn rewrites_a_flow_mapping_as_a_block() {
        let text = format!(
            "version: 1\nnames: {{home: {HOME}, \"phone\": '{PHONE}'}}  # mine\nrelay: {{}}\n"
        );
        let p = seeded_peer(9);
        let out = set_name(&text, &name("laptop"), p).unwrap();
        assert_eq!(
            out,
            format!(
                "version: 1\nnames:  # mine\n  home: \"{HOME}\"\n  phone: \"{PHONE}\"\n  laptop: \"{p}\"\nrelay: {{}}\n"
            )
        );
        // Replacing keeps the entry's place; a multi-line flow mapping is
        // rewritten whole.
        let text = format!("names: {{home: {HOME},\n  phone: {PHONE}\n}}\nversion: 1\n");
        let out = set_name(&text, &name("home"), p).unwrap();
        assert_eq!(
            out,
            format!("names:\n  home: \"{p}\"\n  phone: \"{PHONE}\"\nversion: 1\n")
        );
    }

    #[test]
    fn refuses_to_drop_comments_inside_a_multi_line_flow_mapping() {
        let text = format!("names: {{home: {HOME}, # desktop\n  phone: {PHONE}}}\n");
        let err = set_name(&text, &name("laptop"), seeded_peer(1)).unwrap_err();
        assert!(
            matches!(&err, EditError::Unsupported { line: 1, path, .. } if path.to_string() == "names"),
            "{err:?}"
        );
        assert!(err.to_string().contains("edit the file by hand"), "{err}");
    }

    #[test]
    fn refuses_shapes_it_does_not_edit() {
        let anchored = format!("names: &n\n  home: {HOME}\n");
        assert!(matches!(
            set_name(&anchored, &name("x"), pid(PHONE)),
            Err(EditError::Unsupported { line: 1, .. })
        ));
        let multi = format!("names:\n  home: \"12D3KooW\\\n    {}\"\n", &HOME[8..]);
        assert_eq!(parse(&multi).names.get("home"), Some(pid(HOME)));
        assert!(matches!(
            set_name(&multi, &name("home"), pid(PHONE)),
            Err(EditError::Unsupported { line: 2, .. })
        ));
        assert!(matches!(
            remove_name(&multi, &name("home")),
            Err(EditError::Unsupported { line: 2, .. })
        ));
        // Other entries of such a mapping can still be added.
        let out = set_name(&multi, &name("phone"), pid(PHONE)).unwrap();
        assert!(out.ends_with(&format!("  phone: \"{PHONE}\"\n")), "{out}");
        let flow_relay = "relay: {reservation_interval: 1m}\n";
        assert!(matches!(
            add_relay(flow_relay, &vps()),
            Err(EditError::Unsupported { line: 1, .. })
        ));
    }

    #[test]
    fn removes_a_name_line_and_leaves_an_empty_mapping() {
        let text = format!(
            "names:  # friends\n  home: {HOME}  # desktop\n  # a comment\n  phone: \"{PHONE}\"\nversion: 1\n"
        );
        let out = remove_name(&text, &name("home")).unwrap();
        assert_eq!(
            out,
            format!("names:  # friends\n  # a comment\n  phone: \"{PHONE}\"\nversion: 1\n")
        );
        let out = remove_name(&out, &name("phone")).unwrap();
        assert_eq!(out, "names: {}  # friends\n  # a comment\nversion: 1\n");
        assert!(parse(&out).names.is_empty());
        // From a flow mapping.
        let text = format!("names: {{home: {HOME}, phone: {PHONE}}} # f\n");
        let out = remove_name(&text, &name("phone")).unwrap();
        assert_eq!(out, format!("names: # f\n  home: \"{HOME}\"\n"));
        let text = format!("names: {{home: {HOME}}} # f\n");
        assert_eq!(
            remove_name(&text, &name("home")).unwrap(),
            "names: {} # f\n"
        );
    }

    #[test]
    fn removing_an_unknown_name_lists_the_known_ones() {
        let text = format!("names:\n  laptop: {PHONE}\n  home: {HOME}\n");
        let err = remove_name(&text, &name("hme")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no name `hme` in names (known: home, laptop)"
        );
        assert!(matches!(err, EditError::NameNotFound { ref known, .. } if known.len() == 2));
        let err = remove_name(README, &name("home")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no name `home` in names (no names are defined)"
        );
    }

    #[test]
    fn refuses_to_remove_a_name_a_service_uses() {
        let mut services = BTreeMap::new();
        let mut ssh = Service::new("localhost:22".parse::<LocalAddress>().unwrap());
        ssh.allowed_peers = Some(vec![PeerRef::Name(name("home"))]);
        services.insert(DnsLabel::new("ssh").unwrap(), ssh);
        let template = render_template("identity.key", &[], Some(&services));
        assert!(matches!(
            set_name(&template, &name("x"), pid(HOME)),
            Err(EditError::Invalid { .. })
        ));
        let text = template.replace("names: {}", &format!("names:\n  home: {HOME}"));
        let err = remove_name(&text, &name("home")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "name `home` is used in services.ssh.allowed_peers; remove it there first"
        );
    }

    #[test]
    fn keeps_crlf_line_ends() {
        let text = README.replace('\n', "\r\n");
        let out = set_name(&text, &name("home"), pid(PHONE)).unwrap();
        assert_eq!(out.matches('\n').count(), out.matches("\r\n").count());
        assert!(out.contains(&format!("names:\r\n  home: \"{PHONE}\"\r\n#  home:")));
        assert_eq!(parse(&out), with_name(README, "home", PHONE));
        let out = add_relay(&out, &other_relay()).unwrap();
        assert_eq!(out.matches('\n').count(), out.matches("\r\n").count());
        let out = remove_relay(&out, &vps()).unwrap();
        let out = remove_name(&out, &name("home")).unwrap();
        assert_eq!(out.matches('\n').count(), out.matches("\r\n").count());
        // Appended sections too.
        let out = set_name("version: 1\r\n", &name("home"), pid(HOME)).unwrap();
        assert_eq!(
            out,
            format!("version: 1\r\n\r\nnames:\r\n  home: \"{HOME}\"\r\n")
        );
    }

    #[test]
    fn a_missing_final_newline_stays_missing_unless_lines_follow() {
        let text = format!("names:\n  home: {HOME}\nversion: 1");
        let out = set_name(&text, &name("phone"), pid(PHONE)).unwrap();
        assert_eq!(
            out,
            format!("names:\n  home: {HOME}\n  phone: \"{PHONE}\"\nversion: 1")
        );
        let text = format!("version: 1\nnames:\n  home: {HOME}");
        let out = set_name(&text, &name("home"), pid(PHONE)).unwrap();
        assert_eq!(out, format!("version: 1\nnames:\n  home: \"{PHONE}\""));
        let out = set_name(&text, &name("phone"), pid(PHONE)).unwrap();
        assert_eq!(
            out,
            format!("version: 1\nnames:\n  home: {HOME}\n  phone: \"{PHONE}\"\n")
        );
        let out = set_name("version: 1\nnames: {}", &name("home"), pid(HOME)).unwrap();
        assert_eq!(out, format!("version: 1\nnames:\n  home: \"{HOME}\"\n"));
        let out = set_name("version: 1", &name("home"), pid(HOME)).unwrap();
        assert_eq!(out, format!("version: 1\n\nnames:\n  home: \"{HOME}\"\n"));
    }

    // -----------------------------------------------------------------
    // relays

    #[test]
    fn adds_a_relay_to_the_readme_sample() {
        let out = add_relay(README, &other_relay()).unwrap();
        let (old, new) = middle(README, &out);
        assert!(old.is_empty());
        assert_eq!(new, [format!("    - \"{}\"", other_relay())]);
        let mut expected = parse(README);
        expected.relay.addresses.push(other_relay());
        assert_eq!(parse(&out), expected);
        assert_eq!(remove_relay(&out, &other_relay()).unwrap(), README);
    }

    #[test]
    fn adds_a_relay_to_the_init_template() {
        let template = render_template("identity.key", &[], None);
        let out = add_relay(&template, &vps()).unwrap();
        let (old, new) = middle(&template, &out);
        assert_eq!(old, ["  addresses: []"]);
        assert_eq!(
            new,
            ["  addresses:".to_owned(), format!("    - \"{}\"", vps())]
        );
        // The commented example above it stays.
        assert!(out.contains("  # addresses:\n  #   - \"/ip4/YOUR_VPS_IP/"));
        assert_eq!(remove_relay(&out, &vps()).unwrap(), template);
    }

    #[test]
    fn creates_relay_and_addresses_when_missing() {
        let out = add_relay("version: 1\n", &vps()).unwrap();
        assert_eq!(
            out,
            format!("version: 1\n\nrelay:\n  addresses:\n    - \"{}\"\n", vps())
        );
        let text = "relay:\n  reservation_interval: 5m  # often\n\nnames: {}\n";
        let out = add_relay(text, &vps()).unwrap();
        assert_eq!(
            out,
            format!(
                "relay:\n  reservation_interval: 5m  # often\n  addresses:\n    - \"{}\"\n\nnames: {{}}\n",
                vps()
            )
        );
        for empty in ["relay:", "relay: {}", "relay: ~"] {
            let text = format!("{empty}\nnames: {{}}\n");
            let out = add_relay(&text, &vps()).unwrap();
            assert_eq!(
                out,
                format!("relay:\n  addresses:\n    - \"{}\"\nnames: {{}}\n", vps())
            );
        }
        for empty in [
            "addresses:",
            "addresses: []",
            "addresses: ~",
            "addresses: [ ]",
        ] {
            let text = format!("relay:\n  {empty}   # none yet\n  reservation_interval: 1m\n");
            let out = add_relay(&text, &vps()).unwrap();
            assert_eq!(
                out,
                format!(
                    "relay:\n  addresses:   # none yet\n    - \"{}\"\n  reservation_interval: 1m\n",
                    vps()
                )
            );
        }
    }

    #[test]
    fn adds_to_compact_and_flow_lists() {
        let text = format!(
            "relay:\n  addresses:\n  - {}  # vps\n  reservation_interval: 1m\n",
            vps()
        );
        let out = add_relay(&text, &other_relay()).unwrap();
        assert_eq!(
            out,
            format!(
                "relay:\n  addresses:\n  - {}  # vps\n  - \"{}\"\n  reservation_interval: 1m\n",
                vps(),
                other_relay()
            )
        );
        let text = format!(
            "relay:\n  addresses: [{}]  # vps\n  reservation_interval: 1m\n",
            vps()
        );
        let out = add_relay(&text, &other_relay()).unwrap();
        assert_eq!(
            out,
            format!(
                "relay:\n  addresses:  # vps\n    - \"{}\"\n    - \"{}\"\n  reservation_interval: 1m\n",
                vps(),
                other_relay()
            )
        );
        let text = format!(
            "relay:\n  addresses: [\n    \"{}\",\n  ]\n  reservation_interval: 1m\n",
            vps()
        );
        let out = add_relay(&text, &other_relay()).unwrap();
        assert_eq!(
            out,
            format!(
                "relay:\n  addresses:\n    - \"{}\"\n    - \"{}\"\n  reservation_interval: 1m\n",
                vps(),
                other_relay()
            )
        );
    }

    #[test]
    fn refuses_a_duplicate_relay_by_multiaddr() {
        let err = add_relay(README, &vps()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("relay address {} is already in relay.addresses", vps())
        );
        // Written differently (unquoted, `/ipfs/`), still the same address.
        let text = format!("relay:\n  addresses:\n    - /ip4/203.0.113.7/tcp/7777/ipfs/{HOME}\n");
        assert!(matches!(
            add_relay(&text, &vps()),
            Err(EditError::RelayExists { .. })
        ));
        let out = remove_relay(&text, &vps()).unwrap();
        assert_eq!(out, "relay:\n  addresses: []\n");
    }

    #[test]
    fn removes_relays_by_multiaddr() {
        let text = format!(
            "relay:\n  addresses:   # mine\n    - '{}'\n    # a note\n    - \"{}\"  # vps\n  reservation_interval: 1m\n",
            other_relay(),
            vps()
        );
        let out = remove_relay(&text, &vps()).unwrap();
        assert_eq!(
            out,
            format!(
                "relay:\n  addresses:   # mine\n    - '{}'\n    # a note\n  reservation_interval: 1m\n",
                other_relay()
            )
        );
        let out = remove_relay(&out, &other_relay()).unwrap();
        assert_eq!(
            out,
            "relay:\n  addresses: []   # mine\n    # a note\n  reservation_interval: 1m\n"
        );
        // From flow lists.
        let text = format!("relay:\n  addresses: [{}, \"{}\"]\n", vps(), other_relay());
        let out = remove_relay(&text, &vps()).unwrap();
        assert_eq!(
            out,
            format!("relay:\n  addresses:\n    - \"{}\"\n", other_relay())
        );
        let text = format!("relay:\n  addresses: [{}] # one\n", vps());
        assert_eq!(
            remove_relay(&text, &vps()).unwrap(),
            "relay:\n  addresses: [] # one\n"
        );
    }

    #[test]
    fn removing_an_unknown_relay_lists_the_configured_ones() {
        let err = remove_relay(README, &other_relay()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "relay address {} is not in relay.addresses (configured: {})",
                other_relay(),
                vps()
            )
        );
        let err = remove_relay("version: 1\n", &vps()).unwrap_err();
        assert!(err.to_string().ends_with("(none are configured)"), "{err}");
    }

    #[test]
    fn handles_document_markers_and_a_byte_order_mark() {
        let text = format!("\u{feff}names:\n  home: {HOME}\n");
        let out = set_name(&text, &name("home"), pid(PHONE)).unwrap();
        assert_eq!(out, format!("\u{feff}names:\n  home: \"{PHONE}\"\n"));
        let text = "%YAML 1.1\n--- # peerup\nversion: 1\nnames: {}\n...\n";
        let out = set_name(text, &name("home"), pid(HOME)).unwrap();
        assert_eq!(
            out,
            format!("%YAML 1.1\n--- # peerup\nversion: 1\nnames:\n  home: \"{HOME}\"\n...\n")
        );
    }

    // -----------------------------------------------------------------
    // errors

    #[test]
    fn refuses_input_that_does_not_load() {
        for text in ["", "names: [home]\n", "relay:\n\t- x\n", "version: 2\n"] {
            let err = set_name(text, &name("home"), pid(HOME)).unwrap_err();
            assert!(
                matches!(err, EditError::Invalid { .. }),
                "{text:?}: {err:?}"
            );
            assert!(matches!(
                add_relay(text, &vps()),
                Err(EditError::Invalid { .. })
            ));
        }
        let err = set_name("names: [home]\n", &name("home"), pid(HOME)).unwrap_err();
        assert!(err.to_string().starts_with("peerup.yaml:1:"), "{err}");
        let err = err.with_file(Path::new("/etc/peerup/config.yaml"));
        assert!(
            err.to_string().starts_with("/etc/peerup/config.yaml:1:"),
            "{err}"
        );
        let EditError::Invalid { error } = err else {
            panic!("{err:?}")
        };
        assert!(matches!(error, ConfigError::Invalid { .. }));
    }

    // -----------------------------------------------------------------
    // services

    fn label(s: &str) -> DnsLabel {
        DnsLabel::new(s).unwrap()
    }

    fn service(addr: &str, allowed: Option<&[&str]>) -> Service {
        let mut s = Service::new(addr.parse::<LocalAddress>().unwrap());
        s.allowed_peers = allowed.map(|list| {
            list.iter()
                .map(|p| match p.parse::<PeerId>() {
                    Ok(id) => PeerRef::Id(id),
                    Err(_) => PeerRef::Name(name(p)),
                })
                .collect()
        });
        s
    }

    fn with_service(text: &str, n: &str, s: &Service) -> Config {
        let mut c = parse(text);
        c.services.insert(label(n), s.clone());
        c
    }

    #[test]
    fn adds_a_service_to_the_init_template_keeping_its_comments() {
        let template = render_template("identity.key", &[vps()], None);
        let ssh = service("localhost:22", None);
        let out = add_service(&template, &label("ssh"), &ssh).unwrap();
        // Appended after everything (the commented-out example stays).
        assert_eq!(
            out,
            format!(
                "{template}\nservices:\n  ssh:\n    enabled: true\n    local_address: \"localhost:22\"\n"
            )
        );
        assert_eq!(parse(&out), with_service(&template, "ssh", &ssh));
        // A second one goes after the first, with its allowed_peers.
        let text = out.replace("names: {}", &format!("names:\n  laptop: {PHONE}"));
        let web = service("127.0.0.1:8080", Some(&["laptop", HOME]));
        let out = add_service(&text, &label("web"), &web).unwrap();
        assert!(
            out.ends_with(&format!(
                "  ssh:\n    enabled: true\n    local_address: \"localhost:22\"\n  web:\n    enabled: true\n    local_address: \"127.0.0.1:8080\"\n    allowed_peers:\n      - \"laptop\"\n      - \"{HOME}\"\n"
            )),
            "{out}"
        );
        assert_eq!(parse(&out), with_service(&text, "web", &web));
        // Removing both leaves `services: {}`, and the config as it was.
        let out = remove_service(&out, &label("ssh")).unwrap();
        let out = remove_service(&out, &label("web")).unwrap();
        assert!(out.ends_with("\nservices: {}\n"), "{out}");
        assert_eq!(
            parse(&out),
            parse(&text.replace(
                "services:\n  ssh:\n    enabled: true\n    local_address: \"localhost:22\"\n",
                ""
            ))
        );
        for comment in template.lines().filter(|l| l.starts_with('#')) {
            assert!(out.contains(comment), "lost {comment:?}");
        }
    }

    #[test]
    fn adds_after_the_last_service_with_the_files_indent() {
        let text = "services:   # mine\n    ssh:\n        local_address: localhost:22  # sshd\n        # allowed_peers: []\n    # web: later\n\n# end\nversion: 1\n";
        let rdp = service("[::1]:3389", Some(&[]));
        let out = add_service(text, &label("rdp"), &rdp).unwrap();
        assert_eq!(
            out,
            "services:   # mine\n    ssh:\n        local_address: localhost:22  # sshd\n        # allowed_peers: []\n    rdp:\n        enabled: true\n        local_address: \"[::1]:3389\"\n        allowed_peers: []\n    # web: later\n\n# end\nversion: 1\n"
        );
        assert_eq!(parse(&out), with_service(text, "rdp", &rdp));
        // Every empty spelling becomes a block.
        for empty in [
            "services:",
            "services: {}",
            "services: ~",
            "services: {}  # none",
        ] {
            let text = format!("version: 1\n{empty}\n#   ssh: example\n");
            let out = add_service(&text, &label("ssh"), &service("localhost:22", None)).unwrap();
            let head = empty.replace(" {}", "").replace(" ~", "");
            assert_eq!(
                out,
                format!(
                    "version: 1\n{head}\n  ssh:\n    enabled: true\n    local_address: \"localhost:22\"\n#   ssh: example\n"
                ),
                "{empty}"
            );
        }
    }

    #[test]
    fn removes_a_service_block_and_nothing_after_it() {
        let text = "services:\n  ssh:\n    enabled: true\n    # the daemon\n    local_address: \"localhost:22\"\n  # about web\n  web:\n    local_address: localhost:80\n    allowed_peers:\n      - \"12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL\"\n\n# trailing\nnames: {}\n";
        let out = remove_service(text, &label("ssh")).unwrap();
        assert_eq!(
            out,
            "services:\n  # about web\n  web:\n    local_address: localhost:80\n    allowed_peers:\n      - \"12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL\"\n\n# trailing\nnames: {}\n"
        );
        let out = remove_service(&out, &label("web")).unwrap();
        assert_eq!(
            out,
            "services: {}\n  # about web\n\n# trailing\nnames: {}\n"
        );
        assert!(parse(&out).services.is_empty());
        // A service written as a flow mapping on its line goes whole.
        let text = "services:\n  a: {local_address: \"localhost:1\"}\n  b:\n    local_address: localhost:2\n";
        let out = remove_service(text, &label("a")).unwrap();
        assert_eq!(out, "services:\n  b:\n    local_address: localhost:2\n");
    }

    #[test]
    fn sets_enabled_in_place_or_adds_it() {
        let text = "services:\n  ssh:\n    enabled: true   # on\n    local_address: localhost:22\n  web:\n    # no enabled: the default\n    local_address: localhost:80\n";
        let out = set_service_enabled(text, &label("ssh"), false).unwrap();
        assert_eq!(
            out,
            text.replace("enabled: true   # on", "enabled: false   # on")
        );
        assert!(!parse(&out).services[&label("ssh")].enabled);
        let back = set_service_enabled(&out, &label("ssh"), true).unwrap();
        assert_eq!(back, text);
        // Already so: unchanged, byte for byte.
        assert_eq!(
            set_service_enabled(text, &label("web"), true).unwrap(),
            text
        );
        let out = set_service_enabled(text, &label("web"), false).unwrap();
        assert_eq!(
            out,
            text.replace(
                "    local_address: localhost:80\n",
                "    enabled: false\n    local_address: localhost:80\n"
            )
        );
        let mut expected = parse(text);
        expected.services.get_mut(&label("web")).unwrap().enabled = false;
        assert_eq!(parse(&out), expected);
    }

    #[test]
    fn service_edits_refuse_with_the_reason() {
        let text = format!(
            "names:\n  laptop: {PHONE}\nservices:\n  ssh:\n    local_address: localhost:22\n"
        );
        let ssh = service("localhost:2222", None);
        let err = add_service(&text, &label("ssh"), &ssh).unwrap_err();
        assert_eq!(err.to_string(), "service `ssh` is already in services");
        let err = add_service(&text, &label("kad"), &ssh).unwrap_err();
        assert!(matches!(err, EditError::InvalidService { .. }), "{err:?}");
        assert!(err.to_string().contains("reserved"), "{err}");
        let err = add_service(
            &text,
            &label("web"),
            &service("localhost:80", Some(&["bob"])),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "service `web`: allowed_peers names `bob`, which is not in names (known: laptop)"
        );
        let err = remove_service(&text, &label("web")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no service `web` in services (configured: ssh)"
        );
        let err = set_service_enabled(README, &label("web"), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no service `web` in services (no services are configured)"
        );
        // Flow mappings are refused, naming the line.
        let flow = "version: 1\nservices: {ssh: {local_address: \"localhost:22\"}}\n";
        for err in [
            add_service(flow, &label("web"), &ssh).unwrap_err(),
            remove_service(flow, &label("ssh")).unwrap_err(),
            set_service_enabled(flow, &label("ssh"), false).unwrap_err(),
        ] {
            assert!(
                matches!(&err, EditError::Unsupported { line: 2, path, .. } if path.to_string() == "services"),
                "{err:?}"
            );
            assert!(err.to_string().contains("edit the file by hand"), "{err}");
        }
        let inner = "services:\n  ssh: {local_address: \"localhost:22\"}\n";
        let err = set_service_enabled(inner, &label("ssh"), false).unwrap_err();
        assert!(
            matches!(&err, EditError::Unsupported { line: 2, path, .. } if path.to_string() == "services.ssh"),
            "{err:?}"
        );
        let anchored = "services:\n  ssh: &s\n    local_address: localhost:22\n";
        assert!(matches!(
            remove_service(anchored, &label("ssh")),
            Err(EditError::Unsupported { line: 2, .. })
        ));
        // Input that does not load names the file and line.
        let err = add_service("services: [ssh]\n", &label("ssh"), &ssh)
            .unwrap_err()
            .with_file(Path::new("/etc/peerup/config.yaml"));
        assert!(
            err.to_string().starts_with("/etc/peerup/config.yaml:1:"),
            "{err}"
        );
    }

    #[test]
    fn service_edits_keep_crlf() {
        let text = README.replace('\n', "\r\n");
        let out = add_service(&text, &label("ssh"), &service("localhost:22", None)).unwrap();
        assert_eq!(out.matches('\n').count(), out.matches("\r\n").count());
        let out = set_service_enabled(&out, &label("ssh"), false).unwrap();
        assert_eq!(out.matches('\n').count(), out.matches("\r\n").count());
        let out = remove_service(&out, &label("ssh")).unwrap();
        assert_eq!(out.matches('\n').count(), out.matches("\r\n").count());
        assert_eq!(parse(&out), parse(README));
    }

    // -----------------------------------------------------------------
    // properties

    fn peers() -> Vec<PeerId> {
        let mut all = vec![pid(HOME), pid(PHONE)];
        all.extend((1..=6).map(seeded_peer));
        all
    }

    fn peer() -> impl Strategy<Value = PeerId> {
        select(peers())
    }

    fn any_name() -> impl Strategy<Value = Name> {
        prop_oneof![
            3 => "[a-z][a-z0-9._-]{0,8}".prop_map(|s| name(&s)),
            1 => select(&["yes", "123", "null", "0x10", "1e3", "Home", "n.a.s", "y"][..]).prop_map(name),
        ]
    }

    fn relay_pool() -> Vec<RelayAddr> {
        vec![
            vps(),
            other_relay(),
            relay(&format!(
                "/ip6/2001:db8::1/udp/7777/quic-v1/p2p/{}",
                seeded_peer(1)
            )),
            relay(&format!("/dns4/r.example/tcp/443/p2p/{}", seeded_peer(2))),
            relay(&format!("/ip4/198.51.100.9/tcp/9000/p2p/{PHONE}")),
        ]
    }

    /// How a generated config is written.
    #[derive(Debug, Clone)]
    struct Look {
        /// 0: `render`, 1: `render_commented`, 2: `render_template`.
        renderer: u8,
        crlf: bool,
        final_newline: bool,
    }

    fn look() -> impl Strategy<Value = Look> {
        (0u8..3, any::<bool>(), any::<bool>()).prop_map(|(renderer, crlf, final_newline)| Look {
            renderer,
            crlf,
            final_newline,
        })
    }

    fn rendered() -> impl Strategy<Value = (String, Look)> {
        (
            prop::collection::btree_map(any_name(), peer(), 0..5),
            subsequence(relay_pool(), 0..=4).prop_shuffle(),
            look(),
        )
            .prop_map(|(names, relays, look)| {
                let mut c = Config::default();
                c.relay.addresses = relays.clone();
                c.names = names.into_iter().collect();
                let mut text = match look.renderer {
                    0 => c.render(),
                    1 => c.render_commented(),
                    _ => render_template("identity.key", &relays, None),
                };
                if look.crlf {
                    text = text.replace('\n', "\r\n");
                }
                if !look.final_newline {
                    text.truncate(text.trim_end_matches(['\r', '\n']).len());
                }
                (text, look)
            })
    }

    /// Output invariants every edit keeps: no tab, the file's line ends.
    fn check_form(before: &str, after: &str, look: &Look) -> Result<(), TestCaseError> {
        prop_assert!(!after.contains('\t'));
        if look.crlf {
            prop_assert_eq!(after.matches('\n').count(), after.matches("\r\n").count());
        } else {
            prop_assert!(!after.contains('\r'));
        }
        prop_assert!(after.len() + 200 > before.len());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/config_edit.txt"))),
            ..ProptestConfig::default()
        })]

        #[test]
        fn set_name_maps_the_name_and_changes_nothing_else(
            (text, look) in rendered(), n in any_name(), p in peer()
        ) {
            let before = parse(&text);
            let out = set_name(&text, &n, p).unwrap();
            let after = parse(&out);
            prop_assert_eq!(after.names.get(n.as_str()), Some(p));
            for (other, q) in before.names.iter().filter(|(m, _)| *m != &n) {
                prop_assert_eq!(after.names.get(other.as_str()), Some(*q));
            }
            let mut expected = before.clone();
            expected.names.insert(n.clone(), p);
            prop_assert_eq!(&after, &expected);
            check_form(&text, &out, &look)?;

            // Every other line is still there, in order: at most the
            // `names: {}` line or the replaced entry went, at most `names:`
            // and the entry came.
            let entry = |l: &str| l.starts_with(&format!("  {n}: ")) || l.starts_with(&format!("  \"{n}\": "));
            let (old, new) = middle(&text, &out);
            prop_assert!(old.len() <= 1, "{:?}", old);
            prop_assert!(new.len() <= 2, "{:?}", new);
            for l in old {
                prop_assert!(l == "names: {}" || entry(l), "{:?}", l);
            }
            for l in new {
                prop_assert!(l == "names:" || (entry(l) && l.ends_with(&format!(": \"{p}\""))), "{:?}", l);
            }
        }

        #[test]
        fn set_then_remove_gives_the_original_back(
            (text, look) in rendered(), n in any_name(), p in peer()
        ) {
            let before = parse(&text);
            let out = remove_name(&set_name(&text, &n, p).unwrap(), &n).unwrap();
            let mut expected = before.clone();
            expected.names.remove(n.as_str());
            prop_assert_eq!(parse(&out), expected);
            check_form(&text, &out, &look)?;
            if before.names.get(n.as_str()).is_none() && look.final_newline {
                prop_assert_eq!(&out, &text);
            }
        }

        #[test]
        fn add_then_remove_relay_gives_the_original_back(
            (text, look) in rendered(), pick in 0usize..5
        ) {
            let before = parse(&text);
            let addr = relay_pool()[pick].clone();
            if before.relay.addresses.contains(&addr) {
                let is_dup = matches!(add_relay(&text, &addr), Err(EditError::RelayExists { .. }));
                prop_assert!(is_dup);
                let out = remove_relay(&text, &addr).unwrap();
                let mut expected = before.clone();
                expected.relay.addresses.retain(|a| a != &addr);
                prop_assert_eq!(parse(&out), expected);
                check_form(&text, &out, &look)?;
                let (old, new) = middle(&text, &out);
                prop_assert!(old.len() <= 2 && new.len() <= 1, "{:?} {:?}", old, new);
                prop_assert!(old.contains(&format!("    - \"{addr}\"").as_str()), "{:?}", old);
                for l in old {
                    prop_assert!(l == "  addresses:" || l == format!("    - \"{addr}\""), "{:?}", l);
                }
                for l in new {
                    prop_assert_eq!(l, "  addresses: []");
                }
            } else {
                let out = add_relay(&text, &addr).unwrap();
                let mut expected = before.clone();
                expected.relay.addresses.push(addr.clone());
                prop_assert_eq!(parse(&out), expected);
                check_form(&text, &out, &look)?;
                let (old, new) = middle(&text, &out);
                prop_assert!(old.len() <= 1 && new.len() <= 2, "{:?} {:?}", old, new);
                for l in old {
                    prop_assert_eq!(l, "  addresses: []");
                }
                for l in new {
                    prop_assert!(l == "  addresses:" || l == format!("    - \"{addr}\""), "{:?}", l);
                }
                let back = remove_relay(&out, &addr).unwrap();
                prop_assert_eq!(parse(&back), before);
                if look.final_newline {
                    prop_assert_eq!(&back, &text);
                }
            }
        }

        #[test]
        fn edits_names_written_in_any_style(
            entries in prop::collection::btree_map(any_name(), peer(), 0..4),
            style in 0u8..4,
            indent in 1usize..5,
            quote in 0u8..3,
            comments in any::<bool>(),
            at_top in any::<bool>(),
            crlf in any::<bool>(),
            n in any_name(),
            p in peer(),
            remove_pick in any::<prop::sample::Index>(),
        ) {
            let q = |s: &str| match quote { 0 => s.to_owned(), 1 => format!("\"{s}\""), _ => format!("'{s}'") };
            let c = if comments { "  # c" } else { "" };
            let pad = " ".repeat(indent);
            let section = match (style, entries.is_empty()) {
                (0, false) => {
                    let mut s = format!("names:{c}\n");
                    for (k, v) in &entries {
                        let key = if k.as_str().chars().all(|c| c.is_ascii_lowercase()) { q(k.as_str()) } else { format!("\"{k}\"") };
                        s.push_str(&format!("{pad}{key}: {}{c}\n", q(&v.to_string())));
                        if comments { s.push_str(&format!("{pad}# note\n")); }
                    }
                    s
                }
                (1, false) => {
                    let inner: Vec<String> = entries.iter().map(|(k, v)| format!("\"{k}\": {}", q(&v.to_string()))).collect();
                    format!("names: {{{}}}{c}\n", inner.join(", "))
                }
                (2, false) => {
                    let inner: Vec<String> = entries.iter().map(|(k, v)| format!("{pad}\"{k}\": {}", q(&v.to_string()))).collect();
                    format!("names: {{\n{}\n}}{c}\n", inner.join(",\n"))
                }
                (s, _) => {
                    let v = ["", " {}", " ~", " null"][usize::from(s % 4)];
                    let tail = if comments { "\n#  home: \"12D3KooW...\"\n" } else { "\n" };
                    format!("names:{v}{c}{tail}")
                }
            };
            let mut base = Config::default();
            base.relay.addresses = vec![vps()];
            let rest = base.render().replace("names: {}\n", "");
            let mut text = if at_top { format!("{section}{rest}") } else { format!("{rest}{section}") };
            let rest = if crlf { rest.replace('\n', "\r\n") } else { rest };
            if crlf { text = text.replace('\n', "\r\n"); }
            let before = parse(&text);

            let out = set_name(&text, &n, p).unwrap();
            let mut expected = before.clone();
            expected.names.insert(n.clone(), p);
            prop_assert_eq!(parse(&out), expected);
            prop_assert!(!out.contains('\t'));
            if crlf { prop_assert_eq!(out.matches('\n').count(), out.matches("\r\n").count()); }
            // Everything outside the names section is untouched.
            let (old, new) = middle(&text, &out);
            for l in old.iter().chain(&new) {
                prop_assert!(l.starts_with("names:") || l.starts_with(' ') || l.starts_with('}'), "{:?}", l);
            }
            prop_assert!(out.contains(&rest), "{}", out);

            if !before.names.is_empty() {
                let names: Vec<&Name> = before.names.iter().map(|(k, _)| k).collect();
                let victim = remove_pick.get(&names);
                let out = remove_name(&text, victim).unwrap();
                let mut expected = before.clone();
                expected.names.remove(victim.as_str());
                prop_assert_eq!(parse(&out), expected);
                prop_assert!(out.contains(&rest), "{}", out);
            }
        }


        #[test]
        fn service_edits_change_only_the_service(
            (text, look) in rendered(),
            existing in prop::collection::btree_map("[a-z][a-z0-9-]{0,6}", (1u16..9000, any::<bool>()), 0..4),
            n in "[a-z][a-z0-9-]{0,6}",
            port in 1u16..9000,
            allowed in prop::option::of(subsequence(peers(), 0..3)),
            off in any::<bool>(),
            reuse in any::<prop::sample::Index>(),
        ) {
            // Services written by `render`, then edited.
            let mut base = parse(&text);
            for (k, (p, enabled)) in &existing {
                if let Ok(l) = DnsLabel::new(k) && !["kad", "invite"].contains(&k.as_str()) {
                    let mut s = service(&format!("localhost:{p}"), None);
                    s.enabled = *enabled;
                    base.services.insert(l, s);
                }
            }
            let mut text = if look.renderer == 0 { base.render() } else { base.render_commented() };
            if look.crlf {
                text = text.replace('\n', "\r\n");
            }
            let before = parse(&text);
            // Half the time, a service that is configured.
            let keys: Vec<String> = before.services.keys().map(ToString::to_string).collect();
            let n = if off && !keys.is_empty() { reuse.get(&keys).clone() } else { n };
            let Ok(l) = DnsLabel::new(&n) else { return Ok(()) };
            if ["kad", "invite"].contains(&n.as_str()) {
                return Ok(());
            }
            let mut s = service(&format!("localhost:{port}"), None);
            s.allowed_peers = allowed.map(|v| v.into_iter().map(PeerRef::Id).collect());
            if before.services.contains_key(&l) {
                let is_dup = matches!(add_service(&text, &l, &s), Err(EditError::ServiceExists { .. }));
                prop_assert!(is_dup);
                let out = set_service_enabled(&text, &l, !off).unwrap();
                let mut expected = before.clone();
                expected.services.get_mut(&l).unwrap().enabled = !off;
                prop_assert_eq!(parse(&out), expected);
                check_form(&text, &out, &look)?;
                let out = remove_service(&text, &l).unwrap();
                let mut expected = before.clone();
                expected.services.remove(&l);
                prop_assert_eq!(parse(&out), expected);
                check_form(&text, &out, &look)?;
            } else {
                let out = add_service(&text, &l, &s).unwrap();
                let mut expected = before.clone();
                expected.services.insert(l.clone(), s.clone());
                prop_assert_eq!(parse(&out), expected.clone());
                check_form(&text, &out, &look)?;
                // Nothing but added lines (and `services: {}` turned into
                // `services:`).
                let (old, _) = middle(&text, &out);
                prop_assert!(old.iter().all(|l| l.starts_with("services:")), "{:?}", old);
                let out = set_service_enabled(&out, &l, !off).unwrap();
                expected.services.get_mut(&l).unwrap().enabled = !off;
                prop_assert_eq!(parse(&out), expected);
                let back = remove_service(&out, &l).unwrap();
                prop_assert_eq!(parse(&back), before.clone());
                if !before.services.is_empty() && look.final_newline {
                    prop_assert_eq!(&back, &text);
                }
            }
        }

        #[test]
        fn never_panics_and_never_returns_a_config_that_does_not_load(
            text in prop_oneof![
                ".{0,200}",
                (0usize..1400, 0usize..40, "[ -~\n\t]{0,6}").prop_map(|(at, cut, put)| {
                    let at = at.min(README.len());
                    let end = (at + cut).min(README.len());
                    format!("{}{put}{}", &README[..at], &README[end..])
                }),
            ],
            n in any_name(),
            p in peer(),
            pick in 0usize..5,
        ) {
            let addr = relay_pool()[pick].clone();
            let svc = label(["ssh", "xrdp", "web"][pick % 3]);
            for out in [
                set_name(&text, &n, p),
                remove_name(&text, &n),
                add_relay(&text, &addr),
                remove_relay(&text, &addr),
                add_service(&text, &svc, &service("localhost:22", None)),
                remove_service(&text, &svc),
                set_service_enabled(&text, &svc, pick % 2 == 0),
            ]
            .into_iter()
            .flatten()
            {
                prop_assert!(Config::parse(Path::new("x.yaml"), &out).is_ok());
                prop_assert!(out.matches('\t').count() <= text.matches('\t').count());
            }
        }

        #[test]
        fn edits_relays_written_in_any_style(
            list in subsequence(relay_pool(), 0..=3).prop_shuffle(),
            style in 0u8..6,
            interval_first in any::<bool>(),
            pick in 0usize..5,
        ) {
            let item = |a: &RelayAddr, i: usize| [format!("\"{a}\""), a.to_string(), format!("'{a}'")][i % 3].clone();
            let interval = "  reservation_interval: 1m\n";
            let addresses = match (style, list.is_empty()) {
                (_, true) | (4, _) => ["  addresses:\n", "  addresses: []\n", "  addresses: ~ # x\n"][pick % 3].to_owned(),
                (0, false) => list.iter().enumerate().map(|(i, a)| format!("    - {}  # r{i}\n", item(a, i))).fold("  addresses:\n".to_owned(), |s, l| s + &l),
                (1, false) => list.iter().enumerate().map(|(i, a)| format!("  - {}\n", item(a, i))).fold("  addresses:\n".to_owned(), |s, l| s + &l),
                (2, false) => format!("  addresses: [{}]\n", list.iter().enumerate().map(|(i, a)| item(a, i)).collect::<Vec<_>>().join(", ")),
                (3, false) => format!("  addresses: [\n{}\n  ]\n", list.iter().enumerate().map(|(i, a)| format!("      {}", item(a, i))).collect::<Vec<_>>().join(",\n")),
                _ => String::new(),
            };
            let relay_section = if style == 5 && list.is_empty() {
                String::new()
            } else if interval_first {
                format!("relay:\n{interval}{addresses}")
            } else {
                format!("relay:\n{addresses}{interval}")
            };
            let text = format!("version: 1\n{relay_section}\nnames: {{}}\n");
            let before = parse(&text);
            let addr = relay_pool()[pick].clone();
            if before.relay.addresses.contains(&addr) {
                let out = remove_relay(&text, &addr).unwrap();
                let mut expected = before.clone();
                expected.relay.addresses.retain(|a| a != &addr);
                prop_assert_eq!(parse(&out), expected);
                prop_assert!(out.starts_with("version: 1\nrelay:\n") && out.ends_with("\nnames: {}\n"), "{}", out);
            } else {
                let out = add_relay(&text, &addr).unwrap();
                let mut expected = before.clone();
                expected.relay.addresses.push(addr.clone());
                prop_assert_eq!(parse(&out), expected);
                prop_assert!(out.starts_with("version: 1\n"));
                prop_assert!(!out.contains('\t'));
                let back = remove_relay(&out, &addr).unwrap();
                prop_assert_eq!(parse(&back), before);
            }
        }
    }
}
