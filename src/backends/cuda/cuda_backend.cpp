// The CUDA backend: kernels translated to CUDA C++, compiled by NVRTC for the device's own
// architecture, launched through the driver API on one stream per Interface.
//
// Buffers with storage "shared" are pinned host memory (what .contents aliases) plus a
// device copy. Copies happen only when needed: in before a dispatch if the host may have
// written (a host view is alive, or was made since the last sync), out after a dispatch that
// may write the buffer if a host view is alive, else lazily when the host next looks.
#include "backends/cuda/cuda_backend.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <list>
#include <memory>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include <unistd.h>

#include "backends/cuda/cuda_api.hpp"
#include "backends/cuda/nvrtc_compiler.hpp"
#include "core/disk_cache.hpp"
#include "core/hash.hpp"
#include "core/interface_impl.hpp"
#include "core/runtime_text.hpp"
#include "metalgpu/errors.hpp"
#include "msl/translator.hpp"

namespace metalgpu::cuda {
namespace {

// Binding a context is a driver call; skip it when this thread has it bound already.
thread_local CUcontext bound_context = nullptr;

void bind(CUcontext ctx) {
  if (bound_context == ctx) return;
  MG_CU(cuCtxSetCurrent(ctx));
  bound_context = ctx;
}

// For destructors: never throws.
void bind_quietly(CUcontext ctx) noexcept {
  if (bound_context != ctx && driver().cuCtxSetCurrent(ctx) == 0) bound_context = ctx;
}

// The primary context of one device, shared by every Interface and allocation on it.
struct Device {
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  int sm = 0;
  DeviceInfo info;
  // Per axis: threads of a block (1024, 1024, 64) and blocks of a launch (2^31 - 1, 65535, 65535).
  unsigned max_block[3] = {}, max_grid[3] = {};
  void make_current() const { bind(ctx); }
  ~Device() {
    if (!ctx) return;
    if (bound_context == ctx) bound_context = nullptr;
    driver().cuDevicePrimaryCtxRelease(dev);
  }
};

DeviceInfo describe(int index, int* sm) {
  CUdevice dev;
  MG_CU(cuDeviceGet(&dev, index));
  char name[256] = {};
  MG_CU(cuDeviceGetName(name, sizeof name, dev));
  std::size_t mem = 0;
  MG_CU(cuDeviceTotalMem(&mem, dev));
  auto attr = [&](int a) {
    int v = 0;
    MG_CU(cuDeviceGetAttribute(&v, a, dev));
    return v;
  };
  DeviceInfo d;
  d.name = name;
  d.backend = "cuda";
  d.index = index;
  d.memory = mem;
  d.max_threads_per_threadgroup = std::uint32_t(attr(kAttrMaxThreadsPerBlock));
  d.simd_width = std::uint32_t(attr(kAttrWarpSize));
  d.max_threadgroup_memory = std::uint64_t(attr(kAttrMaxSharedPerBlockOptin));
  if (sm) *sm = attr(kAttrComputeMajor) * 10 + attr(kAttrComputeMinor);
  return d;
}

std::shared_ptr<Device> open_device(int index) {
  static std::mutex m;
  static std::unordered_map<int, std::weak_ptr<Device>> open;
  std::lock_guard<std::mutex> lock(m);
  if (auto d = open[index].lock()) return d;
  auto d = std::make_shared<Device>();
  d->info = describe(index, &d->sm);
  MG_CU(cuDeviceGet(&d->dev, index));
  for (int axis = 0; axis < 3; ++axis) {
    int block = 0, grid = 0;
    MG_CU(cuDeviceGetAttribute(&block, kAttrMaxBlockDimX + axis, d->dev));
    MG_CU(cuDeviceGetAttribute(&grid, kAttrMaxGridDimX + axis, d->dev));
    d->max_block[axis] = unsigned(block);
    d->max_grid[axis] = unsigned(grid);
  }
  MG_CU(cuDevicePrimaryCtxRetain(&d->ctx, d->dev));
  open[index] = d;
  return d;
}

// A stream, shared by its Interface's backend and the allocations with work queued on it, so
// it lives as long as anyone may still wait on it.
struct Stream {
  std::shared_ptr<Device> dev;
  CUstream s = nullptr;
  explicit Stream(std::shared_ptr<Device> d) : dev(std::move(d)) {
    dev->make_current();
    MG_CU(cuStreamCreate(&s, kStreamNonBlocking));
  }
  ~Stream() {
    bind_quietly(dev->ctx);
    driver().cuStreamSynchronize(s);
    driver().cuStreamDestroy(s);
  }
};

// METALGPU_CUDA_ELEMENT_ALIGNED_VECTORS=1: vectors aligned like their elements, as Apple GPUs
// allow them to be in memory (slower; mg_vector.h). Part of the source, so of its cache key.
std::string vector_alignment_define() {
  const char* e = std::getenv("METALGPU_CUDA_ELEMENT_ALIGNED_VECTORS");
  return e && *e && std::strcmp(e, "0") != 0 ? "#define MG_CUDA_ELEMENT_ALIGNED_VECTORS 1\n" : "";
}

// What checking a whole library compiles (Translation::emit_for_check): one instantiation per
// kernel definition, or every entry point with METALGPU_CHECK_LIBRARY=all.
std::string library_check_source(const msl::Translation& tr) {
  std::string source = "// metalgpu " METALGPU_VERSION " generated code (cuda, library check)\n";
  source += vector_alignment_define();
  source += tr.runtime_omissions();
  source += runtime::common_text;
  source += runtime::cuda_text;
  source += tr.emit_for_check(msl::Target::cuda);
  return source;
}

class CudaAllocation final : public Allocation {
 public:
  CudaAllocation(std::shared_ptr<Device> dev, std::size_t bytes, Storage storage) : dev_(std::move(dev)) {
    nbytes = bytes;
    dev_->make_current();
    CUdeviceptr p = 0;
    MG_CU(cuMemAlloc(&p, bytes));
    dptr_ = p;
    device = reinterpret_cast<void*>(p);
    MG_CU(cuMemsetD8Async(p, 0, bytes, nullptr));
    if (storage == Storage::shared) {
      void* h = nullptr;
      CUresult r = driver().cuMemAllocHost(&h, bytes);
      if (r != 0) {
        driver().cuMemFree(p);
        check(r, "cuMemAllocHost");
      }
      std::memset(h, 0, bytes);
      host = h;
    }
    MG_CU(cuStreamSynchronize(nullptr));
  }
  ~CudaAllocation() override {
    // Never throw from here; the context outlives us through dev_.
    const Driver& d = driver();
    bind_quietly(dev_->ctx);
    if (pending_) d.cuStreamSynchronize(pending_->s);
    d.cuMemFree(dptr_);
    if (host) d.cuMemFreeHost(host);
  }

