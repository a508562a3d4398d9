// querySocketSecurity: ties the parts together. The order of work is chosen
// so that the cheap answers come first and the expensive ones (XFRM dumps,
// the /proc owner scan) only run when the caller asked for them.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <mutex>

#include "common/pidfd.h"
#include "security/ktls.h"
#include "security/peer_credentials.h"
#include "security/process_info.h"
#include "security/redirect_peer.h"
#include "security/sock_diag.h"
#include "security/tcp_state.h"
#include "security/xfrm.h"
#include "sockgate/security.h"

namespace sockgate {
namespace {

using security::findInetSocket;
using security::findSocketOwner;

// Where the resolvers of the current query leave their remarks; set by
// resolvePeer for the duration of one chain walk.
thread_local std::vector<std::string>* tNotes = nullptr;

void note(std::string text) {
  if (tNotes != nullptr) tNotes->push_back(std::move(text));
}

Result<int> intOption(int fd, int option, const char* name) {
  int value = 0;
  socklen_t len = sizeof(value);
  if (::getsockopt(fd, SOL_SOCKET, option, &value, &len) != 0)
    return failErrno(std::string("getsockopt ") + name);
  return value;
}

// A pidfd becomes readable when its process exits: a check that needs no
// permission over the process (unlike a signal 0).
bool processAlive(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

// /proc was read by pid: if the process has exited meanwhile, the pid may
// name another process now, so what /proc said cannot be trusted.
void dropProcFieldsIfExited(PeerProcess& peer, int pidfd) {
  if (pidfd >= 0 && processAlive(pidfd)) return;
  peer.executable.clear();
  peer.command.clear();
  peer.cgroup.clear();
  peer.lsmLabel.reset();
  note("peer process " + std::to_string(peer.pid) + " exited during the query");
}

Result<std::optional<PeerProcess>> resolveUnixPeer(int fd, const std::optional<Flow>& flow,
                                                   bool wantPidfd) {
  if (flow) return std::optional<PeerProcess>{};
  auto domain = intOption(fd, SO_DOMAIN, "SO_DOMAIN");
  if (!domain) return std::unexpected(std::move(domain.error()));
  if (*domain != AF_UNIX) return std::optional<PeerProcess>{};
  auto cred = security::readPeerCredentials(fd);
  if (!cred) return std::unexpected(std::move(cred.error()));
  if (cred->pid <= 0)
    return std::optional<PeerProcess>{};  // no peer, or one in a pid namespace we cannot see
  PeerProcess peer;
  peer.source = PeerSource::kUnixCredentials;
  auto pidfd = security::readPeerPidfd(fd);
  if (!pidfd) return std::unexpected(std::move(pidfd.error()));
  UniqueFd handle;
  if (*pidfd) {
    handle = std::move(**pidfd);
  } else {
    // Kernels before 6.5: pidfd_open by pid can race with pid reuse; the
    // fdinfo check below narrows that to "same pid, still alive".
    handle.reset(pidfdOpen(cred->pid, 0));
    note("SO_PEERPIDFD unsupported: pidfd opened by pid");
  }
  if (handle) {
    auto pid = security::pidOfPidfd(handle.get());
    if (pid && *pid != cred->pid) {
      return fail(ESRCH, "peer pidfd names pid " + std::to_string(*pid) + ", SO_PEERCRED says " +
                             std::to_string(cred->pid));
    }
  }
  if (auto status = security::readProcessIdentity(cred->pid, peer); !status) {
    note(status.error().message());
  }
  // The credentials the kernel saved at connect() are the authoritative
  // ones; /proc shows what the process has now.
  peer.pid = cred->pid;
  peer.uid = cred->uid;
  peer.gid = cred->gid;
  auto groups = security::readPeerGroups(security::realGetsockopt(fd, SOL_SOCKET, SO_PEERGROUPS));
  if (groups) {
    peer.groups = std::move(*groups);
  } else {
    note(groups.error().message());
  }
  dropProcFieldsIfExited(peer, handle.get());
  if (wantPidfd) peer.pidfd = std::move(handle);
  return std::optional<PeerProcess>(std::move(peer));
}

Result<std::optional<PeerProcess>> resolveSockDiagPeer(int, const std::optional<Flow>& flow,
                                                       bool wantPidfd) {
  if (!flow || (flow->protocol != IPPROTO_TCP && flow->protocol != IPPROTO_UDP)) {
    return std::optional<PeerProcess>{};
  }
  // The peer socket's local end is our remote end.
  auto socket = findInetSocket(flow->protocol, flow->remote, flow->local);
  if (!socket) return std::unexpected(std::move(socket.error()));
  if (!*socket) return std::optional<PeerProcess>{};  // not on this host (or another netns)
  const uint64_t inode = (*socket)->inode;
  if (inode == 0) return std::optional<PeerProcess>{};  // e.g. a TIME_WAIT or orphaned socket
  auto owner = findSocketOwner(inode, (*socket)->uid);
  if (!owner) return std::unexpected(std::move(owner.error()));
  if (!*owner) {
    note("peer socket inode " + std::to_string(inode) + " has no visible owner process");
    return std::optional<PeerProcess>{};
  }
  auto pidfd = security::openOwnerPidfd(**owner, inode);
  if (!pidfd) return std::unexpected(std::move(pidfd.error()));
  PeerProcess peer;
  peer.source = PeerSource::kSockDiag;
  if (auto status = security::readProcessIdentity((*owner)->pid, peer); !status) {
    return std::unexpected(std::move(status.error()));
  }
  dropProcFieldsIfExited(peer, pidfd->get());
  if (wantPidfd) peer.pidfd = std::move(*pidfd);
  return std::optional<PeerProcess>(std::move(peer));
}

struct ResolverRegistry {
  std::mutex mutex;
  std::vector<PeerResolver> chain = builtinPeerResolvers();
};

ResolverRegistry& registry() {
  static ResolverRegistry instance;
  return instance;
}

// The source address the kernel would use towards `remote` (for a socket
// bound to the wildcard): connect() on a UDP socket routes without sending.
Result<Endpoint> sourceAddressTowards(const Endpoint& remote, uint16_t localPort) {
  UniqueFd probe(::socket(remote.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!probe) return failErrno("route probe socket");
  if (::connect(probe.get(), remote.sockaddrPtr(), remote.length()) != 0) {
    return failErrno("route to " + remote.toString());
  }
  auto endpoint = localEndpoint(probe.get());
  if (!endpoint) return std::unexpected(std::move(endpoint.error()));
  Endpoint source = endpoint->unmapped();
  source.setPort(localPort);
  return source;
}

// Why a connection-oriented socket has no peer: reset (the Windows
// WSAECONNRESET case) or never connected.
Error noPeerError(int fd, int protocol) {
  if (protocol == IPPROTO_TCP) {
    auto tcp = security::readTcpState(fd);
    if (tcp && tcp->state == security::kTcpClose && tcp->segsIn > 0) {
      // Closed after having heard from the peer: reset, or torn down.
      return makeError(ECONNRESET, "socket " + std::to_string(fd) + ": connection reset");
    }
  }
  return makeError(ENOTCONN, "socket " + std::to_string(fd) + ": not connected and no peer given");
}

// A UDP socket that got ICMP port unreachable holds ECONNREFUSED in its
// pending error; Windows reports that case as WSAECONNRESET. Reading it
// consumes it, as the next recv would have.
Status pendingDatagramError(int fd) {
  pollfd p{fd, 0, 0};
  if (::poll(&p, 1, 0) <= 0 || (p.revents & POLLERR) == 0) return {};
  auto err = intOption(fd, SO_ERROR, "SO_ERROR");
  if (!err) return std::unexpected(std::move(err.error()));
  if (*err == ECONNREFUSED)
    return fail(ECONNRESET, "socket " + std::to_string(fd) + ": ICMP port unreachable");
  if (*err != 0) return fail(*err, "socket " + std::to_string(fd) + ": pending error");
  return {};
}

Result<Flow> flowOf(int fd, int protocol, const QueryOptions& options) {
  Flow flow;
  flow.protocol = protocol;
  // Only AF_INET/AF_INET6 sockets get here: both names are IP endpoints.
  auto local = localEndpoint(fd);
  if (!local) return std::unexpected(std::move(local.error()));
  flow.local = local->unmapped();
  if (options.peer) {
    flow.remote = options.peer->unmapped();
  } else {
    auto remote = remoteEndpoint(fd);
    if (!remote) {
      if (remote.error().code == ENOTCONN) return std::unexpected(noPeerError(fd, protocol));
      return std::unexpected(std::move(remote.error()));
    }
    flow.remote = remote->unmapped();
  }
  if (flow.local.isAnyAddress() || flow.local.family() != flow.remote.family()) {
    auto source = sourceAddressTowards(flow.remote, flow.local.port());
    if (!source) return std::unexpected(std::move(source.error()));
    flow.local = *source;
  }
  return flow;
}

void addIpsec(int fd, const Flow& flow, SocketSecurity& out) {
  auto policies = security::dumpXfrmPolicies();
  if (!policies) {
    // Unprivileged callers cannot read XFRM (CAP_NET_ADMIN): the answer is
    // "not known to be secured", which is the safe reading for a caller.
    out.notes.push_back("IPsec not checked: " + policies.error().message());
    return;
  }
  security::SocketXfrmContext context;
  if (auto mark = intOption(fd, SO_MARK, "SO_MARK")) context.mark = static_cast<uint32_t>(*mark);
  IpsecStatus status = security::evaluateIpsec(*policies, {}, flow, context);
  if (status.outbound.requiresIpsec || status.inbound.requiresIpsec) {
    auto states = security::dumpXfrmStates();
    if (!states) {
      out.notes.push_back("IPsec SAs not readable: " + states.error().message());
    } else {
      status = security::evaluateIpsec(*policies, *states, flow, context);
    }
  }
  out.ipsec = std::move(status);
}

Result<std::optional<PeerProcess>> resolvePeer(int fd, const std::optional<Flow>& flow,
                                               const QueryOptions& options,
                                               std::vector<std::string>& notes) {
  const std::vector<PeerResolver> chain =
      options.resolvers.empty() ? peerResolvers() : options.resolvers;
  tNotes = &notes;
  struct Reset {
    ~Reset() { tNotes = nullptr; }
  } reset;
  for (const PeerResolver& resolver : chain) {
    auto peer = resolver.resolve(fd, flow, options.wantPidfd);
    if (!peer) {
      notes.push_back(resolver.name + ": " + peer.error().message());
      continue;
    }
    if (*peer) return peer;
  }
  return std::optional<PeerProcess>{};
}

}  // namespace

std::vector<PeerResolver> builtinPeerResolvers() {
  // The built-in resolvers leave remarks through note() (a thread-local
  // sink that resolvePeer points at SocketSecurity::notes), so the resolver
  // interface stays what an outside resolver needs.
  return {
      PeerResolver{"redirect-context", security::resolveRedirectPeer},
      PeerResolver{"unix-credentials", resolveUnixPeer},
      PeerResolver{"sock-diag", resolveSockDiagPeer},
  };
}

std::vector<PeerResolver> peerResolvers() {
  std::lock_guard lock(registry().mutex);
  return registry().chain;
}

void prependPeerResolver(PeerResolver resolver) {
  std::lock_guard lock(registry().mutex);
  registry().chain.insert(registry().chain.begin(), std::move(resolver));
}

Result<SocketSecurity> querySocketSecurity(int fd, const QueryOptions& options) {
  SocketSecurity out;
  auto domain = intOption(fd, SO_DOMAIN, "SO_DOMAIN");
  if (!domain) return std::unexpected(std::move(domain.error()));
  auto type = intOption(fd, SO_TYPE, "SO_TYPE");
  if (!type) return std::unexpected(std::move(type.error()));
  auto protocol = intOption(fd, SO_PROTOCOL, "SO_PROTOCOL");
  if (!protocol) return std::unexpected(std::move(protocol.error()));
  out.family = *domain;
  out.type = *type;

  if (*domain == AF_UNIX) {
    if (options.wantLabel) {
      auto label =
          security::readPeerSecurityLabel(security::realGetsockopt(fd, SOL_SOCKET, SO_PEERSEC));
      if (!label) return std::unexpected(std::move(label.error()));
      out.peerLabel = std::move(*label);
    }
    if (options.wantPeerProcess) {
      auto peer = resolvePeer(fd, std::nullopt, options, out.notes);
      if (!peer) return std::unexpected(std::move(peer.error()));
      out.peer = std::move(*peer);
    }
    if (out.peer && out.peer->impersonated) out.flags |= kSecurityFlagImpersonated;
    return out;
  }
  if (*domain != AF_INET && *domain != AF_INET6) {
    return fail(EAFNOSUPPORT,
                "socket " + std::to_string(fd) + ": family " + std::to_string(*domain));
  }
  if (*type != SOCK_STREAM && *type != SOCK_DGRAM) {
    return fail(EINVAL, "socket " + std::to_string(fd) + ": type " + std::to_string(*type));
  }
  // MPTCP runs over TCP subflows: the wire (and IPsec) sees TCP.
  const int wireProtocol = *protocol == IPPROTO_MPTCP ? IPPROTO_TCP : *protocol;
  if (wireProtocol == IPPROTO_UDP) {
    if (auto pending = pendingDatagramError(fd); !pending)
      return std::unexpected(std::move(pending.error()));
  }
  auto flow = flowOf(fd, wireProtocol, options);
  if (!flow) return std::unexpected(std::move(flow.error()));
  out.flow = *flow;

  if (options.wantKtls && wireProtocol == IPPROTO_TCP) {
    auto ktls = security::readKtls(fd);
    if (!ktls) {
      out.notes.push_back(ktls.error().message());
    } else {
      out.ktls = *ktls;
    }
  }
  if (options.wantIpsec) addIpsec(fd, *flow, out);
  if (options.wantLabel && wireProtocol == IPPROTO_TCP) {
    // Labeled IPsec / NetLabel: an error here proves nothing either way.
    auto label =
        security::readPeerSecurityLabel(security::realGetsockopt(fd, SOL_SOCKET, SO_PEERSEC));
    if (label) {
      out.peerLabel = std::move(*label);
    } else {
      out.notes.push_back(label.error().message());
    }
  }
  if (options.wantPeerProcess) {
    auto peer = resolvePeer(fd, out.flow, options, out.notes);
    if (!peer) return std::unexpected(std::move(peer.error()));
    out.peer = std::move(*peer);
  }
  if (out.ipsec && out.ipsec->secured) {
    out.protocol = SecurityProtocol::kIpsec;
    out.flags |= kSecurityFlagSecured;
    if (out.ipsec->encrypted) out.flags |= kSecurityFlagEncrypted;
  }
  if (out.peer && out.peer->impersonated) out.flags |= kSecurityFlagImpersonated;
  return out;
}

}  // namespace sockgate
