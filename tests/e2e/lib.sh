# shellcheck shell=bash
# Helpers for tests/e2e/run.sh: the namespaced network, background
# processes, bounded polling, and the cleanup trap. Sourced, not run.
#
# Every name here lives inside what the run creates: network namespaces
# named "$PFX-<name>" (PFX is unique per run), interfaces inside them, and
# the temp dir $T. Nothing touches the machine's own interfaces, addresses,
# routes or firewall.

# ---------------------------------------------------------------- output

SCENARIO="setup"
declare -a SUMMARY=()

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
step() { printf '\n=== %s\n' "$*"; }

# A timestamp, and seconds since one (3 decimals).
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# Records a timing line for the final summary and prints it.
timing() {
  SUMMARY+=("$SCENARIO: $*")
  log "timing: $*"
}

# Prints the tail of every log written during the failing scenario (the
# relay's QR code left out), then exits non-zero; the EXIT trap cleans up.
fail() {
  trap - ERR
  if ((BASH_SUBSHELL > 0)); then
    # In a command substitution: say why; the caller's ERR trap fails the
    # scenario and prints the logs.
    printf 'FAILED: %s\n' "$*" >&2
    exit 1
  fi
  printf '\nFAILED in scenario "%s": %s\n' "$SCENARIO" "$*" >&2
  if [[ -n "${T:-}" && -d "$T" ]]; then
    local f
    while IFS= read -r f; do
      printf '\n----- %s (last 40 lines) -----\n' "${f#"$T"/}" >&2
      tail -n 60 "$f" | grep -avF -e '█' -e '▀' -e '▄' | tail -n 40 >&2 || true
    done < <(find "$T" -name '*.log' ! -name init.log -newer "$T/.scenario" -type f 2>/dev/null | sort)
  fi
  exit 1
}

on_error() {
  fail "command failed (exit $1) at line $2: $3"
}

# Marks the start of a scenario: `fail` prints logs written since.
scenario() {
  SCENARIO="$1"
  touch "$T/.scenario"
  step "$1"
}

# wait_for <what> <seconds> <command...>: polls the command until it
# succeeds, at most <seconds>; fails the scenario naming <what>.
wait_for() {
  local what="$1" limit="$2"
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      fail "timed out after ${limit}s waiting for: $what"
    fi
    sleep 0.2
  done
}

# ------------------------------------------------------------ namespaces

declare -a NAMESPACES=()

ns() { printf '%s-%s' "$PFX" "$1"; }
nsx() {
  local n="$1"
  shift
  ip netns exec "$(ns "$n")" "$@"
}

new_ns() {
  ip netns add "$(ns "$1")"
  NAMESPACES+=("$(ns "$1")")
  ip -n "$(ns "$1")" link set lo up
}

# The network (all inside new namespaces):
#
#   wan:  bridge br0, 198.51.100.1/24 = the relay ("the internet")
#   rX:   a home router: wan 198.51.100.1N/24, lan 10.N.0.1/24, NAT
#   hX:   a LAN host 10.N.0.2/24, default route via its router
#
# for X = a (N=1, "home", runs sshd), b (N=2, "laptop"), c (N=3, the
# unauthorized peer). <kind> is `eim` (plain MASQUERADE: endpoint-
# independent mapping, hole punching can work) or `symmetric`
# (MASQUERADE --random-fully: a new port per destination, hole punching
# fails). Either way a router lets in only packets of connections its LAN
# host started (conntrack ESTABLISHED,RELATED), to the LAN and to itself.
topology_up() {
  local kind="$1" x i r h
  new_ns wan
  ip -n "$(ns wan)" link add br0 type bridge
  ip -n "$(ns wan)" addr add 198.51.100.1/24 dev br0
  ip -n "$(ns wan)" link set br0 up
  i=0
  for x in a b c; do
    i=$((i + 1))
    r="r$x"
    h="h$x"
    new_ns "$r"
    new_ns "$h"
    ip -n "$(ns wan)" link add "$r" type veth peer name wan netns "$(ns "$r")"
    ip -n "$(ns wan)" link set "$r" master br0 up
    ip -n "$(ns "$r")" addr add "198.51.100.1$i/24" dev wan
    ip -n "$(ns "$r")" link set wan up
    ip -n "$(ns "$r")" link add lan type veth peer name eth0 netns "$(ns "$h")"
    ip -n "$(ns "$r")" addr add "10.$i.0.1/24" dev lan
    ip -n "$(ns "$r")" link set lan up
    ip -n "$(ns "$h")" addr add "10.$i.0.2/24" dev eth0
    ip -n "$(ns "$h")" link set eth0 up
    ip -n "$(ns "$h")" route add default via "10.$i.0.1"
    # Per namespace: /proc/sys/net belongs to the reader's namespace.
    nsx "$r" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'
    router_rules "$r" "$kind"
  done
}

