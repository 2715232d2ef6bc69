#!/usr/bin/env bash
# Installs what Wrenn needs on Debian 12 (as root), idempotently: the apt packages in scripts/apt-packages.txt
# (plus extra names given as arguments) and, with --test, what the test suite needs (PostgreSQL, aiosmtpd, PyYAML,
# and a venv with the official Python SDK wrenn 0.2.0 + pytest under $WRENN_TEST_DIR/sdk-venv for the SDK suite).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
want_test=0
extra=()
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    *) extra+=("$arg") ;;
  esac
done
packages=()
while read -r line; do
  line=${line%%#*}; line=$(echo "$line" | xargs)
  [ -n "$line" ] && packages+=("$line")
done < "$here/apt-packages.txt"
packages+=(ca-certificates curl "${extra[@]}")
if [ "$want_test" = 1 ]; then packages+=(postgresql openssl python3-pip python3-venv); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$want_test" = 1 ] && ! python3 -c 'import aiosmtpd, yaml' 2>/dev/null; then
  # pip first (a pyenv or venv python); Debian's own python refuses plain pip (PEP 668), so fall back to
  # --break-system-packages, then to Debian's packages of the same libraries.
  echo "==> installing aiosmtpd and PyYAML for $(command -v python3)"
  python3 -m pip install -q aiosmtpd PyYAML 2>/dev/null \
    || python3 -m pip install -q --break-system-packages aiosmtpd PyYAML 2>/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-aiosmtpd python3-yaml >/dev/null; }
  python3 -c 'import aiosmtpd, yaml' || { echo "error: could not install aiosmtpd and PyYAML for python3" >&2; exit 1; }
fi
if [ "$want_test" = 1 ]; then
  # The SDK suite's client: wrenn 0.2.0 from PyPI (it declares Python >= 3.12 but runs on 3.11) and pytest.
  venv="${WRENN_TEST_DIR:-/var/lib/wrenn-test}/sdk-venv"
  if ! "$venv/bin/python" -c "import pytest, importlib.metadata as m; assert m.version('wrenn') == '0.2.0'" 2>/dev/null; then
    echo "==> creating $venv with wrenn==0.2.0 and pytest"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --ignore-requires-python wrenn==0.2.0 pytest
  fi
fi
if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then echo "note: add /opt/swift/usr/bin to PATH"; else echo "error: Swift 6.x toolchain not found (swift on PATH)" >&2; exit 1; fi
fi
