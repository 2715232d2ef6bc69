#!/usr/bin/env bash
# Starts Debian's PostgreSQL on 127.0.0.1:5432 (installing it if needed) with a `wrenn` role that may create
# databases, and prints the admin URL the test suite uses (WRENN_TEST_POSTGRES_URL). Idempotent.
set -euo pipefail
# Only the URL goes to standard output (callers capture it with $(...)): what the tools print there
# (pg_ctlcluster says "Removed stale pid file." and systemd hints on stdout) is sent to standard error. Not with a
# global `exec 1>&2` and a saved descriptor: the server started here would inherit it and $(...) would never end.
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(pg_lsclusters -h | awk 'NR==1{print $1}')
if [ -z "$version" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
  pg_createcluster "$version" main >&2
fi
cluster=$(pg_lsclusters -h | awk 'NR==1{print $2}')
if ! pg_lsclusters -h | awk 'NR==1{print $4}' | grep -q online; then
  pg_ctlcluster "$version" "$cluster" start >&2
fi
for _ in $(seq 1 50); do
  if su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
su postgres -c "psql -qtAc \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wrenn') THEN CREATE ROLE wrenn LOGIN PASSWORD 'wrenn' CREATEDB; END IF; END \\\$\\\$;\"" >/dev/null
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname = 'wrenn'\"" | grep -q 1 || su postgres -c "createdb -O wrenn wrenn"
echo "postgres://wrenn:wrenn@127.0.0.1:5432/wrenn"
