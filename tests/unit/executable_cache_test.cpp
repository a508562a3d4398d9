// ExecutableCache against real child processes (no privileges needed): one
// read per process, forgotten when the process exits, read again after an
// exec or for a thread name it has not seen.
#include "common/executable_cache.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

namespace sockgate {
namespace {

// A child that waits for a byte on a pipe, then execs /bin/sleep (or, if
// the pipe closes without one, exits).
struct Child {
  pid_t pid = -1;
  int go = -1;
  Child() {
    int p[2];
    EXPECT_EQ(::pipe(p), 0);
    pid = ::fork();
    if (pid == 0) {
      ::close(p[1]);
      char c;
      if (::read(p[0], &c, 1) == 1) ::execl("/bin/sleep", "sleep", "30", nullptr);
      ::_exit(0);
    }
    ::close(p[0]);
    go = p[1];
  }
  void exec() {
    ASSERT_EQ(::write(go, "x", 1), 1);
    const std::string before = std::filesystem::read_symlink("/proc/self/exe");
    const auto link = "/proc/" + std::to_string(pid) + "/exe";
    for (int i = 0; i < 500; ++i) {
      std::error_code ec;
      auto now = std::filesystem::read_symlink(link, ec);
      if (!ec && now != before) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    FAIL() << "the child did not exec";
  }
  void end() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
  ~Child() {
    end();
    ::close(go);
  }
};

std::string self() { return std::filesystem::read_symlink("/proc/self/exe"); }

TEST(ExecutableCache, ReadsOncePerProcess) {
  Child child;
  ExecutableCache cache;
  EXPECT_EQ(cache.lookup(child.pid, "worker"), self());
  EXPECT_EQ(cache.lookup(child.pid, "worker"), self());
  EXPECT_EQ(cache.reads(), 1u);
  EXPECT_EQ(cache.size(), 1u);
}

TEST(ExecutableCache, ForgetsAProcessWhenItExits) {
  Child child;
  ExecutableCache cache;
  cache.lookup(child.pid, "worker");
  child.end();
  pollfd p{cache.readyFd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1) << "the exit makes the cache's descriptor readable";
  cache.reap();
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ExecutableCache, AnExecReadsThePathAgain) {
  Child child;
  ExecutableCache cache;
  EXPECT_EQ(cache.lookup(child.pid, "worker"), self());
  child.exec();
  const std::string sleep = std::filesystem::canonical("/bin/sleep");
  EXPECT_EQ(cache.lookup(child.pid, "sleep"), sleep);
  EXPECT_EQ(cache.lookup(child.pid, "sleep"), sleep);
  EXPECT_EQ(cache.lookup(child.pid, "worker"), sleep) << "a name from before the exec reads again";
  EXPECT_EQ(cache.reads(), 3u);
}

TEST(ExecutableCache, LearnsTheNamesOfAProcessesThreads) {
  Child child;
  ExecutableCache cache;
  cache.lookup(child.pid, "main");
  cache.lookup(child.pid, "pool-1");
  cache.lookup(child.pid, "main");
  cache.lookup(child.pid, "pool-1");
  EXPECT_EQ(cache.reads(), 2u);
}

TEST(ExecutableCache, AGoneProcessIsNotCached) {
  Child child;
  const pid_t pid = child.pid;
  child.end();
  ExecutableCache cache;
  EXPECT_EQ(cache.lookup(pid, "worker"), "");
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ExecutableCache, StaysWithinItsBound) {
  Child a, b, c;
  ExecutableCache cache(2);
  cache.lookup(a.pid, "a");
  cache.lookup(b.pid, "b");
  cache.lookup(c.pid, "c");
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.lookup(c.pid, "c"), self());
}

}  // namespace
}  // namespace sockgate
