#!/usr/bin/env bash
# Runs every test tier and ends with one plain line "N passed, N failed".
#   run-tests.sh RELEASE_BUILD ASAN_BUILD FUZZ_BUILD
set -uo pipefail
release=$1 asan=$2 fuzz=$3
passed=0 failed=0 skipped=0 status=0
log=$(mktemp); trap 'rm -f "$log"' EXIT

tier() {  # tier NAME BUILD_DIR CTEST_ARGS...
  local name=$1 dir=$2; shift 2
  echo "=== $name ==="
  local start=$SECONDS
  ctest --test-dir "$dir" --output-on-failure "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line total fails
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1)
  if [ -n "$line" ]; then
    total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
    fails=$(sed -E 's/.*, ([0-9]+) tests failed.*/\1/' <<<"$line")
    local skips
    skips=$(grep -cE '\(Skipped\)$' "$log" || true)
    passed=$((passed + total - fails - skips)); failed=$((failed + fails)); skipped=$((skipped + skips))
  elif [ "$rc" -ne 0 ]; then
    failed=$((failed + 1))
  fi
  [ "$rc" -ne 0 ] && status=1
  echo "=== $name: $((SECONDS - start)) s ==="
}

tier "unit (release)" "$release" -L unit -j "$(nproc)"
tier "integration (release)" "$release" -L integration
tier "unit (ASan+UBSan)" "$asan" -L unit -j "$(nproc)"
tier "integration (ASan+UBSan)" "$asan" -L integration
tier "fuzz (libFuzzer)" "$fuzz" -L fuzz -j "$(nproc)"
if ctest --test-dir "$release" -N -L vm 2>/dev/null | grep -q 'Total Tests: [1-9]'; then
  tier "vm (Debian 6.1 kernel under qemu)" "$release" -L vm
fi

echo "$passed passed, $failed failed, $skipped skipped"
exit $status
