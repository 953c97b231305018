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

/// Prints an error as one line on stderr.
pub(crate) fn error(e: &anyhow::Error) {
    let msg = format!("{e:#}").replace('\n', "; ");
    eprintln!("error: {msg}");
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