  void write(std::size_t offset, const void* src, std::size_t n) override {
    settle();
    if (host) {
      std::memcpy(static_cast<char*>(host) + offset, src, n);
      host_dirty_ = true;
      device_newer_ = false;
    } else {
      dev_->make_current();
      MG_CU(cuMemcpyHtoDAsync(dptr_ + offset, src, n, nullptr));
      MG_CU(cuStreamSynchronize(nullptr));
    }
  }
  void read(std::size_t offset, void* dst, std::size_t n) const override {
    const_cast<CudaAllocation*>(this)->settle();
    if (host && !device_newer_) {
      std::memcpy(dst, static_cast<const char*>(host) + offset, n);
      return;
    }
    dev_->make_current();
    MG_CU(cuMemcpyDtoHAsync(dst, dptr_ + offset, n, nullptr));
    MG_CU(cuStreamSynchronize(nullptr));
  }
  void copy_to(Allocation& other) const override {
    auto* o = dynamic_cast<CudaAllocation*>(&other);
    if (!o) return Allocation::copy_to(other);
    auto* self = const_cast<CudaAllocation*>(this);
    self->settle();
    o->settle();
    self->push_host();  // the source's truth may sit in its host mirror
    dev_->make_current();
    MG_CU(cuMemcpyDtoDAsync(o->dptr_, dptr_, std::min(nbytes, o->nbytes), nullptr));
    MG_CU(cuStreamSynchronize(nullptr));
    o->device_newer_ = true;
    o->host_dirty_ = false;
    if (o->views_ > 0) o->pull_host();
  }