# The LAN network (scenario 6), all inside new namespaces:
#
#   wan:  bridge br0, 198.51.100.1/24 = the relay
#   rl:   the LAN's router: wan 198.51.100.10/24, bridge br0 192.168.50.1/24
#         (the one segment, multicast flooded as on a home switch), NAT
#   hX:   a LAN host 192.168.50.N/24 on that bridge, default route via
#         .1: a (N=2, "home", runs sshd), b (N=3, "laptop"), c (N=4,
#         unauthorized by home)
lan_topology_up() {
  local x i
  new_ns wan
  ip -n "$(ns wan)" link add br0 type bridge
  ip -n "$(ns wan)" addr add 198.51.100.1/24 dev br0
  ip -n "$(ns wan)" link set br0 up
  new_ns rl
  ip -n "$(ns wan)" link add rl type veth peer name wan netns "$(ns rl)"
  ip -n "$(ns wan)" link set rl master br0 up
  ip -n "$(ns rl)" addr add 198.51.100.10/24 dev wan
  ip -n "$(ns rl)" link set wan up
  ip -n "$(ns rl)" link add br0 type bridge
  ip -n "$(ns rl)" addr add 192.168.50.1/24 dev br0
  ip -n "$(ns rl)" link set br0 up
  i=1
  for x in a b c; do
    i=$((i + 1))
    new_ns "h$x"
    ip -n "$(ns rl)" link add "h$x" type veth peer name eth0 netns "$(ns "h$x")"
    ip -n "$(ns rl)" link set "h$x" master br0 up
    ip -n "$(ns "h$x")" addr add "192.168.50.$i/24" dev eth0
    ip -n "$(ns "h$x")" link set eth0 up
    ip -n "$(ns "h$x")" route add default via 192.168.50.1
  done
  nsx rl sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'
  router_rules rl eim
}

router_rules() {
  local r="$1" kind="$2" masq=(-j MASQUERADE)
  [[ "$kind" == symmetric ]] && masq+=(--random-fully)
  nsx "$r" iptables -t nat -A POSTROUTING -o wan "${masq[@]}"
  # Only replies to what the LAN started come in. Dropping the rest in
  # filter (not raw) also keeps unsolicited packets from leaving conntrack
  # entries behind: an unconfirmed entry dies with its dropped packet.
  nsx "$r" iptables -A FORWARD -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  nsx "$r" iptables -A FORWARD -i wan -j DROP
  nsx "$r" iptables -A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  nsx "$r" iptables -A INPUT -i wan -j DROP
}

# ------------------------------------------------------------- processes

declare -A PIDS=()

# bg <name> <namespace> <log> <command...>: starts a background process
# in a namespace; its pid is PIDS[<name>].
bg() {
  local name="$1" n="$2" out="$3"
  shift 3
  ip netns exec "$(ns "$n")" "$@" >"$out" 2>&1 </dev/null &
  PIDS[$name]=$!
}

# Whether a pid is still running (a zombie child is not).
running() {
  local st
  st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ "$st" != Z ]]
}

exited() { ! running "$1"; }

# reap <name> <seconds>: waits for a process to exit by itself and
# returns its exit status.
reap() {
  local pid="${PIDS[$1]}"
  wait_for "$1 to exit" "$2" exited "$pid"
  unset "PIDS[$1]"
  local rc=0
  wait "$pid" || rc=$?
  return "$rc"
}

# stop <name>: SIGTERM, up to 10 s to exit, then SIGKILL.
stop() {
  local pid="${PIDS[$1]:-}" i
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    running "$pid" || break
    sleep 0.2
  done
  if running "$pid"; then
    log "$1 (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$1]"
}

# Whether something in namespace <n> listens on TCP <port>.
tcp_listening() {
  nsx "$1" ss -Hltn "sport = :$2" | grep -q .
}

# Removes every process, namespace (and the temp dir unless E2E_KEEP=1).
# Runs on every exit, failed or not.
cleanup() {
  local rc=$? name n pid
  trap - ERR EXIT
  set +e
  for name in "${!PIDS[@]}"; do
    kill -TERM "${PIDS[$name]}" 2>/dev/null
  done
  for name in "${!PIDS[@]}"; do
    pid="${PIDS[$name]}"
    for ((i = 0; i < 25; i++)); do
      running "$pid" || break
      sleep 0.2
    done
  done
  # Anything still inside our namespaces was started by this run.
  for n in "${NAMESPACES[@]}"; do
    for pid in $(ip netns pids "$n" 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null
    done
  done
  wait 2>/dev/null
  for n in "${NAMESPACES[@]}"; do
    ip netns del "$n" 2>/dev/null
  done
  NAMESPACES=()
  if [[ -n "${T:-}" && -d "$T" ]]; then
    if [[ "${E2E_KEEP:-0}" == 1 ]]; then
      log "kept $T"
    else
      rm -rf "$T"
    fi
  fi
  if [[ "${CREATED_PRIVSEP:-0}" == 1 ]]; then
    rmdir /run/sshd 2>/dev/null
  fi
  exit "$rc"
}

# Tears the network down between topologies (processes first).
topology_down() {
  local name n pid
  for name in "${!PIDS[@]}"; do
    stop "$name"
  done
  for n in "${NAMESPACES[@]}"; do
    for pid in $(ip netns pids "$n" 2>/dev/null); do
      log "left over in $n: pid $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null): SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    done
    ip netns del "$n"
  done
  NAMESPACES=()
}
