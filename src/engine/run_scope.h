// The cgroup of one `sockgate run`: named after the run's pid and start time
// so that the next run can tell a crashed run's leftovers from a live one.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/cgroup.h"
#include "sockgate/error.h"

namespace sockgate {

inline constexpr const char* kRunCgroupPrefix = "sockgate-run-";

// Removes the cgroups of runs whose process is gone (killed with SIGKILL, or
// crashed). Processes still inside are moved to the hierarchy root, not
// killed: without the run they are no longer redirected anyway. Returns the
// paths it removed.
Result<std::vector<std::string>> sweepStaleRuns(const std::string& cgroup2Mount);

// A new run cgroup for this process under the hierarchy root.
Result<Cgroup> createRunCgroup(const std::string& cgroup2Mount);

// The name of the live run cgroup on a cgroup v2 path ("/a/b", as
// /proc/PID/cgroup gives it), if any: that run's hooks govern a process
// there. A run cgroup whose run is gone does not count (the sweep removes it).
std::optional<std::string> enclosingRun(const std::string& cgroupPath);

}  // namespace sockgate
