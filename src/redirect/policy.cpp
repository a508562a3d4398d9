// The policy file, read with toml++ and checked field by field. Nothing here
// touches the kernel: cgroup paths are resolved with stat() alone, so
// `sockgate policy check` needs no privileges.
//
// toml++ is used header-only with TOML_EXCEPTIONS=0 (set for this file in
// CMake): a syntax error comes back as a value, so no exception can leave the
// parser, and the fuzzer sees the parser's own code instrumented.
#include "redirect/policy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cctype>
#include <charconv>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <new>
#include <toml++/toml.h>

#include "common/unique_fd.h"
#include "engine/cgroup.h"
#include "engine/preflight.h"

namespace sockgate {

namespace {

constexpr size_t kMaxNameLength = 32;
constexpr size_t kMaxFileSize = 1 << 20;
constexpr size_t kMaxCommLength = SG_COMM_LEN - 1;  // the kernel keeps 15 bytes of a name
constexpr int kDefaultPriority = 100;
constexpr uint32_t kMaxId = 4294967294u;  // (uid_t)-1 means "no id" to the kernel

constexpr std::array kTopKeys{"service"};
constexpr std::array kServiceKeys{"name", "kind",    "listen", "priority", "fail",
                                  "tag",  "tag_hex", "cgroup", "filter"};
constexpr std::array kFilterKeys{"destinations", "ports", "protocols", "uids",
                                 "gids",         "cgroup", "comm"};

// Levenshtein distance, for "did you mean" on unknown keys: a typo must not
// pass silently, and the fix should not need the manual.
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

template <size_t N>
std::string unknownKeyHint(std::string_view key, const std::array<const char*, N>& known) {
  std::string list;
  const char* closest = nullptr;
  size_t best = 3;  // farther than two edits is a different word, not a typo
  for (const char* k : known) {
    if (!list.empty()) list += ", ";
    list += k;
    size_t d = editDistance(key, k);
    if (d < best) {
      best = d;
      closest = k;
    }
  }
  if (closest) return fmt::format("(did you mean '{}'? expected one of: {})", closest, list);
  return fmt::format("(expected one of: {})", list);
}

bool validName(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNameLength &&
         std::all_of(name.begin(), name.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '_' || c == '.' || c == '-';
         });
}

// Keys and values in messages are quoted as written, but a control byte in a
// message would garble a terminal; show those escaped.
std::string printable(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  return out;
}

std::string typeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

// Parses "N" (all digits) into [0, max].
std::optional<uint64_t> parseNumber(std::string_view text, uint64_t max) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value > max)
    return std::nullopt;
  return value;
}

bool isLoopback(const Endpoint& ep) {
  sg_endpoint abi = ep.toAbi();
  if (ep.family() == AF_INET) return abi.addr[0] == 127;
  static constexpr uint8_t kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::memcmp(abi.addr, kLoopback6, 16) == 0;
}

// A policy that cannot be used. The Error carries no errno (nothing failed in
// the OS): its context is the whole message, one line, so that message()
// prints exactly "FILE:LINE: service 'NAME': FIELD: ...".
std::unexpected<Error> invalid(std::string line) { return std::unexpected(Error{0, std::move(line)}); }

struct ResolvedCgroup {
  std::string path;
  uint64_t id = 0;
  uint32_t level = 0;
};

// The checks of one file. Every failure is one line:
//   FILE:LINE: service 'NAME': FIELD: what is wrong (what is expected)
class PolicyReader {
 public:
  explicit PolicyReader(std::string source) : source_(std::move(source)) {}

