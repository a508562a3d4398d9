// On a redirect service's accepted socket, the peer that matters is the
// application that called connect(), not the service's own loopback client:
// the redirect context names it.
#pragma once

#include <optional>

#include "sockgate/security.h"

namespace sockgate::security {

Result<std::optional<PeerProcess>> resolveRedirectPeer(int fd, const std::optional<Flow>& flow,
                                                       bool wantPidfd);

}  // namespace sockgate::security
