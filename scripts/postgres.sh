#!/usr/bin/env bash
# A private PostgreSQL server for the tests and the scaled-out topology: installs Debian's
# server if it is missing, creates a cluster for this checkout (loopback only, a port
# derived from the checkout's path so two checkouts don't collide) with a random password,
# creates the database DB (default makana_test) and prints its URL.
# Usage: scripts/postgres.sh [start [DB]] | stop The cluster lives under /tmp because the
# server runs as the postgres user, who may not be able to enter the checkout's folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
hash=$(printf %s "$root" | md5sum | cut -c1-8)
dir="${TEST_POSTGRES_DIR:-/tmp/makana-test-postgres-$hash}"
data="$dir/data"
db="${2:-makana_test}"
[[ "$db" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "error: database name must be lower-case letters, digits and _: $db" >&2; exit 2; }
port="${TEST_POSTGRES_PORT:-$((55000 + 0x${hash:0:4} % 500))}"

# initdb refuses to run as root: run the server as the postgres system user then.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ "${1:-start}" = stop ]; then
  if [ -f "$data/postmaster.pid" ]; then
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    as_owner "$bin/pg_ctl" -D "$data" -m fast stop >&2 || true
  fi
  exit 0
fi

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing PostgreSQL from Debian's packages…" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)


mkdir -p "$dir"
chmod 700 "$dir"
if [ ! -f "$data/PG_VERSION" ]; then
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' )
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  printf '%s\n' "$password" > "$dir/pwfile"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/pwfile"
  as_owner "$bin/initdb" -D "$data" -U makana --pwfile="$dir/pwfile" -A scram-sha-256 >/dev/null
  rm -f "$dir/pwfile"
  printf 'postgresql://makana:%s@127.0.0.1:%s/makana_test\n' "$password" "$port" > "$dir/url"
  chmod 600 "$dir/url"
fi
if ! as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  as_owner "$bin/pg_ctl" -D "$data" -w -l "$data/server.log" \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1" start >/dev/null
fi
url=$(cat "$dir/url")
url="${url%/*}/$db"
export PGPASSWORD="${url#postgresql://makana:}"; PGPASSWORD="${PGPASSWORD%%@*}"
if ! psql -h 127.0.0.1 -p "$port" -U makana -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1; then
  psql -h 127.0.0.1 -p "$port" -U makana -d postgres -qc "CREATE DATABASE \"$db\"" >&2
fi
echo "$url"
