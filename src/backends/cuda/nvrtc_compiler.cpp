#include "backends/cuda/nvrtc_compiler.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/cuda/nvrtc_api.hpp"
#include "core/diagnostics.hpp"
#include "core/disk_cache.hpp"
#include "core/hash.hpp"
#include "metalgpu/errors.hpp"

extern char** environ;

namespace metalgpu::cuda {
namespace {

constexpr const char* kHelperName = "metalgpu-nvrtc";

std::vector<std::string> option_list(int sm) {
  // -default-device: user helper functions carry no __device__; Metal's fast math by default.
  return {"--gpu-architecture=sm_" + std::to_string(sm), "-std=c++17", "--use_fast_math",
          "-default-device", "-w"};
}

CompileError make_error(const std::string& log) {
  Diagnostic d = first_error(log);
  if (!d.found) return CompileError("NVRTC failed:\n" + log.substr(0, 2000), "", 0, log);
  return CompileError(d.file + ":" + std::to_string(d.line) + ": error: " + d.text + " (NVRTC)", d.file, d.line, log);
}

std::string tail(std::string text, std::size_t limit = 1500) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > limit) text = "..." + text.substr(text.size() - limit);
  return text;
}

bool executable(const std::string& path) { return !path.empty() && access(path.c_str(), X_OK) == 0; }

// The folder of the file this code was loaded from: the Python extension (_core) in a wheel or
// an editable install, where the helper is installed beside it; the program itself when the
// static library is linked into one.
std::string own_folder() {
  std::string file;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&own_folder), &info) && info.dli_fname) file = info.dli_fname;
#ifdef __linux__
  // The main program's entry may be just its name as it was started.
  if (file.find('/') == std::string::npos) {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) file.assign(buf, std::size_t(n));
  }
#endif
  std::size_t slash = file.rfind('/');
  return slash == std::string::npos ? std::string() : file.substr(0, slash);
}

// Where to compile: `path` of the helper, or in this process when `in_process`.
struct Helper {
  bool in_process = false;
  std::string path;
};

// $METALGPU_NVRTC_HELPER (a path, or "inprocess"), else metalgpu-nvrtc beside the library
// (own_folder) or in ../libexec from it (CMake's install of the C++ package), else the one
// this build made (the build tree: ctest, programs built beside the library). No silent
// fallback to compiling in this process: a broken install would quietly bring back the crash
// the helper exists to contain.
Helper find_helper() {
  if (const char* e = std::getenv("METALGPU_NVRTC_HELPER"); e && *e) {
    if (std::strcmp(e, "inprocess") == 0) return {true, {}};
    if (!executable(e))
      throw NotAvailable(std::string("[nvrtc] METALGPU_NVRTC_HELPER=") + e + " is not an executable file");
    return {false, e};
  }
  std::vector<std::string> looked;
  if (std::string dir = own_folder(); !dir.empty()) {
    looked.push_back(dir + "/" + kHelperName);
    looked.push_back(dir + "/../libexec/" + kHelperName);  // a C++ program in <prefix>/bin
  }
#ifdef METALGPU_NVRTC_HELPER_BUILD_PATH
  looked.push_back(METALGPU_NVRTC_HELPER_BUILD_PATH);
#endif
  for (const auto& p : looked)
    if (executable(p)) return {false, p};
  std::string where;
  for (const auto& p : looked) where += (where.empty() ? "" : ", ") + p;
  throw NotAvailable(std::string("[nvrtc] the NVRTC helper program ") + kHelperName + " was not found (looked for " +
                     where + "). metalgpu compiles CUDA in that separate process so that an NVRTC crash cannot "
                     "end this one: reinstall metalgpu, or set METALGPU_NVRTC_HELPER to its path (or to "
                     "'inprocess' to compile inside this process, without that protection)");
}

double timeout_seconds() {
  const char* e = std::getenv("METALGPU_NVRTC_TIMEOUT");
  if (!e || !*e) return 600;
  char* end = nullptr;
  double t = std::strtod(e, &end);
  if (end == e || *end || t < 0)
    throw std::invalid_argument(std::string("[nvrtc] METALGPU_NVRTC_TIMEOUT=") + e + " is not a number of seconds");
  return t;  // 0: no limit
}

void close_on_exec(int fd) { fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC); }
void non_blocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

struct HelperRun {
  int status = 0;          // from waitpid
  bool timed_out = false;
  std::string reply;       // its stdout
  std::string errors;      // its stderr (the first 64 KiB)
};

