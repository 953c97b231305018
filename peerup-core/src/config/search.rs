//! Where `peerup.yaml` is (WIRE.md §9 search order), as a pure function.
//!
//! Input: the `--config` argument, the current directory, the home
//! directory and a predicate saying whether a path exists (the caller's
//! `Path::exists`). Output: the config path to read, or an error listing
//! every place searched.
//!
//! Order: `--config` (and only it, when given), `./peerup.yaml`,
//! `~/.config/peerup/config.yaml`, `/etc/peerup/config.yaml`.

use std::path::{Path, PathBuf};

/// The file name looked for in the current directory.
pub const LOCAL_FILE: &str = "peerup.yaml";
/// The file name inside the config directory.
pub const CONFIG_FILE: &str = "config.yaml";
/// The system-wide config.
pub const SYSTEM_PATH: &str = "/etc/peerup/config.yaml";

/// No config file was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// `--config <path>` names a file that does not exist.
    #[error("config file {} does not exist (given with --config)", path.display())]
    ExplicitMissing {
        /// The path as resolved against the current directory.
        path: PathBuf,
    },
    /// None of the standard places holds a config.
    #[error(
        "no config file found (searched {}); run `peerup init` or pass --config <path>",
        list(searched)
    )]
    NotFound {
        /// Every path searched, in order.
        searched: Vec<PathBuf>,
    },
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `~/.config/peerup`: where `peerup init` writes by default.
pub fn default_config_dir(home: &Path) -> PathBuf {
    home.join(".config").join("peerup")
}

/// `~/.config/peerup/config.yaml`.
pub fn default_config_path(home: &Path) -> PathBuf {
    default_config_dir(home).join(CONFIG_FILE)
}

/// The paths searched without `--config`, in order (the home one only
/// when `home` is known).
pub fn candidates(cwd: &Path, home: Option<&Path>) -> Vec<PathBuf> {
    let mut out = vec![cwd.join(LOCAL_FILE)];
    if let Some(home) = home {
        out.push(default_config_path(home));
    }
    out.push(PathBuf::from(SYSTEM_PATH));
    out
}

/// Finds the config file.
///
/// An `explicit` path (from `--config`) wins and is resolved against
/// `cwd`; it must exist. Otherwise the first existing of [`candidates`].
///
/// # Errors
/// [`SearchError::ExplicitMissing`] naming the given path, or
/// [`SearchError::NotFound`] listing every path searched.
pub fn search(
    explicit: Option<&Path>,
    cwd: &Path,
    home: Option<&Path>,
    exists: impl Fn(&Path) -> bool,
) -> Result<PathBuf, SearchError> {
    if let Some(path) = explicit {
        let path = cwd.join(path);
        return if exists(&path) {
            Ok(path)
        } else {
            Err(SearchError::ExplicitMissing { path })
        };
    }
    let searched = candidates(cwd, home);
    match searched.iter().find(|p| exists(p)) {
        Some(found) => Ok(found.clone()),
        None => Err(SearchError::NotFound { searched }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(paths: &'static [&'static str]) -> impl Fn(&Path) -> bool {
        move |p: &Path| paths.iter().any(|x| Path::new(x) == p)
    }

    const CWD: &str = "/work/dir";
    const HOME: &str = "/home/ada";

    fn find(
        explicit: Option<&str>,
        existing: &'static [&'static str],
    ) -> Result<PathBuf, SearchError> {
        search(
            explicit.map(Path::new),
            Path::new(CWD),
            Some(Path::new(HOME)),
            only(existing),
        )
    }

    #[test]
    fn explicit_path_wins() {
        let all = &[
            "/tmp/x.yaml",
            "/work/dir/peerup.yaml",
            "/home/ada/.config/peerup/config.yaml",
        ];
        assert_eq!(
            find(Some("/tmp/x.yaml"), all),
            Ok(PathBuf::from("/tmp/x.yaml"))
        );
    }

    #[test]
    fn relative_explicit_path_is_joined_to_cwd() {
        assert_eq!(
            find(Some("my.yaml"), &["/work/dir/my.yaml"]),
            Ok(PathBuf::from("/work/dir/my.yaml"))
        );
    }

    #[test]
    fn missing_explicit_path_is_an_error_even_if_others_exist() {
        let err = find(Some("/tmp/x.yaml"), &["/work/dir/peerup.yaml"]).unwrap_err();
        assert_eq!(
            err,
            SearchError::ExplicitMissing {
                path: PathBuf::from("/tmp/x.yaml")
            }
        );
        assert!(err.to_string().contains("/tmp/x.yaml"), "{err}");
    }

    #[test]
    fn falls_back_in_order() {
        let every = &[
            "/work/dir/peerup.yaml",
            "/home/ada/.config/peerup/config.yaml",
            "/etc/peerup/config.yaml",
        ];
        assert_eq!(
            find(None, every),
            Ok(PathBuf::from("/work/dir/peerup.yaml"))
        );
        assert_eq!(
            find(
                None,
                &[
                    "/home/ada/.config/peerup/config.yaml",
                    "/etc/peerup/config.yaml"
                ]
            ),
            Ok(PathBuf::from("/home/ada/.config/peerup/config.yaml"))
        );
        assert_eq!(
            find(None, &["/etc/peerup/config.yaml"]),
            Ok(PathBuf::from("/etc/peerup/config.yaml"))
        );
    }

    #[test]
    fn not_found_lists_every_path_and_the_fix() {
        let err = find(None, &[]).unwrap_err();
        let SearchError::NotFound { searched } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            searched,
            &[
                PathBuf::from("/work/dir/peerup.yaml"),
                PathBuf::from("/home/ada/.config/peerup/config.yaml"),
                PathBuf::from("/etc/peerup/config.yaml")
            ]
        );
        let msg = err.to_string();
        assert!(msg.contains(
            "/work/dir/peerup.yaml, /home/ada/.config/peerup/config.yaml, /etc/peerup/config.yaml"
        ));
        assert!(
            msg.contains("run `peerup init` or pass --config <path>"),
            "{msg}"
        );
    }

    #[test]
    fn without_home_skips_the_home_path() {
        let err = search(None, Path::new(CWD), None, |_: &Path| false).unwrap_err();
        assert_eq!(
            err,
            SearchError::NotFound {
                searched: vec![
                    PathBuf::from("/work/dir/peerup.yaml"),
                    PathBuf::from("/etc/peerup/config.yaml")
                ]
            }
        );
    }

    #[test]
    fn default_dir() {
        assert_eq!(
            default_config_dir(Path::new(HOME)),
            PathBuf::from("/home/ada/.config/peerup")
        );
        assert_eq!(
            default_config_path(Path::new(HOME)),
            PathBuf::from("/home/ada/.config/peerup/config.yaml")
        );
    }
}