  void host_will_access() override {
    settle();
    if (device_newer_) pull_host();
    host_dirty_ = true;  // whoever asked for the pointer may write through it
  }
  void device_will_be_shared() override {
    settle();
    push_host();
    if (host) device_newer_ = true;
  }
  void view_opened() override { ++views_; }
  void view_closed() override { --views_; }

  // Before a dispatch on `stream`: the device copy must hold what the host may have written,
  // and work queued on another Interface's stream must be finished first.
  void before_dispatch(const std::shared_ptr<Stream>& stream) {
    if (pending_ && pending_ != stream) settle();
    if (host && (host_dirty_ || views_ > 0) && !device_newer_) {
      MG_CU(cuMemcpyHtoDAsync(dptr_, host, nbytes, stream->s));
      host_dirty_ = false;
    }
  }
  // After a dispatch that may write this buffer, enqueued on `stream`.
  void after_dispatch(const std::shared_ptr<Stream>& stream) {
    mark_used(stream);
    if (!host) return;
    if (views_ > 0) {
      MG_CU(cuMemcpyDtoHAsync(host, dptr_, nbytes, stream->s));
      device_newer_ = false;
    } else {
      device_newer_ = true;
    }
  }
  void mark_used(const std::shared_ptr<Stream>& stream) {
    if (pending_ != stream) pending_ = stream;
  }
  CUdeviceptr dptr() const { return dptr_; }

 private:
  // Waits for queued work that touches this buffer.
  void settle() {
    if (pending_) {
      dev_->make_current();
      MG_CU(cuStreamSynchronize(pending_->s));
      pending_.reset();
    }
  }
  void pull_host() {
    dev_->make_current();
    MG_CU(cuMemcpyDtoHAsync(host, dptr_, nbytes, nullptr));
    MG_CU(cuStreamSynchronize(nullptr));
    device_newer_ = false;
  }
  void push_host() {
    if (host && host_dirty_ && !device_newer_) {
      dev_->make_current();
      MG_CU(cuMemcpyHtoDAsync(dptr_, host, nbytes, nullptr));
      MG_CU(cuStreamSynchronize(nullptr));
      host_dirty_ = false;
    }
  }

