// The connection table: one row per flow the service handled, appended when
// the flow ends (once per flow, so a mutex costs nothing that matters).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "sockgate/endpoint.h"

namespace sockgate::proxy {

struct FlowRecord {
  uint64_t flowId = 0;
  uint32_t originTgid = 0;
  uint32_t originUid = 0;
  std::string originComm;
  std::string executable;  // resolved once per flow, at accept
  Endpoint originalDestination;
  std::string service;
  uint64_t bytesUp = 0;    // application -> destination
  uint64_t bytesDown = 0;  // destination -> application
  std::chrono::steady_clock::time_point start;
  std::chrono::steady_clock::time_point end;
  std::string ending;  // "closed", "refused (ECONNREFUSED)", "reset by destination", ...
};

class FlowLog {
 public:
  void append(FlowRecord record);
  [[nodiscard]] std::vector<FlowRecord> snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::vector<FlowRecord> records_;
};

}  // namespace sockgate::proxy
