#include "bindings/bindings.hpp"

namespace metalgpu::bindings {

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
          PyObject_CallFunction(compile_error, "s", e.what()));
      if (!exc) return;  // the call set an error already
      exc.attr("log") = e.log().empty() ? std::string(e.what()) : e.log();
      exc.attr("source") = e.source();
      exc.attr("function") = e.function().empty() ? py::object(py::none()) : py::object(py::str(e.function()));
      exc.attr("lineno") = e.line() > 0 ? py::object(py::int_(e.line())) : py::object(py::none());
      exc.attr("file") = e.file();
      PyErr_SetObject(compile_error, exc.ptr());
    } catch (const KernelFault& e) {
      py::object exc = py::reinterpret_steal<py::object>(PyObject_CallFunction(kernel_fault, "s", e.what()));
      if (!exc) return;
      exc.attr("kernel") = e.kernel();
      exc.attr("lineno") = e.line() > 0 ? py::object(py::int_(e.line())) : py::object(py::none());
      const unsigned* p = e.thread_position();
      exc.attr("thread_position") = py::make_tuple(p[0], p[1], p[2]);
      PyErr_SetObject(kernel_fault, exc.ptr());
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
