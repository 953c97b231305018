//! Terminal output: logs, errors, progress.

use std::io::IsTerminal;
use std::time::Duration;

/// Sets up logging: `RUST_LOG` wins, else `-v`/`-q`. The daemon logs at
/// info by default (it is a service); other commands only show warnings,
/// so their own output stays readable.
pub(crate) fn init_logs(verbose: u8, quiet: bool, daemon: bool) {
    let default = match (quiet, verbose, daemon) {
        (true, _, _) => "warn",
        (false, 0, true) => "info,libp2p=warn,libp2p_kad=error,yamux=error",
        (false, 0, false) => "warn,libp2p=error,yamux=error",
        (false, 1, _) => "debug,libp2p=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// An error and its causes as one line, each cause once.
pub(crate) fn text(e: &anyhow::Error) -> String {
    peerup_net::error::chain(e.as_ref()).replace('\n', "; ")
}

/// Prints an error as one line on stderr.
pub(crate) fn error(e: &anyhow::Error) {
    let msg = text(e);
    eprintln!("error: {msg}");
}

/// `text` as a QR code for the terminal (half-block characters, two
/// modules per row, error correction M, with the quiet zone); `None` when
/// it does not fit in one.
pub(crate) fn qr(text: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Dark)
            .light_color(Dense1x2::Light)
            .quiet_zone(true)
            .build(),
    )
}

/// Whether stdout is a terminal (colour, spinners, prompts).
pub(crate) fn interactive() -> bool {
    std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// `1h02m`, `4m05s`, `12s`.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// A spinner on stderr when it is a terminal; silent otherwise.
pub(crate) fn spinner(message: &str) -> indicatif::ProgressBar {
    if std::io::stderr().is_terminal() {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.enable_steady_tick(Duration::from_millis(120));
        pb.set_message(message.to_owned());
        pb
    } else {
        indicatif::ProgressBar::hidden()
    }
}

/// `added a, b; removed c; changed d`: the non-empty lists of a live
/// change (services, forwards), or `None` when all are empty.
pub(crate) fn changes(lists: [(&str, &[peerup_core::wire::label::DnsLabel]); 3]) -> Option<String> {
    let parts: Vec<String> = lists
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(what, v)| {
            let names: Vec<String> = v.iter().map(ToString::to_string).collect();
            format!("{what} {}", names.join(", "))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod qr_tests {
    use super::*;

    #[test]
    fn renders_an_invite_sized_code() {
        let code = "AEAS-GRLH-RGV4-336L-ABYQ-OHTB-EYAC-ICAB-CIQJ-URQQ-A4VQ-VYOH-X7AK-G7OP-AC77-ZTZF-DIVQ-7MTL-TDTI-2AWC-PI43-2VYA-AASA-QAIS-EDHM-YFIH-3QO5-24UV-SUOC-SCEI-6CK2-3OIE-JUNX-HVUN-P2RM-N2VB-3WTU-S";
        let art = qr(code).unwrap();
        let lines: Vec<&str> = art.lines().collect();
        assert!(lines.len() > 20);
        // Square: half as many rows as columns, give or take the odd row.
        let width = lines[0].chars().count();
        assert!(
            (lines.len() * 2).abs_diff(width) <= 2,
            "{} x {}",
            width,
            lines.len()
        );
        assert!(
            art.chars()
                .all(|c| matches!(c, ' ' | '█' | '▀' | '▄' | '\n'))
        );
    }

    #[test]
    fn too_long_is_an_error() {
        assert!(qr(&"A".repeat(8000)).is_none());
    }
}
