#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <vector>

#include "proxy/relay.h"
#include "sockgate/service.h"

namespace sockgate {

Result<ServiceListener> ServiceListener::listen(const Endpoint& where, uint32_t serviceId,
                                                int backlog) {
  UniqueFd fd(::socket(where.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return failErrno("socket for service listener " + where.toString());
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (where.family() == AF_INET6)
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd.get(), where.sockaddrPtr(), where.length()) != 0)
    return failErrno("bind service listener " + where.toString());
  if (::listen(fd.get(), backlog) != 0) return failErrno("listen on " + where.toString());
  auto bound = localEndpoint(fd.get());
  if (!bound) return std::unexpected(bound.error());
  return ServiceListener(std::move(fd), *bound, serviceId);
}

Result<InboundFlow> ServiceListener::accept() {
  for (;;) {
    UniqueFd client(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!client) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return failErrno("accept on " + endpoint_.toString());
    }
    auto context = readRedirectContext(client.get());
    if (!context) {
      if (context.error().code == ENOPROTOOPT) continue;  // not a redirected flow
      return std::unexpected(context.error());
    }
    auto records = queryRedirectRecordsBlob(client.get());
    if (!records) return std::unexpected(records.error());
    InboundFlow flow;
    flow.client = std::move(client);
    flow.context = std::move(*context);
    flow.records = std::move(*records);
    if (auto parsed = parseRedirectRecords(flow.records))
      flow.state = redirectStateOf(*parsed, serviceId_);
    return flow;
  }
}

Result<UniqueFd> connectOnward(const InboundFlow& flow, std::optional<Endpoint> to) {
  const Endpoint& dst = to ? *to : flow.context.originalDestination;
  UniqueFd fd(::socket(dst.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return failErrno("socket to " + dst.toString());
  if (!flow.records.empty()) {
    if (auto st = attachRedirectRecords(fd.get(), flow.records); !st)
      return std::unexpected(st.error());
  }
  if (::connect(fd.get(), dst.sockaddrPtr(), dst.length()) != 0)
    return failErrno("connect to " + dst.toString());
  return fd;
}

Result<ForwardResult> forward(UniqueFd client, UniqueFd upstream) {
  // splice() into a socket the peer closed raises SIGPIPE; we want EPIPE.
  sigset_t pipe, old;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, &old);
  for (int fd : {client.get(), upstream.get()})
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);

  proxy::PipePool pool(2);
  std::vector<char> copy(proxy::Relay::kCopyBufferSize);
  proxy::Relay up(client.get(), upstream.get());
  proxy::Relay down(upstream.get(), client.get());
  ForwardResult result;
  auto resetBoth = [&](const char* why) {
    linger l{1, 0};
    ::setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::setsockopt(upstream.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    result.ending = why;
  };
  while (result.ending.empty()) {
    auto u = up.pump(pool, copy);
    auto d = down.pump(pool, copy);
    if (u == proxy::Relay::Outcome::SrcReset || d == proxy::Relay::Outcome::DstReset)
      resetBoth("reset by application");
    else if (u == proxy::Relay::Outcome::DstReset || d == proxy::Relay::Outcome::SrcReset)
      resetBoth("reset by destination");
    else if (up.finished() && down.finished())
      result.ending = "closed";
    else {
      pollfd fds[2] = {{client.get(), 0, 0}, {upstream.get(), 0, 0}};
      // wait for exactly what each blocked direction needs
      if (!up.finished()) {
        if (up.waitingForDst())
          fds[1].events |= POLLOUT;
        else
          fds[0].events |= POLLIN;
      }
      if (!down.finished()) {
        if (down.waitingForDst())
          fds[0].events |= POLLOUT;
        else
          fds[1].events |= POLLIN;
      }
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        return failErrno("poll while forwarding");
      }
    }
  }
  result.bytesUp = up.bytes();
  result.bytesDown = down.bytes();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return result;
}

}  // namespace sockgate
