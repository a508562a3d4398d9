// The socket security query on real IPsec and kernel TLS (runs in the VM
// tier: the host kernel has no ESP, AH or kTLS). Each case installs static
// transport-mode SAs and policies between two namespaces joined by veth,
// makes a real connection across them, moves data both ways, and then asks
// both ends, through querySocketSecurity and through WSAQuerySocketSecurity,
// what protects it. kTLS is checked on a loopback TCP pair switched to
// TCP_ULP "tls" with AES-GCM-128 keys.
#include <arpa/inet.h>
#include <linux/tls.h>
#include <linux/xfrm.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <string>
#include <tuple>

#include "ktls_pair.h"
#include "netns_pair.h"
#include "sockgate/security.h"
#include "sockgate/winsock.h"
#include "vm_check.h"
#include "xfrm_config.h"

namespace {

using namespace sockgate;
using namespace sockgate::vmtest;
using namespace std::chrono_literals;

// ESP with a block cipher and a separate MAC: the encryption key goes in
// KEY, the authentication key is fixed.
constexpr SaCase kEspCbcV4{"ESP cbc(aes)+hmac(sha256) over IPv4", AF_INET, "esp",
                           "enc 'cbc(aes)' 0xKEY auth-trunc 'hmac(sha256)' "
                           "0x0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0 128",
                           "000102030405060708090a0b0c0d0e0f"};

constexpr uint32_t kSecuredEncrypted = kSecurityFlagSecured | kSecurityFlagEncrypted;

std::string hexFlags(uint32_t v) { return hex(v); }

// One line that says what the query saw, for a FAIL detail.
std::string describe(const SocketSecurity& s) {
  std::string out =
      "protocol " + std::to_string(static_cast<int>(s.protocol)) + " flags " + hexFlags(s.flags);
  if (s.flow) out += " flow " + s.flow->local.toString() + "->" + s.flow->remote.toString();
  if (s.ipsec) {
    const auto dir = [](const char* name, const IpsecDirection& d) {
      std::string t = std::string(" ") + name + "{policy " + (d.policyFound ? "yes" : "no");
      if (d.policyFound) {
        t += " idx " + std::to_string(d.policyIndex) + (d.socketPolicy ? " socket" : "") +
             " action " + std::to_string(d.policyAction) +
             (d.requiresIpsec ? " requires" : " bypass") + (d.allTemplatesHaveSa ? " sa-ok" : "");
      }
      for (const auto& sa : d.sas)
        t += " sa(" + std::to_string(sa.proto) + " spi " + hex(sa.spi) + " " + sa.aead +
             sa.encryption + "/" + sa.authentication + ")";
      return t + "}";
    };
    out += dir("out", s.ipsec->outbound) + dir("in", s.ipsec->inbound);
    out += " policies " + std::to_string(s.ipsec->policiesSeen) + " states " +
           std::to_string(s.ipsec->statesSeen);
    for (const auto& n : s.ipsec->notes) out += " [ipsec: " + n + "]";
  } else {
    out += " no-ipsec-record";
  }
  for (const auto& n : s.notes) out += " [" + n + "]";
  return out;
}

// The template's PeerAddress in the Windows layout: the Linux sockaddr after
// the family field, the family number Windows uses.
SOCKADDR_STORAGE windowsAddress(const Endpoint& e) {
  SOCKADDR_STORAGE w{};
  std::memcpy(&w, e.sockaddrPtr(), e.length());
  w.ss_family = e.family() == AF_INET ? WS_AF_INET : WS_AF_INET6;
  return w;
}

struct Expect {
  bool secured = false;
  bool encrypted = false;
  [[nodiscard]] uint32_t flags() const {
    return (secured ? kSecurityFlagSecured : 0) | (encrypted ? kSecurityFlagEncrypted : 0);
  }
};

// Asks about socket `fd` (living in `side`'s namespace) through both APIs and
// checks the Windows-visible answer; returns the C++ result for more checks.
// `peer` is the UDP peer (the template's PeerAddress); empty for TCP.
std::optional<SocketSecurity> queryBoth(Tally& t, const std::string& what, const std::string& ns,
                                        int fd, const std::optional<Endpoint>& peer,
                                        Expect expect) {
  InNetns in(ns);
  if (!in.ok()) {
    t.check(what + ": enter " + ns, false, errnoText("setns"));
    return std::nullopt;
  }
  const std::string want =
      "flags " + hexFlags(expect.flags()) + ", protocol " + (expect.secured ? "IPsec" : "none");

  QueryOptions options;
  options.peer = peer;
  auto r = querySocketSecurity(fd, options);
  std::optional<SocketSecurity> result;
  if (t.check(what + ": querySocketSecurity answers", r.has_value(),
              r ? "" : r.error().message())) {
    t.check(
        what + ": querySocketSecurity says " + want,
        r->flags == expect.flags() &&
            r->protocol == (expect.secured ? SecurityProtocol::kIpsec : SecurityProtocol::kNone) &&
            r->ipsec.has_value() && r->ipsec->secured == expect.secured &&
            r->ipsec->encrypted == expect.encrypted,
        describe(*r));
    result = std::move(*r);
  }

  // Windows: a template asking for IPsec details (PeerAddress is the UDP
  // peer; ignored for TCP), PeerTokenAccessMask 0 so no handles.
  SOCKET_SECURITY_QUERY_TEMPLATE tmpl{};
  tmpl.SecurityProtocol = SOCKET_SECURITY_PROTOCOL_IPSEC;
  if (peer) tmpl.PeerAddress = windowsAddress(*peer);
  SOCKET_SECURITY_QUERY_INFO info{};
  std::memset(&info, 0xa5, sizeof info);  // every field must be written
  ULONG infoLen = sizeof info;
  int rc = WSAQuerySocketSecurity(fd, &tmpl, sizeof tmpl, &info, &infoLen, nullptr, nullptr);
  const auto seen = [&](int code) {
    return "rc " + std::to_string(code) + " error " + std::to_string(WSAGetLastError()) +
           " SecurityProtocol " + std::to_string(static_cast<int>(info.SecurityProtocol)) +
           " Flags " + hexFlags(info.Flags) + " handles " +
           std::to_string(info.PeerApplicationAccessTokenHandle) + "/" +
           std::to_string(info.PeerMachineAccessTokenHandle);
  };
  t.check(what + ": WSAQuerySocketSecurity (IPsec template) says " + want,
          rc == 0 && infoLen == sizeof info && info.Flags == expect.flags() &&
              info.SecurityProtocol == (expect.secured ? SOCKET_SECURITY_PROTOCOL_IPSEC
                                                       : SOCKET_SECURITY_PROTOCOL_DEFAULT) &&
              info.PeerApplicationAccessTokenHandle == 0 && info.PeerMachineAccessTokenHandle == 0,
          seen(rc));

  if (!peer) {
    // TCP with no template: the default query, only Flags is set.
    std::memset(&info, 0, sizeof info);
    infoLen = sizeof info;
    rc = WSAQuerySocketSecurity(fd, nullptr, 0, &info, &infoLen, nullptr, nullptr);
    t.check(what + ": WSAQuerySocketSecurity (no template) says flags " + hexFlags(expect.flags()) +
                ", nothing else",
            rc == 0 && info.Flags == expect.flags() &&
                info.SecurityProtocol == SOCKET_SECURITY_PROTOCOL_DEFAULT &&
                info.PeerApplicationAccessTokenHandle == 0,
            seen(rc));
  }
  return result;
}

// What one direction's SA must look like: the SPI and the algorithms that
// were installed, transport mode, the flow's hosts.
struct SaExpect {
  uint8_t proto;
  unsigned spi;
  const char* aead;
  const char* encryption;
  const char* authentication;
  const std::string* source;
  const std::string* destination;
};

void checkSa(Tally& t, const std::string& what, const IpsecDirection& d, const SaExpect& e) {
  std::string seen = "no SA";
  bool ok = false;
  if (d.sas.size() == 1) {
    const IpsecSa& sa = d.sas[0];
    seen = "proto " + std::to_string(sa.proto) + " mode " +
           std::to_string(static_cast<int>(sa.mode)) + " spi " + hex(sa.spi) + " aead '" + sa.aead +
           "' enc '" + sa.encryption + "' auth '" + sa.authentication + "' " + sa.source.address() +
           "->" + sa.destination.address() + (sa.encrypts() ? " encrypts" : "");
    ok = sa.proto == e.proto && sa.mode == IpsecMode::kTransport && sa.spi == e.spi &&
         sa.aead == e.aead && sa.encryption == e.encryption &&
         sa.authentication == e.authentication && sa.source.address() == *e.source &&
         sa.destination.address() == *e.destination;
  } else if (!d.sas.empty()) {
    seen = std::to_string(d.sas.size()) + " SAs";
  }
  std::string algorithms;
  for (const char* name : {e.aead, e.encryption, e.authentication})
    if (*name) algorithms += (algorithms.empty() ? "" : "+") + std::string(name);
  t.check(what + ": SA record " + (e.proto == IPPROTO_ESP ? "ESP" : "AH") + " transport spi " +
              hex(e.spi) + " " + algorithms,
          d.requiresIpsec && d.allTemplatesHaveSa && ok, seen);
}

// Sends `bytes` each way over a connected non-blocking pair and checks they
// arrive: the connection really carries data under the installed policies.
std::string pingPong(int a, int b, size_t bytes, std::chrono::milliseconds timeout) {
  const auto oneWay = [&](int from, int to, char fill) -> std::string {
    const std::string data(bytes, fill);
    size_t sent = 0, got = 0;
    char buf[4096];
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got < bytes) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "stalled after " + std::to_string(got) + " bytes";
      pollfd fds[2] = {{to, POLLIN, 0}, {from, POLLOUT, 0}};
      if (poll(fds, sent < bytes ? 2 : 1, static_cast<int>(left.count())) < 0 && errno != EINTR)
        return errnoText("poll");
      if (sent < bytes && (fds[1].revents & POLLOUT)) {
        const ssize_t w = send(from, data.data() + sent, bytes - sent, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) return errnoText("send");
        if (w > 0) sent += static_cast<size_t>(w);
      }
      if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
        const ssize_t r = recv(to, buf, sizeof buf, 0);
        if (r == 0) return "EOF after " + std::to_string(got) + " bytes";
        if (r < 0 && errno != EAGAIN) return errnoText("recv");
        for (ssize_t i = 0; i < r; ++i)
          if (buf[i] != fill) return "corrupted data";
        if (r > 0) got += static_cast<size_t>(r);
      }
    }
    return {};
  };
  std::string err = oneWay(a, b, 'q');
  if (err.empty()) err = oneWay(b, a, 'r');
  return err;
}

