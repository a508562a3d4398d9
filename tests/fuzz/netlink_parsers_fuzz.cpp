// Arbitrary bytes as a batch of XFRM policy / SA and inet_diag replies: the
// parsers must reject or accept them without reading out of bounds, and
// whatever they accept must be safe to evaluate against a flow.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "security/sock_diag.h"
#include "security/xfrm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sockgate::security;
  const std::span<const uint8_t> bytes(data, size);
  std::vector<XfrmPolicy> policies;
  std::vector<XfrmState> states;
  std::vector<InetDiagSocket> sockets;
  (void)parseXfrmPolicyBatch(bytes, policies);
  (void)parseXfrmStateBatch(bytes, states);
  (void)parseInetDiagBatch(bytes, sockets);
  static const sockgate::Flow flow{6, *sockgate::Endpoint::parse("10.0.0.1:40000"),
                                   *sockgate::Endpoint::parse("10.0.0.2:443")};
  (void)evaluateIpsec(policies, states, flow, {});
  for (const auto& s : sockets) (void)replyMatches(6, s, flow.local, flow.remote);
  return 0;
}
