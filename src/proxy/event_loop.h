// One edge-triggered epoll loop of the built-in redirect service: accepts
// redirected flows, connects to their original destinations, and relays
// both directions (Relay: copies small transfers, splices bulk). One loop
// per core, each with its own SO_REUSEPORT listeners, so loops share
// nothing on the data path.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "common/executable_cache.h"
#include "common/unique_fd.h"
#include "proxy/flow_log.h"
#include "proxy/pipe_pool.h"
#include "proxy/relay.h"
#include "sockgate/error.h"

namespace sockgate::proxy {

struct ServiceIdentity {
  uint32_t id = 0;
  std::string name;
};

class EventLoop {
 public:
  static Result<std::unique_ptr<EventLoop>> create(ServiceIdentity identity, FlowLog& log);
  ~EventLoop();

  Status addListener(UniqueFd listener);  // before run()
  void run();                             // returns once stopped and drained
  // Any thread: stop accepting now (the listeners close, so the hook sends
  // new connections elsewhere), let open flows finish for up to `drain`,
  // then reset what is left.
  void stop(std::chrono::milliseconds drain);

  [[nodiscard]] size_t activeFlows() const { return active_.load(std::memory_order_relaxed); }

 private:
  struct Flow;
  struct Watch;

  EventLoop(ServiceIdentity identity, FlowLog& log);
  void acceptAll(int listenFd, int family);
  void startFlow(UniqueFd client, int family);
  void onFlowEvent(Flow& flow, bool upstreamSide, uint32_t events);
  void pumpFlow(Flow& flow, bool up = true, bool down = true);
  void finishFlow(Flow& flow, std::string ending, bool resetClient, bool resetUpstream);
  void beginStop();
  Status watch(int fd, Watch* w);

  ServiceIdentity identity_;
  FlowLog& log_;
  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd: stop() from another thread
  std::vector<std::unique_ptr<Watch>> listenerWatches_;
  std::vector<UniqueFd> listeners_;
  std::unique_ptr<Watch> wakeWatch_;
  ExecutableCache executables_;  // of the processes whose flows this loop relays
  std::unique_ptr<Watch> exitWatch_;
  std::list<std::unique_ptr<Flow>> flows_;
  std::vector<std::unique_ptr<Flow>> graveyard_;  // freed after each epoll batch
  PipePool pipes_;
  // Scratch for the relays' small copies; each pump leaves nothing in it.
  std::vector<char> copyBuffer_ = std::vector<char>(Relay::kCopyBufferSize);
  std::atomic<size_t> active_{0};
  std::atomic<int64_t> drainMs_{0};
  bool stopping_ = false;
  std::chrono::steady_clock::time_point deadline_{};
};

}  // namespace sockgate::proxy
