#include "backends/cpu/host_compiler.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <mutex>
#include <sstream>
#include <vector>

#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/diagnostics.hpp"
#include "core/disk_cache.hpp"
#include "core/hash.hpp"
#include "metalgpu/errors.hpp"

extern char** environ;

namespace metalgpu::cpu {
namespace {

struct ProcessResult {
  int status = -1;
  std::string output;  // stdout and stderr together
};

// Runs argv without a shell (paths may hold spaces), capturing its output.
ProcessResult run_process(const std::vector<std::string>& argv) {
  int fds[2];
#ifdef __linux__
  // Close-on-exec at once: a process another thread starts meanwhile (a compiler, the NVRTC
  // helper) must not inherit the write end and delay this one's end of file until it exits.
  // The dup2'ed copies below are not close-on-exec, so the compiler still gets them.
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("[cpu] pipe() failed");
#else
  if (pipe(fds) != 0) throw std::runtime_error("[cpu] pipe() failed");
#endif
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  ProcessResult result;
  if (rc != 0) {
    close(fds[0]);
    result.output = std::string("cannot run ") + argv[0] + ": " + std::strerror(rc);
    return result;
  }
  char buf[4096];
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n > 0) result.output.append(buf, std::size_t(n));
    else if (n == 0 || errno != EINTR) break;
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

bool on_path(const std::string& exe) {
  if (exe.find('/') != std::string::npos) return access(exe.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':'))
    if (!dir.empty() && access((dir + "/" + exe).c_str(), X_OK) == 0) return true;
  return false;
}

std::vector<std::string> split_flags(const std::string& flags) {
  std::vector<std::string> out;
  std::istringstream in(flags);
  for (std::string flag; in >> flag;) out.push_back(flag);
  return out;
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string trimmed(std::string text, std::size_t limit = 1500) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > limit) text = text.substr(0, limit) + "...";
  return text;
}

// Identifies a compiler executable for the probe cache: the file behind its path (a wrapper
// script or symlink that is edited changes its size or time), and its full --version text.
std::string compiler_identity(const std::string& exe, const std::string& version_text) {
  std::string resolved = exe;
  if (exe.find('/') == std::string::npos) {
    const char* path = std::getenv("PATH");
    std::stringstream ss(path ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(ss, dir, ':');)
      if (!dir.empty() && access((dir + "/" + exe).c_str(), X_OK) == 0) {
        resolved = dir + "/" + exe;
        break;
      }
  }
  std::string id = exe + "\n" + resolved + "\n" + version_text + "\n";
  struct stat st {};
  if (char* real = realpath(resolved.c_str(), nullptr)) {
    id += std::string(real) + "\n";
    if (stat(real, &st) == 0) id += std::to_string(st.st_size) + " " + std::to_string(st.st_mtime) + "\n";
    std::free(real);
  }
  return id;
}

