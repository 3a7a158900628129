// Debug mode's vocabulary, for every target: the kinds of access the translator writes into
// its checks (debug_instrument.cpp) and what the checks know of a subscripted type. Each
// target's debug header (mg_cpu_debug.h, mg_cuda_debug.h) then says how an access is judged,
// and mg_debug_access.h holds the checks themselves, written once over those answers.
#pragma once

#if MG_DEBUG

namespace __metalgpu {
namespace dbg {

// quiet: or'ed into `read` for a read between two barriers with no write between them
// (debug_instrument.cpp): no race is possible there, so the race detector is not asked.
enum access_kind : unsigned { address_only = 0, read = 1, write = 2, read_write = 3, quiet = 4 };

MG_FN const char* access_word(unsigned kind) {
  kind &= read_write;
  return kind == write ? "write" : kind == read_write ? "read-write" : kind == read ? "read" : "address";
}

// Arrays whose extent the type says: C arrays and metal::array.
template <class T> struct static_extent {
  static constexpr size_t value = 0;
  static constexpr bool known = false;
};
template <class T, size_t N> struct static_extent<T[N]> {
  static constexpr size_t value = N;
  static constexpr bool known = true;
};
template <class T, size_t N> struct static_extent<metal::array<T, N>> {
  static constexpr size_t value = N;
  static constexpr bool known = true;
};
template <class T> struct is_void_type : metal::false_type {};
template <> struct is_void_type<void> : metal::true_type {};
template <> struct is_void_type<const void> : metal::true_type {};
// A function type ignores const: `const F` is not const.
template <class T> struct is_function_type : metal::bool_constant<!metal::is_const<const T>::value> {};
template <class T> struct is_function_type<T&> : metal::false_type {};

template <class I> MG_FN constexpr long long index_value(const I& i) {
  using J = metal::remove_cvref_t<I>;
  if constexpr (metal::is_integral<J>::value || __is_enum(J)) return (long long)i;
  else return 0;
}

}  // namespace dbg
}  // namespace __metalgpu

#endif  // MG_DEBUG
