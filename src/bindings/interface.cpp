#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <limits>

#include "bindings/bindings.hpp"

namespace metalgpu::bindings {
namespace {

std::uint32_t dimension(py::handle v, const char* what) {
  // thread_position_in_grid and the threadgroup sizes are 32-bit in Metal (uint3).
  return std::uint32_t(checked_int(v, std::string("[run_function] ") + what + " dimension", 1, 0xffffffffu));
}

// int | (x,) | (x, y) | (x, y, z) | MetalSize
Size3 to_size(py::handle obj, const char* what) {
  if (PyLong_Check(obj.ptr()) && !PyBool_Check(obj.ptr())) return {dimension(obj, what), 1, 1};
  static py::object np_integer = py::module_::import("numpy").attr("integer");
  if (py::isinstance(obj, np_integer)) return {dimension(obj, what), 1, 1};
  if (py::isinstance<Size3>(obj)) return obj.cast<Size3>();
  // numpy integers; not arrays, which have __index__ too but fail it when not 0-d
  if (PyIndex_Check(obj.ptr()) && !PyBool_Check(obj.ptr()) && !py::isinstance<py::array>(obj))
    return {dimension(obj, what), 1, 1};
  if (py::isinstance<py::tuple>(obj) || py::isinstance<py::list>(obj)) {
    py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
    if (seq.size() < 1 || seq.size() > 3)
      throw std::invalid_argument(std::string("[run_function] ") + what + " must have 1 to 3 dimensions; got " +
                                  std::to_string(seq.size()));
    Size3 s;
    s.width = dimension(seq[0], what);
    if (seq.size() > 1) s.height = dimension(seq[1], what);
    if (seq.size() > 2) s.depth = dimension(seq[2], what);
    return s;
  }
  throw TypeMismatch(std::string("[run_function] ") + what + " must be an int, a tuple of 1-3 ints or a MetalSize; got " +
                     py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
}

Binding to_binding(py::handle item, std::size_t i) {
  if (item.is_none()) return Binding::none();
  // The Buffer type, looked up once: this runs for every argument of every dispatch.
  static PyTypeObject* const buffer_type = reinterpret_cast<PyTypeObject*>(py::type::of<PyBuffer>().ptr());
  if (PyObject_TypeCheck(item.ptr(), buffer_type)) {
    auto& b = item.cast<PyBuffer&>();
    drop_unused_view(b);
    return Binding::of(b.buffer);
  }
  if (PyBool_Check(item.ptr())) return Binding::of_bool(item.ptr() == Py_True);
  if (PyLong_Check(item.ptr())) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(item.ptr(), &overflow);
    if (overflow == 0) return Binding::of_int(v);
    if (overflow > 0) {
      unsigned long long u = PyLong_AsUnsignedLongLong(item.ptr());
      if (!PyErr_Occurred()) return Binding::of_uint(u);
      PyErr_Clear();
    }
    throw std::invalid_argument("[run_function] buffers[" + std::to_string(i) + "]: the int " +
                                py::str(item).cast<std::string>() + " does not fit 64 bits");
  }
  if (PyFloat_Check(item.ptr())) return Binding::of_float(PyFloat_AsDouble(item.ptr()));
  if (PyBytes_Check(item.ptr()) || PyByteArray_Check(item.ptr()))
    return Binding::of_bytes(py::bytes(py::reinterpret_borrow<py::object>(item)).cast<std::string>());
  static py::object generic = py::module_::import("numpy").attr("generic");
  if (py::isinstance(item, generic)) {
    std::string kind = item.attr("dtype").attr("kind").cast<std::string>();
    if (kind == "b") return Binding::of_bool(item.attr("item")().cast<bool>());
    if (kind == "i" || kind == "u") return to_binding(item.attr("item")(), i);
    if (kind == "f") return Binding::of_float(item.attr("item")().cast<double>());
    return Binding::of_bytes(item.attr("tobytes")().cast<std::string>());
  }
  // A numpy array or a list is the commonest slip: say how to make a Buffer of it.
  std::string hint;
  static py::object ndarray = py::module_::import("numpy").attr("ndarray");
  if (py::isinstance(item, ndarray) || PyList_Check(item.ptr()) || PyTuple_Check(item.ptr()))
    hint = " (make a Buffer of it with iface.array_to_buffer(...))";
  throw TypeMismatch("[run_function] buffers[" + std::to_string(i) +
                     "] must be a Buffer, None, an int, a float, bytes or a numpy scalar; got " +
                     py::str(py::type::of(item).attr("__name__")).cast<std::string>() + hint);
}

ConstantValue to_constant(py::handle v, const std::string& key) {
  if (PyBool_Check(v.ptr())) return {v.ptr() == Py_True};
  static py::object generic = py::module_::import("numpy").attr("generic");
  if (py::isinstance(v, generic)) return to_constant(v.attr("item")(), key);
  if (PyLong_Check(v.ptr())) {
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
    if (overflow == 0) return {std::int64_t(x)};
    return {std::uint64_t(v.cast<unsigned long long>())};
  }
  if (PyFloat_Check(v.ptr())) return {PyFloat_AsDouble(v.ptr())};
  throw TypeMismatch("[set_function] constant '" + key + "' must be a bool, int or float; got " +
                     py::str(py::type::of(v).attr("__name__")).cast<std::string>());
}

std::string define_value(py::handle v) {
  if (v.is_none()) return "";
  if (PyBool_Check(v.ptr())) return v.ptr() == Py_True ? "1" : "0";
  return py::str(v).cast<std::string>();
}

ShaderOptions to_options(py::object include_dirs, py::object defines) {
  ShaderOptions o;
  if (!include_dirs.is_none()) {
    if (py::isinstance<py::str>(include_dirs))
      throw TypeMismatch("[load_shader] include_dirs must be a sequence of paths, not a str");
    for (auto d : include_dirs) o.include_dirs.push_back(py::str(py::module_::import("os").attr("fspath")(d)));
  }
  if (!defines.is_none()) {
    if (!py::isinstance<py::dict>(defines)) throw TypeMismatch("[load_shader] defines must be a dict {name: value}");
    for (auto [k, v] : py::reinterpret_borrow<py::dict>(defines)) {
      if (!py::isinstance<py::str>(k)) throw TypeMismatch("[load_shader] define names must be str");
      o.defines.emplace_back(k.cast<std::string>(), define_value(v));
    }
  }
  return o;
}

// run_function's body. Bound twice: as _core.Interface.run_function (keyword arguments
// through pybind11), and as the positional _run that metalgpu.Interface.run_function calls -
// pybind11 spends about a microsecond matching keyword arguments, as much as a GPU launch.
Run run_function(Interface& self, py::handle grid, py::object buffers, py::object function_name, bool wait,
                 py::object threadgroup, py::object threadgroup_memory, py::object textures, py::object samplers) {
  Size3 g = to_size(grid, "grid");
  DispatchOptions o;
  o.wait = wait;
  if (!threadgroup.is_none()) o.threadgroup = to_size(threadgroup, "threadgroup");
  if (!function_name.is_none()) o.function = function_name.cast<std::string>();
  if (!threadgroup_memory.is_none()) {
    if (!py::isinstance<py::dict>(threadgroup_memory))
      throw TypeMismatch("[run_function] threadgroup_memory must be a dict {index: nbytes}");
    for (auto [k, v] : py::reinterpret_borrow<py::dict>(threadgroup_memory)) {
      auto index = checked_int(k, "[run_function] threadgroup_memory index", 0, 30);
      auto bytes = checked_int(v, "[run_function] threadgroup_memory[" + std::to_string(index) + "] (bytes)", 0,
                               std::numeric_limits<std::size_t>::max());
      o.threadgroup_memory.emplace_back(int(index), std::size_t(bytes));
    }
  }
  o.textures = to_textures(textures);
  o.samplers = to_samplers(samplers);
  if (!PyList_Check(buffers.ptr()) && !PyTuple_Check(buffers.ptr()))
    throw TypeMismatch("[run_function] buffers must be a list; got " +
                       py::str(py::type::of(buffers).attr("__name__")).cast<std::string>());
  // A list or a tuple: its items are read in place.
  const std::size_t count = std::size_t(PySequence_Fast_GET_SIZE(buffers.ptr()));
  PyObject** items = PySequence_Fast_ITEMS(buffers.ptr());
  if (count > 31)
    throw std::invalid_argument("[run_function] " + std::to_string(count) +
                                " buffers given; Metal has 31 buffer slots (0..30)");
  std::vector<Binding> bindings;
  bindings.reserve(count);
  for (std::size_t i = 0; i < count; ++i) bindings.push_back(to_binding(items[i], i));
  // A dispatch that waits, or runs on this machine's cores, lets other Python threads run;
  // a queued GPU dispatch returns in microseconds, less than releasing the GIL costs.
  if (wait || self.backend() == "cpu") {
    py::gil_scoped_release nogil;
    return self.run_function(g, bindings, o);
  }
  return self.run_function(g, bindings, o);
}

}  // namespace

HostBytes::HostBytes(py::handle obj, bool writable, const char* where) {
  if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) != 0) {
    PyErr_Clear();
    throw TypeMismatch(std::string(where) + " needs " + (writable ? "a writable" : "a") +
                       " C-contiguous bytes-like object; got " +
                       py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
  }
}

