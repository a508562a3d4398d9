#include "support/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "common/listeners.h"

namespace sockgate::testing {

TempDir::TempDir() {
  char tmpl[] = "/tmp/sg-test-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

uint16_t freeTcpPort() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    ::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
    uint16_t port = ntohs(sin.sin_port);
    ::close(fd);
    int fd6 = ::socket(AF_INET6, SOCK_STREAM, 0);
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_addr = in6addr_loopback;
    sin6.sin6_port = htons(port);
    bool ok = ::bind(fd6, reinterpret_cast<sockaddr*>(&sin6), sizeof sin6) == 0;
    ::close(fd6);
    if (ok) return port;
  }
  throw std::runtime_error("no free port");
}

bool tcpPortListening(uint16_t port) {
  return listeningSocketInode(Endpoint::loopback(AF_INET, port)).has_value();
}

HttpServer::HttpServer() : port_(freeTcpPort()) {
  std::filesystem::create_directories(root());
  std::ofstream conf(dir_.path() + "/nginx.conf");
  conf << "daemon off;\nmaster_process off;\nworker_processes 1;\n"
       << "pid " << dir_.path() << "/nginx.pid;\n"
       << "error_log " << dir_.path() << "/error.log;\n"
       << "events { worker_connections 1024; }\n"
       << "http {\n  access_log off;\n"
       << "  client_body_temp_path " << dir_.path() << "/body;\n"
       << "  proxy_temp_path " << dir_.path() << "/proxy;\n"
       << "  fastcgi_temp_path " << dir_.path() << "/fcgi;\n"
       << "  uwsgi_temp_path " << dir_.path() << "/uwsgi;\n"
       << "  scgi_temp_path " << dir_.path() << "/scgi;\n"
       << "  server {\n    listen 127.0.0.1:" << port_ << ";\n    listen [::1]:" << port_
       << ";\n    root " << root() << ";\n  }\n}\n";
  conf.close();
  writeFile("index.html", "hello from nginx\n");
  nginx_ = std::make_unique<BackgroundProcess>(
      std::vector<std::string>{"nginx", "-c", dir_.path() + "/nginx.conf", "-p", dir_.path(), "-e",
                               dir_.path() + "/error.log"});
  if (!waitFor([this] { return tcpPortListening(port_); }, std::chrono::seconds(10)))
    throw std::runtime_error("nginx did not start: " + readFile(dir_.path() + "/error.log") +
                             nginx_->err());
}

HttpServer::~HttpServer() { nginx_.reset(); }

void HttpServer::writeFile(const std::string& name, const std::string& content) const {
  std::ofstream(root() + "/" + name) << content;
}

}  // namespace sockgate::testing
