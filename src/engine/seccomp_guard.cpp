#include "engine/seccomp_guard.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <ctime>

#include "engine/cgroup.h"
#include "engine/preflight.h"

namespace sockgate {
namespace {

constexpr uint32_t kX32Bit = 0x40000000u;  // __X32_SYSCALL_BIT
// i386 syscall numbers (asm/unistd_32.h), for processes that use int $0x80.
constexpr uint32_t kI386Socketcall = 102;
constexpr uint32_t kI386Socket = 359;
constexpr uint32_t kI386Socketpair = 360;
// socketcall's call numbers (linux/net.h).
constexpr uint32_t kSysSocket = 1;
constexpr uint32_t kSysSocketpair = 8;

sock_filter stmt(uint16_t code, uint32_t k) { return BPF_STMT(code, k); }

// Reads a small /proc file; "" if it cannot be read.
std::string readSmall(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > 65536) break;
  }
  return out;
}

// The first number after "Key:" in /proc/<pid>/status.
uint32_t statusField(const std::string& status, const char* key) {
  std::string k = std::string("\n") + key + ":";
  size_t pos = status.find(k);
  if (pos == std::string::npos) return 0;
  return static_cast<uint32_t>(std::strtoul(status.c_str() + pos + k.size(), nullptr, 10));
}

}  // namespace

std::vector<sock_filter> buildSocketSeccompFilter(const SocketPolicy& policy) {
  const bool any = policy.anyFamily();
  const std::vector<uint32_t> families = policy.nonInetFamilies();
  if (!any && families.empty()) return {};

  // A small assembler: jumps name labels, patched once every label has its
  // place (classic BPF jumps only forward, by at most 255).
  enum Label { kNext, kNative, kI386, kSocketcall, kFamily, kAllow, kNotify, kLabels };
  size_t at[kLabels] = {};
  struct Jump {
    size_t pc;
    Label jt, jf;
  };
  std::vector<sock_filter> code;
  std::vector<Jump> jumps;
  auto place = [&](Label l) { at[l] = code.size(); };
  auto load = [&](uint32_t offset) { code.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offset)); };
  auto jeq = [&](uint32_t k, Label jt, Label jf) {
    jumps.push_back({code.size(), jt, jf});
    code.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 0));
  };
  auto ret = [&](uint32_t k) { code.push_back(stmt(BPF_RET | BPF_K, k)); };

  // Every way into socket()/socketpair() on x86_64: the native and x32
  // syscalls, and the i386 ones any process reaches with `int $0x80`
  // (direct, and through socketcall, whose arguments are in memory).
  load(offsetof(seccomp_data, arch));
  jeq(AUDIT_ARCH_X86_64, kNative, kNext);
  jeq(AUDIT_ARCH_I386, kI386, kAllow);
  place(kNative);
  load(offsetof(seccomp_data, nr));
  jeq(__NR_socket, kFamily, kNext);
  jeq(__NR_socketpair, kFamily, kNext);
  jeq(__NR_socket | kX32Bit, kFamily, kNext);
  jeq(__NR_socketpair | kX32Bit, kFamily, kAllow);
  place(kI386);
  load(offsetof(seccomp_data, nr));
  jeq(kI386Socket, kFamily, kNext);
  jeq(kI386Socketpair, kFamily, kNext);
  jeq(kI386Socketcall, kSocketcall, kAllow);
  place(kSocketcall);
  load(offsetof(seccomp_data, args));  // the call number; its arguments are in memory
  jeq(kSysSocket, kNotify, kNext);
  jeq(kSysSocketpair, kNotify, kAllow);
  place(kFamily);
  // args[0] (family), its low 32 bits: the kernel reads an int.
  load(offsetof(seccomp_data, args));
  if (any) {  // every family but the two cgroup/sock_create already guards
    jeq(AF_INET, kAllow, kNext);
    jeq(AF_INET6, kAllow, kNotify);
  } else {
    for (size_t i = 0; i < families.size(); ++i)
      jeq(families[i], kNotify, i + 1 == families.size() ? kAllow : kNext);
  }
  place(kAllow);
  ret(SECCOMP_RET_ALLOW);
  place(kNotify);
  ret(SECCOMP_RET_USER_NOTIF);
  for (const auto& j : jumps) {
    auto off = [&](Label l) -> uint8_t {
      size_t to = l == kNext ? j.pc + 1 : at[l];
      return static_cast<uint8_t>(to - j.pc - 1);
    };
    code[j.pc].jt = off(j.jt);
    code[j.pc].jf = off(j.jf);
  }
  return code;
}

Result<std::unique_ptr<SeccompGuard>> SeccompGuard::prepare(const SocketPolicy& policy) {
  std::unique_ptr<SeccompGuard> g(new SeccompGuard());
  g->policy_ = policy;
  g->filter_ = buildSocketSeccompFilter(policy);
  if (g->filter_.size() > 255) return fail(E2BIG, "seccomp filter for the socket policy too long");
  g->prog_.len = static_cast<unsigned short>(g->filter_.size());
  g->prog_.filter = g->filter_.data();
  if (!g->needed()) return g;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return failErrno("socketpair for the seccomp listener");
  g->parentEnd_ = UniqueFd(sv[0]);
  g->childEnd_ = UniqueFd(sv[1]);
  auto mount = findCgroup2Mount();
  if (mount) g->cgroupMount_ = *mount;  // without it, events carry cgroup 0
  return g;
}

