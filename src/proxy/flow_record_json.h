// Flow records as JSON: how the built-in services' process (ServiceHost)
// hands its connection table to `sockgate run` when it stops.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "proxy/flow_log.h"

namespace sockgate::proxy {

nlohmann::json toJson(const FlowRecord& r);
nlohmann::json toJson(const FlowGroup& g);
// Throw nlohmann::json::exception on a missing or mistyped field.
FlowRecord flowRecordFromJson(const nlohmann::json& j);
FlowGroup flowGroupFromJson(const nlohmann::json& j);

}  // namespace sockgate::proxy
