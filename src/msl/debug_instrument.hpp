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

#include "msl/parser.hpp"
#include "msl/text_edits.hpp"

#include <string>
#include <unordered_map>
#include <vector>

namespace metalgpu::msl {

struct DebugChecks {
  TextEdits edits;
  // Per kernel function (its index in structure().definitions()): the buffer arguments whose
  // accesses `arg[i]` by its scalar thread_position_in_grid `i` are proven per share
  // (dbg::sub_grid): the entry checks them before the loop (dbg::prove_grid).
  std::unordered_map<int, std::vector<std::string>> grid_arguments;
};

DebugChecks debug_instrumentation(const SourceModel& model);

}  // namespace metalgpu::msl
