#include <pybind11/numpy.h>

#include "bindings/bindings.hpp"
#include "core/backend.hpp"

namespace metalgpu::bindings {
namespace {

const char* numpy_format(Scalar s) {
  switch (s) {
    case Scalar::boolean: return "?";
    case Scalar::int8: return "i1";
    case Scalar::uint8: return "u1";
    case Scalar::int16: return "i2";
    case Scalar::uint16: return "u2";
    case Scalar::int32: return "i4";
    case Scalar::uint32: return "u4";
    case Scalar::int64: return "i8";
    case Scalar::uint64: return "u8";
    case Scalar::float16: return "f2";
    case Scalar::bfloat16: return "u2";  // raw bfloat16 bits
    case Scalar::float32: return "f4";
    case Scalar::float64: return "f8";
  }
  return "u1";
}

py::dtype numpy_dtype(const DType& d) { return py::dtype(numpy_format(d.scalar)); }

// memoryview(buf): export the numpy view's buffer, so the memoryview keeps that view - and
// through it the memory - alive even if the Buffer is released meanwhile.
int buffer_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  try {
    auto& b = py::cast<PyBuffer&>(py::handle(self));
    py::object arr = make_contents(b);
    return PyObject_GetBuffer(arr.ptr(), view, flags);
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  }
  view->obj = nullptr;
  return -1;
}

// Element layout of the numpy side: (count,) or (count, lanes); 3-lane vectors are stored
// with a fourth padding lane, as in Metal.
std::vector<py::ssize_t> storage_shape(const Buffer& buf) {
  DType d = buf.dtype();
  std::vector<py::ssize_t> shape{py::ssize_t(buf.count())};
  if (d.lanes > 1) shape.push_back(d.lanes == 3 ? 4 : d.lanes);
  return shape;
}

py::object readback(PyBuffer& b) {
  DType d = b.buffer.dtype();
  py::array out(numpy_dtype(d), storage_shape(b.buffer));
  b.buffer.readback(out.mutable_data(), b.buffer.nbytes());
  if (b.view_dtype && !b.view_dtype.is_none()) return out.attr("view")(b.view_dtype);
  if (d.lanes == 3) return out[py::make_tuple(py::ellipsis(), py::slice(0, 3, 1))].attr("copy")();
  return out;
}

}  // namespace

py::capsule view_owner(const std::shared_ptr<Allocation>& alloc) {
  alloc->view_opened();
  auto* keep = new std::shared_ptr<Allocation>(alloc);
  return py::capsule(keep, [](void* p) {
    auto* a = static_cast<std::shared_ptr<Allocation>*>(p);
    (*a)->view_closed();
    delete a;
  });
}

py::object make_contents(PyBuffer& b) {
  void* ptr = b.buffer.contents();  // throws if released or private; syncs device -> host
  if (!b.contents_cache.is_none()) return b.contents_cache;
  auto alloc = b.buffer.allocation();
  DType d = b.buffer.dtype();
  // The array's base owns a reference to the memory, and counts as a live host view.
  py::capsule owner = view_owner(alloc);
  std::vector<py::ssize_t> shape{py::ssize_t(b.buffer.count())};
  std::vector<py::ssize_t> strides{py::ssize_t(d.size())};
  if (d.lanes > 1) {
    shape.push_back(d.lanes);
    strides.push_back(py::ssize_t(d.scalar_size()));
  }
  py::object arr = py::array(numpy_dtype(d), shape, strides, ptr, owner);
  if (b.view_dtype && !b.view_dtype.is_none()) arr = arr.attr("view")(b.view_dtype);
  b.contents_cache = arr;
  return arr;
}

void drop_unused_view(PyBuffer& b) {
  // Only our cache holds the array: no host view is alive, so kernels need not copy to it.
  if (!b.contents_cache.is_none() && Py_REFCNT(b.contents_cache.ptr()) == 1) b.drop_cache();
}

