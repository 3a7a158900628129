#include "backends/cpu/host_compiler.hpp"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/diagnostics.hpp"
#include "core/disk_cache.hpp"
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
  if (pipe(fds) != 0) throw std::runtime_error("[cpu] pipe() failed");
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

HostCompiler find_compiler() {
  std::vector<std::string> candidates;
  if (const char* cxx = std::getenv("CXX"); cxx && *cxx) candidates.push_back(cxx);
  for (const char* c : {"c++", "g++", "clang++"}) candidates.push_back(c);
  for (const auto& c : candidates) {
    if (!on_path(c)) continue;
    ProcessResult r = run_process({c, "--version"});
    if (r.status != 0) continue;
    HostCompiler hc;
    hc.path = c;
    hc.version = r.output.substr(0, r.output.find('\n'));
    // Metal compiles with fast math by default. -nostdinc++: generated code needs no C++
    // library, and glibc's plain <math.h> (with its SIMD declarations) is what we want.
    hc.compile_flags = "-std=c++17 -O3 -ffast-math -fno-math-errno -fPIC -nostdinc++ "
                       "-fvisibility=hidden -fno-exceptions -fno-rtti -w";
#if defined(__x86_64__) || defined(__aarch64__)
    if (!std::getenv("METALGPU_NO_MARCH_NATIVE")) hc.compile_flags += " -march=native";
#endif
    hc.link_flags = "-shared -fPIC -lmvec -lm";
    hc.flags = "compile: " + hc.compile_flags + "\nlink: " + hc.link_flags;
    return hc;
  }
  throw NotAvailable("[cpu] no C++ compiler found: set $CXX or install g++ or clang++");
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

std::vector<std::string> split_flags(const std::string& flags) {
  std::vector<std::string> out;
  std::istringstream in(flags);
  for (std::string flag; in >> flag;) out.push_back(flag);
  return out;
}

// Writes `source` to `src_path` and compiles it with the compile flags plus `extra`; throws
// CompileError. The source file is removed either way.
void run_compiler(const std::string& source, const std::string& src_path, const std::vector<std::string>& extra) {
  const HostCompiler& hc = host_compiler();
  {
    std::ofstream f(src_path, std::ios::binary);
    f << source;
    if (!f) throw std::runtime_error("[cpu] cannot write " + src_path);
  }
  std::vector<std::string> argv = {hc.path};
  for (auto& flag : split_flags(hc.compile_flags)) argv.push_back(std::move(flag));
  argv.insert(argv.end(), {"-x", "c++", src_path});
  argv.insert(argv.end(), extra.begin(), extra.end());
  ProcessResult r = run_process(argv);
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