int SeccompGuard::installInChild(int sendFd) const noexcept {
  if (filter_.empty()) return 0;
  // No PR_SET_NO_NEW_PRIVS: see the header (root needs none, and it would
  // strip file capabilities such as ping's cap_net_raw on exec).
  long fd =
      ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog_);
  if (fd < 0) return errno;
  char byte = 'L';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  std::memset(control, 0, sizeof control);
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  const int listener = static_cast<int>(fd);
  std::memcpy(CMSG_DATA(c), &listener, sizeof listener);
  int err = 0;
  if (::sendmsg(sendFd, &msg, MSG_NOSIGNAL) != 1) err = errno ? errno : EIO;
  ::close(listener);  // the parent holds it now; a copy here would keep it alive
  return err;
}

Status SeccompGuard::receiveListener(std::chrono::milliseconds timeout) {
  if (!needed()) return {};
  pollfd p{parentEnd_.get(), POLLIN, 0};
  int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (r < 0) return failErrno("wait for the seccomp listener");
  if (r == 0) return fail(ETIMEDOUT, "wait for the seccomp listener from the child");
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(parentEnd_.get(), &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return failErrno("receive the seccomp listener");
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (n == 0 || !c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
      c->cmsg_len != CMSG_LEN(sizeof(int)))
    return fail(EPROTO, "the child did not send a seccomp listener (did it install the filter?)");
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  listener_ = UniqueFd(fd);
  parentEnd_.reset();
  return {};
}

Result<bool> SeccompGuard::handle(const std::function<void(const sg_sock_event&)>& sink) {
  if (!listener_) return false;
  seccomp_notif req{};
  if (::ioctl(listener_.get(), SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
    if (errno == EINTR || errno == ENOENT) return false;
    return failErrno("SECCOMP_IOCTL_NOTIF_RECV");
  }
  seccomp_notif_resp resp{};
  resp.id = req.id;
  uint32_t family = static_cast<uint32_t>(req.data.args[0]);
  uint32_t type = static_cast<uint32_t>(req.data.args[1]);
  uint32_t protocol = static_cast<uint32_t>(req.data.args[2]);
  bool readable = true;
  int readError = 0;
  if (req.data.arch == AUDIT_ARCH_I386 && req.data.nr == kI386Socketcall) {
    // i386 socketcall(SYS_SOCKET or SYS_SOCKETPAIR, u32 args[]): the
    // arguments are in the caller's memory. Another thread of a 32-bit
    // caller could rewrite them after this read (docs/socket-guard.md);
    // registers, as every other way in uses, cannot change.
    uint32_t words[3] = {};
    iovec local{words, sizeof words};
    iovec remote{reinterpret_cast<void*>(static_cast<uintptr_t>(req.data.args[1] & 0xffffffffu)),
                 sizeof words};
    readable = ::process_vm_readv(static_cast<pid_t>(req.pid), &local, 1, &remote, 1, 0) ==
               static_cast<ssize_t>(sizeof words);
    // a bad pointer gets the kernel's own answer; anything else fails closed
    if (!readable) readError = errno == EFAULT ? EFAULT : EPERM;
    family = words[0];
    type = words[1];
    protocol = words[2];
  }
  auto match = readable ? policy_.match(family, type, protocol) : std::nullopt;

  sg_sock_event e{};
  if (match) {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    e.time_ns =
        static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec);
    e.tid = req.pid;
    const std::string proc = "/proc/" + std::to_string(req.pid);
    const std::string status = "\n" + readSmall(proc + "/status");
    e.tgid = statusField(status, "Tgid");
    e.uid = statusField(status, "Uid");
    e.gid = statusField(status, "Gid");
    std::string comm = readSmall(proc + "/comm");
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    std::memcpy(e.comm, comm.data(), std::min(comm.size(), sizeof e.comm));
    // The cgroup v2 line ("0::/path") is last on hybrid hierarchies.
    const std::string cg = "\n" + readSmall(proc + "/cgroup");
    if (size_t at = cg.find("\n0::"); !cgroupMount_.empty() && at != std::string::npos) {
      std::string rel = cg.substr(at + 4, cg.find('\n', at + 4) - (at + 4));
      if (auto id = cgroupIdOf(cgroupMount_ + rel)) e.cgroup_id = *id;
    }
    e.family = family;
    e.type = type & 0xf;
    e.protocol = policy_.effectiveProtocol(family, type, protocol);
    e.action = match->action;
    e.rule = static_cast<uint32_t>(match->rule);
    e.source = SG_SOCK_FROM_SECCOMP;
  }
  // What /proc said belongs to this request only if the request is still
  // live: otherwise the pid may already name another process.
  if (::ioctl(listener_.get(), SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) != 0) return false;
  if (!readable) {
    resp.error = -readError;  // a socketcall we could not read is not let through unseen
  } else if (match && match->action == SG_SOCK_DENY) {
    resp.error = -EPERM;
  } else {
    // Safe here: socket()'s arguments are registers, not memory the target
    // could change between our check and the kernel's use (socketcall: above).
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  }
  if (::ioctl(listener_.get(), SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0) {
    if (errno == ENOENT) return false;  // the target died meanwhile
    return failErrno("SECCOMP_IOCTL_NOTIF_SEND");
  }
  if (match) sink(e);
  return true;
}

}  // namespace sockgate
