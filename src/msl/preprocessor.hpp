// MSL preprocessor: a complete C preprocessor (C++14 flavour, with the C++20 and GNU
// variadic extensions real kernels use). Output keeps `#line` markers so every token maps
// back to the user's file and line.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace metalgpu::msl {

struct PreprocessOptions {
  std::vector<std::string> include_dirs;
  // NAME -> replacement ("" = empty); "NAME(a,b)" defines a function-like macro.
  std::vector<std::pair<std::string, std::string>> defines;
  // Set by the translator, e.g. {"__METAL_VERSION__", "310"}; defined before `defines`.
  std::vector<std::pair<std::string, std::string>> predefined;
  // Headers that resolve to the built-in runtime and are simply dropped. Default (when
  // empty): any <metal_*> (metal_stdlib, metal_math, ...) and any <simd/*>.
  std::function<bool(std::string_view header)> is_builtin_header;
};

struct PreprocessResult {
  std::string text;                // expanded source with `#line N "file"` markers
  std::vector<std::string> files;  // every file read (for cache keys), the main one first
};

// `path` is the shader's path as the user gave it ("" or "<string>" for a string source).
// Throws metalgpu::CompileError ("<file>:<line>: error: <what>") for every user error.
PreprocessResult preprocess(std::string_view source, const std::string& path,
                            const PreprocessOptions& options);

// The default is_builtin_header rule.
bool is_default_builtin_header(std::string_view header);

}  // namespace metalgpu::msl
