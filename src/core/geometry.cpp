#include <algorithm>
#include <stdexcept>
#include <string>

#include "core/dispatch.hpp"

namespace metalgpu {
namespace {

std::string show(Size3 s) {
  return "(" + std::to_string(s.width) + ", " + std::to_string(s.height) + ", " + std::to_string(s.depth) + ")";
}

// In 64 bits: a grid near 2^32 threads wide must not wrap to zero groups.
std::uint32_t groups_along(std::uint32_t threads, std::uint32_t per_group) {
  return std::uint32_t((std::uint64_t(threads) + per_group - 1) / per_group);
}

}  // namespace

Size3 default_threadgroup(Size3 grid, std::uint32_t max_threads) {
  // Wide in x (where kernels index contiguous memory), modest in y and z.
  if (grid.height == 1 && grid.depth == 1) return {std::min(grid.width, std::min(max_threads, 256u)), 1, 1};
  if (grid.depth == 1) return {std::min(grid.width, 32u), std::min(grid.height, 8u), 1};
  return {std::min(grid.width, 16u), std::min(grid.height, 4u), std::min(grid.depth, 4u)};
}

void set_geometry(mg_launch& args, Size3 grid, Size3 tg, std::uint32_t device_max,
                  const msl::KernelInfo& kernel) {
  if (grid.width == 0 || grid.height == 0 || grid.depth == 0)
    throw std::invalid_argument("[run_function] grid " + show(grid) + " has a zero dimension");
  if (tg.width == 0 || tg.height == 0 || tg.depth == 0)
    throw std::invalid_argument("[run_function] threadgroup " + show(tg) + " has a zero dimension");
  std::uint32_t limit = device_max;
  if (kernel.max_total_threads && kernel.max_total_threads < limit) limit = kernel.max_total_threads;
  if (tg.volume() > limit)
    throw std::invalid_argument("[run_function] threadgroup " + show(tg) + " has " +
                                std::to_string(tg.volume()) + " threads; kernel '" + kernel.name +
                                "' allows at most " + std::to_string(limit) + " per threadgroup");
  // Each axis has up to 2^32 - 1 groups: the product of the three may pass 2^64 and wrap
  // below the limit, so the limit is checked before each multiplication.
  constexpr std::uint64_t kMaxGroups = std::uint64_t(1) << 40;
  std::uint64_t groups = 1;
  bool too_many = false;
  for (std::uint64_t n : {groups_along(grid.width, tg.width), groups_along(grid.height, tg.height),
                          groups_along(grid.depth, tg.depth)}) {
    too_many |= n > kMaxGroups / groups;
    if (too_many) break;
    groups *= n;
  }
  if (too_many)
    throw std::invalid_argument("[run_function] grid " + show(grid) + " with threadgroup " + show(tg) +
                                " makes more than 2^40 (" + std::to_string(kMaxGroups) +
                                ") threadgroups, the most one dispatch can have");
  args.grid[0] = grid.width, args.grid[1] = grid.height, args.grid[2] = grid.depth;
  args.tg[0] = tg.width, args.tg[1] = tg.height, args.tg[2] = tg.depth;
  args.groups[0] = groups_along(grid.width, tg.width);
  args.groups[1] = groups_along(grid.height, tg.height);
  args.groups[2] = groups_along(grid.depth, tg.depth);
}

void set_threadgroup_memory(mg_launch& args, const std::vector<std::pair<int, std::size_t>>& sizes,
                            const msl::KernelInfo& kernel, std::uint64_t static_bytes, std::uint64_t device_max) {
  std::uint64_t total = 0;
  std::uint32_t given = 0;  // slots the caller sized, 0 bytes included (ggml binds 0 to unused ones)
  for (const auto& [index, bytes] : sizes) {
    if (index < 0 || index >= MG_MAX_THREADGROUP_SLOTS)
      throw std::invalid_argument("[run_function] threadgroup_memory index " + std::to_string(index) +
                                  " is out of range (0..30)");
    // Metal rounds threadgroup memory lengths up to a multiple of 16 bytes (checked first:
    // near 2^64 the rounding would wrap to 0).
    std::uint64_t rounded = (std::uint64_t(bytes) + 15) & ~std::uint64_t(15);
    if (bytes > device_max || rounded > device_max)
      throw std::invalid_argument("[run_function] threadgroup_memory[" + std::to_string(index) + "] = " +
                                  std::to_string(bytes) + " bytes exceeds the device limit of " +
                                  std::to_string(device_max) + " bytes");
    args.threadgroup_sizes[index] = static_cast<unsigned>(rounded);
    given |= std::uint32_t(1) << index;
    total += rounded;
  }
  if (total > device_max)
    throw std::invalid_argument("[run_function] threadgroup memory totals " + std::to_string(total) +
                                " bytes; the device allows " + std::to_string(device_max));
  if (static_bytes + total > device_max)
    throw std::invalid_argument("[run_function] kernel '" + kernel.name + "' uses " + std::to_string(static_bytes) +
                                " bytes of threadgroup variables and threadgroup_memory= adds " +
                                std::to_string(total) + "; together " + std::to_string(static_bytes + total) +
                                " bytes exceed the device's threadgroup memory limit (max_threadgroup_memory) of " +
                                std::to_string(device_max) + " bytes");
  for (const auto& p : kernel.params) {
    if (p.role != msl::ParamRole::threadgroup_memory) continue;
    if (args.threadgroup_sizes[p.slot] == 0 && !(given & (std::uint32_t(1) << p.slot)))
      throw std::invalid_argument("[run_function] kernel '" + kernel.name + "' needs threadgroup memory for " +
                                  "[[threadgroup(" + std::to_string(p.slot) + ")]] (parameter '" + p.name +
                                  "'): pass threadgroup_memory={" + std::to_string(p.slot) + ": nbytes}");
  }
}

}  // namespace metalgpu
