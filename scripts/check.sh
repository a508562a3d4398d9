#!/usr/bin/env bash
# make check: the static checks a change must pass before review, without
# root and without running anything against the kernel.
#   check.sh BUILD_DIR
# Prints one line per failed check and ends with "check: N failed" (exit 1)
# or "check: all passed".
set -uo pipefail

build=${1:?usage: scripts/check.sh BUILD_DIR}
cd "$(dirname "$0")/.."
failed=0
fail() { echo "check: $*" >&2; failed=$((failed + 1)); }

# 1. Every C/C++ file we track follows .clang-format (the version the
#    toolchain is pinned to, so that two machines agree).
mapfile -t sources < <(git ls-files '*.c' '*.h' '*.cpp')
if ! out=$(clang-format-19 --dry-run --Werror "${sources[@]}" 2>&1); then
  files=$(grep -oE '^[^:]+\.(c|h|cpp):' <<<"$out" | sort -u | tr -d ':' | tr '\n' ' ')
  fail "not clang-formatted (clang-format-19 -i FILE): $files"
fi

# 2. Shell scripts parse.
while read -r f; do
  bash -n "$f" 2>/dev/null || fail "$f: $(bash -n "$f" 2>&1 | head -1)"
done < <(git ls-files '*.sh' .ci/run)

# 3. The benchmark driver compiles (it runs only under make bench).
for f in $(git ls-files 'bench/driver/*.py'); do
  python3 -c "import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])" "$f" 2>/dev/null ||
    fail "$f does not parse as Python"
done

# 4. The example policies are valid for the sockgate just built.
for f in $(git ls-files 'examples/policies/*.toml'); do
  out=$("$build/sockgate" policy check "$f" 2>&1) || fail "$f: $out"
done

if [ "$failed" -ne 0 ]; then
  echo "check: $failed failed"
  exit 1
fi
echo "check: all passed"
