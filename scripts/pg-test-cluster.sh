#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the registry tests, on a free loopback port.
#   eval "$(scripts/pg-test-cluster.sh start)"   # exports ASTROBIO_TEST_POSTGRES_URL
#   python -m pytest tests/test_registry.py tests/test_registry_api.py tests/faults/test_registry_faults.py
#   scripts/pg-test-cluster.sh stop
# initdb refuses to run as root, so as root the cluster runs as the `postgres` user (created
# when missing). Trust authentication on 127.0.0.1 only; fsync off: test data, thrown away.
set -euo pipefail
dir="${ASTROBIO_PG_DIR:-${TMPDIR:-/tmp}/astrobio-pg-test}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -n "$bin" ] || bin="$(dirname "$(command -v initdb || echo /usr/local/bin/initdb)")"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "${1:-}" in
start)
  [ -x "$bin/initdb" ] || { echo "pg-test-cluster: no initdb (apt-get install postgresql)" >&2; exit 1; }
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then useradd --system --no-create-home postgres; fi
  if [ -f "$dir/url" ] && as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    echo "export ASTROBIO_TEST_POSTGRES_URL=$(cat "$dir/url")"; exit 0
  fi
  rm -rf "$dir"; mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres" >"$dir/url"
  echo "export ASTROBIO_TEST_POSTGRES_URL=$(cat "$dir/url")"
  ;;
stop)
  if [ -d "$dir/data" ]; then as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true; fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start|stop" >&2; exit 2
  ;;
esac
