// A connected loopback TCP pair and switching one of its sockets to kernel
// TLS (TCP_ULP "tls" + TLS_TX/TLS_RX with AES-GCM-128 and a fixed key).
#pragma once

#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/unique_fd.h"

namespace sockgate::vmtest {

inline std::string errnoText(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

// A connected loopback TCP pair: {client, server}.
struct TcpPair {
  UniqueFd client;
  UniqueFd server;
  std::string error;
};

inline TcpPair loopbackPair() {
  TcpPair p;
  UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (!listener || bind(listener.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0 ||
      listen(listener.get(), 1) != 0 ||
      getsockname(listener.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    p.error = errnoText("listen");
    return p;
  }
  p.client.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!p.client || connect(p.client.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    p.error = errnoText("connect");
    return p;
  }
  p.server.reset(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!p.server) p.error = errnoText("accept");
  return p;
}

inline bool readFull(int fd, void* buf, size_t n) {
  auto* p = static_cast<unsigned char*>(buf);
  while (n > 0) {
    const ssize_t r = recv(fd, p, n, 0);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

inline tls12_crypto_info_aes_gcm_128 gcm128(unsigned short version) {
  tls12_crypto_info_aes_gcm_128 ci{};
  ci.info.version = version;
  ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
  for (size_t i = 0; i < sizeof ci.key; ++i) ci.key[i] = static_cast<unsigned char>(0x10 + i);
  for (size_t i = 0; i < sizeof ci.iv; ++i) ci.iv[i] = static_cast<unsigned char>(0xa0 + i);
  for (size_t i = 0; i < sizeof ci.salt; ++i) ci.salt[i] = static_cast<unsigned char>(0x50 + i);
  return ci;
}

// Attaches the "tls" upper-layer protocol; the error text, empty on success.
inline std::string attachTlsUlp(int fd) {
  if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof "tls" - 1) != 0)
    return errnoText("TCP_ULP tls");
  return {};
}

// Gives one direction (TLS_TX or TLS_RX) of a socket with the ULP its key.
inline std::string setKtlsKey(int fd, int direction, unsigned short version) {
  const auto ci = gcm128(version);
  if (setsockopt(fd, SOL_TLS, direction, &ci, sizeof ci) != 0)
    return errnoText(direction == TLS_TX ? "TLS_TX" : "TLS_RX");
  return {};
}

// Puts a socket in kernel TLS mode with the given direction's key.
inline std::string enableKtls(int fd, int direction, unsigned short version) {
  std::string err = attachTlsUlp(fd);
  return err.empty() ? setKtlsKey(fd, direction, version) : err;
}

}  // namespace sockgate::vmtest