// The flags this compiler accepts, found by building a small module the way kernels are
// built (compile with fast math, link without) and keeping each optional flag only where the
// build succeeds with it:
//   -march=native  rejected by some compilers (older clang on AArch64, cross compilers)
//   -lmvec         glibc's vector math library: absent on macOS, musl, and some glibc builds;
//                  with it, -DMG_LIBMVEC=1 lets the runtime declare glibc's SIMD variants.
// Throws NotAvailable, with the compiler's output, when not even the plain build works.
void probe_flags(HostCompiler& hc) {
  std::string dir = scratch_dir();
  static int counter = 0;
  std::string base = dir + "/probe-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  std::string src = base + ".cpp", obj = base + ".o", lib = base + ".so";
  {
    std::ofstream f(src, std::ios::binary);
    // Uses a C math function in a loop that may be vectorised, as kernels do.
    f << "#include <stddef.h>\n"
         "extern \"C\" float expf(float);\n"
         "extern \"C\" __attribute__((visibility(\"default\"))) void mg_probe(float* a, size_t n) {\n"
         "  for (size_t i = 0; i < n; ++i) a[i] = expf(a[i]);\n"
         "}\n";
    if (!f) throw NotAvailable("[cpu] cannot write the compiler probe " + src);
  }
  auto compile = [&](const std::string& flags) {
    std::vector<std::string> argv = {hc.path};
    for (auto& f : split_flags(flags)) argv.push_back(f);
    argv.insert(argv.end(), {"-x", "c++", src, "-c", "-o", obj});
    return run_process(argv);
  };
  auto link = [&](const std::string& flags) {
    std::vector<std::string> argv = {hc.path, "-o", lib, obj};
    for (auto& f : split_flags(flags)) argv.push_back(f);
    return run_process(argv);
  };
  auto cleanup = [&] {
    unlink(src.c_str());
    unlink(obj.c_str());
    unlink(lib.c_str());
  };
  const std::string base_compile = hc.compile_flags;
  ProcessResult r{};
  bool compiled = false;
#if defined(__x86_64__) || defined(__aarch64__)
  if (!std::getenv("METALGPU_NO_MARCH_NATIVE")) {
    r = compile(base_compile + " -march=native");
    compiled = r.status == 0;
    if (compiled) hc.compile_flags += " -march=native";
  }
#endif
  if (!compiled) {
    r = compile(base_compile);
    if (r.status != 0) {
      cleanup();
      throw NotAvailable("[cpu] the C++ compiler '" + hc.path + "' cannot compile a test program with " +
                         base_compile + ":\n" + trimmed(r.output));
    }
  }
  const std::string base_link = hc.link_flags;
  // A link that "succeeds" must also give a module this process can load (a compiler for
  // another target, or a CXX that is not a compiler at all, fails here).
  auto loads = [&](ProcessResult& result) {
    if (result.status != 0) return false;
    void* handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* why = dlerror();
      result.status = 1;
      result.output = std::string("the test module cannot be loaded: ") + (why ? why : "dlopen failed");
      return false;
    }
    dlclose(handle);
    return true;
  };
  r = link(base_link + " -lmvec -lm");
  if (loads(r)) {
    hc.link_flags += " -lmvec -lm";
    hc.compile_flags += " -DMG_LIBMVEC=1";
  } else {
    r = link(base_link + " -lm");
    if (loads(r)) {
      hc.link_flags += " -lm";
    } else {
      ProcessResult plain = link(base_link);
      if (!loads(plain)) {
        cleanup();
        throw NotAvailable("[cpu] the C++ compiler '" + hc.path + "' cannot link a shared library (" + base_link +
                           "):\n" + trimmed(plain.output));
      }
    }
  }
  cleanup();
}

// Probes once per compiler and metalgpu version: the answer is kept in the cache folder,
// so a new process does not pay for the probe builds again.
void probe_flags_cached(HostCompiler& hc, const std::string& identity) {
  std::optional<std::string> dir = cache_dir();
  std::string key;
  if (dir) {
    key = *dir + "/compiler-" +
          Sha256()
              .update(identity).update("\n").update(hc.compile_flags).update("\n").update(hc.link_flags)
              .update("\n").update(std::getenv("METALGPU_NO_MARCH_NATIVE") ? "no-march" : "march")
              .update("\n").update(METALGPU_VERSION)
              .hex()
              .substr(0, 32) +
          ".txt";
    std::ifstream f(key);
    std::string compile, link;
    if (std::getline(f, compile) && std::getline(f, link)) {
      hc.compile_flags = compile;
      hc.link_flags = link;
      return;
    }
  }
  probe_flags(hc);
  if (dir) {
    static std::atomic<unsigned> counter{0};
    std::string temp = key + ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    std::ofstream(temp) << hc.compile_flags << "\n" << hc.link_flags << "\n";
    publish_file(temp, key);
  }
}

// Whether this library was built with AddressSanitizer (CMake's METALGPU_SANITIZE=ON).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kBuiltWithAsan = true;
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
constexpr bool kBuiltWithAsan = true;
#  else
constexpr bool kBuiltWithAsan = false;
#  endif
#else
constexpr bool kBuiltWithAsan = false;
#endif

