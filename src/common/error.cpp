#include "sockgate/error.h"

#include <cerrno>
#include <cstring>

namespace sockgate {

std::string errnoName(int code) {
  // strerrorname_np is glibc >= 2.32; Debian 12 ships 2.36.
  if (const char* name = strerrorname_np(code)) return name;
  return std::to_string(code);
}

std::string Error::message() const {
  std::string out = context;
  if (code != 0) {
    out += ": ";
    out += errnoName(code);
    out += " (";
    out += std::strerror(code);
    out += ")";
  }
  return out;
}

Error errnoError(std::string context) { return Error{errno, std::move(context)}; }

Error makeError(int code, std::string context) { return Error{code, std::move(context)}; }

}  // namespace sockgate
