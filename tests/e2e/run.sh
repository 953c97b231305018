#!/usr/bin/env bash
# End-to-end tests of peerup through real NAT, with real SSH (issue 8).
#
# Run locally, as root, from the checkout (CI runs the same):
#
#     sudo bash tests/e2e/run.sh
#
# It builds the release binaries when cargo is on PATH (as root under sudo
# it often is not: then run `cargo build --release --locked -p peerup-cli
# -p peerup-relay` first, as yourself), and needs iproute2, iptables
# (nf_tables or legacy), openssh-server, openssh-client, jq and curl.
#
# What it does: builds a small internet out of network namespaces (a relay
# on 198.51.100.1, three home routers doing NAT for one LAN host each;
# see topology_up in lib.sh), runs target/release/peerup-relay and
# target/release/peerup there with configs made by `init`, `invite` and
# `join`, and a real sshd on host A's loopback, then:
#
#   1. symmetric NAT on both sides: pair across the NATs, `peerup proxy
#      home ssh 2222` on host B, ssh runs a command, scp copies 64 MiB each
#      way (checksums equal), and the path stays RELAYED;
#   2. endpoint-independent NAT: the same, the connection upgrades to
#      DIRECT, and the copies run over the direct path (the relay carries
#      almost none of the bytes);
#   3. the relay restarts (symmetric network, same key and port): the
#      daemon re-reserves and a new ssh through the proxy works within 30 s;
#   4. a peer behind NAT that the relay authorizes but home does not is
#      denied, and sshd logs no connection from it;
#   6. LAN: home, laptop and an unauthorized C on one bridged segment
#      (lan_topology_up in lib.sh), home and laptop authorized to each
#      other, C authorizing home but not authorized by it; the relay is
#      stopped, and the laptop's daemon finds home by mDNS: `peerup proxy
#      <home> ssh 2222` reaches home's sshd over a DIRECT connection to
#      192.168.50.2; C's daemon finds home too, and its ping and ssh are
#      refused by home's gate, sshd logging no connection from it;
#   5. relay pairing, with nothing done on the relay but `peerup-relay
#      pair --count 3`: three machines behind NAT, none authorized on the
#      gated relay, each run `peerup join <code>` (and `service add ssh`,
#      and their daemons); afterwards each has authorized the relay and
#      the other two (the first ones through the relay's introductions),
#      every pair reaches the other's sshd, both sides of a pair show the same verification
#      code, a used code and a wrong code are refused, and a stranger let
#      in on probation while a code is open is closed when it ends;
#   7. a firewall in front of the laptop that lets only TCP 443 out: the
#      relay also listens on /tcp/443/ws, the laptop adds it with `relay add
#      ws://...`, and reaches home over WebSocket (ssh, scp 64 MiB each
#      way; the firewall's counters show the bytes went out on 443);
#   8. two relays: home holds a reservation on each, an ssh session is
#      open, the relay carrying it is killed (SIGKILL); the time to the
#      first new ssh through the other relay is recorded (goal: 10 s);
#   9. a forward kept by the daemon (`peerup proxy ... --persist`) on the
#      laptop survives restarts of home's daemon (a connection while home
#      is down fails fast, with the reason logged) and of its own;
#  10. roaming: the laptop moves to another network (its address and
#      default route go, new ones come up behind another NAT) while its
#      daemon keeps the forward; the time to the first ssh through it is
#      recorded (goal: 10 s);
#
# printing the timings of each (connect, upgrade, copy throughput). The
# symmetric network runs 1 then 3, the endpoint-independent one 2 then 4.
# Nothing outside the namespaces and the temp dir it creates is touched
# (but /run/sshd, sshd's privilege separation directory, which it creates
# if missing); a trap removes them, and every process it started, on any
# exit.
#
# Environment: E2E_NETWORKS=symmetric, eim, pairing, lan (6) or reach (7 to
# 10) runs one network's scenarios;
# E2E_RELAY_TRANSPORT=quic gives the nodes the relay's QUIC address first
# (then hole punching is over UDP); E2E_KEEP=1 keeps the temp dir (logs,
# configs);
# E2E_LOG=<RUST_LOG filter> for peerup and the relay (e.g. debug);
# E2E_BIN_DIR=<dir> uses the peerup and peerup-relay binaries there
# instead of building target/release.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"

if [[ $EUID -ne 0 ]]; then
  echo "run as root: sudo bash tests/e2e/run.sh" >&2
  exit 1
fi
for tool in ip iptables ss sshd ssh scp ssh-keygen jq curl sha256sum awk; do
  if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null; then
    echo "tests/e2e: '$tool' is missing (apt-get install iproute2 iptables openssh-server openssh-client jq curl)" >&2
    exit 1
  fi
done
SSHD=$(PATH="$PATH:/usr/sbin:/sbin" command -v sshd)

PEERUP="${E2E_BIN_DIR:-$ROOT/target/release}/peerup"
RELAY_BIN="${E2E_BIN_DIR:-$ROOT/target/release}/peerup-relay"
if [[ -n "${E2E_BIN_DIR:-}" ]]; then
  [[ -x "$PEERUP" && -x "$RELAY_BIN" ]] || { echo "tests/e2e: no peerup or peerup-relay in $E2E_BIN_DIR" >&2; exit 1; }
elif command -v cargo >/dev/null; then
  step "cargo build --release"
  (cd "$ROOT" && cargo build --release --locked -p peerup-cli -p peerup-relay)
elif [[ ! -x "$PEERUP" || ! -x "$RELAY_BIN" ]]; then
  echo "tests/e2e: cargo is not on PATH and $PEERUP or $RELAY_BIN is missing;" \
    "build them first: cargo build --release --locked -p peerup-cli -p peerup-relay" >&2
  exit 1
fi

PFX="pe2e$$"
T=$(mktemp -d /tmp/peerup-e2e.XXXXXX)
CREATED_PRIVSEP=0
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR
touch "$T/.scenario"
log "run $PFX, temp dir $T"

# libp2p_dcutr's debug lines show the hole punch attempts scenario 1 checks;
# the node driver's say why connections closed and hole punches failed.
LOG_FILTER="${E2E_LOG:-info,peerup_net::node::driver=debug,libp2p=warn,yamux=error,libp2p_kad=error},libp2p_dcutr=debug,peerup_net::lan=debug"
RELAY_TRANSPORT="${E2E_RELAY_TRANSPORT:-tcp}"
export NO_COLOR=1
MIB64=$((64 << 20))
declare -A ID=()

# ------------------------------------------------------------- the relay

RELAY_DIR=""
RELAY_ADDR=""
RELAY_STARTS=0

