#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server (Debian's postgresql package) on 127.0.0.1 for the tests
# that need one, and prints its SQLAlchemy URL. Installs the package when it is missing.
#   usage: .ci/postgres.sh start DIR   (prints the URL)
#          .ci/postgres.sh stop DIR
set -euo pipefail
action="$1"; dir="$2"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq postgresql) >&2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
run_as() { if [ "$(id -u)" = 0 ]; then (cd / && su postgres -s /bin/sh -c "$*"); else sh -c "$*"; fi; }
if [ "$action" = stop ]; then
  run_as "$bin/pg_ctl -D $dir/data -m fast stop" >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit 0
fi
port="${TIERSYNC_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
run_as "$bin/initdb -D $dir/data -A trust -U tiersync --no-sync" >&2
run_as "$bin/pg_ctl -D $dir/data -l $dir/log -w -o '-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off' start" >&2
run_as "$bin/createdb -h 127.0.0.1 -p $port -U tiersync tiersync_test" >&2
echo "postgresql+psycopg://tiersync@127.0.0.1:$port/tiersync_test"
