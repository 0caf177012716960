#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback for manual runs, benchmarks and crash tools:
#
#   tools/pg-test.sh COMMAND [ARGS…]
#
# runs initdb in a temp dir (as the postgres user when run as root — initdb refuses root),
# starts the server on 127.0.0.1 and a free port with its socket in that dir, waits for
# pg_isready, creates the database "simkit", runs COMMAND with SIMKIT_PG_URL (and DATABASE_URL)
# set to postgres://postgres@127.0.0.1:PORT/simkit and PGHOST/PGPORT/PGUSER/PGDATABASE for
# psql and pgbench, then stops the cluster and deletes the dir — also when COMMAND fails or the
# script is interrupted. Exits with COMMAND's status.
#
# Example: tools/pg-test.sh sh -c 'simkit serve --db "$SIMKIT_PG_URL" --master-key-file k.hex'
#
# SIMKIT_PG_BIN names the directory holding initdb/pg_ctl; by default the newest
# /usr/lib/postgresql/*/bin, else PATH. PG_TEST_FSYNC=off trades durability for speed (default
# on: crash-consistency runs need a database that keeps its promises). The Rust tests have their
# own helper (host/server/tests/common/pg.rs) doing the same from inside `cargo test`.
set -euo pipefail

[ $# -ge 1 ] || { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

bin="${SIMKIT_PG_BIN:-}"
if [ -z "$bin" ]; then
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4n | tail -n 1 || true)"
fi
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  if command -v initdb >/dev/null; then
    bin="$(dirname "$(command -v initdb)")"
  else
    echo "pg-test.sh: PostgreSQL binaries not found (set SIMKIT_PG_BIN or install the Debian package postgresql)" >&2
    exit 1
  fi
fi

dir="$(mktemp -d /tmp/simkit-pg-XXXXXX)"
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  as_pg=(runuser -u postgres --)
fi

cleanup() {
  "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale -N >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }

port=""
for _ in 1 2 3 4 5; do
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  if "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-k $dir -c listen_addresses=127.0.0.1 -p $port -c fsync=${PG_TEST_FSYNC:-on} -c max_connections=400" \
      start >/dev/null; then
    break
  fi
  port=""
done
[ -n "$port" ] || { echo "pg-test.sh: the server did not start:" >&2; cat "$dir/server.log" >&2; exit 1; }

for _ in $(seq 1 600); do
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
  sleep 0.1
done
"$bin/pg_isready" -q -h 127.0.0.1 -p "$port" || { echo "pg-test.sh: not ready after 60 s" >&2; exit 1; }
"$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres simkit

export SIMKIT_PG_URL="postgres://postgres@127.0.0.1:$port/simkit"
export DATABASE_URL="$SIMKIT_PG_URL"
export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres PGDATABASE=simkit
echo "pg-test.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') at $SIMKIT_PG_URL" >&2

set +e
"$@"
status=$?
set -e
exit "$status"
