#include "metalgpu/interface.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

#include "core/dispatch.hpp"
#include "core/interface_impl.hpp"
#include "metalgpu/errors.hpp"
#include "msl/work_item_loops.hpp"

namespace metalgpu {

namespace detail {

InterfaceImpl::~InterfaceImpl() {
  // Buffers outlive their Interface as handles only: they become unusable, while memory that
  // a view still holds stays alive through its own reference.
  std::lock_guard<std::mutex> lock(buffers_mutex);
  for (auto& weak : buffers) {
    if (auto s = weak.lock(); s && s->alloc) {
      s->alloc.reset();
      s->released_why = "freed when its Interface was deleted";
    }
  }
  for (auto& weak : textures) {
    if (auto s = weak.lock(); s && s->alloc) {
      s->alloc.reset();
      s->released_why = "freed when its Interface was deleted";
    }
  }
}

}  // namespace detail

namespace {

// Libraries with more kernels than this compile each kernel on first use (ggml-sized files
// would otherwise take tens of seconds to load); smaller ones compile whole, once.
constexpr std::size_t kWholeLibraryKernels = 16;

bool compiled_per_kernel(const msl::Translation& tr) { return tr.kernels().size() > kWholeLibraryKernels; }

detail::InterfaceImpl& need(const std::shared_ptr<detail::InterfaceImpl>& impl) {
  if (!impl) throw std::invalid_argument("[Interface] this Interface was moved from");
  return *impl;
}

std::string list_names(const msl::Translation& tr) {
  std::string s;
  for (const auto& k : tr.kernels()) s += (s.empty() ? "" : ", ") + k.name;
  return s.empty() ? "none" : s;
}

using detail::Pipeline;

bool same_constants(const Constants& a, const Constants& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].first != b[i].first || a[i].second.value != b[i].second.value) return false;
  return true;
}

// Looks up `name` in the loaded library and builds (or fetches) its pipeline.

Pipeline resolve(detail::InterfaceImpl& s, const std::string& name, const Constants& constants, const char* op) {
  if (!s.library)
    throw std::invalid_argument(std::string("[") + op + "] no shader is loaded: call load_shader() first");
  const msl::KernelInfo* kernel = s.library->find(name);
  if (!kernel)
    throw std::invalid_argument(std::string("[") + op + "] no kernel named '" + name + "' in " +
                                s.library->path() + " (kernels: " + list_names(*s.library) + ")");
  std::shared_ptr<Program> program;
  if (constants.empty() && s.base_program) program = s.base_program;
  else {
    try {
      program = s.backend->build(*s.library, constants, compiled_per_kernel(*s.library) ? &name : nullptr);
    } catch (CompileError& e) {
      e.set_function(name);
      throw;
    }
  }
  const mg_kernel_desc* desc = program->find(name);
  if (!desc) throw std::runtime_error("[" + std::string(op) + "] kernel '" + name + "' is missing from its compiled module");
  // Metal fails pipeline creation for a kernel whose threadgroup variables alone exceed the
  // device's threadgroup memory; so does set_function, before any dispatch could touch them.
  if (desc->static_threadgroup_bytes > s.device.max_threadgroup_memory)
    throw CompileError("[" + std::string(op) + "] kernel '" + name + "' declares " +
                           std::to_string(desc->static_threadgroup_bytes) +
                           " bytes of threadgroup variables; the device's threadgroup memory limit "
                           "(max_threadgroup_memory) is " + std::to_string(s.device.max_threadgroup_memory) + " bytes",
                       s.library->path(), kernel->line, {}, name);
  return {program, desc, kernel, std::make_shared<const KernelPlan>(make_plan(*kernel))};
}

}  // namespace

bool Run::done() const {
  if (!state_->done && state_->completion && state_->completion->ready()) wait();
  return state_->done;
}
void Run::wait() const {
  if (!state_->done && state_->completion) state_->completion->wait(*state_);
  state_->done = true;
}
double Run::gpu_time() const {
  wait();
  if (state_->completion) {
    double t = state_->completion->device_seconds();
    if (t >= 0) state_->gpu_time = t;
    state_->completion.reset();
  }
  return state_->gpu_time;
}

namespace {
bool debug_from_environment() {
  const char* v = std::getenv("METALGPU_DEBUG");
  return v && *v && std::string(v) != "0";
}
}  // namespace

