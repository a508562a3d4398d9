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

namespace {

using namespace sockgate::vmtest;
using namespace std::chrono_literals;

constexpr size_t kTransferBytes = 1 << 20;

struct SaCase {
  const char* name;
  int family;
  const char* proto;  // esp or ah
  // The algorithm part of `ip xfrm state add`; KEY is where the key goes.
  const char* algo;
  const char* key;  // hex, for both directions
};

constexpr SaCase kCases[] = {
    {"ESP rfc4106(gcm(aes)) over IPv4", AF_INET, "esp", "aead 'rfc4106(gcm(aes))' 0xKEY 128",
     "0123456789abcdef0123456789abcdef01020304"},
    {"ESP ecb(cipher_null)+hmac(sha256) over IPv4", AF_INET, "esp",
     "enc 'ecb(cipher_null)' '' auth-trunc 'hmac(sha256)' 0xKEY 128",
     "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"},
    {"AH hmac(sha256) over IPv4", AF_INET, "ah", "auth-trunc 'hmac(sha256)' 0xKEY 128",
     "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"},
    {"ESP rfc4106(gcm(aes)) over IPv6", AF_INET6, "esp", "aead 'rfc4106(gcm(aes))' 0xKEY 128",
     "fedcba9876543210fedcba9876543210a1b2c3d4"},
};

constexpr unsigned kSpiForward = 0x5a01;  // from A to B
constexpr unsigned kSpiReturn = 0x5a02;   // from B to A

std::string algoArgs(const SaCase& c, const char* key) {
  std::string s = c.algo;
  return s.replace(s.find("KEY"), 3, key);
}

std::string hex(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

// The xfrm configuration of one side: both SAs (each namespace has its own
// SA database) and the out/in policies that require them.
std::string sideConfig(const SaCase& c, const Side& self, const Side& peer, const Side& a,
                       const Side& b, const char* forwardKey) {
  const auto addr = [&](const Side& s) { return c.family == AF_INET ? s.v4 : s.v6; };
  const std::string prefix = c.family == AF_INET ? "/32" : "/128";
  const std::string forward = "src " + addr(a) + " dst " + addr(b);
  const std::string back = "src " + addr(b) + " dst " + addr(a);
  std::string s;
  s += "xfrm state add " + forward + " proto " + c.proto + " spi " + hex(kSpiForward) +
       " reqid 1 mode transport " + algoArgs(c, forwardKey) + "\n";
  s += "xfrm state add " + back + " proto " + c.proto + " spi " + hex(kSpiReturn) +
       " reqid 2 mode transport " + algoArgs(c, c.key) + "\n";
  const auto policy = [&](const Side& from, const Side& to, const char* dir, int reqid) {
    return "xfrm policy add src " + addr(from) + prefix + " dst " + addr(to) + prefix + " dir " +
           dir + " tmpl src " + addr(from) + " dst " + addr(to) + " proto " + c.proto + " reqid " +
           std::to_string(reqid) + " mode transport\n";
  };
  const int outReqid = &self == &a ? 1 : 2;
  s += policy(self, peer, "out", outReqid);
  s += policy(peer, self, "in", 3 - outReqid);
  return s;
}

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

bool flush(const Side& s) {
  return NetnsPair::ipBatch(s, "xfrm policy flush\nxfrm state flush\n").status == 0;
}

void runCase(Tally& t, const NetnsPair& net, const SaCase& c) {
  const Side& a = net.a();
  const Side& b = net.b();
  auto r = NetnsPair::ipBatch(a, sideConfig(c, a, b, a, b, c.key));
  if (r.status == 0) r = NetnsPair::ipBatch(b, sideConfig(c, b, a, a, b, c.key));
  if (!t.check(std::string(c.name) + ": SAs and policies installed", r.status == 0,
               lastLine(r.output))) {
    flush(a), flush(b);  // whatever part did go in must not break the next case
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

  t.check(std::string(c.name) + ": SAs and policies removed", flush(a) && flush(b));
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
    flush(a), flush(b);
    return;
  }
  const long long before = xfrmStat(b, "XfrmInStateProtoError");
  const auto tr = tcpTransfer(a, b, AF_INET, 4096, 2s);
  const long long after = xfrmStat(b, "XfrmInStateProtoError");
  t.check("ESP with mismatched keys: traffic dropped", !tr.ok, "the transfer succeeded");
  t.check("ESP with mismatched keys: counted as XfrmInStateProtoError (" + std::to_string(before) +
              " -> " + std::to_string(after) + ")",
          before >= 0 && after > before);
  t.check("ESP with mismatched keys: SAs and policies removed", flush(a) && flush(b));
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
