#include "redirect/policy.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "engine/preflight.h"

namespace sockgate {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// The error line for a policy text, or "(valid)".
std::string errorOf(std::string_view text) {
  auto policy = parsePolicy(text, "p.toml");
  if (policy) return "(valid)";
  return policy.error().message();
}

uint64_t inodeOf(const std::string& path) {
  struct stat st{};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_ino;
}

std::string cgroupRoot() {
  auto mount = findCgroup2Mount();
  EXPECT_TRUE(mount) << mount.error().message();
  return mount ? *mount : std::string("/nonexistent-cgroup-mount");
}

sg_prefix prefixOf(int family, const char* addr, uint16_t len) {
  sg_prefix p{};
  p.family = static_cast<uint16_t>(family);
  p.len = len;
  EXPECT_EQ(inet_pton(family, addr, p.addr), 1) << addr;
  return p;
}

void expectPrefix(const sg_prefix& got, const sg_prefix& want) {
  EXPECT_EQ(got.family, want.family);
  EXPECT_EQ(got.len, want.len);
  EXPECT_EQ(std::memcmp(got.addr, want.addr, sizeof got.addr), 0);
}

TEST(Policy, FullValidFile) {
  const std::string root = cgroupRoot();
  const std::string text = fmt::format(R"(# a comment
[[service]]
name = "logger-a"
kind = "builtin"
listen = ["127.0.0.1:7001", "[::1]:7001"]
priority = 10
fail = "open"
tag = "vendor-a"
[service.filter]
destinations = ["10.0.0.0/8", "2001:db8::/32", "127.0.0.1", "::1"]
ports = [80, 443, "8000-8999", "9000"]
protocols = ["tcp"]
uids = [0, "1000-1999"]
gids = ["100-200"]
cgroup = "{0}"
comm = "curl"

[[service]]
name = "haproxy.v2_x"
kind = "external"
listen = ["[::1]:3128"]
priority = -5
fail = "closed"
tag_hex = "00fFa5"
cgroup = "{0}"
attaches_records = true
)",
                                       root);
  auto policy = parsePolicy(text, "full.toml");
  ASSERT_TRUE(policy) << policy.error().message();
  EXPECT_EQ(policy->source, "full.toml");
  ASSERT_EQ(policy->services.size(), 2u);

  // Priority order: the external one (-5) first.
  const PolicyService& ext = policy->services[0];
  EXPECT_EQ(ext.name, "haproxy.v2_x");
  EXPECT_EQ(ext.kind, PolicyService::Kind::External);
  EXPECT_FALSE(ext.listen4);
  ASSERT_TRUE(ext.listen6);
  EXPECT_EQ(ext.listen6->toString(), "[::1]:3128");
  EXPECT_EQ(ext.priority, -5);
  EXPECT_TRUE(ext.failClosed);
  EXPECT_EQ(ext.tag, (std::vector<uint8_t>{0x00, 0xff, 0xa5}));
  EXPECT_EQ(ext.cgroupPath, std::filesystem::canonical(root).string());
  EXPECT_TRUE(ext.attachesRecords);
  EXPECT_EQ(ext.filter.match, 0u) << "no filter: any TCP";
  EXPECT_EQ(ext.line, 18);

  const PolicyService& s = policy->services[1];
  EXPECT_EQ(s.name, "logger-a");
  EXPECT_EQ(s.kind, PolicyService::Kind::Builtin);
  ASSERT_TRUE(s.listen4);
  ASSERT_TRUE(s.listen6);
  EXPECT_EQ(s.listen4->toString(), "127.0.0.1:7001");
  EXPECT_EQ(s.listen6->toString(), "[::1]:7001");
  EXPECT_EQ(s.priority, 10);
  EXPECT_FALSE(s.failClosed);
  EXPECT_EQ(std::string(s.tag.begin(), s.tag.end()), "vendor-a");
  EXPECT_FALSE(s.attachesRecords) << "only an external service says so; the built-in always does";
  EXPECT_EQ(s.line, 2);

  const sg_filter& f = s.filter;
  EXPECT_EQ(f.match, SG_MATCH_PREFIX | SG_MATCH_PORT | SG_MATCH_UID | SG_MATCH_GID |
                         SG_MATCH_CGROUP | SG_MATCH_COMM);
  EXPECT_EQ(f.protocols, SG_PROTO_TCP);
  ASSERT_EQ(f.prefix_count, 4u);
  expectPrefix(f.prefixes[0], prefixOf(AF_INET, "10.0.0.0", 8));
  expectPrefix(f.prefixes[1], prefixOf(AF_INET6, "2001:db8::", 32));
  expectPrefix(f.prefixes[2], prefixOf(AF_INET, "127.0.0.1", 32));
  expectPrefix(f.prefixes[3], prefixOf(AF_INET6, "::1", 128));
  ASSERT_EQ(f.port_count, 4u);
  EXPECT_EQ(f.ports[0].lo, 80u);
  EXPECT_EQ(f.ports[0].hi, 80u);
  EXPECT_EQ(f.ports[1].lo, 443u);
  EXPECT_EQ(f.ports[2].lo, 8000u);
  EXPECT_EQ(f.ports[2].hi, 8999u);
  EXPECT_EQ(f.ports[3].lo, 9000u);
  EXPECT_EQ(f.ports[3].hi, 9000u);
  ASSERT_EQ(f.uid_count, 2u);
  EXPECT_EQ(f.uids[0].lo, 0u);
  EXPECT_EQ(f.uids[0].hi, 0u);
  EXPECT_EQ(f.uids[1].lo, 1000u);
  EXPECT_EQ(f.uids[1].hi, 1999u);
  ASSERT_EQ(f.gid_count, 1u);
  EXPECT_EQ(f.gids[0].lo, 100u);
  EXPECT_EQ(f.gids[0].hi, 200u);
  EXPECT_EQ(f.cgroup_id, inodeOf(root));
  EXPECT_EQ(f.cgroup_level, 0u);
  EXPECT_EQ(std::string(f.comm, sizeof f.comm), std::string("curl") + std::string(12, '\0'));
}

