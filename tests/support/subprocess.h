// Running real programs from tests: capture output, bound the time, and kill
// (by PID, only what the test started) on every path.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace sockgate::testing {

struct ProcessResult {
  int status = -1;    // raw waitpid status
  int exitCode = -1;  // exit code, or 128+signal
  bool timedOut = false;
  std::string out;
  std::string err;
  std::chrono::milliseconds elapsed{0};
};

ProcessResult runProcess(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A process that runs while the test does. Output goes to files the test can
// read at any time; the destructor kills it (SIGKILL) if it still runs.
class BackgroundProcess {
 public:
  explicit BackgroundProcess(const std::vector<std::string>& argv);
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  void signal(int sig) const;
  // Waits for exit; returns exit code (128+signal), or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  [[nodiscard]] bool running();
  [[nodiscard]] std::string out() const;
  [[nodiscard]] std::string err() const;

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int exitCode_ = -1;
  std::string outPath_;
  std::string errPath_;
};

std::string readFile(const std::string& path);
std::string sourceDir();                       // SG_SOURCE_DIR
std::string sockgateBin();                     // SOCKGATE_BIN
std::string toolBin(const std::string& name);  // a tool built next to the test

// Polls until `ready` or the timeout; returns whether it became ready.
bool waitFor(const std::function<bool()>& ready, std::chrono::milliseconds timeout);

}  // namespace sockgate::testing
