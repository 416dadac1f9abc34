#!/usr/bin/env bash
# A private Redis server for Rasa's lock store: installs Debian's redis-server if it is
# missing, runs one instance for this checkout (loopback only, a port derived from the
# checkout's path, a random password, no persistence: locks are short-lived) and prints
# its URL (redis://:password@127.0.0.1:port/1). `scripts/redis.sh stop` stops it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
hash=$(printf %s "$root" | md5sum | cut -c1-8)
dir="${REDIS_DIR:-/tmp/makana-redis-$hash}"
port="${REDIS_PORT:-$((56000 + 0x${hash:0:4} % 500))}"

if [ "${1:-start}" = stop ]; then
  if [ -f "$dir/redis.pid" ]; then
    pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  exit 0
fi

if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing Redis from Debian's packages…" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
fi

mkdir -p "$dir"
chmod 700 "$dir"
if [ ! -f "$dir/url" ]; then
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  cat > "$dir/redis.conf" <<CONF
bind 127.0.0.1
protected-mode yes
port $port
requirepass $password
dir $dir
pidfile $dir/redis.pid
logfile $dir/redis.log
daemonize yes
save ""
appendonly no
CONF
  chmod 600 "$dir/redis.conf"
  printf 'redis://:%s@127.0.0.1:%s/1\n' "$password" "$port" > "$dir/url"
  chmod 600 "$dir/url"
fi
url=$(cat "$dir/url")
password="${url#redis://:}"; password="${password%%@*}"
if ! REDISCLI_AUTH="$password" redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
  redis-server "$dir/redis.conf"
  for _ in $(seq 50); do
    REDISCLI_AUTH="$password" redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
fi
echo "$url"
