// What a user sees when the machine cannot run sockgate: one line saying what
// is missing and what to do, exit status 2, and nothing attached.
#include "engine/preflight.h"

#include <gtest/gtest.h>

#include "support/subprocess.h"

namespace sockgate::testing {
namespace {

void expectOneLineError(const ProcessResult& r, const std::string& needle) {
  EXPECT_EQ(r.exitCode, 2) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  EXPECT_EQ(r.err.rfind("sockgate: ", 0), 0u) << r.err;
}

TEST(Preflight, NotRoot) {
  auto r = runProcess({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                       "--inh-caps=-all", sockgateBin(), "run", "--", "true"});
  expectOneLineError(r, "needs root");
}

TEST(Preflight, NoCgroupV2Hierarchy) {
  const std::string mount = *findCgroup2Mount();
  auto r = runProcess({"unshare", "--mount", "--propagation", "private", "sh", "-c",
                       "umount -l '" + mount + "' && exec \"$0\" run -- true", sockgateBin()});
  expectOneLineError(r, "no cgroup v2 hierarchy is mounted");
}

TEST(Preflight, NoBtf) {
  auto r =
      runProcess({"unshare", "--mount", "--propagation", "private", "sh", "-c",
                  "mount -t tmpfs none /sys/kernel/btf && exec \"$0\" run -- true", sockgateBin()});
  expectOneLineError(r, "the kernel has no BTF");
}

TEST(Preflight, BpfRefused) {
  // root inside a user namespace: uid 0, but the kernel refuses BPF to it
  auto r = runProcess({"unshare", "--user", "--map-root-user", sockgateBin(), "run", "--", "true"});
  expectOneLineError(r, "the kernel refused to load");
}

TEST(Preflight, FindsTheCgroupV2MountFromMountinfo) {
  auto mount = findCgroup2Mount();
  ASSERT_TRUE(mount) << mount.error().message();
  EXPECT_EQ(access((*mount + "/cgroup.procs").c_str(), R_OK), 0);
}

}  // namespace
}  // namespace sockgate::testing
