//! `forwards:` in `peerup.yaml`: parsing, validation (each error at its
//! line), rendering, and the comment-keeping edits `peerup proxy
//! --persist/--remove` make.

// In a module so that `cargo test config` selects these tests.
mod config_forwards {
    use std::net::SocketAddr;
    use std::path::Path;

    use peerup_core::config::edit::{EditError, add_forward, remove_forward, remove_name};
    use peerup_core::config::node::{Forward, MAX_FORWARDS, PeerRef};
    use peerup_core::config::{Config, ConfigError, render_template};
    use peerup_core::naming::Name;
    use peerup_core::wire::label::DnsLabel;
    use proptest::prelude::*;

    const HOME: &str = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
    const PHONE: &str = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA";

    fn parse(text: &str) -> Config {
        Config::parse(Path::new("peerup.yaml"), text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
            .0
    }

    fn error(text: &str) -> ConfigError {
        match Config::parse(Path::new("peerup.yaml"), text) {
            Ok(_) => panic!("loaded:\n{text}"),
            Err(e) => e,
        }
    }

    fn label(s: &str) -> DnsLabel {
        DnsLabel::new(s).unwrap()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn forward(peer: &str, service: &str, local: &str) -> Forward {
        let peer = match peer.parse() {
            Ok(id) => PeerRef::Id(id),
            Err(_) => PeerRef::Name(Name::new(peer).unwrap()),
        };
        Forward::new(peer, label(service), addr(local))
    }

    const NAMES: &str =
        "names:\n  home: \"12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL\"\n";

    #[test]
    fn reads_forwards_with_their_defaults_and_resolves_names() {
        let text = format!(
            "forwards:\n  home-ssh:          # mine\n    peer: home\n    service: ssh\n    local_address: 127.0.0.1:2222\n  phone-web:\n    peer: {PHONE}\n    service: web\n    local_address: \"[::1]:8080\"\n    enabled: false\n{NAMES}"
        );
        let c = parse(&text);
        assert_eq!(c.forwards.len(), 2);
        let ssh = &c.forwards[&label("home-ssh")];
        assert_eq!(ssh, &forward("home", "ssh", "127.0.0.1:2222"));
        assert!(ssh.enabled);
        assert_eq!(ssh.resolve_peer(&c.names).unwrap().to_string(), HOME);
        let web = &c.forwards[&label("phone-web")];
        assert!(!web.enabled);
        assert_eq!(web.local_address, addr("[::1]:8080"));
        assert_eq!(web.resolve_peer(&c.names).unwrap().to_string(), PHONE);
        // One on every interface is accepted, with a warning at its line.
        let (_, warnings) = Config::parse(
            Path::new("peerup.yaml"),
            &text.replace("127.0.0.1:2222", "0.0.0.0:2222"),
        )
        .unwrap();
        let w: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert!(
            w.iter().any(|w| w.contains("peerup.yaml:5:")
                && w.contains(
                    "forward `home-ssh` listens on 0.0.0.0:2222, reachable beyond this machine"
                )),
            "{w:?}"
        );
        // `forwards:` empty in every spelling: none.
        for empty in ["forwards:", "forwards: {}", "forwards: ~"] {
            assert!(parse(&format!("version: 1\n{empty}\n")).forwards.is_empty());
        }
    }

    /// Every bad value is refused with the field and the line it is on.
    #[test]
    fn refuses_bad_forwards_at_their_line() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "forwards:\n  a:\n    peer: laptop\n    service: ssh\n    local_address: 127.0.0.1:2222\n",
                "peerup.yaml:3:5: forwards.a.peer:",
                "`laptop` is neither a peer ID nor a name",
            ),
            (
                "forwards:\n  a:\n    peer: home\n    service: kad\n    local_address: 127.0.0.1:2222\n",
                "peerup.yaml:4:14: forwards.a.service:",
                "reserved",
            ),
            (
                "forwards:\n  a:\n    peer: home\n    service: Bad_Name\n    local_address: 127.0.0.1:2222\n",
                "peerup.yaml:4:14: forwards.a.service:",
                "service name",
            ),
            (
                "forwards:\n  a:\n    peer: home\n    service: ssh\n    local_address: localhost:2222\n",
                "peerup.yaml:5:20: forwards.a.local_address:",
                "an IP, not a host name",
            ),
            (
                "forwards:\n  a:\n    peer: home\n    service: ssh\n    local_address: 127.0.0.1:0\n",
                "peerup.yaml:5:20: forwards.a.local_address:",
                "port 0",
            ),
            (
                "forwards:\n  a:\n    peer: home\n    service: ssh\n    local_address: 2222\n",
                "peerup.yaml:5:20: forwards.a.local_address:",
                "not an IP address and port",
            ),
            (
                "forwards:\n  a:\n    peer: home\n    service: ssh\n",
                "forwards.a",
                "local_address",
            ),
            (
                "forwards:\n  Not_A_Label:\n    peer: home\n    service: ssh\n    local_address: 127.0.0.1:1\n",
                "peerup.yaml:2:3: forwards.Not_A_Label:",
                "forward name",
            ),
            (
                "forwards:\n  a:\n    peer: home\n    service: ssh\n    local_address: 127.0.0.1:2222\n  a:\n    peer: home\n    service: web\n    local_address: 127.0.0.1:2223\n",
                "peerup.yaml:6:3:",
                "duplicate key `a`",
            ),
            (
                "forwards:\n  a:\n    peer: home\n    service: ssh\n    local_address: 127.0.0.1:2222\n  b:\n    peer: home\n    service: web\n    local_address: 127.0.0.1:2222\n",
                "peerup.yaml:9:5: forwards.b.local_address:",
                "takes the same port as forward `a`",
            ),
            (
                "forwards:\n  a:\n    peer: home\n    service: ssh\n    local_address: 0.0.0.0:2222\n  b:\n    peer: home\n    service: web\n    local_address: 192.168.1.5:2222\n",
                "forwards.b.local_address",
                "takes the same port as forward `a` (0.0.0.0:2222)",
            ),
            (
                "forwards:\n  a:\n    peer: home\n    service: ssh\n    local_address: 127.0.0.1:2222\n    colour: blue\n    enabled: maybe\n",
                "peerup.yaml:7:14: forwards.a.enabled:",
                "",
            ),
        ];
        for (body, at, why) in cases {
            let text = format!("{body}{NAMES}");
            let e = error(&text).to_string();
            assert!(e.contains(at), "{body}: {e}");
            assert!(e.contains(why), "{body}: {e}");
        }
        // Different ports, or the same port on two specific IPs: fine.
        let text = format!(
            "forwards:\n  a:\n    peer: home\n    service: ssh\n    local_address: 127.0.0.1:2222\n  b:\n    peer: home\n    service: ssh\n    local_address: 127.0.0.2:2222\n  c:\n    peer: home\n    service: ssh\n    local_address: \"[::1]:2222\"\n{NAMES}"
        );
        assert_eq!(parse(&text).forwards.len(), 3);
    }

    #[test]
    fn refuses_more_than_the_bound() {
        let mut text = String::from("forwards:\n");
        for i in 0..=MAX_FORWARDS {
            text.push_str(&format!(
                "  f{i}:\n    peer: {HOME}\n    service: ssh\n    local_address: 127.0.0.1:{}\n",
                10_000 + i
            ));
        }
        let e = error(&text).to_string();
        assert!(
            e.contains("peerup.yaml:1:1: forwards: 257 forwards; at most 256"),
            "{e}"
        );
        // One fewer loads.
        let cut = text.find("  f256:").unwrap();
        assert_eq!(parse(&text[..cut]).forwards.len(), MAX_FORWARDS);
    }

    #[test]
    fn renders_and_reads_back() {
        let mut c = parse(NAMES);
        c.forwards
            .insert(label("home-ssh"), forward("home", "ssh", "127.0.0.1:2222"));
        let mut off = forward(PHONE, "web", "[::1]:8080");
        off.enabled = false;
        c.forwards.insert(label("off"), off);
        for text in [c.render(), c.render_commented()] {
            assert_eq!(parse(&text), c, "{text}");
        }
        assert!(
            c.render().contains(
                "forwards:\n  home-ssh:\n    peer: \"home\"\n    service: \"ssh\"\n    local_address: \"127.0.0.1:2222\"\n    enabled: true\n"
            ),
            "{}",
            c.render()
        );
        // The init template: an empty section with a commented example.
        let template = render_template("identity.key", &[], None);
        assert!(
            template.contains("\nforwards: {}\n#  home-ssh:\n"),
            "{template}"
        );
        assert!(parse(&template).forwards.is_empty());
    }

    #[test]
    fn adds_to_the_init_template_and_removes_back_keeping_comments() {
        let template = render_template("identity.key", &[], None)
            .replace("names: {}", &format!("names:\n  home: \"{HOME}\""));
        let ssh = forward("home", "ssh", "127.0.0.1:2222");
        let out = add_forward(&template, &label("home-ssh"), &ssh).unwrap();
        let mut expected = parse(&template);
        expected.forwards.insert(label("home-ssh"), ssh.clone());
        assert_eq!(parse(&out), expected);
        assert!(
            out.contains(
                "forwards:\n  home-ssh:\n    peer: \"home\"\n    service: \"ssh\"\n    local_address: \"127.0.0.1:2222\"\n    enabled: true\n#  home-ssh:\n"
            ),
            "{out}"
        );
        // A second one goes after the first.
        let web = forward(PHONE, "web", "0.0.0.0:8080");
        let two = add_forward(&out, &label("web"), &web).unwrap();
        assert!(
            two.contains("    enabled: true\n  web:\n    peer: \"12D3KooWPjce"),
            "{two}"
        );
        // Removing both gives `forwards: {}` and the template's config.
        let one = remove_forward(&two, &label("home-ssh")).unwrap();
        assert_eq!(parse(&one).forwards.len(), 1);
        let none = remove_forward(&one, &label("web")).unwrap();
        assert_eq!(none, template);
        for comment in template.lines().filter(|l| l.starts_with('#')) {
            assert!(two.contains(comment), "lost {comment:?}");
        }
    }

    #[test]
    fn appends_a_section_to_a_file_without_one_and_keeps_crlf() {
        let text = "version: 1  # mine\r\nnames:\r\n  home: \"12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL\"\r\n";
        let f = forward("home", "ssh", "127.0.0.1:2222");
        let out = add_forward(text, &label("a"), &f).unwrap();
        assert_eq!(
            out,
            format!(
                "{text}\r\nforwards:\r\n  a:\r\n    peer: \"home\"\r\n    service: \"ssh\"\r\n    local_address: \"127.0.0.1:2222\"\r\n    enabled: true\r\n"
            )
        );
        let back = remove_forward(&out, &label("a")).unwrap();
        assert_eq!(parse(&back), parse(text));
        assert!(back.ends_with("\r\nforwards: {}\r\n"), "{back:?}");
    }

    #[test]
    fn edits_refuse_with_the_reason() {
        let text = format!(
            "forwards:\n  a:\n    peer: home\n    service: ssh\n    local_address: 127.0.0.1:2222\n{NAMES}"
        );
        let f = |local| forward("home", "web", local);
        assert!(matches!(
            add_forward(&text, &label("a"), &f("127.0.0.1:1")),
            Err(EditError::ForwardExists { .. })
        ));
        let e = add_forward(&text, &label("b"), &f("0.0.0.0:2222")).unwrap_err();
        assert!(
            e.to_string()
                .contains("forward `b`: 0.0.0.0:2222 takes the same port as forward `a`"),
            "{e}"
        );
        let e =
            add_forward(&text, &label("b"), &forward("laptop", "ssh", "127.0.0.1:1")).unwrap_err();
        assert!(
            e.to_string()
                .contains("peer `laptop` is not in names (known: home)"),
            "{e}"
        );
        let e = remove_forward(&text, &label("zz")).unwrap_err();
        assert_eq!(e.to_string(), "no forward `zz` in forwards (configured: a)");
        let e = remove_name(&text, &Name::new("home").unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "name `home` is used in forwards.a.peer; remove the forward first"
        );
        let flow = format!(
            "forwards: {{a: {{peer: home, service: ssh, local_address: \"127.0.0.1:1\"}}}}\n{NAMES}"
        );
        assert!(matches!(
            add_forward(&flow, &label("b"), &f("127.0.0.1:2")),
            Err(EditError::Unsupported { .. })
        ));
        // Full: the 257th is refused before anything is written.
        let mut full = String::from("forwards:\n");
        for i in 0..MAX_FORWARDS {
            full.push_str(&format!(
                "  f{i}:\n    peer: {HOME}\n    service: ssh\n    local_address: 127.0.0.1:{}\n",
                10_000 + i
            ));
        }
        full.push_str(NAMES);
        let e = add_forward(&full, &label("more"), &f("127.0.0.1:1")).unwrap_err();
        assert!(e.to_string().contains("at most 256 forwards"), "{e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Forwards rendered (plain or commented) read back as written;
        /// adding one then removing it gives the config back, and the
        /// file back byte for byte when others remain.
        #[test]
        fn render_add_remove_round_trip(
            existing in prop::collection::btree_map(
                "[a-z][a-z0-9-]{0,6}",
                (1u16..60_000, any::<bool>(), any::<bool>(), 0u8..3),
                0..6,
            ),
            n in "[a-z][a-z0-9-]{0,6}",
            port in 1u16..60_000,
            commented in any::<bool>(),
        ) {
            let mut c = parse(NAMES);
            let mut ports = std::collections::BTreeSet::new();
            for (k, (p, by_name, enabled, ip)) in &existing {
                let Ok(l) = DnsLabel::new(k) else { continue };
                if !ports.insert(*p) {
                    continue;
                }
                let ip = ["127.0.0.1", "0.0.0.0", "[::1]"][*ip as usize];
                let mut f = forward(if *by_name { "home" } else { PHONE }, "ssh", &format!("{ip}:{p}"));
                f.enabled = *enabled;
                c.forwards.insert(l, f);
            }
            let text = if commented { c.render_commented() } else { c.render() };
            prop_assert_eq!(parse(&text), c.clone());
            let Ok(l) = DnsLabel::new(&n) else { return Ok(()) };
            let f = forward("home", "web", &format!("127.0.0.1:{port}"));
            match add_forward(&text, &l, &f) {
                Ok(out) => {
                    let mut expected = c.clone();
                    expected.forwards.insert(l.clone(), f);
                    prop_assert_eq!(parse(&out), expected);
                    let back = remove_forward(&out, &l).unwrap();
                    prop_assert_eq!(parse(&back), c.clone());
                    if !c.forwards.is_empty() {
                        prop_assert_eq!(back, text);
                    }
                }
                Err(EditError::ForwardExists { .. }) => prop_assert!(c.forwards.contains_key(&l)),
                Err(EditError::InvalidForward { .. }) => {
                    prop_assert!(c.forwards.values().any(|o| o.conflicts_with(&f)));
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}
