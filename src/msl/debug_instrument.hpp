// Debug mode's rewrite of a program (cpu target): every subscript, `*p` and `p->m` inside a
// function body goes through the runtime's checks (src/runtime/mg_cpu_debug.h), told the
// .metal line, the expression's text and whether the access reads or writes; threadgroup
// variables declared in a kernel are made known to the race detector.
//
// Syntax decides what is an access (there is no type information here): declarators
// (`float a[4]`, `T* p[2]`, `int a, *b;`), casts and anything ambiguous are left alone, so the
// rewrite never turns a program that compiles into one that does not; an access it leaves
// alone is simply not checked.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>

#include "msl/parser.hpp"

namespace metalgpu::msl {

// Text edits on a SourceModel's tokens, applied at emission.
struct TextEdits {
  std::unordered_map<std::size_t, std::string> before;   // written before token i
  std::unordered_map<std::size_t, std::string> replace;  // token i written as this instead
  std::unordered_map<std::size_t, std::string> after;    // written after token i
};

TextEdits debug_instrumentation(const SourceModel& model);

}  // namespace metalgpu::msl
