#!/usr/bin/env bash
# Installs, audits or removes the peerup relay on a Linux VPS (systemd).
#
#   sudo bash relay/deploy/setup.sh              install or upgrade
#   sudo bash relay/deploy/setup.sh --check      health audit (no changes)
#   sudo bash relay/deploy/setup.sh --uninstall  stop and remove (keeps keys unless --purge)
#
# Options: --binary <path> (default: build with cargo, or target/release/peerup-relay),
#          --port <n> (default 7777), --no-firewall, --purge (with --uninstall).
# See docs/RELAY.md for the whole VPS guide.
set -euo pipefail

PORT=7777
BINARY=""
FIREWALL=1
PURGE=0
MODE=install
CONF_DIR=/etc/peerup-relay
BIN=/usr/local/bin/peerup-relay
UNIT=/etc/systemd/system/peerup-relay.service
SYSCTL=/etc/sysctl.d/99-peerup-relay.conf
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "setup.sh: $*" >&2; exit 1; }
ok() { printf '  [ok]   %s\n' "$*"; }
bad() { printf '  [FAIL] %s\n' "$*"; FAILED=1; }
warn() { printf '  [warn] %s\n' "$*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --check) MODE=check ;;
    --uninstall) MODE=uninstall ;;
    --purge) PURGE=1 ;;
    --binary) BINARY="${2:?--binary needs a path}"; shift ;;
    --port) PORT="${2:?--port needs a number}"; shift ;;
    --no-firewall) FIREWALL=0 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done
[[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || die "--port must be 1-65535"

need_root() { [ "$(id -u)" -eq 0 ] || die "run as root (sudo)"; }

install_binary() {
  if [ -z "$BINARY" ]; then
    if [ -x "$ROOT/target/release/peerup-relay" ]; then
      BINARY="$ROOT/target/release/peerup-relay"
    elif command -v cargo >/dev/null; then
      # The release profile optimizes the whole program at link time
      # (Cargo.toml), which needs about 2.6 GB of memory; a small VPS
      # builds without it: a bigger binary, the same code.
      # A container's memory limit bounds the build whatever the host
      # has: cgroup v2 (this process's cgroup, or the namespace's root),
      # or v1's memory controller.
      local avail_kb cg cg1 limit f
      avail_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo 2>/dev/null || true)
      [[ "$avail_kb" =~ ^[0-9]+$ ]] || avail_kb=0
      cg=$(awk -F: '$1 == "0" {print $3}' /proc/self/cgroup 2>/dev/null || true)
      cg1=$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup 2>/dev/null || true)
      for f in "/sys/fs/cgroup${cg}/memory.max" /sys/fs/cgroup/memory.max \
        "/sys/fs/cgroup/memory${cg1}/memory.limit_in_bytes"; do
        limit=$(cat "$f" 2>/dev/null || true)
        if [[ "$limit" =~ ^[0-9]+$ ]] && [ $((limit / 1024)) -lt "$avail_kb" ]; then
          avail_kb=$((limit / 1024))
        fi
      done
      if [ "$avail_kb" -lt 3000000 ]; then
        echo "Building peerup-relay (release, without link-time optimization: under 3 GB of memory available)..."
        (cd "$ROOT" && CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
          cargo build --release --locked -p peerup-relay)
      else
        echo "Building peerup-relay (release; a few minutes)..."
        (cd "$ROOT" && cargo build --release --locked -p peerup-relay)
      fi
      BINARY="$ROOT/target/release/peerup-relay"
    else
      die "no binary: pass --binary <path> or install Rust (cargo)"
    fi
  fi
  [ -x "$BINARY" ] || die "$BINARY is not an executable"
  install -m 0755 "$BINARY" "$BIN.new" && mv -f "$BIN.new" "$BIN"
  echo "Installed $BIN ($("$BIN" version))"
}

write_config() {
  install -d -m 0700 -o peerup-relay -g peerup-relay "$CONF_DIR"
  if [ ! -f "$CONF_DIR/relay-server.yaml" ]; then
    umask 077
    cat > "$CONF_DIR/relay-server.yaml" <<YAML
version: 1
identity:
  key_file: "relay_node.key"
network:
  listen_addresses:
    - "/ip4/0.0.0.0/tcp/$PORT"
    - "/ip6/::/tcp/$PORT"
    - "/ip4/0.0.0.0/udp/$PORT/quic-v1"
    - "/ip6/::/udp/$PORT/quic-v1"
security:
  authorized_keys_file: "relay_authorized_keys"
  enable_connection_gating: true
health:
  enabled: true
  listen_address: "127.0.0.1:9090"
YAML
    echo "Wrote $CONF_DIR/relay-server.yaml"
  fi
  if [ ! -f "$CONF_DIR/relay_authorized_keys" ]; then
    umask 077
    printf '# Peers allowed to use this relay: <peer-id>  # comment\n' > "$CONF_DIR/relay_authorized_keys"
  fi
  chown -R peerup-relay:peerup-relay "$CONF_DIR"
  chmod 0600 "$CONF_DIR"/relay-server.yaml "$CONF_DIR"/relay_authorized_keys
}

