// The neutral interface every backend implements (cpu, cuda, metal), and the objects that
// cross it. Interface (core) owns policy: argument checking, geometry, caching; a backend only
// allocates, compiles, and runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include "runtime/mg_abi.h"
}
#include "metalgpu/buffer.hpp"
#include "metalgpu/device.hpp"
#include "metalgpu/interface.hpp"
#include "metalgpu/texture.hpp"

namespace metalgpu {

namespace msl {
class Translation;
}
namespace detail {
struct RunState;
}

// Backend memory. Freed by the destructor, which may run on any thread, after the Interface
// that made it is gone: an Allocation keeps what it needs of its backend alive itself.
class Allocation {
 public:
  virtual ~Allocation() = default;
  void* host = nullptr;    // host-visible memory (shared storage); null for private
  void* device = nullptr;  // what kernels are given
  std::size_t nbytes = 0;

  // Transfers for every storage mode. The default suits memory the host can address.
  virtual void write(std::size_t offset, const void* src, std::size_t n);
  virtual void read(std::size_t offset, void* dst, std::size_t n) const;
  virtual void copy_to(Allocation& dst) const;

  // Coherence hooks for backends whose kernels see a device copy (cuda): the host is about
  // to use `host` directly (make it current; it may be written); host views (numpy arrays)
  // opened and closed, so kernels' writes reach a host that can see them.
  virtual void host_will_access() {}
  // Device memory is handed to another library (DLPack, __cuda_array_interface__): it must be
  // current, and whatever that library writes there is newer than the host's copy.
  virtual void device_will_be_shared() {}
  virtual void view_opened() {}
  virtual void view_closed() {}
};

// Copies the first `n` bytes of `from` to the start of `to` through host memory (buffer <->
// texture copies; both hold at least n bytes).
void copy_allocation_bytes(const Allocation& from, Allocation& to, std::size_t n);

// A texture's shape and memory layout (see Texture in texture.hpp: rows and slices packed).
struct TextureLayout {
  TextureDesc desc;
  TextureFormat format;
  std::uint32_t row_pitch = 0, slice_pitch = 0;  // bytes
  std::size_t nbytes = 0;
};

// One compiled translation (all its kernels) for one set of function-constant values.
class Program {
 public:
  virtual ~Program() = default;
  virtual const mg_kernel_desc* find(const std::string& name) const = 0;
  // The most threads per threadgroup the compiled kernel allows (Metal: the pipeline state's
  // maxTotalThreadsPerThreadgroup); 0 = no limit beyond the device's.
  virtual std::uint32_t max_total_threads(const mg_kernel_desc&) const { return 0; }
};

struct Launch {
  const Program* program = nullptr;
  const mg_kernel_desc* kernel = nullptr;
  mg_launch args{};
  std::shared_ptr<Allocation> buffers[MG_MAX_BUFFERS];  // what each slot binds (kept alive)
  bool may_write[MG_MAX_BUFFERS] = {};                  // the kernel may write the slot's memory
  std::shared_ptr<Allocation> textures[MG_MAX_TEXTURES];  // what each [[texture(n)]] binds (kept alive)
  bool texture_may_write[MG_MAX_TEXTURES] = {};            // declared access::write or read_write
  std::vector<std::string> inline_bytes;                // storage for by-value slots
  int inline_index[MG_MAX_BUFFERS];                     // slot -> inline_bytes index, or -1
  bool wait = true;                                     // complete before dispatch() returns
  bool profile = false;                                 // measure gpu_time with device timestamps
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const DeviceInfo& info() const = 0;
  virtual std::shared_ptr<Allocation> allocate(std::size_t nbytes, Storage storage) = 0;
  // Texture memory. Backends whose kernels read textures as linear memory (cpu, cuda) use a
  // plain allocation; Metal gives the texels an MTLTexture.
  virtual std::shared_ptr<Allocation> allocate_texture(const TextureLayout& layout) {
    return allocate(layout.nbytes, layout.desc.storage);
  }
  // Uses existing host memory as a buffer without copying; `owner` keeps it alive. Throws
  // std::invalid_argument (saying why) where the backend cannot use that memory directly.
  virtual std::shared_ptr<Allocation> wrap(void* host, std::size_t nbytes, std::shared_ptr<void> owner);
  // Compiles `translation` with `constants` - every kernel, or only the kernel named `only`
  // (large libraries compile each kernel on first use); throws CompileError.
  virtual std::shared_ptr<Program> build(const msl::Translation& translation, const Constants& constants,
                                         const std::string* only = nullptr) = 0;
  // Checks a library without generating code, so a large library still reports its errors
  // at load time. Backends that cannot check cheaply do nothing here.
  virtual void check_library(const msl::Translation&) {}
  // Runs (cpu) or enqueues (gpu) the launch; fills `run` (done, gpu_time, how to wait).
  virtual void dispatch(Launch& launch, detail::RunState& run) = 0;
  // Debug mode (bounds, race and barrier checks; KernelFault): true where this backend has it.
  virtual bool enable_debug() { return false; }
  virtual void synchronize() = 0;
};

// Backend factories, one per backend compiled in. `probe` lists devices (empty if the backend
// cannot run here, with `why` set); `create` opens device `index`.
struct BackendEntry {
  const char* name;
  std::vector<DeviceInfo> (*probe)(std::string* why);
  std::shared_ptr<Backend> (*create)(int index);
};
const std::vector<BackendEntry>& backend_registry();

}  // namespace metalgpu