TEST(Policy, InlineFilterTableAndDottedKeysAreTheSameSchema) {
  auto a =
      parsePolicy("[[service]]\nname = \"a\"\nfilter = { ports = [22], comm = \"ssh\" }\n", "a");
  auto b =
      parsePolicy("[[service]]\nname = \"a\"\nfilter.ports = [22]\nfilter.comm = \"ssh\"\n", "b");
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(std::memcmp(&a->services[0].filter, &b->services[0].filter, sizeof(sg_filter)), 0);
  EXPECT_EQ(a->services[0].filter.match, SG_MATCH_PORT | SG_MATCH_COMM);
}

TEST(Policy, BuiltinDefaultsAndOneFamily) {
  auto policy = parsePolicy("[[service]]\nname = \"only\"\n", "d.toml");
  ASSERT_TRUE(policy) << policy.error().message();
  const auto& s = policy->services.at(0);
  EXPECT_EQ(s.kind, PolicyService::Kind::Builtin);
  EXPECT_EQ(s.listen4->toString(), "127.0.0.1:0");
  EXPECT_EQ(s.listen6->toString(), "[::1]:0");
  EXPECT_EQ(s.priority, 100);
  EXPECT_FALSE(s.failClosed);
  EXPECT_TRUE(s.tag.empty());

  auto v6only = parsePolicy("[[service]]\nname = \"x\"\nlisten = [\"[::1]:0\"]\n", "d.toml");
  ASSERT_TRUE(v6only) << v6only.error().message();
  EXPECT_FALSE(v6only->services[0].listen4);
  EXPECT_TRUE(v6only->services[0].listen6);

  auto other = parsePolicy("[[service]]\nname = \"x\"\nlisten = [\"127.0.0.53:7000\"]\n", "d.toml");
  ASSERT_TRUE(other) << other.error().message() << ": all of 127/8 is loopback";
}

TEST(Policy, DefaultPolicyIsTodaysRun) {
  Policy p = defaultPolicy();
  EXPECT_EQ(p.source, "<default>");
  ASSERT_EQ(p.services.size(), 1u);
  const auto& s = p.services[0];
  EXPECT_EQ(s.name, "builtin");
  EXPECT_EQ(s.kind, PolicyService::Kind::Builtin);
  ASSERT_TRUE(s.listen4);
  ASSERT_TRUE(s.listen6);
  EXPECT_EQ(s.listen4->toString(), "127.0.0.1:0");
  EXPECT_EQ(s.listen6->toString(), "[::1]:0");
  EXPECT_EQ(s.priority, 100);
  EXPECT_FALSE(s.failClosed);
  EXPECT_TRUE(s.tag.empty());
  EXPECT_TRUE(s.cgroupPath.empty());
  const sg_filter zero{};
  EXPECT_EQ(std::memcmp(&s.filter, &zero, sizeof zero), 0) << "zero filter: all TCP";

  // The shipped example says the same thing in a file.
  auto file = loadPolicy(std::string(SG_SOURCE_DIR) + "/examples/policies/default.toml");
  ASSERT_TRUE(file) << file.error().message();
  ASSERT_EQ(file->services.size(), 1u);
  const auto& f = file->services[0];
  EXPECT_EQ(f.name, s.name);
  EXPECT_EQ(f.kind, s.kind);
  EXPECT_EQ(f.listen4, s.listen4);
  EXPECT_EQ(f.listen6, s.listen6);
  EXPECT_EQ(f.priority, s.priority);
  EXPECT_EQ(f.failClosed, s.failClosed);
  EXPECT_EQ(f.tag, s.tag);
  EXPECT_EQ(std::memcmp(&f.filter, &zero, sizeof zero), 0);
}

TEST(Policy, ChainExampleIsValid) {
  auto file = loadPolicy(std::string(SG_SOURCE_DIR) + "/examples/policies/chain.toml");
  ASSERT_TRUE(file) << file.error().message();
  ASSERT_EQ(file->services.size(), 3u);
  EXPECT_EQ(file->services[0].name, "logger-a");
  EXPECT_EQ(file->services[1].name, "inspector");
  EXPECT_TRUE(file->services[1].failClosed);
  EXPECT_EQ(file->services[2].name, "audit");
}

