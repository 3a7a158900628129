#include "bindings/bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "metalgpu native core";
  m.attr("__version__") = metalgpu::version();
  metalgpu::bindings::init_errors(m);
  metalgpu::bindings::init_buffer(m);
  metalgpu::bindings::init_interface(m);
  metalgpu::bindings::init_texture(m);
}
