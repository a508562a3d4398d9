// Which run, if any, governs a process at a given cgroup path: a nested
// `sockgate run` must see the run it was started in, and only a live one.
#include "engine/run_scope.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "common/process.h"

namespace sockgate {
namespace {

// The name a run started by this process would give its cgroup.
std::string liveRun() {
  return std::string(kRunCgroupPrefix) + std::to_string(::getpid()) + "-" + startTimeOf(::getpid());
}

TEST(EnclosingRun, AProcessInALiveRunsCgroupIsInsideIt) {
  EXPECT_EQ(enclosingRun("/" + liveRun()), liveRun());
  // the application may have made cgroups of its own below the run's
  EXPECT_EQ(enclosingRun("/" + liveRun() + "/workers/a"), liveRun());
}

TEST(EnclosingRun, OtherCgroupsAreNotRuns) {
  EXPECT_EQ(enclosingRun("/"), std::nullopt);
  EXPECT_EQ(enclosingRun(""), std::nullopt);
  EXPECT_EQ(enclosingRun("/user.slice/user-0.slice/session-1.scope"), std::nullopt);
  EXPECT_EQ(enclosingRun("/sockgate-run-"), std::nullopt);
  EXPECT_EQ(enclosingRun("/sockgate-run-abc-1"), std::nullopt);
  EXPECT_EQ(enclosingRun("/not-" + liveRun()), std::nullopt);
}

TEST(EnclosingRun, ARunThatIsGoneGovernsNothing) {
  // the same pid with another start time: the pid was reused after the run died
  EXPECT_EQ(enclosingRun("/" + std::string(kRunCgroupPrefix) + std::to_string(::getpid()) + "-1"),
            std::nullopt);
}

}  // namespace
}  // namespace sockgate
