// UniqueFd is public (the service SDK hands sockets out); kept here so
// internal code includes it the way it always has.
#pragma once

#include "sockgate/unique_fd.h"
