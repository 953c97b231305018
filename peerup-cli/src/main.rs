//! `peerup`: reach your own machines (SSH, RDP, HTTP, SMB, any TCP service)
//! across CGNAT and firewalls, with SSH-style `authorized_keys`.
//!
//! A thin shell over `peerup-tokio`: argument parsing, files, terminal
//! output, and the daemon's service-manager duties (sd_notify, signals, the
//! control socket).

// Doc comments on clap arguments are `--help` text, not rustdoc: brackets
// there (`[IPv6]:PORT`) are literal, never intra-doc links.
#![allow(rustdoc::broken_intra_doc_links)]

mod cmd;
mod context;
mod control;
mod forwards;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");
pub(crate) const COMMIT: &str = env!("PEERUP_GIT_COMMIT");
pub(crate) const BUILD_DATE: &str = env!("PEERUP_BUILD_DATE");

/// Exit code a daemon uses to ask its service manager for a restart (after
/// `config apply`, or a commit-confirmed revert).
pub(crate) const EXIT_RESTART: u8 = 75;

#[derive(Parser, Debug)]
#[command(
    name = "peerup",
    version = VERSION,
    about = "Reach your own machines across NAT: SSH, RDP, HTTP, any TCP service",
    long_about = "peerup connects your machines through a relay you run (circuit relay v2), punches \
                  direct holes through NAT where it can (DCUtR), and exposes local TCP services to \
                  the peers in authorized_keys only.",
    after_help = "Quick start:\n  peerup init --relay <relay-multiaddr>         on each machine\n  \
                  peerup invite --name home                     on the server, then on the laptop:\n  \
                  peerup join <code> --name laptop\n  peerup service add ssh localhost:22           on the server\n  peerup daemon                                 on the server (exposes services)\n  \
                  peerup proxy home ssh 2222                    on the laptop; then ssh -p 2222 user@localhost\n\n\
                  Config: --config <path>, else ./peerup.yaml, ~/.config/peerup/config.yaml, /etc/peerup/config.yaml.\n\
                  Logs: RUST_LOG=debug, or -v / -q. Threads: PEERUP_WORKER_THREADS (default 1, the daemon 2).\n\
                  QUIC packets past 1,452 bytes where a path's link allows: PEERUP_QUIC_PATH_MTU=on|off (default on).\n\
                  Exit codes: 0 ok, 1 failure, 2 usage error."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
