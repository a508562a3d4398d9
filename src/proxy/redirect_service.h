// The built-in redirect service: listeners on loopback (IPv4 and IPv6, one
// SO_REUSEPORT socket per loop), one event loop thread per core, and the
// connection table. It uses only the public API to read each flow.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "proxy/event_loop.h"
#include "proxy/flow_log.h"
#include "sockgate/endpoint.h"

namespace sockgate::proxy {

struct ServiceOptions {
  uint32_t id = 1;
  std::string name = "builtin";
  // Where to listen, at most one IPv4 and one IPv6 endpoint; empty: both
  // loopbacks on `port`. Port 0: the kernel picks one, the same for both.
  std::vector<Endpoint> listen;
  uint16_t port = 0;
  unsigned loops = 0;  // 0: one per online CPU
};

class RedirectService {
 public:
  static Result<std::unique_ptr<RedirectService>> start(const ServiceOptions& options);
  ~RedirectService();

  [[nodiscard]] const std::optional<Endpoint>& listen4() const { return listen4_; }
  [[nodiscard]] const std::optional<Endpoint>& listen6() const { return listen6_; }
  [[nodiscard]] FlowLog& log() { return log_; }
  [[nodiscard]] size_t activeFlows() const;

  // Stops accepting, lets open flows finish for up to `drain`, joins the loops.
  void stop(std::chrono::milliseconds drain);

 private:
  RedirectService() = default;
  FlowLog log_;
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::vector<std::thread> threads_;
  std::optional<Endpoint> listen4_;
  std::optional<Endpoint> listen6_;
};

}  // namespace sockgate::proxy