Interface::Interface(const std::string& backend, int device, bool debug) {
  std::string name = backend.empty() ? default_backend() : backend;
  const BackendEntry* entry = nullptr;
  for (const auto& b : backend_registry())
    if (name == b.name) entry = &b;
  if (!entry)
    throw std::invalid_argument("[Interface] unknown backend '" + name + "' (expected metal, cuda or cpu)");
  std::string why;
  auto found = entry->probe(&why);
  if (found.empty()) throw NotAvailable("[Interface] the " + name + " backend is not available: " + why);
  if (device < 0 || device >= int(found.size()))
    throw std::invalid_argument("[Interface] device " + std::to_string(device) + " does not exist: the " + name +
                                " backend has " + std::to_string(found.size()) + " device(s)");
  impl_ = std::make_shared<detail::InterfaceImpl>();
  impl_->backend_name = name;
  impl_->backend = entry->create(device);
  impl_->device = impl_->backend->info();
  impl_->device.index = device;
  if (debug || debug_from_environment()) {
    impl_->debug = impl_->backend->enable_debug();
    static std::once_flag noted;
    if (!impl_->debug)
      std::call_once(noted, [&] {
        std::fprintf(stderr, "metalgpu: debug mode has the cpu and cuda backends only; the %s backend runs "
                             "without its checks\n", name.c_str());
      });
  }
}

bool Interface::debug() const { return impl_->debug; }

Interface::~Interface() = default;
Interface::Interface(Interface&&) noexcept = default;
Interface& Interface::operator=(Interface&&) noexcept = default;

const std::string& Interface::backend() const { return need(impl_).backend_name; }
const DeviceInfo& Interface::device() const { return need(impl_).device; }

void Interface::load_shader(const std::string& path, const ShaderOptions& options) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::invalid_argument("[load_shader] cannot open shader file '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  load_shader_from_string(ss.str(), options, path);
}

void Interface::load_shader_from_string(const std::string& source, const ShaderOptions& options,
                                        const std::string& path) {
  auto& s = need(impl_);
  auto library = std::make_shared<const msl::Translation>(source, path, options);
  std::shared_ptr<Program> base;
  // Libraries with function constants are compiled once their values are known, and large
  // ones kernel by kernel; both are checked now, so errors still surface at load.
  if (library->has_function_constants() || compiled_per_kernel(*library)) s.backend->check_library(*library);
  else base = s.backend->build(*library, {});
  s.library = std::move(library);
  s.base_program = std::move(base);
  s.function.clear();
  s.constants.clear();
  s.current = Pipeline{};
  s.by_name.clear();
}

void Interface::set_function(const std::string& name, const Constants& constants) {
  auto& s = need(impl_);
  Pipeline p = resolve(s, name, constants, "set_function");
  if (!same_constants(constants, s.constants)) s.by_name.clear();  // built with the old values
  s.function = name;
  s.constants = constants;
  s.current = std::move(p);
}

std::vector<std::string> Interface::function_names() const {
  auto& s = need(impl_);
  std::vector<std::string> names;
  if (s.library)
    for (const auto& k : s.library->kernels()) names.push_back(k.name);
  std::sort(names.begin(), names.end());
  return names;
}

const std::string& Interface::current_function() const { return need(impl_).function; }

std::uint32_t Interface::thread_execution_width() const { return need(impl_).device.simd_width; }
std::uint32_t Interface::max_threads_per_group() const { return need(impl_).device.max_threads_per_threadgroup; }
std::uint32_t Interface::static_threadgroup_memory_length() const {
  auto& s = need(impl_);
  if (!s.current.desc)
    throw std::invalid_argument("[staticThreadgroupMemoryLength] no function is set: call set_function() first");
  return s.current.desc->static_threadgroup_bytes;
}

std::shared_ptr<Allocation> detail::allocate_or_name(const DeviceInfo& device, std::uint64_t nbytes,
                                                     const std::string& what,
                                                     const std::function<std::shared_ptr<Allocation>()>& allocate) {
  const std::string on = " on " + device.backend + ":" + std::to_string(device.index) + " '" + device.name + "'";
  if (device.memory && nbytes > device.memory)
    throw OutOfMemory(what + " needs " + std::to_string(nbytes) + " bytes; the device has " +
                      std::to_string(device.memory) + " bytes of memory" + on);
  try {
    return allocate();
  } catch (const OutOfMemory&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw OutOfMemory(what + ": cannot allocate " + std::to_string(nbytes) + " bytes" + on + " (out of memory)");
  }
}

Buffer Interface::create_buffer(std::size_t count, DType dtype, Storage storage) {
  auto& s = need(impl_);
  if (count == 0) throw std::invalid_argument("[create_buffer] count must be at least 1");
  // 2^48 bytes: more than any device's memory, and count * size cannot wrap.
  if (count > (std::size_t(1) << 48) / dtype.size())
    throw std::invalid_argument("[create_buffer] count " + std::to_string(count) + " of " + dtype.name() +
                                " is too large: a buffer holds at most 2^48 bytes");
  const std::size_t nbytes = count * dtype.size();
  auto state = std::make_shared<detail::BufferState>();
  state->alloc = detail::allocate_or_name(s.device, nbytes,
                                  "[create_buffer] " + std::to_string(count) + " x " + dtype.name(),
                                  [&] { return s.backend->allocate(nbytes, storage); });
  state->count = count;
  state->dtype = dtype;
  state->storage = storage;
  state->owner = impl_;
  state->owner_address = impl_.get();
  std::lock_guard<std::mutex> lock(s.buffers_mutex);
  // Forget buffers that are gone, so a long-lived Interface does not accumulate entries.
  if (s.buffers.size() >= 64 && (s.buffers.size() & (s.buffers.size() - 1)) == 0)
    s.buffers.erase(std::remove_if(s.buffers.begin(), s.buffers.end(), [](auto& w) { return w.expired(); }),
                    s.buffers.end());
  s.buffers.push_back(state);
  return Buffer(std::move(state));
}

