#include "security/process_info.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "common/pidfd.h"

namespace sockgate::security {
namespace {

// Bounded so a host with millions of sockets cannot grow us without limit;
// cleared, not evicted one by one: a refill costs one scan.
constexpr size_t kMaxCachedInodes = 1 << 16;

struct OwnerCache {
  std::mutex mutex;
  std::unordered_map<uint64_t, SocketOwner> owners;
  OwnerLookupStats stats;
};

OwnerCache& cache() {
  static OwnerCache instance;
  return instance;
}

Result<std::string> readSmallFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return failErrno("open " + path);
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return failErrno("read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> readLink(const std::string& path) {
  char buf[4096];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
  if (n < 0) return failErrno("readlink " + path);
  return std::string(buf, static_cast<size_t>(n));
}

// "socket:[12345]" -> 12345
std::optional<uint64_t> socketInodeOf(const char* link, size_t len) {
  constexpr std::string_view kPrefix = "socket:[";
  const std::string_view text(link, len);
  if (!text.starts_with(kPrefix) || !text.ends_with(']')) return std::nullopt;
  uint64_t inode = 0;
  const auto digits = text.substr(kPrefix.size(), text.size() - kPrefix.size() - 1);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), inode);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return inode;
}

std::optional<long> parseNumber(const char* name) {
  long value = 0;
  const size_t len = std::strlen(name);
  const auto [end, ec] = std::from_chars(name, name + len, value);
  if (ec != std::errc{} || end != name + len || len == 0) return std::nullopt;
  return value;
}

bool ownerStillHolds(const SocketOwner& owner, uint64_t inode) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/fd/%d", owner.pid, owner.fd);
  char link[64];
  const ssize_t n = ::readlink(path, link, sizeof(link));
  if (n <= 0) return false;
  const auto found = socketInodeOf(link, static_cast<size_t>(n));
  return found && *found == inode;
}

// Reads every fd of one process, caching its sockets; returns the owner of
// `inode` if this process holds it.
std::optional<SocketOwner> scanProcess(int procFd, pid_t pid, uint64_t inode,
                                       std::unordered_map<uint64_t, SocketOwner>& found,
                                       OwnerLookupStats& stats) {
  char dirPath[48];
  std::snprintf(dirPath, sizeof(dirPath), "%d/fd", pid);
  const int fdDirFd = ::openat(procFd, dirPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fdDirFd < 0) return std::nullopt;  // gone, or not ours to read
  DIR* dir = ::fdopendir(fdDirFd);
  if (dir == nullptr) {
    ::close(fdDirFd);
    return std::nullopt;
  }
  ++stats.processesScanned;
  std::optional<SocketOwner> result;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const auto fd = parseNumber(entry->d_name);
    if (!fd) continue;
    char link[64];
    const ssize_t n = ::readlinkat(::dirfd(dir), entry->d_name, link, sizeof(link));
    ++stats.fdsRead;
    if (n <= 0) continue;
    const auto socketInode = socketInodeOf(link, static_cast<size_t>(n));
    if (!socketInode) continue;
    const SocketOwner owner{pid, static_cast<int>(*fd)};
    found.try_emplace(*socketInode, owner);
    if (*socketInode == inode && !result) result = owner;
  }
  ::closedir(dir);
  return result;
}

}  // namespace

StatusIds parseProcStatus(const std::string& text) {
  StatusIds ids;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    if (key == "Uid:") {
      long real = -1;
      long effective = -1;
      if (fields >> real >> effective) ids.euid = static_cast<uid_t>(effective);
    } else if (key == "Gid:") {
      long real = -1;
      long effective = -1;
      if (fields >> real >> effective) ids.egid = static_cast<gid_t>(effective);
    } else if (key == "Groups:") {
      long gid = 0;
      while (fields >> gid) ids.groups.push_back(static_cast<gid_t>(gid));
    }
  }
  return ids;
}

std::string parseCgroupV2Path(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("0::")) return line.substr(3);
  }
  return {};
}

Result<pid_t> pidOfPidfd(int pidfd) {
  auto text = readSmallFile("/proc/self/fdinfo/" + std::to_string(pidfd));
  if (!text) return std::unexpected(std::move(text.error()));
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("Pid:")) {
      long pid = 0;
      std::istringstream(line.substr(4)) >> pid;
      return static_cast<pid_t>(pid);
    }
  }
  return fail(EINVAL, "fdinfo of fd " + std::to_string(pidfd) + ": not a pidfd");
}

