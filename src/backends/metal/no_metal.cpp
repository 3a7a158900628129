// Stand-in for the Metal backend on platforms without Metal.
#include "core/backend.hpp"

namespace metalgpu::metal {

std::vector<DeviceInfo> probe(std::string* why) {
  if (why) *why = "Metal is only available on Apple platforms";
  return {};
}

std::shared_ptr<Backend> create(int) { return nullptr; }

}  // namespace metalgpu::metal
