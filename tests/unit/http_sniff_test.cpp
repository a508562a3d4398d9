// The example service's HTTP/1 sniffer: what it recognises, when it waits
// for more bytes, and what it refuses.
#include "http_sniff.h"

#include <gtest/gtest.h>

#include <string>

namespace {

struct Sniffed {
  int verdict;
  std::string line, host;
  bool hasHost;
};

Sniffed sniff(const std::string& bytes) {
  http_request_head head{};
  Sniffed s{http_sniff_request(bytes.data(), bytes.size(), &head), {}, {}, false};
  if (head.line) s.line.assign(head.line, head.line_len);
  if (head.host) {
    s.host.assign(head.host, head.host_len);
    s.hasHost = true;
  }
  return s;
}

TEST(HttpSniff, RequestLineAndHost) {
  auto s =
      sniff("GET /index.html HTTP/1.1\r\nUser-Agent: curl\r\nHoST: \t example.org:8080 \r\n\r\n");
  EXPECT_EQ(s.verdict, 1);
  EXPECT_EQ(s.line, "GET /index.html HTTP/1.1");
  EXPECT_EQ(s.host, "example.org:8080");
  s = sniff("POST /x HTTP/1.0\nHost: a\n\n");  // bare LF line ends
  EXPECT_EQ(s.verdict, 1);
  EXPECT_EQ(s.line, "POST /x HTTP/1.0");
  EXPECT_EQ(s.host, "a");
}

TEST(HttpSniff, WaitsForMoreUntilItCanDecide) {
  EXPECT_EQ(sniff("").verdict, 0);
  EXPECT_EQ(sniff("GE").verdict, 0);
  EXPECT_EQ(sniff("GET /a").verdict, 0);
  EXPECT_EQ(sniff("GET /a HTTP/1.1\r\nAccept: */*\r\n").verdict, 0) << "Host may still come";
  auto s = sniff("GET /a HTTP/1.1\r\nAccept: */*\r\n\r\n");
  EXPECT_EQ(s.verdict, 1);
  EXPECT_FALSE(s.hasHost);
}

TEST(HttpSniff, RefusesWhatIsNotHttp1) {
  EXPECT_EQ(sniff("\x16\x03\x01\x02\x00").verdict, -1) << "a TLS ClientHello";
  EXPECT_EQ(sniff("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").verdict, -1);
  EXPECT_EQ(sniff("GET /a HTTP/1.1 extra\r\n").verdict, -1);
  EXPECT_EQ(sniff("GET  HTTP/1.1\r\n").verdict, -1);
  EXPECT_EQ(sniff(" GET / HTTP/1.1\r\n").verdict, -1);
  EXPECT_EQ(sniff("SSH-2.0-OpenSSH_9.2\r\n").verdict, -1);
  EXPECT_EQ(sniff(std::string(HTTP_SNIFF_MAX, 'A')).verdict, -1) << "no line end in the window";
  http_request_head head;
  EXPECT_EQ(http_sniff_request(nullptr, 0, &head), -1);
}

TEST(HttpSniff, AFullWindowWithoutHostStillGivesTheLine) {
  std::string req = "GET /big HTTP/1.1\r\nX-Pad: " + std::string(HTTP_SNIFF_MAX, 'p');
  auto s = sniff(req);
  EXPECT_EQ(s.verdict, 1);
  EXPECT_EQ(s.line, "GET /big HTTP/1.1");
  EXPECT_FALSE(s.hasHost);
}

}  // namespace
