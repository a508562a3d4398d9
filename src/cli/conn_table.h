// The connection table `sockgate run` prints at exit: one row per flow.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "proxy/flow_log.h"

namespace sockgate::cli {

std::string humanBytes(uint64_t bytes);                       // "78 B", "1.2 KiB", "16.0 MiB"
std::string humanDuration(std::chrono::nanoseconds elapsed);  // "850 us", "3 ms", "1.20 s"

// Rows in start order, columns aligned; ends with a newline.
std::string formatConnectionTable(const std::vector<proxy::FlowRecord>& flows);

// The flows that ended after the table was full, one row per group in the
// order given, with the group's flow count, total bytes and mean duration;
// ends with a newline.
std::string formatFoldedFlows(const std::vector<proxy::FlowGroup>& groups);

}  // namespace sockgate::cli
