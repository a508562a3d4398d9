#include "cli/policy_command.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "cli/text_table.h"

namespace sockgate::cli {

namespace {

constexpr int kValid = 0;
constexpr int kInvalid = 2;

std::string ranges(const sg_range* r, uint32_t count) {
  std::string out;
  for (uint32_t i = 0; i < count && i < SG_MAX_RANGES; ++i) {
    if (!out.empty()) out += ",";
    out += r[i].lo == r[i].hi ? std::to_string(r[i].lo) : fmt::format("{}-{}", r[i].lo, r[i].hi);
  }
  return out;
}

std::string prefix(const sg_prefix& p) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(p.family, p.addr, buf, sizeof buf);
  return fmt::format("{}/{}", buf, p.len);
}

// Port 0 on a built-in listener means "any free port": say so.
std::string listener(const Endpoint& ep) {
  if (ep.port() != 0) return ep.toString();
  return ep.family() == AF_INET6 ? "[" + ep.address() + "]:any" : ep.address() + ":any";
}

}  // namespace

std::string filterSummary(const sg_filter& f) {
  if (f.match == 0) return "any TCP";  // "tcp" is the only protocol there is yet
  std::vector<std::string> parts;
  if (f.protocols & SG_PROTO_TCP) parts.emplace_back("tcp");
  if (f.match & SG_MATCH_PREFIX) {
    std::string dst;
    for (uint32_t i = 0; i < f.prefix_count && i < SG_MAX_PREFIXES; ++i)
      dst += (dst.empty() ? "" : ",") + prefix(f.prefixes[i]);
    parts.push_back("dst " + dst);
  }
  if (f.match & SG_MATCH_PORT) parts.push_back("port " + ranges(f.ports, f.port_count));
  if (f.match & SG_MATCH_UID) parts.push_back("uid " + ranges(f.uids, f.uid_count));
  if (f.match & SG_MATCH_GID) parts.push_back("gid " + ranges(f.gids, f.gid_count));
  if (f.match & SG_MATCH_CGROUP)
    parts.push_back(fmt::format("cgroup id {} (level {})", f.cgroup_id, f.cgroup_level));
  if (f.match & SG_MATCH_COMM)
    parts.push_back("comm " + std::string(f.comm, strnlen(f.comm, sizeof f.comm)));
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

std::string formatPolicyTable(const Policy& policy) {
  std::vector<std::vector<std::string>> cells;
  cells.push_back({"NAME", "KIND", "LISTEN", "PRIORITY", "FAIL", "RECORDS", "TAG", "FILTER"});
  for (const auto& s : policy.services) {
    std::string listen;
    for (const auto* ep : {&s.listen4, &s.listen6})
      if (*ep) listen += (listen.empty() ? "" : " ") + listener(**ep);
    const bool external = s.kind == PolicyService::Kind::External;
    // Who carries a flow's records to the next service: the service itself,
    // or the kernel, inferring them from what the service accepted.
    const bool attaches = !external || s.attachesRecords;
    cells.push_back({s.name, external ? "external" : "builtin", listen, std::to_string(s.priority),
                     s.failClosed ? "closed" : "open", attaches ? "attached" : "inferred",
                     fmt::format("{} B", s.tag.size()), filterSummary(s.filter)});
  }
  return alignColumns(cells);
}

void addPolicyCommand(CLI::App& app, PolicyCommand& command) {
  auto* policy = app.add_subcommand("policy", "Work with policy files");
  policy->require_subcommand(1);
  command.check = policy->add_subcommand(
      "check",
      "Validate a policy file without attaching anything (no root needed); print its services "
      "in priority order. Exits 0 when valid, 2 when not.");
  command.check->add_option("file", command.file, "The policy file (TOML)")->required();
}

int runPolicyCommand(const PolicyCommand& command) {
  auto policy = loadPolicy(command.file);
  if (!policy) {
    std::fprintf(stderr, "%s\n", policy.error().message().c_str());
    return kInvalid;
  }
  std::string out = fmt::format("{}: valid, {} service{} in priority order\n", policy->source,
                                policy->services.size(), policy->services.size() == 1 ? "" : "s");
  out += formatPolicyTable(*policy);
  std::fputs(out.c_str(), stdout);
  return kValid;
}

}  // namespace sockgate::cli