Endpoint endpointOf(const std::string& address, uint16_t port) {
  auto e = Endpoint::parse(address.find(':') != std::string::npos
                               ? "[" + address + "]:" + std::to_string(port)
                               : address + ":" + std::to_string(port));
  return e ? *e : Endpoint{};
}

bool install(Tally& t, const std::string& what, const Side& side, const std::string& config) {
  const auto r = NetnsPair::ipBatch(side, config);
  return t.check(what + ": xfrm configuration installed in " + side.ns, r.status == 0,
                 lastLine(r.output));
}

bool clear(Tally& t, const std::string& what, const NetnsPair& net) {
  return t.check(what + ": SAs and policies removed", flushXfrm(net.a()) && flushXfrm(net.b()));
}

// A TCP connection A -> B that carries data both ways, or a FAIL.
std::optional<TcpConnection> connectAndTalk(
    Tally& t, const std::string& what, const NetnsPair& net, int family,
    const std::function<std::string(int, uint16_t)>& beforeConnect = {}) {
  TcpConnection c = tcpConnect(net.a(), net.b(), family, 10s, beforeConnect);
  if (!t.check(what + ": TCP connection A->B", c.error.empty(), c.error)) return std::nullopt;
  const std::string err = pingPong(c.client.get(), c.server.get(), 4096, 10s);
  if (!t.check(what + ": 4 KiB each way arrived", err.empty(), err)) return std::nullopt;
  return c;
}

