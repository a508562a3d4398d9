// Kernel facts sockgate relies on, checked on Debian's stock 6.1 kernel (runs
// in the VM tier): kernel TLS (absent from the host kernel), modules loading
// by explicit modprobe and on demand, cgroup v2, a cgroup/connect4 BPF
// program that loads, attaches and is enforced, and kernel BTF.
#include <linux/bpf.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "ktls_pair.h"
#include "vm_check.h"

namespace {

using sockgate::UniqueFd;
using namespace sockgate::vmtest;

bool exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

const std::string kPlain(1000, 'k');

void checkKtlsOnTheWire(Tally& t) {
  TcpPair p = loopbackPair();
  if (!t.check("kTLS: loopback TCP connection", p.error.empty(), p.error)) return;
  const bool moduleBefore = exists("/sys/module/tls");
  const std::string err = enableKtls(p.client.get(), TLS_TX, TLS_1_2_VERSION);
  if (!t.check("kTLS: TCP_ULP \"tls\" + TLS_TX AES-GCM-128 (TLS 1.2) accepted", err.empty(), err))
    return;
  if (!moduleBefore)
    t.check("kTLS: tls module loaded on demand by the kernel", exists("/sys/module/tls"));
  if (!t.check("kTLS: send through the TLS socket",
               send(p.client.get(), kPlain.data(), kPlain.size(), 0) ==
                   static_cast<ssize_t>(kPlain.size()),
               errnoText("send")))
    return;
  // TLS 1.2 AES-GCM record: 5-byte header (type 23, version 3.3, length),
  // 8-byte explicit nonce, ciphertext, 16-byte tag.
  std::array<unsigned char, 5> hdr{};
  std::vector<unsigned char> body(8 + kPlain.size() + 16);
  const bool got = readFull(p.server.get(), hdr.data(), hdr.size());
  const size_t recLen = static_cast<size_t>(hdr[3]) << 8 | hdr[4];
  t.check("kTLS: the peer receives one TLS application-data record of the right size",
          got && hdr[0] == 23 && hdr[1] == 3 && hdr[2] == 3 && recLen == body.size(),
          "header " + std::to_string(hdr[0]) + " " + std::to_string(hdr[1]) + "." +
              std::to_string(hdr[2]) + " length " + std::to_string(recLen));
  const bool bodyOk =
      got && recLen == body.size() && readFull(p.server.get(), body.data(), body.size());
  t.check("kTLS: the record is ciphertext, not the plaintext",
          bodyOk && std::memcmp(body.data() + 8, kPlain.data(), kPlain.size()) != 0);
}

void checkKtlsRoundTrip(Tally& t, unsigned short version, const char* name) {
  TcpPair p = loopbackPair();
  if (!t.check(std::string("kTLS ") + name + ": loopback TCP connection", p.error.empty(), p.error))
    return;
  std::string err = enableKtls(p.client.get(), TLS_TX, version);
  if (err.empty()) err = enableKtls(p.server.get(), TLS_RX, version);
  if (!t.check(std::string("kTLS ") + name + ": TLS_TX and TLS_RX AES-GCM-128 accepted",
               err.empty(), err))
    return;
  std::string got(kPlain.size(), '\0');
  const bool ok = send(p.client.get(), kPlain.data(), kPlain.size(), 0) ==
                      static_cast<ssize_t>(kPlain.size()) &&
                  readFull(p.server.get(), got.data(), got.size());
  t.check(std::string("kTLS ") + name + ": the kernel decrypts what it encrypted",
          ok && got == kPlain, ok ? "different plaintext" : errnoText("send/recv"));
}

void checkModprobe(Tally& t) {
  const auto r = runCommand({"/sbin/modprobe", "esp4"});
  t.check("modprobe esp4 inside the guest", r.status == 0 && exists("/sys/module/esp4"),
          lastLine(r.output));
}

int bpf(int cmd, bpf_attr& attr) {
  return static_cast<int>(syscall(__NR_bpf, cmd, &attr, sizeof attr));
}

// cgroup v2 mounts, and a cgroup/connect4 program that denies every connect
// loads, attaches to a child cgroup through a bpf_link and is enforced on a
// process in that cgroup until the link is closed.
void checkCgroupBpf(Tally& t) {
  char dir[] = "/tmp/sg-cgroup2.XXXXXX";
  if (!t.check("cgroup v2: temporary mount point", mkdtemp(dir) != nullptr, errnoText("mkdtemp")))
    return;
  const std::string root = dir;
  if (!t.check("cgroup v2 mounts", mount("cgroup2", dir, "cgroup2", 0, nullptr) == 0,
               errnoText("mount"))) {
    rmdir(dir);
    return;
  }
  const std::string child = root + "/sg-vm-test";
  const std::string self = std::to_string(getpid());
  const auto moveSelf = [&](const std::string& cg) {
    std::ofstream f(cg + "/cgroup.procs");
    f << self << std::flush;
    return static_cast<bool>(f);
  };
  if (t.check("cgroup v2: child cgroup created and joined",
              mkdir(child.c_str(), 0755) == 0 && moveSelf(child),
              errnoText("mkdir/cgroup.procs"))) {
    const bpf_insn insns[] = {
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},  // r0 = 0: reject
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
    };
    char log[4096] = {};
    bpf_attr attr{};
    attr.prog_type = BPF_PROG_TYPE_CGROUP_SOCK_ADDR;
    attr.expected_attach_type = BPF_CGROUP_INET4_CONNECT;
    attr.insns = reinterpret_cast<uintptr_t>(insns);
    attr.insn_cnt = sizeof insns / sizeof insns[0];
    attr.license = reinterpret_cast<uintptr_t>("GPL");
    attr.log_buf = reinterpret_cast<uintptr_t>(log);
    attr.log_size = sizeof log;
    attr.log_level = 1;
    UniqueFd prog(bpf(BPF_PROG_LOAD, attr));
    if (t.check("BPF: cgroup/connect4 program loads", prog.valid(),
                errnoText("BPF_PROG_LOAD") + " " + log)) {
      UniqueFd cg(open(child.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      attr = {};
      attr.link_create.prog_fd = static_cast<unsigned>(prog.get());
      attr.link_create.target_fd = static_cast<unsigned>(cg.get());
      attr.link_create.attach_type = BPF_CGROUP_INET4_CONNECT;
      UniqueFd link(bpf(BPF_LINK_CREATE, attr));
      if (t.check("BPF: attached to the cgroup through a bpf_link", link.valid(),
                  errnoText("BPF_LINK_CREATE"))) {
        TcpPair denied = loopbackPair();
        t.check(
            "BPF: connect() from the cgroup is refused by the program (EPERM)",
            !denied.error.empty() && denied.error.find(std::strerror(EPERM)) != std::string::npos,
            denied.error.empty() ? "connect succeeded" : denied.error);
        link.reset();
        TcpPair allowed = loopbackPair();
        t.check("BPF: connect() works again once the link is closed", allowed.error.empty(),
                allowed.error);
      }
    }
    moveSelf(root);
    rmdir(child.c_str());
  }
  umount(dir);
  rmdir(dir);
}

}  // namespace

int main() {
  std::signal(SIGPIPE, SIG_IGN);
  Tally t;
  checkModprobe(t);
  checkKtlsOnTheWire(t);
  checkKtlsRoundTrip(t, TLS_1_2_VERSION, "TLS 1.2");
  checkKtlsRoundTrip(t, TLS_1_3_VERSION, "TLS 1.3");
  checkCgroupBpf(t);
  t.check("kernel BTF at /sys/kernel/btf/vmlinux", exists("/sys/kernel/btf/vmlinux"));
  return t.finish();
}
