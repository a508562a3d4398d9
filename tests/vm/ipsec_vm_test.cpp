// IPsec on a real kernel (runs in the VM tier: the host kernel has no ESP or
// AH). Two namespaces joined by veth get static transport-mode SAs and
// policies for each case; a 1 MiB TCP transfer must arrive intact and every
// SA's counters must show it carried that traffic. A case whose keys do not
// match must lose the traffic, counted as an ICV failure. These are the SA
// kinds the security-query work has to recognise.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "netns_pair.h"
#include "vm_check.h"
#include "xfrm_config.h"

namespace {

using namespace sockgate::vmtest;
using namespace std::chrono_literals;

constexpr size_t kTransferBytes = 1 << 20;

constexpr SaCase kCases[] = {kEspGcmV4, kEspNullV4, kAhV4, kEspGcmV6};

struct SaCounters {
  long long bytes = -1;
  long long packets = -1;
};

// Reads "lifetime current: N(bytes), M(packets)" from `ip -s xfrm state get`.
SaCounters counters(const Side& side, const SaCase& c, const std::string& src,
                    const std::string& dst, unsigned spi) {
  const auto r = runCommand({kIp, "-s", "-n", side.ns, "xfrm", "state", "get", "src", src, "dst",
                             dst, "proto", c.proto, "spi", hex(spi)});
  SaCounters sc;
  const auto at = r.output.find("lifetime current:");
  if (r.status != 0 || at == std::string::npos) return sc;
  std::sscanf(r.output.c_str() + at, "lifetime current: %lld(bytes), %lld(packets)", &sc.bytes,
              &sc.packets);
  return sc;
}

long long xfrmStat(const Side& side, const std::string& name) {
  InNetns in(side.ns);
  std::ifstream f("/proc/net/xfrm_stat");
  std::string key;
  long long value = 0;
  while (in.ok() && f >> key >> value)
    if (key == name) return value;
  return -1;
}

void runCase(Tally& t, const NetnsPair& net, const SaCase& c) {
  const Side& a = net.a();
  const Side& b = net.b();
  auto r = NetnsPair::ipBatch(a, sideConfig(c, a, b, a, b, c.key));
  if (r.status == 0) r = NetnsPair::ipBatch(b, sideConfig(c, b, a, a, b, c.key));
  if (!t.check(std::string(c.name) + ": SAs and policies installed", r.status == 0,
               lastLine(r.output))) {
    flushXfrm(a), flushXfrm(b);  // whatever part did go in must not break the next case
    return;
  }

  const auto tr = tcpTransfer(a, b, c.family, kTransferBytes, 20s);
  t.check(std::string(c.name) + ": 1 MiB TCP transfer arrived intact", tr.ok, tr.detail);

  const std::string fa = c.family == AF_INET ? a.v4 : a.v6;
  const std::string fb = c.family == AF_INET ? b.v4 : b.v6;
  const SaCounters outA = counters(a, c, fa, fb, kSpiForward);
  const SaCounters inB = counters(b, c, fa, fb, kSpiForward);
  const SaCounters outB = counters(b, c, fb, fa, kSpiReturn);
  const SaCounters inA = counters(a, c, fb, fa, kSpiReturn);
  std::ostringstream seen;
  seen << "A->B out " << outA.bytes << " B/" << outA.packets << " pkts, in " << inB.bytes << " B/"
       << inB.packets << " pkts; B->A out " << outB.packets << " pkts, in " << inA.packets
       << " pkts";
  // The data direction carried at least the payload; the return direction
  // carried the ACKs. Counters at zero would mean the traffic bypassed IPsec.
  const auto carried = [](const SaCounters& s) {
    return s.bytes >= static_cast<long long>(kTransferBytes) && s.packets > 0;
  };
  t.check(std::string(c.name) + ": SA counters rose (" + seen.str() + ")",
          carried(outA) && carried(inB) && outB.packets > 0 && inA.packets > 0,
          "expected the transfer on all four");

  t.check(std::string(c.name) + ": SAs and policies removed", flushXfrm(a) && flushXfrm(b));
}

// With a different key on the receiving SA the ICV check fails, the segments
// are dropped and the connection cannot even be set up.
void runMismatchedKeys(Tally& t, const NetnsPair& net) {
  const SaCase& c = kCases[0];
  const Side& a = net.a();
  const Side& b = net.b();
  auto r = NetnsPair::ipBatch(a, sideConfig(c, a, b, a, b, c.key));
  if (r.status == 0)
    r = NetnsPair::ipBatch(b,
                           sideConfig(c, b, a, a, b, "00000000000000000000000000000000deadbeef"));
  if (!t.check("ESP with mismatched keys: SAs installed", r.status == 0, lastLine(r.output))) {
    flushXfrm(a), flushXfrm(b);
    return;
  }
  const long long before = xfrmStat(b, "XfrmInStateProtoError");
  const auto tr = tcpTransfer(a, b, AF_INET, 4096, 2s);
  const long long after = xfrmStat(b, "XfrmInStateProtoError");
  t.check("ESP with mismatched keys: traffic dropped", !tr.ok, "the transfer succeeded");
  t.check("ESP with mismatched keys: counted as XfrmInStateProtoError (" + std::to_string(before) +
              " -> " + std::to_string(after) + ")",
          before >= 0 && after > before);
  t.check("ESP with mismatched keys: SAs and policies removed", flushXfrm(a) && flushXfrm(b));
}

}  // namespace

int main() {
  std::signal(SIGPIPE, SIG_IGN);
  Tally t;
  {
    NetnsPair net;
    const std::string err = net.create();
    if (t.check("two namespaces joined by veth", err.empty(), err)) {
      // Plain TCP first: if this fails, the IPsec cases below say nothing.
      const auto plain = tcpTransfer(net.a(), net.b(), AF_INET, kTransferBytes, 20s);
      t.check("plain TCP transfer without IPsec", plain.ok, plain.detail);
      for (const auto& c : kCases) runCase(t, net, c);
      runMismatchedKeys(t, net);
    }
  }
  return t.finish();
}