// Cases 1-5: SAs and policies in both directions; both ends of a real TCP
// connection must say so, with the SAs the traffic uses.
void checkBothDirections(Tally& t, const NetnsPair& net, const SaCase& c, Expect expect,
                         uint8_t proto, const char* aead, const char* encryption,
                         const char* authentication) {
  const Side& a = net.a();
  const Side& b = net.b();
  const std::string what = std::string("TCP ") + c.name;
  if (!install(t, what, a, sideConfig(c, a, b, a, b, c.key)) ||
      !install(t, what, b, sideConfig(c, b, a, a, b, c.key))) {
    flushXfrm(a), flushXfrm(b);
    return;
  }
  if (auto conn = connectAndTalk(t, what, net, c.family)) {
    const std::string& addrA = addressOf(a, c.family);
    const std::string& addrB = addressOf(b, c.family);
    const SaExpect forward{proto, kSpiForward, aead, encryption, authentication, &addrA, &addrB};
    const SaExpect back{proto, kSpiReturn, aead, encryption, authentication, &addrB, &addrA};
    if (auto r = queryBoth(t, what + " (client in A)", a.ns, conn->client.get(), {}, expect);
        r && r->ipsec) {
      checkSa(t, what + " (client in A) outbound", r->ipsec->outbound, forward);
      checkSa(t, what + " (client in A) inbound", r->ipsec->inbound, back);
    }
    if (auto r = queryBoth(t, what + " (server in B)", b.ns, conn->server.get(), {}, expect);
        r && r->ipsec) {
      checkSa(t, what + " (server in B) outbound", r->ipsec->outbound, back);
      checkSa(t, what + " (server in B) inbound", r->ipsec->inbound, forward);
    }
    if (c.family == AF_INET && proto == IPPROTO_ESP && *aead) {
      // The same connection once the return SA is gone: the policy still
      // requires ESP inbound but nothing can satisfy it.
      const auto r = runCommand({kIp, "-n", a.ns, "xfrm", "state", "delete", "src", addrB, "dst",
                                 addrA, "proto", c.proto, "spi", hex(kSpiReturn)});
      if (t.check(what + ": return SA deleted in A", r.status == 0, lastLine(r.output))) {
        auto after = queryBoth(t, what + " (client in A, return SA deleted)", a.ns,
                               conn->client.get(), {}, Expect{});
        if (after && after->ipsec)
          t.check(what + " (client in A, return SA deleted): inbound requires ESP, has no SA",
                  after->ipsec->inbound.requiresIpsec && !after->ipsec->inbound.allTemplatesHaveSa,
                  describe(*after));
      }
    }
  }
  clear(t, what, net);
}

