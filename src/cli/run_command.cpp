#include "cli/run_command.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>

#include "cli/conn_table.h"
#include "common/listeners.h"
#include "common/unique_fd.h"
#include "engine/preflight.h"
#include "engine/redirect_engine.h"
#include "engine/run_scope.h"
#include "engine/seccomp_guard.h"
#include "engine/socket_guard.h"
#include "proxy/service_host.h"
#include "redirect/policy.h"
#include "security/process_info.h"

namespace sockgate::cli {

namespace {

using namespace std::chrono_literals;

constexpr int kSetupFailed = 2;
constexpr auto kExternalServiceWait = 30s;

void say(const std::string& line) { fmt::print(stderr, "sockgate: {}\n", line); }

const char* decisionName(uint32_t d) {
  switch (d) {
    case SG_DECISION_REDIRECT:
      return "redirect";
    case SG_DECISION_DIRECT:
      return "direct";
    case SG_DECISION_FAIL_OPEN:
      return "direct (service down, fail-open)";
    case SG_DECISION_REFUSED:
      return "refused (service down, fail-closed)";
    case SG_DECISION_CHAIN_DONE:
      return "direct (end of the chain)";
    case SG_DECISION_FORGED:
      return "records forged by a non-service: EPERM";
    default:
      return "?";
  }
}

// Everything a run sets up, torn down in reverse on every path out.
struct RunScope {
  std::optional<Cgroup> cgroup;
  std::unique_ptr<proxy::ServiceHost> services;  // the built-in ones, if any
  std::unique_ptr<RedirectEngine> engine;
  std::unique_ptr<SocketGuard> guard;     // inet sockets, in the kernel
  std::unique_ptr<SeccompGuard> seccomp;  // the other families, for CMD's processes

