// The example service's HTTP/1 sniffer on arbitrary first bytes: never reads
// outside them, and what it returns points inside them.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "http_sniff.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<char> bytes(data, data + size);
  http_request_head head;
  const int verdict = http_sniff_request(bytes.data(), bytes.size(), &head);
  const char* begin = bytes.data();
  const char* end = begin + bytes.size();
  if (verdict == 1) {
    if (head.line != begin || head.line + head.line_len > end) std::abort();
    if (head.host && (head.host < begin || head.host + head.host_len > end)) std::abort();
  } else if (verdict != 0 && verdict != -1) {
    std::abort();
  }
  return 0;
}