// Case 6: nothing installed.
void checkNoIpsec(Tally& t, const NetnsPair& net) {
  const std::string what = "TCP without IPsec";
  auto conn = connectAndTalk(t, what, net, AF_INET);
  if (!conn) return;
  for (const auto& [label, ns, fd] :
       {std::tuple{" (client in A)", net.a().ns, conn->client.get()},
        std::tuple{" (server in B)", net.b().ns, conn->server.get()}}) {
    auto r = queryBoth(t, what + label, ns, fd, {}, Expect{});
    if (r && r->ipsec)
      t.check(what + label + ": no policy either way",
              !r->ipsec->outbound.policyFound && !r->ipsec->inbound.policyFound, describe(*r));
  }
}

// Case 7: policy and SA for A -> B only. The connection works (B -> A is
// plain and nothing asks for more), and neither end is secured.
void checkOneDirection(Tally& t, const NetnsPair& net, const SaCase& c) {
  const Side& a = net.a();
  const Side& b = net.b();
  const std::string what = std::string("TCP ") + c.name + ", A->B only";
  const std::string sa = saLine(c, a, b, kSpiForward, 1, c.key);
  if (!install(t, what, a, sa + policyLine(c, a, b, "out", 1)) ||
      !install(t, what, b, sa + policyLine(c, a, b, "in", 1))) {
    flushXfrm(a), flushXfrm(b);
    return;
  }
  if (auto conn = connectAndTalk(t, what, net, c.family)) {
    if (auto r = queryBoth(t, what + " (client in A)", a.ns, conn->client.get(), {}, Expect{});
        r && r->ipsec)
      t.check(what + " (client in A): outbound has its SA, inbound has no policy",
              r->ipsec->outbound.requiresIpsec && r->ipsec->outbound.allTemplatesHaveSa &&
                  !r->ipsec->inbound.policyFound,
              describe(*r));
    if (auto r = queryBoth(t, what + " (server in B)", b.ns, conn->server.get(), {}, Expect{});
        r && r->ipsec)
      t.check(what + " (server in B): inbound has its SA, outbound has no policy",
              r->ipsec->inbound.requiresIpsec && r->ipsec->inbound.allTemplatesHaveSa &&
                  !r->ipsec->outbound.policyFound,
              describe(*r));
  }
  clear(t, what, net);
}

