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

}  // namespace sockgate::cli
