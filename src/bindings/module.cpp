#include "bindings/bindings.hpp"

// Whether this build has AddressSanitizer (CMake's METALGPU_SANITIZE=ON): the tests that
// need the sanitizer, or cannot run under it, ask _core._sanitized.
#if defined(__SANITIZE_ADDRESS__)
#  define MG_SANITIZED true
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define MG_SANITIZED true
#  endif
#endif
#ifndef MG_SANITIZED
#  define MG_SANITIZED false
#endif

PYBIND11_MODULE(_core, m) {
  m.doc() = "metalgpu native core";
  m.attr("__version__") = metalgpu::version();
  m.attr("_sanitized") = MG_SANITIZED;
  metalgpu::bindings::init_errors(m);
  metalgpu::bindings::init_buffer(m);
  metalgpu::bindings::init_interface(m);
  metalgpu::bindings::init_texture(m);
}
