// What /proc says about a process, and which process holds a socket inode.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sockgate/security.h"
#include "sockgate/unique_fd.h"

namespace sockgate::security {

// Fills uid/gid (effective), groups, executable, command, cgroup and the LSM
// label of `pid` into `peer` (pid itself is set too).
[[nodiscard]] Status readProcessIdentity(pid_t pid, PeerProcess& peer);

// Parses the "Uid:", "Gid:" and "Groups:" lines of /proc/<pid>/status.
struct StatusIds {
  uid_t euid = static_cast<uid_t>(-1);
  gid_t egid = static_cast<gid_t>(-1);
  std::vector<gid_t> groups;
};
[[nodiscard]] StatusIds parseProcStatus(const std::string& text);

// The "0::/path" line of /proc/<pid>/cgroup (cgroup v2), or "" if none.
[[nodiscard]] std::string parseCgroupV2Path(const std::string& text);

// The pid in /proc/self/fdinfo/<pidfd> ("Pid:\t123"), -1 if the process is
// gone, 0 if it is in another pid namespace.
[[nodiscard]] Result<pid_t> pidOfPidfd(int pidfd);

struct SocketOwner {
  pid_t pid = 0;
  int fd = -1;
};

// Finds a process holding socket `inode`. Looked up in a process-wide cache
// first (each hit re-validated with one readlink), then by scanning
// /proc/<pid>/fd: processes whose /proc entry belongs to `uidHint` or root
// first, everyone else after. Every socket seen during a scan is cached.
[[nodiscard]] Result<std::optional<SocketOwner>> findSocketOwner(uint64_t inode,
                                                                 std::optional<uid_t> uidHint);

// Counters for the cost figures in docs/security.md.
struct OwnerLookupStats {
  uint64_t cacheHits = 0;
  uint64_t scans = 0;
  uint64_t processesScanned = 0;
  uint64_t fdsRead = 0;
};
[[nodiscard]] OwnerLookupStats ownerLookupStats();
void clearSocketOwnerCache();

// A pidfd for `owner.pid` that is known to still hold socket `inode`
// (re-validated after pidfd_open, so a recycled pid is never returned).
[[nodiscard]] Result<UniqueFd> openOwnerPidfd(const SocketOwner& owner, uint64_t inode);

}  // namespace sockgate::security
