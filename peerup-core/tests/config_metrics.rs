//! `metrics:` in `peerup.yaml`: off when absent, loopback unless
//! `allow_remote: true`, each error at its line, and rendering.

// In a module so that `cargo test config` selects these tests.
mod config_metrics {
    use std::path::Path;

    use peerup_core::config::node::DEFAULT_METRICS_ADDRESS;
    use peerup_core::config::{Config, ConfigError, render_template};

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

    #[test]
    fn metrics_are_off_unless_configured() {
        assert_eq!(parse("version: 1\n").metrics, None);
        assert_eq!(parse("metrics:\n").metrics, None);
        let m = parse("metrics: {}\n").metrics.unwrap();
        assert_eq!(m.listen_address, DEFAULT_METRICS_ADDRESS);
        assert_eq!(m.listen_address.to_string(), "127.0.0.1:9091");
        assert!(!m.allow_remote);
        let m = parse("metrics:\n  listen_address: \"[::1]:9100\"\n")
            .metrics
            .unwrap();
        assert_eq!(m.listen_address.to_string(), "[::1]:9100");
    }

    #[test]
    fn refuses_a_remote_metrics_address_without_allow_remote() {
        let text = "version: 1\nmetrics:\n  listen_address: 0.0.0.0:9091\n";
        let e = error(text);
        let msg = e.to_string();
        assert!(matches!(e, ConfigError::Invalid { .. }), "{msg}");
        assert!(msg.contains("peerup.yaml"), "{msg}");
        assert!(msg.contains("metrics.listen_address"), "{msg}");
        assert!(msg.contains("allow_remote: true"), "{msg}");
        assert_eq!(e.location().map(|l| l.line), Some(3), "{msg}");
        let m = parse("metrics:\n  listen_address: 192.0.2.1:9091\n  allow_remote: true\n")
            .metrics
            .unwrap();
        assert!(m.allow_remote);
    }

    #[test]
    fn a_bad_metrics_address_is_named_at_its_line() {
        let e = error("version: 1\nmetrics:\n  listen_address: localhost:9091\n");
        let msg = e.to_string();
        assert!(msg.contains("metrics.listen_address"), "{msg}");
        assert_eq!(e.location().map(|l| l.line), Some(3), "{msg}");
        // An unknown key is a warning, as everywhere in the file.
        let (_, warnings) = Config::parse(
            Path::new("peerup.yaml"),
            "metrics:\n  listen: 127.0.0.1:9091\n",
        )
        .unwrap();
        assert!(
            warnings
                .iter()
                .any(|w| w.to_string().contains("metrics.listen")),
            "{warnings:?}"
        );
    }

    #[test]
    fn metrics_render_and_parse_back() {
        let mut c = parse("metrics:\n  listen_address: \"[::1]:9100\"\n");
        assert_eq!(parse(&c.render()), c);
        assert_eq!(parse(&c.render_commented()), c);
        c.metrics = None;
        assert_eq!(parse(&c.render()), c);
        // The template shows the section, commented out: metrics stay off.
        let template = render_template("identity.key", &[], None);
        assert!(template.contains("# metrics:"), "{template}");
        assert_eq!(parse(&template).metrics, None);
    }
}
