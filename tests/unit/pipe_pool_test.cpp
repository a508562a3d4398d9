// The splice() pipes of an event loop: sized for bulk flows, reused while
// empty, and never kept beyond the pool's bound.
#include "proxy/pipe_pool.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <unistd.h>

#include <fstream>

#include "common/capability.h"

namespace sockgate::proxy {
namespace {

long pipeMaxSize() {
  std::ifstream f("/proc/sys/fs/pipe-max-size");
  long v = 0;
  f >> v;
  return v;
}

int defaultPipeSize() {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  const int size = ::fcntl(fds[0], F_GETPIPE_SZ);
  ::close(fds[0]);
  ::close(fds[1]);
  return size;
}

TEST(PipePool, NewPipesHoldAMebibyteWhenExemptFromThePerUserAllowance) {
  PipePool pool;
  auto p = pool.acquire();
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(::fcntl(p->read.get(), F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  const int size = ::fcntl(p->write.get(), F_GETPIPE_SZ);
  const bool exempt =
      hasEffectiveCapability(CAP_SYS_ADMIN) || hasEffectiveCapability(CAP_SYS_RESOURCE);
  if (!exempt) {
    EXPECT_EQ(pool.pipeBytes(), 0);
    EXPECT_EQ(size, defaultPipeSize()) << "past the allowance the default is the safe size";
  } else if (pipeMaxSize() >= PipePool::kPipeBytes || hasEffectiveCapability(CAP_SYS_RESOURCE)) {
    EXPECT_EQ(size, PipePool::kPipeBytes);
  } else {
    EXPECT_EQ(size, defaultPipeSize()) << "a refused resize keeps the pipe as it was";
  }
}

TEST(PipePool, AnEmptyPipeIsReusedAndTheSpareOnesAreBounded) {
  PipePool pool(1);
  auto a = pool.acquire();
  auto b = pool.acquire();
  ASSERT_TRUE(a && b);
  const int aRead = a->read.get();
  pool.release(std::move(*a));
  pool.release(std::move(*b));
  EXPECT_EQ(pool.spare(), 1u) << "the second spare pipe is closed, not kept";
  auto again = pool.acquire();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->read.get(), aRead);
  EXPECT_EQ(pool.spare(), 0u);
}

}  // namespace
}  // namespace sockgate::proxy