// A per-socket policy (IP_XFRM_POLICY / IPV6_XFRM_POLICY) requiring ESP for
// exactly this socket's flow in direction `dir`.
std::string setSocketPolicy(int fd, int family, uint8_t dir, const Endpoint& local,
                            const Endpoint& remote, uint32_t reqid) {
  struct {
    xfrm_userpolicy_info info;
    xfrm_user_tmpl tmpl;
  } p{};
  const Endpoint& src = dir == XFRM_POLICY_OUT ? local : remote;
  const Endpoint& dst = dir == XFRM_POLICY_OUT ? remote : local;
  const size_t n = family == AF_INET ? 4 : 16;
  auto& sel = p.info.sel;
  sel.family = static_cast<uint16_t>(family);
  std::memcpy(&sel.saddr, src.addressBytes().data(), n);
  std::memcpy(&sel.daddr, dst.addressBytes().data(), n);
  sel.prefixlen_s = sel.prefixlen_d = static_cast<uint8_t>(n * 8);
  sel.proto = IPPROTO_TCP;
  sel.sport = htons(src.port());
  sel.sport_mask = 0xffff;
  sel.dport = htons(dst.port());
  sel.dport_mask = 0xffff;
  p.info.dir = dir;
  p.info.action = XFRM_POLICY_ALLOW;
  p.info.lft.soft_byte_limit = p.info.lft.hard_byte_limit = XFRM_INF;
  p.info.lft.soft_packet_limit = p.info.lft.hard_packet_limit = XFRM_INF;
  p.tmpl.id.proto = IPPROTO_ESP;
  std::memcpy(&p.tmpl.id.daddr, dst.addressBytes().data(), n);
  std::memcpy(&p.tmpl.saddr, src.addressBytes().data(), n);
  p.tmpl.family = static_cast<uint16_t>(family);
  p.tmpl.reqid = reqid;
  p.tmpl.mode = XFRM_MODE_TRANSPORT;
  p.tmpl.aalgos = p.tmpl.ealgos = p.tmpl.calgos = ~0U;
  const int level = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
  const int option = family == AF_INET ? IP_XFRM_POLICY : IPV6_XFRM_POLICY;
  if (setsockopt(fd, level, option, &p, sizeof p) != 0)
    return errnoText(family == AF_INET ? "IP_XFRM_POLICY" : "IPV6_XFRM_POLICY");
  return {};
}

