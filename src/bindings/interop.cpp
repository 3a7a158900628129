// Zero-copy interop: DLPack (__dlpack__/__dlpack_device__), __cuda_array_interface__ and
// __array_interface__. Every export keeps the buffer's memory alive for as long as the
// consumer holds it.
#include <pybind11/numpy.h>

#include "bindings/bindings.hpp"
#include "core/backend.hpp"

namespace metalgpu::bindings {
namespace {

// DLPack's C ABI (dlpack.h, v0.8+), declared here to avoid a header dependency.
struct DLDevice { std::int32_t device_type; std::int32_t device_id; };
struct DLDataType { std::uint8_t code; std::uint8_t bits; std::uint16_t lanes; };
struct DLTensor {
  void* data;
  DLDevice device;
  std::int32_t ndim;
  DLDataType dtype;
  std::int64_t* shape;
  std::int64_t* strides;
  std::uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor*);
};
enum { kDLCPU = 1, kDLCUDA = 2, kDLMetal = 8 };
enum { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4, kDLBool = 6 };

struct Export {
  std::shared_ptr<Allocation> alloc;
  std::int64_t shape[2];
  std::int64_t strides[2];
  DLManagedTensor tensor;
};

// Where a consumer should read the buffer: the device copy on GPU backends (the memory kernels
// use), else host memory.
int dl_device_type(const PyBuffer& b) {
  if (b.backend == "cuda") return kDLCUDA;
  if (b.backend == "metal" && !b.buffer.allocation()->host) return kDLMetal;  // private MTLBuffer
  return kDLCPU;
}

DLDataType dl_type(const DType& d) {
  std::uint8_t bits = std::uint8_t(d.scalar_size() * 8);
  if (d.scalar == Scalar::boolean) return {kDLBool, 8, 1};
  if (d.scalar == Scalar::bfloat16) return {kDLBfloat, 16, 1};
  if (d.is_float()) return {kDLFloat, bits, 1};
  return {std::uint8_t(d.is_signed() ? kDLInt : kDLUInt), bits, 1};
}

std::string typestr(const DType& d) {
  if (d.scalar == Scalar::boolean) return "|b1";
  char kind = d.is_float() && d.scalar != Scalar::bfloat16 ? 'f' : d.is_signed() ? 'i' : 'u';
  return std::string(d.scalar_size() == 1 ? "|" : "<") + kind + std::to_string(d.scalar_size());
}

py::tuple shape_of(const Buffer& b) {
  if (b.dtype().lanes > 1) return py::make_tuple(b.count(), int(b.dtype().lanes));
  return py::make_tuple(b.count());
}

py::object strides_of(const Buffer& b) {
  DType d = b.dtype();
  if (d.lanes != 3) return py::none();  // C-contiguous
  return py::make_tuple(d.size(), d.scalar_size());
}

py::capsule dlpack(PyBuffer& b, py::args, py::kwargs) {
  auto alloc = b.buffer.allocation();  // throws if released
  const int type = dl_device_type(b);
  const bool gpu = type != kDLCPU;
  if (gpu) alloc->device_will_be_shared();
  else alloc->host_will_access();
  auto* e = new Export{alloc, {}, {}, {}};
  DType d = b.buffer.dtype();
  e->shape[0] = std::int64_t(b.buffer.count());
  e->shape[1] = d.lanes;
  e->strides[0] = std::int64_t(d.lanes == 3 ? 4 : d.lanes);
  e->strides[1] = 1;
  DLTensor& t = e->tensor.dl_tensor;
  t.data = gpu ? alloc->device : alloc->host;
  t.device = {type, gpu ? b.interface_device : 0};
  t.ndim = d.lanes > 1 ? 2 : 1;
  t.dtype = dl_type(d);
  t.shape = e->shape;
  t.strides = e->strides;
  t.byte_offset = 0;
  e->tensor.manager_ctx = e;
  e->tensor.deleter = [](DLManagedTensor* m) { delete static_cast<Export*>(m->manager_ctx); };
  return py::capsule(&e->tensor, "dltensor", [](PyObject* cap) {
    // Still named "dltensor": no consumer took it, so we delete it.
    if (PyCapsule_IsValid(cap, "dltensor")) {
      auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
      m->deleter(m);
    } else {
      PyErr_Clear();
    }
  });
}

}  // namespace

void init_interop(py::class_<PyBuffer>& cls) {
  cls.def("__dlpack__", &dlpack, "DLPack export: np.from_dlpack(buf), torch.from_dlpack(buf) share the memory.")
      .def("__dlpack_device__", [](PyBuffer& b) {
        const int type = dl_device_type(b);
        return py::make_tuple(type, type == kDLCPU ? 0 : b.interface_device);
      }, "(device type, device index) of the memory, as DLPack names them (kDLCPU, kDLCUDA).")
      .def_property_readonly("__cuda_array_interface__", [](PyBuffer& b) -> py::dict {
        auto alloc = b.buffer.allocation();
        if (b.backend != "cuda")
          throw py::attribute_error("__cuda_array_interface__: this buffer is not in GPU memory");
        alloc->device_will_be_shared();
        py::dict d;
        d["shape"] = shape_of(b.buffer);
        d["typestr"] = typestr(b.buffer.dtype());
        d["data"] = py::make_tuple(reinterpret_cast<std::uintptr_t>(alloc->device), false);
        d["strides"] = strides_of(b.buffer);
        d["version"] = 3;
        d["stream"] = py::none();  // synchronised before the export
        return d;
      }, "CUDA Array Interface (version 3) of a cuda-backend buffer: CuPy, Numba, PyTorch share the "
         "device memory. AttributeError on other backends.")
      .def_property_readonly("__array_interface__", [](PyBuffer& b) -> py::dict {
        void* host = b.buffer.contents();  // host-visible storage only
        // numpy keeps this Buffer as the array's base: hold the memory with it, so even a
        // later release() cannot free what that array points at.
        b.exported = b.buffer.allocation();
        py::dict d;
        d["shape"] = shape_of(b.buffer);
        d["typestr"] = typestr(b.buffer.dtype());
        d["data"] = py::make_tuple(reinterpret_cast<std::uintptr_t>(host), false);
        d["strides"] = strides_of(b.buffer);
        d["version"] = 3;
        return d;
      }, "numpy's array interface of host-visible memory: np.asarray(buf) shares it (the array keeps "
         "the memory alive).");
}

}  // namespace metalgpu::bindings
