// An IPv4 or IPv6 address and port, convertible to and from sockaddr and the
// ABI's sg_endpoint. A v4-mapped IPv6 address is kept as written.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "sockgate/abi/sockgate_abi.h"
#include "sockgate/error.h"

namespace sockgate {

class Endpoint {
 public:
  Endpoint() = default;

  // "127.0.0.1:80", "[::1]:443", "[::ffff:10.0.0.1]:22"
  static Result<Endpoint> parse(std::string_view text);
  static Endpoint fromSockaddr(const sockaddr* sa, socklen_t len);
  static Endpoint fromAbi(const sg_endpoint& ep);
  static Endpoint v4(uint32_t addrNetworkOrder, uint16_t port);
  static Endpoint loopback(int family, uint16_t port);
  // The address as netlink carries it (inet_diag sockids, XFRM selectors and
  // SAs): network order, IPv4 in the first 4 bytes. Port 0 is the address-only
  // form an SA's outer addresses take. Empty for another family.
  static Endpoint fromAddressBytes(int family, const std::array<uint8_t, 16>& address,
                                   uint16_t port = 0);

  [[nodiscard]] sg_endpoint toAbi() const;
  [[nodiscard]] int family() const { return storage_.ss_family; }
  [[nodiscard]] bool empty() const { return length_ == 0; }
  [[nodiscard]] uint16_t port() const;
  void setPort(uint16_t port);
  [[nodiscard]] const sockaddr* sockaddrPtr() const {
    return reinterpret_cast<const sockaddr*>(&storage_);
  }
  [[nodiscard]] socklen_t length() const { return length_; }
  [[nodiscard]] std::string address() const;   // "127.0.0.1" or "::1"
  [[nodiscard]] std::string toString() const;  // "127.0.0.1:80" or "[::1]:80"
  // The inverse of fromAddressBytes: what netlink requests and XFRM selector
  // matching compare. IPv4 leaves bytes 4..15 zero; empty gives all zero.
  [[nodiscard]] std::array<uint8_t, 16> addressBytes() const;
  // 0.0.0.0 or :: (a socket bound to the wildcard); false when empty.
  [[nodiscard]] bool isAnyAddress() const;
  // A v4-mapped IPv6 endpoint ([::ffff:10.0.0.1]:22, what a dual-stack socket
  // reports for an IPv4 peer) as the AF_INET endpoint it is on the wire:
  // the kernel's socket lookups and IPsec match such a flow as AF_INET.
  // Any other endpoint is returned as it is.
  [[nodiscard]] Endpoint unmapped() const;

  friend bool operator==(const Endpoint& a, const Endpoint& b);

 private:
  sockaddr_storage storage_{};
  socklen_t length_ = 0;
};

// The local (getsockname) and remote (getpeername) ends of a socket.
Result<Endpoint> localEndpoint(int fd);
Result<Endpoint> remoteEndpoint(int fd);

}  // namespace sockgate
