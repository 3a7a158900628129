// Work-item loops (cpu target): a kernel whose barriers sit in structured control flow runs
// each stretch of code between barriers as a loop over the threadgroup's threads, instead of
// running every thread as a fiber switched at each barrier (the technique of MCUDA and PoCL).
//
// The kernel's body is rewritten in place (its signature is unchanged, so instantiations and
// entry points stay as they are):
//   - a run of statements without barriers (a region) becomes `for each live thread { ... }`;
//   - a barrier ends a region (the loops themselves order the threads);
//   - `if`, `for`, `while` and `do` whose bodies hold barriers run at group level: their
//     conditions are evaluated per thread into a mask, and the regions inside run the threads
//     the mask selects (break, continue and return clear a thread's bit);
//   - variables declared at group level and used in a later region are kept per thread
//     (arrays indexed by the thread), the per-thread built-ins re-bound in every region;
//   - a statement (or `if` condition) with one SIMD-group call records each thread's inputs,
//     then computes the call once per SIMD group (mg_cpu_wil.h);
//   - simdgroup_load / store / multiply(_accumulate) run once per SIMD group on every lane's
//     elements (mg_simdgroup_matrix.h);
//   - a free helper that synchronises, called as a whole statement with the kernel's arguments
//     and built-ins, runs as a copy of itself rewritten the same way (placed after it).
// Anything else - member functions that synchronise, barriers inside expressions, `switch`,
// declarations it cannot read - leaves the kernel to the fibers.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "msl/parser.hpp"
#include "msl/text_edits.hpp"

namespace metalgpu::msl {

struct WorkItemLoops {
  TextEdits edits;  // statement-level: written outside every other edit of a token
  TextEdits inner;  // inside expressions: written inside the translator's and debug mode's
  std::vector<bool> kernels;  // per SourceModel kernel: runs as work-item loops
  std::vector<std::string> fibers_because;  // per cooperative kernel left to fibers: why, and where
};

// For the `selected` kernels that cooperate. Read by the translator's cpu emission;
// `prior_before` is the text it writes before tokens (the conditionals' conversions), which
// the copies of helpers rewritten for a kernel's use repeat. `debug`: debug mode's checks
// (debug_instrument.hpp), kept through the rewrite (a kernel whose rewrite would change a
// token they edit stays on fibers).
WorkItemLoops work_item_loops(const SourceModel& model, const std::vector<bool>& selected,
                              const std::unordered_map<std::size_t, std::string>* prior_before = nullptr,
                              const TextEdits* debug = nullptr);

// False when METALGPU_CPU_FIBERS is set and not "0": every cooperative kernel runs as fibers
// (to compare the two, or to step around a problem in the rewrite). Unset, a module whose
// rewritten code the compiler refuses is built again with fibers; "0" reports that error.
bool work_item_loops_enabled();

}  // namespace metalgpu::msl
