#include "proxy/redirect_service.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace sockgate::proxy {

namespace {

Result<UniqueFd> listenOn(const Endpoint& where) {
  UniqueFd fd(::socket(where.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return failErrno("socket for listener " + where.toString());
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    return failErrno("SO_REUSEPORT on listener " + where.toString());
  if (where.family() == AF_INET6)
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd.get(), where.sockaddrPtr(), where.length()) != 0)
    return failErrno("bind listener " + where.toString());
  if (::listen(fd.get(), 4096) != 0) return failErrno("listen on " + where.toString());
  return fd;
}

}  // namespace

Result<std::unique_ptr<RedirectService>> RedirectService::start(const ServiceOptions& options) {
  std::unique_ptr<RedirectService> svc(new RedirectService());
  unsigned loops = options.loops ? options.loops : std::max(1u, std::thread::hardware_concurrency());
  uint16_t port = options.port;

  for (unsigned i = 0; i < loops; ++i) {
    auto loop = EventLoop::create(ServiceIdentity{options.id, options.name}, svc->log_);
    if (!loop) return std::unexpected(loop.error());

    auto v4 = listenOn(Endpoint::loopback(AF_INET, port));
    if (!v4) return std::unexpected(v4.error());
    if (port == 0) {
      auto bound = localEndpoint(v4->get());
      if (!bound) return std::unexpected(bound.error());
      port = bound->port();
    }
    if (i == 0) svc->listen4_ = Endpoint::loopback(AF_INET, port);
    if (auto st = (*loop)->addListener(std::move(*v4)); !st) return std::unexpected(st.error());

    // IPv6 loopback may be disabled on a host; IPv4 alone still works.
    if (i == 0 || svc->listen6_) {
      auto v6 = listenOn(Endpoint::loopback(AF_INET6, port));
      if (v6) {
        if (i == 0) svc->listen6_ = Endpoint::loopback(AF_INET6, port);
        if (auto st = (*loop)->addListener(std::move(*v6)); !st)
          return std::unexpected(st.error());
      } else if (v6.error().code != EADDRNOTAVAIL && v6.error().code != EAFNOSUPPORT) {
        return std::unexpected(v6.error());
      }
    }
    svc->loops_.push_back(std::move(*loop));
  }
  for (auto& loop : svc->loops_) svc->threads_.emplace_back([l = loop.get()] { l->run(); });
  return svc;
}

size_t RedirectService::activeFlows() const {
  size_t n = 0;
  for (const auto& loop : loops_) n += loop->activeFlows();
  return n;
}

void RedirectService::stop(std::chrono::milliseconds drain) {
  for (auto& loop : loops_) loop->stop(drain);
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

RedirectService::~RedirectService() { stop(std::chrono::milliseconds(0)); }

}  // namespace sockgate::proxy