TEST(Policy, PriorityOrderIsStable) {
  std::string text;
  // Priorities 30, 10, 30, 10, 20, default(100), 10: ties keep file order.
  const char* spec[][2] = {{"a", "30"}, {"b", "10"},    {"c", "30"}, {"d", "10"},
                           {"e", "20"}, {"f", nullptr}, {"g", "10"}};
  for (auto& [name, priority] : spec) {
    text += fmt::format("[[service]]\nname = \"{}\"\n", name);
    if (priority) text += fmt::format("priority = {}\n", priority);
  }
  auto policy = parsePolicy(text, "order.toml");
  ASSERT_TRUE(policy) << policy.error().message();
  std::string order;
  for (const auto& s : policy->services) order += s.name;
  EXPECT_EQ(order, "bdgeacf");

  // Services written inline share one line; file order still breaks ties.
  auto inlined = parsePolicy(
      "service = [{name = \"x\", priority = 5}, {name = \"y\", priority = 1}, "
      "{name = \"z\", priority = 5}, {name = \"w\", priority = 1}]\n",
      "inline.toml");
  ASSERT_TRUE(inlined) << inlined.error().message();
  order.clear();
  for (const auto& s : inlined->services) order += s.name;
  EXPECT_EQ(order, "ywxz");
}

struct Case {
  const char* text;
  const char* prefix;  // file:line: service: field:
  const char* what;    // a part of the explanation
};

void expectErrors(std::initializer_list<Case> cases) {
  for (const Case& c : cases) {
    std::string message = errorOf(c.text);
    EXPECT_THAT(message, StartsWith(c.prefix)) << c.text;
    EXPECT_THAT(message, HasSubstr(c.what)) << c.text;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
  }
}

TEST(Policy, TopLevelErrors) {
  expectErrors({
      {"", "p.toml:1: service: ", "no services"},
      {"# only a comment\n", "p.toml:1: service: ", "no services"},
      {"service = []\n", "p.toml:1: service: ", "no services"},
      {"service = 3\n", "p.toml:1: service: ", "is an integer"},
      {"\n[service]\nname = \"a\"\n", "p.toml:2: service: ", "write each service as a [[service]]"},
      {"\n\nservices = 1\n", "p.toml:3: services: unknown key", "did you mean 'service'?"},
      {"[[service]]\nname = \"a\"\n[other]\n", "p.toml:3: other: unknown key",
       "expected one of: service"},
  });
}

TEST(Policy, SyntaxErrorsNameLineAndColumn) {
  std::string m = errorOf("[[service]]\nname = \"a\" x\n");
  EXPECT_THAT(m, StartsWith("p.toml:2:12: ")) << m;
  m = errorOf("[[service]]\nname = \"a\"\nname = \"b\"\n");
  EXPECT_THAT(m, StartsWith("p.toml:3:")) << m;  // toml++ itself rejects the redefinition
  m = errorOf("[[service]]\nname = \"unterminated\n");
  EXPECT_THAT(m, StartsWith("p.toml:2:")) << m;
}

// toml++ 3.3.0 reached __builtin_unreachable() on these (found by
// policy_fuzz); the sanitizer build aborts if that ever comes back.
TEST(Policy, NonAsciiAfterValuesIsAnErrorNotUndefinedBehaviour) {
  for (const char* text :
       {"n = 10e\xc5\xa7\n", "[[service]]\nname = \"a\"\npriority = 10\xc2\xa7\n",
        "[[service]]\nname = \"a\"\npriority = 1\xe3\x80\x81\n",
        "[[service]]\nname = \"a\"\npriority = 1\xef\xb8\x80\n"}) {
    EXPECT_THAT(errorOf(text), StartsWith("p.toml:")) << text;
  }
  // Valid TOML: a line-ending backslash, then a non-ASCII character.
  auto tag = parsePolicy("[[service]]\nname = \"a\"\ntag = \"\"\"\\\n  \xc2\xa7\"\"\"\n", "t");
  ASSERT_TRUE(tag) << tag.error().message();
  EXPECT_EQ(tag->services[0].tag, (std::vector<uint8_t>{0xc2, 0xa7}));
}

