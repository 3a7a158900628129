#include "bindings/bindings.hpp"

namespace metalgpu::bindings {

void init_errors(py::module_& m) {
  static PyObject* compile_error = PyErr_NewExceptionWithDoc(
      "metalgpu.CompileError",
      "A shader that does not preprocess, translate or compile.\n\n"
      "Attributes: log (compiler output), source, function, lineno and file (in the .metal source).",
      PyExc_RuntimeError, nullptr);
  m.attr("CompileError") = py::handle(compile_error);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const CompileError& e) {
      py::object exc = py::reinterpret_steal<py::object>(
          PyObject_CallFunction(compile_error, "s", e.what()));
      if (!exc) return;  // the call set an error already
      exc.attr("log") = e.log().empty() ? std::string(e.what()) : e.log();
      exc.attr("source") = e.source();
      exc.attr("function") = e.function().empty() ? py::object(py::none()) : py::object(py::str(e.function()));
      exc.attr("lineno") = e.line() > 0 ? py::object(py::int_(e.line())) : py::object(py::none());
      exc.attr("file") = e.file();
      PyErr_SetObject(compile_error, exc.ptr());
    } catch (const TypeMismatch& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const std::invalid_argument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::out_of_range& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
}

}  // namespace metalgpu::bindings
