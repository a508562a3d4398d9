// Socket policy text comes from the command line: any text must be parsed
// or refused with one line naming the clause, and what is parsed must fit
// the kernel's rule table and agree with itself.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "engine/socket_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto policy = sockgate::parseSocketPolicy(text);
  if (!policy) {
    const std::string message = policy.error().message();
    if (message.rfind("socket policy", 0) != 0) std::abort();
    return 0;
  }
  if (policy->rules.empty() || policy->rules.size() > SG_SOCK_MAX_RULES) std::abort();
  for (size_t i = 0; i < policy->rules.size(); ++i) {
    const auto& r = policy->rules[i];
    if (r.clause >= policy->clauses.size()) std::abort();
    const sg_sock_rule& k = r.kernel;
    if (k.action != SG_SOCK_AUDIT && k.action != SG_SOCK_DENY) std::abort();
    if (k.type != SG_SOCK_ANY && k.type > 0xf) std::abort();
    if (k.protocol == 0 && (k.family == 2 || k.family == 10) && (k.type == 1 || k.type == 2))
      std::abort();  // would never match: the kernel resolves it to TCP/UDP
    // The rule's own socket must match it, as deny or as this audit (an
    // inet stream/dgram protocol 0 is resolved by the parser, so the
    // witness for "any family" is AF_UNIX, whose protocol stays as given).
    uint32_t f = k.family == SG_SOCK_ANY ? 1 : k.family;
    uint32_t t = k.type == SG_SOCK_ANY ? 3 : k.type;
    uint32_t p = k.protocol == SG_SOCK_ANY ? 0 : k.protocol;
    auto m = policy->match(f, t, p);
    if (!m || m->rule >= policy->rules.size()) std::abort();
    if (k.action == SG_SOCK_DENY && m->action != SG_SOCK_DENY) std::abort();
    if (m->action == SG_SOCK_AUDIT && m->rule > i) std::abort();
  }
  return 0;
}
