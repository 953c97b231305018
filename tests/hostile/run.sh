#!/usr/bin/env bash
# The hostile-load scenario (issue 15; docs/SECURITY.md has the figures of
# the last run): on 127.0.0.1, a relay (`peerup-relay`) and a daemon
# (`peerup daemon`), both under `ulimit -n 1024`, are flooded at once by
#   - TCP connections that never finish the handshake (from 127.0.0.2-9),
#   - strangers completing the handshake, to be thrown out by the gate,
#   - streams of garbage on every protocol, from an authorized peer,
# while an authorized client keeps pinging the daemon through the relay
# and moves a payload through a relayed stream to a service behind the
# daemon, checksum checked. The daemon must keep its reservation, both
# must stay up, and the client's path must work throughout.
#
#   bash tests/hostile/run.sh            full: 2,000 raw, 500 strangers, 100 garbage streams per protocol
#   bash tests/hostile/run.sh --short    CI: 400 raw, 100 strangers, 10 per protocol
#
# HOSTILE_BIN_DIR=<dir> uses peerup, peerup-relay and examples/hostile from
# there instead of building target/release. Needs python3 (free ports) and
# curl; not root.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

RAW=2000 STRANGERS=500 GARBAGE=100 BYTES=$((16 << 20)) SECONDS_=30
if [[ "${1:-}" == "--short" ]]; then
  RAW=400 STRANGERS=100 GARBAGE=10 SECONDS_=20
fi

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
die() {
  printf 'FAILED: %s\n' "$*" >&2
  for f in "$T"/relay.log "$T"/daemon.log; do
    [[ -f "$f" ]] && { printf '\n--- %s (last 30 lines)\n' "$f" >&2; tail -n 30 "$f" >&2; }
  done
  exit 1
}

BIN="${HOSTILE_BIN_DIR:-$ROOT/target/release}"
if [[ -z "${HOSTILE_BIN_DIR:-}" ]] && command -v cargo >/dev/null; then
  log "cargo build --release (peerup, peerup-relay, examples/hostile)"
  (cd "$ROOT" && cargo build --release --locked -q -p peerup-cli -p peerup-relay &&
    cargo build --release --locked -q -p peerup-tokio --example hostile)
fi
PEERUP="$BIN/peerup" RELAY="$BIN/peerup-relay" TOOL="$BIN/examples/hostile"
for b in "$PEERUP" "$RELAY" "$TOOL"; do
  [[ -x "$b" ]] || { echo "tests/hostile: $b is missing" >&2; exit 1; }
done
for tool in python3 curl jq; do
  command -v "$tool" >/dev/null || { echo "tests/hostile: $tool is missing" >&2; exit 1; }
done

T=$(mktemp -d /tmp/peerup-hostile.XXXXXX)
chmod 700 "$T"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# wait_for <what> <seconds> <command...>: polls every 0.1 s.
wait_for() {
  local what=$1 limit=$2 t0
  shift 2
  t0=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) - t0 < limit)) || die "timed out after ${limit}s waiting for $what"
    sleep 0.1
  done
}
rss_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

RPORT=$(free_port) HPORT=$(free_port) DPORT=$(free_port) SPORT=$(free_port)