TEST(Policy, NameKindPriorityFail) {
  expectErrors({
      {"[[service]]\nkind = \"builtin\"\n", "p.toml:1: service #1: name: ", "missing"},
      {"[[service]]\nname = \"a\"\n\n[[service]]\npriority = 1\n",
       "p.toml:4: service #2: name: ", "missing"},
      {"[[service]]\nname = 7\n",
       "p.toml:2: service #1: name: ", "is an integer (expected a string)"},
      {"[[service]]\nname = \"\"\n", "p.toml:2: service #1: name: ", "not a valid name"},
      {"[[service]]\nname = \"has space\"\n", "p.toml:2: service #1: name: ",
       "'has space' is not a valid name (1 to 32 of A-Z a-z 0-9 _ . -)"},
      {"[[service]]\nname = \"abcdefghijklmnopqrstuvwxyz0123456\"\n",
       "p.toml:2: service #1: name: ", "not a valid name"},
      {"[[service]]\nname = \"a/b\"\n", "p.toml:2: service #1: name: ", "not a valid name"},
      {"[[service]]\nname = \"a\"\nkind = \"internal\"\n",
       "p.toml:3: service 'a': kind: ", "'internal' is not a kind (\"builtin\" or \"external\")"},
      {"[[service]]\nname = \"a\"\nkind = 1\n", "p.toml:3: service 'a': kind: ", "is an integer"},
      {"[[service]]\nname = \"a\"\npriority = \"10\"\n",
       "p.toml:3: service 'a': priority: ", "is a string (expected an integer)"},
      {"[[service]]\nname = \"a\"\npriority = 1.5\n",
       "p.toml:3: service 'a': priority: ", "is a float (expected an integer)"},
      {"[[service]]\nname = \"a\"\npriority = 4294967296\n",
       "p.toml:3: service 'a': priority: ", "out of range"},
      {"[[service]]\nname = \"a\"\nfail = \"shut\"\n",
       "p.toml:3: service 'a': fail: ", "'shut' is not a fail mode"},
      {"[[service]]\nname = \"a\"\nfail = true\n", "p.toml:3: service 'a': fail: ", "is a boolean"},
      {"[[service]]\nname = \"a\"\nattaches_records = true\n",
       "p.toml:3: service 'a': attaches_records: ",
       "only for an external service (the built-in service always attaches them)"},
      {"[[service]]\nname = \"a\"\nkind = \"external\"\nlisten = [\"127.0.0.1:1\"]\n"
       "attaches_records = \"yes\"\n",
       "p.toml:5: service 'a': attaches_records: ", "is a string (expected true or false)"},
  });
  EXPECT_EQ(errorOf("[[service]]\nname = \"a\"\nkind = \"external\"\nlisten = "
                    "[\"127.0.0.1:1\"]\nattaches_records = false\n"),
            "(valid)");
  // A name of exactly 32 is fine.
  EXPECT_EQ(errorOf("[[service]]\nname = \"abcdefghijklmnopqrstuvwxyz012345\"\n"), "(valid)");
}

TEST(Policy, DuplicateNames) {
  expectErrors({
      {"[[service]]\nname = \"a\"\n[[service]]\nname = \"b\"\n[[service]]\n\nname = \"a\"\n",
       "p.toml:7: service 'a': name: ", "already the name of the service at line 1"},
  });
}

TEST(Policy, UnknownKeysAnywhere) {
  expectErrors({
      {"[[service]]\nname = \"a\"\nprioriy = 3\n", "p.toml:3: service 'a': prioriy: unknown key",
       "did you mean 'priority'?"},
      // Unknown keys are found before a missing name is.
      {"[[service]]\nnmae = \"a\"\n", "p.toml:2: service #1: nmae: unknown key",
       "did you mean 'name'?"},
      {"[[service]]\nname = \"a\"\n[service.filter]\nport = [1]\n",
       "p.toml:4: service 'a': filter.port: unknown key", "did you mean 'ports'?"},
      {"[[service]]\nname = \"a\"\nfilter.zzzzzzzz = 1\n",
       "p.toml:3: service 'a': filter.zzzzzzzz: unknown key",
       "(expected one of: destinations, ports, protocols, uids, gids, cgroup, comm)"},
      {"[[service]]\nname = \"a\"\n[service.filter.ports]\n",
       "p.toml:3: service 'a': filter.ports: ", "is a table"},
      {"[[service]]\nname = \"a\"\nfilter = \"all\"\n",
       "p.toml:3: service 'a': filter: ", "is a string (expected a table"},
  });
}

TEST(Policy, Listeners) {
  expectErrors({
      {"[[service]]\nname = \"a\"\nlisten = \"127.0.0.1:1\"\n",
       "p.toml:3: service 'a': listen: ", "is a string (expected an array"},
      {"[[service]]\nname = \"a\"\nlisten = []\n", "p.toml:3: service 'a': listen: ", "is empty"},
      {"[[service]]\nname = \"a\"\nlisten = [\n  \"127.0.0.1:1\",\n  7001,\n]\n",
       "p.toml:5: service 'a': listen: ", "an entry is an integer"},
      {"[[service]]\nname = \"a\"\nlisten = [\"localhost:80\"]\n",
       "p.toml:3: service 'a': listen: ", "'localhost:80' is not an address and port"},
      {"[[service]]\nname = \"a\"\nlisten = [\"127.0.0.1\"]\n",
       "p.toml:3: service 'a': listen: ", "not an address and port"},
      {"[[service]]\nname = \"a\"\nlisten = [\"0.0.0.0:80\"]\n",
       "p.toml:3: service 'a': listen: ", "'0.0.0.0:80' is not a loopback address"},
      {"[[service]]\nname = \"a\"\nlisten = [\"[::ffff:127.0.0.1]:80\"]\n",
       "p.toml:3: service 'a': listen: ", "not a loopback address"},
      {"[[service]]\nname = \"a\"\nlisten = [\"[2001:db8::1]:80\"]\n",
       "p.toml:3: service 'a': listen: ", "not a loopback address"},
      {"[[service]]\nname = \"a\"\nlisten = [\"127.0.0.1:1\", \"127.0.0.2:2\"]\n",
       "p.toml:3: service 'a': listen: ", "'127.0.0.2:2' is a second IPv4 listener"},
      {"[[service]]\nname = \"a\"\nlisten = [\"[::1]:1\", \"[::1]:2\"]\n",
       "p.toml:3: service 'a': listen: ", "second IPv6 listener"},
      {"[[service]]\nname = \"e\"\nkind = \"external\"\n",
       "p.toml:1: service 'e': listen: ", "missing (an external service needs"},
      {"[[service]]\nname = \"e\"\nkind = \"external\"\nlisten = [\"127.0.0.1:0\"]\n",
       "p.toml:4: service 'e': listen: ", "port 0 means \"any free port\""},
  });
}

