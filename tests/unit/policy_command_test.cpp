// `sockgate policy check` as a user runs it: the real binary, as whoever runs
// the tests (no root needed), on the shipped examples and on broken files.
#include "cli/policy_command.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "support/subprocess.h"

namespace sockgate::cli {
namespace {

using sockgate::testing::runProcess;
using sockgate::testing::sockgateBin;
using sockgate::testing::sourceDir;
using ::testing::HasSubstr;

// A policy file that exists for one test.
class TempPolicy {
 public:
  explicit TempPolicy(const std::string& text)
      : path_(fmt::format("{}/sg-policy-{}-{}.toml", ::testing::TempDir(), getpid(), ++count_)) {
    std::ofstream(path_) << text;
  }
  ~TempPolicy() { std::remove(path_.c_str()); }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  static inline int count_ = 0;
  std::string path_;
};

TEST(PolicyCheck, ChainExampleIsValidAndListedInPriorityOrder) {
  const std::string file = sourceDir() + "/examples/policies/chain.toml";
  auto r = runProcess({sockgateBin(), "policy", "check", file});
  ASSERT_FALSE(r.timedOut);
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_THAT(r.out, HasSubstr(file + ": valid, 3 services in priority order\n"));
  auto a = r.out.find("\nlogger-a ");
  auto b = r.out.find("\ninspector ");
  auto c = r.out.find("\naudit ");
  ASSERT_NE(a, std::string::npos) << r.out;
  EXPECT_LT(a, b) << r.out;
  EXPECT_LT(b, c) << r.out;
  EXPECT_THAT(r.out, HasSubstr("127.0.0.1:3128 [::1]:3128"));
  EXPECT_THAT(r.out, HasSubstr("closed"));
  EXPECT_THAT(r.out, HasSubstr("port 80,443,8000-8999"));
  // HAProxy attaches no records: the kernel infers them from what it accepted.
  EXPECT_THAT(r.out, HasSubstr("closed  inferred"));
}

TEST(PolicyCheck, DefaultExampleIsValid) {
  auto r = runProcess(
      {sockgateBin(), "policy", "check", sourceDir() + "/examples/policies/default.toml"});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("valid, 1 service in priority order"));
  EXPECT_THAT(r.out,
              HasSubstr("builtin  builtin  127.0.0.1:any [::1]:any  100       open  attached  0 B  "
                        "any TCP"));
}

TEST(PolicyCheck, BrokenFileIsOneLineOnStderrAndStatus2) {
  TempPolicy broken("[[service]]\nname = \"a\"\n\n[service.filter]\nports = [80, \"443-80\"]\n");
  auto r = runProcess({sockgateBin(), "policy", "check", broken.path()});
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            broken.path() +
                ":5: service 'a': filter.ports: '443-80' runs backwards (LO-HI with LO <= HI)\n");

  TempPolicy syntax("[[service]\nname = \"a\"\n");
  r = runProcess({sockgateBin(), "policy", "check", syntax.path()});
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_THAT(r.err, ::testing::StartsWith(syntax.path() + ":1:"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  TempPolicy udp("[[service]]\nname = \"u\"\nfilter.protocols = [\"udp\"]\n");
  r = runProcess({sockgateBin(), "policy", "check", udp.path()});
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_EQ(r.err, udp.path() +
                       ":3: service 'u': filter.protocols: \"udp\" is not supported yet "
                       "(only \"tcp\" for now)\n");
}

TEST(PolicyCheck, MissingFileAndMissingArgument) {
  auto r = runProcess({sockgateBin(), "policy", "check", "/nonexistent/p.toml"});
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_EQ(r.err,
            "/nonexistent/p.toml: cannot read the policy file: ENOENT (No such file or "
            "directory)\n");
  r = runProcess({sockgateBin(), "policy", "check"});
  EXPECT_EQ(r.exitCode, 2);
  r = runProcess({sockgateBin(), "policy"});
  EXPECT_EQ(r.exitCode, 2);
}

TEST(PolicyTable, FilterSummary) {
  sg_filter f{};
  EXPECT_EQ(filterSummary(f), "any TCP");
  f.protocols = SG_PROTO_TCP;
  EXPECT_EQ(filterSummary(f), "any TCP");
  f.match = SG_MATCH_PORT | SG_MATCH_UID | SG_MATCH_COMM | SG_MATCH_CGROUP;
  f.port_count = 2;
  f.ports[0] = {80, 80};
  f.ports[1] = {8000, 8999};
  f.uid_count = 1;
  f.uids[0] = {1000, 1999};
  f.cgroup_id = 42;
  f.cgroup_level = 2;
  std::memcpy(f.comm, "curl", 4);
  EXPECT_EQ(filterSummary(f),
            "tcp; port 80,8000-8999; uid 1000-1999; cgroup id 42 (level 2); comm curl");
}

}  // namespace
}  // namespace sockgate::cli
