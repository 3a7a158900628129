// Internal state behind the public Interface, Buffer and Run handles.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "metalgpu/interface.hpp"
#include "msl/translator.hpp"

namespace metalgpu::detail {

struct InterfaceImpl;

struct BufferState {
  std::shared_ptr<Allocation> alloc;  // null once released or once the Interface is gone
  std::size_t count = 0;
  DType dtype;
  Storage storage = Storage::shared;
  std::weak_ptr<InterfaceImpl> owner;
  std::string released_why;  // set when alloc is dropped: "released" / "its Interface was deleted"
};

struct TextureState {
  std::shared_ptr<Allocation> alloc;  // null once released or once the Interface is gone
  TextureDesc desc;
  TextureFormat format;
  std::uint32_t row_pitch = 0, slice_pitch = 0;  // bytes
  std::weak_ptr<InterfaceImpl> owner;
  std::string released_why;
};

struct RunState {
  bool done = true;
  double gpu_time = 0;
  std::function<void(RunState&)> wait;   // set by backends that complete later
  std::function<bool(RunState&)> query;  // true once complete
  std::function<double()> timer;         // computes gpu_time on first read (device timestamps)
};

struct InterfaceImpl {
  std::string backend_name;
  DeviceInfo device;
  std::shared_ptr<Backend> backend;

  std::shared_ptr<const msl::Translation> library;
  std::shared_ptr<Program> base_program;  // the library built without function constants

  // The current function (set_function), its pipeline and the constants it was built with.
  std::string function;
  Constants constants;
  std::shared_ptr<Program> program;
  const mg_kernel_desc* desc = nullptr;
  const msl::KernelInfo* kernel = nullptr;

  std::mutex buffers_mutex;
  std::vector<std::weak_ptr<BufferState>> buffers;
  std::vector<std::weak_ptr<TextureState>> textures;
  int batch_depth = 0;
  bool profiling = false;

  ~InterfaceImpl();
};

}  // namespace metalgpu::detail
