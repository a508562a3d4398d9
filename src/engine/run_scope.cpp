#include "engine/run_scope.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/process.h"

namespace sockgate {

namespace {

std::string runName(pid_t pid) {
  return std::string(kRunCgroupPrefix) + std::to_string(pid) + "-" + startTimeOf(pid);
}

// The pid a run cgroup's name carries, if it is one; the run is alive if
// runName(pid) gives the name back (same pid, same start time).
std::optional<pid_t> runPidOf(const std::string& name) {
  if (!name.starts_with(kRunCgroupPrefix)) return std::nullopt;
  std::string rest = name.substr(std::string(kRunCgroupPrefix).size());
  try {
    return static_cast<pid_t>(std::stol(rest.substr(0, rest.find('-'))));
  } catch (...) {
    return std::nullopt;  // not one of ours
  }
}

}  // namespace

Result<std::vector<std::string>> sweepStaleRuns(const std::string& mount) {
  std::vector<std::string> removed;
  DIR* dir = ::opendir(mount.c_str());
  if (!dir) return failErrno("list " + mount);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name.rfind(kRunCgroupPrefix, 0) == 0) names.push_back(name);
  }
  ::closedir(dir);

  for (const auto& name : names) {
    auto pid = runPidOf(name);
    if (!pid) continue;
    if (runName(*pid) == name) continue;  // that run is alive
    const std::string path = mount + "/" + name;
    auto cg = Cgroup::open(path);
    if (!cg) continue;  // raced with its own cleanup
    if (auto st = cg->moveAllTo(mount); !st) return std::unexpected(st.error());
    if (auto st = cg->remove(); !st) return std::unexpected(st.error());
    removed.push_back(path);
  }
  return removed;
}

Result<Cgroup> createRunCgroup(const std::string& mount) {
  return Cgroup::create(mount + "/" + runName(::getpid()));
}

std::optional<std::string> enclosingRun(const std::string& cgroupPath) {
  std::istringstream parts(cgroupPath);
  std::string name;
  while (std::getline(parts, name, '/')) {
    auto pid = runPidOf(name);
    if (pid && runName(*pid) == name) return name;
  }
  return std::nullopt;
}

}  // namespace sockgate
