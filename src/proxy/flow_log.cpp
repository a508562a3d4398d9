#include "proxy/flow_log.h"

#include <algorithm>

namespace sockgate::proxy {

namespace {

void count(FlowGroup& g, FlowRecord&& r) {
  g.flows += 1;
  g.bytesUp += r.bytesUp;
  g.bytesDown += r.bytesDown;
  g.duration += r.end - r.start;
  if (g.flows == 1) g.like = std::move(r);
}

}  // namespace

bool mostFlowsFirst(const FlowGroup& a, const FlowGroup& b) {
  return a.rest != b.rest ? b.rest : a.flows > b.flows;
}

void FlowLog::append(FlowRecord record) {
  std::lock_guard lock(mutex_);
  if (records_.size() < maxRows_) {
    records_.push_back(std::move(record));
    return;
  }
  GroupKey key{record.originTgid,
               record.executable,
               record.originComm,
               record.originUid,
               record.originalDestination.toString(),
               record.service,
               record.ending};
  auto it = groups_.find(key);
  if (it == groups_.end()) {
    if (groups_.size() >= maxGroups_) return count(rest_, std::move(record));
    it = groups_.emplace(std::move(key), FlowGroup{}).first;
  }
  count(it->second, std::move(record));
}

std::vector<FlowRecord> FlowLog::snapshot() const {
  std::lock_guard lock(mutex_);
  return records_;
}

std::vector<FlowGroup> FlowLog::groups() const {
  std::vector<FlowGroup> out;
  {
    std::lock_guard lock(mutex_);
    out.reserve(groups_.size() + 1);
    for (const auto& [key, g] : groups_) out.push_back(g);
    if (rest_.flows) out.push_back(rest_);
  }
  std::stable_sort(out.begin(), out.end(), mostFlowsFirst);
  return out;
}

}  // namespace sockgate::proxy