// Case 8: A has the SAs but no SPD entry; the client socket carries its own
// out/in policies. B has the usual policies, so a socket in A without the
// per-socket policy cannot reach it (its plaintext is refused by B).
void checkPerSocketPolicy(Tally& t, const NetnsPair& net, const SaCase& c) {
  const Side& a = net.a();
  const Side& b = net.b();
  const std::string what = std::string("TCP ") + c.name + ", per-socket policy in A";
  if (!install(t, what, a,
               saLine(c, a, b, kSpiForward, 1, c.key) + saLine(c, b, a, kSpiReturn, 2, c.key)) ||
      !install(t, what, b, sideConfig(c, b, a, a, b, c.key))) {
    flushXfrm(a), flushXfrm(b);
    return;
  }
  const auto withPolicy = [&](int fd, uint16_t port) -> std::string {
    sockaddr_storage ss;
    socklen_t len = 0;
    fillAddr(c.family, addressOf(a, c.family), 0, ss, len);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return errnoText("bind");
    auto local = localEndpoint(fd);
    if (!local) return local.error().message();
    const Endpoint remote = endpointOf(addressOf(b, c.family), port);
    std::string err = setSocketPolicy(fd, c.family, XFRM_POLICY_OUT, *local, remote, 1);
    if (err.empty()) err = setSocketPolicy(fd, c.family, XFRM_POLICY_IN, *local, remote, 2);
    return err;
  };
  if (auto conn = connectAndTalk(t, what, net, c.family, withPolicy)) {
    if (auto r =
            queryBoth(t, what + " (client in A)", a.ns, conn->client.get(), {}, Expect{true, true});
        r && r->ipsec)
      t.check(what + " (client in A): both directions decided by the socket's own policies",
              r->ipsec->outbound.socketPolicy && r->ipsec->inbound.socketPolicy, describe(*r));
    queryBoth(t, what + " (server in B)", b.ns, conn->server.get(), {}, Expect{true, true});
  }
  // The control: the same connection without the per-socket policy fails, so
  // the policy above is what protected it.
  const TcpConnection plain = tcpConnect(a, b, c.family, 1000ms);
  t.check(what + ": without the per-socket policy A cannot connect (B requires ESP)",
          !plain.error.empty(), "connected");
  clear(t, what, net);
}

// A UDP socket in `ns` bound to `bindAddress`:0; optionally connected to `to`.
UniqueFd udpSocket(const std::string& ns, int family, const std::string& bindAddress,
                   const Endpoint* to, std::string& error) {
  InNetns in(ns);
  UniqueFd fd(socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_storage ss;
  socklen_t len = 0;
  fillAddr(family, bindAddress, 0, ss, len);
  if (!in.ok() || !fd || bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    error = errnoText("udp bind");
    return {};
  }
  if (to != nullptr) {
    if (connect(fd.get(), to->sockaddrPtr(), to->length()) != 0) {
      error = errnoText("udp connect");
      return {};
    }
  }
  return fd;
}

// One datagram `from` -> `to`; the sender's address as the receiver saw it.
std::optional<Endpoint> datagram(int from, int to, const Endpoint& dest, std::string& error) {
  const char msg[] = "sockgate udp";
  if (sendto(from, msg, sizeof msg, 0, dest.sockaddrPtr(), dest.length()) !=
      static_cast<ssize_t>(sizeof msg)) {
    error = errnoText("sendto");
    return std::nullopt;
  }
  pollfd p{to, POLLIN, 0};
  if (poll(&p, 1, 5000) != 1) {
    error = "datagram not received";
    return std::nullopt;
  }
  char buf[64];
  sockaddr_storage src{};
  socklen_t len = sizeof src;
  const ssize_t n = recvfrom(to, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&src), &len);
  if (n != static_cast<ssize_t>(sizeof msg) || std::memcmp(buf, msg, sizeof msg) != 0) {
    error = "datagram garbled";
    return std::nullopt;
  }
  return Endpoint::fromSockaddr(reinterpret_cast<sockaddr*>(&src), len);
}

