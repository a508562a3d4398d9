// Getting hold of another process's socket, for `sockgate query --pid P --fd N`
// and `--tcp A B`: pidfd_getfd duplicates it into us (ptrace access needed).
#include <netinet/in.h>

#include <cerrno>

#include "common/pidfd.h"
#include "security/process_info.h"
#include "security/sock_diag.h"
#include "sockgate/security.h"

namespace sockgate {

Result<UniqueFd> socketOfProcess(pid_t pid, int fd) {
  UniqueFd pidfd(pidfdOpen(pid, 0));
  if (!pidfd) return failErrno("pidfd_open " + std::to_string(pid));
  UniqueFd socket(pidfdGetfd(pidfd.get(), fd, 0));
  if (!socket)
    return failErrno("pidfd_getfd pid " + std::to_string(pid) + " fd " + std::to_string(fd));
  return socket;
}

Result<OwnedSocket> socketByTuple(const Endpoint& local, const Endpoint& remote, int protocol) {
  const std::string what =
      (protocol == IPPROTO_UDP ? "udp " : "tcp ") + local.toString() + " -> " + remote.toString();
  auto found = security::findInetSocket(protocol, local, remote);
  if (!found) return std::unexpected(std::move(found.error()));
  if (!*found) return fail(ENOENT, what + ": no such socket");
  if ((*found)->inode == 0)
    return fail(ENOENT, what + ": socket has no owner (orphaned or TIME_WAIT)");
  auto owner = security::findSocketOwner((*found)->inode, (*found)->uid);
  if (!owner) return std::unexpected(std::move(owner.error()));
  if (!*owner) return fail(ESRCH, what + ": no visible process holds it");
  auto socket = socketOfProcess((*owner)->pid, (*owner)->fd);
  if (!socket) return std::unexpected(std::move(socket.error()));
  return OwnedSocket{std::move(*socket), (*owner)->pid, (*owner)->fd};
}

}  // namespace sockgate
