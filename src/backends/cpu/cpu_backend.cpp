#include "backends/cpu/cpu_backend.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <unordered_map>

#include <dlfcn.h>
#if defined(__ELF__)
#  include <elf.h>
#endif
#include <sys/mman.h>
#include <unistd.h>

#include "backends/cpu/fault_report.hpp"
#include "backends/cpu/host_compiler.hpp"
#include "backends/cpu/thread_pool.hpp"
#include "backends/cuda/cuda_backend.hpp"
#include "core/disk_cache.hpp"
#include "core/hash.hpp"
#include "msl/work_item_loops.hpp"
#include "core/interface_impl.hpp"
#include "core/runtime_text.hpp"
#include "metalgpu/errors.hpp"
#include "msl/translator.hpp"

namespace metalgpu::cpu {
namespace {

// Host memory: mmap for large buffers (page aligned, zero pages on demand), aligned heap
// memory for small ones. Zero-filled either way, so kernels never read garbage.
class HostAllocation final : public Allocation {
 public:
  HostAllocation(std::size_t bytes, Storage storage) {
    nbytes = bytes;
    if (bytes >= kMmapThreshold) {
      void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      mapped_ = true;
      host = p;
    } else {
      void* p = nullptr;
      if (posix_memalign(&p, 64, bytes < 64 ? 64 : bytes) != 0) throw std::bad_alloc();
      std::memset(p, 0, bytes);
      host = p;
    }
    device = host;
    // Private memory is the same host memory, but not handed to the host as a view: code
    // written against private buffers then behaves here as on a GPU.
    if (storage == Storage::device_private) host = nullptr;
  }
  ~HostAllocation() override {
    if (mapped_) munmap(device, nbytes);
    else std::free(device);
  }

 private:
  static constexpr std::size_t kMmapThreshold = std::size_t(1) << 20;
  bool mapped_ = false;
};

// Host memory that belongs to someone else (a numpy array): never freed here.
class ForeignAllocation final : public Allocation {
 public:
  ForeignAllocation(void* p, std::size_t bytes, std::shared_ptr<void> owner) : owner_(std::move(owner)) {
    host = device = p;
    nbytes = bytes;
  }

 private:
  std::shared_ptr<void> owner_;
};

class CpuProgram final : public Program {
 public:
  CpuProgram(void* handle, std::vector<mg_kernel_desc> kernels)
      : handle_(handle), kernels_(std::move(kernels)) {
    // A debug-mode module turns signals in its kernels into KernelFault.
    debug_signal_ = reinterpret_cast<DebugSignalHandler>(dlsym(handle_, "mg_debug_signal"));
    if (debug_signal_) register_debug_module(debug_signal_);
  }
  ~CpuProgram() override {
    if (debug_signal_) unregister_debug_module(debug_signal_);
    dlclose(handle_);
  }
  const mg_kernel_desc* find(const std::string& name) const override {
    for (const auto& k : kernels_)
      if (name == k.name) return &k;
    return nullptr;
  }

 private:
  void* handle_;
  std::vector<mg_kernel_desc> kernels_;
  DebugSignalHandler debug_signal_ = nullptr;
};

using ModuleKernels = unsigned (*)(mg_kernel_desc*, unsigned);

// Loads a compiled module; returns null (and closes it) if it is not a usable module, with the
// reason in *error. dlerror() is read once: a second read returns null.
std::shared_ptr<CpuProgram> load_module(const std::string& path, std::string* error) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    *error = why ? why : "dlopen failed without a message";
    return nullptr;
  }
  auto list = reinterpret_cast<ModuleKernels>(dlsym(handle, "mg_module_kernels"));
  if (!list) {
    const char* why = dlerror();
    *error = std::string("no mg_module_kernels in the module") + (why ? std::string(": ") + why : "");
    dlclose(handle);
    return nullptr;
  }
  std::vector<mg_kernel_desc> kernels(list(nullptr, 0));
  list(kernels.data(), unsigned(kernels.size()));
  return std::make_shared<CpuProgram>(handle, std::move(kernels));
}

