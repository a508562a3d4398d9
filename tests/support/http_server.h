// A real nginx serving a directory on 127.0.0.1 and [::1], for tests that
// need an HTTP server. Lives in a temp dir that goes away with the fixture.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "support/subprocess.h"

namespace sockgate::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

uint16_t freeTcpPort();  // a port free on both loopbacks right now

class HttpServer {
 public:
  HttpServer();  // throws std::runtime_error if nginx does not come up
  ~HttpServer();
  [[nodiscard]] uint16_t port() const { return port_; }
  [[nodiscard]] std::string root() const { return dir_.path() + "/www"; }
  void writeFile(const std::string& name, const std::string& content) const;

 private:
  TempDir dir_;
  uint16_t port_ = 0;
  std::unique_ptr<BackgroundProcess> nginx_;
};

// True once a TCP socket listens on 127.0.0.1:port. Read from /proc rather
// than probed with a connection: a transparent proxy that is connected to
// directly has no original destination and connects to itself (HAProxy
// then loops until its maxconn and stalls every real flow until its
// timeouts).
bool tcpPortListening(uint16_t port);

}  // namespace sockgate::testing
