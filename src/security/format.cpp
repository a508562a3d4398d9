// The two renderings the CLI prints (`sockgate query ... [--json]`).
#include <netinet/in.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sockgate/security.h"

namespace sockgate {
namespace {

std::string protoName(uint8_t proto) {
  switch (proto) {
    case IPPROTO_ESP:
      return "esp";
    case IPPROTO_AH:
      return "ah";
    case IPPROTO_COMP:
      return "comp";
    default:
      return std::to_string(proto);
  }
}

std::string modeName(IpsecMode mode) {
  switch (mode) {
    case IpsecMode::kTransport:
      return "transport";
    case IpsecMode::kTunnel:
      return "tunnel";
    case IpsecMode::kRouteOptimization:
      return "ro";
    case IpsecMode::kInTrigger:
      return "in_trigger";
    case IpsecMode::kBeet:
      return "beet";
  }
  return "?";
}

std::string sourceName(PeerSource source) {
  switch (source) {
    case PeerSource::kUnixCredentials:
      return "unix-credentials";
    case PeerSource::kSockDiag:
      return "sock-diag";
    case PeerSource::kRedirectContext:
      return "redirect-context";
    case PeerSource::kOther:
      return "other";
  }
  return "?";
}

std::string familyName(int family) {
  switch (family) {
    case AF_INET:
      return "inet";
    case AF_INET6:
      return "inet6";
    case AF_UNIX:
      return "unix";
    default:
      return std::to_string(family);
  }
}

std::string flagsText(uint32_t flags) {
  std::string out;
  const auto add = [&](const char* name) { out += out.empty() ? name : std::string("|") + name; };
  if (flags & kSecurityFlagSecured) add("SECURED");
  if (flags & kSecurityFlagEncrypted) add("ENCRYPTED");
  if (flags & kSecurityFlagImpersonated) add("IMPERSONATED");
  return out.empty() ? "none" : out;
}

std::string spiText(uint32_t spi) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", spi);
  return buf;
}

// An SA's outer address; "?" when the kernel gave a family we do not read.
std::string saAddress(const Endpoint& address) { return address.empty() ? "?" : address.address(); }

nlohmann::json saJson(const IpsecSa& sa) {
  nlohmann::json j;
  j["proto"] = protoName(sa.proto);
  j["mode"] = modeName(sa.mode);
  j["spi"] = spiText(sa.spi);
  j["reqid"] = sa.reqid;
  j["src"] = saAddress(sa.source);
  j["dst"] = saAddress(sa.destination);
  if (!sa.aead.empty()) j["aead"] = sa.aead;
  if (!sa.encryption.empty()) j["enc"] = sa.encryption;
  if (!sa.authentication.empty()) j["auth"] = sa.authentication;
  if (!sa.compression.empty()) j["comp"] = sa.compression;
  j["encrypts"] = sa.encrypts();
  return j;
}

nlohmann::json directionJson(const IpsecDirection& d) {
  nlohmann::json j;
  j["policy_found"] = d.policyFound;
  if (d.policyFound) {
    j["policy_index"] = d.policyIndex;
    j["policy_action"] = d.policyAction == 0 ? "allow" : "block";
    j["socket_policy"] = d.socketPolicy;
  }
  j["requires_ipsec"] = d.requiresIpsec;
  j["all_templates_have_sa"] = d.allTemplatesHaveSa;
  j["sas"] = nlohmann::json::array();
  for (const auto& sa : d.sas) j["sas"].push_back(saJson(sa));
  return j;
}

nlohmann::json ktlsJson(const std::optional<KtlsDirection>& d) {
  if (!d) return nullptr;
  return {{"version", d->versionName}, {"cipher", d->cipherName}};
}

std::string saLine(const IpsecSa& sa) {
  std::string out = protoName(sa.proto) + " " + modeName(sa.mode) + " spi " + spiText(sa.spi) +
                    " " + saAddress(sa.source) + " -> " + saAddress(sa.destination);
  if (!sa.aead.empty()) out += " aead " + sa.aead;
  if (!sa.encryption.empty()) out += " enc " + sa.encryption;
  if (!sa.authentication.empty()) out += " auth " + sa.authentication;
  return out;
}

}  // namespace