  Result<Policy> read(std::string_view text) {
    toml::parse_result parsed = toml::parse(text, source_);
    if (!parsed) {
      const toml::parse_error& e = parsed.error();
      return invalid(fmt::format("{}:{}:{}: {}", source_, e.source().begin.line,
                                      e.source().begin.column, printable(e.description())));
    }
    const toml::table& root = parsed.table();

    for (auto&& [key, node] : root) {
      if (key.str() != "service")
        return invalid(message(lineOf(key, node), "", key.str(),
                                    "unknown key " + unknownKeyHint(key.str(), kTopKeys)));
    }
    const toml::node* services = root.get("service");
    if (!services)
      return invalid(message(1, "", "service",
                                  "no services (declare at least one [[service]] table)"));
    const toml::array* list = services->as_array();
    if (!list || !list->is_array_of_tables())
      return invalid(message(lineOf(*services), "", "service",
                                  fmt::format("is {} (write each service as a [[service]] table)",
                                              typeName(*services))));
    if (list->empty())
      return invalid(message(lineOf(*services), "", "service",
                                  "no services (declare at least one [[service]] table)"));
    if (list->size() > SG_MAX_SERVICES)
      return invalid(message(lineOf(*list->get(SG_MAX_SERVICES)), "", "service",
                                  fmt::format("{} services (at most {})", list->size(),
                                              SG_MAX_SERVICES)));

    Policy policy;
    policy.source = source_;
    for (size_t i = 0; i < list->size(); ++i) {
      auto service = readService(*list->get(i)->as_table(), i, policy.services);
      if (!service) return std::unexpected(service.error());
      policy.services.push_back(std::move(*service));
    }
    std::stable_sort(policy.services.begin(), policy.services.end(),
                     [](const PolicyService& a, const PolicyService& b) {
                       return a.priority < b.priority;
                     });
    return policy;
  }

 private:
  // ---- messages ----

  std::string message(uint32_t line, const std::string& who, std::string_view field,
                      std::string_view what) const {
    std::string out = fmt::format("{}:{}: ", source_, line);
    if (!who.empty()) out += who + ": ";
    out += fmt::format("{}: {}", printable(field), what);
    return out;
  }

  static uint32_t lineOf(const toml::node& node) { return node.source().begin.line; }
  static uint32_t lineOf(const toml::key& key, const toml::node& node) {
    return key.source().begin.line ? key.source().begin.line : lineOf(node);
  }

  // A value's line, or the service's own when toml++ knows none (implicit tables).
  uint32_t at(const toml::node& node) const {
    uint32_t line = lineOf(node);
    return line ? line : serviceLine_;
  }

  std::unexpected<Error> bad(const toml::node& node, std::string_view field,
                             std::string_view what) const {
    return invalid(message(at(node), who_, field, what));
  }
  std::unexpected<Error> bad(uint32_t line, std::string_view field, std::string_view what) const {
    return invalid(message(line ? line : serviceLine_, who_, field, what));
  }

  // ---- one service ----

