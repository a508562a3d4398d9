// redirect_to: run a command whose TCP connects sockgate redirects to an
// external redirect service (HAProxy in the benchmark), the way `sockgate
// run` does for its built-in service. sockgate has no policy file for
// external services yet, so the benchmark drives the engine directly.
//
//   redirect_to --to 127.0.0.1:PORT [--to6 [::1]:PORT] [--ports LO-HI] -- CMD ARGS...
//
// --ports restricts the service's filter to destination ports LO..HI; the
// connect() cost benchmark uses it to attach the hook without matching.
// Exit status: CMD's (128+N if signal N killed it), 2 if set-up failed.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "engine/preflight.h"
#include "engine/redirect_engine.h"
#include "engine/run_scope.h"

using namespace sockgate;
using namespace std::chrono_literals;

namespace {

constexpr int kSetupFailed = 2;
constexpr uint32_t kServiceId = 7;

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "redirect_to: %s\nusage: redirect_to --to HOST:PORT [--to6 [ADDR6]:PORT] "
               "[--ports LO-HI] -- CMD ARGS...\n",
               why);
  std::exit(kSetupFailed);
}

struct Args {
  std::optional<Endpoint> to4;
  std::optional<Endpoint> to6;
  std::optional<std::pair<uint16_t, uint16_t>> ports;
  std::vector<std::string> command;
};

Args parseArgs(int argc, char** argv) {
  Args a;
  int i = 1;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (i + 1 >= argc) usage(("missing value after " + arg).c_str());
    std::string value = argv[++i];
    if (arg == "--to" || arg == "--to6") {
      auto ep = Endpoint::parse(value);
      if (!ep) usage(ep.error().message().c_str());
      (arg == "--to" ? a.to4 : a.to6) = *ep;
    } else if (arg == "--ports") {
      auto dash = value.find('-');
      if (dash == std::string::npos) usage("--ports wants LO-HI");
      a.ports = {static_cast<uint16_t>(std::stoul(value.substr(0, dash))),
                 static_cast<uint16_t>(std::stoul(value.substr(dash + 1)))};
    } else {
      usage(("unknown option " + arg).c_str());
    }
  }
  for (; i < argc; ++i) a.command.emplace_back(argv[i]);
  if (a.command.empty()) usage("no command");
  if (!a.to4 && !a.to6) usage("--to or --to6 is required");
  return a;
}

int exitStatusOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// Set-up torn down in reverse on every path out, as `sockgate run` does.
struct Scope {
  std::optional<Cgroup> cgroup;
  std::unique_ptr<RedirectEngine> engine;
  ~Scope() {
    if (cgroup && !cgroup->processes().empty()) {
      (void)cgroup->signalAll(SIGTERM);
      for (auto until = std::chrono::steady_clock::now() + 2s;
           std::chrono::steady_clock::now() < until && !cgroup->processes().empty();)
        ::usleep(20'000);
      (void)cgroup->signalAll(SIGKILL);
    }
    engine.reset();
    if (cgroup) {
      if (auto st = cgroup->remove(); !st)
        std::fprintf(stderr, "redirect_to: %s\n", st.error().message().c_str());
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  Args args = parseArgs(argc, argv);

  sigset_t handled, original;
  sigemptyset(&handled);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&handled, s);
  sigprocmask(SIG_BLOCK, &handled, &original);

  auto support = preflight();
  if (!support) {
    std::fprintf(stderr, "redirect_to: %s\n", support.error().message().c_str());
    return kSetupFailed;
  }
  const std::string& mount = support->cgroup2Mount;
  (void)sweepStaleRuns(mount);

  Scope scope;
  auto cg = createRunCgroup(mount);
  if (!cg) {
    std::fprintf(stderr, "redirect_to: %s\n", cg.error().message().c_str());
    return kSetupFailed;
  }
  scope.cgroup.emplace(std::move(*cg));

  // Events batched as `sockgate run` batches them without --trace.
  auto engine = RedirectEngine::start({scope.cgroup->path(), mount, kEventBatchBytes});
  if (!engine) {
    std::fprintf(stderr, "redirect_to: %s\n", engine.error().message().c_str());
    return kSetupFailed;
  }
  scope.engine = std::move(*engine);

  ServiceSpec spec;
  spec.id = kServiceId;
  spec.name = "external";
  spec.listen4 = args.to4;
  spec.listen6 = args.to6;
  if (args.ports) {
    spec.filter.match = SG_MATCH_PORT;
    spec.filter.port_lo = args.ports->first;
    spec.filter.port_hi = args.ports->second;
  }
  if (auto st = scope.engine->setServices({&spec, 1}); !st) {
    std::fprintf(stderr, "redirect_to: %s\n", st.error().message().c_str());
    return kSetupFailed;
  }

  std::vector<char*> argvC;
  for (auto& a : args.command) argvC.push_back(a.data());
  argvC.push_back(nullptr);
  const std::string procs = scope.cgroup->path() + "/cgroup.procs";

  pid_t child = ::fork();
  if (child < 0) {
    std::perror("redirect_to: fork");
    return kSetupFailed;
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &original, nullptr);
    // Join the cgroup before exec, so every connect() of CMD is governed.
    int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) ::_exit(126);
    ::close(fd);
    ::execvp(argvC[0], argvC.data());
    ::_exit(errno == ENOENT ? 127 : 126);
  }

  UniqueFd sfd(::signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK));
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = sfd.get();
  ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, sfd.get(), &ev);
  ev.data.fd = scope.engine->eventsFd();
  ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, ev.data.fd, &ev);

  // Draining the decision events is part of what a redirect costs (sockgate
  // run does it too); the counts say the redirect really happened.
  std::map<uint32_t, uint64_t> decisions;
  std::function<void(const sg_event&)> onEvent = [&](const sg_event& e) { ++decisions[e.decision]; };

  int status = 0;
  bool done = false;
  while (!done) {
    epoll_event events[4];
    int n = ::epoll_wait(ep.get(), events, 4, 100);
    if (n < 0 && errno != EINTR) break;
    if (n == 0) (void)scope.engine->drainEvents(onEvent);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd != sfd.get()) {
        (void)scope.engine->drainEvents(onEvent);
        continue;
      }
      signalfd_siginfo si;
      while (::read(sfd.get(), &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
          if (::waitpid(child, &status, WNOHANG) == child) done = true;
        } else {
          ::kill(child, static_cast<int>(si.ssi_signo));
        }
      }
    }
  }
  (void)scope.engine->drainEvents(onEvent);
  std::fprintf(stderr, "redirect_to: %s exit status %d; connects: %llu redirected, %llu direct\n",
               args.command[0].c_str(), exitStatusOf(status),
               static_cast<unsigned long long>(decisions[SG_DECISION_REDIRECT]),
               static_cast<unsigned long long>(decisions[SG_DECISION_DIRECT]));
  return exitStatusOf(status);
}
