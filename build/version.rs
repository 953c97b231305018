//! The build script of the `peerup` and `peerup-relay` binaries (one file,
//! named by both packages' `build` key): records the git commit and the
//! build date for `peerup version` and `peerup-relay version`.

use std::process::Command;

/// The standard output of `program args`, trimmed, if it ran and succeeded.
fn output(program: &str, args: &[&str]) -> Option<String> {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
}

fn main() {
    let commit =
        output("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let date = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .map(|s| s.trim().to_owned())
        .or_else(|| output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PEERUP_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=PEERUP_BUILD_DATE={date}");
    // HEAD names the branch; a commit moves the branch's ref (a directory
    // is scanned whole).
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
}