// Whether `path` is at least as long as its ELF header says (section and program headers,
// and every segment's bytes, inside the file): what a truncated module fails.
bool whole_elf_file(const std::string& path) {
#if !defined(__ELF__)
  (void)path;
  return true;  // Mach-O (macOS): dlopen checks its own load commands
#else
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return false;
  const auto size = std::uint64_t(f.tellg());
  Elf64_Ehdr eh;
  f.seekg(0);
  if (size < sizeof eh || !f.read(reinterpret_cast<char*>(&eh), sizeof eh)) return false;
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64) return false;
  if (eh.e_shoff + std::uint64_t(eh.e_shnum) * eh.e_shentsize > size) return false;
  if (eh.e_phoff + std::uint64_t(eh.e_phnum) * eh.e_phentsize > size) return false;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    f.seekg(std::streamoff(eh.e_phoff + std::uint64_t(i) * eh.e_phentsize));
    if (!f.read(reinterpret_cast<char*>(&ph), sizeof ph)) return false;
    if (ph.p_offset + ph.p_filesz > size) return false;
  }
  return true;
#endif
}

std::string read_cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "CPU";
}

DeviceInfo cpu_device() {
  DeviceInfo d;
  d.backend = "cpu";
  d.index = 0;
  d.name = read_cpu_model() + " (" + std::to_string(ThreadPool::instance().size()) + " threads)";
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  d.memory = pages > 0 && page > 0 ? std::uint64_t(pages) * std::uint64_t(page) : 0;
  d.max_threads_per_threadgroup = 1024;
  d.simd_width = 32;
  d.max_threadgroup_memory = 65536;
  return d;
}

// METALGPU_CHECK_CUDA=80,90: also translate every shader for CUDA and compile it with NVRTC
// for those architectures (no GPU needed), so CI catches CUDA translation errors. Builds
// compile fully; a library checked at load (large, or with function constants) gets NVRTC's
// front-end check over the whole file, as the cuda backend's check_library does.
std::string cpu_prelude(const char* what, const msl::Translation& tr) {
  std::string source = std::string("// metalgpu " METALGPU_VERSION " generated code (") + what + ")\n";
  source += tr.runtime_omissions();
  source += runtime::common_text;
  source += runtime::cpu_text;
  return source;
}

// `work_item_loops`: cooperative kernels with barriers in structured control flow loop over
// their threads between barriers; METALGPU_CPU_FIBERS=1 keeps every one on fibers.
std::string cpu_source(const msl::Translation& tr, const Constants& constants, const std::string* only, bool debug,
                       bool work_item_loops) {
  if (debug)
    return "#define MG_DEBUG 1\n" + cpu_prelude("cpu, debug mode", tr) +
           tr.emit(msl::Target::cpu, constants, only, true, work_item_loops);
  return cpu_prelude("cpu", tr) + tr.emit(msl::Target::cpu, constants, only, false, work_item_loops);
}


// `debug`: the cuda translation in debug mode, as the cuda backend's debug mode compiles it -
// for the first architecture listed only (its checks do not differ between architectures, and
// every debug test's kernel goes through NVRTC in CI).
void check_cuda_translation(const msl::Translation& tr, const Constants& constants, const std::string* only,
                            bool syntax_only = false, bool debug = false) {
  const char* archs = std::getenv("METALGPU_CHECK_CUDA");
  if (!archs || !*archs) return;
  std::string list = archs;
  for (std::size_t p = 0; p < list.size();) {
    std::size_t q = list.find(',', p);
    if (q == std::string::npos) q = list.size();
    int sm = std::atoi(list.substr(p, q - p).c_str());
    if (sm > 0) {
      try {
        cuda::check_translation(tr, constants, sm, only, syntax_only, debug);
      } catch (CompileError& e) {
        throw CompileError(std::string(e.what()) + " [CUDA translation check, sm_" + std::to_string(sm) + "]",
                           e.file(), e.line(), e.log(), e.function(), tr.source());
      }
      if (debug) break;
    }
    p = q + 1;
  }
}

