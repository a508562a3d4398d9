#include "sockgate/error.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace sockgate {
namespace {

TEST(Error, MessageNamesObjectAndErrno) {
  Error e = makeError(EPERM, "connect4 attach to /sys/fs/cgroup/unified/x");
  EXPECT_EQ(e.message(),
            "connect4 attach to /sys/fs/cgroup/unified/x: EPERM (Operation not permitted)");
}

TEST(Error, WithoutCodeIsJustContext) {
  EXPECT_EQ(makeError(0, "policy.toml:3: unknown field").message(), "policy.toml:3: unknown field");
}

TEST(Error, FromErrnoCapturesCurrentErrno) {
  errno = ENOENT;
  Error e = errnoError("open /nonexistent");
  EXPECT_EQ(e.code, ENOENT);
  EXPECT_EQ(errnoName(ENOENT), "ENOENT");
}

}  // namespace
}  // namespace sockgate