// Case 9: UDP sockets, the peer named by the template. An unconnected
// socket bound to the wildcard in A (its source address comes from the
// route), a connected one, and B's socket asked about A.
void checkUdp(Tally& t, const NetnsPair& net, const SaCase& c, Expect expect) {
  const Side& a = net.a();
  const Side& b = net.b();
  const std::string what = std::string("UDP ") + c.name;
  if (!install(t, what, a, sideConfig(c, a, b, a, b, c.key)) ||
      !install(t, what, b, sideConfig(c, b, a, a, b, c.key))) {
    flushXfrm(a), flushXfrm(b);
    return;
  }
  std::string err;
  UniqueFd server = udpSocket(b.ns, c.family, addressOf(b, c.family), nullptr, err);
  UniqueFd client =
      server ? udpSocket(a.ns, c.family, c.family == AF_INET ? "0.0.0.0" : "::", nullptr, err)
             : UniqueFd{};
  if (t.check(what + ": sockets", server && client, err)) {
    const Endpoint serverAt = localEndpoint(server.get()).value_or(Endpoint{});
    const auto clientSeen = datagram(client.get(), server.get(), serverAt, err);
    const auto back =
        clientSeen ? datagram(server.get(), client.get(), *clientSeen, err) : std::nullopt;
    if (t.check(what + ": datagrams A->B and B->A arrived", clientSeen && back, err)) {
      queryBoth(t, what + " (unconnected, wildcard-bound in A, template peer B)", a.ns,
                client.get(), serverAt, expect);
      queryBoth(t, what + " (in B, template peer A)", b.ns, server.get(), *clientSeen, expect);
      // A peer the policies do not cover: the template's address is what
      // the answer is about.
      const Endpoint elsewhere =
          endpointOf(c.family == AF_INET ? "10.231.0.3" : "fd00:231::3", serverAt.port());
      queryBoth(t, what + " (unconnected in A, template peer " + elsewhere.toString() + ")", a.ns,
                client.get(), elsewhere, Expect{});
    }
    UniqueFd connected = udpSocket(a.ns, c.family, addressOf(a, c.family), &serverAt, err);
    if (t.check(what + ": connected socket in A", connected.valid(), err)) {
      const auto seen = datagram(connected.get(), server.get(), serverAt, err);
      if (t.check(what + ": datagram from the connected socket arrived", seen.has_value(), err))
        queryBoth(t, what + " (connected in A, template peer B)", a.ns, connected.get(), serverAt,
                  expect);
    }
  }
  clear(t, what, net);
}