relay_init() {
  RELAY_DIR="$TOPO/relay"
  mkdir -m 700 "$RELAY_DIR"
  cat >"$RELAY_DIR/relay-server.yaml" <<'EOF'
version: 1
identity:
  key_file: "relay_node.key"
network:
  listen_addresses:
    - "/ip4/198.51.100.1/tcp/7777"
    - "/ip4/198.51.100.1/udp/7777/quic-v1"
    - "/ip4/198.51.100.1/udp/7778/quic-v1"
security:
  authorized_keys_file: "relay_authorized_keys"
  enable_connection_gating: true
health:
  enabled: true
  listen_address: "127.0.0.1:9090"
EOF
  chmod 600 "$RELAY_DIR/relay-server.yaml"
  : >"$RELAY_DIR/relay_authorized_keys"
  chmod 600 "$RELAY_DIR/relay_authorized_keys"
  # `info` creates the key; the relay keeps it across restarts.
  local id
  id=$(relay_cmd info 2>"$RELAY_DIR/info.log" | awk '/^Peer ID:/ { print $3 }')
  [[ "$id" == 12D3KooW* ]] || fail "no relay peer ID from peerup-relay info"
  case "$RELAY_TRANSPORT" in
    tcp) RELAY_ADDR="/ip4/198.51.100.1/tcp/7777/p2p/$id" ;;
    quic) RELAY_ADDR="/ip4/198.51.100.1/udp/7777/quic-v1/p2p/$id" ;;
    *) fail "E2E_RELAY_TRANSPORT must be tcp or quic" ;;
  esac
  log "relay $RELAY_ADDR"
}

relay_cmd() {
  nsx wan "$RELAY_BIN" --config "$RELAY_DIR/relay-server.yaml" "$@"
}

relay_healthy() {
  nsx wan curl -fsS -m 2 http://127.0.0.1:9090/healthz >/dev/null 2>&1
}

relay_start() {
  RELAY_STARTS=$((RELAY_STARTS + 1))
  bg relay wan "$RELAY_DIR/relay-$RELAY_STARTS.log" \
    env RUST_LOG="$LOG_FILTER" "$RELAY_BIN" --config "$RELAY_DIR/relay-server.yaml" serve
  wait_for "the relay's health endpoint" 20 relay_healthy
}

# relay_stat <field>: a number from the relay's /healthz.
relay_stat() {
  nsx wan curl -fsS -m 5 http://127.0.0.1:9090/healthz | jq -r ".$1"
}

# ------------------------------------------------------------- the nodes

# pu <x> <args...>: peerup on host x with x's config.
pu() {
  local x="$1"
  shift
  nsx "h$x" env HOME="$TOPO/$x/home" RUST_LOG="$LOG_FILTER" \
    "$PEERUP" --config "$TOPO/$x/node/config.yaml" "$@"
}

# pu_bg <name> <x> <args...>: the same, in the background as process
# <name>-<x>, logging to $TOPO/<x>/<name>.log.
pu_bg() {
  local name="$1" x="$2"
  shift 2
  bg "$name-$x" "h$x" "$TOPO/$x/$name.log" env HOME="$TOPO/$x/home" RUST_LOG="$LOG_FILTER" \
    "$PEERUP" --config "$TOPO/$x/node/config.yaml" "$@"
}

node_init() {
  local x="$1"
  mkdir -p "$TOPO/$x/home"
  nsx "h$x" env HOME="$TOPO/$x/home" "$PEERUP" init --dir "$TOPO/$x/node" \
    --relay "$RELAY_ADDR" --yes >"$TOPO/$x/init.log" 2>&1 ||
    fail "peerup init on host $x: $(cat "$TOPO/$x/init.log")"
  if [[ "$RELAY_TRANSPORT" == quic ]]; then
    # Invite codes carry the relay's TCP address: keep it, after QUIC.
    pu "$x" relay add "${RELAY_ADDR/udp\/7777\/quic-v1/tcp\/7777}" >/dev/null
  fi
  ID[$x]=$(pu "$x" whoami)
  relay_cmd authorize "${ID[$x]}" --comment "host-$x" >/dev/null
  log "host $x: ${ID[$x]}"
}

# The code `peerup invite --non-interactive` prints (base32 in groups of 4).
invite_code() {
  grep -m1 -E '^[A-Z2-7]{4}(-[A-Z2-7]{1,4})+$' "$TOPO/a/invite.log" 2>/dev/null
}

# log_time <file> <text>: the time (epoch seconds) of the first line with
# <text> in a peerup log, whose lines start with an RFC 3339 timestamp.
log_time() {
  local line
  line=$(grep -m1 -F -- "$2" "$1") || fail "no line with '$2' in $1"
  date -d "${line%% *}" +%s.%N
}
diff_s() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

has_invite_code() { invite_code >/dev/null; }

# in_log <file> <text>: whether a log has a line with <text>.
in_log() { grep -qF -- "$2" "$1" 2>/dev/null; }
count_in_log() { grep -cF -- "$2" "$1" 2>/dev/null || true; }

# The path of host B (laptop) in A's daemon status: DIRECT, RELAYED or null.
b_path_on_a() {
  pu a status --json | jq -r --arg p "${ID[b]}" '.peers[] | select(.peer_id == $p) | .path'
}
b_path_is() { [[ "$(b_path_on_a 2>/dev/null)" == "$1" ]]; }

# ------------------------------------------------------------------- ssh

SSH_DIR=""
sshd_start() {
  SSH_DIR="$TOPO/ssh"
  mkdir -m 700 "$SSH_DIR"
  if [[ ! -d /run/sshd ]]; then
    # sshd's privilege separation directory (the package's service
    # creates it at boot); removed again at exit.
    mkdir -m 755 /run/sshd
    CREATED_PRIVSEP=1
  fi
  ssh-keygen -q -t ed25519 -N '' -C e2e-host -f "$SSH_DIR/host_key"
  ssh-keygen -q -t ed25519 -N '' -C e2e-client -f "$SSH_DIR/client_key"
  cp "$SSH_DIR/client_key.pub" "$SSH_DIR/authorized_keys"
  # The client checks it reaches this very sshd, through a proxy's port
  # 2222 or (the baseline) directly on port 22.
  local key
  key=$(cut -d' ' -f1,2 "$SSH_DIR/host_key.pub")
  printf '[127.0.0.1]:2222 %s\n127.0.0.1 %s\n' "$key" "$key" >"$SSH_DIR/known_hosts"
  cat >"$SSH_DIR/sshd_config" <<EOF
ListenAddress 127.0.0.1:22
HostKey $SSH_DIR/host_key
PidFile $SSH_DIR/sshd.pid
AuthorizedKeysFile $SSH_DIR/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
LogLevel VERBOSE
Subsystem sftp internal-sftp
EOF
  nsx ha "$SSHD" -t -f "$SSH_DIR/sshd_config"
  bg sshd ha "$SSH_DIR/sshd.log" "$SSHD" -D -e -f "$SSH_DIR/sshd_config"
  wait_for "sshd on host A's 127.0.0.1:22" 10 tcp_listening ha 22
}

ssh_opts() {
  printf '%s\n' -F /dev/null -i "$SSH_DIR/client_key" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$SSH_DIR/known_hosts" -o StrictHostKeyChecking=yes \
    -o ConnectTimeout=30 -o LogLevel=ERROR
}

# ssh_from <x> <command>: ssh through host x's proxy on 127.0.0.1:2222.
ssh_from() {
  local x="$1"
  shift
  local opts
  mapfile -t opts < <(ssh_opts)
  nsx "h$x" timeout 60 ssh "${opts[@]}" -p 2222 root@127.0.0.1 "$@"
}

