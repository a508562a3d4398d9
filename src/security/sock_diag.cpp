#include "security/sock_diag.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace sockgate::security {
namespace {

Endpoint endpointFromDiag(int family, const __be32 (&address)[4], __be16 port) {
  std::array<uint8_t, 16> bytes{};
  std::memcpy(bytes.data(), address, bytes.size());
  return Endpoint::fromAddressBytes(family, bytes, ntohs(port)).unmapped();
}

void putEndpoint(const Endpoint& endpoint, __be32 (&address)[4], __be16* port) {
  const auto bytes = endpoint.addressBytes();
  std::memcpy(address, bytes.data(), bytes.size());
  *port = htons(endpoint.port());
}

bool sameAddress(const Endpoint& a, const Endpoint& b) {
  return a.family() == b.family() && a.addressBytes() == b.addressBytes();
}

}  // namespace

std::vector<uint32_t> buildInetDiagRequest(int protocol, const Endpoint& local,
                                           const Endpoint& remote) {
  std::vector<uint32_t> buffer((MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(inet_diag_req_v2)) + 3) / 4);
  nlmsghdr* header = mnl_nlmsg_put_header(buffer.data());
  header->nlmsg_type = SOCK_DIAG_BY_FAMILY;
  // No NLM_F_DUMP: an exact lookup of one socket (sock_diag(7)).
  header->nlmsg_flags = NLM_F_REQUEST;
  auto* req =
      static_cast<inet_diag_req_v2*>(mnl_nlmsg_put_extra_header(header, sizeof(inet_diag_req_v2)));
  req->sdiag_family = static_cast<uint8_t>(local.family());
  req->sdiag_protocol = static_cast<uint8_t>(protocol);
  req->idiag_states = ~0U;
  req->id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  req->id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (protocol == IPPROTO_UDP) {
    // udp_dump_one looks up (src, sport) -> (dst, dport) as a received packet.
    putEndpoint(remote, req->id.idiag_src, &req->id.idiag_sport);
    putEndpoint(local, req->id.idiag_dst, &req->id.idiag_dport);
  } else {
    putEndpoint(local, req->id.idiag_src, &req->id.idiag_sport);
    putEndpoint(remote, req->id.idiag_dst, &req->id.idiag_dport);
  }
  return buffer;
}

Result<std::optional<InetDiagSocket>> parseInetDiagMessage(const nlmsghdr& message) {
  if (message.nlmsg_type != SOCK_DIAG_BY_FAMILY) return std::optional<InetDiagSocket>{};
  inet_diag_msg msg{};
  if (!readPayload(message, &msg)) return fail(EBADMSG, "inet_diag reply: message too short");
  if (msg.idiag_family != AF_INET && msg.idiag_family != AF_INET6) {
    return fail(EBADMSG, "inet_diag reply: family " + std::to_string(msg.idiag_family));
  }
  InetDiagSocket out;
  out.family = msg.idiag_family;
  out.state = msg.idiag_state;
  out.local = endpointFromDiag(msg.idiag_family, msg.id.idiag_src, msg.id.idiag_sport);
  out.remote = endpointFromDiag(msg.idiag_family, msg.id.idiag_dst, msg.id.idiag_dport);
  out.uid = msg.idiag_uid;
  out.inode = msg.idiag_inode;
  out.cookie = (static_cast<uint64_t>(msg.id.idiag_cookie[1]) << 32) | msg.id.idiag_cookie[0];
  struct Found {
    std::optional<uint64_t> cgroup;
  } found;
  const auto collect = [](const nlattr* attr, void* data) -> int {
    if (mnl_attr_get_type(attr) == INET_DIAG_CGROUP_ID &&
        mnl_attr_get_payload_len(attr) >= sizeof(uint64_t)) {
      uint64_t id = 0;
      std::memcpy(&id, mnl_attr_get_payload(attr), sizeof(id));
      static_cast<Found*>(data)->cgroup = id;
    }
    return MNL_CB_OK;
  };
  if (mnl_attr_parse(&message, sizeof(msg), collect, &found) == MNL_CB_ERROR) {
    return fail(EBADMSG, "inet_diag reply: malformed attributes");
  }
  out.cgroupId = found.cgroup;
  return std::optional<InetDiagSocket>(out);
}

Result<BatchEnd> parseInetDiagBatch(std::span<const uint8_t> bytes,
                                    std::vector<InetDiagSocket>& out) {
  return walkReplies(bytes, 0, 0, [&](const nlmsghdr& message) -> Status {
    auto item = parseInetDiagMessage(message);
    if (!item) return std::unexpected(std::move(item.error()));
    if (*item) out.push_back(**item);
    return {};
  });
}

bool replyMatches(int protocol, const InetDiagSocket& reply, const Endpoint& local,
                  const Endpoint& remote) {
  if (reply.local.port() != local.port()) return false;
  if (protocol == IPPROTO_TCP) {
    if (reply.state == TCP_LISTEN) return false;
    return sameAddress(reply.local, local) && sameAddress(reply.remote, remote) &&
           reply.remote.port() == remote.port();
  }
  // UDP: the socket that receives remote's datagrams: bound to local's
  // address or the wildcard, connected to remote or not connected at all.
  const bool localOk = sameAddress(reply.local, local) || reply.local.isAnyAddress();
  const bool remoteOk =
      (sameAddress(reply.remote, remote) && reply.remote.port() == remote.port()) ||
      (reply.remote.isAnyAddress() && reply.remote.port() == 0);
  return localOk && remoteOk;
}

Result<std::optional<InetDiagSocket>> findInetSocket(int protocol, const Endpoint& localEnd,
                                                     const Endpoint& remoteEnd) {
  if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) {
    return fail(EPROTONOSUPPORT, "sock_diag lookup: protocol " + std::to_string(protocol));
  }
  const Endpoint local = localEnd.unmapped();
  const Endpoint remote = remoteEnd.unmapped();
  if (local.family() != remote.family())
    return fail(EINVAL, "sock_diag lookup: mixed address families");
  auto channel = NetlinkChannel::open(NETLINK_SOCK_DIAG, "sock_diag lookup");
  if (!channel) return std::unexpected(std::move(channel.error()));
  auto request = buildInetDiagRequest(protocol, local, remote);
  std::optional<InetDiagSocket> found;
  Status status = channel->transact(reinterpret_cast<nlmsghdr*>(request.data()), false,
                                    [&](const nlmsghdr& message) -> Status {
                                      auto item = parseInetDiagMessage(message);
                                      if (!item) return std::unexpected(std::move(item.error()));
                                      if (*item && !found) found = **item;
                                      return {};
                                    });
  if (!status) {
    if (status.error().code == ENOENT) return std::optional<InetDiagSocket>{};
    return std::unexpected(std::move(status.error()));
  }
  if (found && !replyMatches(protocol, *found, local, remote))
    return std::optional<InetDiagSocket>{};
  return found;
}

}  // namespace sockgate::security
