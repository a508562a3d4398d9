#include "cli/conn_table.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "cli/text_table.h"

namespace sockgate::cli {

std::string humanBytes(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  constexpr std::array units{"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < units.size()) {
    value /= 1024.0;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, units[unit]);
}

std::string humanDuration(std::chrono::nanoseconds elapsed) {
  const auto ns = elapsed.count();
  if (ns < 1'000'000) return fmt::format("{} us", ns / 1000);
  if (ns < 1'000'000'000) return fmt::format("{} ms", ns / 1'000'000);
  return fmt::format("{:.2f} s", static_cast<double>(ns) / 1e9);
}

namespace {

std::string exeOf(const proxy::FlowRecord& r) {
  return r.executable.empty() ? "(" + r.originComm + ")" : r.executable;
}

}  // namespace

std::string formatConnectionTable(const std::vector<proxy::FlowRecord>& flows) {
  std::vector<proxy::FlowRecord> rows = flows;
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.start < b.start; });

  std::vector<std::vector<std::string>> cells;
  cells.push_back({"PID", "EXE", "UID", "DESTINATION", "SERVICE", "UP", "DOWN", "DURATION", "END"});
  for (const auto& r : rows) {
    cells.push_back({std::to_string(r.originTgid), exeOf(r), std::to_string(r.originUid),
                     r.originalDestination.toString(), r.service, humanBytes(r.bytesUp),
                     humanBytes(r.bytesDown), humanDuration(r.end - r.start), r.ending});
  }
  return alignColumns(cells);
}

std::string formatFoldedFlows(const std::vector<proxy::FlowGroup>& groups) {
  std::vector<std::vector<std::string>> cells;
  cells.push_back({"FLOWS", "PID", "EXE", "UID", "DESTINATION", "SERVICE", "UP", "DOWN",
                   "MEAN DURATION", "END"});
  for (const auto& g : groups) {
    const auto mean = g.duration / static_cast<int64_t>(std::max<uint64_t>(g.flows, 1));
    if (g.rest) {
      cells.push_back({std::to_string(g.flows), "*", "(other processes and destinations)", "*", "*",
                       "*", humanBytes(g.bytesUp), humanBytes(g.bytesDown), humanDuration(mean),
                       "*"});
      continue;
    }
    const auto& r = g.like;
    cells.push_back({std::to_string(g.flows), std::to_string(r.originTgid), exeOf(r),
                     std::to_string(r.originUid), r.originalDestination.toString(), r.service,
                     humanBytes(g.bytesUp), humanBytes(g.bytesDown), humanDuration(mean),
                     r.ending});
  }
  return alignColumns(cells);
}

}  // namespace sockgate::cli