log "keys, relay and daemon configs in $T"
mapfile -t IDS < <("$TOOL" keys "$T/keys")
CLIENT=${IDS[0]#client } GARBAGE_ID=${IDS[1]#garbage }
mkdir -m 700 "$T/relay"
cat >"$T/relay/relay-server.yaml" <<EOF
version: 1
network:
  listen_addresses: ["/ip4/127.0.0.1/tcp/$RPORT"]
security:
  authorized_keys_file: relay_authorized_keys
health:
  enabled: true
  listen_address: "127.0.0.1:$HPORT"
EOF
chmod 600 "$T/relay/relay-server.yaml"
RID=$("$RELAY" -c "$T/relay/relay-server.yaml" info | awk '/^Peer ID:/ { print $3 }')
RADDR="/ip4/127.0.0.1/tcp/$RPORT/p2p/$RID"
HOME="$T/home-user" "$PEERUP" init --dir "$T/home" --relay "$RADDR" -y >/dev/null
HCFG="$T/home/config.yaml"
HID=$("$PEERUP" --config "$HCFG" whoami)
python3 - "$HCFG" "$DPORT" "$SPORT" <<'EOF'
import re, sys
path, dport, sport = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
text = re.sub(r"  listen_addresses:\n(    - .*\n)+",
              f'  listen_addresses:\n    - "/ip4/127.0.0.1/tcp/{dport}"\n', text)
text = text.replace("# services:", f'services:\n  echo:\n    local_address: "127.0.0.1:{sport}"\n# (example):', 1)
open(path, "w").write(text)
EOF
"$PEERUP" --config "$HCFG" config validate >/dev/null
for p in "$HID" "$CLIENT" "$GARBAGE_ID"; do
  "$RELAY" -c "$T/relay/relay-server.yaml" authorize "$p" >/dev/null
done
for p in "$CLIENT" "$GARBAGE_ID"; do
  "$PEERUP" --config "$HCFG" auth add "$p" >/dev/null
done

log "relay and daemon under ulimit -n 1024"
bash -c "ulimit -n 1024 && exec '$RELAY' -c '$T/relay/relay-server.yaml'" >"$T/relay.log" 2>&1 &
RELAY_PID=$!
PIDS+=("$RELAY_PID")
wait_for "the relay's health endpoint" 30 curl -sf "http://127.0.0.1:$HPORT/healthz"
bash -c "ulimit -n 1024 && exec '$PEERUP' --config '$HCFG' daemon" >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
PIDS+=("$DAEMON_PID")
wait_for "the daemon's reservation" 30 grep -q "relay reservation accepted" "$T/daemon.log"
log "relay: $(fds "$RELAY_PID") fds, RSS $(rss_kib "$RELAY_PID" VmRSS) KiB; daemon: $(fds "$DAEMON_PID") fds, RSS $(rss_kib "$DAEMON_PID" VmRSS) KiB"

log "flood: $RAW raw connections, $STRANGERS strangers, $GARBAGE garbage streams per protocol; payload $((BYTES >> 20)) MiB"
t0=$(date +%s.%N)
if ! "$TOOL" run --relay "$RADDR" --daemon "127.0.0.1:$DPORT" --home "$HID" \
  --keys "$T/keys" --service echo --service-port "$SPORT" \
  --raw "$RAW" --strangers "$STRANGERS" --garbage "$GARBAGE" --bytes "$BYTES" \
  --seconds "$SECONDS_" >"$T/result.json" 2>"$T/tool.log"; then
  cat "$T/tool.log" "$T/result.json" >&2
  die "the authorized client's transfer failed under the flood"
fi
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

kill -0 "$RELAY_PID" 2>/dev/null || die "the relay died"
kill -0 "$DAEMON_PID" 2>/dev/null || die "the daemon died"
HEALTH=$(curl -sf "http://127.0.0.1:$HPORT/healthz") || die "the relay's health endpoint stopped answering"
STATUS=$("$PEERUP" --config "$HCFG" status --json) || die "the daemon's control socket stopped answering"
[[ $(jq -r '.relays[0].reserved' <<<"$STATUS") == true ]] || die "the daemon lost its reservation"
lost=$(grep -c "no reservation on relay" "$T/daemon.log" || true)
[[ "$lost" == 0 ]] || die "the daemon lost its reservation $lost time(s) during the flood"
R=$(cat "$T/result.json")
[[ $(jq -r '.checksum_intact' <<<"$R") == true && $(jq -r '.relayed_stream' <<<"$R") == true ]] ||
  die "payload not intact or not relayed: $R"
[[ $(jq -r '.ping_ms.during_failed' <<<"$R") == 0 ]] || die "pings failed during the flood: $R"

echo
echo "hostile load: $RAW raw, $STRANGERS strangers, $GARBAGE garbage streams/protocol, in ${took}s"
jq -r '"  payload: \(.bytes_back) of \(.bytes) bytes back through the relay, checksum intact: \(.checksum_intact), \(.transfer_seconds | . * 10 | round / 10) s"' <<<"$R"
jq -r '"  client ping through the relay: p50 \(.ping_ms.before_p50 | . * 100 | round / 100) ms before, p50 \(.ping_ms.during_p50 | . * 100 | round / 100) / p95 \(.ping_ms.during_p95 | . * 100 | round / 100) ms during (\(.ping_ms.during_count) pings, \(.ping_ms.during_failed) failed), p50 \(.ping_ms.after_p50 | . * 100 | round / 100) ms after"' <<<"$R"
jq -r '"  raw: \(.raw.connections) connections, \(.raw.dropped_by_server) dropped by the servers, \(.raw.connect_failed) not accepted, \(.raw.held_to_the_end) still open at the end"' <<<"$R"
jq -r '"  strangers: \(.strangers.handshakes_completed) handshakes completed, \(.strangers.thrown_out_by_the_gate) thrown out by the gate, \(.strangers.refused_or_failed) refused before or during the handshake"' <<<"$R"
jq -r '"  garbage: \([.garbage[] | .streams_opened] | add) streams taken, \([.garbage[] | .refused] | add) refused, over \(.garbage | length) protocols"' <<<"$R"
jq -r '"  relay: \(.refused_connections) connections refused by a limit (\(.refused_connections_per_ip) per IP before the handshake), \(.denied_connections) denied by the gate"' <<<"$HEALTH"
jq -r '"  daemon: \(.refused_connections.per_ip) refused per IP before the handshake, \(.refused_connections.limits) by a count limit; reservation held"' <<<"$STATUS"
echo "  relay: RSS $(rss_kib "$RELAY_PID" VmRSS) KiB now, peak $(rss_kib "$RELAY_PID" VmHWM) KiB, $(fds "$RELAY_PID") fds"
echo "  daemon: RSS $(rss_kib "$DAEMON_PID" VmRSS) KiB now, peak $(rss_kib "$DAEMON_PID" VmHWM) KiB, $(fds "$DAEMON_PID") fds"
if [[ -n "${HOSTILE_JSON:-}" ]]; then
  jq -n --argjson result "$R" --argjson relay "$HEALTH" --argjson daemon "$STATUS" \
    '{result: $result, relay: $relay, daemon: $daemon}' >"$HOSTILE_JSON"
fi
echo "hostile load: passed"
