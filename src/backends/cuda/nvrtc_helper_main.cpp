// metalgpu-nvrtc: runs one NVRTC compilation for the core, in its own process.
//
// NVRTC has crashed (SIGSEGV inside nvrtcCompileProgram) on real kernels. Compiling here
// instead of in the user's process turns such a crash, or a hang, into an error the core
// reports (src/backends/cuda/nvrtc_compiler.cpp spawns this program and waits for it with a
// time limit) instead of a dead Python process.
//
// Reads one request from stdin and writes one reply to stdout, both in the format described
// in nvrtc_api.hpp; loads NVRTC exactly as the core does (nvrtc(), with the core passing the
// library it loaded in $METALGPU_NVRTC). Exit status 0 whenever a reply was written, whatever
// NVRTC said; 3 for a request it cannot read or a reply it cannot write, with the reason on
// stderr. Not meant to be run by hand.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <unistd.h>

#include "backends/cuda/nvrtc_api.hpp"
#include "metalgpu/errors.hpp"

namespace {

using namespace metalgpu::cuda;

int fail(const std::string& why) {
  std::fprintf(stderr, "metalgpu-nvrtc: %s\n", why.c_str());
  return 3;
}

bool read_all(int fd, std::string* out) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) out->append(buf, std::size_t(n));
    else if (n == 0) return true;
    else if (errno != EINTR) return false;
  }
}

bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n > 0) done += std::size_t(n);
    else if (n < 0 && errno != EINTR) return false;
  }
  return true;
}

int reply(int status, const std::string& text, const std::string& log = {}, const std::string& cubin = {}) {
  if (!write_all(1, nvrtc_pack({kNvrtcHelperMagic, std::to_string(status), text, log, cubin})))
    return fail(std::string("cannot write the reply: ") + std::strerror(errno));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) return fail("takes no arguments (it is run by the metalgpu library, request on stdin)");
  std::string request;
  if (!read_all(0, &request)) return fail(std::string("cannot read the request: ") + std::strerror(errno));
  std::vector<std::string> f;
  if (!nvrtc_unpack(request, &f) || f.size() < 4)
    return fail(std::string("the request is not a ") + kNvrtcHelperMagic + " request (a helper from another metalgpu version?)");
  const std::string& name = f[1];
  const std::string& source = f[2];
  bool want_cubin = f[3] == "1";
  std::vector<std::string> options(f.begin() + 4, f.end());
  try {
    const Nvrtc& n = nvrtc();
    NvrtcOutput out = nvrtc_run(n, source, name, options, want_cubin);
    if (!out.failed.empty()) return reply(kNvrtcReplyFailed, out.failed, out.log);
    return reply(kNvrtcReplyOk, n.version, out.log, out.cubin);
  } catch (const metalgpu::NotAvailable& e) {
    return reply(kNvrtcReplyNotAvailable, e.what());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}
