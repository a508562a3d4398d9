#include "engine/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "engine/preflight.h"

namespace sockgate {

namespace {

Status writeFile(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return failErrno("open " + path);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return failErrno("write '" + text + "' to " + path);
  return {};
}

}  // namespace

Result<uint64_t> cgroupIdOf(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return failErrno("stat " + path);
  return static_cast<uint64_t>(st.st_ino);
}

Result<uint32_t> cgroupLevelOf(const std::string& path) {
  auto mount = findCgroup2Mount();
  if (!mount) return std::unexpected(mount.error());
  std::error_code ec;
  auto canonical = std::filesystem::canonical(path, ec);
  if (ec) return fail(ec.value(), "resolve cgroup path " + path);
  auto rel = canonical.lexically_relative(std::filesystem::canonical(*mount, ec));
  if (rel.empty() || *rel.begin() == "..")
    return fail(EINVAL, path + " is not inside the cgroup v2 hierarchy at " + *mount);
  uint32_t level = 0;
  for (const auto& part : rel)
    if (part != ".") ++level;
  return level;
}

Result<Cgroup> Cgroup::create(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0) return failErrno("create cgroup " + path);
  return open(path);
}

Result<Cgroup> Cgroup::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return failErrno("open cgroup " + path);
  auto id = cgroupIdOf(path);
  if (!id) return std::unexpected(id.error());
  return Cgroup(path, std::move(fd), *id);
}

Status Cgroup::addProcess(pid_t pid) const {
  return writeFile(path_ + "/cgroup.procs", std::to_string(pid));
}

std::vector<pid_t> Cgroup::processes() const {
  std::vector<pid_t> pids;
  std::ifstream in(path_ + "/cgroup.procs");
  pid_t pid = 0;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

Status Cgroup::signalAll(int sig) const {
  if (sig == SIGKILL && writeFile(path_ + "/cgroup.kill", "1")) return {};
  for (pid_t pid : processes()) {
    if (::kill(pid, sig) != 0 && errno != ESRCH)
      return failErrno("kill " + std::to_string(pid) + " in " + path_);
  }
  return {};
}

Status Cgroup::moveAllTo(const std::string& otherPath) const {
  // Processes can fork while we move them: repeat until the cgroup is empty.
  for (int round = 0; round < 100; ++round) {
    auto pids = processes();
    if (pids.empty()) return {};
    for (pid_t pid : pids) {
      auto st = writeFile(otherPath + "/cgroup.procs", std::to_string(pid));
      if (!st && st.error().code != ESRCH) return st;
    }
  }
  return fail(EBUSY, "move processes out of " + path_ + ": it keeps gaining processes");
}

Status Cgroup::remove() {
  fd_.reset();
  // The kernel may still be reaping a process that just died: retry briefly.
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (::rmdir(path_.c_str()) == 0 || errno == ENOENT) return {};
    if (errno != EBUSY) break;
    ::usleep(10'000);
  }
  return failErrno("remove cgroup " + path_);
}

}  // namespace sockgate
