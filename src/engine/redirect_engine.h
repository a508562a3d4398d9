// Owns the redirect BPF object: loads it, attaches every program through a
// bpf_link (so the kernel detaches them when this process dies, however it
// dies), fills the service table, and delivers decision events.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/service_registry.h"
#include "sockgate/abi/sockgate_abi.h"
#include "sockgate/endpoint.h"
#include "sockgate/error.h"

struct sg_redirect;
struct bpf_link;
struct ring_buffer;

namespace sockgate {

// A quarter of the 1 MiB event ring: a reader that drains at least every
// 100 ms is woken early only above ~20,000 connects/s (120-byte records).
inline constexpr uint32_t kEventBatchBytes = 256 * 1024;

struct ServiceSpec {
  uint32_t id = 0;  // non-zero
  std::string name;
  std::optional<Endpoint> listen4;
  std::optional<Endpoint> listen6;
  bool failClosed = false;
  uint64_t cgroupId = 0;  // the service's own cgroup, if it has one of its own
  uint32_t tgid = 0;      // the service's own process, if known
  sg_filter filter{};     // zero: all TCP
  std::vector<uint8_t> tag;
};

// Converts a spec to the kernel's table entry (pure; unit-tested).
Result<sg_service> toKernelService(const ServiceSpec& spec);

class RedirectEngine {
 public:
  struct Options {
    // Applications in this cgroup, or below it, are redirected ("" = none:
    // only services' own outbound connections are acted on).
    std::string governedCgroup;
    // Where every hook is attached: a cgroup holding the applications and
    // the services (the cgroup v2 root by default).
    std::string scopeCgroup;
    // 0: eventsFd() becomes readable at every event. Otherwise only once this
    // many bytes of events wait, and the reader must also drain on a timer:
    // waking the reader costs each connect() a self-IPI (kEventBatchBytes).
    uint32_t eventWakeupBytes = 0;
    // false: SG_DECISION_DIRECT (an application's connect() no service
    // wanted) is only counted (decisionCounts), not sent as an event.
    bool directEvents = true;
  };

  // How many connect() decisions of each kind the hooks made, by
  // sg_decision value; `fromServices` counts services' own outbound
  // connects. Exact even where events were not emitted or were lost.
  struct DecisionCounts {
    std::array<uint64_t, SG_DECISION_SLOTS> fromApplications{};
    std::array<uint64_t, SG_DECISION_SLOTS> fromServices{};
  };

  static Result<std::unique_ptr<RedirectEngine>> start(const Options& options);
  ~RedirectEngine();
  RedirectEngine(const RedirectEngine&) = delete;
  RedirectEngine& operator=(const RedirectEngine&) = delete;

  // Replaces the service table (priority order = span order).
  Status setServices(std::span<const ServiceSpec> services);

  // Epoll-able fd that becomes readable when events are waiting (see
  // Options::eventWakeupBytes).
  [[nodiscard]] int eventsFd() const;
  // Delivers waiting events; returns how many.
  Result<int> drainEvents(const std::function<void(const sg_event&)>& sink);
  [[nodiscard]] Result<DecisionCounts> decisionCounts() const;

 private:
  RedirectEngine() = default;
  static int onEvent(void* self, void* data, size_t size);

  sg_redirect* skel_ = nullptr;
  std::vector<bpf_link*> links_;
  ring_buffer* ring_ = nullptr;
  std::optional<ServiceRegistry> registry_;
  const std::function<void(const sg_event&)>* sink_ = nullptr;
};

}  // namespace sockgate
