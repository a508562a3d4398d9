#include "proxy/service_host.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <string>

#include "proxy/flow_record_json.h"

namespace sockgate::proxy {

namespace {

using json = nlohmann::json;

bool sendAll(int fd, const std::string& text) {
  for (size_t done = 0; done < text.size();) {
    ssize_t n = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads up to and without the first newline; nullopt at EOF before one, an
// error, or when timeoutMs has passed (negative: wait as long as it takes).
std::optional<std::string> readLine(int fd, std::string& buffer, int timeoutMs = -1) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  for (;;) {
    if (auto nl = buffer.find('\n'); nl != std::string::npos) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      return line;
    }
    if (timeoutMs >= 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return std::nullopt;
    }
    char chunk[65536];
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

json endpointJson(const std::optional<Endpoint>& e) { return e ? json(e->toString()) : json(); }

// The services' process: never returns into the caller's stack, whose
// destructors (the run's cgroup, hooks) belong to the parent alone.
[[noreturn]] void serve(int control, pid_t parent, const std::vector<ServiceOptions>& options) {
  try {
    // Dies with the run: if `sockgate run` is killed, so are its services.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::setsid();
    ::prctl(PR_SET_NAME, "sockgate-svc");
    // The run blocks the signals it reads from a signalfd; this process
    // reads none, so a TERM sent to it ends it.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);

    std::vector<std::unique_ptr<RedirectService>> services;
    json hello{{"services", json::array()}};
    for (const auto& o : options) {
      auto service = RedirectService::start(o);
      if (!service) {
        sendAll(control, json{{"error", "start the built-in redirect service '" + o.name +
                                            "': " + service.error().message()}}
                                 .dump() +
                             "\n");
        ::_exit(1);
      }
      hello["services"].push_back({{"listen4", endpointJson((*service)->listen4())},
                                   {"listen6", endpointJson((*service)->listen6())}});
      services.push_back(std::move(*service));
    }
    if (!sendAll(control, hello.dump() + "\n")) ::_exit(1);

    // The run's stop, or EOF if it is gone: then no one waits for a drain.
    std::string buffer;
    int64_t drainMs = 0;
    if (auto line = readLine(control, buffer)) drainMs = json::parse(*line).at("drain_ms");
    json tables = json::array();
    for (auto& s : services) {
      s->stop(std::chrono::milliseconds(drainMs));
      json rows = json::array(), groups = json::array();
      for (const auto& r : s->log().snapshot()) rows.push_back(toJson(r));
      for (const auto& g : s->log().groups()) groups.push_back(toJson(g));
      tables.push_back({{"rows", std::move(rows)}, {"groups", std::move(groups)}});
    }
    sendAll(control, tables.dump() + "\n");
    ::_exit(0);
  } catch (...) {
    ::_exit(1);
  }
}

std::optional<Endpoint> endpointFrom(const json& j) {
  if (j.is_null()) return std::nullopt;
  auto e = Endpoint::parse(j.get<std::string>());
  if (!e) throw json::other_error::create(501, e.error().message(), &j);
  return *e;
}

}  // namespace

Result<std::unique_ptr<ServiceHost>> ServiceHost::start(
    const std::vector<ServiceOptions>& services) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return failErrno("socketpair for the built-in services' process");
  UniqueFd ours(pair[0]), theirs(pair[1]);
  const pid_t parent = ::getpid();
  std::unique_ptr<ServiceHost> host(new ServiceHost());
  host->pid_ = ::fork();
  if (host->pid_ < 0) return failErrno("fork the built-in services' process");
  if (host->pid_ == 0) {
    ours.reset();
    serve(theirs.get(), parent, services);
  }
  theirs.reset();
  host->control_ = std::move(ours);

  std::string buffer;
  auto line = readLine(host->control_.get(), buffer);
  if (!line) {
    host->kill();
    return fail(EPIPE, "the built-in services' process ended before it listened");
  }
  try {
    auto hello = json::parse(*line);
    if (hello.contains("error")) {
      host->kill();
      return fail(0, hello["error"].get<std::string>());
    }
    for (const auto& s : hello.at("services"))
      host->listening_.push_back({endpointFrom(s.at("listen4")), endpointFrom(s.at("listen6"))});
  } catch (const json::exception& e) {
    host->kill();
    return fail(EPROTO, std::string("the built-in services' process said: ") + e.what());
  }
  return host;
}

Result<std::vector<ServiceHost::Table>> ServiceHost::stop(std::chrono::milliseconds drain) {
  if (pid_ < 0) return fail(ECHILD, "the built-in services have stopped already");
  std::string buffer;
  std::optional<std::string> line;
  if (sendAll(control_.get(), json{{"drain_ms", drain.count()}}.dump() + "\n"))
    // Each service drains in turn; past that, the process is stuck.
    line = readLine(control_.get(), buffer,
                    static_cast<int>(drain.count()) * static_cast<int>(listening_.size()) + 10000);
  if (!line) {
    kill();
    return fail(EPIPE, "the built-in services' process ended without its connection table");
  }
  reap();  // it exits once the table is out
  std::vector<Table> tables;
  try {
    for (const auto& t : json::parse(*line)) {
      Table table;
      for (const auto& r : t.at("rows")) table.rows.push_back(flowRecordFromJson(r));
      for (const auto& g : t.at("groups")) table.groups.push_back(flowGroupFromJson(g));
      tables.push_back(std::move(table));
    }
  } catch (const json::exception& e) {
    return fail(EPROTO, std::string("the built-in services' connection table: ") + e.what());
  }
  return tables;
}

void ServiceHost::kill() {
  if (pid_ > 0) ::kill(pid_, SIGKILL);
  reap();
}

void ServiceHost::reap() {
  if (pid_ <= 0) return;
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
  control_.reset();
}

ServiceHost::~ServiceHost() { kill(); }

}  // namespace sockgate::proxy
