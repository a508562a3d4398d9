#!/usr/bin/env bash
# Runs one command inside a VM booted from Debian's stock 6.1 kernel (qemu,
# TCG) and exits with the command's exit status.
#
#   run-in-vm.sh [--] EXECUTABLE [ARGS...]
#
# The guest sees the host's / read-only through 9p, made writable in guest
# memory by an overlay, and runs the command there as root, chrooted, in the
# caller's working directory and with the caller's environment, so any
# host-built test binary runs unchanged. Writes stay in the guest unless they
# go to $SG_VM_SHARE_RW. The modules from modules.list are there; the kernel
# loads them on demand and modprobe works. The command's stdout and stderr
# come back on two virtio ports, as they are written.
#
# Environment:
#   SG_VM_TIMEOUT   seconds before the VM is killed (default 300); exit 124
#   SG_VM_MEM       guest memory in MiB (default 1024)
#   SG_VM_CPUS      guest CPUs (default 1)
#   SG_VM_SHARE_RW  a host directory mounted read-write at the same path
#   SG_VM_VERBOSE   1: stream the guest console (kernel log) to stderr
#   SG_VM_APPEND    extra kernel command line (e.g. loglevel=7 for a full log)
#   SG_VM_KERNEL, SG_VM_CACHE, SG_VM_QEMU   see prepare-assets.sh
# Inside the guest SG_IN_VM=1 is set.
#
# Exit status: the command's; 124 on timeout; 125 when the guest ended
# without running it (the console log is printed); 77 (or 1 under CI=true)
# when qemu or the kernel is unavailable.
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "${1:-}" = -- ] && shift
if [ $# -lt 1 ]; then
  echo "usage: run-in-vm.sh [--] EXECUTABLE [ARGS...]" >&2
  exit 2
fi
timeout_s=${SG_VM_TIMEOUT:-300}
start=$SECONDS

assets=$("$sg_vm_dir/prepare-assets.sh") || exit $?
kver=${assets##*/}

ctl='' vm_pid='' fwd_pids=()
# shellcheck disable=SC2317  # called from the traps
cleanup() {
  # Only what this script started: the timeout(1) that owns qemu, and the
  # output forwarders (which may still wait in open() if qemu never started).
  [ -n "$vm_pid" ] && kill -TERM "$vm_pid" 2>/dev/null && wait "$vm_pid" 2>/dev/null
  local p
  for p in "${fwd_pids[@]}"; do kill "$p" 2>/dev/null; done
  [ -n "$ctl" ] && rm -rf "$ctl"
}
trap cleanup EXIT
trap 'echo "vm: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM HUP

ctl=$(mktemp -d "${TMPDIR:-/tmp}/sg-vm.XXXXXX") || exit 125

# The command, as a bash script the guest runs in the chroot: the caller's
# environment, working directory and argv, each quoted by bash for bash.
{
  echo "# written by run-in-vm.sh"
  while IFS= read -r -d '' kv; do
    name=${kv%%=*}
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    case $name in PWD | OLDPWD | SHLVL | _ | HOSTNAME) continue ;; esac
    printf 'export %s=%q\n' "$name" "${kv#*=}"
  done < <(env -0)
  echo "export SG_IN_VM=1"
  printf 'cd -- %q || { echo "vm: working directory %q is not visible in the guest" >&2; exit 125; }\n' "$PWD" "$PWD"
  printf 'exec'
  printf ' %q' "$@"
  echo
} > "$ctl/cmd"

share_rw=()
if [ -n "${SG_VM_SHARE_RW:-}" ]; then
  rw=$(realpath -e "$SG_VM_SHARE_RW") || { echo "vm: SG_VM_SHARE_RW=$SG_VM_SHARE_RW does not exist" >&2; exit 2; }
  printf '%s' "$rw" > "$ctl/rw-path"
  share_rw=(-virtfs "local,path=$rw,mount_tag=rw,security_model=none,multidevs=remap")
fi

# qemu writes each stream into a FIFO that a forwarder copies to our own
# stdout/stderr: the caller's file descriptors are used as they are (a file
# opened with >, a pipe to ctest, a terminal) and nothing is buffered.
mkfifo "$ctl/out.fifo" "$ctl/err.fifo" "$ctl/console.fifo" || exit 125
cat "$ctl/out.fifo" & fwd_pids+=($!)
cat "$ctl/err.fifo" >&2 & fwd_pids+=($!)
if [ "${SG_VM_VERBOSE:-0}" = 1 ]; then
  tee "$ctl/console.log" < "$ctl/console.fifo" >&2 & fwd_pids+=($!)
else
  cat "$ctl/console.fifo" > "$ctl/console.log" & fwd_pids+=($!)
fi

# timeout(1) owns qemu: it sends TERM at the deadline (KILL 5 s later) and
# passes on the TERM our cleanup sends, so no qemu outlives this script.
timeout -k 5 "$timeout_s" "$SG_VM_QEMU" \
  -M pc -accel tcg -cpu max -m "${SG_VM_MEM:-1024}" -smp "${SG_VM_CPUS:-1}" \
  -nodefaults -no-user-config -display none -no-reboot \
  -kernel "$assets/vmlinux" -initrd "$assets/initramfs.cpio" \
  -append "console=ttyS0 rdinit=/init panic=-1 quiet cryptomgr.notests mitigations=off ${SG_VM_APPEND:-}" \
  -chardev "file,id=console,path=$ctl/console.fifo" -serial chardev:console \
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$ctl,mount_tag=ctl,security_model=none,multidevs=remap" \
  "${share_rw[@]}" \
  -device virtio-serial-pci,id=vs \
  -chardev "file,id=sgout,path=$ctl/out.fifo" -device virtserialport,bus=vs.0,chardev=sgout,name=sg.stdout \
  -chardev "file,id=sgerr,path=$ctl/err.fifo" -device virtserialport,bus=vs.0,chardev=sgerr,name=sg.stderr \
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
  </dev/null &
vm_pid=$!
wait "$vm_pid"
qemu_rc=$?
vm_pid=''
# qemu is gone. A forwarder whose FIFO qemu never opened (qemu failed to
# start) still waits in open(): opening the FIFO read-write never blocks and
# releases it. Then every forwarder reaches EOF; wait until all output is out.
for f in "$ctl"/*.fifo; do
  exec {fd}<>"$f"
  exec {fd}>&-
done
for p in "${fwd_pids[@]}"; do wait "$p" 2>/dev/null; done
fwd_pids=()

elapsed=$((SECONDS - start))
if [ "$qemu_rc" -eq 124 ] || [ "$qemu_rc" -eq 137 ]; then
  echo "vm: timed out after $timeout_s s (SG_VM_TIMEOUT); guest console, last lines:" >&2
  tail -n 30 "$ctl/console.log" >&2
  exit 124
fi
if [ ! -s "$ctl/status" ]; then
  echo "vm: the guest ended without running the command (qemu exit $qemu_rc); guest console, last lines:" >&2
  tail -n 40 "$ctl/console.log" >&2
  exit 125
fi
status=$(cat "$ctl/status")
[ "${SG_VM_VERBOSE:-0}" = 1 ] && echo "vm: $kver, exit $status, ${elapsed} s" >&2
exit "$status"
