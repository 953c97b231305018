//! Finding, reading and checking the config and the files beside it.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};
use peerup_core::config::{self, Config};
use peerup_net::fs;
use peerup_net::node::NodeOptions;

use crate::Global;

/// A loaded config.
pub(crate) struct Ctx {
    /// The config file.
    pub path: PathBuf,
    /// Its text as read.
    pub text: String,
    /// Parsed.
    pub config: Config,
}

/// The user's home directory.
pub(crate) fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// The config file by the search order of WIRE.md §9.
pub(crate) fn find(global: &Global) -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let home = home();
    config::search(global.config.as_deref(), &cwd, home.as_deref(), |p| {
        p.exists()
    })
    .map_err(anyhow::Error::from)
}

/// Reads and parses the config (refusing loose permissions), printing
/// warnings to stderr.
pub(crate) fn load(global: &Global) -> Result<Ctx> {
    let path = find(global)?;
    load_path(&path, true)
}

/// [`load`] for a known path.
pub(crate) fn load_path(path: &Path, warn: bool) -> Result<Ctx> {
    let bytes = fs::read_private(path)?;
    let text =
        String::from_utf8(bytes).map_err(|_| anyhow!("{}: not UTF-8 text", path.display()))?;
    let (config, warnings) = Config::parse(path, &text)?;
    if warn {
        for w in warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(Ctx {
        path: path.to_owned(),
        text,
        config,
    })
}

/// The control socket of the daemon of the config at `config_path` (in
/// the config's directory).
pub(crate) fn control_socket(config_path: &Path) -> PathBuf {
    let dir = match config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    dir.join("peerup.sock")
}

impl Ctx {
    /// The daemon's control socket.
    pub(crate) fn socket(&self) -> PathBuf {
        control_socket(&self.path)
    }

    /// The authorized_keys file.
    pub(crate) fn authorized_keys(&self) -> PathBuf {
        self.config.authorized_keys_path(&self.path)
    }

    /// Node options from the config.
    pub(crate) fn node_options(&self) -> Result<NodeOptions> {
        NodeOptions::from_config(&self.config, &self.path).map_err(anyhow::Error::from)
    }

    /// Re-reads the config from disk.
    pub(crate) fn reload(&self) -> Result<Ctx> {
        load_path(&self.path, false)
    }
}

/// Writes `text` to `path` atomically, mode 0600.
pub(crate) fn write(path: &Path, text: &str) -> Result<()> {
    fs::write_atomic(path, text.as_bytes()).map_err(anyhow::Error::from)
}
