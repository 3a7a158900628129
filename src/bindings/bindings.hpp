// pybind11 layer: one init_<area>() per file, gathered in module.cpp. Thin: conversions
// between Python objects and the C++ API, nothing more.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "metalgpu/metalgpu.hpp"

namespace py = pybind11;

namespace metalgpu::bindings {

void init_errors(py::module_& m);

// An int argument: a Python int or anything with __index__ (numpy integers), not a bool.
// TypeError naming `what` ("[run_function] grid dimension") for anything else; ValueError
// naming the range [lo, hi] when the value is outside it (however large: no OverflowError).
std::uint64_t checked_int(py::handle v, const std::string& what, std::uint64_t lo, std::uint64_t hi);
void init_buffer(py::module_& m);
void init_interface(py::module_& m);

// The bytes of a C-contiguous buffer-protocol object (bytes, bytearray, memoryview, numpy),
// held for the object's lifetime; writable when asked (PyBUF_WRITABLE).
class HostBytes {
 public:
  HostBytes(py::handle obj, bool writable, const char* where);
  ~HostBytes() { PyBuffer_Release(&view_); }
  HostBytes(const HostBytes&) = delete;
  HostBytes& operator=(const HostBytes&) = delete;
  void* data() const { return view_.buf; }
  std::size_t size() const { return std::size_t(view_.len); }

 private:
  Py_buffer view_{};
};

// The Python-side Buffer: the C++ handle plus what only Python needs.
struct PyBuffer {
  Buffer buffer;
  py::object interface_ref;  // weakref to the Interface (or None)
  py::object contents_cache; // the numpy view handed out by .contents
  int interface_device = 0;  // device index, for DLPack
  std::string backend;       // "cpu", "cuda" or "metal": where the memory lives
  std::shared_ptr<Allocation> exported;  // memory handed out through __array_interface__
  py::object view_dtype;     // numpy dtype .contents presents (structured arrays), or None
  void drop_cache() { contents_cache = py::none(); }
};

void init_interop(py::class_<PyBuffer>& cls);

// The Python-side Texture: the C++ handle plus its cached numpy view.
struct PyTexture {
  Texture texture;
  py::object interface_ref;
  py::object contents_cache;
  void drop_cache() { contents_cache = py::none(); }
};
void init_texture(py::module_& m);
// textures=[...] / samplers=[...] of run_function (None items leave the slot empty).
std::vector<Texture> to_textures(py::object list);
std::vector<std::optional<Sampler>> to_samplers(py::object list);

// The base object of a numpy view: holds the memory and counts as a live host view (which
// GPU backends use to decide when kernels' writes must reach the host).
py::capsule view_owner(const std::shared_ptr<Allocation>& alloc);

// A numpy array aliasing the buffer's memory and keeping that memory alive.
py::object make_contents(PyBuffer& b);

// Drops the cached .contents array when nothing but the cache holds it.
void drop_unused_view(PyBuffer& b);

}  // namespace metalgpu::bindings
