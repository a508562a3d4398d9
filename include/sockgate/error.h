// The one error idiom of the library: functions that talk to the OS return
// Result<T>; the Error says what failed, on which object, and the errno.
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace sockgate {

struct Error {
  int code = 0;         // errno value (or a library code where no errno fits)
  std::string context;  // "connect4 attach to /sys/fs/cgroup/unified/x"

  // "connect4 attach to /sys/fs/cgroup/unified/x: EPERM (Operation not permitted)"
  [[nodiscard]] std::string message() const;
};

template <class T>
using Result = std::expected<T, Error>;

using Status = Result<void>;

// Builds an Error from errno as it is now.
[[nodiscard]] Error errnoError(std::string context);
[[nodiscard]] Error makeError(int code, std::string context);

inline std::unexpected<Error> fail(int code, std::string context) {
  return std::unexpected(makeError(code, std::move(context)));
}
inline std::unexpected<Error> failErrno(std::string context) {
  return std::unexpected(errnoError(std::move(context)));
}

// "EPERM" for EPERM; the number as text for values without a name.
[[nodiscard]] std::string errnoName(int code);

}  // namespace sockgate
