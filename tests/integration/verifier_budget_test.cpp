// How hard the kernel's verifier works on each of sockgate's BPF programs,
// against a budget of a tenth of its limit. The verifier gives up (E2BIG) at
// a million processed instructions, and the count grows with the product of
// the states a loop is entered in, not with the code: in 3950c0c, 6.1
// verified connect4 in 84k instructions and gave up on connect6, its twin,
// at the limit. A program that passes far above the budget is one branch
// away from that cliff on some kernel, so it fails here first, on the host
// and in the VM tier (Debian 12's 6.1), with the figures printed.
//
// Every program is loaded the way the engines load it (the same read-only
// settings, the socket guard's two hooks one at a time), with the verifier's
// statistics (log level 4) in a buffer of its own.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "sg_guard.skel.h"
#include "sg_redirect.skel.h"

namespace sockgate::testing {
namespace {

constexpr long kBudget = 100'000;  // processed instructions; the kernel's limit is 1,000,000

int quietLibbpf(enum libbpf_print_level, const char*, va_list) { return 0; }

// The verifier's statistics for one program: a buffer the kernel fills.
struct ProgramLog {
  bpf_program* program;
  std::vector<char> buffer = std::vector<char>(1 << 16, '\0');

  explicit ProgramLog(bpf_program* p) : program(p) {
    bpf_program__set_log_buf(p, buffer.data(), buffer.size());
    bpf_program__set_log_level(p, 4);  // statistics only
  }
  std::string name() const { return bpf_program__name(program); }
  std::string text() const {
    return std::string(buffer.data(), strnlen(buffer.data(), buffer.size()));
  }
  // "processed N insns (limit 1000000) ...", or -1 when the log has none
  long processed() const {
    std::smatch m;
    std::string t = text();
    if (!std::regex_search(t, m, std::regex("processed ([0-9]+) insns"))) return -1;
    return std::stol(m[1]);
  }
};

// Checks one load: it succeeded, and every program stayed within the budget.
void expectWithinBudget(int err, const std::vector<ProgramLog>& logs, const std::string& setting) {
  EXPECT_EQ(err, 0) << "load (" << setting << "): " << std::strerror(-err);
  for (const auto& log : logs) {
    long n = log.processed();
    std::printf("%-22s %-34s %7ld insns processed\n", log.name().c_str(), setting.c_str(), n);
    EXPECT_GE(n, 0) << log.name() << " (" << setting << "): no statistics in\n" << log.text();
    EXPECT_LE(n, kBudget) << log.name() << " (" << setting << "): " << n
                          << " instructions, over the budget of " << kBudget
                          << " (the verifier's limit is 1,000,000):\n"
                          << log.text();
  }
}

class VerifierBudgetTest : public ::testing::Test {
 protected:
  void SetUp() override { previous_ = libbpf_set_print(quietLibbpf); }
  void TearDown() override { libbpf_set_print(previous_); }

 private:
  libbpf_print_fn_t previous_ = nullptr;
};

// The redirect programs under every combination of the read-only settings
// the engine writes before loading (RedirectEngine::Options): the verifier
// drops the branches they rule out, so each is a different program to it.
TEST_F(VerifierBudgetTest, RedirectProgramsInEverySetting) {
  for (unsigned events : {0u, 1u}) {
    const std::string setting = "emit_events=" + std::to_string(events);
    sg_redirect* skel = sg_redirect__open();
    ASSERT_NE(skel, nullptr) << std::strerror(errno);
    skel->rodata->sg_emit_events = events;
    std::vector<ProgramLog> logs;
    bpf_program* p;
    bpf_object__for_each_program(p, skel->obj) logs.emplace_back(p);
    int err = sg_redirect__load(skel);
    expectWithinBudget(err, logs, setting);
    sg_redirect__destroy(skel);
  }
}

// The socket guard's programs, each loaded alone as SocketGuard::load does.
// The BPF LSM hook loads only where the kernel runs the BPF LSM (the VM
// tier's 6.1 does, with SG_EXPECT_BPF_LSM=1; this host refuses it: EPERM).
TEST_F(VerifierBudgetTest, SocketGuardPrograms) {
  const char* expectLsm = std::getenv("SG_EXPECT_BPF_LSM");
  for (bool lsm : {false, true}) {
    sg_guard* skel = sg_guard__open();
    ASSERT_NE(skel, nullptr) << std::strerror(errno);
    bpf_program__set_autoload(skel->progs.sg_lsm_socket_create, lsm);
    bpf_program__set_autoload(skel->progs.sg_sock_create, !lsm);
    std::vector<ProgramLog> logs;
    logs.emplace_back(lsm ? skel->progs.sg_lsm_socket_create : skel->progs.sg_sock_create);
    int err = sg_guard__load(skel);
    if (lsm && err == -EPERM && !(expectLsm && std::string(expectLsm) == "1")) {
      std::printf("%-22s refused by this kernel (EPERM): no BPF LSM here\n",
                  logs[0].name().c_str());
    } else {
      expectWithinBudget(err, logs, "");
    }
    sg_guard__destroy(skel);
  }
}

}  // namespace
}  // namespace sockgate::testing