// Runs the helper: the request goes to its stdin while its stdout and stderr are read, all
// through one poll loop (a large request and a large reply cannot deadlock, and the time
// limit holds at every step). stdin/stdout are one socket: send() with MSG_NOSIGNAL (or
// SO_NOSIGPIPE) turns a helper that died before reading everything into EPIPE, where a pipe
// would raise SIGPIPE in the user's process.
HelperRun spawn_helper(const std::string& exe, const std::string& request, const std::string& nvrtc_file,
                       double timeout_s) {
  int sv[2], ep[2];
#ifdef SOCK_CLOEXEC
  // Atomically close-on-exec (here and for the pipe below): a process another thread starts
  // at the same moment must not inherit our ends (it would hold them open and delay our end
  // of file until it exits).
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
#else
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
#endif
    throw std::runtime_error(std::string("[nvrtc] socketpair() failed: ") + std::strerror(errno));
#ifdef __linux__
  if (pipe2(ep, O_CLOEXEC) != 0) {
#else
  if (pipe(ep) != 0) {
#endif
    int err = errno;
    close(sv[0]);
    close(sv[1]);
    throw std::runtime_error(std::string("[nvrtc] pipe() failed: ") + std::strerror(err));
  }
  for (int fd : {sv[0], sv[1], ep[0], ep[1]}) close_on_exec(fd);  // elsewhere: as soon as we can
#ifdef SO_NOSIGPIPE
  int one = 1;
  setsockopt(sv[0], SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 clears close-on-exec on the copies; the originals close at exec.
  posix_spawn_file_actions_adddup2(&actions, sv[1], 0);
  posix_spawn_file_actions_adddup2(&actions, sv[1], 1);
  posix_spawn_file_actions_adddup2(&actions, ep[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);  // whatever this thread blocks, the helper does not
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);

  // The helper loads the very NVRTC file this process loaded.
  std::vector<std::string> env_text;
  for (char** e = environ; e && *e; ++e)
    if (std::strncmp(*e, "METALGPU_NVRTC=", 15) != 0) env_text.emplace_back(*e);
  env_text.push_back("METALGPU_NVRTC=" + nvrtc_file);
  std::vector<char*> envp;
  for (auto& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string arg0 = exe;
  char* argv[] = {arg0.data(), nullptr};

  pid_t pid = 0;
  int rc = posix_spawn(&pid, exe.c_str(), &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(sv[1]);
  close(ep[1]);
  if (rc != 0) {
    close(sv[0]);
    close(ep[0]);
    throw std::runtime_error("[nvrtc] cannot run the NVRTC helper " + exe + ": " + std::strerror(rc));
  }
  non_blocking(sv[0]);
  non_blocking(ep[0]);

  HelperRun run;
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(timeout_s));
  std::size_t sent = 0;
  bool writing = true, out_open = true, err_open = true;
  char buf[65536];
  while (out_open || err_open) {
    int wait_ms = -1;
    if (timeout_s > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
      if (left <= 0) {
        run.timed_out = true;
        kill(pid, SIGKILL);
        break;
      }
      wait_ms = int(std::min<long long>(left, 1000LL * 3600));
    }
    pollfd fds[2];
    nfds_t n = 0;
    int sock_at = -1, err_at = -1;
    if (out_open) {
      sock_at = int(n);
      fds[n++] = {sv[0], short(POLLIN | (writing ? POLLOUT : 0)), 0};
    }
    if (err_open) {
      err_at = int(n);
      fds[n++] = {ep[0], POLLIN, 0};
    }
    int ready = poll(fds, n, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      close(sv[0]);
      close(ep[0]);
      throw std::runtime_error(std::string("[nvrtc] poll() failed: ") + std::strerror(err));
    }
    if (sock_at >= 0 && fds[sock_at].revents) {
      short ev = fds[sock_at].revents;
      if (writing && (ev & (POLLOUT | POLLERR | POLLHUP))) {
#ifdef MSG_NOSIGNAL
        ssize_t k = send(sv[0], request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
#else
        ssize_t k = send(sv[0], request.data() + sent, request.size() - sent, 0);
#endif
        if (k > 0) sent += std::size_t(k);
        // EPIPE / ECONNRESET: the helper is gone; its exit status will say why.
        if ((k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) || sent == request.size()) {
          writing = false;
          shutdown(sv[0], SHUT_WR);
        }
      }
      if (ev & (POLLIN | POLLERR | POLLHUP)) {
        ssize_t k = recv(sv[0], buf, sizeof buf, 0);
        if (k > 0) run.reply.append(buf, std::size_t(k));
        else if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) out_open = writing = false;
      }
    }
    if (err_at >= 0 && fds[err_at].revents) {
      ssize_t k = read(ep[0], buf, sizeof buf);
      if (k > 0) {
        if (run.errors.size() < 65536) run.errors.append(buf, std::size_t(k));
      } else if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        err_open = false;
      }
    }
  }
  close(sv[0]);
  close(ep[0]);
  while (waitpid(pid, &run.status, 0) < 0 && errno == EINTR) {}
  return run;
}

// For a report to NVIDIA: with METALGPU_DUMP set, the CUDA source that crashed or hung NVRTC is
// saved (the cpu backend's check mode dumps only its own C++).
std::string dump_source(const std::string& source) {
  if (const char* env = std::getenv("METALGPU_DUMP"); !env || !*env) return "; METALGPU_DUMP=<folder> saves the CUDA source for a report";
  auto dump = dump_dir();
  if (!dump) return "; METALGPU_DUMP names a folder that cannot be made, so the CUDA source was not saved";
  std::string path = *dump + "/nvrtc-failed-" + Sha256().update(source).hex().substr(0, 40) + ".cu";
  std::ofstream(path, std::ios::binary) << source;
  return "; the CUDA source is in " + path;
}

// 1, 1.5, 600: no trailing zeros. (snprintf, not a stream: on the device machine a module
// built with a static libstdc++ crashed formatting a double through a stream once a library
// with its own libstdc++ had been loaded into the process - the test's fake NVRTC.)
std::string seconds_text(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", s);
  return text;
}

std::string signal_text(int sig) {
  const char* name = strsignal(sig);
  return "signal " + std::to_string(sig) + (name ? std::string(", ") + name : std::string());
}

// Compiles with `extra` options; returns the CUBIN unless `want_cubin` is false. Throws
// CompileError for NVRTC's diagnostics, a crash or a hang of NVRTC.
std::string run_nvrtc(const std::string& source, int sm, const std::string& name,
                      const std::vector<std::string>& extra, bool want_cubin) {
  // Loaded here too (only loaded: nothing is compiled in this process) for NotAvailable with
  // no process started, and for the exact file the helper should load.
  const Nvrtc& n = nvrtc();
  std::vector<std::string> options = option_list(sm);
  options.insert(options.end(), extra.begin(), extra.end());
  Helper helper = find_helper();
  NvrtcOutput out;
  if (helper.in_process) {
    out = nvrtc_run(n, source, name, options, want_cubin);
  } else {
    std::vector<std::string> request = {kNvrtcHelperMagic, name, source, want_cubin ? "1" : "0"};
    request.insert(request.end(), options.begin(), options.end());
    const double limit = timeout_seconds();
    // NVRTC 12.9 crashes now and then on large translations, in some processes and not others
    // (about 1 compile in 15 of a debug-mode module crashed; the same source compiled in the
    // next process): a crash gets three more tries, each in a fresh helper.
    const std::string packed = nvrtc_pack(request);
    HelperRun run = spawn_helper(helper.path, packed, n.file, limit);
    for (int attempt = 1; attempt < 4 && !run.timed_out && WIFSIGNALED(run.status); ++attempt)
      run = spawn_helper(helper.path, packed, n.file, limit);
    const std::string about = " compiling " + name + " (NVRTC " + n.version + ", " + n.file + ")";
    const std::string said = run.errors.empty() ? "" : "; it wrote:\n" + tail(run.errors);
    if (run.timed_out)
      throw CompileError("[nvrtc] the NVRTC compiler did not finish within " + seconds_text(limit) + " s" + about +
                             " and was stopped (METALGPU_NVRTC_TIMEOUT sets the limit)" + dump_source(source) +
                             said,
                         name, 0, run.errors);
    if (WIFSIGNALED(run.status))
      throw CompileError("[nvrtc] the NVRTC compiler crashed (" + signal_text(WTERMSIG(run.status)) + ", four times)" + about +
                             "; it ran in a helper process (" + kHelperName +
                             "), so this process is unharmed. This is a fault in NVRTC: another NVRTC version "
                             "(METALGPU_NVRTC) may not have it" + dump_source(source) + said,
                         name, 0, run.errors);
    std::vector<std::string> reply;
    if (!WIFEXITED(run.status) || WEXITSTATUS(run.status) != 0 || !nvrtc_unpack(run.reply, &reply) || reply.size() != 5)
      throw std::runtime_error("[nvrtc] the NVRTC helper " + helper.path + " failed (" +
                               (WIFEXITED(run.status) ? "exit status " + std::to_string(WEXITSTATUS(run.status))
                                                      : std::string("no exit status")) +
                               ", " + std::to_string(run.reply.size()) + " bytes of reply)" + about + said);
    int status = std::atoi(reply[1].c_str());
    if (status == kNvrtcReplyNotAvailable) throw NotAvailable(reply[2]);
    if (status == kNvrtcReplyFailed) out.failed = reply[2];
    out.log = std::move(reply[3]);
    out.cubin = std::move(reply[4]);
  }
  if (out.failed.rfind("nvrtcCompileProgram", 0) == 0) throw make_error(out.log);
  if (!out.failed.empty()) throw std::runtime_error("[cuda] " + out.failed);
  return out.cubin;
}

}  // namespace

std::string nvrtc_options(int sm) {
  std::string s;
  for (const auto& o : option_list(sm)) s += o + " ";
  return s;
}

std::string compile_cubin(const std::string& source, int sm, const std::string& name) {
  return run_nvrtc(source, sm, name, {}, true);
}

void check_source(const std::string& source, int sm, const std::string& name) {
  try {
    run_nvrtc(source, sm, name, {"--fdevice-syntax-only"}, false);
  } catch (const CompileError& e) {
    // An NVRTC older than the option says so in its log: check by compiling instead.
    if (e.log().find("fdevice-syntax-only") == std::string::npos) throw;
    run_nvrtc(source, sm, name, {}, false);
  }
}

}  // namespace metalgpu::cuda