  // `earlier`: the services above this one in the file, which its name and
  // listeners must not repeat.
  Result<PolicyService> readService(const toml::table& table, size_t index,
                                    const std::vector<PolicyService>& earlier) {
    PolicyService s;
    s.line = static_cast<int>(lineOf(table));
    serviceLine_ = lineOf(table);
    // Until the name is known, a service is named by its place in the file.
    who_ = fmt::format("service #{}", index + 1);
    if (const auto* name = table.get_as<std::string>("name"); name && validName(name->get()))
      who_ = "service '" + name->get() + "'";

    for (auto&& [key, node] : table) {
      if (std::find(kServiceKeys.begin(), kServiceKeys.end(), key.str()) == kServiceKeys.end())
        return bad(lineOf(key, node), key.str(),
                   "unknown key " + unknownKeyHint(key.str(), kServiceKeys));
    }

    const toml::node* name = table.get("name");
    if (!name) return bad(serviceLine_, "name", "missing (every service needs a name)");
    if (!name->is_string()) return bad(*name, "name", "is " + typeName(*name) + " (expected a string)");
    s.name = name->as_string()->get();
    if (!validName(s.name))
      return bad(*name, "name",
                 fmt::format("'{}' is not a valid name (1 to {} of A-Z a-z 0-9 _ . -)",
                             printable(s.name), kMaxNameLength));
    who_ = "service '" + s.name + "'";
    for (const auto& other : earlier) {
      if (other.name == s.name)
        return bad(*name, "name",
                   fmt::format("'{}' is already the name of the service at line {} (a unique "
                               "name)",
                               s.name, other.line));
    }

    if (const toml::node* kind = table.get("kind")) {
      auto text = stringOf(*kind, "kind", "\"builtin\" or \"external\"");
      if (!text) return std::unexpected(text.error());
      if (*text == "builtin")
        s.kind = PolicyService::Kind::Builtin;
      else if (*text == "external")
        s.kind = PolicyService::Kind::External;
      else
        return bad(*kind, "kind",
                   fmt::format("'{}' is not a kind (\"builtin\" or \"external\")", printable(*text)));
    }

    if (auto st = readListen(table, s, earlier); !st) return std::unexpected(st.error());

    if (const toml::node* priority = table.get("priority")) {
      const auto* value = priority->as_integer();
      if (!value)
        return bad(*priority, "priority", "is " + typeName(*priority) + " (expected an integer)");
      int64_t v = value->get();
      if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
        return bad(*priority, "priority",
                   fmt::format("{} is out of range (an integer from {} to {})", v,
                               std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
      s.priority = static_cast<int>(v);
    } else {
      s.priority = kDefaultPriority;
    }

    if (const toml::node* failMode = table.get("fail")) {
      auto text = stringOf(*failMode, "fail", "\"open\" or \"closed\"");
      if (!text) return std::unexpected(text.error());
      if (*text == "open")
        s.failClosed = false;
      else if (*text == "closed")
        s.failClosed = true;
      else
        return bad(*failMode, "fail",
                   fmt::format("'{}' is not a fail mode (\"open\": flows go direct while the "
                               "service is down; \"closed\": connect() fails with ECONNREFUSED)",
                               printable(*text)));
    }

    if (auto st = readTag(table, s); !st) return std::unexpected(st.error());

    if (const toml::node* cgroup = table.get("cgroup")) {
      if (s.kind != PolicyService::Kind::External)
        return bad(*cgroup, "cgroup",
                   "only an external service has a cgroup of its own (a built-in service runs "
                   "inside sockgate; to select flows by cgroup, use filter.cgroup)");
      auto resolved = readCgroup(*cgroup, "cgroup");
      if (!resolved) return std::unexpected(resolved.error());
      s.cgroupPath = resolved->path;
    }

    if (const toml::node* filter = table.get("filter")) {
      const toml::table* f = filter->as_table();
      if (!f)
        return bad(*filter, "filter",
                   "is " + typeName(*filter) + " (expected a table: [service.filter])");
      if (auto st = readFilter(*f, s.filter); !st) return std::unexpected(st.error());
    }
    return s;
  }

  Result<std::string> stringOf(const toml::node& node, std::string_view field,
                               std::string_view expected) const {
    if (const auto* text = node.as_string()) return text->get();
    return bad(node, field, fmt::format("is {} (expected {})", typeName(node), expected));
  }

  Status readListen(const toml::table& table, PolicyService& s,
                    const std::vector<PolicyService>& earlier) const {
    const bool external = s.kind == PolicyService::Kind::External;
    const toml::node* listen = table.get("listen");
    if (!listen) {
      if (external)
        return bad(serviceLine_, "listen",
                   "missing (an external service needs the loopback address it listens on, e.g. "
                   "[\"127.0.0.1:3128\", \"[::1]:3128\"])");
      s.listen4 = Endpoint::loopback(AF_INET, 0);
      s.listen6 = Endpoint::loopback(AF_INET6, 0);
      return {};
    }
    const toml::array* list = listen->as_array();
    if (!list)
      return bad(*listen, "listen",
                 "is " + typeName(*listen) +
                     " (expected an array of loopback addresses, e.g. [\"127.0.0.1:7001\", "
                     "\"[::1]:7001\"])");
    if (list->empty())
      return bad(*listen, "listen",
                 "is empty (one IPv4 and/or one IPv6 loopback address with a port)");
    for (const toml::node& entry : *list) {
      const auto* text = entry.as_string();
      if (!text)
        return bad(entry, "listen",
                   "an entry is " + typeName(entry) + " (expected \"ADDR:PORT\" or \"[ADDR]:PORT\")");
      auto ep = Endpoint::parse(text->get());
      if (!ep)
        return bad(entry, "listen",
                   fmt::format("'{}' is not an address and port (\"127.0.0.1:PORT\" or "
                               "\"[::1]:PORT\")",
                               printable(text->get())));
      if (!isLoopback(*ep))
        return bad(entry, "listen",
                   fmt::format("'{}' is not a loopback address (127.0.0.0/8 or [::1]: redirected "
                               "flows must never leave the host)",
                               printable(text->get())));
      if (external && ep->port() == 0)
        return bad(entry, "listen",
                   fmt::format("'{}': port 0 means \"any free port\", which only a built-in "
                               "service can use (the port the external service listens on)",
                               printable(text->get())));
      // Two services on one listener would receive each other's flows; port
      // 0 is a fresh port for each, so it never clashes.
      for (const auto& other : earlier) {
        for (const auto* theirs : {&other.listen4, &other.listen6}) {
          if (ep->port() != 0 && *theirs && **theirs == *ep)
            return bad(entry, "listen",
                       fmt::format("{} is already the listener of service '{}' at line {} (an "
                                   "address and port of its own)",
                                   ep->toString(), other.name, other.line));
        }
      }
      auto& slot = ep->family() == AF_INET ? s.listen4 : s.listen6;
      if (slot)
        return bad(entry, "listen",
                   fmt::format("'{}' is a second IPv{} listener (at most one IPv4 and one IPv6)",
                               printable(text->get()), ep->family() == AF_INET ? 4 : 6));
      slot = *ep;
    }
    return {};
  }

  Status readTag(const toml::table& table, PolicyService& s) const {
    const toml::node* tag = table.get("tag");
    const toml::node* tagHex = table.get("tag_hex");
    if (tag && tagHex)
      return bad(*tagHex, "tag_hex", "given together with tag (one or the other)");
    if (tag) {
      auto text = stringOf(*tag, "tag", "a string, or tag_hex = \"hex digits\" for binary bytes");
      if (!text) return std::unexpected(text.error());
      if (text->size() > SG_TAG_MAX)
        return bad(*tag, "tag",
                   fmt::format("{} bytes (at most {})", text->size(), SG_TAG_MAX));
      s.tag.assign(text->begin(), text->end());
    }
    if (tagHex) {
      auto text = stringOf(*tagHex, "tag_hex", "a string of hex digits, e.g. \"00ff10\"");
      if (!text) return std::unexpected(text.error());
      if (text->size() % 2 != 0)
        return bad(*tagHex, "tag_hex",
                   fmt::format("{} hex digits is an odd number (two digits per byte)", text->size()));
      if (text->size() / 2 > SG_TAG_MAX)
        return bad(*tagHex, "tag_hex",
                   fmt::format("{} bytes (at most {})", text->size() / 2, SG_TAG_MAX));
      auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      for (size_t i = 0; i < text->size(); i += 2) {
        int hi = nibble((*text)[i]);
        int lo = nibble((*text)[i + 1]);
        if (hi < 0 || lo < 0)
          return bad(*tagHex, "tag_hex",
                     fmt::format("'{}' at offset {} is not a hex digit (0-9, a-f, A-F)",
                                 printable(text->substr(hi < 0 ? i : i + 1, 1)),
                                 hi < 0 ? i : i + 1));
        s.tag.push_back(static_cast<uint8_t>(hi << 4 | lo));
      }
    }
    return {};
  }

  // A cgroup path: absolute inside the cgroup v2 hierarchy, or relative to
  // its mount point. stat() only: checking a policy needs no privileges.
  Result<ResolvedCgroup> readCgroup(const toml::node& node, std::string_view field) const {
    auto text = stringOf(node, field, "a cgroup path, absolute or relative to the cgroup v2 mount");
    if (!text) return std::unexpected(text.error());
    if (text->empty() || text->find('\0') != std::string::npos)
      return bad(node, field, "is empty (a cgroup path, absolute or relative to the cgroup v2 mount)");
    auto mount = findCgroup2Mount();
    if (!mount)
      return invalid(message(at(node), who_, field, "cannot be resolved: " + mount.error().message()));
    std::string path = text->front() == '/' ? *text : *mount + "/" + *text;
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
      int err = errno;
      return invalid(message(at(node), who_, field,
                               fmt::format("'{}' {} (a cgroup directory under {})", printable(path),
                                           err == ENOENT ? "does not exist" : std::strerror(err),
                                           *mount)));
    }
    if (!S_ISDIR(st.st_mode))
      return bad(node, field,
                 fmt::format("'{}' is not a directory (a cgroup directory under {})",
                             printable(path), *mount));
    auto level = cgroupLevelOf(path);
    if (!level)
      return bad(node, field,
                 fmt::format("'{}' is not inside the cgroup v2 hierarchy (a path under {}, or "
                             "relative to it)",
                             printable(path), *mount));
    auto id = cgroupIdOf(path);
    if (!id)
      return invalid(message(at(node), who_, field, "cannot be resolved: " + id.error().message()));
    std::error_code ec;
    auto canonical = std::filesystem::canonical(path, ec);
    return ResolvedCgroup{ec ? path : canonical.string(), *id, *level};
  }

  // ---- the filter ----

  Status readFilter(const toml::table& table, sg_filter& f) const {
    for (auto&& [key, node] : table) {
      if (std::find(kFilterKeys.begin(), kFilterKeys.end(), key.str()) == kFilterKeys.end())
        return bad(lineOf(key, node), "filter." + std::string(key.str()),
                   "unknown key " + unknownKeyHint(key.str(), kFilterKeys));
    }

    if (const toml::node* node = table.get("destinations")) {
      auto list = nonEmptyArray(*node, "filter.destinations", SG_MAX_PREFIXES,
                                "addresses or CIDR prefixes, e.g. [\"10.0.0.0/8\", \"::1\"]");
      if (!list) return std::unexpected(list.error());
      for (const toml::node& entry : **list) {
        auto prefix = readPrefix(entry);
        if (!prefix) return std::unexpected(prefix.error());
        f.prefixes[f.prefix_count++] = *prefix;
      }
      f.match |= SG_MATCH_PREFIX;
    }

    if (const toml::node* node = table.get("ports")) {
      auto count = readRanges(*node, "filter.ports", 1, 65535, f.ports);
      if (!count) return std::unexpected(count.error());
      f.port_count = *count;
      f.match |= SG_MATCH_PORT;
    }

    if (const toml::node* node = table.get("protocols")) {
      auto list = nonEmptyArray(*node, "filter.protocols", 2, "[\"tcp\"]");
      if (!list) return std::unexpected(list.error());
      for (const toml::node& entry : **list) {
        auto text = stringOf(entry, "filter.protocols", "\"tcp\"");
        if (!text) return std::unexpected(text.error());
        if (*text == "tcp")
          f.protocols |= SG_PROTO_TCP;
        else if (*text == "udp")
          return bad(entry, "filter.protocols",
                     "\"udp\" is not supported yet (only \"tcp\" for now)");
        else
          return bad(entry, "filter.protocols",
                     fmt::format("'{}' is not a protocol (\"tcp\")", printable(*text)));
      }
    }

    if (const toml::node* node = table.get("uids")) {
      auto count = readRanges(*node, "filter.uids", 0, kMaxId, f.uids);
      if (!count) return std::unexpected(count.error());
      f.uid_count = *count;
      f.match |= SG_MATCH_UID;
    }
    if (const toml::node* node = table.get("gids")) {
      auto count = readRanges(*node, "filter.gids", 0, kMaxId, f.gids);
      if (!count) return std::unexpected(count.error());
      f.gid_count = *count;
      f.match |= SG_MATCH_GID;
    }

    if (const toml::node* node = table.get("cgroup")) {
      auto resolved = readCgroup(*node, "filter.cgroup");
      if (!resolved) return std::unexpected(resolved.error());
      // The hook compares against the origin's ancestor at this level, and
      // it keeps SG_MAX_CGROUP_DEPTH of them.
      if (resolved->level >= SG_MAX_CGROUP_DEPTH)
        return bad(*node, "filter.cgroup",
                   fmt::format("'{}' is {} levels deep (at most {} below the cgroup v2 root)",
                               printable(resolved->path), resolved->level,
                               SG_MAX_CGROUP_DEPTH - 1));
      f.cgroup_id = resolved->id;
      f.cgroup_level = resolved->level;
      f.match |= SG_MATCH_CGROUP;
    }

    if (const toml::node* node = table.get("comm")) {
      auto text = stringOf(*node, "filter.comm", "a process name, e.g. \"curl\"");
      if (!text) return std::unexpected(text.error());
      if (text->empty() || text->size() > kMaxCommLength ||
          text->find('\0') != std::string::npos)
        return bad(*node, "filter.comm",
                   fmt::format("'{}' is {} bytes (1 to {}: the kernel keeps only the first {} "
                               "bytes of a process name)",
                               printable(*text), text->size(), kMaxCommLength, kMaxCommLength));
      std::memcpy(f.comm, text->data(), text->size());
      f.match |= SG_MATCH_COMM;
    }
    return {};
  }

  Result<const toml::array*> nonEmptyArray(const toml::node& node, std::string_view field,
                                           size_t max, std::string_view expected) const {
    const toml::array* list = node.as_array();
    if (!list)
      return bad(node, field, fmt::format("is {} (expected an array of {})", typeName(node), expected));
    if (list->empty())
      return bad(node, field, "is empty (leave the key out to match any)");
    if (list->size() > max)
      return bad(*list->get(max), field,
                 fmt::format("{} entries (at most {})", list->size(), max));
    return list;
  }

  Result<sg_prefix> readPrefix(const toml::node& entry) const {
    constexpr std::string_view field = "filter.destinations";
    auto text = stringOf(entry, field, "an address or CIDR prefix, e.g. \"10.0.0.0/8\"");
    if (!text) return std::unexpected(text.error());
    std::string address = *text;
    std::optional<uint64_t> length;
    if (auto slash = text->find('/'); slash != std::string::npos) {
      address = text->substr(0, slash);
      length = parseNumber(std::string_view(*text).substr(slash + 1), 128);
      if (!length)
        return bad(entry, field,
                   fmt::format("'{}' has no valid prefix length (ADDR/LEN, LEN 0-32 for IPv4, "
                               "0-128 for IPv6)",
                               printable(*text)));
    }
    sg_prefix p{};
    if (inet_pton(AF_INET, address.c_str(), p.addr) == 1) {
      p.family = AF_INET;
    } else if (inet_pton(AF_INET6, address.c_str(), p.addr) == 1) {
      p.family = AF_INET6;
      static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      // The hook sees a v4-mapped destination as IPv4: such a prefix would never match.
      if (std::memcmp(p.addr, kMapped, sizeof kMapped) == 0)
        return bad(entry, field,
                   fmt::format("'{}' is a v4-mapped IPv6 address (write it as IPv4: "
                               "connections to v4-mapped addresses are matched as IPv4)",
                               printable(*text)));
    } else {
      return bad(entry, field,
                 fmt::format("'{}' is not an address or CIDR prefix (e.g. \"10.0.0.0/8\", "
                             "\"2001:db8::/32\", \"127.0.0.1\")",
                             printable(*text)));
    }
    const uint32_t bits = p.family == AF_INET ? 32 : 128;
    if (length && *length > bits)
      return bad(entry, field,
                 fmt::format("'{}': prefix length {} is too long (at most {} for IPv{})",
                             printable(*text), *length, bits, p.family == AF_INET ? 4 : 6));
    p.len = static_cast<uint16_t>(length.value_or(bits));
    // Host bits set is most often a typo for another prefix: say which.
    sg_prefix masked = p;
    for (uint32_t bit = p.len; bit < bits; ++bit)
      masked.addr[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
    if (std::memcmp(masked.addr, p.addr, sizeof p.addr) != 0) {
      char buf[INET6_ADDRSTRLEN] = {};
      inet_ntop(p.family, masked.addr, buf, sizeof buf);
      return bad(entry, field,
                 fmt::format("'{}' has host bits set (the network address: \"{}/{}\")",
                             printable(*text), buf, p.len));
    }
    return p;
  }

  // Entries are integers or "N" / "LO-HI" strings; returns how many.
  Result<uint32_t> readRanges(const toml::node& node, std::string_view field, uint64_t min,
                              uint64_t max, sg_range (&out)[SG_MAX_RANGES]) const {
    const std::string expected =
        fmt::format("integers from {} to {}, or \"LO-HI\" ranges", min, max);
    auto list = nonEmptyArray(node, field, SG_MAX_RANGES, expected);
    if (!list) return std::unexpected(list.error());
    uint32_t count = 0;
    for (const toml::node& entry : **list) {
      uint64_t lo = 0, hi = 0;
      if (const auto* number = entry.as_integer()) {
        int64_t v = number->get();
        if (v < static_cast<int64_t>(min) || static_cast<uint64_t>(v) > max)
          return bad(entry, field, fmt::format("{} is out of range ({})", v, expected));
        lo = hi = static_cast<uint64_t>(v);
      } else if (const auto* text = entry.as_string()) {
        std::string_view t = text->get();
        auto dash = t.find('-');
        auto first = parseNumber(t.substr(0, dash), max);
        auto last = dash == std::string_view::npos ? first : parseNumber(t.substr(dash + 1), max);
        if (!first || !last || *first < min || *last < min)
          return bad(entry, field,
                     fmt::format("'{}' is not a number or range ({})", printable(t), expected));
        if (*first > *last)
          return bad(entry, field,
                     fmt::format("'{}' runs backwards (LO-HI with LO <= HI)", printable(t)));
        lo = *first;
        hi = *last;
      } else {
        return bad(entry, field, fmt::format("an entry is {} ({})", typeName(entry), expected));
      }
      out[count++] = sg_range{static_cast<uint32_t>(lo), static_cast<uint32_t>(hi)};
    }
    return count;
  }

  std::string source_;
  std::string who_;  // "service 'NAME'", for messages
  uint32_t serviceLine_ = 0;
};

}  // namespace

Result<Policy> parsePolicy(std::string_view text, const std::string& sourceName) {
  // The parser returns its errors as values (TOML_EXCEPTIONS=0); what is
  // left is the standard library running out of memory. Callers get a
  // Result either way: nothing escapes the library as an exception.
  try {
    return PolicyReader(sourceName).read(text);
  } catch (const std::bad_alloc&) {
    return fail(ENOMEM, sourceName + ": out of memory while reading the policy");
  } catch (const std::exception& e) {
    return invalid(sourceName + ": " + e.what());
  }
}

Result<Policy> loadPolicy(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return failErrno(path + ": cannot read the policy file");
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failErrno(path + ": cannot read the policy file");
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    // A policy is a page or two; a path like /dev/zero must not eat memory.
    if (text.size() > kMaxFileSize)
      return invalid(fmt::format("{}: larger than {} bytes (is this the policy file?)", path,
                                 kMaxFileSize));
  }
  return parsePolicy(text, path);
}

Policy defaultPolicy() {
  // What `sockgate run` does without --policy: its own service on both
  // loopback families, every TCP connection of CMD, and flows go direct if
  // it is down rather than failing the application.
  PolicyService builtin;
  builtin.name = "builtin";
  builtin.kind = PolicyService::Kind::Builtin;
  builtin.listen4 = Endpoint::loopback(AF_INET, 0);
  builtin.listen6 = Endpoint::loopback(AF_INET6, 0);
  builtin.priority = kDefaultPriority;
  builtin.failClosed = false;
  Policy policy;
  policy.source = "<default>";
  policy.services.push_back(std::move(builtin));
  return policy;
}

}  // namespace sockgate
