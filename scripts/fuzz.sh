#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a while and fails on any crash.
#
#   scripts/fuzz.sh                 every target, 25 s each (CI runs 10 s each, from scripts/test.sh)
#   scripts/fuzz.sh 600             every target, 10 minutes each
#   scripts/fuzz.sh 60 names confirm
#
# FUZZ_SECONDS overrides the time per target; FUZZ_JOBS > 1 runs libFuzzer's
# fork mode with that many processes per target (default 1). Needs the nightly toolchain;
# installs cargo-fuzz when it is missing.
#
# The committed corpus (fuzz/corpus/<target>/) is read, never written: new
# inputs go to a temporary directory, so a run leaves the tree clean. A
# crash is saved under fuzz/artifacts/<target>/; fix it, copy the input to
# fuzz/regressions/<target>/ (replayed by `cargo test -p peerup-core --test
# fuzz_corpus` on stable), and re-run. To grow the corpus instead, run
# `cargo +nightly fuzz run <target>` and then `cargo +nightly fuzz cmin <target>`.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-${1:-25}}"
[ $# -gt 0 ] && shift
jobs="${FUZZ_JOBS:-1}"
case "$seconds$jobs" in
  '' | *[!0-9]*) echo "scripts/fuzz.sh: seconds and FUZZ_JOBS must be numbers" >&2; exit 2 ;;
esac
extra=()
if [ "$jobs" -gt 1 ]; then extra+=("-fork=$jobs"); fi

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "scripts/fuzz.sh: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
[ ${#targets[@]} -gt 0 ] || { echo "scripts/fuzz.sh: no fuzz targets found" >&2; exit 1; }

echo "==> building ${#targets[@]} fuzz targets"
cargo +nightly fuzz build

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
  echo "==> fuzzing $t for ${seconds}s"
  mkdir -p "$scratch/$t" "fuzz/corpus/$t"
  # -timeout: an input that takes 10 s is a hang, reported as a crash.
  if ! cargo +nightly fuzz run "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${extra[@]}" \
      2>"$scratch/$t.log"; then
    failed+=("$t")
    tail -n 60 "$scratch/$t.log" >&2
  else
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|#[0-9]+ *DONE)' "$scratch/$t.log" || true
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "scripts/fuzz.sh: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "scripts/fuzz.sh: ${#targets[@]} targets, ${seconds}s each, no crash"