// The fiber stacks of the calling OS thread, for every module's cooperative kernels
// (mg_launch::fiber_stacks): one mapping per thread for the life of the thread, whatever the
// number of shaders loaded. Each of the MG_MAX_GROUP_THREADS stacks sits above a guard page,
// and every guard page is a mapping of its own, so per module they would soon exhaust the
// process's limit (vm.max_map_count). Null if the mapping fails: the kernel then aborts.
unsigned char* fiber_stacks_for_this_thread(unsigned long* stack_bytes) {
  struct Stacks {
    unsigned char* base = nullptr;
    std::size_t stack = 0, total = 0;
    ~Stacks() {
      if (base) munmap(base, total);
    }
  };
  static thread_local Stacks s;
  if (!s.base) {
    std::size_t kib = 64;
    if (const char* env = std::getenv("METALGPU_FIBER_STACK_KB")) {
      const long v = std::atol(env);
      if (v >= 16 && v <= 65536) kib = std::size_t(v);
    }
    constexpr std::size_t guard = MG_FIBER_GUARD_BYTES;  // the runtime's layout: slots of guard + stack
    const std::size_t stack = kib * 1024, slot = stack + guard, total = slot * MG_MAX_GROUP_THREADS;
    void* m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      static const char msg[] = "metalgpu: cannot map fiber stacks for a cooperative kernel\n";
      (void)!write(2, msg, sizeof msg - 1);
      return nullptr;
    }
    auto* base = static_cast<unsigned char*>(m);
    for (unsigned i = 0; i < MG_MAX_GROUP_THREADS; ++i) mprotect(base + i * slot, guard, PROT_NONE);
    s.base = base;
    s.stack = stack;
    s.total = total;
  }
  *stack_bytes = s.stack;
  return s.base;
}

class CpuBackend final : public Backend {
 public:
  CpuBackend() : info_(cpu_device()) {}

  const DeviceInfo& info() const override { return info_; }

  std::shared_ptr<Allocation> allocate(std::size_t nbytes, Storage storage) override {
    return std::make_shared<HostAllocation>(nbytes, storage);
  }

  std::shared_ptr<Allocation> wrap(void* host, std::size_t nbytes, std::shared_ptr<void> owner) override {
    return std::make_shared<ForeignAllocation>(host, nbytes, std::move(owner));
  }

  std::shared_ptr<Program> build(const msl::Translation& tr, const Constants& constants,
                                 const std::string* only) override {
    const bool loops = msl::work_item_loops_enabled();
    std::string source = cpu_source(tr, constants, only, debug_, loops);
    try {
      return build_source(tr, constants, only, source);
    } catch (CompileError&) {
      // The rewrite into work-item loops reads declarations by their syntax alone; should the
      // compiler refuse what it wrote, the kernels run as fibers (if that fails too, its error
      // is the program's own).
      // METALGPU_CPU_FIBERS=0 asks for the loops without this retry (tests, CI).
      const char* strict = std::getenv("METALGPU_CPU_FIBERS");
      if (!loops || (strict && *strict)) throw;
      std::string fibers = cpu_source(tr, constants, only, debug_, false);
      if (fibers == source) throw;
      return build_source(tr, constants, only, fibers);
    }
  }