void init_interface(py::module_& m) {
  py::class_<DeviceInfo>(m, "DeviceInfo", "A device metalgpu can run kernels on.")
      .def_readonly("name", &DeviceInfo::name, "The device's name (\"NVIDIA H100 80GB HBM3\", the CPU model, ...).")
      .def_readonly("backend", &DeviceInfo::backend, "\"metal\", \"cuda\" or \"cpu\".")
      .def_readonly("index", &DeviceInfo::index, "The device's index within its backend (Interface(device=...)).")
      .def_readonly("memory", &DeviceInfo::memory, "Device memory in bytes (cpu: the machine's RAM).")
      .def_readonly("max_threads_per_threadgroup", &DeviceInfo::max_threads_per_threadgroup,
                    "The most threads one threadgroup may have (before a kernel's own limit).")
      .def_readonly("simd_width", &DeviceInfo::simd_width, "Threads per SIMD group (threads_per_simdgroup).")
      .def_readonly("max_threadgroup_memory", &DeviceInfo::max_threadgroup_memory,
                    "Bytes of threadgroup memory one threadgroup may use.")
      .def("__repr__", [](const DeviceInfo& d) {
        return "<DeviceInfo " + d.backend + ":" + std::to_string(d.index) + " '" + d.name + "'>";
      }, "<DeviceInfo backend:index 'name'>");

  py::class_<Size3>(m, "MetalSize", "A grid or threadgroup size in threads: MetalSize(width, height=1, depth=1).")
      .def(py::init([](py::handle w, py::handle h, py::handle d) {
             return Size3{dimension(w, "MetalSize"), dimension(h, "MetalSize"), dimension(d, "MetalSize")};
           }),
           py::arg("width"), py::arg("height") = 1, py::arg("depth") = 1,
           "Each dimension an int from 1 to 2**32-1 (TypeError for other types, ValueError outside).")
      .def_readwrite("width", &Size3::width, "Threads along x.")
      .def_readwrite("height", &Size3::height, "Threads along y.")
      .def_readwrite("depth", &Size3::depth, "Threads along z.")
      .def("__iter__", [](const Size3& s) { return py::iter(py::make_tuple(s.width, s.height, s.depth)); },
           "(width, height, depth): `w, h, d = size`.")
      .def("__eq__", [](const Size3& a, const Size3& b) {
        return a.width == b.width && a.height == b.height && a.depth == b.depth;
      }, "Equal when all three dimensions are.")
      .def("__repr__", [](const Size3& s) {
        return "MetalSize(" + std::to_string(s.width) + ", " + std::to_string(s.height) + ", " +
               std::to_string(s.depth) + ")";
      }, "MetalSize(width, height, depth).");

  py::class_<Run>(m, "Run", "The result of run_function: .wait(), .done, .gpu_time (seconds).")
      .def("wait", [](const Run& r) { py::gil_scoped_release nogil; r.wait(); },
           "Blocks until the dispatch has finished (other Python threads run meanwhile). Raises what the "
           "dispatch raised (KernelFault in debug mode, RuntimeError for a device failure).")
      .def_property_readonly("done", &Run::done, "True once the dispatch has finished; does not wait.")
      .def_property_readonly("gpu_time", &Run::gpu_time,
                             "Seconds the dispatch took on the device, once done: device timestamps when "
                             "Interface.profiling is on (GPU backends), else measured on the host.");

  py::class_<Interface>(m, "Interface", py::dynamic_attr(),
                        "The native Interface: one device, its loaded shader library, current function and "
                        "buffers. metalgpu.Interface adds load_shader, create_buffer, array_to_buffer, wrap "
                        "and batch in Python.")
      .def(py::init([](py::object backend, int device, bool debug) {
             return new Interface(backend.is_none() ? std::string() : backend.cast<std::string>(), device, debug);
           }),
           py::arg("backend") = py::none(), py::arg("device") = 0, py::arg("debug") = false,
           "backend: \"metal\", \"cuda\", \"cpu\" or None ($METALGPU_BACKEND, else the first of metal > cuda > "
           "cpu that runs here); device: its index within the backend; debug: debug mode (also "
           "METALGPU_DEBUG=1). ValueError for an unknown backend or device index, RuntimeError for a "
           "backend that cannot run here.")
      .def_property_readonly("debug", &Interface::debug, "True when debug mode is on (bounds, race and barrier checks).")
      .def_property_readonly("backend", &Interface::backend, "\"metal\", \"cuda\" or \"cpu\".")
      .def_property_readonly("device", &Interface::device, "The DeviceInfo of this Interface's device.")
      .def("_load_source", [](Interface& self, const std::string& source, const std::string& path,
                              py::object include_dirs, py::object defines) {
        ShaderOptions o = to_options(include_dirs, defines);
        py::gil_scoped_release nogil;
        self.load_shader_from_string(source, o, path);
      }, "Loads MSL `source` (str or bytes) as the shader library; `path` names it in errors and resolves "
         "relative includes. load_shader and load_shader_from_string call it.")
      .def("set_function", [](Interface& self, const std::string& name, py::object constants) {
        Constants c;
        if (!constants.is_none()) {
          if (!py::isinstance<py::dict>(constants))
            throw TypeMismatch("[set_function] constants must be a dict {index_or_name: value}");
          for (auto [k, v] : py::reinterpret_borrow<py::dict>(constants)) {
            std::string key = py::str(k).cast<std::string>();
            c.emplace_back(key, to_constant(v, key));
          }
        }
        py::gil_scoped_release nogil;
        self.set_function(name, c);
      }, py::arg("name"), py::kw_only(), py::arg("constants") = py::none(),
         "Makes kernel `name` of the loaded library the current function, compiling it (cached on disk). "
         "constants: {index_or_name: bool|int|float} for [[function_constant(n)]] declarations. ValueError "
         "for an unknown name or no library loaded; CompileError when the kernel does not compile.")
      .def("function_names", &Interface::function_names,
           "The kernels of the loaded library (after macros and host_name), like MTLLibrary.functionNames.")
      .def_property_readonly("current_function", &Interface::current_function,
                             "The name of the current function (\"\" before set_function).")
      .def("threadExecutionWidth", &Interface::thread_execution_width,
           "The current function's SIMD width (the pipeline's threadExecutionWidth).")
      .def("maxThreadsPerGroup", &Interface::max_threads_per_group,
           "The most threads per threadgroup the current function may be dispatched with.")
      .def("staticThreadgroupMemoryLength", &Interface::static_threadgroup_memory_length,
           "Bytes of threadgroup memory the current function's threadgroup variables take.")
      .def("_create_buffer", [](py::object self, py::handle count_arg, const std::string& dtype, const std::string& storage) {
        const std::uint64_t count =
            checked_int(count_arg, "[create_buffer] count", 1, std::numeric_limits<std::size_t>::max());
        auto d = DType::parse(dtype);
        if (!d) throw TypeMismatch("[create_buffer] unknown dtype '" + dtype + "'");
        Storage s;
        if (storage == "shared") s = Storage::shared;
        else if (storage == "private") s = Storage::device_private;
        else throw std::invalid_argument("[create_buffer] storage must be \"shared\" or \"private\"; got '" + storage + "'");
        auto& iface = self.cast<Interface&>();
        PyBuffer b{iface.create_buffer(std::size_t(count), *d, s), py::none(), py::none(), iface.device().index, iface.backend(), {}, py::none()};
        b.interface_ref = py::weakref(self);
        return b;
      }, "A zero-filled buffer of `count` elements of the Metal type `dtype`; create_buffer calls it.")
      .def("_wrap", [](py::object self, py::array arr, const std::string& dtype) {
        if (!(arr.flags() & py::array::c_style))
          throw std::invalid_argument("[wrap] the array must be C-contiguous (np.ascontiguousarray makes a copy)");
        if (!arr.writeable()) throw std::invalid_argument("[wrap] the array is read-only");
        auto d = DType::parse(dtype);
        if (!d) throw TypeMismatch("[wrap] unsupported dtype '" + dtype + "'");
        // Keeps the array alive; released under the GIL, whichever thread lets go last.
        auto* ref = new py::object(arr);
        std::shared_ptr<void> owner(ref, [](void* p) {
          py::gil_scoped_acquire gil;
          delete static_cast<py::object*>(p);
        });
        auto& iface = self.cast<Interface&>();
        std::size_t count = std::size_t(arr.size()) / d->lanes;
        PyBuffer b{iface.wrap(arr.mutable_data(), count, *d, owner), py::none(), py::none(), iface.device().index, iface.backend(), {}, py::none()};
        b.interface_ref = py::weakref(self);
        return b;
      }, "A buffer over the numpy array's own memory, holding the array; wrap calls it.")
      .def("run_function", &run_function, py::arg("grid"), py::arg("buffers"), py::arg("function_name") = py::none(),
         py::arg("wait_for_completion") = true, py::kw_only(), py::arg("threadgroup") = py::none(),
         py::arg("threadgroup_memory") = py::none(), py::arg("textures") = py::none(),
         py::arg("samplers") = py::none(),
         "Dispatches the current function (or `function_name`) over `grid` threads (int, tuple or MetalSize), "
         "buffers[i] bound to [[buffer(i)]] (Buffer, None, int, float, bytes or numpy scalar); waits unless "
         "wait_for_completion=False. Returns a Run.")
      .def("_run", &run_function, "run_function with every argument positional (faster to call).")
      .def_property("profiling", &Interface::profiling, &Interface::set_profiling,
                    "Device timestamps for Run.gpu_time (GPU backends; off by default: they cost about "
                    "as much as a launch). Without them gpu_time is measured on the host.")
      .def("synchronize", [](Interface& self) { py::gil_scoped_release nogil; self.synchronize(); },
           "Waits for every dispatch of this Interface to finish.")
      .def("_begin_batch", &Interface::begin_batch, "Starts a batch: later dispatches are encoded together.")
      .def("_end_batch", &Interface::end_batch, "Ends the batch and submits its dispatches.");

  m.def("devices", &devices, "Every usable device of every backend.");
  m.def("unavailable_backends", &unavailable_backends, "Backends that cannot run here, with the reason.");
  m.def("default_backend", &default_backend,
        "The backend Interface() picks: $METALGPU_BACKEND, else the first of metal > cuda > cpu that runs here.");
  m.def("translate", [](const std::string& source, const std::string& function, const std::string& target,
                        py::object constants) {
    Constants c;
    if (!constants.is_none() && !py::isinstance<py::dict>(constants))  // else silently ignored
      throw TypeMismatch("[translate] constants must be a dict {index_or_name: value}; got " +
                         py::str(py::type::of(constants).attr("__name__")).cast<std::string>());
    if (!constants.is_none())
      for (auto [k, v] : py::reinterpret_borrow<py::dict>(constants)) {
        std::string key = py::str(k).cast<std::string>();
        c.emplace_back(key, to_constant(v, key));
      }
    return translate(source, function, target, c);
  }, py::arg("source"), py::arg("function"), py::arg("target") = "cpu", py::arg("constants") = py::none(),
        "The C++ (target=\"cpu\") or CUDA C++ (target=\"cuda\") generated for kernel `function` of `source`.");
}

}  // namespace metalgpu::bindings