void init_buffer(py::module_& m) {
  py::class_<PyBuffer> cls(m, "Buffer", py::buffer_protocol(),
                           "Memory shared between the host and kernels. `.contents` is a numpy view of it.");
  auto* heap = reinterpret_cast<PyHeapTypeObject*>(cls.ptr());
  heap->as_buffer.bf_getbuffer = buffer_getbuffer;
  heap->as_buffer.bf_releasebuffer = nullptr;

  init_interop(cls);
  cls.def_property_readonly("contents", &make_contents,
                            "numpy array aliasing the buffer memory (no copy), writable")
      .def("release", [](PyBuffer& b) {
        b.drop_cache();
        b.buffer.release();
      }, "Frees the buffer; later use raises ValueError. Views taken earlier stay valid.")
      .def_property_readonly("released", [](const PyBuffer& b) { return b.buffer.released(); },
                             "True after release() (or once the buffer's Interface is gone).")
      .def_property_readonly("count", [](const PyBuffer& b) { return b.buffer.count(); },
                             "Number of elements (a float4 counts as one); len(buf).")
      .def("__len__", [](const PyBuffer& b) { return b.buffer.count(); }, "Number of elements, as .count.")
      .def_property_readonly("nbytes", [](const PyBuffer& b) { return b.buffer.nbytes(); },
                             "Size in bytes (a 3-lane vector takes four lanes, as in Metal).")
      .def_property_readonly("dtype", [](const PyBuffer& b) -> py::object {
        if (b.view_dtype && !b.view_dtype.is_none()) return b.view_dtype;
        return numpy_dtype(b.buffer.dtype());
      }, "The numpy dtype of one lane (float32 for float and float4; uint16 holding raw bfloat bits), or "
         "the record dtype of a buffer made from a structured array.")
      .def("_set_view_dtype", [](PyBuffer& b, py::object dtype) {
        b.view_dtype = dtype;
        b.drop_cache();
      }, "Presents the bytes as records of the numpy `dtype` (array_to_buffer of a structured array).")
      .def_property_readonly("metal_type", [](const PyBuffer& b) { return b.buffer.dtype().name(); },
                             "The element type as Metal spells it: \"float\", \"int4\", \"half\" ...")
      .def_property_readonly("storage", [](const PyBuffer& b) {
        return b.buffer.storage() == Storage::shared ? "shared" : "private";
      }, "\"shared\" (host-visible, .contents works) or \"private\" (device only).")
      .def_property_readonly("interface", [](const PyBuffer& b) -> py::object {
        if (b.interface_ref.is_none()) return py::none();
        return b.interface_ref();
      }, "The Interface that made the buffer, or None once it is gone.")
      // Raw transfers; metalgpu/_transfers.py builds upload/readback/copy_to's conversions on them.
      .def("_readback", &readback, "A copy of the whole buffer as a new numpy array.")
      .def("_write", [](PyBuffer& b, py::handle data, std::size_t offset) {
        HostBytes bytes(data, false, "[Buffer.upload]");
        b.buffer.upload(bytes.data(), bytes.size(), offset);
      }, py::arg("data"), py::arg("offset"), "Writes the bytes of `data` at byte `offset`.")
      .def("_read_into", [](PyBuffer& b, py::handle out, std::size_t offset) {
        HostBytes bytes(out, true, "[Buffer.readback]");
        b.buffer.readback(bytes.data(), bytes.size(), offset);
      }, py::arg("out"), py::arg("offset"), "Fills `out` with the bytes from byte `offset` on.")
      .def("_copy_to", [](PyBuffer& b, py::handle other) {
        if (py::isinstance<PyBuffer>(other)) return b.buffer.copy_to(other.cast<PyBuffer&>().buffer);
        if (py::isinstance<PyTexture>(other)) {
          auto& t = other.cast<PyTexture&>();
          b.buffer.copy_to(t.texture);
          return;
        }
        throw TypeMismatch("[Buffer.copy_to] the destination must be a Buffer or a Texture; got " +
                           py::str(py::type::of(other).attr("__name__")).cast<std::string>() +
                           " (numpy arrays: buf.readback(out=array))");
      }, py::arg("other"), "Copies into a Buffer (same count and dtype) or a Texture (its bytes).")
      .def("__repr__", [](const PyBuffer& b) {
        return "<metalgpu.Buffer " + std::to_string(b.buffer.count()) + " x " + b.buffer.dtype().name() +
               (b.buffer.released() ? " (released)>" : ">");
      }, "<metalgpu.Buffer count x metal_type>.");
}

}  // namespace metalgpu::bindings
