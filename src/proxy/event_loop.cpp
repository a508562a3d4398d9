#include "proxy/event_loop.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>

#include "proxy/relay.h"
#include "sockgate/redirect.h"

namespace sockgate::proxy {

struct EventLoop::Watch {
  enum class Kind { Listener, Wake, ProcessExit, Client, Upstream } kind;
  int fd = -1;
  Flow* flow = nullptr;
  int family = AF_UNSPEC;  // a listener's, and so its accepted sockets'
};

struct EventLoop::Flow {
  UniqueFd client;
  UniqueFd upstream;
  Relay up;    // application -> destination
  Relay down;  // destination -> application
  bool connecting = true;
  bool closed = false;
  FlowRecord record;
  Watch clientWatch;
  Watch upstreamWatch;
  std::list<std::unique_ptr<Flow>>::iterator self;

  Flow(UniqueFd c, UniqueFd u)
      : client(std::move(c)),
        upstream(std::move(u)),
        up(client.get(), upstream.get()),
        down(upstream.get(), client.get()),
        clientWatch{Watch::Kind::Client, client.get(), this},
        upstreamWatch{Watch::Kind::Upstream, upstream.get(), this} {}
};

namespace {

int socketError(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

// SO_LINGER {1, 0} makes close() send RST: the peer sees its connection
// reset instead of a clean end that would hide lost bytes.
void closeWithReset(UniqueFd& fd) {
  linger l{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  fd.reset();
}

}  // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::create(ServiceIdentity identity, FlowLog& log) {
  std::unique_ptr<EventLoop> loop(new EventLoop(std::move(identity), log));
  loop->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!loop->epoll_) return failErrno("epoll_create1");
  loop->wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!loop->wake_) return failErrno("eventfd");
  loop->wakeWatch_ = std::make_unique<Watch>(Watch{Watch::Kind::Wake, loop->wake_.get(), nullptr});
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = loop->wakeWatch_.get();
  if (::epoll_ctl(loop->epoll_.get(), EPOLL_CTL_ADD, loop->wake_.get(), &ev) != 0)
    return failErrno("epoll_ctl add eventfd");
  const int exits = loop->executables_.readyFd();
  if (exits < 0) return failErrno("epoll_create1 (executable cache)");
  loop->exitWatch_ = std::make_unique<Watch>(Watch{Watch::Kind::ProcessExit, exits, nullptr});
  ev.data.ptr = loop->exitWatch_.get();
  if (::epoll_ctl(loop->epoll_.get(), EPOLL_CTL_ADD, exits, &ev) != 0)
    return failErrno("epoll_ctl add executable cache");
  return loop;
}

EventLoop::EventLoop(ServiceIdentity identity, FlowLog& log)
    : identity_(std::move(identity)), log_(log) {}

EventLoop::~EventLoop() = default;

Status EventLoop::watch(int fd, Watch* w) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = w;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
    return failErrno("epoll_ctl add fd " + std::to_string(fd));
  return {};
}

Status EventLoop::addListener(UniqueFd listener) {
  int family = AF_UNSPEC;
  socklen_t len = sizeof family;
  if (::getsockopt(listener.get(), SOL_SOCKET, SO_DOMAIN, &family, &len) != 0)
    return failErrno("getsockopt(SO_DOMAIN) on a listener");
  auto w = std::make_unique<Watch>(Watch{Watch::Kind::Listener, listener.get(), nullptr, family});
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = w.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener.get(), &ev) != 0)
    return failErrno("epoll_ctl add listener");
  listenerWatches_.push_back(std::move(w));
  listeners_.push_back(std::move(listener));
  return {};
}

void EventLoop::stop(std::chrono::milliseconds drain) {
  drainMs_.store(drain.count(), std::memory_order_relaxed);
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
}

void EventLoop::beginStop() {
  stopping_ = true;
  deadline_ = std::chrono::steady_clock::now() +
              std::chrono::milliseconds(drainMs_.load(std::memory_order_relaxed));
  for (auto& l : listeners_) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, l.get(), nullptr);
  listeners_.clear();
}