pub(crate) struct Global {
    /// Config file (default: ./peerup.yaml, ~/.config/peerup/config.yaml,
    /// /etc/peerup/config.yaml, first found).
    #[arg(long, global = true, value_name = "PATH", env = "PEERUP_CONFIG")]
    pub config: Option<PathBuf>,
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Create a config, identity key and authorized_keys (interactive wizard).
    #[command(
        after_help = "Examples:\n  peerup init\n  peerup init --relay /ip4/203.0.113.7/tcp/7777/p2p/12D3KooW... --yes\n  peerup init --relay 203.0.113.7 --relay-peer-id 12D3KooW... --dir /etc/peerup --yes"
    )]
    Init(cmd::init::InitArgs),
    /// Run the node: keep relay reservations, expose services, accept authorized peers.
    #[command(
        alias = "serve",
        after_help = "Examples:\n  peerup daemon\n  peerup daemon --config /etc/peerup/config.yaml\n\nAs a systemd service: see configs/peerup.service (Type=notify, WatchdogSec=90)."
    )]
    Daemon,
    /// Forward a local TCP port to a service on a peer (now, or kept by
    /// the daemon with --persist).
    Proxy(cmd::proxy::ProxyArgs),
    /// Test connectivity to a peer (DIRECT or RELAYED, round-trip time).
    #[command(
        after_help = "Examples:\n  peerup ping home\n  peerup ping home -c 10 --interval 500ms\n  peerup ping 12D3KooW... --json"
    )]
    Ping(cmd::ping::PingArgs),
    /// Create a one-time invite code (and QR code) and wait for a peer to join.
    #[command(
        after_help = "Examples:\n  peerup invite --name home\n  peerup invite --ttl 30m\n  peerup invite --non-interactive > code.txt"
    )]
    Invite(cmd::invite::InviteArgs),
    /// Join a peer's invite: mutual authorization and names, in one step.
    #[command(
        after_help = "Examples:\n  peerup join AEAS-GRLH-... --name laptop\n  PEERUP_INVITE_CODE=AEAS-GRLH-... peerup join\n  peerup join < code.txt\n\nIn scripts (never prompts; prints only the paired peer on stdout):\n  peer=$(PEERUP_INVITE_CODE=\"$code\" peerup join --non-interactive --name laptop)\n  peerup join --non-interactive \"$code\"\n\nThe code comes from `peerup invite` on the other machine (valid once, 10 minutes by default)."
    )]
    Join(cmd::join::JoinArgs),
    /// Show this machine's peer ID.
    Whoami,
    /// Compare the verification code of this machine and a peer with what
    /// the peer shows, and record the match (`verified=`).
    #[command(
        after_help = "Examples:\n  peerup verify laptop            show the code, ask, record a match\n  peerup verify laptop --show     only show it\n  peerup verify laptop --yes      record a match you have checked\n\nBoth machines show the same emoji and number only if each holds the other's\nreal key: a machine in the middle of the pairing would show different ones."
    )]
    Verify(cmd::verify::VerifyArgs),
    /// Manage authorized peers (authorized_keys).
    #[command(subcommand)]
    Auth(cmd::auth::AuthCommand),
    /// Manage relay addresses.
    #[command(subcommand)]
    Relay(cmd::relay::RelayCommand),
    /// Manage exposed services (a running daemon applies changes at once).
    #[command(
        subcommand,
        after_help = "Examples:\n  peerup service add ssh localhost:22\n  peerup service add web 127.0.0.1:8080 --allow laptop\n  peerup service list\n  peerup service disable web\n  peerup service enable web\n  peerup service remove web\n\nThe config keeps its comments. With a daemon running, each change is applied live and\nthe command fails unless the daemon confirms it; connections a change no longer allows are cut."
    )]
    Service(cmd::service::ServiceCommand),
    /// Validate, show, apply (commit-confirmed), confirm or roll back the config.
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
    /// Show the running daemon: addresses, reservations, peers, services, proxies.
    #[command(after_help = "Examples:\n  peerup status\n  peerup status --json")]
    Status(cmd::status::StatusArgs),
    /// Find out what does not work, and how to fix it: files, daemon,
    /// relays, NAT, a peer.
    #[command(
        long_about = "Checks, one line each: ok / warn / FAIL / skip, and the fix for each one not ok.\n\n  config, identity, authorized_keys\n      the files load, with safe modes and owners (0600, yours or root's);\n      an invalid authorized_keys line is named by its number\n  relay.addresses\n      at least one relay address, all valid\n  daemon\n      a daemon answers on the control socket (without one, peers cannot\n      reach this machine)\n  udp.buffers\n      net.core.rmem_max and wmem_max hold the 7.5 MB QUIC asks for\n  relay.tcp, relay.quic, relay.ws, relay.wss\n      each relay address dialed on its own connection: the connect time,\n      the libp2p ping round trip, and the address the relay sees us at\n  relay.reservation\n      the relay accepts this machine (refused: not in its\n      relay_authorized_keys); with a daemon running, the daemon's\n      reservations are reported instead\n  nat\n      the NAT's mapping, from what two relay addresses observe of one\n      local socket: endpoint-independent (hole punching can work) or\n      endpoint-dependent (\"symmetric\": connections stay relayed); one\n      observer is not enough to tell\n  gateway.upnp, gateway.natpmp\n      whether the router offers UPnP IGD or NAT-PMP (not required)\n  peer.authorized, peer.reachable (with <PEER>)\n      is it in authorized_keys; can it be reached, over which path\n      (RELAYED, or DIRECT after a hole punch), and if not, why\n\nExit status: 0 when nothing FAILed, 1 otherwise. The network checks\nshare --timeout (default 15 s). Details: docs/DOCTOR.md.",
        after_help = "Examples:\n  peerup doctor\n  peerup doctor home\n  peerup doctor home --json | jq '.checks[] | select(.status == \"fail\")'\n  peerup doctor --timeout 30s\n\nSee docs/DOCTOR.md."
    )]
    Doctor(cmd::doctor::DoctorArgs),
    /// Print version, git commit and build date.
    Version,
    /// Run a whole network on this machine (relay + two peers on 127.0.0.1) and show it working.
    #[command(
        after_help = "Examples:\n  peerup demo\n  peerup demo --keep      then curl / nc the printed ports"
    )]
    Demo(cmd::demo::DemoArgs),
    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  peerup completions bash > /etc/bash_completion.d/peerup\n  peerup completions zsh > ~/.zfunc/_peerup"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    // Before any thread or allocation of note: see peerup_net::memory.
    peerup_net::memory::tune_for_throughput();
    peerup_net::memory::keep_large_buffers();
    let cli = Cli::parse();
    ui::init_logs(
        cli.global.verbose,
        cli.global.quiet,
        matches!(cli.command, Command::Daemon),
    );
    let result = match cli.command {
        Command::Version => {
            println!("peerup {VERSION} (commit {COMMIT}, built {BUILD_DATE})");
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "peerup", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        command => cmd::run(&cli.global, command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            ui::error(&e);
            ExitCode::FAILURE
        }
    }
}
