// The user-space half of the service table: what a ServiceSpec becomes in the
// kernel map, and which specs are refused before anything is written.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

#include "engine/preflight.h"
#include "engine/redirect_engine.h"
#include "support/http_server.h"

namespace sockgate {
namespace {

TEST(ServiceTable, ConvertsListenersFlagsAndTag) {
  ServiceSpec spec;
  spec.id = 7;
  spec.name = "dlp";
  spec.listen4 = *Endpoint::parse("127.0.0.1:4000");
  spec.listen6 = *Endpoint::parse("[::1]:4001");
  spec.failClosed = true;
  spec.tag = {9, 8, 7};
  auto s = toKernelService(spec);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->id, 7u);
  EXPECT_EQ(s->flags, SG_SVC_ACTIVE | SG_SVC_FAIL_CLOSED | SG_SVC_LISTEN4 | SG_SVC_LISTEN6);
  EXPECT_EQ(s->listen4_addr, htonl(INADDR_LOOPBACK));
  EXPECT_EQ(s->listen4_port, htons(4000));
  EXPECT_EQ(s->listen6_port, htons(4001));
  EXPECT_EQ(s->listen6_addr[15], 1);
  EXPECT_EQ(s->tag_len, 3u);
  EXPECT_EQ(std::memcmp(s->tag, spec.tag.data(), 3), 0);
}

TEST(ServiceTable, AServiceThatAttachesRecordsSaysSo) {
  ServiceSpec spec;
  spec.id = 1;
  spec.name = "builtin";
  spec.listen4 = *Endpoint::parse("127.0.0.1:4000");
  EXPECT_FALSE(toKernelService(spec)->flags & SG_SVC_ATTACHES_RECORDS);
  spec.attachesRecords = true;
  EXPECT_TRUE(toKernelService(spec)->flags & SG_SVC_ATTACHES_RECORDS);
}

TEST(ServiceTable, RefusesWhatTheHookCouldNotUse) {
  ServiceSpec spec;
  spec.name = "x";
  spec.listen4 = *Endpoint::parse("127.0.0.1:1");
  EXPECT_EQ(toKernelService(spec).error().code, EINVAL) << "id 0";
  spec.id = 1;
  spec.listen4.reset();
  EXPECT_EQ(toKernelService(spec).error().code, EINVAL) << "no listener";
  spec.listen4 = *Endpoint::parse("[::1]:1");
  EXPECT_EQ(toKernelService(spec).error().code, EINVAL) << "v6 as listen4";
  spec.listen4 = *Endpoint::parse("127.0.0.1:1");
  spec.tag.assign(SG_TAG_MAX + 1, 0);
  EXPECT_EQ(toKernelService(spec).error().code, EMSGSIZE);
}

TEST(Mountinfo, FindsCgroup2RootAndUnescapesPaths) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/mountinfo";
  FILE* f = fopen(path.c_str(), "w");
  fputs(
      "25 1 0:23 / /sys rw shared:7 - sysfs sysfs rw\n"
      "40 25 0:35 /sub /mnt/bind rw - cgroup2 cgroup2 rw\n"
      "41 25 0:35 / /sys/fs/cgroup/my\\040cg rw shared:9 - cgroup2 cgroup2 rw,nsdelegate\n",
      f);
  fclose(f);
  auto mount = findCgroup2Mount(path);
  ASSERT_TRUE(mount) << mount.error().message();
  EXPECT_EQ(*mount, "/sys/fs/cgroup/my cg");

  f = fopen(path.c_str(), "w");
  fputs("25 1 0:23 / /sys rw shared:7 - sysfs sysfs rw\n", f);
  fclose(f);
  auto none = findCgroup2Mount(path);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("no cgroup v2 hierarchy"), std::string::npos);
}

}  // namespace
}  // namespace sockgate
