// Plain-text tables the CLI prints: columns padded to their widest cell,
// two spaces apart, no trailing padding.
#pragma once

#include <string>
#include <vector>

namespace sockgate::cli {

// rows[0] is the header; every row has the same number of cells. Each line
// ends with a newline.
std::string alignColumns(const std::vector<std::vector<std::string>>& rows);

}  // namespace sockgate::cli
