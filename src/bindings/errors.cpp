#include "bindings/bindings.hpp"

namespace metalgpu::bindings {

namespace {
// Shader text and compiler output may hold bytes that are not UTF-8 (a Latin-1 comment quoted
// in a message): they become U+FFFD rather than a UnicodeDecodeError in place of the error.
py::str text(const std::string& s) {
  return py::reinterpret_steal<py::str>(PyUnicode_DecodeUTF8(s.data(), Py_ssize_t(s.size()), "replace"));
}
}  // namespace

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
