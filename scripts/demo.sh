#!/usr/bin/env bash
# make demo: a small HTTP server on loopback, then curl to it over IPv4 and
# IPv6 under `sockgate run`, which prints its connection table at exit.
set -euo pipefail
sockgate=${1:-build/release/sockgate}
if [ "$(id -u)" -ne 0 ]; then
  echo "make demo attaches kernel hooks and needs root: run 'sudo make demo'" >&2
  exit 2
fi
www=$(mktemp -d)
server_pid=""
cleanup() {
  local rc=$?
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$www"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "<h1>hello through sockgate</h1>" > "$www/index.html"
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::",0)); print(s.getsockname()[1])')
# "::" is dual-stack: one server answers 127.0.0.1 and [::1]
python3 -m http.server --bind :: --directory "$www" "$port" >/dev/null 2>&1 &
server_pid=$!
for _ in $(seq 50); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.1
done

for url in "http://127.0.0.1:$port/" "http://[::1]:$port/"; do
  echo
  echo "\$ sockgate run -- curl -s $url -o /dev/null"
  "$sockgate" run -- curl -s "$url" -o /dev/null
done
