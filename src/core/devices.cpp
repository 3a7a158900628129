#include <cstdlib>
#include <stdexcept>

#include "backends/cpu/cpu_backend.hpp"
#include "backends/cuda/cuda_backend.hpp"
#include "core/backend.hpp"
#include "metalgpu/device.hpp"

namespace metalgpu {

namespace metal {
std::vector<DeviceInfo> probe(std::string* why);
std::shared_ptr<Backend> create(int index);
}  // namespace metal

const std::vector<BackendEntry>& backend_registry() {
  // The order is the default preference.
  static const std::vector<BackendEntry> registry = {
      {"metal", &metal::probe, &metal::create},
      {"cuda", &cuda::probe, &cuda::create},
      {"cpu", &cpu::probe, &cpu::create},
  };
  return registry;
}

std::vector<DeviceInfo> devices() {
  std::vector<DeviceInfo> all;
  for (const auto& b : backend_registry()) {
    std::string why;
    for (auto& d : b.probe(&why)) all.push_back(std::move(d));
  }
  return all;
}

std::vector<std::string> unavailable_backends() {
  std::vector<std::string> out;
  for (const auto& b : backend_registry()) {
    std::string why;
    if (b.probe(&why).empty()) out.push_back(std::string(b.name) + ": " + why);
  }
  return out;
}

std::string default_backend() {
  if (const char* env = std::getenv("METALGPU_BACKEND"); env && *env) {
    for (const auto& b : backend_registry())
      if (b.name == std::string(env)) return env;
    throw std::invalid_argument(std::string("[metalgpu] METALGPU_BACKEND='") + env +
                                "' is not a backend (expected metal, cuda or cpu)");
  }
  // Each backend's own reason goes into the error: it is what the user has to fix.
  std::string reasons;
  for (const auto& b : backend_registry()) {
    std::string why;
    if (!b.probe(&why).empty()) return b.name;
    reasons += "\n  " + std::string(b.name) + ": " + (why.empty() ? "not available" : why);
  }
  throw std::runtime_error("[metalgpu] no backend can run on this machine:" + reasons);
}

}  // namespace metalgpu