Status readProcessIdentity(pid_t pid, PeerProcess& peer) {
  const std::string base = "/proc/" + std::to_string(pid);
  auto status = readSmallFile(base + "/status");
  if (!status) return std::unexpected(std::move(status.error()));
  const StatusIds ids = parseProcStatus(*status);
  peer.pid = pid;
  peer.uid = ids.euid;
  peer.gid = ids.egid;
  peer.groups = ids.groups;
  // exe is unreadable for kernel threads and, without ptrace access, for
  // other users' processes: an empty string says "unknown", not an error.
  if (auto exe = readLink(base + "/exe")) peer.executable = *exe;
  if (auto comm = readSmallFile(base + "/comm")) {
    peer.command = *comm;
    if (!peer.command.empty() && peer.command.back() == '\n') peer.command.pop_back();
  }
  if (auto cgroup = readSmallFile(base + "/cgroup")) peer.cgroup = parseCgroupV2Path(*cgroup);
  // Without an LSM, attr/current reads fail (EINVAL) or hold nothing useful.
  if (auto label = readSmallFile(base + "/attr/current")) {
    std::string text = *label;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
    if (!text.empty()) peer.lsmLabel = text;
  }
  return {};
}

Result<std::optional<SocketOwner>> findSocketOwner(uint64_t inode, std::optional<uid_t> uidHint) {
  OwnerCache& c = cache();
  {
    std::lock_guard lock(c.mutex);
    if (auto it = c.owners.find(inode); it != c.owners.end()) {
      if (ownerStillHolds(it->second, inode)) {
        ++c.stats.cacheHits;
        return std::optional<SocketOwner>(it->second);
      }
      c.owners.erase(it);
    }
  }
  UniqueFd procFd(::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!procFd) return failErrno("open /proc");
  std::vector<pid_t> first;
  std::vector<pid_t> later;
  {
    DIR* dir = ::fdopendir(::dup(procFd.get()));
    if (dir == nullptr) return failErrno("opendir /proc");
    while (const dirent* entry = ::readdir(dir)) {
      const auto pid = parseNumber(entry->d_name);
      if (!pid) continue;
      bool likely = !uidHint.has_value();
      if (uidHint) {
        struct stat st{};
        // /proc/<pid> belongs to the process's euid (root if not dumpable).
        if (::fstatat(procFd.get(), entry->d_name, &st, 0) == 0) {
          likely = st.st_uid == *uidHint || st.st_uid == 0;
        }
      }
      (likely ? first : later).push_back(static_cast<pid_t>(*pid));
    }
    ::closedir(dir);
  }
  std::unordered_map<uint64_t, SocketOwner> found;
  OwnerLookupStats stats;
  stats.scans = 1;
  std::optional<SocketOwner> result;
  for (const auto* list : {&first, &later}) {
    for (pid_t pid : *list) {
      if (auto owner = scanProcess(procFd.get(), pid, inode, found, stats)) {
        result = owner;
        break;
      }
    }
    if (result) break;
  }
  std::lock_guard lock(c.mutex);
  if (c.owners.size() + found.size() > kMaxCachedInodes) c.owners.clear();
  for (auto& [key, value] : found) c.owners.insert_or_assign(key, value);
  c.stats.scans += stats.scans;
  c.stats.processesScanned += stats.processesScanned;
  c.stats.fdsRead += stats.fdsRead;
  return result;
}

OwnerLookupStats ownerLookupStats() {
  std::lock_guard lock(cache().mutex);
  return cache().stats;
}

void clearSocketOwnerCache() {
  std::lock_guard lock(cache().mutex);
  cache().owners.clear();
  cache().stats = {};
}

Result<UniqueFd> openOwnerPidfd(const SocketOwner& owner, uint64_t inode) {
  UniqueFd pidfd(pidfdOpen(owner.pid, 0));
  if (!pidfd) return failErrno("pidfd_open " + std::to_string(owner.pid));
  // The pid may have been recycled between the scan and pidfd_open: the
  // process the pidfd names must still hold the socket.
  if (!ownerStillHolds(owner, inode)) {
    return fail(ESRCH, "pid " + std::to_string(owner.pid) + " no longer holds socket inode " +
                           std::to_string(inode));
  }
  return pidfd;
}

}  // namespace sockgate::security