  std::shared_ptr<Program> build_source(const msl::Translation& tr, const Constants& constants,
                                        const std::string* only, const std::string& source) {
    const HostCompiler& hc = host_compiler();
    std::string key = Sha256()
                          .update(hc.version).update("\n").update(hc.flags).update("\n")
                          .update(METALGPU_VERSION).update("\n").update(source)
                          .hex()
                          .substr(0, 40);
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = programs_.find(key); it != programs_.end()) return it->second;
    if (auto dump = dump_dir()) std::ofstream(*dump + "/" + key + ".cpp") << source;
    std::shared_ptr<CpuProgram> program;
    auto dir = cache_dir();
    std::string final_path = (dir ? *dir : scratch_dir()) + "/" + key + ".so";
    std::string load_error;
    if (dir && access(final_path.c_str(), R_OK) == 0) {
      // A cut-short entry (power loss, an interrupted copy of the cache) is mapped by dlopen
      // and faults (SIGBUS) when touched: check that the file holds all the ELF says it does.
      if (whole_elf_file(final_path)) program = load_module(final_path, &load_error);
      if (!program) unlink(final_path.c_str());  // corrupt entry: rebuild it
    }
    if (!program) {
      static std::atomic<unsigned> counter{0};
      std::string temp = (dir ? *dir : scratch_dir()) + "/tmp-" + std::to_string(getpid()) + "-" +
                         std::to_string(counter++) + "-" + key + ".so";
      try {
        compile_shared_library(source, temp);
      } catch (CompileError& e) {
        e.set_source(tr.source());
        throw;
      }
      publish_file(temp, final_path);
      program = load_module(final_path, &load_error);
      if (!program)
        throw std::runtime_error("[cpu] the compiled module " + final_path + " cannot be loaded (compiler " +
                                 hc.path + "): " + load_error);
    }
    check_cuda_translation(tr, constants, only, false, debug_);
    programs_[key] = program;
    return program;
  }

  void check_library(const msl::Translation& tr) override {
    static std::atomic<unsigned> counter{0};
    std::string scratch = scratch_dir() + "/check-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    const std::string source = cpu_prelude("cpu, library check", tr) + tr.emit_for_check(msl::Target::cpu);
    if (auto dump = dump_dir())
      std::ofstream(*dump + "/check-" + Sha256().update(source).hex().substr(0, 40) + ".cpp") << source;
    try {
      check_syntax(source, scratch);
    } catch (CompileError& e) {
      e.set_source(tr.source());
      throw;
    }
    check_cuda_translation(tr, {}, nullptr, /*syntax_only=*/true);
  }

  void dispatch(Launch& launch, detail::RunState& run) override {
    auto start = std::chrono::steady_clock::now();
    auto entry = reinterpret_cast<mg_cpu_entry>(launch.kernel->entry);
    launch.args.fiber_stacks = &fiber_stacks_for_this_thread;
    const mg_launch* args = &launch.args;
    std::uint64_t groups = std::uint64_t(args->groups[0]) * args->groups[1] * args->groups[2];
    std::uint64_t per_group = std::uint64_t(args->tg[0]) * args->tg[1] * args->tg[2];
    // Chunks of about 16K threads: big enough to amortise scheduling, small enough to balance.
    std::uint64_t grain = std::max<std::uint64_t>(1, 16384 / per_group);
    if (launch.kernel->flags & MG_KERNEL_COOPERATIVE) {
      // A cooperative group does far more than 16K element-wise threads' worth of work per
      // thread (a gemm's group loops over all of K): two chunks per worker at least, so a
      // dispatch of a few dozen groups still uses every core.
      const std::uint64_t workers = ThreadPool::instance().size();
      grain = std::min(grain, std::max<std::uint64_t>(1, (groups + 2 * workers - 1) / (2 * workers)));
    }
    mg_debug_report report{};
    if (debug_) launch.args.debug = &report;
    RunningKernel running(launch.kernel->name);
    ThreadPool::instance().parallel_for(groups, grain, [&](std::uint64_t a, std::uint64_t b) {
      entry(args, a, b);
    });
    launch.args.debug = nullptr;
    if (__atomic_load_n(&report.faulted, __ATOMIC_ACQUIRE))
      throw KernelFault("[run_function] " + std::string(report.message) + " [debug mode]", launch.kernel->name,
                        report.line, report.thread_position);
    run.gpu_time = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    run.done = true;
  }

  void synchronize() override {}

  bool enable_debug() override {
    debug_ = true;
    return true;
  }

 private:
  DeviceInfo info_;
  bool debug_ = false;
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<CpuProgram>> programs_;
};

}  // namespace

std::vector<DeviceInfo> probe(std::string* why) {
  try {
    host_compiler();
  } catch (const std::exception& e) {
    if (why) *why = e.what();
    return {};
  }
  return {cpu_device()};
}

std::shared_ptr<Backend> create(int index) {
  if (index != 0) throw std::invalid_argument("[cpu] device " + std::to_string(index) + " does not exist (the cpu backend has device 0)");
  host_compiler();
  return std::make_shared<CpuBackend>();
}

}  // namespace metalgpu::cpu
