// The built-in redirect services of a run, in a process of their own that
// is also a session of its own.
//
// Why a session: with the kernel's autogroup scheduling (on by default),
// every session is one scheduling group, and the groups share the CPU
// fairly. Threads of `sockgate run` would sit in the session of the CMD they
// serve and split one group's share with it, where a proxy run as a daemon
// (HAProxy) has a group to itself: on two busy cores that cost the built-in
// service 15 % of its connection-per-request throughput against HAProxy
// (README, Benchmarks). Out of the terminal's session, the services also
// never see its Ctrl-C: `sockgate run` stops them in order.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "common/unique_fd.h"
#include "proxy/flow_log.h"
#include "proxy/redirect_service.h"
#include "sockgate/endpoint.h"
#include "sockgate/error.h"

namespace sockgate::proxy {

class ServiceHost {
 public:
  struct Listening {
    std::optional<Endpoint> listen4;
    std::optional<Endpoint> listen6;
  };
  struct Table {
    std::vector<FlowRecord> rows;   // FlowLog::snapshot()
    std::vector<FlowGroup> groups;  // FlowLog::groups()
  };

  // Returns once every service listens, or with the first one's failure.
  static Result<std::unique_ptr<ServiceHost>> start(const std::vector<ServiceOptions>& services);
  ~ServiceHost();  // kills the process if stop() has not collected it

  // The process whose connections are the services' own (ServiceSpec::tgid).
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] const std::vector<Listening>& listening() const { return listening_; }

  // Stops each service as RedirectService::stop does and returns their
  // connection tables, in the order the services were given.
  Result<std::vector<Table>> stop(std::chrono::milliseconds drain);

 private:
  ServiceHost() = default;
  void kill();  // SIGKILL, then reap()
  void reap();  // waits for the process to end and forgets it

  pid_t pid_ = -1;
  UniqueFd control_;  // a stream socket to the process: one JSON line each way, then its tables
  std::vector<Listening> listening_;
};

}  // namespace sockgate::proxy
