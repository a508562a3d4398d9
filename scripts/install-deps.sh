#!/usr/bin/env bash
# Installs, from Debian's archive only, everything sockgate needs to build,
# test and benchmark. Idempotent: prints nothing and touches nothing when all
# packages are present, so `make demo` and `make test` can call it every time.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config
  clang-19 llvm-19 libclang-rt-19-dev   # BPF objects (-target bpf) and libFuzzer
  clang-format-19   # make check: the tree follows .clang-format
  # kernel side: libbpf loader + bpftool for skeletons
  libbpf-dev bpftool libelf-dev zlib1g-dev
  libmnl-dev   # netlink framing for the XFRM and sock_diag queries (security query)
  # libraries
  libcli11-dev libfmt-dev nlohmann-json3-dev libtomlplusplus-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # real clients and servers the integration tests drive
  iproute2 util-linux procps curl nginx python3 haproxy socat iperf3 wrk nftables dnsutils openssl
  gnuplot-nox fonts-dejavu-core   # make bench: the PNG chart
  tcpdump iputils-ping   # the sniffers the socket guard test denies (AF_PACKET, SOCK_RAW)
  # VM test tier: Debian's 6.1 kernel (fetched, never installed) under qemu TCG
  qemu-system-x86 busybox-static cpio xz-utils kmod
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing Debian packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 2
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian starts nginx/haproxy on install where an init system runs; the tests
# start their own instances on loopback in private namespaces instead.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
