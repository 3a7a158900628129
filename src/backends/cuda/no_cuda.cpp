// Stand-in for the CUDA backend until it is built: reports why it is not available.
#include "core/backend.hpp"

namespace metalgpu::cuda {

std::vector<DeviceInfo> probe(std::string* why) {
  if (why) *why = "the cuda backend is not built into this version of metalgpu";
  return {};
}

std::shared_ptr<Backend> create(int) { return nullptr; }

}  // namespace metalgpu::cuda