# scp_from <x> <args...>: scp through host x's proxy on 127.0.0.1:2222.
scp_from() {
  local x="$1"
  shift
  local opts
  mapfile -t opts < <(ssh_opts)
  nsx "h$x" timeout 120 scp -q "${opts[@]}" -P 2222 "$@"
}

# The reference for the copy timings: scp of the same 64 MiB on host A
# itself, straight to sshd on its loopback (no peerup, no NAT).
scp_baseline() {
  local opts t secs
  mapfile -t opts < <(ssh_opts)
  rm -f "$TOPO/a/baseline.bin"
  t=$(now)
  nsx ha timeout 120 scp -q "${opts[@]}" -P 22 "$T/blob.bin" "root@127.0.0.1:$TOPO/a/baseline.bin" ||
    fail "scp on host A's loopback failed"
  secs=$(since "$t")
  timing "reference: scp 64 MiB on host A's own loopback (no peerup): $secs s = $(mbps "$secs") MB/s"
}

mbps() { awk -v s="$1" -v b="$MIB64" 'BEGIN { printf "%.1f", b / s / 1e6 }'; }

sshd_connections() { count_in_log "$SSH_DIR/sshd.log" "Connection from"; }

# ------------------------------------------------------------ the steps

# network_up <kind> [<name>]: a network of <kind> (its files under
# $T/<name>, default <kind>): relay, three initialized hosts (authorized on the
# relay), sshd and the daemon on A, A and B paired across the NATs.
network_up() {
  local kind="$1" t code out
  TOPO="$T/${2:-$kind}"
  mkdir -p "$TOPO"
  topology_up "$kind"
  relay_init
  node_init a
  node_init b
  node_init c
  relay_start

  # Host A exposes its sshd (the one hand edit: a service block).
  printf 'services:\n  ssh:\n    enabled: true\n    local_address: "127.0.0.1:22"\n' \
    >>"$TOPO/a/node/config.yaml"
  pu a config validate >/dev/null
  sshd_start
  t=$(now)
  pu_bg daemon a daemon
  wait_for "A's daemon to reserve on the relay" 30 in_log "$TOPO/a/daemon.log" "relay reservation accepted"
  timing "A's daemon reserved on the relay in $(since "$t") s"

  # Pairing through the relay, across both NATs.
  t=$(now)
  pu_bg invite a invite --name home --non-interactive
  wait_for "an invite code" 20 has_invite_code
  code=$(invite_code)
  out=$(pu b join "$code" --name laptop 2>&1) || fail "join on B failed: $out"
  [[ "$out" == *"Joined home"* ]] || fail "join on B: $out"
  reap invite-a 30 || fail "invite on A exited non-zero"
  in_log "$TOPO/a/invite.log" "Paired with laptop" || fail "invite on A did not pair"
  grep -q "^${ID[b]} .*# laptop" "$TOPO/a/node/authorized_keys" ||
    fail "A's authorized_keys has no laptop line"
  grep -q "^${ID[a]} .*# home" "$TOPO/b/node/authorized_keys" ||
    fail "B's authorized_keys has no home line"
  timing "pairing (invite on A -> join on B -> paired) $(since "$t") s"
}

# proxy_up <x> <target>: `peerup proxy <target> ssh 2222` on host x.
proxy_up() {
  local x="$1" target="$2"
  pu_bg proxy "$x" proxy "$target" ssh 2222
  wait_for "the proxy on host $x to listen" 20 tcp_listening "h$x" 2222
}

# proxy_connected <t0>: waits for B's proxy to reach home through the
# relay and records how long that took since <t0> (the proxy's start).
proxy_connected() {
  local log="$TOPO/b/proxy.log"
  wait_for "B's proxy to connect to home" 30 in_log "$log" "Connected to home"
  in_log "$log" "connected peer=${ID[a]} path=RELAYED" || fail "B's first connection to home was not relayed"
  RELAYED_AT=$(log_time "$log" "connected peer=${ID[a]} path=RELAYED")
  timing "connect: B's proxy reached home through the relay $(diff_s "$1" "$RELAYED_AT") s after it started"
}

# ssh_check: a command over ssh through B's proxy runs on host A.
ssh_check() {
  local t out
  t=$(now)
  # shellcheck disable=SC2016 # expanded by the remote shell, on host A
  out=$(ssh_from b 'echo "hello from $(id -un)"; ip -o -4 addr show dev eth0') ||
    fail "ssh through the proxy failed: $out"
  [[ "$out" == *"hello from root"* && "$out" == *"10.1.0.2/24"* ]] ||
    fail "ssh ran somewhere unexpected: $out"
  timing "ssh command through the proxy on host A (10.1.0.2): $(since "$t") s"
}

# copy_check <RELAYED|DIRECT>: scp 64 MiB B -> A and A -> B through the
# proxy, checksums equal; the bytes the relay carried, and the path of
# A's inbound ssh stream sampled from its status during the copies, show
# which path carried them.
copy_check() {
  local want="$1" t up down before after relayed sum samples
  local blob="$T/blob.bin"
  sum=$(sha256sum <"$blob" | cut -d' ' -f1)
  rm -f "$TOPO/a/received.bin" "$TOPO/b/received.bin" "$TOPO/samples"
  before=$(relay_stat bytes_relayed)
  (
    while :; do
      pu a status --json 2>/dev/null |
        jq -r '.proxies[] | select(.service == "ssh" and .direction == "inbound") | .path' \
          >>"$TOPO/samples" || true
      sleep 0.3
    done
  ) &
  PIDS[sampler]=$!
  t=$(now)
  scp_from b "$blob" "root@127.0.0.1:$TOPO/a/received.bin" || fail "scp B -> A failed"
  up=$(since "$t")
  t=$(now)
  scp_from b "root@127.0.0.1:$blob" "$TOPO/b/received.bin" || fail "scp A -> B failed"
  down=$(since "$t")
  stop sampler
  after=$(relay_stat bytes_relayed)
  [[ "$(sha256sum <"$TOPO/a/received.bin" | cut -d' ' -f1)" == "$sum" ]] ||
    fail "the file copied to A differs"
  [[ "$(sha256sum <"$TOPO/b/received.bin" | cut -d' ' -f1)" == "$sum" ]] ||
    fail "the file copied to B differs"
  relayed=$((after - before))
  samples=$(sort "$TOPO/samples" 2>/dev/null | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep=", " }')
  log "sha256 $sum equal on both ends, both ways"
  timing "copy over $want: scp 64 MiB B -> A in $up s = $(mbps "$up") MB/s"
  timing "copy over $want: scp 64 MiB A -> B in $down s = $(mbps "$down") MB/s"
  log "relay carried $((relayed >> 20)) MiB during the copies; A's ssh stream path samples: ${samples:-none}"
  [[ -n "$samples" ]] || fail "no status sample saw the ssh stream on A"
  if grep -qvx "$want" "$TOPO/samples"; then
    fail "A's ssh stream was not always $want during the copies: $samples"
  fi
  case "$want" in
    RELAYED) ((relayed >= 2 * MIB64)) ||
      fail "the relay carried only $relayed bytes of 2 x 64 MiB relayed copies" ;;
    DIRECT) ((relayed < 4 << 20)) ||
      fail "the relay carried $relayed bytes during direct copies" ;;
  esac
}

