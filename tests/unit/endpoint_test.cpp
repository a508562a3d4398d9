#include "sockgate/endpoint.h"

#include <gtest/gtest.h>

namespace sockgate {
namespace {

TEST(Endpoint, ParsesAndPrintsBothFamilies) {
  EXPECT_EQ(Endpoint::parse("127.0.0.1:80")->toString(), "127.0.0.1:80");
  EXPECT_EQ(Endpoint::parse("[::1]:443")->toString(), "[::1]:443");
  EXPECT_EQ(Endpoint::parse("[::ffff:10.0.0.1]:22")->toString(), "[::ffff:10.0.0.1]:22");
  EXPECT_EQ(Endpoint::parse("[::1]:443")->family(), AF_INET6);
  EXPECT_EQ(Endpoint::parse("10.1.2.3:65535")->port(), 65535);
}

TEST(Endpoint, RejectsMalformedText) {
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "::1:80", "[::1]80",
                          "[::1]:x", "host.example:80", "1.2.3.4:-1"})
    EXPECT_FALSE(Endpoint::parse(bad)) << bad;
}

TEST(Endpoint, AbiRoundTrip) {
  for (const char* text : {"192.0.2.7:8080", "[2001:db8::1]:53"}) {
    auto ep = *Endpoint::parse(text);
    EXPECT_EQ(Endpoint::fromAbi(ep.toAbi()), ep) << text;
  }
  EXPECT_EQ(Endpoint::loopback(AF_INET, 5).toString(), "127.0.0.1:5");
  EXPECT_EQ(Endpoint::loopback(AF_INET6, 5).toString(), "[::1]:5");
  EXPECT_EQ(Endpoint().toString(), "-");
}

}  // namespace
}  // namespace sockgate
