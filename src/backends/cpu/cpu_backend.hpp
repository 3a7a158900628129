// The CPU backend: kernels translated to C++, compiled by the host compiler, loaded with
// dlopen and run over a thread pool.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/backend.hpp"

namespace metalgpu::cpu {

std::vector<DeviceInfo> probe(std::string* why);
std::shared_ptr<Backend> create(int index);

}  // namespace metalgpu::cpu
