# shellcheck shell=bash
# Shared by the VM tier scripts (sourced, not run): where things live and the
# one policy for a missing capability.

sg_vm_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sg_repo_dir=$(cd "$sg_vm_dir/../.." && pwd)
# Assets are cached per kernel version under here; build/ is gitignored.
SG_VM_CACHE=${SG_VM_CACHE:-$sg_repo_dir/build/vm}
SG_VM_QEMU=${SG_VM_QEMU:-qemu-system-x86_64}

sg_vm_log() { echo "vm: $*" >&2; }

# A machine without qemu or without a way to obtain the kernel cannot run the
# tier. Locally that is a skip (ctest SKIP_RETURN_CODE 77); under CI=true the
# tier is part of the contract, so it fails loudly instead.
sg_vm_missing() {
  if [ "${CI:-}" = "true" ]; then
    echo "FAIL: VM tier unavailable: $* (CI=true forbids skipping)" >&2
    exit 1
  fi
  echo "SKIP: VM tier unavailable: $*" >&2
  exit 77
}
