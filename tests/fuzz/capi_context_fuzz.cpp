// sg_parse_redirect_context on arbitrary bytes: never reads outside the
// blob, and a tag it returns always lies inside the blob.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "sockgate/sockgate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> blob(data, data + size);  // exact size: ASan sees overreads
  sg_redirect_context_info info;
  if (sg_parse_redirect_context(blob.data(), blob.size(), &info) == 0) {
    if (info.tag_len &&
        (info.tag < blob.data() || info.tag + info.tag_len > blob.data() + blob.size()))
      std::abort();
    if (info.origin_comm[sizeof info.origin_comm - 1] != '\0') std::abort();
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < info.tag_len; i++) sink = sink ^ info.tag[i];
  }
  return 0;
}
