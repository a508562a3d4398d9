#!/usr/bin/env bash
# Prepares what the VM tier boots: Debian's stock 6.1 kernel, fetched with
# `apt-get download` and unpacked here (never installed on the host), as an
# uncompressed vmlinux for qemu's fast PVH entry, plus an initramfs holding
# busybox, kmod's modprobe, the host's ip(8) with its libraries, the modules
# named in modules.list with their dependencies, and the guest init.
#
#   prepare-assets.sh        prints the asset directory (one line) on stdout
#
# Cached per kernel version in $SG_VM_CACHE/<kernel-version>/ (default
# build/vm/): the .deb is downloaded once, vmlinux extracted once, and the
# initramfs rebuilt only when one of its inputs changed. Safe to run
# concurrently (flock). Environment:
#   SG_VM_KERNEL   pin a kernel ABI, e.g. 6.1.0-56-amd64 (default: newest
#                  linux-image-6.1.0-*-amd64 that apt offers)
#   SG_VM_CACHE    cache directory
#   SG_VM_QEMU     the qemu binary (default qemu-system-x86_64)
set -euo pipefail
# shellcheck source=tests/vm/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v "$SG_VM_QEMU" >/dev/null || sg_vm_missing "$SG_VM_QEMU not found (Debian package qemu-system-x86; run: make deps)"
for tool in dpkg-deb apt-get xz cpio depmod modprobe flock sha256sum; do
  command -v "$tool" >/dev/null || sg_vm_missing "$tool is not installed (run: make deps)"
done
if [ ! -x /bin/busybox ] || LC_ALL=C ldd /bin/busybox >/dev/null 2>&1; then
  sg_vm_missing "a static /bin/busybox is needed (Debian package busybox-static)"
fi
ls /usr/share/qemu/pvh.bin >/dev/null 2>&1 || sg_vm_missing "qemu has no PVH option ROM (pvh.bin)"

mkdir -p "$SG_VM_CACHE/debs"
exec 9>"$SG_VM_CACHE/.lock"
flock 9

# Newest linux-image-6.1.0-N-amd64 that apt can fetch: the ABI number moves
# with every Debian point release, so it is discovered, not written down.
# One apt-cache call for all names; an error means "don't know", not "none".
# The answer is kept until apt's lists change (apt-cache takes ~1 s).
apt_candidate() {
  local memo=$SG_VM_CACHE/.apt-candidate names
  if [ -s "$memo" ] && [ "$memo" -nt /var/lib/apt/lists ]; then
    cat "$memo"
    return
  fi
  names=$(apt-cache pkgnames linux-image-6.1.0- 2>/dev/null |
    grep -E '^linux-image-6\.1\.0-[0-9]+-amd64$') || return 0
  # shellcheck disable=SC2086
  apt-cache policy $names 2>/dev/null |
    awk '/^[^ ].*:$/ { p = substr($1, 1, length($1) - 1) }
         /^  Candidate: [0-9]/ { sub("^linux-image-", "", p); print p }' |
    sort -V | tail -1 | tee "$memo"
}

