// Debug mode's checks, the calls the translator writes around every subscript, `*p` and `p->`
// (debug_instrument.cpp), for every target. What they ask of the target's debug header
// (mg_cpu_debug.h, mg_cuda_debug.h), which comes first:
// - pointer_ok(file, line, expr, kind, base, at, size): may `size` bytes at `at`, reached
//   through a pointer whose base was `base`, be accessed? (false: a fault is recorded);
// - index_out_of_range(file, line, expr, kind, index, extent): record that fault;
// - array_element(file, line, expr, kind, at, size): an element of an array of known extent,
//   in bounds, is accessed (the cpu backend's race detector looks at it);
// - alignment_ok(file, line, expr, kind, at, size, align): is an access at `at` aligned as
//   the target needs (false: a fault is recorded)?
// - sink<T>(): where a failed access goes instead;
// - region, within(r, base, at, size, align, kind): a kernel's buffer argument looked up once,
//   and whether an access stays in it, aligned as the target needs (a fast path; false sends
//   the access to the full check);
// - grid_proven(): accesses `arg[i]` by the grid position are proven for this share.
#pragma once

#if MG_DEBUG

namespace __metalgpu {
namespace dbg {

// x[i]: a pointer, a C array, a metal::array - or anything else with an operator[] (vectors,
// matrices, user classes), which is not checked here.
template <class X, class I>
constexpr decltype(auto) sub(const char* file, int line, const char* expr, unsigned kind, X&& x, I&& i) {
  using D = metal::remove_cvref_t<X>;
  if constexpr (metal::is_pointer<D>::value) {
    using T = metal::remove_pointer_t<D>;
    if (!__builtin_is_constant_evaluated()) {
      T* at = x + i;
      // (C casts: a volatile pointer - a device atomic's - is checked like any other.)
      if (!pointer_ok(file, line, expr, kind, (const void*)x, (const void*)at, sizeof(T)) ||
          !alignment_ok(file, line, expr, kind, (const void*)at, sizeof(T), alignof(T)))
        return sink<T>();
      return *at;
    }
    return x[i];
  } else if constexpr (static_extent<D>::known) {
    constexpr size_t n = static_extent<D>::value;
    using E = metal::remove_reference_t<decltype(x[i])>;
    if (!__builtin_is_constant_evaluated()) {
      const long long k = index_value(i);
      const bool ok = kind == address_only ? k >= 0 && (unsigned long long)k <= n
                                           : k >= 0 && (unsigned long long)k < n;
      if (!ok) {
        index_out_of_range(file, line, expr, kind, k, n);
        return sink<E>();
      }
      if (kind != address_only && !(kind & quiet) && (unsigned long long)k < n)
        array_element(file, line, expr, kind, (const void*)&x[i], sizeof(E));
    }
    return x[i];
  } else {
    return static_cast<X&&>(x)[static_cast<I&&>(i)];
  }
}

// Through a kernel's buffer argument `x`, looked up at the kernel's start as `r`: an access
// that stays inside it takes a few comparisons; any other the full check.
template <class X, class I>
constexpr decltype(auto) sub_in(const region* r, const char* file, int line, const char* expr, unsigned kind, X&& x,
                                I&& i) {
  using D = metal::remove_cvref_t<X>;
  if constexpr (metal::is_pointer<D>::value) {
    if (!__builtin_is_constant_evaluated()) {
      auto* at = x + i;
      using T = metal::remove_pointer_t<D>;
      if (within(r, (const void*)x, (const void*)at, sizeof(T), alignof(T), kind)) return *at;
    }
  }
  return sub(file, line, expr, kind, static_cast<X&&>(x), static_cast<I&&>(i));
}

// `arg[i]` with `arg` a buffer argument and `i` the kernel's scalar thread_position_in_grid:
// `base` and `index` are the argument and the position as the kernel received them, and an
// access through them is the one grid_proven() covers (where the kernel leaves both names
// alone, the compiler sees the comparisons are true and drops them; where not, they keep the
// access honest).
template <class B, class J, class X, class I>
constexpr decltype(auto) sub_grid(const region* r, const B& base, const J& index, const char* file, int line,
                                  const char* expr, unsigned kind, X&& x, I&& i) {
  using D = metal::remove_cvref_t<X>;
  if constexpr (metal::is_pointer<D>::value && metal::is_pointer<B>::value &&
                metal::is_integral<metal::remove_cvref_t<I>>::value) {
    if constexpr (sizeof(metal::remove_pointer_t<D>) <= sizeof(metal::remove_pointer_t<B>)) {
      if (!__builtin_is_constant_evaluated() && grid_proven() && (const void*)x == (const void*)base &&
          (unsigned long long)i == (unsigned long long)index)
        return x[i];
    }
  }
  return sub_in(r, file, line, expr, kind, static_cast<X&&>(x), static_cast<I&&>(i));
}

// *p and p->m: the pointer itself, checked; anything else (an iterator, a class with its own
// operator* or ->) as it is.
template <class P> constexpr decltype(auto) ptr(const char* file, int line, const char* expr, unsigned kind, P&& p) {
  using D = metal::remove_cvref_t<P>;
  if constexpr (metal::is_pointer<D>::value && !is_void_type<metal::remove_cv_t<metal::remove_pointer_t<D>>>::value &&
                !is_function_type<metal::remove_pointer_t<D>>::value) {
    using T = metal::remove_pointer_t<D>;
    if (!__builtin_is_constant_evaluated() &&
        (!pointer_ok(file, line, expr, kind, (const void*)p, (const void*)p, sizeof(T)) ||
         !alignment_ok(file, line, expr, kind, (const void*)p, sizeof(T), alignof(T))))
      return &sink<T>();
    return D(p);
  } else {
    return static_cast<P&&>(p);
  }
}

template <class P>
constexpr decltype(auto) ptr_in(const region* r, const char* file, int line, const char* expr, unsigned kind, P&& p) {
  using D = metal::remove_cvref_t<P>;
  if constexpr (metal::is_pointer<D>::value && !is_void_type<metal::remove_cv_t<metal::remove_pointer_t<D>>>::value &&
                !is_function_type<metal::remove_pointer_t<D>>::value) {
    using T = metal::remove_pointer_t<D>;
    if (!__builtin_is_constant_evaluated() && within(r, (const void*)p, (const void*)p, sizeof(T), alignof(T), kind))
      return D(p);
  }
  return ptr(file, line, expr, kind, static_cast<P&&>(p));
}

}  // namespace dbg
}  // namespace __metalgpu

#endif  // MG_DEBUG
