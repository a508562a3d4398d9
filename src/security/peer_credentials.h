// The AF_UNIX peer-credential socket options: SO_PEERCRED, SO_PEERPIDFD,
// SO_PEERGROUPS (with its ERANGE size protocol) and SO_PEERSEC (with the
// man page's grow protocol; "no LSM label" is an answer, not an error).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sockgate/error.h"
#include "sockgate/unique_fd.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5; asm-generic value (headers of 6.1 lack it)
#endif

namespace sockgate::security {

// getsockopt(fd, level, option, buf, len) with the errno as a return value
// (0 on success): the seam through which the grow loops are unit-tested.
using GetsockoptFn = std::function<int(void* buf, socklen_t* len)>;

[[nodiscard]] GetsockoptFn realGetsockopt(int fd, int level, int option);

// SO_PEERSEC: starts at NAME_MAX, grows to the size the kernel reports on
// ERANGE, accepts the label with or without a trailing NUL. nullopt = no
// label (ENOPROTOOPT: no LSM provides one for this socket).
[[nodiscard]] Result<std::optional<std::string>> readPeerSecurityLabel(const GetsockoptFn& get);

// SO_PEERGROUPS: asks with room for kInitialGroups, grows to the size the
// kernel reports on ERANGE.
[[nodiscard]] Result<std::vector<gid_t>> readPeerGroups(const GetsockoptFn& get);

struct UnixPeerCredentials {
  pid_t pid = 0;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
};
[[nodiscard]] Result<UnixPeerCredentials> readPeerCredentials(int fd);

// SO_PEERPIDFD; nullopt when the kernel predates it (ENOPROTOOPT).
[[nodiscard]] Result<std::optional<UniqueFd>> readPeerPidfd(int fd);

}  // namespace sockgate::security
