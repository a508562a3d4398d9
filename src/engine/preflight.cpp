#include "engine/preflight.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "common/capability.h"

namespace sockgate {

namespace {

// mountinfo escapes spaces and friends as \ooo.
bool isOctal(char c) { return c >= '0' && c <= '7'; }

std::string unescapeMountPath(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && isOctal(s[i + 1]) && isOctal(s[i + 2]) &&
        isOctal(s[i + 3])) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

Result<std::string> findCgroup2Mount(const std::string& mountinfoPath) {
  std::ifstream in(mountinfoPath);
  if (!in) return failErrno("read " + mountinfoPath);
  std::string line;
  while (std::getline(in, line)) {
    // "36 25 0:30 / /sys/fs/cgroup/unified rw,... shared:9 - cgroup2 cgroup2 rw"
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, devno, root, mountPoint;
    head >> id >> parent >> devno >> root >> mountPoint;
    if (root != "/") continue;  // a bind mount of a sub-cgroup is not the hierarchy root
    return unescapeMountPath(mountPoint);
  }
  return fail(ENOENT,
              "no cgroup v2 hierarchy is mounted (mount one, e.g. "
              "'mount -t cgroup2 none /sys/fs/cgroup/unified')");
}

Result<KernelSupport> preflight() {
  if (geteuid() != 0 &&
      !(hasEffectiveCapability(CAP_SYS_ADMIN) && hasEffectiveCapability(CAP_NET_ADMIN) &&
        hasEffectiveCapability(39 /* CAP_BPF */))) {
    return fail(EPERM,
                "needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN and CAP_BPF) to attach "
                "kernel hooks: run it as root, e.g. 'sudo sockgate ...'");
  }
  KernelSupport support;
  auto mount = findCgroup2Mount();
  if (!mount) return std::unexpected(mount.error());
  support.cgroup2Mount = *mount;

  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return fail(ENOENT,
                "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing): use a "
                "kernel built with CONFIG_DEBUG_INFO_BTF=y");
  }

  // libbpf's feature probes report "not supported" for any failure; ask the
  // kernel directly first so that "not allowed" is told apart.
  int mapFd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sg_probe", 4, 4, 1, nullptr);
  if (mapFd < 0) {
    int err = errno;
    if (err == ENOSYS)
      return fail(ENOSYS, "the kernel has no BPF (built without CONFIG_BPF_SYSCALL)");
    return fail(err,
                "the kernel refused to load BPF objects (BPF is restricted here: check "
                "kernel.unprivileged_bpf_disabled, lockdown, a seccomp filter, or that "
                "sockgate runs as real root and not in a user namespace)");
  }
  ::close(mapFd);

  struct Probe {
    bpf_prog_type type;
    const char* what;
  };
  for (const Probe& p : {Probe{BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup/connect4 programs"},
                         Probe{BPF_PROG_TYPE_CGROUP_SOCKOPT, "cgroup/getsockopt programs"}}) {
    int ok = libbpf_probe_bpf_prog_type(p.type, nullptr);
    if (ok == 1) continue;
    if (ok == -EPERM || ok == -EACCES)
      return fail(EPERM, std::string("the kernel refused to load ") + p.what +
                             " (BPF is restricted here: check kernel.unprivileged_bpf_disabled, "
                             "lockdown, or a seccomp filter)");
    return fail(ok < 0 ? -ok : EOPNOTSUPP, std::string("the kernel cannot load ") + p.what +
                                               " (needs CONFIG_BPF_SYSCALL and CONFIG_CGROUP_BPF)");
  }
  for (auto [type, what] : {std::pair{BPF_MAP_TYPE_SK_STORAGE, "socket-local storage maps"},
                            std::pair{BPF_MAP_TYPE_RINGBUF, "ring buffer maps"}}) {
    if (libbpf_probe_bpf_map_type(type, nullptr) != 1)
      return fail(EOPNOTSUPP, std::string("the kernel has no ") + what + " (needs Linux 5.8+)");
  }
  return support;
}

}  // namespace sockgate
