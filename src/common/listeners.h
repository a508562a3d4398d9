// Listening TCP sockets of this network namespace, from /proc/net/tcp{,6}:
// whether an external service is up yet, and which processes own it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "sockgate/endpoint.h"

namespace sockgate {

// The inode of the socket listening on exactly `where`, if any.
std::optional<uint64_t> listeningSocketInode(const Endpoint& where);

// Processes holding a socket inode open (a scan of /proc/*/fd).
std::vector<pid_t> processesHoldingSocket(uint64_t inode);

}  // namespace sockgate
