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

struct ServiceSpec {
  uint32_t id = 0;  // non-zero
  std::string name;
  std::optional<Endpoint> listen4;
  std::optional<Endpoint> listen6;
  bool failClosed = false;
  // Sets IP_WFP_REDIRECT_RECORDS on every onward socket (the built-in
  // service): its flows need no records inferred for it (SG_SVC_ATTACHES_RECORDS).
  bool attachesRecords = false;
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
    // false: decisions are only counted (decisionCounts), never queued for
    // drainEvents; each event costs the connect() a wakeup of the reader.
    bool events = true;
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

  // Epoll-able fd that becomes readable when events are waiting.
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
