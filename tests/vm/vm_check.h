// What the VM-side test programs share: a PASS/FAIL tally that ends with the
// plain "N passed, N failed" line, and running a helper program (ip,
// modprobe) with input on stdin and its output captured.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/unique_fd.h"

extern char** environ;

namespace sockgate::vmtest {

class Tally {
 public:
  Tally() { std::setvbuf(stdout, nullptr, _IOLBF, 0); }

  // Records one check; `detail` says what was seen when it failed.
  bool check(const std::string& name, bool ok, const std::string& detail = {}) {
    if (ok) {
      ++passed_;
      std::printf("PASS: %s\n", name.c_str());
    } else {
      ++failed_;
      std::printf("FAIL: %s%s%s\n", name.c_str(), detail.empty() ? "" : ": ", detail.c_str());
    }
    return ok;
  }

  // Prints the summary line; the value is the process exit status.
  int finish() const {
    std::printf("%d passed, %d failed\n", passed_, failed_);
    return failed_ == 0 ? 0 : 1;
  }

 private:
  int passed_ = 0;
  int failed_ = 0;
};

struct CommandResult {
  int status = -1;     // exit status, or -1 when it could not run or died by a signal
  std::string output;  // stdout and stderr, interleaved as written
};

// Runs argv[0] (an absolute path: no PATH lookup, no shell) with `input` on
// its stdin.
inline CommandResult runCommand(const std::vector<std::string>& argv,
                                const std::string& input = {}) {
  CommandResult result;
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return {-1, std::string("pipe: ") + std::strerror(errno)};
  UniqueFd inRead(in[0]), inWrite(in[1]);
  if (pipe2(out, O_CLOEXEC) != 0) return {-1, std::string("pipe: ") + std::strerror(errno)};
  UniqueFd outRead(out[0]), outWrite(out[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, inRead.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, outWrite.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, outWrite.get(), 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  inRead.reset();
  outWrite.reset();
  if (rc != 0) return {-1, argv[0] + ": " + std::strerror(rc)};

  // Feed stdin and drain stdout together, so neither side can block the other.
  size_t written = 0;
  if (input.empty()) inWrite.reset();
  char buf[4096];
  while (outRead) {
    pollfd fds[2] = {{outRead.get(), POLLIN, 0}, {inWrite.get(), POLLOUT, 0}};
    if (poll(fds, inWrite ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (inWrite && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t n = write(inWrite.get(), input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 || written == input.size()) inWrite.reset();
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = read(outRead.get(), buf, sizeof buf);
      if (n > 0) {
        result.output.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        outRead.reset();
      }
    }
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  return result;
}

// The last line of a command's output, for a one-line FAIL detail.
inline std::string lastLine(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const auto nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

}  // namespace sockgate::vmtest