# ping_check <want>: `peerup ping home --json` on B; every reply's path
# must be <want> (empty: just report).
ping_check() {
  local want="$1" out paths
  out=$(pu b ping home -c 3 --interval 200ms --json 2>"$TOPO/b/ping.log") ||
    fail "ping home from B failed: $out"
  paths=$(jq -r 'select(.seq) | .path // "error"' <<<"$out" | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep=", " }')
  log "peerup ping home (B): ${paths}; $(jq -r 'select(.sent) | "avg rtt \(.rtt_avg_ms) ms, loss \(.loss_percent)%"' <<<"$out")"
  if [[ -n "$want" ]] && jq -r 'select(.seq) | .path // "error"' <<<"$out" | grep -qvx "$want"; then
    fail "ping paths were not all $want: $paths"
  fi
}

# ping_upgrade_check <DIRECT|RELAYED>: `peerup ping home -c 1` from a
# fresh process on B (its own node: B runs no daemon). Its one reply goes
# over the relay, as a fresh connection's first stream does; then ping
# says the path turned DIRECT (and after how long), or why it stays
# RELAYED, instead of leaving "RELAYED" as the last word.
ping_upgrade_check() {
  local want="$1" out
  out=$(pu b ping home -c 1 --upgrade-wait 5s 2>&1) || fail "ping -c 1 from B failed: $out"
  log "peerup ping home -c 1 (B, a fresh process): $(grep -E '^(seq=|path )' <<<"$out" | tr '\n' ' ')"
  case "$want" in
    # (Or the hole punch won the race with the ping's stream: DIRECT.)
    DIRECT) [[ "$out" == *"path RELAYED -> DIRECT after"* || "$out" == *"path=[DIRECT]"* ]] ||
      fail "ping -c 1 did not show the upgrade to DIRECT: $out" ;;
    RELAYED) [[ "$out" == *"path stays RELAYED"* ]] ||
      fail "ping -c 1 did not say the path stays RELAYED: $out" ;;
  esac
}

# Still relayed: A sees B only through the relay, and no hole punch
# succeeded on either side.
assert_relayed() {
  local conns
  conns=$(pu a status --json | jq -r --arg p "${ID[b]}" '.peers[] | select(.peer_id == $p) | .connections[].path' | sort | uniq -c | xargs)
  [[ "$(b_path_on_a)" == RELAYED ]] || fail "A's path to B is $(b_path_on_a), not RELAYED"
  if in_log "$TOPO/a/daemon.log" "hole punched" || in_log "$TOPO/b/proxy.log" "hole punched"; then
    fail "a hole punch succeeded through symmetric NAT"
  fi
  log "A's connections to B: $conns; $(count_in_log "$TOPO/a/daemon.log" "Attempting to hole-punch") hole punch attempt(s) on A, none succeeded"
}

# doctor_nat <want>: `peerup doctor home` on host B, which knows the
# relay also at its QUIC ports 7777 and 7778: two destinations reached
# from one UDP socket. B's NAT must be classified <want>
# (endpoint-dependent behind --random-fully, endpoint-independent behind
# plain MASQUERADE); every relay address answers, home is reached, and
# nothing FAILs.
doctor_nat() {
  local want="$1" out rc=0 t relay_id="${RELAY_ADDR##*/p2p/}" nat a n list
  # (With E2E_RELAY_TRANSPORT=quic, B has the 7777 address already.)
  for a in "/ip4/198.51.100.1/udp/7777/quic-v1/p2p/$relay_id" "/ip4/198.51.100.1/udp/7778/quic-v1/p2p/$relay_id"; do
    list=$(pu b relay list)
    grep -qxF "$a" <<<"$list" || pu b relay add "$a" >/dev/null
  done
  list=$(pu b relay list)
  n=$(grep -c /p2p/ <<<"$list")
  t=$(now)
  out=$(pu b doctor home --json --timeout 12s 2>"$TOPO/b/doctor.log") || rc=$?
  timing "peerup doctor home on B took $(since "$t") s"
  jq -r '.checks[] | "  doctor | \(.status) \(.id): \(.detail)"' <<<"$out"
  nat=$(jq -r '.nat.behaviour' <<<"$out")
  log "doctor on B: nat $nat: $(jq -r '.nat.detail' <<<"$out")"
  log "doctor on B: compared $(jq -c '.nat.udp.compared' <<<"$out")"
  log "doctor on B: home $(jq -c '.peer | {path, upgraded, rtt_ms}' <<<"$out")"
  [[ "$nat" == "$want" ]] || fail "doctor on B says the NAT is $nat, not $want"
  ((rc == 0)) || fail "doctor on B exited $rc: $(jq -c '[.checks[] | select(.status == "fail")]' <<<"$out")"
  jq -e --argjson n "$n" '.relays | length == $n and all(.reachable)' <<<"$out" >/dev/null ||
    fail "doctor on B: not every relay address answered: $(jq -c '.relays' <<<"$out")"
  jq -e '.peer.reachable' <<<"$out" >/dev/null || fail "doctor on B: home unreachable: $(jq -c '.peer' <<<"$out")"
}

# ------------------------------------------------------------- scenarios

RUN_START=$(now)
head -c "$MIB64" /dev/urandom >"$T/blob.bin"

# E2E_NETWORKS picks the networks to run (all by default): `symmetric`
# (scenarios 1 and 3), `eim` (scenarios 2 and 4), `pairing` (scenario 5,
# on an endpoint-independent NAT), `lan` (scenario 6), `reach` (scenarios
# 7 to 10, symmetric).
networks=" ${E2E_NETWORKS:-symmetric eim pairing lan reach} "

if [[ "$networks" == *" symmetric "* ]]; then
scenario "1. symmetric NAT on both sides: relayed"
network_up symmetric
scp_baseline
t=$(now)
proxy_up b home
proxy_connected "$t"
# DCUtR tries (A logs its attempts); through symmetric NAT it must fail.
wait_for "a hole punch attempt between A and B" 20 in_log "$TOPO/a/daemon.log" "Attempting to hole-punch"
ssh_check
copy_check RELAYED
ping_check RELAYED
ping_upgrade_check RELAYED
assert_relayed

scenario "3. relay restart (symmetric NAT)"
# The daemon and B's proxy keep running; the relay goes away under them.
n=$(count_in_log "$TOPO/a/daemon.log" "relay reservation accepted")
circuits=$(count_in_log "$TOPO/b/proxy.log" "connected peer=${ID[a]} path=RELAYED")
t=$(now)
stop relay
log "relay stopped (SIGTERM, exited in $(since "$t") s); starting it again, same key and port"
t=$(now)
relay_start
timing "relay serving again $(since "$t") s after its start"
wait_for "A's daemon to re-reserve" 30 \
  bash -c "(( \$(grep -cF 'relay reservation accepted' '$TOPO/a/daemon.log') > $n ))"