void EventLoop::run() {
  // splice() into a socket the peer closed raises SIGPIPE; this thread wants
  // EPIPE instead, without changing the process's disposition.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);

  epoll_event events[256];
  for (;;) {
    int timeout = -1;
    if (stopping_) {
      if (flows_.empty()) return;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline_ - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        while (!flows_.empty()) finishFlow(*flows_.front(), "service stopped", true, true);
        graveyard_.clear();
        return;
      }
      timeout = static_cast<int>(left.count());
    }
    int n = ::epoll_wait(epoll_.get(), events, 256, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // the epoll fd itself failed: nothing sensible left to do
    }
    for (int i = 0; i < n; ++i) {
      auto* w = static_cast<Watch*>(events[i].data.ptr);
      switch (w->kind) {
        case Watch::Kind::Wake: {
          uint64_t v;
          [[maybe_unused]] auto r = ::read(wake_.get(), &v, sizeof v);
          if (!stopping_) beginStop();
          break;
        }
        case Watch::Kind::ProcessExit:
          executables_.reap();
          break;
        case Watch::Kind::Listener:
          if (!stopping_) acceptAll(w->fd, w->family);
          break;
        case Watch::Kind::Client:
        case Watch::Kind::Upstream:
          if (!w->flow->closed)
            onFlowEvent(*w->flow, w->kind == Watch::Kind::Upstream, events[i].events);
          break;
      }
    }
    graveyard_.clear();
  }
}

