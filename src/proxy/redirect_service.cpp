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
  unsigned loops =
      options.loops ? options.loops : std::max(1u, std::thread::hardware_concurrency());
  std::vector<Endpoint> wanted = options.listen;
  const bool defaults = wanted.empty();
  if (defaults) {
    wanted.push_back(Endpoint::loopback(AF_INET, options.port));
    wanted.push_back(Endpoint::loopback(AF_INET6, options.port));
  }
  uint16_t chosenPort = 0;  // the port the kernel picked for the first port-0 listener

  for (unsigned i = 0; i < loops; ++i) {
    auto loop = EventLoop::create(ServiceIdentity{options.id, options.name}, svc->log_);
    if (!loop) return std::unexpected(loop.error());
    for (Endpoint where : wanted) {
      auto& slot = where.family() == AF_INET ? svc->listen4_ : svc->listen6_;
      if (i > 0) {
        if (!slot) continue;  // that family was unavailable on the first loop
        where = *slot;
      } else if (where.port() == 0 && chosenPort != 0) {
        where.setPort(chosenPort);
      }
      auto fd = listenOn(where);
      if (!fd) {
        // IPv6 loopback may be disabled on a host; the default IPv4 listener still works.
        bool optional = defaults && where.family() == AF_INET6 &&
                        (fd.error().code == EADDRNOTAVAIL || fd.error().code == EAFNOSUPPORT);
        if (optional) continue;
        return std::unexpected(fd.error());
      }
      if (i == 0) {
        auto bound = localEndpoint(fd->get());
        if (!bound) return std::unexpected(bound.error());
        if (where.port() == 0) chosenPort = bound->port();
        slot = *bound;
      }
      if (auto st = (*loop)->addListener(std::move(*fd)); !st) return std::unexpected(st.error());
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