timing "A re-reserved $(since "$t") s after the relay's start"
ssh_check
elapsed=$(since "$t")
awk -v e="$elapsed" 'BEGIN { exit !(e <= 30) }' ||
  fail "the first ssh after the relay restart succeeded only $elapsed s after the relay's start (limit 30 s)"
(($(count_in_log "$TOPO/b/proxy.log" "connected peer=${ID[a]} path=RELAYED") > circuits)) ||
  fail "B's proxy did not make a new circuit to home"
timing "new ssh through the proxy (over a new circuit) succeeded $elapsed s after the relay's start"
assert_relayed
doctor_nat endpoint-dependent
topology_down
fi

if [[ "$networks" == *" eim "* ]]; then
scenario "2. endpoint-independent NAT: upgrade to DIRECT"
network_up eim
t=$(now)
proxy_up b home
proxy_connected "$t"
wait_for "A's path to B to become DIRECT" 30 b_path_is DIRECT
wait_for "B's proxy to see the hole punch" 10 in_log "$TOPO/b/proxy.log" "direct connection established (hole punched) peer=${ID[a]}"
direct=$(grep -m1 -F "path=DIRECT addr=/ip4/198.51.100.11/" "$TOPO/b/proxy.log" | grep -o 'addr=[^ ]*' || true)
[[ -n "$direct" ]] || fail "B's direct connection is not to router A's public address"
log "B's direct connection to home: $direct (router A's public address)"
direct_at=$(log_time "$TOPO/b/proxy.log" "direct connection established (hole punched) peer=${ID[a]}")
timing "upgrade: relayed -> DIRECT $(diff_s "$RELAYED_AT" "$direct_at") s after the relayed connection"
ssh_check
copy_check DIRECT
ping_check ""
ping_upgrade_check DIRECT

scenario "4. unauthorized peer behind NAT (host C)"
before=$(sshd_connections)
proxy_up c "${ID[a]}"
t=$(now)
if out=$(ssh_from c true 2>&1); then
  fail "ssh from host C through its proxy succeeded: $out"
fi
log "ssh from C failed as it should: ${out:-no output}"
wait_for "A's daemon to deny C" 30 in_log "$TOPO/a/daemon.log" "DENIED ${ID[c]}"
log "A's daemon: $(grep -F "DENIED ${ID[c]}" "$TOPO/a/daemon.log" | head -n1 | sed 's/^.*DENIED/DENIED/')"
timing "denied: C's attempt refused in $(since "$t") s"
if out=$(pu c ping "${ID[a]}" -c 1 2>&1); then
  fail "ping from host C succeeded: $out"
fi
after=$(sshd_connections)
((after == before)) || fail "sshd logged $((after - before)) connection(s) during C's attempts"
log "sshd logged no connection during C's attempts ($before before, $after after)"
# The control: the authorized laptop's next ssh is logged.
ssh_check
(($(sshd_connections) == after + 1)) || fail "sshd did not log B's connection (the control)"
log "B's next ssh was logged by sshd (the count works)"
doctor_nat endpoint-independent
# C's doctor says why home cannot be reached, with a fix, and exits 1.
t=$(now)
if out=$(pu c doctor "${ID[a]}" --json --timeout 12s 2>"$TOPO/c/doctor.log"); then
  fail "doctor on C passed: $(jq -c '.peer' <<<"$out")"
fi
timing "peerup doctor <home> on C took $(since "$t") s"
jq -r '.checks[] | select(.id | startswith("peer")) | "  doctor C | \(.status) \(.id): \(.detail)\n  doctor C |   fix: \(.fix)"' <<<"$out"
jq -e '.peer.reachable == false' <<<"$out" >/dev/null || fail "doctor on C: home reachable: $(jq -c '.peer' <<<"$out")"
jq -e '[.checks[] | select(.id == "peer.reachable" and .status == "fail" and (.fix | length > 0))] | length == 1' <<<"$out" >/dev/null ||
  fail "doctor on C: no failed peer.reachable check with a fix"
topology_down
fi

