#!/usr/bin/env bash
# Builds the binaries peerup ships, stripped, with their line tables in
# separate files:
#
#   dist/peerup, dist/peerup-relay               stripped (symbols kept)
#   dist/peerup.debug, dist/peerup-relay.debug   line tables, for gdb,
#                                                addr2line and symbolizers
#
# Both come from one build (the `dist` profile: release with line tables),
# so they match; the binary names its .debug file (a GNU debuglink), and
# gdb finds it next to the binary or under /usr/lib/debug.
#
#   bash scripts/dist.sh [OUT_DIR]    default: dist/
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}

for tool in cargo objcopy; do
  command -v "$tool" >/dev/null || { echo "dist.sh: $tool is not installed (objcopy: apt install binutils)" >&2; exit 1; }
done

cargo build --locked --profile dist -p peerup-cli -p peerup-relay
mkdir -p "$out"
for bin in peerup peerup-relay; do
  src="${CARGO_TARGET_DIR:-target}/dist/$bin"
  tmp="$out/.$bin.tmp"
  cp "$src" "$tmp"
  objcopy --only-keep-debug "$tmp" "$out/$bin.debug"
  objcopy --strip-debug --add-gnu-debuglink="$out/$bin.debug" "$tmp"
  mv -f "$tmp" "$out/$bin"
  printf '%-14s %6s MiB   %s.debug %6s MiB\n' "$bin" \
    "$(( $(stat -c %s "$out/$bin") / 1048576 ))" "$bin" \
    "$(( $(stat -c %s "$out/$bin.debug") / 1048576 ))"
done
