#include "core/diagnostics.hpp"

#include <cctype>
#include <sstream>

namespace metalgpu {
namespace {

bool digits(const std::string& s, std::size_t b, std::size_t e) {
  if (b >= e) return false;
  for (std::size_t i = b; i < e; ++i)
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

// Parses one line; false if it is not an error diagnostic.
bool parse(const std::string& line, Diagnostic& d) {
  std::size_t err = line.find(": error: ");
  std::size_t skip = 9;
  if (err == std::string::npos) {
    err = line.find(": fatal error: ");
    skip = 15;
  }
  if (err == std::string::npos) {
    err = line.find(": catastrophic error: ");
    skip = 22;
  }
  if (err == std::string::npos) return false;
  std::string where = line.substr(0, err);
  d = Diagnostic{};
  d.text = line.substr(err + skip);
  if (!where.empty() && where.back() == ')') {  // NVRTC: file(line)
    std::size_t open = where.rfind('(');
    if (open == std::string::npos || !digits(where, open + 1, where.size() - 1)) return false;
    d.file = where.substr(0, open);
    d.line = std::stoi(where.substr(open + 1, where.size() - open - 2));
  } else {  // GCC/Clang: file:line[:column]
    std::size_t c2 = where.rfind(':');
    if (c2 == std::string::npos) return false;
    std::size_t c1 = where.rfind(':', c2 - 1);
    if (c1 != std::string::npos && c2 > 0 && digits(where, c1 + 1, c2) && digits(where, c2 + 1, where.size())) {
      d.file = where.substr(0, c1);
      d.line = std::stoi(where.substr(c1 + 1, c2 - c1 - 1));
      d.column = std::stoi(where.substr(c2 + 1));
    } else if (digits(where, c2 + 1, where.size())) {
      d.file = where.substr(0, c2);
      d.line = std::stoi(where.substr(c2 + 1));
    } else {
      return false;
    }
  }
  d.found = true;
  return true;
}

}  // namespace

Diagnostic first_error(const std::string& log) {
  std::istringstream in(log);
  std::string line;
  Diagnostic first, d;
  while (std::getline(in, line)) {
    if (line.size() > 4096 || !parse(line, d)) continue;
    if (d.file.rfind("metal_stdlib/", 0) != 0) return d;
    if (!first.found) first = d;
  }
  return first;
}

}  // namespace metalgpu