std::string formatSecurityJson(const SocketSecurity& s, int indent) {
  nlohmann::json j;
  j["family"] = familyName(s.family);
  j["protocol"] = s.protocol == SecurityProtocol::kIpsec ? "ipsec" : "none";
  j["flags"] = s.flags;
  j["secured"] = (s.flags & kSecurityFlagSecured) != 0;
  j["encrypted"] = (s.flags & kSecurityFlagEncrypted) != 0;
  j["impersonated"] = (s.flags & kSecurityFlagImpersonated) != 0;
  if (s.flow) {
    j["flow"] = {{"protocol", s.flow->protocol == IPPROTO_TCP   ? "tcp"
                              : s.flow->protocol == IPPROTO_UDP ? "udp"
                                                                : std::to_string(s.flow->protocol)},
                 {"local", s.flow->local.toString()},
                 {"remote", s.flow->remote.toString()}};
  }
  if (s.ipsec) {
    j["ipsec"] = {{"secured", s.ipsec->secured},
                  {"encrypted", s.ipsec->encrypted},
                  {"outbound", directionJson(s.ipsec->outbound)},
                  {"inbound", directionJson(s.ipsec->inbound)},
                  {"policies_seen", s.ipsec->policiesSeen},
                  {"states_seen", s.ipsec->statesSeen}};
  } else {
    j["ipsec"] = nullptr;
  }
  j["ktls"] = s.ktls ? nlohmann::json{{"tx", ktlsJson(s.ktls->tx)}, {"rx", ktlsJson(s.ktls->rx)}}
                     : nlohmann::json();
  if (s.peer) {
    const PeerProcess& p = *s.peer;
    j["peer"] = {{"pid", p.pid},
                 {"uid", p.uid},
                 {"gid", p.gid},
                 {"groups", p.groups},
                 {"executable", p.executable},
                 {"command", p.command},
                 {"cgroup", p.cgroup},
                 {"lsm_label", p.lsmLabel ? nlohmann::json(*p.lsmLabel) : nlohmann::json()},
                 {"source", sourceName(p.source)},
                 {"impersonated", p.impersonated}};
  } else {
    j["peer"] = nullptr;
  }
  j["peer_label"] = s.peerLabel ? nlohmann::json(*s.peerLabel) : nlohmann::json();
  j["notes"] = s.notes;
  // Labels and paths are not guaranteed UTF-8 (SO_PEERSEC(2const)): replace
  // invalid bytes instead of throwing.
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string formatSecurityTable(const SocketSecurity& s) {
  std::ostringstream out;
  const auto row = [&](const std::string& key, const std::string& value) {
    out << key << std::string(key.size() < 16 ? 16 - key.size() : 1, ' ') << value << '\n';
  };
  row("family", familyName(s.family));
  if (s.flow) {
    row("flow", std::string(s.flow->protocol == IPPROTO_UDP ? "udp " : "tcp ") +
                    s.flow->local.toString() + " -> " + s.flow->remote.toString());
  }
  row("protocol", s.protocol == SecurityProtocol::kIpsec ? "IPsec" : "none");
  row("flags", flagsText(s.flags));
  if (s.ipsec) {
    const auto dir = [&](const char* name, const IpsecDirection& d) {
      std::string text = !d.policyFound        ? "no policy"
                         : d.policyAction != 0 ? "block policy " + std::to_string(d.policyIndex)
                         : !d.requiresIpsec
                             ? "bypass policy " + std::to_string(d.policyIndex)
                             : "policy " + std::to_string(d.policyIndex) +
                                   (d.socketPolicy ? " (per-socket)" : "") +
                                   (d.allTemplatesHaveSa ? ", SA installed" : ", no SA");
      row(name, text);
      for (const auto& sa : d.sas) row("", saLine(sa));
    };
    dir("ipsec out", s.ipsec->outbound);
    dir("ipsec in", s.ipsec->inbound);
  } else {
    row("ipsec", "not checked");
  }
  if (s.ktls) {
    const auto dir = [](const std::optional<KtlsDirection>& d) {
      return d ? d->versionName + " " + d->cipherName : std::string("off");
    };
    row("ktls", "tx " + dir(s.ktls->tx) + ", rx " + dir(s.ktls->rx));
  } else if (s.flow && s.flow->protocol == IPPROTO_TCP) {
    row("ktls", "no");
  }
  if (s.peer) {
    const PeerProcess& p = *s.peer;
    row("peer pid", std::to_string(p.pid) + " (" + sourceName(p.source) + ")");
    row("peer uid/gid", std::to_string(p.uid) + "/" + std::to_string(p.gid));
    std::string groups;
    for (gid_t g : p.groups) groups += (groups.empty() ? "" : ",") + std::to_string(g);
    row("peer groups", groups.empty() ? "-" : groups);
    row("peer exe", p.executable.empty() ? "-" : p.executable);
    row("peer comm", p.command.empty() ? "-" : p.command);
    row("peer cgroup", p.cgroup.empty() ? "-" : p.cgroup);
    row("peer lsm", p.lsmLabel.value_or("-"));
  } else {
    row("peer", "no local peer process");
  }
  row("peer label", s.peerLabel.value_or("no label"));
  for (const auto& n : s.notes) row("note", n);
  return out.str();
}

}  // namespace sockgate
