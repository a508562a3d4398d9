// An IPv4 or IPv6 address and port, convertible to and from sockaddr and the
// ABI's sg_endpoint. A v4-mapped IPv6 address is kept as written.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

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

  [[nodiscard]] sg_endpoint toAbi() const;
  [[nodiscard]] int family() const { return storage_.ss_family; }
  [[nodiscard]] bool empty() const { return length_ == 0; }
  [[nodiscard]] uint16_t port() const;
  void setPort(uint16_t port);
  [[nodiscard]] const sockaddr* sockaddrPtr() const {
    return reinterpret_cast<const sockaddr*>(&storage_);
  }
  [[nodiscard]] socklen_t length() const { return length_; }
  [[nodiscard]] std::string address() const;  // "127.0.0.1" or "::1"
  [[nodiscard]] std::string toString() const;  // "127.0.0.1:80" or "[::1]:80"

  friend bool operator==(const Endpoint& a, const Endpoint& b);

 private:
  sockaddr_storage storage_{};
  socklen_t length_ = 0;
};

// The local (getsockname) and remote (getpeername) ends of a socket.
Result<Endpoint> localEndpoint(int fd);
Result<Endpoint> remoteEndpoint(int fd);

}  // namespace sockgate