  std::shared_ptr<Device> dev_;
  CUdeviceptr dptr_ = 0;
  std::atomic<int> views_{0};
  bool host_dirty_ = false;    // the host mirror may be newer than the device copy
  bool device_newer_ = false;  // the device copy is newer than the host mirror
  std::shared_ptr<Stream> pending_;  // a stream with queued work on this buffer
};

// Work queued on a stream, as a Run waits for it; with device timestamps when profiling.
class StreamCompletion final : public detail::Completion {
 public:
  StreamCompletion(std::shared_ptr<Stream> stream, std::chrono::steady_clock::time_point start,
                   std::shared_ptr<std::pair<CUevent, CUevent>> events)
      : stream_(std::move(stream)), start_(start), events_(std::move(events)) {}
  void wait(detail::RunState& r) override {
    stream_->dev->make_current();
    check(driver().cuStreamSynchronize(stream_->s), "cuStreamSynchronize");
    if (!events_) r.gpu_time = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  bool ready() override {
    stream_->dev->make_current();
    CUresult r = events_ ? driver().cuEventQuery(events_->second) : driver().cuStreamQuery(stream_->s);
    return r != kErrorNotReady;  // done, or failed: wait() reports the failure
  }
  double device_seconds() override {
    if (!events_) return -1;
    stream_->dev->make_current();
    float ms = 0;
    check(driver().cuEventElapsedTime(&ms, events_->first, events_->second), "cuEventElapsedTime");
    return double(ms) * 1e-3;
  }

 private:
  std::shared_ptr<Stream> stream_;
  std::chrono::steady_clock::time_point start_;
  std::shared_ptr<std::pair<CUevent, CUevent>> events_;
};

// Timing events, recycled: creating events per dispatch costs more than the launch itself.
struct EventPool : std::enable_shared_from_this<EventPool> {
  std::shared_ptr<Device> dev;
  std::mutex m;
  std::vector<std::pair<CUevent, CUevent>> free;
  explicit EventPool(std::shared_ptr<Device> d) : dev(std::move(d)) {}
  ~EventPool() {
    bind_quietly(dev->ctx);
    for (auto& [a, b] : free) {
      driver().cuEventDestroy(a);
      driver().cuEventDestroy(b);
    }
  }
  std::shared_ptr<std::pair<CUevent, CUevent>> take() {
    std::pair<CUevent, CUevent> e{};
    {
      std::lock_guard<std::mutex> lock(m);
      if (!free.empty()) {
        e = free.back();
        free.pop_back();
      }
    }
    if (!e.first) {
      MG_CU(cuEventCreate(&e.first, 0));
      MG_CU(cuEventCreate(&e.second, 0));
    }
    auto self = shared_from_this();
    return std::shared_ptr<std::pair<CUevent, CUevent>>(new std::pair<CUevent, CUevent>(e), [self](auto* p) {
      std::lock_guard<std::mutex> lock(self->m);
      self->free.push_back(*p);
      delete p;
    });
  }
};

struct KernelEntry {
  mg_kernel_desc desc{};
  CUfunction fn = nullptr;
  int dynamic_shared_set = 0;    // the function's CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
  std::uint32_t max_threads = 0;  // threads per block its registers allow
};

class CudaProgram final : public Program {
 public:
  CudaProgram(std::shared_ptr<Device> dev, const std::string& cubin, const msl::Translation& tr,
              const std::string* only)
      : dev_(std::move(dev)) {
    dev_->make_current();
    MG_CU(cuModuleLoadData(&module_, cubin.data()));
    for (std::size_t i = 0; i < tr.kernels().size(); ++i) {
      auto& k = tr.kernels()[i];
      if (only && k.name != *only) continue;
      auto entry = std::make_unique<KernelEntry>();
      std::string sym = msl::entry_symbol(i);
      MG_CU(cuModuleGetFunction(&entry->fn, module_, sym.c_str()));
      unsigned sizes[MG_MAX_BUFFERS + 1] = {};
      CUdeviceptr g = 0;
      std::size_t gsize = 0;
      MG_CU(cuModuleGetGlobal(&g, &gsize, module_, (sym + "_slot_sizes").c_str()));
      MG_CU(cuMemcpyDtoH(sizes, g, sizeof sizes));
      names_.push_back(k.name);
      entry->desc.name = names_.back().c_str();
      entry->desc.entry = entry.get();
      std::memcpy(entry->desc.slot_sizes, sizes, sizeof entry->desc.slot_sizes);
      entry->desc.flags = sizes[MG_MAX_BUFFERS];
      // Threadgroup variables are static __shared__ memory; the driver knows their size, and
      // how much dynamic memory the function takes without opting in (48 KiB less the static).
      int attr = 0;
      MG_CU(cuFuncGetAttribute(&attr, kFuncAttrSharedSizeBytes, entry->fn));
      entry->desc.static_threadgroup_bytes = unsigned(attr);
      MG_CU(cuFuncGetAttribute(&attr, kFuncAttrMaxDynamicShared, entry->fn));
      entry->dynamic_shared_set = attr;
      MG_CU(cuFuncGetAttribute(&attr, kFuncAttrMaxThreadsPerBlock, entry->fn));
      entry->max_threads = std::uint32_t(attr);
      kernels_.push_back(std::move(entry));
    }
  }
  ~CudaProgram() override {
    bind_quietly(dev_->ctx);
    driver().cuModuleUnload(module_);
  }
  const mg_kernel_desc* find(const std::string& name) const override {
    for (const auto& k : kernels_)
      if (name == k->desc.name) return &k->desc;
    return nullptr;
  }
  // A kernel using many registers fits fewer threads in a block than the device allows.
  std::uint32_t max_total_threads(const mg_kernel_desc& desc) const override {
    return static_cast<const KernelEntry*>(desc.entry)->max_threads;
  }

