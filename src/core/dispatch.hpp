// Dispatch preparation shared by all backends: geometry and argument binding.
#pragma once

#include <optional>
#include <span>

#include "core/backend.hpp"
#include "msl/parser.hpp"

namespace metalgpu {

// The threadgroup the library picks when the caller gives none.
Size3 default_threadgroup(Size3 grid, std::uint32_t max_threads);

// Checks grid and threadgroup against the device and kernel limits and fills the geometry of
// `args`. Throws std::invalid_argument naming the problem.
void set_geometry(mg_launch& args, Size3 grid, Size3 threadgroup, std::uint32_t device_max,
                  const msl::KernelInfo& kernel);

// Sizes the [[threadgroup(n)]] memory of `args` from the caller's {index: bytes}: every such
// parameter of the kernel needs a size; with the kernel's threadgroup variables
// (`static_bytes`) the total must fit the device.
void set_threadgroup_memory(mg_launch& args, const std::vector<std::pair<int, std::size_t>>& sizes,
                            const msl::KernelInfo& kernel, std::uint64_t static_bytes, std::uint64_t device_max);

// What binding needs to know of a kernel's parameters, worked out once per pipeline rather
// than on every dispatch.
struct KernelPlan {
  struct Slot {
    const msl::KernelParam* param = nullptr;  // the [[buffer(n)]] parameter, if any
    std::optional<DType> declared;            // its element type, where it names one we know
    bool read_only = false;                   // const or constant: the kernel cannot write it
  };
  Slot slots[MG_MAX_BUFFERS];
  bool uses_textures = false;  // has texture or sampler parameters
  unsigned conditional_values = 0;  // references and values that a function constant may leave unbound
};
KernelPlan make_plan(const msl::KernelInfo& kernel);

// Fills the buffer slots of `launch` from `bindings`, converting values to the declared
// parameter types and checking what each slot receives.
void bind_arguments(Launch& launch, std::span<const Binding> bindings, const KernelPlan& plan,
                    const msl::KernelInfo& kernel, const mg_kernel_desc& desc, const void* owner);

// Fills the texture and sampler slots of `launch`: every texture or sampler parameter of the
// kernel needs one; textures are checked against the declared texture type and element type.
void bind_textures(Launch& launch, const std::vector<Texture>& textures,
                   const std::vector<std::optional<Sampler>>& samplers, const KernelPlan& plan,
                   const msl::KernelInfo& kernel, const void* owner);

}  // namespace metalgpu
