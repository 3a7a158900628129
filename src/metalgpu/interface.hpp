// Interface: one device, its loaded shader library, its pipelines and buffers.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "metalgpu/buffer.hpp"
#include "metalgpu/device.hpp"
#include "metalgpu/export.hpp"
#include "metalgpu/texture.hpp"

namespace metalgpu {

struct Size3 {
  std::uint32_t width = 1, height = 1, depth = 1;
  std::uint64_t volume() const noexcept { return std::uint64_t(width) * height * depth; }
};

// One argument of a dispatch: what [[buffer(n)]] sees.
struct Binding {
  enum class Kind : std::uint8_t { empty, buffer, int_value, uint_value, float_value, bool_value, bytes };
  Kind kind = Kind::empty;
  Buffer buffer;
  std::int64_t int_value = 0;
  std::uint64_t uint_value = 0;
  double float_value = 0;
  std::string bytes;

  static Binding none() { return {}; }
  static Binding of(Buffer b) { Binding x; x.kind = Kind::buffer; x.buffer = std::move(b); return x; }
  static Binding of_int(std::int64_t v) { Binding x; x.kind = Kind::int_value; x.int_value = v; return x; }
  static Binding of_uint(std::uint64_t v) { Binding x; x.kind = Kind::uint_value; x.uint_value = v; return x; }
  static Binding of_float(double v) { Binding x; x.kind = Kind::float_value; x.float_value = v; return x; }
  static Binding of_bool(bool v) { Binding x; x.kind = Kind::bool_value; x.int_value = v; return x; }
  static Binding of_bytes(std::string raw) { Binding x; x.kind = Kind::bytes; x.bytes = std::move(raw); return x; }
};

struct DispatchOptions {
  std::optional<Size3> threadgroup;                     // none: chosen by the library
  std::vector<std::pair<int, std::size_t>> threadgroup_memory;  // [[threadgroup(n)]] -> bytes
  std::string function;                                  // empty: the current function
  bool wait = true;
  std::vector<Texture> textures;                 // item n binds [[texture(n)]]; empty handle: none
  std::vector<std::optional<Sampler>> samplers;  // item n binds [[sampler(n)]]
};

// Values for [[function_constant(n)]] declarations, by index or by name.
struct ConstantValue {
  std::variant<std::int64_t, std::uint64_t, double, bool> value;
};
using Constants = std::vector<std::pair<std::string, ConstantValue>>;  // key: "3" or "name"

struct ShaderOptions {
  std::vector<std::string> include_dirs;
  std::vector<std::pair<std::string, std::string>> defines;
};

namespace detail {
struct InterfaceImpl;
struct RunState;
}

// The result of a dispatch.
class METALGPU_API Run {
 public:
  explicit Run(std::shared_ptr<detail::RunState> s) : state_(std::move(s)) {}
  bool done() const;
  void wait() const;
  double gpu_time() const;  // seconds spent executing, once done
 private:
  std::shared_ptr<detail::RunState> state_;
};

class METALGPU_API Interface {
 public:
  // backend: "" for the default ($METALGPU_BACKEND, else metal > cuda > cpu). debug: debug
  // mode (also METALGPU_DEBUG=1): kernels check their accesses and raise KernelFault (cpu).
  explicit Interface(const std::string& backend = "", int device = 0, bool debug = false);
  ~Interface();
  Interface(const Interface&) = delete;
  Interface& operator=(const Interface&) = delete;
  Interface(Interface&&) noexcept;
  Interface& operator=(Interface&&) noexcept;

  const std::string& backend() const;
  const DeviceInfo& device() const;
  bool debug() const;  // debug mode is on (the backend has it)

  void load_shader(const std::string& path, const ShaderOptions& options = {});
  void load_shader_from_string(const std::string& source, const ShaderOptions& options = {},
                               const std::string& path = "<string>");
  void set_function(const std::string& name, const Constants& constants = {});
  std::vector<std::string> function_names() const;
  const std::string& current_function() const;

  std::uint32_t thread_execution_width() const;
  std::uint32_t max_threads_per_group() const;
  // Bytes of threadgroup memory the current function's threadgroup variables take (Metal:
  // the pipeline's staticThreadgroupMemoryLength); a dispatch's threadgroup_memory comes on
  // top, and the two together must fit DeviceInfo::max_threadgroup_memory.
  std::uint32_t static_threadgroup_memory_length() const;

  Buffer create_buffer(std::size_t count, DType dtype, Storage storage = Storage::shared);
  // A buffer over existing host memory, without a copy (backends that can address it: cpu).
  // `owner` keeps the memory alive for as long as the buffer or any view needs it.
  Buffer wrap(void* host, std::size_t count, DType dtype, std::shared_ptr<void> owner);
  // A zero-filled texture (see TextureDesc); throws std::invalid_argument for bad sizes or formats.
  Texture create_texture(const TextureDesc& desc);
  Run run_function(Size3 grid, std::span<const Binding> bindings, const DispatchOptions& options = {});
  void synchronize();

  // Device timestamps for Run::gpu_time (GPU backends). Off by default: on CUDA the two timing
  // events cost about as much as the launch itself; without them gpu_time is host-measured.
  void set_profiling(bool on);
  bool profiling() const;

  // Dispatches between begin_batch() and end_batch() are submitted together at the end.
  void begin_batch();
  void end_batch();

 private:
  std::shared_ptr<detail::InterfaceImpl> impl_;
};

// The C++ (or CUDA C++) that the translator makes of `function` in `source`.
METALGPU_API std::string translate(const std::string& source, const std::string& function,
                                   const std::string& target = "cpu", const Constants& constants = {});

METALGPU_API const char* version();

}  // namespace metalgpu