 private:
  std::shared_ptr<Device> dev_;
  CUmodule module_ = nullptr;
  std::vector<std::unique_ptr<KernelEntry>> kernels_;
  std::list<std::string> names_;
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {};
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(std::shared_ptr<Device> dev) : dev_(std::move(dev)) {
    stream_ = std::make_shared<Stream>(dev_);
    events_ = std::make_shared<EventPool>(dev_);
  }
  ~CudaBackend() override {
    const Driver& d = driver();
    bind_quietly(dev_->ctx);
    d.cuStreamSynchronize(stream_->s);
    if (report_) d.cuMemFree(report_);
  }

  const DeviceInfo& info() const override { return dev_->info; }

  std::shared_ptr<Allocation> allocate(std::size_t nbytes, Storage storage) override {
    return std::make_shared<CudaAllocation>(dev_, nbytes, storage);
  }

  std::shared_ptr<Program> build(const msl::Translation& tr, const Constants& constants,
                                 const std::string* only) override {
    std::string source = cuda_source(tr, constants, only, debug_);
    const Nvrtc& n = nvrtc();
    std::string key = Sha256()
                          .update(n.version).update("\n").update(nvrtc_options(dev_->sm)).update("\n")
                          .update(METALGPU_VERSION).update("\n").update(source)
                          .hex()
                          .substr(0, 40);
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = programs_.find(key); it != programs_.end()) return it->second;
    if (auto dump = dump_dir()) std::ofstream(*dump + "/" + key + ".cu") << source;
    auto dir = cache_dir();
    std::string path = dir ? *dir + "/" + key + ".sm" + std::to_string(dev_->sm) + ".cubin" : "";
    std::string cubin = dir ? read_file(path) : "";
    std::shared_ptr<CudaProgram> program;
    if (!cubin.empty()) {
      try {
        program = std::make_shared<CudaProgram>(dev_, cubin, tr, only);
      } catch (const std::exception&) {
        unlink(path.c_str());  // a corrupt entry is rebuilt, never trusted
      }
    }
    if (!program) {
      try {
        cubin = compile_cubin(source, dev_->sm, tr.path());
      } catch (CompileError& e) {
        e.set_source(tr.source());
        throw;
      }
      if (dir) {
        std::string temp = path + ".tmp" + std::to_string(getpid());
        std::ofstream(temp, std::ios::binary) << cubin;
        publish_file(temp, path);
      }
      program = std::make_shared<CudaProgram>(dev_, cubin, tr, only);
    }
    programs_[key] = program;
    return program;
  }

  void check_library(const msl::Translation& tr) override {
    try {
      check_source(library_check_source(tr), dev_->sm, tr.path());
    } catch (CompileError& e) {
      e.set_source(tr.source());
      throw;
    }
  }