// Sanitizers for generated kernels: on when this library is sanitized (a bug in a kernel is
// then reported like one in the library), or with METALGPU_SANITIZE=1 in a process that has
// the AddressSanitizer runtime loaded (LD_PRELOAD); METALGPU_SANITIZE=0 turns them off. Without
// the runtime in the process an ASan module would end the process when loaded: say so instead.
// The flags enter compile_flags and link_flags, hence the probe's and the kernel cache's keys:
// sanitized and plain modules never mix. -g1: line tables, so reports name the .metal line.
// -O1 (after -O3, so it wins): ASan's recommended level, and a third of -O3's compile time
// with the sanitizers.
struct SanitizerFlags {
  std::string compile, link;
};
SanitizerFlags sanitizer_flags() {
  const char* env = std::getenv("METALGPU_SANITIZE");
  const bool on = env && *env ? std::strcmp(env, "0") != 0 : kBuiltWithAsan;
  if (!on) return {};
  if (!dlsym(RTLD_DEFAULT, "__asan_init"))
    throw NotAvailable(
        "[cpu] METALGPU_SANITIZE=1 builds kernels with AddressSanitizer, whose runtime this process has not "
        "loaded: run Python with LD_PRELOAD=$(g++ -print-file-name=libasan.so), or unset METALGPU_SANITIZE");
  return {"-O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g1",
          "-fsanitize=address,undefined"};
}

// A compiler named by $CXX: the whole value if it names an executable, else split on spaces
// ("ccache g++", "g++ -m64"): the first word runs, the others go before our flags.
std::vector<std::string> cxx_command(const std::string& cxx) {
  if (on_path(cxx) || cxx.find(' ') == std::string::npos) return {cxx};
  return split_flags(cxx);
}

HostCompiler find_compiler() {
  std::vector<std::vector<std::string>> candidates;
  const char* cxx = std::getenv("CXX");
  // $CXX, when set, is the user's choice: if it does not work, say so rather than quietly
  // building with another compiler.
  if (cxx && *cxx) candidates.push_back(cxx_command(cxx));
  else
    for (const char* c : {"c++", "g++", "clang++"})
      if (on_path(c)) candidates.push_back({c});
  std::string failures;  // why each compiler found on PATH was not usable
  for (const auto& command : candidates) {
    std::vector<std::string> argv = command;
    argv.push_back("--version");
    ProcessResult r = run_process(argv);
    if (r.status != 0) {
      if (cxx && *cxx) {
        // status -1: it could not be started (the output says why); else its exit status.
        std::string why = r.status < 0 ? first_line(r.output)
                                       : "'" + std::string(cxx) + " --version' exited with status " +
                                             std::to_string(r.status) +
                                             (r.output.empty() ? "" : " (" + first_line(r.output) + ")");
        throw NotAvailable(std::string("[cpu] the C++ compiler CXX=") + cxx + " does not work: " + why +
                           "; set CXX to a working g++ or clang++, or unset it");
      }
      continue;
    }
    HostCompiler hc;
    hc.path = command[0];
    std::string leading;  // words of $CXX after the executable
    for (std::size_t i = 1; i < command.size(); ++i) leading += command[i] + " ";
    hc.version = first_line(r.output);
    // Metal compiles with fast math by default, but infinities and NaNs still compare and
    // classify as on the GPU (kernels use INFINITY as a sentinel): -fno-finite-math-only, or
    // clang folds `x == INFINITY` and `max(-INFINITY, x)` as it likes. -nostdinc++: generated
    // code needs no C++ library.
    hc.compile_flags = leading + "-std=c++17 -O3 -ffast-math -fno-finite-math-only -fno-math-errno -fPIC -nostdinc++ "
                       "-fvisibility=hidden -fno-exceptions -fno-rtti -w";
    hc.link_flags = leading + "-shared -fPIC";
    const SanitizerFlags sanitize = sanitizer_flags();
    if (!sanitize.compile.empty()) {
      hc.compile_flags += " " + sanitize.compile;
      hc.link_flags += " " + sanitize.link;
    }
    try {
      probe_flags_cached(hc, compiler_identity(hc.path, leading + "\n" + r.output));
    } catch (const NotAvailable& e) {
      if (cxx && *cxx) throw;
      failures += std::string("\n") + e.what();
      continue;
    }
    hc.flags = "compile: " + hc.compile_flags + "\nlink: " + hc.link_flags;
    return hc;
  }
  if (!failures.empty()) throw NotAvailable("[cpu] no usable C++ compiler:" + failures);
  throw NotAvailable("[cpu] no C++ compiler found (tried c++, g++, clang++ on PATH): install g++ or clang++, "
                     "or set CXX");
}