TEST(Policy, SharedListeners) {
  expectErrors({
      {"[[service]]\nname = \"a\"\nlisten = [\"127.0.0.1:7001\", \"[::1]:7001\"]\n"
       "[[service]]\nname = \"b\"\nkind = \"external\"\nlisten = [\"[::1]:7002\",\n"
       "  \"[::1]:7001\"]\n",
       "p.toml:8: service 'b': listen: ",
       "[::1]:7001 is already the listener of service 'a' at line 1"},
  });
  // Port 0 is a fresh port for each built-in service; the same port on
  // another loopback address, or the other family, is another listener.
  EXPECT_EQ(errorOf("[[service]]\nname = \"a\"\n[[service]]\nname = \"b\"\n"
                    "[[service]]\nname = \"c\"\nlisten = [\"127.0.0.1:7001\"]\n"
                    "[[service]]\nname = \"d\"\nlisten = [\"127.0.0.2:7001\", \"[::1]:7001\"]\n"),
            "(valid)");
}

TEST(Policy, TagAndTagHex) {
  const std::string max(SG_TAG_MAX, 'x');
  auto ok = parsePolicy("[[service]]\nname = \"a\"\ntag = \"" + max + "\"\n", "t");
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->services[0].tag.size(), size_t{SG_TAG_MAX});

  std::string hexMax;
  for (int i = 0; i < SG_TAG_MAX; ++i) hexMax += fmt::format("{:02x}", i & 0xff);
  auto hex = parsePolicy("[[service]]\nname = \"a\"\ntag_hex = \"" + hexMax + "\"\n", "t");
  ASSERT_TRUE(hex) << hex.error().message();
  ASSERT_EQ(hex->services[0].tag.size(), size_t{SG_TAG_MAX});
  EXPECT_EQ(hex->services[0].tag[255], 0xff);
  EXPECT_EQ(hex->services[0].tag[256], 0x00);

  // Escapes are bytes too, NUL included.
  auto nul = parsePolicy("[[service]]\nname = \"a\"\ntag = \"a\\u0000b\"\n", "t");
  ASSERT_TRUE(nul) << nul.error().message();
  EXPECT_EQ(nul->services[0].tag, (std::vector<uint8_t>{'a', 0, 'b'}));

  const std::string over = "[[service]]\nname = \"a\"\ntag = \"" + max + "y\"\n";
  const std::string hexOver = "[[service]]\nname = \"a\"\ntag_hex = \"" + hexMax + "00\"\n";
  expectErrors({
      {over.c_str(), "p.toml:3: service 'a': tag: ", "1025 bytes (at most 1024)"},
      {hexOver.c_str(), "p.toml:3: service 'a': tag_hex: ", "1025 bytes (at most 1024)"},
      {"[[service]]\nname = \"a\"\ntag = \"x\"\ntag_hex = \"00\"\n",
       "p.toml:4: service 'a': tag_hex: ", "together with tag"},
      {"[[service]]\nname = \"a\"\ntag_hex = \"abc\"\n",
       "p.toml:3: service 'a': tag_hex: ", "odd number"},
      {"[[service]]\nname = \"a\"\ntag_hex = \"0g\"\n",
       "p.toml:3: service 'a': tag_hex: ", "'g' at offset 1 is not a hex digit"},
      {"[[service]]\nname = \"a\"\ntag_hex = \"0x00\"\n",
       "p.toml:3: service 'a': tag_hex: ", "'x' at offset 1"},
      {"[[service]]\nname = \"a\"\ntag = 5\n", "p.toml:3: service 'a': tag: ", "is an integer"},
      {"[[service]]\nname = \"a\"\ntag_hex = [0]\n",
       "p.toml:3: service 'a': tag_hex: ", "is an array"},
  });
}

