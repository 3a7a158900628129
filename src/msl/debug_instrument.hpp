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

namespace metalgpu::msl {

TextEdits debug_instrumentation(const SourceModel& model);

}  // namespace metalgpu::msl
