#include "sockgate/endpoint.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace sockgate {

namespace {

Result<uint16_t> parsePort(std::string_view text, std::string_view whole) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value > 65535 || text.empty())
    return fail(EINVAL, "endpoint '" + std::string(whole) + "': bad port");
  return static_cast<uint16_t>(value);
}

}  // namespace

Result<Endpoint> Endpoint::parse(std::string_view text) {
  Endpoint ep;
  std::string host;
  std::string_view portText;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return fail(EINVAL, "endpoint '" + std::string(text) + "': expected [ADDR]:PORT");
    host = std::string(text.substr(1, close - 1));
    portText = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return fail(EINVAL, "endpoint '" + std::string(text) + "': expected ADDR:PORT");
    host = std::string(text.substr(0, colon));
    portText = text.substr(colon + 1);
    if (host.find(':') != std::string::npos)  // "::1:80" is ambiguous
      return fail(EINVAL, "endpoint '" + std::string(text) + "': write IPv6 as [ADDR]:PORT");
  }
  auto port = parsePort(portText, text);
  if (!port) return std::unexpected(port.error());
  auto* sin = reinterpret_cast<sockaddr_in*>(&ep.storage_);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ep.storage_);
  if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(*port);
    ep.length_ = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(*port);
    ep.length_ = sizeof(sockaddr_in6);
  } else {
    return fail(EINVAL, "endpoint '" + std::string(text) + "': '" + host +
                            "' is not an IPv4 or IPv6 address");
  }
  return ep;
}

Endpoint Endpoint::fromSockaddr(const sockaddr* sa, socklen_t len) {
  Endpoint ep;
  if (sa == nullptr) return ep;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    std::memcpy(&ep.storage_, sa, sizeof(sockaddr_in));
    ep.length_ = sizeof(sockaddr_in);
  } else if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    std::memcpy(&ep.storage_, sa, sizeof(sockaddr_in6));
    ep.length_ = sizeof(sockaddr_in6);
  }
  return ep;
}

Endpoint Endpoint::fromAbi(const sg_endpoint& abi) {
  Endpoint ep;
  if (abi.family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ep.storage_);
    sin->sin_family = AF_INET;
    sin->sin_port = abi.port;
    std::memcpy(&sin->sin_addr, abi.addr, 4);
    ep.length_ = sizeof(sockaddr_in);
  } else if (abi.family == AF_INET6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ep.storage_);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = abi.port;
    std::memcpy(&sin6->sin6_addr, abi.addr, 16);
    ep.length_ = sizeof(sockaddr_in6);
  }
  return ep;
}

Endpoint Endpoint::v4(uint32_t addrNetworkOrder, uint16_t port) {
  sg_endpoint abi{};
  abi.family = AF_INET;
  abi.port = htons(port);
  std::memcpy(abi.addr, &addrNetworkOrder, 4);
  return fromAbi(abi);
}

Endpoint Endpoint::loopback(int family, uint16_t port) {
  if (family == AF_INET) return v4(htonl(INADDR_LOOPBACK), port);
  sg_endpoint abi{};
  abi.family = AF_INET6;
  abi.port = htons(port);
  abi.addr[15] = 1;
  return fromAbi(abi);
}

Endpoint Endpoint::fromAddressBytes(int family, const std::array<uint8_t, 16>& address,
                                    uint16_t port) {
  if (family != AF_INET && family != AF_INET6) return {};
  sg_endpoint abi{};
  abi.family = static_cast<__u16>(family);
  abi.port = htons(port);
  std::memcpy(abi.addr, address.data(), address.size());
  return fromAbi(abi);
}

sg_endpoint Endpoint::toAbi() const {
  sg_endpoint abi{};
  if (family() == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&storage_);
    abi.family = AF_INET;
    abi.port = sin->sin_port;
    std::memcpy(abi.addr, &sin->sin_addr, 4);
  } else if (family() == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    abi.family = AF_INET6;
    abi.port = sin6->sin6_port;
    std::memcpy(abi.addr, &sin6->sin6_addr, 16);
  }
  return abi;
}

uint16_t Endpoint::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

void Endpoint::setPort(uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

std::string Endpoint::address() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
  else if (family() == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
              sizeof buf);
  return buf;
}

std::string Endpoint::toString() const {
  if (empty()) return "-";
  if (family() == AF_INET6) return "[" + address() + "]:" + std::to_string(port());
  return address() + ":" + std::to_string(port());
}

std::array<uint8_t, 16> Endpoint::addressBytes() const {
  const sg_endpoint abi = toAbi();
  std::array<uint8_t, 16> out{};
  std::memcpy(out.data(), abi.addr, out.size());
  return out;
}

bool Endpoint::isAnyAddress() const {
  const auto bytes = addressBytes();
  return !empty() && std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

Endpoint Endpoint::unmapped() const {
  if (family() != AF_INET6) return *this;
  const auto& addr = reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr;
  if (!IN6_IS_ADDR_V4MAPPED(&addr)) return *this;
  uint32_t v4Address = 0;
  std::memcpy(&v4Address, &addr.s6_addr[12], 4);
  return v4(v4Address, port());
}

bool operator==(const Endpoint& a, const Endpoint& b) {
  return a.length_ == b.length_ && std::memcmp(&a.storage_, &b.storage_, a.length_) == 0;
}

namespace {
Result<Endpoint> socketName(int fd, int (*query)(int, sockaddr*, socklen_t*), const char* what) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (query(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return failErrno(std::string(what) + "(fd " + std::to_string(fd) + ")");
  return Endpoint::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}
}  // namespace

Result<Endpoint> localEndpoint(int fd) { return socketName(fd, ::getsockname, "getsockname"); }

Result<Endpoint> remoteEndpoint(int fd) { return socketName(fd, ::getpeername, "getpeername"); }

}  // namespace sockgate