TEST(Policy, Destinations) {
  expectErrors({
      {"[[service]]\nname = \"a\"\nfilter.destinations = \"10.0.0.0/8\"\n",
       "p.toml:3: service 'a': filter.destinations: ", "is a string (expected an array"},
      {"[[service]]\nname = \"a\"\nfilter.destinations = []\n",
       "p.toml:3: service 'a': filter.destinations: ", "is empty (leave the key out to match any)"},
      {"[[service]]\nname = \"a\"\n[service.filter]\ndestinations = [\"10.0.0.0/8\",\n"
       "  \"example.org\"]\n",
       "p.toml:5: service 'a': filter.destinations: ",
       "'example.org' is not an address or CIDR prefix"},
      {"[[service]]\nname = \"a\"\nfilter.destinations = [\"10.0.0.0/33\"]\n",
       "p.toml:3: service 'a': filter.destinations: ", "prefix length 33 is too long (at most 32"},
      {"[[service]]\nname = \"a\"\nfilter.destinations = [\"::/129\"]\n",
       "p.toml:3: service 'a': filter.destinations: ", "no valid prefix length"},
      {"[[service]]\nname = \"a\"\nfilter.destinations = [\"10.0.0.0/\"]\n",
       "p.toml:3: service 'a': filter.destinations: ", "no valid prefix length"},
      {"[[service]]\nname = \"a\"\nfilter.destinations = [\"10.0.0.0/x\"]\n",
       "p.toml:3: service 'a': filter.destinations: ", "no valid prefix length"},
      {"[[service]]\nname = \"a\"\nfilter.destinations = [\"10.1.2.3/8\"]\n",
       "p.toml:3: service 'a': filter.destinations: ",
       "'10.1.2.3/8' has host bits set (the network address: \"10.0.0.0/8\")"},
      {"[[service]]\nname = \"a\"\nfilter.destinations = [\"2001:db8::1/32\"]\n",
       "p.toml:3: service 'a': filter.destinations: ", "\"2001:db8::/32\""},
      {"[[service]]\nname = \"a\"\nfilter.destinations = [\"::ffff:10.0.0.0/104\"]\n",
       "p.toml:3: service 'a': filter.destinations: ", "v4-mapped"},
      {"[[service]]\nname = \"a\"\nfilter.destinations = [8]\n",
       "p.toml:3: service 'a': filter.destinations: ", "is an integer"},
      {"[[service]]\nname = \"a\"\nfilter.destinations = [\"1.0.0.0/8\", \"2.0.0.0/8\", "
       "\"3.0.0.0/8\", \"4.0.0.0/8\", \"5.0.0.0/8\", \"6.0.0.0/8\", \"7.0.0.0/8\", \"8.0.0.0/8\",\n"
       "  \"9.0.0.0/8\"]\n",
       "p.toml:4: service 'a': filter.destinations: ", "9 entries (at most 8)"},
  });
  EXPECT_EQ(errorOf("[[service]]\nname = \"a\"\nfilter.destinations = [\"0.0.0.0/0\", \"::/0\", "
                    "\"10.1.2.3/32\", \"2001:db8::1\"]\n"),
            "(valid)");
}

TEST(Policy, PortsUidsGids) {
  expectErrors({
      {"[[service]]\nname = \"a\"\nfilter.ports = 80\n", "p.toml:3: service 'a': filter.ports: ",
       "is an integer (expected an array of integers from 1 to 65535"},
      {"[[service]]\nname = \"a\"\nfilter.ports = []\n",
       "p.toml:3: service 'a': filter.ports: ", "is empty"},
      {"[[service]]\nname = \"a\"\nfilter.ports = [0]\n",
       "p.toml:3: service 'a': filter.ports: ", "0 is out of range (integers from 1 to 65535"},
      {"[[service]]\nname = \"a\"\nfilter.ports = [65536]\n",
       "p.toml:3: service 'a': filter.ports: ", "65536 is out of range"},
      {"[[service]]\nname = \"a\"\nfilter.ports = [-1]\n",
       "p.toml:3: service 'a': filter.ports: ", "-1 is out of range"},
      {"[[service]]\nname = \"a\"\nfilter.ports = [\"90-80\"]\n",
       "p.toml:3: service 'a': filter.ports: ", "'90-80' runs backwards"},
      {"[[service]]\nname = \"a\"\nfilter.ports = [\"0-80\"]\n",
       "p.toml:3: service 'a': filter.ports: ", "'0-80' is not a number or range"},
      {"[[service]]\nname = \"a\"\nfilter.ports = [\"80-70000\"]\n",
       "p.toml:3: service 'a': filter.ports: ", "not a number or range"},
      {"[[service]]\nname = \"a\"\nfilter.ports = [\"80-\"]\n",
       "p.toml:3: service 'a': filter.ports: ", "not a number or range"},
      {"[[service]]\nname = \"a\"\nfilter.ports = [\"http\"]\n",
       "p.toml:3: service 'a': filter.ports: ", "'http' is not a number or range"},
      {"[[service]]\nname = \"a\"\nfilter.ports = [\" 80\"]\n",
       "p.toml:3: service 'a': filter.ports: ", "not a number or range"},
      {"[[service]]\nname = \"a\"\nfilter.ports = [80.0]\n",
       "p.toml:3: service 'a': filter.ports: ", "an entry is a float"},
      {"[[service]]\nname = \"a\"\n[service.filter]\nports = [1, 2, 3, 4,\n 5]\n",
       "p.toml:5: service 'a': filter.ports: ", "5 entries (at most 4)"},
      {"[[service]]\nname = \"a\"\nfilter.uids = [4294967295]\n",
       "p.toml:3: service 'a': filter.uids: ",
       "4294967295 is out of range (integers from 0 to 4294967294"},
      {"[[service]]\nname = \"a\"\nfilter.uids = [1, 2, 3, 4, 5]\n",
       "p.toml:3: service 'a': filter.uids: ", "5 entries (at most 4)"},
      {"[[service]]\nname = \"a\"\nfilter.gids = [\"2-1\"]\n",
       "p.toml:3: service 'a': filter.gids: ", "runs backwards"},
      {"[[service]]\nname = \"a\"\nfilter.gids = [1, 2, 3, 4, 5]\n",
       "p.toml:3: service 'a': filter.gids: ", "5 entries (at most 4)"},
      {"[[service]]\nname = \"a\"\nfilter.gids = [true]\n",
       "p.toml:3: service 'a': filter.gids: ", "an entry is a boolean"},
  });
  auto edges = parsePolicy(
      "[[service]]\nname = \"a\"\nfilter.ports = [1, 65535, \"1-65535\", \"22\"]\n"
      "filter.uids = [0, \"4294967294\"]\n",
      "e");
  ASSERT_TRUE(edges) << edges.error().message();
  EXPECT_EQ(edges->services[0].filter.ports[2].lo, 1u);
  EXPECT_EQ(edges->services[0].filter.ports[2].hi, 65535u);
  EXPECT_EQ(edges->services[0].filter.uids[1].hi, 4294967294u);
}

