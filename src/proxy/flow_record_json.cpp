#include "proxy/flow_record_json.h"

#include <nlohmann/json.hpp>

namespace sockgate::proxy {

namespace {

// steady_clock is CLOCK_MONOTONIC: the same clock in every process.
int64_t nanos(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::chrono::steady_clock::time_point timePoint(int64_t ns) {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::nanoseconds(ns)));
}

}  // namespace

nlohmann::json toJson(const FlowRecord& r) {
  return {{"flow_id", r.flowId},
          {"tgid", r.originTgid},
          {"uid", r.originUid},
          {"comm", r.originComm},
          {"executable", r.executable},
          {"destination", r.originalDestination.empty() ? "" : r.originalDestination.toString()},
          {"service", r.service},
          {"bytes_up", r.bytesUp},
          {"bytes_down", r.bytesDown},
          {"start_ns", nanos(r.start)},
          {"end_ns", nanos(r.end)},
          {"ending", r.ending}};
}

nlohmann::json toJson(const FlowGroup& g) {
  return {{"like", toJson(g.like)},    {"rest", g.rest},
          {"flows", g.flows},          {"bytes_up", g.bytesUp},
          {"bytes_down", g.bytesDown}, {"duration_ns", g.duration.count()}};
}

FlowRecord flowRecordFromJson(const nlohmann::json& j) {
  FlowRecord r;
  r.flowId = j.at("flow_id").get<uint64_t>();
  r.originTgid = j.at("tgid").get<uint32_t>();
  r.originUid = j.at("uid").get<uint32_t>();
  r.originComm = j.at("comm").get<std::string>();
  r.executable = j.at("executable").get<std::string>();
  const auto destination = j.at("destination").get<std::string>();
  if (!destination.empty()) {
    auto parsed = Endpoint::parse(destination);
    if (!parsed)
      throw nlohmann::json::other_error::create(
          501, "destination " + destination + ": " + parsed.error().message(), &j);
    r.originalDestination = *parsed;
  }
  r.service = j.at("service").get<std::string>();
  r.bytesUp = j.at("bytes_up").get<uint64_t>();
  r.bytesDown = j.at("bytes_down").get<uint64_t>();
  r.start = timePoint(j.at("start_ns").get<int64_t>());
  r.end = timePoint(j.at("end_ns").get<int64_t>());
  r.ending = j.at("ending").get<std::string>();
  return r;
}

FlowGroup flowGroupFromJson(const nlohmann::json& j) {
  FlowGroup g;
  g.like = flowRecordFromJson(j.at("like"));
  g.rest = j.at("rest").get<bool>();
  g.flows = j.at("flows").get<uint64_t>();
  g.bytesUp = j.at("bytes_up").get<uint64_t>();
  g.bytesDown = j.at("bytes_down").get<uint64_t>();
  g.duration = std::chrono::nanoseconds(j.at("duration_ns").get<int64_t>());
  return g;
}

}  // namespace sockgate::proxy
