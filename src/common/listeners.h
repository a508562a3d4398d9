// Listening TCP sockets of this network namespace, from /proc/net/tcp{,6}:
// whether an external service is up yet (security::findSocketOwner then
// tells which process owns it).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "sockgate/endpoint.h"

namespace sockgate {

// The inode of the socket listening on exactly `where`, if any.
std::optional<uint64_t> listeningSocketInode(const Endpoint& where);

}  // namespace sockgate
