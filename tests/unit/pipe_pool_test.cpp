// The splice() pipes of an event loop: sized for bulk flows, reused while
// empty, and never kept beyond the pool's bound.
#include "proxy/pipe_pool.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace sockgate::proxy {
namespace {

long pipeMaxSize() {
  std::ifstream f("/proc/sys/fs/pipe-max-size");
  long v = 0;
  f >> v;
  return v;
}

TEST(PipePool, NewPipesHoldAMebibyteWhereTheKernelAllowsIt) {
  PipePool pool;
  auto p = pool.acquire();
  ASSERT_TRUE(p) << p.error().message();
  const int size = ::fcntl(p->write.get(), F_GETPIPE_SZ);
  if (pipeMaxSize() >= PipePool::kPipeBytes)
    EXPECT_EQ(size, PipePool::kPipeBytes);
  else
    EXPECT_GE(size, 4096) << "a refused resize keeps the pipe usable";
  EXPECT_EQ(::fcntl(p->read.get(), F_GETFL) & O_NONBLOCK, O_NONBLOCK);
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