  void dispatch(Launch& launch, detail::RunState& run) override {
    dev_->make_current();
    auto* entry = static_cast<KernelEntry*>(launch.kernel->entry);
    mg_launch& a = launch.args;
    // By-value arguments move into the launch block.
    std::size_t used = 0;
    for (int s = 0; s < MG_MAX_BUFFERS; ++s) {
      a.inline_offset[s] = MG_NOT_INLINE;
      int idx = launch.inline_index[s];
      if (idx < 0) continue;
      const std::string& bytes = launch.inline_bytes[std::size_t(idx)];
      if (used + bytes.size() > MG_INLINE_BYTES)
        throw std::invalid_argument("[run_function] values bound by value exceed " + std::to_string(MG_INLINE_BYTES) +
                                    " bytes in total; pass large data in a Buffer");
      std::memcpy(a.inline_data + used, bytes.data(), bytes.size());
      a.inline_offset[s] = unsigned(used);
      used += (bytes.size() + 15) & ~std::size_t(15);
    }
    for (int s = 0; s < MG_MAX_BUFFERS; ++s)
      if (auto* b = static_cast<CudaAllocation*>(launch.buffers[s].get())) b->before_dispatch(stream_);
    for (int s = 0; s < MG_MAX_TEXTURES; ++s)
      if (auto* b = static_cast<CudaAllocation*>(launch.textures[s].get())) b->before_dispatch(stream_);
    // Metal allows 1024 threads along each axis of a threadgroup; CUDA 64 along z.
    for (int d = 0; d < 3; ++d)
      if (a.tg[d] > dev_->max_block[d])
        throw std::invalid_argument("[run_function] threadgroup (" + std::to_string(a.tg[0]) + ", " +
                                    std::to_string(a.tg[1]) + ", " + std::to_string(a.tg[2]) + ") has " +
                                    std::to_string(a.tg[d]) + " threads along " + "xyz"[d] +
                                    "; the cuda backend allows at most " + std::to_string(dev_->max_block[d]));
    unsigned shared = 0;
    for (unsigned v : a.threadgroup_sizes) shared += v;
    if (int(shared) > entry->dynamic_shared_set) {
      MG_CU(cuFuncSetAttribute(entry->fn, kFuncAttrMaxDynamicShared, int(shared)));
      entry->dynamic_shared_set = int(shared);
    }
    if (debug_) a.debug = debug_report();
    std::shared_ptr<std::pair<CUevent, CUevent>> ev;
    if (launch.profile) {
      ev = events_->take();
      MG_CU(cuEventRecord(ev->first, stream_->s));
    }
    auto host_start = std::chrono::steady_clock::now();
    launch_regions(entry->fn, a, shared);
    if (ev) MG_CU(cuEventRecord(ev->second, stream_->s));
    for (int s = 0; s < MG_MAX_BUFFERS; ++s) {
      auto* b = static_cast<CudaAllocation*>(launch.buffers[s].get());
      if (!b) continue;
      if (launch.may_write[s]) b->after_dispatch(stream_);
      else b->mark_used(stream_);
    }
    for (int s = 0; s < MG_MAX_TEXTURES; ++s) {
      auto* b = static_cast<CudaAllocation*>(launch.textures[s].get());
      if (!b) continue;
      if (launch.texture_may_write[s]) b->after_dispatch(stream_);
      else b->mark_used(stream_);
    }
    if (launch.wait || debug_) {
      // The stream, not just the kernel: copies back to host views follow it.
      MG_CU(cuStreamSynchronize(stream_->s));
      if (debug_) raise_fault(launch.kernel->name);
      if (ev) run.completion = std::make_unique<StreamCompletion>(stream_, host_start, std::move(ev));
      else run.gpu_time = std::chrono::duration<double>(std::chrono::steady_clock::now() - host_start).count();
      run.done = true;
      return;
    }
    // The buffers need not be held: an allocation waits for its pending stream before it frees.
    run.done = false;
    run.completion = std::make_unique<StreamCompletion>(stream_, host_start, std::move(ev));
  }

  void synchronize() override {
    dev_->make_current();
    MG_CU(cuStreamSynchronize(stream_->s));
  }

  bool enable_debug() override {
    debug_ = true;
    return true;
  }

 private:
  // Debug mode: where this backend's kernels report a fault (device memory; the lowest faulting
  // thread's), cleared on the stream before each dispatch.
  mg_debug_report* debug_report() {
    if (!report_) MG_CU(cuMemAlloc(&report_, sizeof(mg_debug_report)));
    MG_CU(cuMemsetD8Async(report_, 0, sizeof(mg_debug_report), stream_->s));
    return reinterpret_cast<mg_debug_report*>(report_);
  }
  // Debug mode waits for each dispatch (the caller has synchronised the stream) and raises
  // KernelFault for the fault it reported.
  void raise_fault(const std::string& kernel) {
    mg_debug_report report;
    MG_CU(cuMemcpyDtoH(&report, report_, sizeof report));
    if (!report.faulted) return;
    report.message[sizeof report.message - 1] = '\0';
    throw KernelFault("[run_function] " + std::string(report.message) + " [debug mode]", kernel, report.line,
                      report.thread_position);
  }