  // Processes CMD left behind in the cgroup: TERM, a grace period, KILL.
  void stopLeftovers() {
    if (!cgroup || cgroup->processes().empty()) return;
    (void)cgroup->signalAll(SIGTERM);
    for (auto until = std::chrono::steady_clock::now() + 2s;
         std::chrono::steady_clock::now() < until && !cgroup->processes().empty();)
      ::usleep(20'000);
    if (!cgroup->processes().empty()) (void)cgroup->signalAll(SIGKILL);
  }

  ~RunScope() {
    stopLeftovers();
    guard.reset();
    seccomp.reset();
    engine.reset();  // detaches every hook
    if (services) (void)services->stop(0ms);
    if (cgroup) {
      if (auto st = cgroup->remove(); !st) say(st.error().message());
    }
  }
};

// Where an external service listens, and who it is: its cgroup if the
// policy names one, else the process that owns its listening socket.
Result<ServiceSpec> externalService(const PolicyService& p, uint32_t id) {
  ServiceSpec spec;
  spec.id = id;
  spec.name = p.name;
  spec.listen4 = p.listen4;
  spec.listen6 = p.listen6;
  spec.failClosed = p.failClosed;
  spec.attachesRecords = p.attachesRecords;
  spec.filter = p.filter;
  spec.tag = p.tag;
  const Endpoint& where = p.listen4 ? *p.listen4 : *p.listen6;
  std::optional<uint64_t> inode;
  bool told = false;
  for (auto until = std::chrono::steady_clock::now() + kExternalServiceWait;;) {
    inode = listeningSocketInode(where);
    if (inode || std::chrono::steady_clock::now() >= until) break;
    if (!told)
      say("waiting for external service '" + p.name + "' to listen on " + where.toString());
    told = true;
    ::usleep(100'000);
  }
  if (!inode)
    return fail(ETIMEDOUT, "external service '" + p.name + "' is not listening on " +
                               where.toString() + " after " +
                               std::to_string(kExternalServiceWait.count()) + " s");
  if (!p.cgroupPath.empty()) {
    auto cg = cgroupIdOf(p.cgroupPath);
    if (!cg) return std::unexpected(cg.error());
    spec.cgroupId = *cg;
  } else {
    auto owner = security::findSocketOwner(*inode, std::nullopt);
    if (!owner) return std::unexpected(owner.error());
    if (!*owner)
      return fail(ESRCH, "external service '" + p.name + "': no process owns the listener on " +
                             where.toString());
    spec.tgid = static_cast<uint32_t>((*owner)->pid);
  }
  return spec;
}

int exitStatusOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int runCommand(const RunOptions& options) {
  if (options.command.empty()) {
    say("run: no command given (usage: sockgate run [OPTIONS] -- CMD ARGS...)");
    return kSetupFailed;
  }

  // Every signal we handle comes through a signalfd; block them before any
  // thread exists so that no service thread receives one.
  sigset_t handled, original;
  sigemptyset(&handled);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) sigaddset(&handled, s);
  sigprocmask(SIG_BLOCK, &handled, &original);
  struct RestoreMask {
    sigset_t mask;
    ~RestoreMask() { sigprocmask(SIG_SETMASK, &mask, nullptr); }
  } restoreMask{original};

  // The policy is checked whole before anything is touched.
  if (!options.policyPath.empty() && options.servicePort != 0) {
    say("run: --service-port applies to the default policy; with --policy, set 'listen' there");
    return kSetupFailed;
  }
  auto policy =
      options.policyPath.empty() ? Result<Policy>(defaultPolicy()) : loadPolicy(options.policyPath);
  if (!policy) {
    say(policy.error().message());
    return kSetupFailed;
  }

  std::optional<SocketPolicy> socketPolicy;
  if (!options.socketPolicy.empty()) {
    auto parsed = parseSocketPolicy(options.socketPolicy);
    if (!parsed) {
      say("--socket-policy: " + parsed.error().message());
      return kSetupFailed;
    }
    socketPolicy = std::move(*parsed);
  }

  auto support = preflight();
  if (!support) {
    say(support.error().message());
    return kSetupFailed;
  }
  const std::string& mount = support->cgroup2Mount;

  if (auto swept = sweepStaleRuns(mount); !swept) {
    say("cleaning up after an earlier run: " + swept.error().message());
  } else {
    for (const auto& path : *swept)
      say("removed " + path + ", left by a run that was killed before it could clean up");
  }

  // Inside another run, this one could neither keep CMD under that run's
  // hooks (its cgroup is made at the root) nor pass records through them
  // (its service is one of that run's applications): every redirected flow
  // would be reset. Say so before attaching anything.
  std::ifstream selfCgroup("/proc/self/cgroup");
  const std::string ownCgroup = security::parseCgroupV2Path(
      std::string(std::istreambuf_iterator<char>(selfCgroup), std::istreambuf_iterator<char>()));
  if (auto outer = enclosingRun(ownCgroup)) {
    say("run: already inside another sockgate run (cgroup " + *outer +
        "), whose hooks govern this process; nesting runs is not supported: put this run's "
        "services in the outer run's policy, or run CMD from outside it");
    return kSetupFailed;
  }

  RunScope scope;
  auto cgroup = createRunCgroup(mount);
  if (!cgroup) {
    say(cgroup.error().message());
    return kSetupFailed;
  }
  scope.cgroup.emplace(std::move(*cgroup));

  // Ids follow priority order; they name services in events and records.
  std::vector<ServiceSpec> specs;
  std::map<uint32_t, std::string> serviceNames;
  std::vector<proxy::ServiceOptions> builtins;  // all run in one process of their own
  std::vector<size_t> builtinSpecs;             // their places in specs
  for (size_t i = 0; i < policy->services.size(); ++i) {
    const PolicyService& p = policy->services[i];
    const auto id = static_cast<uint32_t>(i + 1);
    serviceNames[id] = p.name;
    if (p.kind == PolicyService::Kind::External) {
      auto spec = externalService(p, id);
      if (!spec) {
        say(spec.error().message());
        return kSetupFailed;
      }
      specs.push_back(std::move(*spec));
      continue;
    }
    proxy::ServiceOptions serviceOptions;
    serviceOptions.id = id;
    serviceOptions.name = p.name;
    serviceOptions.port = options.servicePort;
    if (p.listen4) serviceOptions.listen.push_back(*p.listen4);
    if (p.listen6) serviceOptions.listen.push_back(*p.listen6);
    builtins.push_back(std::move(serviceOptions));
    builtinSpecs.push_back(specs.size());
    ServiceSpec spec;
    spec.id = id;
    spec.name = p.name;
    spec.failClosed = p.failClosed;
    spec.attachesRecords = true;  // EventLoop::startFlow
    spec.filter = p.filter;
    spec.tag = p.tag;
    specs.push_back(std::move(spec));  // where it listens: once its process listens
  }
  if (!builtins.empty()) {
    auto host = proxy::ServiceHost::start(builtins);
    if (!host) {
      say(host.error().message());
      return kSetupFailed;
    }
    scope.services = std::move(*host);
    for (size_t i = 0; i < builtinSpecs.size(); ++i) {
      ServiceSpec& spec = specs[builtinSpecs[i]];
      spec.listen4 = scope.services->listening()[i].listen4;
      spec.listen6 = scope.services->listening()[i].listen6;
      spec.tgid = static_cast<uint32_t>(scope.services->pid());
    }
  }

  RedirectEngine::Options engineOptions{scope.cgroup->path(), mount};
  // Only --trace shows each decision; the summary comes from the counters.
  engineOptions.events = options.trace;
  auto engine = RedirectEngine::start(engineOptions);
  if (!engine) {
    say(engine.error().message());
    return kSetupFailed;
  }
  scope.engine = std::move(*engine);
  if (auto st = scope.engine->setServices(specs); !st) {
    say(st.error().message());
    return kSetupFailed;
  }

  if (socketPolicy) {
    auto guard = SocketGuard::start({scope.cgroup->path(), mount, *socketPolicy});
    if (!guard) {
      say(guard.error().message());
      return kSetupFailed;
    }
    scope.guard = std::move(*guard);
    if (!scope.guard->fallbackNotice().empty()) say(scope.guard->fallbackNotice());
    // Where the BPF LSM hook sees every family, seccomp would only report
    // the same socket() twice.
    if (!scope.guard->coversEveryFamily()) {
      auto seccomp = SeccompGuard::prepare(*socketPolicy);
      if (!seccomp) {
        say(seccomp.error().message());
        return kSetupFailed;
      }
      if ((*seccomp)->needed()) scope.seccomp = std::move(*seccomp);
    }
  }

  // Prepared before fork: the child may only make async-signal-safe calls.
  std::vector<char*> argv;
  for (const auto& a : options.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::string procs = scope.cgroup->path() + "/cgroup.procs";
  const std::string execFailed = "sockgate: cannot run " + options.command[0] + ": ";

  pid_t child = ::fork();
  if (child < 0) {
    say(fmt::format("fork for {}: {}", options.command[0], std::strerror(errno)));
    return kSetupFailed;
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &original, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    // Join the cgroup before exec: CMD must never run a moment ungoverned.
    int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) {
      const char* why = std::strerror(errno);
      [[maybe_unused]] auto n = ::write(2, execFailed.data(), execFailed.size());
      n = ::write(2, "cannot join the cgroup: ", 24);
      n = ::write(2, why, std::strlen(why));
      n = ::write(2, "\n", 1);
      ::_exit(126);
    }
    ::close(fd);
    // The seccomp half of the socket guard: installed last, so that only
    // CMD's own socket() calls are trapped, never ours.
    if (scope.seccomp) {
      if (int err = scope.seccomp->installInChild(scope.seccomp->childFd()); err != 0) {
        const char* why = std::strerror(err);
        [[maybe_unused]] auto n = ::write(2, execFailed.data(), execFailed.size());
        n = ::write(2, "cannot install the socket guard: ", 33);
        n = ::write(2, why, std::strlen(why));
        n = ::write(2, "\n", 1);
        ::_exit(126);
      }
    }
    ::execvp(argv[0], argv.data());
    const int err = errno;
    const char* why = std::strerror(err);
    [[maybe_unused]] auto n = ::write(2, execFailed.data(), execFailed.size());
    n = ::write(2, why, std::strlen(why));
    n = ::write(2, "\n", 1);
    ::_exit(err == ENOENT ? 127 : 126);
  }

  UniqueFd sfd(::signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK));
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = sfd.get();
  ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, sfd.get(), &ev);
  ev.data.fd = scope.engine->eventsFd();
  ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, ev.data.fd, &ev);
  if (scope.guard) {
    ev.data.fd = scope.guard->eventsFd();
    ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, ev.data.fd, &ev);
  }
  if (scope.seccomp) {
    scope.seccomp->closeChildEnd();
    if (auto st = scope.seccomp->receiveListener(5s); !st) {
      // CMD could not be guarded as asked: it must not run unguarded.
      say(st.error().message());
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
      return kSetupFailed;
    }
    ev.data.fd = scope.seccomp->listenerFd();
    ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, ev.data.fd, &ev);
  }
  std::vector<std::string> socketEvents;
  std::function<void(const sg_sock_event&)> onSocketEvent = [&](const sg_sock_event& e) {
    std::string line = formatSocketEvent(*socketPolicy, e);
    if (options.trace) say("trace socket " + line);
    socketEvents.push_back(std::move(line));
  };

  const auto started = std::chrono::steady_clock::now();
  uint64_t firstEventNs = 0;
  std::function<void(const sg_event&)> onEvent = [&](const sg_event& e) {
    if (!options.trace) return;
    if (!firstEventNs) firstEventNs = e.time_ns;
    std::string what = decisionName(e.decision);
    if (e.decision == SG_DECISION_REDIRECT) {
      auto name = serviceNames.count(e.service_id) ? serviceNames.at(e.service_id) : "?";
      what += " to " + name + " (" + Endpoint::fromAbi(e.redirect_to).toString() + ")";
    }
    if (e.flags & SG_EVENT_FROM_SERVICE)
      what += fmt::format(" [service outbound, hop {}{}]", e.chain_len,
                          (e.flags & SG_EVENT_INHERITED) ? ", records inferred" : "");
    say(fmt::format("trace +{:.3f}s pid {} ({}) uid {} connect {}: {}",
                    static_cast<double>(e.time_ns - firstEventNs) / 1e9, e.tgid,
                    std::string(e.comm, strnlen(e.comm, SG_COMM_LEN)), e.uid,
                    Endpoint::fromAbi(e.dst).toString(), what));
  };

  int status = 0;
  bool childDone = false;
  int interrupts = 0;
  while (!childDone) {
    epoll_event events[4];
    int n = ::epoll_wait(ep.get(), events, 4, -1);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      const int ready = events[i].data.fd;
      if (scope.guard && ready == scope.guard->eventsFd()) {
        (void)scope.guard->drainEvents(onSocketEvent);
        continue;
      }
      if (scope.seccomp && ready == scope.seccomp->listenerFd()) {
        (void)scope.seccomp->handle(onSocketEvent);
        continue;
      }
      if (ready != sfd.get()) {
        (void)scope.engine->drainEvents(onEvent);
        continue;
      }
      signalfd_siginfo si;
      while (::read(sfd.get(), &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
          if (::waitpid(child, &status, WNOHANG) == child) childDone = true;
          continue;
        }
        // A terminal's Ctrl-C already reached CMD through the foreground
        // process group; a signal sent to sockgate alone is passed on.
        if (si.ssi_code != SI_KERNEL) ::kill(child, static_cast<int>(si.ssi_signo));
        if (++interrupts >= 2) {
          say("second signal: killing every process of the command");
          (void)scope.cgroup->signalAll(SIGKILL);
        }
      }
    }
  }
  (void)scope.engine->drainEvents(onEvent);

  scope.stopLeftovers();
  // The application's sockets are closed now; give in-flight flows a moment
  // to deliver their last bytes so the table shows whole transfers.
  std::vector<proxy::ServiceHost::Table> tables;
  if (scope.services) {
    if (auto t = scope.services->stop(2s); t)
      tables = std::move(*t);
    else
      say(t.error().message());
  }
  (void)scope.engine->drainEvents(onEvent);

  std::vector<proxy::FlowRecord> flows;
  std::vector<proxy::FlowGroup> folded;
  uint64_t foldedFlows = 0;
  for (auto& table : tables) {
    flows.insert(flows.end(), table.rows.begin(), table.rows.end());
    for (auto& g : table.groups) {
      foldedFlows += g.flows;
      folded.push_back(std::move(g));
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  std::string summary = fmt::format("{} ran {}, exit status {}", options.command[0],
                                    humanDuration(elapsed), exitStatusOf(status));
  // Counted in the kernel, so exact even where the event ring overflowed.
  RedirectEngine::DecisionCounts counts;
  if (auto c = scope.engine->decisionCounts(); c)
    counts = *c;
  else
    say(c.error().message());
  const auto& decisions = counts.fromApplications;
  summary += fmt::format("; connections: {} redirected, {} direct", decisions[SG_DECISION_REDIRECT],
                         decisions[SG_DECISION_DIRECT]);
  if (decisions[SG_DECISION_FAIL_OPEN])
    summary +=
        fmt::format(", {} direct because the service was down", decisions[SG_DECISION_FAIL_OPEN]);
  if (decisions[SG_DECISION_REFUSED])
    summary += fmt::format(", {} refused", decisions[SG_DECISION_REFUSED]);
  say(summary);
  std::stable_sort(folded.begin(), folded.end(), proxy::mostFlowsFirst);  // across services
  if (!flows.empty()) fmt::print(stderr, "{}", formatConnectionTable(flows));
  if (!folded.empty()) {
    say(fmt::format("{} more connections, counted by process, destination, service and ending:",
                    foldedFlows));
    fmt::print(stderr, "{}", formatFoldedFlows(folded));
  }
  if (scope.guard) {
    (void)scope.guard->drainEvents(onSocketEvent);
    if (socketEvents.empty())
      say("socket guard: no socket() matched the policy");
    else
      say(fmt::format("socket guard: {} socket() calls matched the policy:", socketEvents.size()));
    for (const auto& line : socketEvents) fmt::print(stderr, "  {}\n", line);
  }
  return exitStatusOf(status);
}

}  // namespace sockgate::cli
