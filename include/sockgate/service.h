// Writing a redirect service in C++: accept a redirected flow, learn who
// sent it where, connect onward with the flow's records attached (so the
// chain goes on and never loops), and forward — or take the two sockets and
// do your own inspection. Blocking, one flow at a time per call; the
// built-in service uses the same socket options from its event loops.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sockgate/endpoint.h"
#include "sockgate/error.h"
#include "sockgate/redirect.h"
#include "sockgate/unique_fd.h"

namespace sockgate {

struct InboundFlow {
  UniqueFd client;               // the application's connection
  RedirectContext context;       // origin process, original destination, our tag
  std::vector<uint8_t> records;  // opaque: attach them to the onward socket
  RedirectState state = RedirectState::NotRedirected;  // as this service sees it
};

class ServiceListener {
 public:
  // Listens on a loopback endpoint for flows sent to service `serviceId`.
  static Result<ServiceListener> listen(const Endpoint& where, uint32_t serviceId,
                                        int backlog = 1024);

  // Waits for the next redirected flow. A connection that carries no flow
  // (someone connected to the service port directly) is closed and skipped.
  Result<InboundFlow> accept();

  [[nodiscard]] const Endpoint& endpoint() const { return endpoint_; }
  [[nodiscard]] int fd() const { return fd_.get(); }

 private:
  ServiceListener(UniqueFd fd, Endpoint endpoint, uint32_t serviceId)
      : fd_(std::move(fd)), endpoint_(std::move(endpoint)), serviceId_(serviceId) {}
  UniqueFd fd_;
  Endpoint endpoint_;
  uint32_t serviceId_;
};

// Connects to the flow's original destination (or to `to`), with the flow's
// records attached before connect(). Blocking.
Result<UniqueFd> connectOnward(const InboundFlow& flow, std::optional<Endpoint> to = std::nullopt);

struct ForwardResult {
  uint64_t bytesUp = 0;    // client -> upstream
  uint64_t bytesDown = 0;  // upstream -> client
  std::string ending;      // "closed", "reset by application", "reset by destination"
};

// Relays both directions with splice() until both have ended; half-close is
// passed on, and a reset on one side resets the other. Takes both sockets.
Result<ForwardResult> forward(UniqueFd client, UniqueFd upstream);

}  // namespace sockgate