  // A grid that is not a multiple of the threadgroup: launch the whole groups together and
  // each edge region with its real block size, so edge groups have exactly their threads.
  // A region with more blocks along an axis than one launch takes (65535 along y and z) goes
  // as several launches, each told its first group (group_offset).
  void launch_regions(CUfunction fn, mg_launch& a, unsigned shared) {
    unsigned full[3], rest[3];
    for (int d = 0; d < 3; ++d) {
      full[d] = a.grid[d] / a.tg[d];
      rest[d] = a.grid[d] % a.tg[d];
    }
    for (int region = 0; region < 8; ++region) {
      unsigned first[3], blocks[3], threads[3];
      bool empty = false;
      for (int d = 0; d < 3; ++d) {
        bool edge = region >> d & 1;
        blocks[d] = edge ? (rest[d] ? 1 : 0) : full[d];
        threads[d] = edge ? rest[d] : a.tg[d];
        first[d] = edge ? full[d] : 0;
        empty |= blocks[d] == 0;
      }
      if (empty) continue;
      // 64-bit steps: 2^32 - 1 blocks along x in steps of 2^31 - 1 would wrap a 32-bit one.
      const std::uint64_t step[3] = {std::max(1u, dev_->max_grid[0]), std::max(1u, dev_->max_grid[1]),
                                     std::max(1u, dev_->max_grid[2])};
      for (std::uint64_t z = 0; z < blocks[2]; z += step[2])
        for (std::uint64_t y = 0; y < blocks[1]; y += step[1])
          for (std::uint64_t x = 0; x < blocks[0]; x += step[0]) {
            a.group_offset[0] = first[0] + unsigned(x);
            a.group_offset[1] = first[1] + unsigned(y);
            a.group_offset[2] = first[2] + unsigned(z);
            void* params[] = {&a};
            MG_CU(cuLaunchKernel(fn, unsigned(std::min(blocks[0] - x, step[0])),
                                 unsigned(std::min(blocks[1] - y, step[1])), unsigned(std::min(blocks[2] - z, step[2])),
                                 threads[0], threads[1], threads[2], shared, stream_->s, params, nullptr));
          }
    }
  }

  std::shared_ptr<Device> dev_;
  std::shared_ptr<Stream> stream_;
  std::shared_ptr<EventPool> events_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<CudaProgram>> programs_;
  bool debug_ = false;
  CUdeviceptr report_ = 0;
};

}  // namespace

std::string cuda_source(const msl::Translation& tr, const Constants& constants, const std::string* only,
                        bool debug) {
  std::string source = debug ? "// metalgpu " METALGPU_VERSION " generated code (cuda, debug mode)\n#define MG_DEBUG 1\n"
                             : "// metalgpu " METALGPU_VERSION " generated code (cuda)\n";
  source += vector_alignment_define();
  source += tr.runtime_omissions();
  source += runtime::common_text;
  source += runtime::cuda_text;
  source += tr.emit(msl::Target::cuda, constants, only, debug);
  return source;
}

void check_translation(const msl::Translation& tr, const Constants& constants, int sm, const std::string* only,
                       bool syntax_only, bool debug) {
  if (syntax_only && !only) {
    check_source(library_check_source(tr), sm, tr.path());
  } else if (syntax_only) {
    check_source(cuda_source(tr, constants, only, debug), sm, tr.path());
  } else {
    const std::string source = cuda_source(tr, constants, only, debug);
    // The CUDA this check compiles, beside the cpu backend's C++ (METALGPU_DUMP): what to read
    // or compile by hand when a kernel's CUDA translation is in question, with no GPU at hand.
    if (auto dump = dump_dir())
      std::ofstream(*dump + "/check-" + Sha256().update(source).hex().substr(0, 40) + ".cu") << source;
    compile_cubin(source, sm, tr.path());
  }
}

std::vector<DeviceInfo> probe(std::string* why) {
  try {
    const Driver& d = driver();
    nvrtc();
    int count = 0;
    MG_CU(cuDeviceGetCount(&count));
    if (count == 0) {
      if (why) *why = "no CUDA device found";
      (void)d;
      return {};
    }
    std::vector<DeviceInfo> out;
    for (int i = 0; i < count; ++i) out.push_back(describe(i, nullptr));
    return out;
  } catch (const std::exception& e) {
    if (why) *why = e.what();
    return {};
  }
}

std::shared_ptr<Backend> create(int index) { return std::make_shared<CudaBackend>(open_device(index)); }

}  // namespace metalgpu::cuda
