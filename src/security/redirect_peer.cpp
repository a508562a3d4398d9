#include "security/redirect_peer.h"

#include "common/pidfd.h"
#include "security/process_info.h"
#include "sockgate/redirect.h"

namespace sockgate::security {

Result<std::optional<PeerProcess>> resolveRedirectPeer(int fd, const std::optional<Flow>& flow,
                                                       bool wantPidfd) {
  if (!flow) return std::optional<PeerProcess>{};  // AF_UNIX carries no redirect flow
  auto context = readRedirectContext(fd);
  if (!context) {
    if (context.error().code == ENOPROTOOPT) return std::optional<PeerProcess>{};  // not redirected
    return std::unexpected(context.error());
  }
  const auto pid = static_cast<pid_t>(context->originTgid);
  PeerProcess peer;
  if (wantPidfd) peer.pidfd.reset(pidfdOpen(pid, 0));
  // /proc fills in what the context does not carry (executable, groups,
  // cgroup path, label); the process may be gone already, which is fine.
  (void)readProcessIdentity(pid, peer);
  // The ids at connect() time, recorded by the kernel, win over /proc's
  // current ones.
  peer.pid = pid;
  peer.uid = context->originUid;
  peer.gid = context->originGid;
  if (peer.command.empty()) peer.command = context->originComm;
  peer.source = PeerSource::kRedirectContext;
  peer.impersonated = true;
  return std::optional<PeerProcess>(std::move(peer));
}

}  // namespace sockgate::security
