// Whether this process holds a capability now (effective set): for what it
// may do, not only for what to refuse.
#pragma once

namespace sockgate {

bool hasEffectiveCapability(int cap);

}  // namespace sockgate
