//! Replays every fuzz corpus and regression file through its target, on
//! stable Rust: `fuzz/corpus/<target>/*` (the seeds and what the fuzzer
//! kept) and `fuzz/regressions/<target>/*` (crash inputs that were fixed).
//! A property that breaks again fails here without nightly or cargo-fuzz.
//!
//! Run one target with `cargo test -p peerup-core --test fuzz_corpus names`.

use std::fs;
use std::path::{Path, PathBuf};

use peerup_core::fuzzing::{TARGETS, Target};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("read corpus directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn target(name: &str) -> Target {
    match TARGETS.iter().find(|(n, _)| *n == name) {
        Some((_, t)) => *t,
        None => panic!("no fuzz target {name} in peerup_core::fuzzing::TARGETS"),
    }
}

/// Runs every corpus and regression file of `name`; a failure names the
/// file (replay it with `cargo +nightly fuzz run <name> <file>`).
fn replay(name: &str) {
    let run = target(name);
    let corpus = files(&fuzz_dir().join("corpus").join(name));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{name}/ is empty or missing: the target would pass vacuously"
    );
    let regressions = files(&fuzz_dir().join("regressions").join(name));
    for file in corpus.iter().chain(&regressions) {
        let data = fs::read(file).expect("read corpus file");
        if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("{name}: {} fails: {message}", file.display());
        }
    }
}

macro_rules! replay {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*

        /// Every target has a test here, a corpus, and a cargo-fuzz binary,
        /// and every corpus or regression folder belongs to a target.
        #[test]
        fn every_target_is_replayed_and_built() {
            let here = [$(stringify!($name)),*];
            let mut names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
            names.sort_unstable();
            let mut sorted = here.to_vec();
            sorted.sort_unstable();
            assert_eq!(sorted, names, "tests/fuzz_corpus.rs and fuzzing::TARGETS differ");
            let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
            for name in &names {
                assert!(
                    manifest.contains(&format!("name = \"{name}\"")),
                    "fuzz/Cargo.toml has no [[bin]] {name}"
                );
                let body = fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs")))
                    .unwrap_or_else(|e| panic!("fuzz/fuzz_targets/{name}.rs: {e}"));
                assert!(
                    body.contains(&format!("peerup_core::fuzzing::{name}(data)")),
                    "fuzz/fuzz_targets/{name}.rs does not call peerup_core::fuzzing::{name}"
                );
            }
            for kind in ["corpus", "regressions"] {
                let Ok(dirs) = fs::read_dir(fuzz_dir().join(kind)) else { continue };
                for dir in dirs {
                    let dir = dir.expect("read fuzz directory").file_name();
                    let dir = dir.to_string_lossy();
                    assert!(names.contains(&&*dir), "fuzz/{kind}/{dir} belongs to no target");
                }
            }
        }
    };
}

replay!(
    invite_code,
    sealed_frame,
    invite_handshake,
    config_node,
    config_relay,
    authorized_keys,
    relay_addr,
    names,
    pingpong,
    half_close,
    confirm,
    reservation,
    pairing_code,
    relay_pair,
    peer_notify,
);
