// Reading compiler diagnostics: finds "error" lines and the file and line they name, for
// both GCC/Clang ("file:12:5: error: text") and NVRTC ("file(12): error: text").
#pragma once

#include <string>

namespace metalgpu {

struct Diagnostic {
  std::string file;
  int line = 0;
  int column = 0;
  std::string text;  // after "error: "
  bool found = false;
};

// The first error that names a user file (one not under "metal_stdlib/"), else the first
// error at all; `found` is false when the log holds no recognisable error line.
Diagnostic first_error(const std::string& log);

}  // namespace metalgpu