tune_udp() {
  # QUIC wants larger UDP buffers than most distributions allow.
  cat > "$SYSCTL" <<SYS
net.core.rmem_max=7500000
net.core.wmem_max=7500000
SYS
  sysctl -q -p "$SYSCTL" || warn "could not apply $SYSCTL now (it applies at boot)"
}

open_firewall() {
  [ "$FIREWALL" -eq 1 ] || return 0
  if command -v ufw >/dev/null && ufw status | grep -q "Status: active"; then
    ufw allow "$PORT/tcp" >/dev/null && ufw allow "$PORT/udp" >/dev/null && echo "ufw: opened $PORT/tcp and $PORT/udp"
  elif command -v firewall-cmd >/dev/null && firewall-cmd --state >/dev/null 2>&1; then
    firewall-cmd --permanent --add-port="$PORT/tcp" --add-port="$PORT/udp" >/dev/null && firewall-cmd --reload >/dev/null
    echo "firewalld: opened $PORT/tcp and $PORT/udp"
  else
    echo "No active ufw/firewalld: make sure $PORT/tcp and $PORT/udp are reachable (cloud firewall too)."
  fi
}

install_all() {
  need_root
  command -v systemctl >/dev/null || die "systemd is required"
  id peerup-relay >/dev/null 2>&1 || useradd --system --home-dir "$CONF_DIR" --shell /usr/sbin/nologin peerup-relay
  install_binary
  write_config
  install -m 0644 "$HERE/peerup-relay.service" "$UNIT"
  tune_udp
  open_firewall
  systemctl daemon-reload
  systemctl enable --now peerup-relay.service
  sleep 2
  systemctl --no-pager --lines=0 status peerup-relay.service || true
  echo
  sudo -u peerup-relay "$BIN" info --config "$CONF_DIR/relay-server.yaml" || true
  echo
  echo "Authorize your machines:  sudo -u peerup-relay $BIN authorize <peer-id> --comment <name> --config $CONF_DIR/relay-server.yaml"
  echo "Audit at any time:        sudo bash $0 --check"
}

check_all() {
  FAILED=0
  echo "peerup relay health audit"
  [ -x "$BIN" ] && ok "binary $BIN ($("$BIN" version 2>/dev/null || echo '?'))" || bad "binary $BIN missing"
  if systemctl is-active --quiet peerup-relay.service 2>/dev/null; then ok "service active"; else bad "service not active (journalctl -u peerup-relay)"; fi
  systemctl is-enabled --quiet peerup-relay.service 2>/dev/null && ok "service enabled at boot" || warn "service not enabled at boot"
  for f in relay-server.yaml relay_authorized_keys relay_node.key; do
    p="$CONF_DIR/$f"
    if [ -f "$p" ]; then
      m=$(stat -c %a "$p")
      [ "$m" = 600 ] && ok "$p mode 600" || bad "$p mode $m (fix: chmod 600 $p)"
    else
      bad "$p missing"
    fi
  done
  n=$(grep -cvE '^\s*(#|$)' "$CONF_DIR/relay_authorized_keys" 2>/dev/null || true)
  [ "${n:-0}" -gt 0 ] && ok "$n authorized peers" || warn "no authorized peers: nobody can use the relay"
  if command -v ss >/dev/null; then
    ss -ltn "( sport = :$PORT )" | grep -q LISTEN && ok "listening on tcp/$PORT" || bad "not listening on tcp/$PORT"
    ss -lun "( sport = :$PORT )" | grep -q ":$PORT" && ok "listening on udp/$PORT (QUIC)" || warn "not listening on udp/$PORT"
  fi
  if command -v curl >/dev/null; then
    if body=$(curl -fsS --max-time 3 http://127.0.0.1:9090/healthz 2>/dev/null); then
      ok "healthz: $body"
    else
      warn "healthz not reachable on 127.0.0.1:9090 (health.enabled?)"
    fi
  fi
  r=$(sysctl -n net.core.rmem_max 2>/dev/null || echo 0)
  [ "$r" -ge 7500000 ] && ok "net.core.rmem_max=$r" || warn "net.core.rmem_max=$r (QUIC prefers >= 7500000)"
  [ "$FAILED" -eq 0 ] && echo "All checks passed." || { echo "Some checks failed."; exit 1; }
}

uninstall_all() {
  need_root
  systemctl disable --now peerup-relay.service 2>/dev/null || true
  rm -f "$UNIT" "$SYSCTL" "$BIN"
  systemctl daemon-reload 2>/dev/null || true
  if [ "$PURGE" -eq 1 ]; then
    rm -rf "$CONF_DIR"
    userdel peerup-relay 2>/dev/null || true
    echo "Removed the relay, its user and $CONF_DIR (keys included)."
  else
    echo "Removed the relay. Kept $CONF_DIR (identity key, authorized peers); --purge removes it."
  fi
}

case "$MODE" in
  install) install_all ;;
  check) check_all ;;
  uninstall) uninstall_all ;;
esac