Buffer Interface::wrap(void* host, std::size_t count, DType dtype, std::shared_ptr<void> owner) {
  auto& s = need(impl_);
  if (count == 0) throw std::invalid_argument("[wrap] the array is empty");
  if (reinterpret_cast<std::uintptr_t>(host) % dtype.scalar_size() != 0)
    throw std::invalid_argument("[wrap] the memory is not aligned to its element size");
  auto state = std::make_shared<detail::BufferState>();
  state->alloc = s.backend->wrap(host, count * dtype.size(), std::move(owner));
  state->count = count;
  state->dtype = dtype;
  state->storage = Storage::shared;
  state->owner = impl_;
  state->owner_address = impl_.get();
  std::lock_guard<std::mutex> lock(s.buffers_mutex);
  s.buffers.push_back(state);
  return Buffer(std::move(state));
}

Run Interface::run_function(Size3 grid, std::span<const Binding> bindings, const DispatchOptions& options) {
  auto& s = need(impl_);
  const Pipeline* chosen = &s.current;
  if (!options.function.empty() && options.function != s.function) {
    auto it = s.by_name.find(options.function);
    if (it == s.by_name.end())
      it = s.by_name.emplace(options.function, resolve(s, options.function, s.constants, "run_function")).first;
    chosen = &it->second;
  }
  const Pipeline& p = *chosen;
  if (!p.desc) {
    if (!s.library) throw std::invalid_argument("[run_function] no shader is loaded: call load_shader() first");
    throw std::invalid_argument("[run_function] no function is set: call set_function() or pass function_name=");
  }
  Launch launch;
  launch.program = p.program.get();
  launch.kernel = p.desc;
  // The pipeline may allow fewer threads per threadgroup than the device (Metal reports it).
  std::uint32_t max_threads = s.device.max_threads_per_threadgroup;
  if (std::uint32_t m = p.program->max_total_threads(*p.desc); m && m < max_threads) max_threads = m;
  Size3 tg = options.threadgroup ? *options.threadgroup : default_threadgroup(grid, max_threads);
  if (!options.threadgroup && p.kernel->max_total_threads)
    tg.width = std::min(tg.width, std::max(1u, p.kernel->max_total_threads / (tg.height * tg.depth)));
  set_geometry(launch.args, grid, tg, max_threads, *p.kernel);
  set_threadgroup_memory(launch.args, options.threadgroup_memory, *p.kernel, p.desc->static_threadgroup_bytes,
                         s.device.max_threadgroup_memory);
  bind_arguments(launch, bindings, *p.plan, *p.kernel, *p.desc, impl_.get());
  bind_textures(launch, options.textures, options.samplers, *p.plan, *p.kernel, impl_.get());
  auto state = std::make_shared<detail::RunState>();
  launch.wait = options.wait && s.batch_depth == 0;
  launch.profile = s.profiling;
  s.backend->dispatch(launch, *state);
  return Run(state);
}

void Interface::set_profiling(bool on) { need(impl_).profiling = on; }
bool Interface::profiling() const { return need(impl_).profiling; }

void Interface::synchronize() { need(impl_).backend->synchronize(); }
void Interface::begin_batch() { ++need(impl_).batch_depth; }
void Interface::end_batch() {
  auto& s = need(impl_);
  if (s.batch_depth > 0) --s.batch_depth;
  if (s.batch_depth == 0) s.backend->synchronize();
}

std::string translate(const std::string& source, const std::string& function, const std::string& target,
                      const Constants& constants) {
  msl::Target t = msl::parse_target(target);
  msl::Translation tr(source, "<string>", {});
  // What the backend would compile (cpu: work-item loops unless METALGPU_CPU_FIBERS is set).
  std::string body = tr.emit(t, constants, &function, false,
                             t == msl::Target::cpu && msl::work_item_loops_enabled());
  return "// metalgpu " METALGPU_VERSION ": '" + function + "' translated for " + target +
         "\n#include <metal_stdlib>  // the metalgpu runtime\n" + body;
}

const char* version() { return METALGPU_VERSION; }

}  // namespace metalgpu
