#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server (Debian's postgresql package) on 127.0.0.1 for the tests
# that need one, and prints its SQLAlchemy URL. Installs the package when it is missing.
set -euo pipefail
port="${TIERSYNC_PG_PORT:-54329}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq postgresql) >&2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=$(mktemp -d /tmp/tiersync-pg.XXXXXX)
run_as() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$dir"
run_as "$bin/initdb -D $dir/data -A trust -U tiersync --no-sync" >&2
run_as "$bin/pg_ctl -D $dir/data -l $dir/log -w -o '-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off' start" >&2
run_as "$bin/createdb -h 127.0.0.1 -p $port -U tiersync tiersync_test" >&2
echo "$dir" > /tmp/tiersync-pg.dir
echo "postgresql+psycopg://tiersync@127.0.0.1:$port/tiersync_test"
