// Internal state behind the public Interface, Buffer and Run handles.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/backend.hpp"
#include "core/dispatch.hpp"
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
  // The owner's address, to recognise it without locking `owner`: while alloc is set, the owner
  // is alive (it clears alloc when it goes), so the address cannot belong to another Interface.
  const InterfaceImpl* owner_address = nullptr;
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

struct RunState;

// Work a backend finishes later (GPU backends): one object per queued dispatch, so a dispatch
// costs one allocation for it, not one per callback.
class Completion {
 public:
  virtual ~Completion() = default;
  // Blocks until the work is done; sets state.gpu_time (host-measured where no device timing);
  // throws if the device reported a failure.
  virtual void wait(RunState& state) = 0;
  // True once the work is done, without blocking.
  virtual bool ready() = 0;
  // Seconds measured by the device (timestamps), or a negative number for "none": called once,
  // after wait().
  virtual double device_seconds() { return -1; }
};

struct RunState {
  bool done = true;
  double gpu_time = 0;
  std::unique_ptr<Completion> completion;  // null once there is nothing left to ask
};

// A kernel ready to dispatch: its compiled program, descriptor, parsed signature and plan.
struct Pipeline {
  std::shared_ptr<Program> program;
  const mg_kernel_desc* desc = nullptr;
  const msl::KernelInfo* kernel = nullptr;
  std::shared_ptr<const KernelPlan> plan;
};

// Memory from `allocate`, or OutOfMemory naming `what` and the size: a request larger than
// the whole device fails before allocating (on the cpu backend an overcommitted mapping would
// succeed and the process be killed once its pages were touched), and a backend's bare
// std::bad_alloc gets the size added.
std::shared_ptr<Allocation> allocate_or_name(const DeviceInfo& device, std::uint64_t nbytes, const std::string& what,
                                             const std::function<std::shared_ptr<Allocation>()>& allocate);

struct InterfaceImpl {
  std::string backend_name;
  DeviceInfo device;
  std::shared_ptr<Backend> backend;
  bool debug = false;

  std::shared_ptr<const msl::Translation> library;
  std::shared_ptr<Program> base_program;  // the library built without function constants

  // The current function (set_function), its pipeline and the constants it was built with.
  std::string function;
  Constants constants;
  Pipeline current;
  // Pipelines of other kernels run through run_function(function_name=...) with the same
  // constants, so naming a kernel costs a lookup, not a build, from the second dispatch on.
  std::unordered_map<std::string, Pipeline> by_name;

  std::mutex buffers_mutex;
  std::vector<std::weak_ptr<BufferState>> buffers;
  std::vector<std::weak_ptr<TextureState>> textures;
  int batch_depth = 0;
  bool profiling = false;

  ~InterfaceImpl();
};

}  // namespace metalgpu::detail