TEST(Policy, ProtocolsAndComm) {
  expectErrors({
      {"[[service]]\nname = \"a\"\nfilter.protocols = [\"udp\"]\n",
       "p.toml:3: service 'a': filter.protocols: ", "\"udp\" is not supported yet (only \"tcp\""},
      {"[[service]]\nname = \"a\"\nfilter.protocols = [\"tcp\", \"sctp\"]\n",
       "p.toml:3: service 'a': filter.protocols: ", "'sctp' is not a protocol"},
      {"[[service]]\nname = \"a\"\nfilter.protocols = \"tcp\"\n",
       "p.toml:3: service 'a': filter.protocols: ", "is a string (expected an array"},
      {"[[service]]\nname = \"a\"\nfilter.protocols = []\n",
       "p.toml:3: service 'a': filter.protocols: ", "is empty"},
      {"[[service]]\nname = \"a\"\nfilter.comm = \"\"\n",
       "p.toml:3: service 'a': filter.comm: ", "is 0 bytes (1 to 15"},
      {"[[service]]\nname = \"a\"\nfilter.comm = \"0123456789abcdef\"\n",
       "p.toml:3: service 'a': filter.comm: ", "is 16 bytes (1 to 15"},
      {"[[service]]\nname = \"a\"\nfilter.comm = [\"curl\"]\n",
       "p.toml:3: service 'a': filter.comm: ", "is an array"},
  });
  auto comm15 = parsePolicy("[[service]]\nname = \"a\"\nfilter.comm = \"0123456789abcde\"\n", "c");
  ASSERT_TRUE(comm15) << comm15.error().message();
  EXPECT_EQ(comm15->services[0].filter.comm[14], 'e');
  EXPECT_EQ(comm15->services[0].filter.comm[15], '\0');
}

TEST(Policy, TooManyServices) {
  std::string text;
  for (int i = 0; i < SG_MAX_SERVICES; ++i) text += fmt::format("[[service]]\nname = \"s{}\"\n", i);
  auto sixteen = parsePolicy(text, "p.toml");
  ASSERT_TRUE(sixteen) << sixteen.error().message();
  EXPECT_EQ(sixteen->services.size(), size_t{SG_MAX_SERVICES});
  text += "[[service]]\nname = \"one-too-many\"\n";
  EXPECT_EQ(errorOf(text), "p.toml:33: service: 17 services (at most 16)");
}

TEST(Policy, CgroupFilterResolvesToIdAndLevel) {
  const std::string root = cgroupRoot();
  for (const std::string& written : {root, std::string("."), root + "/"}) {
    auto policy = parsePolicy(
        fmt::format("[[service]]\nname = \"a\"\nfilter.cgroup = \"{}\"\n", written), "c");
    ASSERT_TRUE(policy) << written << ": " << policy.error().message();
    EXPECT_EQ(policy->services[0].filter.cgroup_id, inodeOf(root)) << written;
    EXPECT_EQ(policy->services[0].filter.cgroup_level, 0u) << written;
    EXPECT_TRUE(policy->services[0].filter.match & SG_MATCH_CGROUP);
  }
}