# Kernels with a .deb already in the cache: lets an offline machine keep
# using what it has, and a glitch in apt never moves us to an older kernel.
cached_kernels() {
  local f
  for f in "$SG_VM_CACHE"/debs/linux-image-6.1.0-*-amd64_*.deb; do
    [ -e "$f" ] || continue
    f=${f##*/linux-image-}
    echo "${f%%_*}"
  done
}

cached_deb() { compgen -G "$SG_VM_CACHE/debs/linux-image-$1_*.deb" | head -1; }

kver=${SG_VM_KERNEL:-}
if [ -z "$kver" ]; then
  offered=$(apt_candidate)
  if [ -z "$offered" ] && [ -z "$(cached_kernels)" ] && [ "$(id -u)" -eq 0 ]; then
    sg_vm_log "no linux-image-6.1.0-*-amd64 in the apt lists; running apt-get update once"
    apt-get update -qq >&2 || true
    offered=$(apt_candidate)
  fi
  kver=$( (echo "$offered"; cached_kernels) | grep . | sort -V | tail -1) ||
    sg_vm_missing "apt offers no linux-image-6.1.0-*-amd64 and none is cached in $SG_VM_CACHE/debs"
fi

deb=$(cached_deb "$kver" || true)
if [ -z "$deb" ]; then
  sg_vm_log "downloading linux-image-$kver (once per machine; cached in $SG_VM_CACHE/debs)"
  dl=$(mktemp -d "$SG_VM_CACHE/debs/.dl.XXXXXX")
  trap 'rm -rf "$dl"' EXIT
  # apt drops to the _apt user for downloads; as root into a root-owned
  # directory it only warns about that, so keep root explicitly.
  sandbox=()
  [ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)
  if (cd "$dl" && apt-get download -q "${sandbox[@]}" "linux-image-$kver" >&2); then
    mv "$dl"/linux-image-"$kver"_*.deb "$SG_VM_CACHE/debs/"
  fi
  rm -rf "$dl"
  trap - EXIT
  deb=$(cached_deb "$kver" || true)
  if [ -z "$deb" ]; then
    fallback=$(cached_kernels | sort -V | tail -1)
    if [ -z "$fallback" ] || [ -n "${SG_VM_KERNEL:-}" ]; then
      sg_vm_missing "could not download linux-image-$kver"
    fi
    sg_vm_log "download failed; using the cached $fallback instead"
    kver=$fallback
    deb=$(cached_deb "$kver")
  fi
fi

out=$SG_VM_CACHE/$kver
mkdir -p "$out"

# Everything the initramfs is made of; a change in any of them rebuilds it.
initramfs_bins=(/bin/busybox /usr/bin/kmod /usr/sbin/ip)
mapfile -t initramfs_libs < <(for b in "${initramfs_bins[@]:1}"; do
  LC_ALL=C ldd "$b" | grep -oE '/[^ ]+\.so[^ ]*'; done | sort -u)
inputs=$( (cd "$sg_vm_dir" && sha256sum prepare-assets.sh init.sh modules.list)
  sha256sum "${initramfs_bins[@]}" "${initramfs_libs[@]}"; echo "$deb")

if [ -f "$out/vmlinux" ] && [ -f "$out/initramfs.cpio" ] &&
   [ "$(cat "$out/inputs" 2>/dev/null)" = "$inputs" ]; then
  echo "$out"
  exit 0
fi

start=$SECONDS
sg_vm_log "building VM assets for $kver in $out"
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
pkg=$work/pkg stage=$work/initramfs
dpkg-deb -x "$deb" "$pkg"
[ -d "$pkg/lib/modules/$kver" ] || { echo "vm: $deb has no lib/modules/$kver" >&2; exit 1; }

# The vmlinuz is a bzImage whose payload is xz: the uncompressed ELF inside
# boots through PVH in ~3 s under TCG instead of ~10 s for the bzImage.
if [ ! -f "$out/vmlinux" ]; then
  vmlinuz=$pkg/boot/vmlinuz-$kver
  off=$(grep -abo $'\xfd7zXZ' "$vmlinuz" | head -1 | cut -d: -f1)
  [ -n "$off" ] || { echo "vm: no xz payload in $vmlinuz" >&2; exit 1; }
  # xz stops with an error at the bzImage's trailing data; the ELF check is
  # what says whether the kernel came out whole.
  tail -c +"$((off + 1))" "$vmlinuz" | xz -dcq > "$work/vmlinux" 2>/dev/null || true
  [ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] ||
    { echo "vm: could not extract vmlinux from $vmlinuz" >&2; exit 1; }
  cp "$pkg/boot/config-$kver" "$out/config"
  mv "$work/vmlinux" "$out/vmlinux"
fi

# The .deb ships no modules.dep; depmod the full tree to resolve dependencies,
# copy only the closure of modules.list, and depmod that subset again.
depmod -b "$pkg" "$kver"
moddir=lib/modules/$kver
mkdir -p "$stage/$moddir"
grep -vE '^\s*(#|$)' "$sg_vm_dir/modules.list" | while read -r m; do
  deps=$(modprobe -d "$pkg" -S "$kver" --show-depends "$m") ||
    { echo "vm: module $m (modules.list) not found in $kver" >&2; exit 1; }
  grep '^insmod ' <<<"$deps" | awk '{print $2}'
done | sort -u | while read -r ko; do
  rel=${ko#"$pkg/$moddir/"}
  mkdir -p "$stage/$moddir/$(dirname "$rel")"
  cp "$ko" "$stage/$moddir/$rel"
done
cp "$pkg/$moddir"/modules.{builtin,builtin.modinfo,order} "$stage/$moddir/"
depmod -b "$stage" "$kver"

# busybox supplies the shell and the small tools; kmod replaces its modprobe
# (the kernel calls /sbin/modprobe to load modules on demand), and the real
# ip(8) is there for xfrm and netns, which busybox's ip lacks.
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,mnt}
cp /bin/busybox "$stage/bin/busybox"
/bin/busybox --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$stage/$applet"
done
cp /usr/bin/kmod "$stage/bin/kmod"
for t in modprobe insmod rmmod lsmod depmod modinfo; do ln -sf /bin/kmod "$stage/sbin/$t"; done
cp /usr/sbin/ip "$stage/usr/sbin/ip"
ln -sf /usr/sbin/ip "$stage/sbin/ip"
for lib in "${initramfs_libs[@]}"; do
  mkdir -p "$stage/$(dirname "$lib")"
  cp -L "$lib" "$stage/$lib"
done
install -m 755 "$sg_vm_dir/init.sh" "$stage/init"

# Uncompressed: the guest unpacks it faster than it could decompress it.
(cd "$stage" && find . -print0 | LC_ALL=C sort -z |
  cpio --null -o -H newc --reproducible --quiet) > "$work/initramfs.cpio"
mv "$work/initramfs.cpio" "$out/initramfs.cpio"
dpkg-deb -f "$deb" Package Version > "$out/package"
echo "$inputs" > "$out/inputs"
sg_vm_log "assets for $kver ready in $((SECONDS - start)) s"
echo "$out"
