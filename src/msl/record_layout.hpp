// Struct members keep Metal's layout on every target. Metal aligns a vector member to its size
// (a float4 to 16 bytes, a float3 too), and host code lays out argument structs that way. The cpu
// runtime's vectors are aligned only like their elements (mg_vector.h: Apple GPUs load a float4
// from any 4-byte aligned address, and C++ compilers fault on that for a 16-byte aligned type),
// so the translation writes the layout alignment on each data member instead:
// `float a; float4 b;` becomes `float a; alignas(::metal::mg_layout_align<float4>) float4 b;`.
// A no-op where the type's alignment already is Metal's (scalars, pointers, CUDA's vectors).
#pragma once

#include <cstddef>
#include <vector>

#include "msl/lexer.hpp"
#include "msl/structure.hpp"

namespace metalgpu::msl {

// A non-static data member declaration whose type is spelled by tokens [type_begin, type_end):
// the declarator's name follows. Pointer and reference members, bit-fields and members whose
// type cannot be told from the tokens are left out (their alignment is already C++'s).
struct MemberType {
  std::size_t type_begin;
  std::size_t type_end;
  // A member of an anonymous struct (`union { struct { half d; half m; }; half2 dm; }`, ggml's
  // blocks): GCC allows no member with a constructor there (the class half has some).
  bool in_anonymous_struct = false;
};

std::vector<MemberType> record_member_types(const Lexed& lexed, const Structure& structure);

}  // namespace metalgpu::msl