TEST(Policy, CgroupPathErrors) {
  const std::string root = cgroupRoot();
  const std::string missing = fmt::format(
      "[[service]]\nname = \"a\"\n[service.filter]\ncgroup = \"sg-no-such-cgroup-{}\"\n", getpid());
  EXPECT_EQ(errorOf(missing),
            fmt::format("p.toml:4: service 'a': filter.cgroup: '{}/sg-no-such-cgroup-{}' does not "
                        "exist (a cgroup directory under {})",
                        root, getpid(), root));
  const std::string outside = "[[service]]\nname = \"a\"\nfilter.cgroup = \"/tmp\"\n";
  const std::string escape = "[[service]]\nname = \"a\"\nfilter.cgroup = \"..\"\n";
  const std::string file =
      "[[service]]\nname = \"a\"\nfilter.cgroup = \"" + root + "/cgroup.procs\"\n";
  const std::string builtin = "[[service]]\nname = \"a\"\ncgroup = \"" + root + "\"\n";
  const std::string extMissing =
      "[[service]]\nname = \"e\"\nkind = \"external\"\nlisten = [\"127.0.0.1:9\"]\n"
      "cgroup = \"/sg/not/there\"\n";
  expectErrors({
      {outside.c_str(),
       "p.toml:3: service 'a': filter.cgroup: ", "'/tmp' is not inside the cgroup v2 hierarchy"},
      {escape.c_str(),
       "p.toml:3: service 'a': filter.cgroup: ", "is not inside the cgroup v2 hierarchy"},
      {file.c_str(), "p.toml:3: service 'a': filter.cgroup: ", "is not a directory"},
      {"[[service]]\nname = \"a\"\nfilter.cgroup = \"\"\n",
       "p.toml:3: service 'a': filter.cgroup: ", "is empty"},
      {"[[service]]\nname = \"a\"\nfilter.cgroup = 1\n",
       "p.toml:3: service 'a': filter.cgroup: ", "is an integer"},
      {builtin.c_str(), "p.toml:3: service 'a': cgroup: ", "only an external service"},
      {extMissing.c_str(), "p.toml:5: service 'e': cgroup: ", "'/sg/not/there' does not exist"},
  });
}

// Deeper cgroups can only be made by root; what they check (the level, and
// the depth limit of the hook) is worth running wherever the tests are root.
class CgroupTree : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = cgroupRoot();
    base_ = fmt::format("{}/sg-policy-test-{}", root_, getpid());
    if (::mkdir(base_.c_str(), 0755) != 0)
      GTEST_SKIP() << "cannot create a cgroup under " << root_ << " (" << std::strerror(errno)
                   << "): deeper levels need root";
    made_.push_back(base_);
  }
  void TearDown() override {
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) ::rmdir(it->c_str());
  }
  std::string nest(int levels) {
    std::string path = base_;
    for (int i = 1; i < levels; ++i) {
      path += "/l" + std::to_string(i + 1);
      EXPECT_EQ(::mkdir(path.c_str(), 0755), 0) << path << ": " << std::strerror(errno);
      made_.push_back(path);
    }
    return path;
  }
  std::string root_;
  std::string base_;
  std::vector<std::string> made_;
};

TEST_F(CgroupTree, LevelCountsFromTheRoot) {
  const std::string deep = nest(3);  // base/l2/l3: level 3
  const std::string relative = deep.substr(root_.size() + 1);
  for (const std::string& written : {deep, relative}) {
    auto policy = parsePolicy(
        fmt::format("[[service]]\nname = \"a\"\nfilter.cgroup = \"{}\"\n", written), "c");
    ASSERT_TRUE(policy) << policy.error().message();
    EXPECT_EQ(policy->services[0].filter.cgroup_id, inodeOf(deep)) << written;
    EXPECT_EQ(policy->services[0].filter.cgroup_level, 3u) << written;
  }
  auto ext = parsePolicy(fmt::format("[[service]]\nname = \"e\"\nkind = \"external\"\n"
                                     "listen = [\"127.0.0.1:9\"]\ncgroup = \"{}\"\n",
                                     relative),
                         "c");
  ASSERT_TRUE(ext) << ext.error().message();
  EXPECT_EQ(ext->services[0].cgroupPath, deep);
}

TEST_F(CgroupTree, DepthLimitOfTheHook) {
  const std::string eight = nest(SG_MAX_CGROUP_DEPTH);
  const std::string seven = eight.substr(0, eight.rfind('/'));
  EXPECT_EQ(errorOf(fmt::format("[[service]]\nname = \"a\"\nfilter.cgroup = \"{}\"\n", seven)),
            "(valid)");
  EXPECT_EQ(errorOf(fmt::format("[[service]]\nname = \"a\"\nfilter.cgroup = \"{}\"\n", eight)),
            fmt::format("p.toml:3: service 'a': filter.cgroup: '{}' is 8 levels deep (at most 7 "
                        "below the cgroup v2 root)",
                        eight));
}

TEST(Policy, LoadPolicyFileErrors) {
  auto missing = loadPolicy("/nonexistent/sg-policy.toml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_EQ(missing.error().message(),
            "/nonexistent/sg-policy.toml: cannot read the policy file: ENOENT (No such file or "
            "directory)");
  auto dir = loadPolicy("/");
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().code, EISDIR);
  auto endless = loadPolicy("/dev/zero");
  ASSERT_FALSE(endless);
  EXPECT_THAT(endless.error().message(), HasSubstr("larger than"));
}

TEST(Policy, ErrorsAreLinesWithoutErrnoSuffix) {
  auto bad = parsePolicy("[[service]]\nname = \"a\"\nfail = \"x\"\n", "p.toml");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, 0);
  EXPECT_EQ(bad.error().message(), bad.error().context);
}

}  // namespace
}  // namespace sockgate
