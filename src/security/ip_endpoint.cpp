// IpEndpoint: the address form every part of the security query shares.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

#include "sockgate/security.h"

namespace sockgate {

Result<IpEndpoint> IpEndpoint::fromSockaddr(const sockaddr* sa, socklen_t len) {
  if (sa == nullptr || len < static_cast<socklen_t>(sizeof(sa_family_t))) {
    return fail(EINVAL, "socket address: too short");
  }
  IpEndpoint out;
  if (sa->sa_family == AF_INET) {
    if (len < static_cast<socklen_t>(sizeof(sockaddr_in))) return fail(EINVAL, "sockaddr_in: too short");
    sockaddr_in in{};
    std::memcpy(&in, sa, sizeof(in));
    out.family = AF_INET;
    std::memcpy(out.address.data(), &in.sin_addr, 4);
    out.port = ntohs(in.sin_port);
    return out;
  }
  if (sa->sa_family == AF_INET6) {
    if (len < static_cast<socklen_t>(sizeof(sockaddr_in6))) return fail(EINVAL, "sockaddr_in6: too short");
    sockaddr_in6 in6{};
    std::memcpy(&in6, sa, sizeof(in6));
    out.port = ntohs(in6.sin6_port);
    // A dual-stack socket talking to an IPv4 peer carries ::ffff:a.b.c.d; the
    // kernel routes, looks up and IPsec-matches that flow as AF_INET.
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
      out.family = AF_INET;
      std::memcpy(out.address.data(), &in6.sin6_addr.s6_addr[12], 4);
      return out;
    }
    out.family = AF_INET6;
    std::memcpy(out.address.data(), &in6.sin6_addr, 16);
    out.scopeId = in6.sin6_scope_id;
    return out;
  }
  return fail(EAFNOSUPPORT, "socket address family " + std::to_string(sa->sa_family));
}

Result<IpEndpoint> IpEndpoint::parse(const std::string& text) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return fail(EINVAL, "endpoint '" + text + "': expected [ipv6]:port");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return fail(EINVAL, "endpoint '" + text + "': expected address:port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || end != port.data() + port.size() || value > 65535) {
    return fail(EINVAL, "endpoint '" + text + "': bad port");
  }
  IpEndpoint out;
  out.port = static_cast<uint16_t>(value);
  if (inet_pton(AF_INET, host.c_str(), out.address.data()) == 1) {
    out.family = AF_INET;
    return out;
  }
  if (inet_pton(AF_INET6, host.c_str(), out.address.data()) == 1) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    std::memcpy(&in6.sin6_addr, out.address.data(), 16);
    in6.sin6_port = htons(out.port);
    return fromSockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof(in6));
  }
  return fail(EINVAL, "endpoint '" + text + "': bad address");
}

sockaddr_storage IpEndpoint::toSockaddr(socklen_t* len) const {
  sockaddr_storage ss{};
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    std::memcpy(&in->sin_addr, address.data(), 4);
    if (len != nullptr) *len = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    in6->sin6_scope_id = scopeId;
    std::memcpy(&in6->sin6_addr, address.data(), 16);
    if (len != nullptr) *len = sizeof(sockaddr_in6);
  }
  return ss;
}

std::string IpEndpoint::addressString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family != AF_INET && family != AF_INET6) return "?";
  inet_ntop(family, address.data(), buf, sizeof(buf));
  return buf;
}

std::string IpEndpoint::toString() const {
  if (family == AF_INET6) return "[" + addressString() + "]:" + std::to_string(port);
  return addressString() + ":" + std::to_string(port);
}

bool IpEndpoint::isAnyAddress() const {
  const size_t n = family == AF_INET ? 4 : 16;
  for (size_t i = 0; i < n; ++i) {
    if (address[i] != 0) return false;
  }
  return true;
}

}  // namespace sockgate
