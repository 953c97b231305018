#!/usr/bin/env bash
# The full peerup test suite: the one command README.md gives and CI runs.
# Exits non-zero on the first failure, and prints how long each step took.
#
# Everything runs from one build: `cargo test` builds the binaries
# (target/debug/peerup, peerup-relay) and examples (examples/hostile) in
# the dev profile (optimized: see Cargo.toml), and the demo, the hostile
# load and the end-to-end tests run those, instead of building the
# release profile a second time.
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS=()
T_STEP=$(date +%s)
T_START=$T_STEP
CURRENT=""
step() {
  local now
  now=$(date +%s)
  if [[ -n "$CURRENT" ]]; then STEPS+=("$((now - T_STEP))s  $CURRENT"); fi
  T_STEP=$now
  CURRENT="$*"
  printf '\n==> %s\n' "$*"
}
report() {
  local now
  now=$(date +%s)
  if [[ -n "$CURRENT" ]]; then STEPS+=("$((now - T_STEP))s  $CURRENT"); fi
  printf '\n==> time per step\n'
  printf '  %s\n' "${STEPS[@]}"
  printf '  %ss  in all\n' "$((now - T_START))"
}
trap report EXIT

step "cargo fmt --check"
cargo fmt --all -- --check

step "peerup-core stays sans-IO (no runtime, socket or swarm crate)"
forbidden='^(tokio|async-std|async-io|async-global-executor|smol|mio|socket2|libp2p-swarm|libp2p-tcp|libp2p-quic|libp2p-dns|libp2p-core|if-watch|futures-timer) '
if cargo tree --locked -p peerup-core -e normal --prefix none | grep -E "$forbidden" | sort -u | grep .; then
  echo "peerup-core pulls the crates above into its normal dependency tree" >&2
  exit 1
fi

# hyper (the HTTP server of /metrics and /healthz) depends on tokio for
# its `sync` channels only: no runtime, reactor, timer or socket. What
# must stay out is tokio's runtime: any tokio feature beyond `sync`
# (and `default`, which is empty).
tokio_beyond_sync() {
  cargo tree --locked "$@" -e normal,features -i tokio --prefix none 2>/dev/null |
    grep -E '^tokio feature' | grep -vE '"(default|sync)"' | sort -u | grep .
}

step "peerup-async-std has no tokio runtime inside"
if tokio_beyond_sync -p peerup-async-std; then
  echo "peerup-async-std pulls tokio's runtime (the features above) into its normal dependency tree" >&2
  exit 1
fi

step "peerup-relay's library has no tokio runtime nor clap inside (the binary's dependencies are feature cli)"
if tokio_beyond_sync -p peerup-relay --no-default-features ||
  cargo tree --locked -p peerup-relay --no-default-features -e normal --prefix none | grep -E '^clap ' | sort -u | grep .; then
  echo "peerup-relay without its cli feature pulls tokio's runtime or clap into its normal dependency tree" >&2
  exit 1
fi

step "shell scripts parse"
for f in relay/deploy/setup.sh scripts/*.sh tests/e2e/*.sh tests/hostile/*.sh; do bash -n "$f"; done
if command -v shellcheck >/dev/null; then
  shellcheck -S warning -x relay/deploy/setup.sh scripts/*.sh tests/e2e/*.sh tests/hostile/*.sh
fi

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --locked --workspace

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps

# The README's first command is `cargo run -p peerup-cli -- demo`; here the
# demo runs from the binary `cargo test` just built (the same code). Cargo
# run with -p would build the dependency tree a second time, with the
# features of peerup-cli alone instead of the whole workspace's: minutes
# for no extra coverage.
step "peerup demo (the README's first command, from the binary cargo test built)"
target/debug/peerup demo

step "hostile load: a flooded relay and daemon under ulimit -n 1024 (tests/hostile, short form)"
HOSTILE_BIN_DIR="$PWD/target/debug" bash tests/hostile/run.sh --short

# The last two need what not every machine has: root (network namespaces,
# iptables) and the nightly toolchain. Without it they say so and are
# skipped; CI (.ci/run sets PEERUP_TEST_ALL=1) makes that a failure.
skip() {
  echo "skipped: $*"
  if [[ "${PEERUP_TEST_ALL:-0}" == 1 ]]; then exit 1; fi
}

step "end to end through real NAT, with real ssh (tests/e2e)"
if [[ $EUID -eq 0 ]]; then
  E2E_BIN_DIR="$PWD/target/debug" bash tests/e2e/run.sh
else
  skip "needs root for network namespaces: sudo bash tests/e2e/run.sh"
fi

step "fuzz every parser and state machine, ${FUZZ_SECONDS:-10} s each (scripts/fuzz.sh)"
if cargo +nightly --version >/dev/null 2>&1; then
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
else
  skip "needs the nightly toolchain (rustup toolchain install nightly)"
fi

step "all green"