void EventLoop::acceptAll(int listenFd, int family) {
  for (;;) {
    int fd = ::accept4(listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      startFlow(UniqueFd(fd), family);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    return;  // EAGAIN: drained; EMFILE/ENFILE: the next connection retries
  }
}

void EventLoop::startFlow(UniqueFd client, int family) {
  // The family is known from the listener: no getsockopt(SO_DOMAIN) per flow.
  auto context = readRedirectContext(client.get(), family);
  if (!context) return;  // connected to the service port directly: not a flow

  FlowRecord record;
  record.start = std::chrono::steady_clock::now();
  record.flowId = context->flowId;
  record.originTgid = context->originTgid;
  record.originUid = context->originUid;
  record.originComm = context->originComm;
  record.executable =
      executables_.lookup(static_cast<pid_t>(context->originTgid), context->originComm);
  record.originalDestination = context->originalDestination;
  record.service = identity_.name;

  const Endpoint& dst = context->originalDestination;
  UniqueFd upstream(::socket(dst.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!upstream) {
    record.ending = "error: socket: " + errnoName(errno);
    record.end = std::chrono::steady_clock::now();
    closeWithReset(client);
    log_.append(std::move(record));
    return;
  }
  // Pass the flow's records on, so that the next service in the chain (if
  // any) gets the flow and no service ever gets it twice.
  if (auto records = queryRedirectRecordsBlob(client.get(), family); records) {
    if (auto st = attachRedirectRecords(upstream.get(), dst.family(), *records); !st) {
      record.ending = "error: " + st.error().message();
      record.end = std::chrono::steady_clock::now();
      closeWithReset(client);
      log_.append(std::move(record));
      return;
    }
  }
  int rc = ::connect(upstream.get(), dst.sockaddrPtr(), dst.length());
  int connectErr = rc == 0 ? 0 : errno;

  auto flow = std::make_unique<Flow>(std::move(client), std::move(upstream));
  flow->record = std::move(record);
  Flow& f = *flow;
  flows_.push_front(std::move(flow));
  f.self = flows_.begin();
  active_.fetch_add(1, std::memory_order_relaxed);

  if (connectErr != 0 && connectErr != EINPROGRESS) {
    finishFlow(f,
               (connectErr == ECONNREFUSED ? "refused (" : "connect failed (") +
                   errnoName(connectErr) + ")",
               true, false);
    return;
  }
  if (auto st = watch(f.client.get(), &f.clientWatch); !st) {
    finishFlow(f, "error: " + st.error().message(), true, true);
    return;
  }
  if (auto st = watch(f.upstream.get(), &f.upstreamWatch); !st) {
    finishFlow(f, "error: " + st.error().message(), true, true);
    return;
  }
  if (connectErr == 0) {
    f.connecting = false;
    pumpFlow(f);
  }
}

void EventLoop::onFlowEvent(Flow& flow, bool upstreamSide, uint32_t events) {
  // Recorded before anything may return early: this edge will not come again.
  if ((events & EPOLLRDHUP) && !(events & EPOLLERR))
    (upstreamSide ? flow.down : flow.up).noteSrcHangup();
  bool justConnected = false;
  if (flow.connecting) {
    if (upstreamSide) {
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      // Writable without an error: connected (SO_ERROR only when there is one).
      int err = (events & (EPOLLERR | EPOLLHUP)) ? socketError(flow.upstream.get()) : 0;
      if (err != 0) {
        finishFlow(flow,
                   (err == ECONNREFUSED ? "refused (" : "connect failed (") + errnoName(err) + ")",
                   true, false);
        return;
      }
      flow.connecting = false;
      justConnected = true;
    } else {
      // The application may send (and half-close) before the destination
      // answers; that data waits in its socket. Only a failure matters now.
      if ((events & EPOLLERR) && socketError(flow.client.get()) != 0)
        finishFlow(flow, "reset by application", false, true);
      return;
    }
  }
  if (events & EPOLLERR) {
    int fd = upstreamSide ? flow.upstream.get() : flow.client.get();
    if (socketError(fd) != 0) {
      if (upstreamSide)
        finishFlow(flow, "reset by destination", true, false);
      else
        finishFlow(flow, "reset by application", false, true);
      return;
    }
  }
  // Edge-triggered: an edge on one socket only concerns the direction that
  // reads from it, and the one that writes to it if that one is stuck on a
  // full socket. Pumping the other direction too would cost a splice() that
  // says EAGAIN - measured at a third of the service's splice() calls in
  // keep-alive HTTP. A connect that just completed pumps both (the
  // application may have sent before the destination answered).
  const bool readable = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
  const bool writable = events & (EPOLLOUT | EPOLLHUP | EPOLLERR);
  Relay& writes = upstreamSide ? flow.up : flow.down;
  const bool pumpReads = justConnected || readable;
  const bool pumpWrites = justConnected || (writable && writes.waitingForDst());
  if (upstreamSide)
    pumpFlow(flow, pumpWrites, pumpReads);
  else
    pumpFlow(flow, pumpReads, pumpWrites);
}

void EventLoop::pumpFlow(Flow& flow, bool up, bool down) {
  switch (up ? flow.up.pump(pipes_, copyBuffer_) : Relay::Outcome::Blocked) {
    case Relay::Outcome::SrcReset:
      return finishFlow(flow, "reset by application", false, true);
    case Relay::Outcome::DstReset:
      return finishFlow(flow, "reset by destination", true, false);
    default:
      break;
  }
  switch (down ? flow.down.pump(pipes_, copyBuffer_) : Relay::Outcome::Blocked) {
    case Relay::Outcome::SrcReset:
      return finishFlow(flow, "reset by destination", true, false);
    case Relay::Outcome::DstReset:
      return finishFlow(flow, "reset by application", false, true);
    default:
      break;
  }
  if (flow.up.finished() && flow.down.finished()) finishFlow(flow, "closed", false, false);
}

void EventLoop::finishFlow(Flow& flow, std::string ending, bool resetClient, bool resetUpstream) {
  if (flow.closed) return;
  flow.closed = true;
  if (resetClient) closeWithReset(flow.client);
  if (resetUpstream) closeWithReset(flow.upstream);
  flow.client.reset();
  flow.upstream.reset();
  flow.record.bytesUp = flow.up.bytes();
  flow.record.bytesDown = flow.down.bytes();
  flow.record.end = std::chrono::steady_clock::now();
  flow.record.ending = std::move(ending);
  log_.append(std::move(flow.record));
  active_.fetch_sub(1, std::memory_order_relaxed);
  graveyard_.push_back(std::move(*flow.self));
  flows_.erase(flow.self);
}

}  // namespace sockgate::proxy
