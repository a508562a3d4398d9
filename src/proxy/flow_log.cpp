#include "proxy/flow_log.h"

namespace sockgate::proxy {

void FlowLog::append(FlowRecord record) {
  std::lock_guard lock(mutex_);
  records_.push_back(std::move(record));
}

std::vector<FlowRecord> FlowLog::snapshot() const {
  std::lock_guard lock(mutex_);
  return records_;
}

}  // namespace sockgate::proxy
