// Edits to a SourceModel's tokens, applied when the translator writes them out: how the
// passes that rewrite function bodies (debug checks, work-item loops) change the program
// without re-parsing it.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>

namespace metalgpu::msl {

struct TextEdits {
  std::unordered_map<std::size_t, std::string> before;   // written before token i
  std::unordered_map<std::size_t, std::string> replace;  // token i written as this instead
  std::unordered_map<std::size_t, std::string> after;    // written after token i
};

}  // namespace metalgpu::msl