if [[ "$networks" == *" pairing "* ]]; then
scenario "5. relay pairing: three machines join with codes, nothing done on the relay"
TOPO="$T/pairing"
mkdir -p "$TOPO"
topology_up eim
relay_init
relay_start
codes=$(relay_cmd pair --count 3 --ttl 10m --quiet 2>&1) || fail "peerup-relay pair: $codes"
mapfile -t CODE <<<"$codes"
((${#CODE[@]} == 3)) || fail "peerup-relay pair printed ${#CODE[@]} codes: $codes"
log "the operator's only step: peerup-relay pair --count 3 ($(relay_cmd pair --list | head -n1))"
[[ ! -s "$RELAY_DIR/relay_authorized_keys" ]] || fail "the relay authorizes someone before any join"

# join_host <x> <code>: `peerup join <code>` on host x, no config before.
join_host() {
  local x="$1" code="$2" out t
  mkdir -p "$TOPO/$x/home"
  t=$(now)
  out=$(pu "$x" join "$code" --name "host-$x" --no-daemon 2>&1) || fail "join on host $x: $out"
  [[ "$out" == *"Joined pairing group"* ]] || fail "join on host $x: $out"
  ID[$x]=$(pu "$x" whoami)
  timing "host $x joined the relay's group in $(since "$t") s (${ID[$x]})"
  printf '%s\n' "$out" >"$TOPO/$x/join.log"
}

# has_peer <x> <peer-id>: host x's authorized_keys has a line for it.
has_peer() { grep -q "^$2 " "$TOPO/$1/node/authorized_keys"; }

# Every host runs sshd (one config and host key; the command run over ssh
# prints the address of the host it ran on) and exposes it with `peerup
# service add`.
sshd_start
for x in b c; do
  bg "sshd-$x" "h$x" "$SSH_DIR/sshd-$x.log" "$SSHD" -D -e -f "$SSH_DIR/sshd_config" \
    -o "PidFile=$SSH_DIR/sshd-$x.pid"
  wait_for "sshd on host $x's 127.0.0.1:22" 10 tcp_listening "h$x" 22
done
host_key=$(cut -d' ' -f1,2 "$SSH_DIR/host_key.pub")
for port in 2312 2313 2321 2323 2331 2332; do
  printf '[127.0.0.1]:%s %s\n' "$port" "$host_key" >>"$SSH_DIR/known_hosts"
done
i=0
for x in a b c; do
  join_host "$x" "${CODE[$i]}"
  pu "$x" service add ssh 127.0.0.1:22 >/dev/null || fail "service add on host $x"
  pu_bg daemon "$x" daemon
  wait_for "$x's daemon to reserve on the relay" 30 in_log "$TOPO/$x/daemon.log" "relay reservation accepted"
  i=$((i + 1))
done
for x in a b c; do
  grep -q "^${ID[$x]} .*group=" "$RELAY_DIR/relay_authorized_keys" ||
    fail "the relay's authorized_keys has no group line for host $x"
done
# B heard of A in the relay's answer; A hears of B and C, and B of C,
# through introductions.
wait_for "A to authorize B and C (introductions)" 30 \
  bash -c "grep -q '^${ID[b]} ' '$TOPO/a/node/authorized_keys' && grep -q '^${ID[c]} ' '$TOPO/a/node/authorized_keys'"
wait_for "B to authorize A and C" 30 \
  bash -c "grep -q '^${ID[a]} ' '$TOPO/b/node/authorized_keys' && grep -q '^${ID[c]} ' '$TOPO/b/node/authorized_keys'"
has_peer c "${ID[a]}" && has_peer c "${ID[b]}" || fail "C's authorized_keys lacks A or B"
log "every host authorizes the other two and the relay (A and B learned of later members from the relay)"

# The same verification code on both sides of each pair.
for pair in "a b" "a c" "b c"; do
  read -r x y <<<"$pair"
  vx=$(pu "$x" verify "${ID[$y]}" --show | sed -n 3p | xargs)
  vy=$(pu "$y" verify "${ID[$x]}" --show | sed -n 3p | xargs)
  [[ -n "$vx" && "$vx" == "$vy" ]] || fail "verification codes differ: $x shows '$vx', $y shows '$vy'"
  log "verification code $x <-> $y: $vx (same on both)"
done
pu b verify "${ID[a]}" --yes >/dev/null
pu b auth list | grep -q "^${ID[a]} .*verified" || fail "B's auth list does not show A verified"

# Every pair reaches the other's sshd, through the relay and directly
# where the NATs allow (this network's do): host x forwards port 23<x><y>
# to host y's ssh service.
declare -A NUM=([a]=1 [b]=2 [c]=3)
mapfile -t sshopts < <(ssh_opts)
t=$(now)
for x in a b c; do
  for y in a b c; do
    [[ "$x" == "$y" ]] && continue
    port="23${NUM[$x]}${NUM[$y]}"
    pu_bg "proxy-$y" "$x" proxy "${ID[$y]}" ssh "$port"
    wait_for "the proxy on host $x to listen on $port" 20 tcp_listening "h$x" "$port"
    # shellcheck disable=SC2016 # expanded by the remote shell, on host y
    out=$(nsx "h$x" timeout 60 ssh "${sshopts[@]}" -p "$port" root@127.0.0.1 \
      'echo "hello from $(id -un)"; ip -o -4 addr show dev eth0') ||
      fail "ssh from $x to $y through the proxy failed: $out"
    [[ "$out" == *"hello from root"* && "$out" == *"10.${NUM[$y]}.0.2/24"* ]] ||
      fail "ssh from $x to $y ran somewhere unexpected: $out"
    path=$(pu "$x" ping "${ID[$y]}" -c 1 --json 2>/dev/null | jq -r 'select(.seq) | .path // "error"')
    log "ssh $x -> $y reached 10.${NUM[$y]}.0.2 (ping path now: $path)"
  done
done
timing "ssh between every pair (6 directions) through their proxies in $(since "$t") s"

# With all codes used the relay pairs nobody; with a new group open, a
# used code and a wrong one are refused.
if out=$(pu c join "${CODE[0]}" --no-daemon 2>&1); then
  fail "a used code was accepted with no codes open: $out"
fi
[[ "$out" == *"without answering"* ]] || fail "no codes open: unexpected error: $out"
second=$(relay_cmd pair --count 1 --quiet 2>&1) || fail "peerup-relay pair: $second"
if out=$(pu c join "${CODE[0]}" --no-daemon 2>&1); then
  fail "a used code was accepted: $out"
fi
[[ "$out" == *"refused the pairing code"* ]] || fail "used code: unexpected error: $out"
c6="${second:5:1}"
wrong="${second:0:5}$([[ "$c6" == A ]] && echo B || echo A)${second:6}"
mkdir -p "$TOPO/s/home"
stranger() {
  nsx hc env HOME="$TOPO/s/home" RUST_LOG="$LOG_FILTER" "$PEERUP" --config "$TOPO/s/node/config.yaml" "$@"
}
if out=$(stranger join "$wrong" --no-daemon 2>&1); then
  fail "a wrong code was accepted: $out"
fi
[[ "$out" == *"refused the pairing code"* ]] || fail "wrong code: unexpected error: $out"
sid=$(stranger whoami)
! grep -q "^$sid " "$RELAY_DIR/relay_authorized_keys" || fail "the relay authorized a machine with a wrong code"
log "a used code and a wrong code were refused; the relay authorized nobody for them"
# A stranger that connects and does not pair is closed after its probation
# (15 s), and never holds a reservation.
bg stranger-s hc "$TOPO/s/daemon.log" env HOME="$TOPO/s/home" RUST_LOG="$LOG_FILTER" \
  "$PEERUP" --config "$TOPO/s/node/config.yaml" daemon
relay_log="$RELAY_DIR/relay-$RELAY_STARTS.log"
t=$(now)
wait_for "the relay to let the stranger in on probation" 20 in_log "$relay_log" "accepting a connection for pairing only peer=$sid"
wait_for "the relay to close the stranger after its probation" 40 in_log "$relay_log" "probation over without pairing: closing peer=$sid"
timing "the stranger was closed $(since "$t") s after it connected (probation 15 s)"
in_log "$relay_log" "reservation accepted peer=$sid" && fail "the stranger got a reservation"
stop stranger-s
topology_down
fi

if [[ "$networks" == *" lan "* ]]; then
scenario "6. LAN: home and laptop find each other by mDNS, the relay unreachable"
TOPO="$T/lan"
mkdir -p "$TOPO"
lan_topology_up
relay_init
node_init a
node_init b
node_init c
# Paired beforehand (written directly): home and laptop authorize each
# other; C knows home's peer ID (anyone on the LAN can learn it), home
# does not authorize C.
pu a auth add "${ID[b]}" --comment laptop >/dev/null
pu b auth add "${ID[a]}" --comment home >/dev/null
pu c auth add "${ID[a]}" --comment home >/dev/null
printf 'services:\n  ssh:\n    enabled: true\n    local_address: "127.0.0.1:22"\n' \
  >>"$TOPO/a/node/config.yaml"
pu a config validate >/dev/null
sshd_start
relay_start
pu_bg daemon a daemon
wait_for "A's daemon to reserve on the relay" 30 in_log "$TOPO/a/daemon.log" "relay reservation accepted"
# The relay goes away before the laptop and C start: nothing but the LAN.
stop relay
log "relay stopped: unreachable from now on"
t=$(now)
pu_bg daemon b daemon
wait_for "B's daemon to find home on the LAN" 20 in_log "$TOPO/b/daemon.log" "authorized peer on the LAN peer=${ID[a]}"
timing "B's daemon found home by mDNS $(since "$t") s after it started"
# Home has heard someone now, so its mDNS stops asking (for minutes): C,
# joining later, is heard because it answers its own first query, sent
# once its listen addresses are known.
wait_for "A's daemon to hear B on the LAN" 20 in_log "$TOPO/a/daemon.log" "authorized peer on the LAN peer=${ID[b]}"
t=$(now)
pu_bg daemon c daemon
wait_for "A's daemon to hear C, which joined later, on the LAN (and not use it)" 20 in_log "$TOPO/a/daemon.log" "peer on the LAN is not authorized: not used peer=${ID[c]}"
timing "A heard C $(since "$t") s after C started"
t=$(now)
proxy_up b "${ID[a]}"
# shellcheck disable=SC2016 # expanded by the remote shell, on host A
out=$(ssh_from b 'echo "hello from $(id -un)"; ip -o -4 addr show dev eth0') ||
  fail "ssh through B's proxy failed: $out"
[[ "$out" == *"hello from root"* && "$out" == *"192.168.50.2/24"* ]] ||
  fail "ssh ran somewhere unexpected: $out"
timing "ssh command through B's proxy on home (192.168.50.2), relay down: $(since "$t") s from the proxy's start"
path=$(pu b status --json | jq -r --arg p "${ID[a]}" '.peers[] | select(.peer_id == $p) | .path')
[[ "$path" == DIRECT ]] || fail "B's path to home is $path, not DIRECT"
in_log "$TOPO/b/daemon.log" "connected peer=${ID[a]} path=DIRECT addr=/ip4/192.168.50.2/" ||
  fail "B's connection to home is not to its LAN address"
lan=$(pu b status --json | jq -r --arg p "${ID[a]}" '.lan[] | select(.peer_id == $p) | .addresses[]' | grep -c '^/ip4/192.168.50.2/' || true)
((lan > 0)) || fail "B's status lists no LAN address of home"
pu b status --json | jq -e --arg p "${ID[c]}" '[.lan[] | select(.peer_id == $p)] | length == 0' >/dev/null ||
  fail "B's status lists the unauthorized C as a LAN peer"
log "B's status: home is DIRECT, at 192.168.50.2, and listed on the LAN ($lan addresses); C is not"
# C: its daemon found home too (it authorizes home), dials it on the LAN,
# and home's gate refuses it.
wait_for "C's daemon to find home on the LAN" 20 in_log "$TOPO/c/daemon.log" "authorized peer on the LAN peer=${ID[a]}"
before=$(sshd_connections)
t=$(now)
if out=$(pu c ping "${ID[a]}" -c 1 2>&1); then
  fail "ping from C succeeded: $out"
fi
log "C's ping refused: $(tail -n1 <<<"$out")"
proxy_up c "${ID[a]}"
if out=$(ssh_from c true 2>&1); then
  fail "ssh from C through its proxy succeeded: $out"
fi
grep -F "DENIED" "$TOPO/a/daemon.log" | grep -qF "${ID[c]}" || fail "A's daemon did not log C's denial"
timing "C refused (ping and ssh) in $(since "$t") s"
after=$(sshd_connections)
((after == before)) || fail "sshd logged $((after - before)) connection(s) during C's attempts"
log "sshd logged no connection during C's attempts ($before before, $after after)"
topology_down
fi

if [[ "$networks" == *" reach "* ]]; then
scenario "7. a firewall that lets only TCP 443 out: the laptop reaches home over the relay's WebSocket address"
network_up symmetric reach
# The relay also listens on WebSocket, port 443; B knows it at both
# addresses (TCP 7777 first, as `init` wrote it).
relay_ws="/ip4/198.51.100.1/tcp/443/ws/p2p/${RELAY_ADDR##*/p2p/}"
sed -i 's|^    - "/ip4/198.51.100.1/udp/7777/quic-v1"$|&\n    - "/ip4/198.51.100.1/tcp/443/ws"|' "$RELAY_DIR/relay-server.yaml"
stop relay
relay_start
pu b relay add "ws://198.51.100.1:443" --peer-id "${RELAY_ADDR##*/p2p/}" >/dev/null
grep -qF "$relay_ws" "$TOPO/b/node/config.yaml" || fail "relay add ws:// did not write $relay_ws"
wait_for "A's daemon to re-reserve after the relay restart" 30 \
  bash -c "(( \$(grep -cF 'relay reservation accepted' '$TOPO/a/daemon.log') > 1 ))"
# B's router: only TCP to port 443 leaves the LAN (UDP too is dropped).
nsx rb iptables -I FORWARD 1 -i lan -o wan -p tcp --dport 443 -j ACCEPT
nsx rb iptables -I FORWARD 2 -i lan -o wan -j DROP
nsx rb iptables -I INPUT 1 -i lan -j ACCEPT
if nsx hb timeout 3 bash -c 'exec 3<>/dev/tcp/198.51.100.1/7777' 2>/dev/null; then
  fail "the firewall let TCP 7777 out"
fi
log "B's firewall: TCP 7777 to the relay is dropped; only TCP 443 goes out"
t=$(now)
proxy_up b home
proxy_connected "$t"
ssh_check
copy_check RELAYED
read -r allowed allowed_bytes < <(nsx rb iptables -L FORWARD 1 -v -n -x | awk '{ print $1, $2 }')
dropped=$(nsx rb iptables -L FORWARD 2 -v -n -x | awk '{ print $1 }')
log "B's firewall: $allowed packets ($((allowed_bytes >> 20)) MiB) out to TCP 443, $dropped other packets dropped"
# Bytes, not packets: how many packets carry them depends on how large the
# writes are and on the kernel's offloads. B's 64 MiB upload leaves by 443.
((allowed_bytes >= MIB64)) ||
  fail "only $allowed_bytes bytes went out on TCP 443, less than the 64 MiB copied up: the copies did not use the WebSocket address"
nsx rb iptables -D FORWARD 2
nsx rb iptables -D FORWARD 1
nsx rb iptables -D INPUT 1
stop proxy-b

scenario "8. two relays: the relay in use is killed; a new ssh goes through the other"
# A second relay on 198.51.100.2 (its own namespace on the same segment).
new_ns wan2
ip -n "$(ns wan)" link add relay2 type veth peer name eth0 netns "$(ns wan2)"
ip -n "$(ns wan)" link set relay2 master br0 up
ip -n "$(ns wan2)" addr add 198.51.100.2/24 dev eth0
ip -n "$(ns wan2)" link set eth0 up
RELAY2_DIR="$TOPO/relay2"
mkdir -m 700 "$RELAY2_DIR"
sed -e 's/198\.51\.100\.1/198.51.100.2/' -e '/tcp\/443\/ws/d' "$RELAY_DIR/relay-server.yaml" >"$RELAY2_DIR/relay-server.yaml"
chmod 600 "$RELAY2_DIR/relay-server.yaml"
relay2() { nsx wan2 "$RELAY_BIN" --config "$RELAY2_DIR/relay-server.yaml" "$@"; }
: >"$RELAY2_DIR/relay_authorized_keys"
chmod 600 "$RELAY2_DIR/relay_authorized_keys"
relay2_id=$(relay2 info 2>/dev/null | awk '/^Peer ID:/ { print $3 }')
relay2 authorize "${ID[a]}" --comment host-a >/dev/null
relay2 authorize "${ID[b]}" --comment host-b >/dev/null
bg relay2 wan2 "$RELAY2_DIR/relay.log" env RUST_LOG="$LOG_FILTER" "$RELAY_BIN" --config "$RELAY2_DIR/relay-server.yaml" serve
wait_for "the second relay's health endpoint" 20 bash -c "ip netns exec $(ns wan2) curl -fsS -m 2 http://127.0.0.1:9090/healthz >/dev/null"
for x in a b; do
  pu "$x" relay add "/ip4/198.51.100.2/tcp/7777/p2p/$relay2_id" >/dev/null
done
stop daemon-a
pu_bg daemon a daemon
reserved_on_both() {
  [[ "$(pu a status --json | jq '[.relays[] | select(.reserved)] | map(.peer_id) | unique | length')" == 2 ]]
}
t=$(now)
wait_for "A's daemon to reserve on both relays" 30 reserved_on_both
timing "A's daemon holds reservations on both relays $(since "$t") s after its start"
pu a status | grep '^Relay:' | while IFS= read -r line; do log "A: $line"; done
t=$(now)
proxy_up b home
ssh_check
# An ssh session stays open while its relay goes away.
mapfile -t sshopts < <(ssh_opts)
n=$(count_in_log "$SSH_DIR/sshd.log" "Accepted publickey")
bg ssh-session hb "$TOPO/b/ssh-session.log" timeout 120 ssh "${sshopts[@]}" -p 2222 root@127.0.0.1 sleep 100
wait_for "the ssh session to open" 20 bash -c "(( \$(grep -cF 'Accepted publickey' '$SSH_DIR/sshd.log') > $n ))"
# The relay carrying the session: the one with a circuit open (B dials
# through both at once and keeps what connects, so both may carry one).
relay2_stat() { nsx wan2 curl -fsS -m 5 http://127.0.0.1:9090/healthz | jq -r ".$1"; }
c1=$(relay_stat active_circuits)
c2=$(relay2_stat active_circuits)
log "open circuits: relay 1: $c1, relay 2: $c2"
((c1 + c2 > 0)) || fail "no relay carries a circuit between A and B"
if ((c1 > 0)); then victim=relay; else victim=relay2; fi
log "killing $victim (SIGKILL), which carries B's session to A"
t=$(now)
kill -KILL "${PIDS[$victim]}"
tries=0
until out=$(ssh_from b 'echo alive' 2>&1) && [[ "$out" == alive ]]; do
  tries=$((tries + 1))
  ((tries < 30)) || fail "no new ssh succeeded after the relay was killed: $out"
done
elapsed=$(since "$t")
timing "a new ssh through the other relay succeeded $elapsed s after the relay in use was killed ($tries failed attempts first)"
awk -v e="$elapsed" 'BEGIN { exit !(e <= 10) }' ||
  fail "the first new ssh after the kill took $elapsed s (goal: under 10 s)"
if [[ "$victim" == relay ]]; then survivor=$(relay2_stat active_circuits); else survivor=$(relay_stat active_circuits); fi
((survivor > 0)) || fail "the surviving relay carries no circuit"
log "the surviving relay carries $survivor circuit(s)"
pu a status | grep '^Relay:' | while IFS= read -r line; do log "A: $line"; done

scenario "9. a forward kept by the daemon survives daemon restarts on either side"
stop proxy-b
out=$(pu b proxy home ssh 2222 --persist 2>&1) || fail "proxy --persist: $out"
[[ "$out" == *"No daemon is running"* ]] || fail "proxy --persist said: $out"
grep -q 'home-ssh-2222:' "$TOPO/b/node/config.yaml" || fail "the forward is not in B's config"
t=$(now)
pu_bg daemon b daemon
wait_for "B's daemon to listen on the forward" 20 tcp_listening hb 2222
timing "B's daemon listens on the kept forward (127.0.0.1:2222) $(since "$t") s after its start"
ssh_check
[[ "$(pu b proxy --list --json | jq -r '.[0].listening')" == true ]] || fail "proxy --list: the forward does not listen"
# Home's daemon restarts: while it is down, a connection fails fast with
# a reason; once it is back, ssh works through the same forward.
stop daemon-a
t=$(now)
if ssh_from b true 2>/dev/null; then fail "ssh worked while home's daemon was down"; fi
timing "while home's daemon was down, ssh through the kept forward failed in $(since "$t") s"
wait_for "B's daemon to log why" 20 in_log "$TOPO/b/daemon.log" "cannot reach the remote service"
log "B's daemon: $(grep -F 'cannot reach the remote service' "$TOPO/b/daemon.log" | tail -n1 | sed 's/^.*WARN //; s/^.*INFO //')"
t=$(now)
pu_bg daemon a daemon
wait_for "A's daemon to reserve again" 30 in_log "$TOPO/a/daemon.log" "relay reservation accepted"
ssh_check
timing "after home's daemon restarted, ssh through the kept forward worked $(since "$t") s after its start"
# The laptop's daemon restarts: the forward listens again.
stop daemon-b
t=$(now)
pu_bg daemon b daemon
wait_for "B's restarted daemon to listen on the forward" 20 tcp_listening hb 2222
ssh_check
timing "after the laptop's daemon restarted, ssh through the kept forward worked $(since "$t") s after its start"

scenario "10. roaming: the laptop moves to another network behind another NAT"
# A second way out for B, through router C (its own NAT and public
# address), not yet used: no address on B's side until the move.
ip -n "$(ns rc)" link add lan2 type veth peer name wlan netns "$(ns hb)"
ip -n "$(ns rc)" addr add 10.4.0.1/24 dev lan2
ip -n "$(ns rc)" link set lan2 up
ip -n "$(ns hb)" link set wlan up
ssh_check
n=$(count_in_log "$TOPO/b/daemon.log" "network changed")
t=$(now)
# The move: B's old address and route go away, a new address and default
# route come up behind router C (public 198.51.100.13 instead of .12),
# while B's daemon keeps the forward.
ip -n "$(ns hb)" addr del 10.2.0.2/24 dev eth0
ip -n "$(ns hb)" link set eth0 down
ip -n "$(ns hb)" addr add 10.4.0.2/24 dev wlan
ip -n "$(ns hb)" route add default via 10.4.0.1
tries=0
until out=$(ssh_from b 'echo alive' 2>&1) && [[ "$out" == alive ]]; do
  tries=$((tries + 1))
  ((tries < 30)) || fail "no ssh succeeded after the move: $out"
done
elapsed=$(since "$t")
timing "after the move, the first ssh through B's kept forward succeeded in $elapsed s ($tries failed attempts first)"
(($(count_in_log "$TOPO/b/daemon.log" "network changed") > n)) || fail "B's daemon did not notice the network change"
log "B's daemon: $(grep -F 'network changed' "$TOPO/b/daemon.log" | tail -n1 | sed 's/^.*INFO //')"
awk -v e="$elapsed" 'BEGIN { exit !(e <= 10) }' ||
  fail "the first ssh after the move took $elapsed s (goal: under 10 s)"
wait_for "B's daemon to reserve again from its new network" 30 \
  bash -c "(( \$(grep -cF 'relay reservation accepted' '$TOPO/b/daemon.log') >= 2 ))"
log "B's daemon reserved again after the move"
topology_down
fi

SCENARIO="summary"
step "summary"
printf '%s\n' "${SUMMARY[@]}"
log "all scenarios passed in $(since "$RUN_START") s"
