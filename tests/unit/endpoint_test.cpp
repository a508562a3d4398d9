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

TEST(Endpoint, UnmappedTurnsV4MappedIntoIpv4) {
  auto mapped = Endpoint::parse("[::ffff:10.1.2.3]:443")->unmapped();
  EXPECT_EQ(mapped.family(), AF_INET);
  EXPECT_EQ(mapped.toString(), "10.1.2.3:443");
  EXPECT_EQ(mapped, *Endpoint::parse("10.1.2.3:443"));
  for (const char* asIs : {"127.0.0.1:80", "[::1]:8080", "[2001:db8::ffff:a01:203]:1"}) {
    auto ep = *Endpoint::parse(asIs);
    EXPECT_EQ(ep.unmapped(), ep) << asIs;
  }
  EXPECT_TRUE(Endpoint().unmapped().empty());
}

TEST(Endpoint, AddressBytesRoundTrip) {
  auto v4 = *Endpoint::parse("192.0.2.7:8080");
  const std::array<uint8_t, 16> v4Bytes{192, 0, 2, 7};
  EXPECT_EQ(v4.addressBytes(), v4Bytes);
  EXPECT_EQ(Endpoint::fromAddressBytes(AF_INET, v4Bytes, 8080), v4);
  auto v6 = *Endpoint::parse("[2001:db8::1]:53");
  const std::array<uint8_t, 16> v6Bytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(v6.addressBytes(), v6Bytes);
  EXPECT_EQ(Endpoint::fromAddressBytes(AF_INET6, v6Bytes, 53), v6);
  // Without a port: an IPsec SA's outer address.
  EXPECT_EQ(Endpoint::fromAddressBytes(AF_INET, v4Bytes).toString(), "192.0.2.7:0");
  // IPv4 takes only the first 4 bytes.
  EXPECT_EQ(Endpoint::fromAddressBytes(AF_INET, v6Bytes).address(), "32.1.13.184");
  EXPECT_EQ(Endpoint::fromAddressBytes(AF_INET, v6Bytes).addressBytes()[4], 0);
  EXPECT_TRUE(Endpoint::fromAddressBytes(AF_UNSPEC, v4Bytes).empty());
  const std::array<uint8_t, 16> none{};
  EXPECT_EQ(Endpoint().addressBytes(), none);
}

TEST(Endpoint, AnyAddressIsTheWildcardOfEitherFamily) {
  EXPECT_TRUE(Endpoint::parse("0.0.0.0:0")->isAnyAddress());
  EXPECT_TRUE(Endpoint::parse("0.0.0.0:53")->isAnyAddress());
  EXPECT_TRUE(Endpoint::parse("[::]:53")->isAnyAddress());
  EXPECT_FALSE(Endpoint::parse("127.0.0.1:0")->isAnyAddress());
  EXPECT_FALSE(Endpoint::parse("[::1]:0")->isAnyAddress());
  EXPECT_FALSE(Endpoint().isAnyAddress());
}

}  // namespace
}  // namespace sockgate
