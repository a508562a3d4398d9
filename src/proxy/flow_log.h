// The connection table: one row per flow the service handled, appended when
// the flow ends (once per flow, so a mutex costs nothing that matters).
//
// A long, busy run would grow it without end, so only the first flows keep
// a row of their own; later ones are counted into groups of the same
// process, destination, service and ending, and past a bound on groups
// into one group for the rest. Memory stays bounded however long CMD runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "sockgate/endpoint.h"

namespace sockgate::proxy {

struct FlowRecord {
  uint64_t flowId = 0;
  uint32_t originTgid = 0;
  uint32_t originUid = 0;
  std::string originComm;
  std::string executable;  // at accept, from the loop's per-process cache
  Endpoint originalDestination;
  std::string service;
  uint64_t bytesUp = 0;    // application -> destination
  uint64_t bytesDown = 0;  // destination -> application
  std::chrono::steady_clock::time_point start;
  std::chrono::steady_clock::time_point end;
  std::string ending;  // "closed", "refused (ECONNREFUSED)", "reset by destination", ...
};

// Flows folded together: `like` is the first of them (its bytes and times
// are that flow's own); the totals are the group's.
struct FlowGroup {
  FlowRecord like;
  bool rest = false;  // the group for flows past the bound on groups: `like` is one of them
  uint64_t flows = 0;
  uint64_t bytesUp = 0;
  uint64_t bytesDown = 0;
  std::chrono::nanoseconds duration{0};  // summed
};

// The order groups are shown in: most flows first, the rest last.
bool mostFlowsFirst(const FlowGroup& a, const FlowGroup& b);

class FlowLog {
 public:
  static constexpr size_t kRows = 1000;
  static constexpr size_t kGroups = 1000;

  explicit FlowLog(size_t rows = kRows, size_t groups = kGroups)
      : maxRows_(rows), maxGroups_(groups) {}

  void append(FlowRecord record);
  [[nodiscard]] std::vector<FlowRecord> snapshot() const;  // flows with a row of their own
  [[nodiscard]] std::vector<FlowGroup> groups() const;     // the later ones, most flows first

 private:
  // process (tgid, executable, comm), uid, destination, service, ending
  using GroupKey = std::tuple<uint32_t, std::string, std::string, uint32_t, std::string,
                              std::string, std::string>;

  size_t maxRows_;
  size_t maxGroups_;
  mutable std::mutex mutex_;
  std::vector<FlowRecord> records_;
  std::map<GroupKey, FlowGroup> groups_;
  FlowGroup rest_{.like = {}, .rest = true};
};

}  // namespace sockgate::proxy
