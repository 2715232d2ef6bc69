#!/usr/bin/env bash
# Brings up Wrenn on this machine with its embedded defaults (Debian 12, as root): installs what it needs, builds
# `wrenn` and the guest agent `wrenn-envd` (release), and starts `wrenn dev` in the background: the control plane
# (SQLite in $WRENN_DIR, mail links in the log) and a host agent running QEMU microVMs; the default guest image is
# built on first start (a few minutes). On first start it creates an admin account and an API key in
# $WRENN_DIR/dev.env. Idempotent: when Wrenn is already up it only prints how to use it.
# `scripts/wrenn-up.sh --foreground` runs it attached to the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
export WRENN_DIR=${WRENN_DIR:-/var/lib/wrenn}
listen=${WRENN_LISTEN_ADDR:-127.0.0.1:8080}
base="http://${listen/0.0.0.0/127.0.0.1}"
mkdir -p "$WRENN_DIR/logs"

if curl -fsS "$base/health" >/dev/null 2>&1; then
  echo "Wrenn is already running at $base"
else
  scripts/install-deps.sh
  echo "==> swift build -c release (wrenn, wrenn-envd; a first build takes several minutes)"
  swift build -c release --static-swift-stdlib --product wrenn-envd
  swift build -c release --static-swift-stdlib --product wrenn
  bin=$(swift build -c release --static-swift-stdlib --show-bin-path)/wrenn
  if [ "${1:-}" = "--foreground" ]; then
    exec "$bin" dev --listen "$listen" --data-dir "$WRENN_DIR"
  fi
  echo "==> starting wrenn dev (log: $WRENN_DIR/logs/wrenn.log)"
  setsid nohup "$bin" dev --listen "$listen" --data-dir "$WRENN_DIR" >>"$WRENN_DIR/logs/wrenn.log" 2>&1 < /dev/null &
  echo $! > "$WRENN_DIR/wrenn.pid"
  echo "    (the first start builds the guest image: debootstrap and a kernel from Debian, a few minutes)"
  for _ in $(seq 1 6000); do
    if curl -fsS "$base/health" >/dev/null 2>&1 && [ -f "$WRENN_DIR/dev.env" ]; then break; fi
    if ! kill -0 "$(cat "$WRENN_DIR/wrenn.pid")" 2>/dev/null; then
      echo "error: wrenn dev exited; see $WRENN_DIR/logs/wrenn.log" >&2; tail -n 20 "$WRENN_DIR/logs/wrenn.log" >&2; exit 1
    fi
    sleep 0.2
  done
  curl -fsS "$base/health" >/dev/null || { echo "error: Wrenn did not come up; see $WRENN_DIR/logs/wrenn.log" >&2; exit 1; }
  echo "Wrenn is up at $base"
fi
if [ -f "$WRENN_DIR/dev.env" ]; then
  echo
  echo "Use it from this shell:   set -a; . $WRENN_DIR/dev.env; set +a"
  echo "(WRENN_BASE_URL and WRENN_API_KEY for the SDK; admin login for the API in the same file)"
fi
echo "Stop it:                  kill \$(cat $WRENN_DIR/wrenn.pid)"
