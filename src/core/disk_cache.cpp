#include "core/disk_cache.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace metalgpu {

std::optional<std::string> cache_dir() {
  std::string dir;
  if (const char* env = std::getenv("METALGPU_CACHE_DIR"); env && *env) {
    if (std::string(env) == "0") return std::nullopt;
    dir = env;
  } else if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    dir = std::string(xdg) + "/metalgpu";
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    dir = std::string(home) + "/.cache/metalgpu";
  } else {
    return std::nullopt;
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || access(dir.c_str(), W_OK) != 0) return std::nullopt;
  return dir;
}

std::optional<std::string> dump_dir() {
  const char* env = std::getenv("METALGPU_DUMP");
  if (!env || !*env) return std::nullopt;
  std::error_code ec;
  fs::create_directories(env, ec);
  if (ec || access(env, W_OK) != 0) {
    // Said once: a dump that silently writes nothing looks like a compiler that did nothing.
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true))
      std::fprintf(stderr, "metalgpu: METALGPU_DUMP=%s cannot be created or written (%s); nothing is dumped\n", env,
                   ec ? ec.message().c_str() : "not writable");
    return std::nullopt;
  }
  return std::string(env);
}

namespace {
struct Scratch {
  std::string path;
  pid_t owner = getpid();  // a forked child inherits this object, not the folder
  Scratch() {
    std::error_code ec;
    fs::path base = fs::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string templ = (base / "metalgpu-XXXXXX").string();
    if (mkdtemp(templ.data())) path = templ;
    else path = base.string();
  }
  ~Scratch() {
    std::error_code ec;
    if (getpid() == owner && path.find("metalgpu-") != std::string::npos) fs::remove_all(path, ec);
  }
};
}  // namespace

std::string scratch_dir() {
  static Scratch scratch;
  return scratch.path;
}

void publish_file(const std::string& temp, const std::string& final_path) {
  // On disk before it has its name: after a power loss an entry is whole or absent.
  if (int fd = open(temp.c_str(), O_RDONLY); fd >= 0) {
    fsync(fd);
    close(fd);
  }
  std::error_code ec;
  fs::rename(temp, final_path, ec);
  if (ec) fs::remove(temp, ec);
}

}  // namespace metalgpu
