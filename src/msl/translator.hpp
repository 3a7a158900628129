// MSL -> C++ (cpu) / CUDA C++ (cuda) translation.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "msl/divergent_barriers.hpp"

#include "metalgpu/interface.hpp"
#include "msl/parser.hpp"
#include "msl/preprocessor.hpp"

namespace metalgpu::msl {

enum class Target { cpu, cuda };

Target parse_target(const std::string& name);  // "cpu" | "cuda", else std::invalid_argument

// A shader source after preprocessing and analysis; emits code for any target.
class Translation {
 public:
  // Throws CompileError for preprocessing and structural errors.
  Translation(const std::string& source, const std::string& path, const ShaderOptions& options);

  const SourceModel& model() const { return *model_; }
  const std::vector<KernelInfo>& kernels() const { return model_->kernels(); }
  const KernelInfo* find(const std::string& name) const { return model_->find_kernel(name); }
  bool has_function_constants() const { return !model_->function_constants().empty(); }
  const std::string& path() const { return path_; }
  const std::string& source() const { return source_; }
  // #defines that leave out the runtime's optional parts the source never names (textures and
  // samplers, atomics, simdgroup matrices): placed before the runtime, they spare the host
  // compiler and NVRTC a third of its text for most kernels.
  const std::string& runtime_omissions() const { return omissions_; }
  // Which kernels reach a barrier in code the lanes of a SIMD group may reach apart, and where
  // (divergent_barriers.hpp). Worked out once, on first use.
  const DivergentBarriers& divergent_barriers() const;

  // The translated program without the runtime (which the caller places first). `only`, if
  // set, emits the entry point of that kernel alone. Throws std::invalid_argument for
  // constants that name nothing or do not convert to their declared type.
  // `debug`: every memory access goes through debug mode's checks (debug_instrument.hpp; on
  // cuda bounds only, mg_cuda_debug.h).
  // `work_item_loops` (cpu): cooperative kernels whose barriers sit in structured control flow
  // loop over their threads between barriers instead of running as fibers
  // (work_item_loops.hpp); in debug mode with its checks kept.
  std::string emit(Target target, const Constants& constants, const std::string* only = nullptr,
                   bool debug = false, bool work_item_loops = false) const;
  // The program with the entry points of one instantiation per kernel definition: what
  // checking a large library at load compiles (each kernel is compiled whole on first use).
  std::string emit_representatives(Target target, const Constants& constants) const;
  // What a library check at load compiles: emit_representatives(), or every entry point when
  // METALGPU_CHECK_LIBRARY=all (slow for large libraries; for CI and reports).
  std::string emit_for_check(Target target) const;

 private:
  std::string emit_selected(Target target, const Constants& constants, const std::vector<bool>& selected,
                            bool debug = false, bool work_item_loops = false) const;

  static std::string omissions_for(const SourceModel& model);

  std::string path_;
  std::string source_;
  std::unique_ptr<SourceModel> model_;
  std::string omissions_;
  mutable std::once_flag divergent_once_;
  mutable DivergentBarriers divergent_;
};

// The function-constant values as C++ literals, or "" where undefined; index = declaration order.
std::vector<std::string> resolve_constants(const SourceModel& model, const Constants& constants);

// Entry-point symbol of kernel number `i` of a module.
std::string entry_symbol(std::size_t i);

}  // namespace metalgpu::msl