// Case 10: kernel TLS on a loopback TCP pair, both directions keyed on both
// sockets. The record reports version and cipher per direction; the Windows
// flags cannot express kTLS and stay 0.
void checkKtls(Tally& t, unsigned short version, const char* name) {
  const std::string what = std::string("kTLS ") + name;
  TcpPair p = loopbackPair();
  if (!t.check(what + ": loopback TCP connection", p.error.empty(), p.error)) return;

  std::string why;  // what the last query said when it had no kTLS record
  const auto ktlsOf = [&](int fd) -> std::optional<KtlsStatus> {
    QueryOptions o;
    o.wantIpsec = o.wantPeerProcess = o.wantLabel = false;
    auto r = querySocketSecurity(fd, o);
    why = r ? describe(*r) : r.error().message();
    if (!r || !r->ktls) return std::nullopt;
    return r->ktls;
  };
  const auto show = [&why](const std::optional<KtlsStatus>& k) -> std::string {
    if (!k) return "no kTLS record (" + why + ")";
    const auto d = [](const std::optional<KtlsDirection>& x) -> std::string {
      return x ? x->versionName + " " + x->cipherName + " (" + hex(x->version) + "/" +
                     std::to_string(x->cipherType) + ")"
               : "none";
    };
    return "tx " + d(k->tx) + ", rx " + d(k->rx);
  };
  const auto matches = [&](const std::optional<KtlsDirection>& d) {
    return d && d->version == version && d->cipherType == TLS_CIPHER_AES_GCM_128 &&
           d->cipherName == "AES-GCM-128" && d->versionName == name;
  };

  auto k = ktlsOf(p.client.get());
  t.check(what + ": plain TCP socket has no kTLS record", !k, show(k));

  std::string err = attachTlsUlp(p.client.get());
  if (!t.check(what + ": TCP_ULP \"tls\" on the client", err.empty(), err)) return;
  k = ktlsOf(p.client.get());
  t.check(what + ": ULP without keys: kTLS record, no direction keyed", k && !k->tx && !k->rx,
          show(k));

  err = setKtlsKey(p.client.get(), TLS_TX, version);
  if (!t.check(what + ": client TLS_TX AES-GCM-128", err.empty(), err)) return;
  k = ktlsOf(p.client.get());
  t.check(what + ": client record: tx " + name + " AES-GCM-128, rx none",
          k && matches(k->tx) && !k->rx, show(k));

  err = setKtlsKey(p.client.get(), TLS_RX, version);
  if (err.empty()) err = enableKtls(p.server.get(), TLS_RX, version);
  if (err.empty()) err = setKtlsKey(p.server.get(), TLS_TX, version);
  if (!t.check(what + ": client TLS_RX, server TLS_RX and TLS_TX", err.empty(), err)) return;

  // Records really flow both ways through the kernel's TLS.
  const std::string ask(700, 'c'), answer(900, 's');
  std::string got(ask.size(), '\0'), got2(answer.size(), '\0');
  const bool ok =
      send(p.client.get(), ask.data(), ask.size(), 0) == static_cast<ssize_t>(ask.size()) &&
      readFull(p.server.get(), got.data(), got.size()) && got == ask &&
      send(p.server.get(), answer.data(), answer.size(), 0) ==
          static_cast<ssize_t>(answer.size()) &&
      readFull(p.client.get(), got2.data(), got2.size()) && got2 == answer;
  t.check(what + ": data both ways through kTLS", ok, errnoText("send/recv"));

  for (const auto& [label, fd] :
       {std::pair{"client", p.client.get()}, std::pair{"server", p.server.get()}}) {
    k = ktlsOf(fd);
    t.check(what + ": " + label + " record: tx and rx " + name + " AES-GCM-128",
            k && matches(k->tx) && matches(k->rx) && k->encryptsBothWays(), show(k));
    SOCKET_SECURITY_QUERY_TEMPLATE tmpl{};
    tmpl.SecurityProtocol = SOCKET_SECURITY_PROTOCOL_IPSEC;
    SOCKET_SECURITY_QUERY_INFO info{};
    ULONG len = sizeof info;
    const int rc = WSAQuerySocketSecurity(fd, &tmpl, sizeof tmpl, &info, &len, nullptr, nullptr);
    t.check(what + ": " + label +
                " WSAQuerySocketSecurity: Flags 0, protocol DEFAULT (kTLS is not a Windows "
                "security protocol)",
            rc == 0 && info.Flags == 0 && info.SecurityProtocol == SOCKET_SECURITY_PROTOCOL_DEFAULT,
            "rc " + std::to_string(rc) + " error " + std::to_string(WSAGetLastError()) + " Flags " +
                hexFlags(info.Flags));
  }
}

}  // namespace

int main() {
  std::signal(SIGPIPE, SIG_IGN);
  Tally t;
  {
    NetnsPair net;
    const std::string err = net.create();
    if (t.check("two namespaces joined by veth", err.empty(), err)) {
      checkBothDirections(t, net, kEspGcmV4, Expect{true, true}, IPPROTO_ESP, "rfc4106(gcm(aes))",
                          "", "");
      checkBothDirections(t, net, kEspCbcV4, Expect{true, true}, IPPROTO_ESP, "", "cbc(aes)",
                          "hmac(sha256)");
      checkBothDirections(t, net, kEspNullV4, Expect{true, false}, IPPROTO_ESP, "",
                          "ecb(cipher_null)", "hmac(sha256)");
      checkBothDirections(t, net, kAhV4, Expect{true, false}, IPPROTO_AH, "", "", "hmac(sha256)");
      checkBothDirections(t, net, kEspGcmV6, Expect{true, true}, IPPROTO_ESP, "rfc4106(gcm(aes))",
                          "", "");
      checkNoIpsec(t, net);
      checkOneDirection(t, net, kEspGcmV4);
      checkPerSocketPolicy(t, net, kEspGcmV4);
      checkPerSocketPolicy(t, net, kEspGcmV6);
      checkUdp(t, net, kEspGcmV4, Expect{true, true});
      checkUdp(t, net, kEspNullV4, Expect{true, false});
    }
  }
  checkKtls(t, TLS_1_2_VERSION, "TLS 1.2");
  checkKtls(t, TLS_1_3_VERSION, "TLS 1.3");
  return t.finish();
}
