#!/usr/bin/env bash
# The full peerup test suite: the one command README.md gives and CI runs.
# Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "peerup-core stays sans-IO (no runtime, socket or swarm crate)"
forbidden='^(tokio|async-std|async-io|async-global-executor|smol|mio|socket2|libp2p-swarm|libp2p-tcp|libp2p-quic|libp2p-dns|libp2p-core|if-watch|futures-timer) '
if cargo tree --locked -p peerup-core -e normal --prefix none | grep -E "$forbidden" | sort -u | grep .; then
  echo "peerup-core pulls the crates above into its normal dependency tree" >&2
  exit 1
fi

step "peerup-async-std has no tokio inside"
if cargo tree --locked -p peerup-async-std -e normal --prefix none | grep -E '^tokio' | sort -u | grep .; then
  echo "peerup-async-std pulls tokio into its normal dependency tree" >&2
  exit 1
fi

step "shell scripts parse"
for f in relay/deploy/setup.sh scripts/*.sh; do bash -n "$f"; done
if command -v shellcheck >/dev/null; then shellcheck -S warning relay/deploy/setup.sh scripts/*.sh; fi

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --locked --workspace

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps

step "peerup demo (the README's first command)"
cargo run --release --locked -p peerup-cli -- demo

step "all green"
