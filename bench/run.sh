#!/usr/bin/env bash
# make bench: sockgate against the tools users run today, on loopback in a
# network namespace of its own. Usage: bench/run.sh BUILD_DIR
#
# Creates netns sg-bench-PID (its nftables table and conntrack die with it),
# runs the driver (bench/driver) inside, and on every way out - success,
# failure, Ctrl-C, SIGTERM - stops whatever still runs in that namespace and
# deletes it. The driver itself stops each process it started by PID and
# removes its cgroups. Knobs (environment): SG_BENCH_ROUNDS (5),
# SG_BENCH_SECONDS (3), SG_BENCH_WRK_CONNS (32), SG_BENCH_CONNECTS (20000),
# SG_BENCH_IDLE_CONNS (10000); to repeat a part, SG_BENCH_PATHS (path keys,
# comma-separated) and SG_BENCH_FIGURES (idle, bulk, kernel_relay,
# keepalive, close, connect, micro), whose results go to
# results/<date>-partial.* so that the day's full run stays.
set -euo pipefail

build=$(realpath "${1:?usage: bench/run.sh BUILD_DIR}")
here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "make bench attaches kernel hooks, creates a network namespace and needs root" >&2
  exit 2
fi
for tool in nginx haproxy socat iperf3 wrk nft gnuplot setpriv nsenter bpftool; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (scripts/install-deps.sh)" >&2; exit 2; }
done
for bin in sockgate bench/connect_cost bench/hold_conns bench/flow_work_bench bench/kernel_relay; do
  [ -x "$build/$bin" ] || { echo "bench: $build/$bin is not built (make build)" >&2; exit 2; }
done

ns="sg-bench-$$"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ip netns list | grep -qw "$ns"; then
    # Anything still in our namespace is ours: TERM (sockgate cleans up on
    # it), a grace period, then KILL.
    pids=$(ip netns pids "$ns" || true)
    if [ -n "$pids" ]; then
      kill -TERM $pids 2>/dev/null || true
      for _ in $(seq 30); do
        [ -z "$(ip netns pids "$ns")" ] && break
        sleep 0.1
      done
      pids=$(ip netns pids "$ns" || true)
      [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
    fi
    ip netns del "$ns"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$ns"
ip -n "$ns" link set lo up

# nsenter, not `ip netns exec`: the latter remounts /sys, which would hide
# the cgroup2 hierarchy that sockgate and the driver work in.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
cd "$here"
nsenter --net="/run/netns/$ns" env PYTHONPATH="$here" PYTHONDONTWRITEBYTECODE=1 \
  "$python" -m driver "$build" "$here/results"
