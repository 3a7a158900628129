// Integer division by zero (cpu target): on a GPU `x / 0` and `x % 0` give an unspecified
// value and the kernel goes on; on x86 they trap (SIGFPE) and end the process. Real kernels
// compute such values and never use them (ggml's flash attention takes `iq2 % ne32` of a mask
// it does not have) - which a compiler may drop as dead code, or not, depending on how the
// kernel was rewritten. So the divisor of every `/`, `%`, `/=` and `%=` in a function body is
// wrapped in MG_NZ(...): on the cpu backend ::__metalgpu::nz(), which turns an integer 0 into
// 1 (floats pass unchanged; a constant divisor folds away, so `i / 4` is still a shift);
// nothing on CUDA (no trap there). Debug mode wraps them the same way: a GPU gives a value too,
// and a fault would report ggml's unused quotients as bugs.
//
// Syntax decides the divisor (a cast-expression: prefix operators, a primary, its postfix
// chain); where it cannot be told, the division is left as it is. The SourceModel applies the
// wrap to its tokens, so every later rewrite sees it.
#pragma once

#include <cstddef>
#include <vector>

namespace metalgpu::msl {

class SourceModel;

struct Division {
  std::size_t op;    // the `/`, `%`, `/=` or `%=`
  std::size_t last;  // the divisor's last token (it starts right after `op`)
};

std::vector<Division> divisions(const SourceModel& model);

}  // namespace metalgpu::msl
