// The redirect context and records come from another process's socket
// option: any bytes must parse or be refused, never crash, and what parses
// must survive a round trip.
#include <cstdint>
#include <cstdlib>

#include "sockgate/redirect.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  if (auto c = sockgate::parseRedirectContext(bytes)) {
    auto again = sockgate::parseRedirectContext(sockgate::encodeRedirectContext(*c));
    if (!again || again->tag != c->tag || again->flowId != c->flowId ||
        !(again->originalDestination == c->originalDestination))
      std::abort();
  }
  if (auto r = sockgate::parseRedirectRecords(bytes)) {
    auto again = sockgate::parseRedirectRecords(sockgate::encodeRedirectRecords(*r));
    if (!again || again->chain != r->chain || again->flowId != r->flowId) std::abort();
  }
  return 0;
}
