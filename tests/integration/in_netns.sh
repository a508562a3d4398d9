#!/usr/bin/env bash
# Runs one integration test binary as root in a private network namespace
# (loopback up). The namespace dies with the process, so nothing is left
# behind however the test ends. Without root the test is skipped, except
# under CI=true where a missing privilege must fail loudly.
set -u
if [ "$(id -u)" -ne 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "FAIL: integration test $1 needs root (CI=true forbids skipping)" >&2
    exit 1
  fi
  echo "SKIP: integration test $1 needs root" >&2
  exit 77
fi
exec unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh "$@"
