#include "bindings/bindings.hpp"

namespace metalgpu::bindings {

namespace {
// Shader text and compiler output may hold bytes that are not UTF-8 (a Latin-1 comment quoted
// in a message): they become U+FFFD rather than a UnicodeDecodeError in place of the error.
py::str text(const std::string& s) {
  return py::reinterpret_steal<py::str>(PyUnicode_DecodeUTF8(s.data(), Py_ssize_t(s.size()), "replace"));
}
}  // namespace

std::uint64_t checked_int(py::handle v, const std::string& what, std::uint64_t lo, std::uint64_t hi) {
  if (PyBool_Check(v.ptr()) || !PyIndex_Check(v.ptr()))
    throw TypeMismatch(what + " must be an int; got " + py::str(py::type::of(v).attr("__name__")).cast<std::string>());
  py::object n = py::reinterpret_steal<py::object>(PyNumber_Index(v.ptr()));
  if (!n) throw py::error_already_set();
  int overflow = 0;
  long long s = PyLong_AsLongLongAndOverflow(n.ptr(), &overflow);
  bool fits = false;
  std::uint64_t u = 0;
  if (overflow == 0 && s >= 0) fits = true, u = std::uint64_t(s);
  else if (overflow > 0) {
    u = PyLong_AsUnsignedLongLong(n.ptr());
    fits = !PyErr_Occurred();
    PyErr_Clear();
  }
  if (!fits || u < lo || u > hi)
    throw std::invalid_argument(what + " " + py::str(n).cast<std::string>() + " is out of range (" +
                                std::to_string(lo) + ".." + std::to_string(hi) + ")");
  return u;
}

void init_errors(py::module_& m) {
  static PyObject* compile_error = PyErr_NewExceptionWithDoc(
      "metalgpu.CompileError",
      "A shader that does not preprocess, translate or compile.\n\n"
      "Attributes: log (compiler output), source, function, lineno and file (in the .metal source).",
      PyExc_RuntimeError, nullptr);
  m.attr("CompileError") = py::handle(compile_error);
  static PyObject* kernel_fault = PyErr_NewExceptionWithDoc(
      "metalgpu.KernelFault",
      "A kernel's own bug found by debug mode (METALGPU_DEBUG=1 or Interface(debug=True)): an\n"
      "out-of-bounds access, a threadgroup-memory race, or a barrier not every thread reaches.\n\n"
      "Attributes: kernel, lineno (in the .metal source), thread_position (thread_position_in_grid).",
      PyExc_RuntimeError, nullptr);
  m.attr("KernelFault") = py::handle(kernel_fault);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const CompileError& e) {
      py::object exc = py::reinterpret_steal<py::object>(
          PyObject_CallFunctionObjArgs(compile_error, text(e.what()).ptr(), nullptr));
      if (!exc) return;  // the call set an error already
      exc.attr("log") = text(e.log().empty() ? std::string(e.what()) : e.log());
      exc.attr("source") = text(e.source());
      exc.attr("function") = e.function().empty() ? py::object(py::none()) : py::object(text(e.function()));
      exc.attr("lineno") = e.line() > 0 ? py::object(py::int_(e.line())) : py::object(py::none());
      exc.attr("file") = text(e.file());
      PyErr_SetObject(compile_error, exc.ptr());
    } catch (const KernelFault& e) {
      py::object exc =
          py::reinterpret_steal<py::object>(PyObject_CallFunctionObjArgs(kernel_fault, text(e.what()).ptr(), nullptr));
      if (!exc) return;
      exc.attr("kernel") = e.kernel();
      exc.attr("lineno") = e.line() > 0 ? py::object(py::int_(e.line())) : py::object(py::none());
      const unsigned* p = e.thread_position();
      exc.attr("thread_position") = py::make_tuple(p[0], p[1], p[2]);
      PyErr_SetObject(kernel_fault, exc.ptr());
    } catch (const TypeMismatch& e) {
      PyErr_SetObject(PyExc_TypeError, text(e.what()).ptr());
    } catch (const std::invalid_argument& e) {
      PyErr_SetObject(PyExc_ValueError, text(e.what()).ptr());
    } catch (const std::out_of_range& e) {
      PyErr_SetObject(PyExc_ValueError, text(e.what()).ptr());
    }
  });
}

}  // namespace metalgpu::bindings
