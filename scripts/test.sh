#!/usr/bin/env bash
# The whole test suite, from a clean clone on Debian 12 as root: installs what it needs, starts PostgreSQL on
# loopback so persistence and API tests run on both SQLite and PostgreSQL, builds, and runs every test. As root with
# QEMU installed, the runtime tests boot real microVMs (TCG) from a guest image with the real envd inside; caches
# live in $WRENN_TEST_DIR (default /var/lib/wrenn-test).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/install-deps.sh --test
WRENN_TEST_POSTGRES_URL=$(scripts/postgres-test-server.sh)
export WRENN_TEST_POSTGRES_URL
case "$WRENN_TEST_POSTGRES_URL" in
  postgres://*[![:space:]]) ;;
  *) echo "scripts/postgres-test-server.sh printed more than a URL: $WRENN_TEST_POSTGRES_URL" >&2; exit 1 ;;
esac
if [ "$(printf '%s\n' "$WRENN_TEST_POSTGRES_URL" | wc -l)" -ne 1 ]; then
  echo "scripts/postgres-test-server.sh printed more than a URL: $WRENN_TEST_POSTGRES_URL" >&2; exit 1
fi
echo "==> PostgreSQL for tests: $WRENN_TEST_POSTGRES_URL"
echo "==> swift build -c release --static-swift-stdlib --product wrenn-envd (the envd baked into the QEMU test image)"
swift build -c release --static-swift-stdlib --product wrenn-envd
WRENN_TEST_ENVD="$(swift build -c release --show-bin-path)/wrenn-envd"
export WRENN_TEST_ENVD
WRENN_TEST_SDK_PYTHON="${WRENN_TEST_DIR:-/var/lib/wrenn-test}/sdk-venv/bin/python"
export WRENN_TEST_SDK_PYTHON
echo "==> swift build --build-tests"
swift build --build-tests
# The code-runner-beta build test installs its Python packages from a wheelhouse, never from PyPI (capsules have no
# network in tests); fetched here, once, with the same pip flags `wrenn template build` uses.
WRENN_TEST_WHEELHOUSE="${WRENN_TEST_DIR:-/var/lib/wrenn-test}/wheelhouse"
export WRENN_TEST_WHEELHOUSE
echo "==> wheels of images/recipes/code-runner-beta.recipe into $WRENN_TEST_WHEELHOUSE"
"$(swift build --show-bin-path)/wrenn" template wheels images/recipes/code-runner-beta.recipe --dest "$WRENN_TEST_WHEELHOUSE"
echo "==> swift test"
# Serially: the QEMU suites boot TCG guests that saturate both cores, and timing-sensitive tests beside them
# (TTL auto-pause, WebSocket attach right after the upgrade) then fail for the wrong reason. The whole suite
# still runs in about a minute and a half.
swift test --skip-build --no-parallel "$@"