// Maps the compiler's first error to a one-line message about the user's file and line.
CompileError make_error(const std::string& log) {
  Diagnostic d = first_error(log);
  if (!d.found) return CompileError("the host compiler failed:\n" + log.substr(0, 2000), "", 0, log);
  std::string message = d.file;
  message += ":" + std::to_string(d.line);
  if (d.column) message += ":" + std::to_string(d.column);
  message += ": error: ";
  message += d.text;
  return CompileError(message, d.file, d.line, log);
}

}  // namespace

const HostCompiler& host_compiler() {
  static std::once_flag once;
  static HostCompiler compiler;
  static std::string failure;
  std::call_once(once, [] {
    try {
      compiler = find_compiler();
    } catch (const std::exception& e) {
      failure = e.what();
    }
  });
  if (!failure.empty()) throw NotAvailable(failure);
  return compiler;
}

namespace {

// Did the compiler itself crash (as opposed to rejecting the code)?
bool compiler_crashed(const ProcessResult& r) {
  for (const char* sign : {"PLEASE submit a bug report", "frontend command failed", "internal compiler error"})
    if (r.output.find(sign) != std::string::npos) return true;
  return false;
}

// Writes `source` to `src_path` and compiles it with the compile flags plus `extra`; throws
// CompileError. The source file is removed either way.
//
// A compiler that crashes generating code for this CPU (clang 18 does on half vectors with
// -march=native on some AVX-512 machines: a backend bug, the code is fine) gets a second try
// without -march=native, and a note on stderr once per process.
void run_compiler(const std::string& source, const std::string& src_path, const std::vector<std::string>& extra) {
  const HostCompiler& hc = host_compiler();
  {
    std::ofstream f(src_path, std::ios::binary);
    f << source;
    if (!f) throw std::runtime_error("[cpu] cannot write " + src_path);
  }
  auto compile = [&](bool native) {
    std::vector<std::string> argv = {hc.path};
    for (auto& flag : split_flags(hc.compile_flags))
      if (native || flag != "-march=native") argv.push_back(std::move(flag));
    argv.insert(argv.end(), {"-x", "c++", src_path});
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(argv);
  };
  ProcessResult r = compile(true);
  if (r.status != 0 && compiler_crashed(r) && hc.compile_flags.find("-march=native") != std::string::npos) {
    ProcessResult again = compile(false);
    if (again.status == 0) {
      static std::once_flag noted;
      std::call_once(noted, [&] {
        std::fprintf(stderr,
                     "metalgpu: the host compiler (%s) crashed compiling a kernel module with -march=native; "
                     "it was compiled without it (a compiler bug, not the kernel's; METALGPU_NO_MARCH_NATIVE=1 "
                     "leaves the flag out from the start)\n",
                     hc.version.c_str());
      });
    }
    r = std::move(again);
  }
  unlink(src_path.c_str());
  if (r.status != 0) throw make_error(r.output);
}

}  // namespace

void check_syntax(const std::string& source, const std::string& scratch_path) {
  run_compiler(source, scratch_path + ".cpp", {"-fsyntax-only"});
}

void compile_shared_library(const std::string& source, const std::string& output) {
  const std::string object = output + ".o";
  try {
    // Two steps, so that the fast-math flags reach the code generator but not the linker
    // (see HostCompiler::link_flags).
    run_compiler(source, output + ".cpp", {"-c", "-o", object});
    const HostCompiler& hc = host_compiler();
    std::vector<std::string> argv = {hc.path, "-o", output, object};
    for (auto& flag : split_flags(hc.link_flags)) argv.push_back(std::move(flag));
    ProcessResult r = run_process(argv);
    if (r.status != 0) throw std::runtime_error("[cpu] linking the kernel module failed: " + r.output.substr(0, 2000));
  } catch (...) {
    unlink(object.c_str());
    unlink(output.c_str());
    throw;
  }
  unlink(object.c_str());
}

}  // namespace metalgpu::cpu
