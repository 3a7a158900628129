#include "msl/translator.hpp"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "metalgpu/dtype.hpp"
#include "metalgpu/errors.hpp"
#include "msl/debug_instrument.hpp"
#include "msl/divergent_barriers.hpp"
#include "msl/statements.hpp"
#include "msl/structure.hpp"
#include "msl/work_item_loops.hpp"

namespace metalgpu::msl {
namespace {

constexpr int MG_SLOT_COUNT = 31;             // the runtime's MG_MAX_BUFFERS (mg_abi.h)
constexpr int MG_THREADGROUP_SLOT_COUNT = 31;  // its MG_MAX_THREADGROUP_SLOTS

// A loop hint in clang's spelling (`#pragma clang loop unroll(full)`; MLX's STEEL_PRAGMA_UNROLL
// is `_Pragma("clang loop unroll(full)")`) in NVRTC's, which ignores clang's: `hint` is the
// text after `pragma`; "" where it is no such hint. Without it the loops over MLX's GEMM
// fragments stay rolled under NVRTC and their arrays of simdgroup matrices live in local
// memory (the PTX of steel_gemm_fused: up to 384 local loads and 550 stores, none with it).
std::string cuda_loop_hint(const std::string& hint) {
  std::string h;
  for (char c : hint)
    if (c != ' ' && c != '\t') h += c;
  const std::string lead = "clangloop";
  if (h.rfind(lead, 0) != 0) return "";
  h.erase(0, lead.size());
  if (h == "unroll(full)" || h == "unroll(enable)") return "unroll";
  if (h == "unroll(disable)") return "unroll 1";
  const std::string count = "unroll_count(";
  if (h.rfind(count, 0) == 0 && h.back() == ')') return "unroll " + h.substr(count.size() - 1);
  return "";
}

// `T(x)` with T a template's type parameter (one argument, an expression): the tokens of each
// such T. The cpu backend writes them through metal::mg_functional_cast<T> (mg_scalar.h), which
// gives Metal's reading where the host's half (_Float16 under GCC 13+) would refuse it.
std::vector<std::size_t> functional_casts_to_type_parameters(const SourceModel& m) {
  const auto& toks = m.lexed().tokens;
  auto is = [&](std::size_t i, const char* t) {
    return i < toks.size() && toks[i].kind != TokenKind::string_literal && toks[i].text == t;
  };
  auto ident = [&](std::size_t i) { return i < toks.size() && toks[i].kind == TokenKind::identifier; };
  static const std::set<std::string, std::less<>> kBefore = {"return", "case", "else", "throw", "co_return"};
  std::set<std::size_t> out;
  for (const Definition& d : m.structure().definitions()) {
    if (!is(d.head, "template") || !is(d.head + 1, "<") || d.open >= d.close) continue;
    std::set<std::string, std::less<>> params;
    int depth = 0;
    for (std::size_t k = d.head + 1; k < d.open && k < toks.size(); ++k) {
      if (is(k, "<")) ++depth;
      else if (is(k, ">") && --depth == 0) break;
      else if (is(k, ">>") && (depth -= 2) <= 0) break;
      else if (depth == 1 && (is(k, "typename") || is(k, "class")) && ident(k + 1) && !is(k + 2, "<"))
        params.insert(toks[k + 1].text);
    }
    if (params.empty()) continue;
    for (std::size_t k = d.open + 1; k < d.close && k + 1 < toks.size(); ++k) {
      if (!ident(k) || !params.count(toks[k].text) || !is(k + 1, "(") || m.action(k) != TokenAction::keep) continue;
      const std::size_t p = k - 1;
      if (is(p, ".") || is(p, "->") || is(p, "::") || is(p, "new") || is(p, "~") || is(p, ">")) continue;
      if (ident(p) && !kBefore.count(toks[p].text)) continue;  // `const T(x)`, a declaration
      const std::size_t close = match_bracket(m.lexed(), k + 1);
      if (close >= toks.size() || close == k + 2) continue;  // T(): a value, not a cast
      if ((is(p, ";") || is(p, "{") || is(p, "}")) && close == k + 3 && ident(k + 2)) continue;  // `T (x);` declares x
      bool one = true;
      int nest = 0;
      for (std::size_t j = k + 2; j < close && one; ++j) {
        if (is(j, "(") || is(j, "[") || is(j, "{")) ++nest;
        else if (is(j, ")") || is(j, "]") || is(j, "}")) --nest;
        else if (nest == 0 && is(j, ",")) one = false;
      }
      if (one) out.insert(k);
    }
  }
  return std::vector<std::size_t>(out.begin(), out.end());
}

// Writes tokens back as text, keeping every token on the .metal line it came from: plain
// newlines while the source moves forward a little, a #line directive otherwise.
class LineWriter {
 public:
  explicit LineWriter(const Lexed& lexed) : lexed_(lexed) {}

  void token(const Token& at, const std::string& spelling) {
    sync(at.file, at.line);
    if (at.space_before || need_space(spelling)) out_ += ' ';
    out_ += spelling;
  }
  void pragma(const Token& at, const std::string& text) {
    sync(at.file, at.line);
    if (!at_line_start()) {
      out_ += '\n';
      ++line_;
    }
    out_ += '#';
    out_ += text;
    out_ += '\n';
    ++line_;
  }
  void raw(const std::string& text) {
    if (!at_line_start()) out_ += '\n';
    out_ += text;
    if (!text.empty() && text.back() != '\n') out_ += '\n';
    file_ = -1;  // force a #line before the next token
  }
  void line_directive(int file, int line) {
    if (!at_line_start()) out_ += '\n';
    out_ += "#line " + std::to_string(line) + " \"" + escape(lexed_.files[file]) + "\"\n";
    file_ = file;
    line_ = line;
  }
  std::string take() { return std::move(out_); }

 private:
  void sync(int file, int line) {
    if (file == file_ && line >= line_ && line - line_ <= 8) {
      while (line_ < line) {
        out_ += '\n';
        ++line_;
      }
      return;
    }
    line_directive(file, line);
  }
  bool at_line_start() const { return out_.empty() || out_.back() == '\n'; }
  bool need_space(const std::string& next) const {
    if (at_line_start() || next.empty()) return false;
    auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    return word(out_.back()) && word(next.front());
  }
  static std::string escape(const std::string& s) {
    std::string r;
    for (char c : s) {
      if (c == '\\' || c == '"') r += '\\';
      r += c;
    }
    return r;
  }

  const Lexed& lexed_;
  std::string out_;
  int file_ = -1;
  int line_ = 0;
};

// Bits of the nearest half (binary16) or bfloat to d, ties to even.
std::uint16_t small_float_bits(double d, bool bfloat) {
  const int mant = bfloat ? 7 : 10, bias = bfloat ? 127 : 15, max_exp = bfloat ? 255 : 31;
  const std::uint32_t sign = std::signbit(d) ? 0x8000u : 0u;
  if (std::isnan(d)) return std::uint16_t(sign | (bfloat ? 0x7fc0u : 0x7e00u));
  const std::uint32_t inf = std::uint32_t(max_exp) << mant;
  const double a = std::fabs(d);
  if (std::isinf(a)) return std::uint16_t(sign | inf);
  if (a == 0.0) return std::uint16_t(sign);
  int e = 0;
  std::frexp(a, &e);
  int exp = e - 1;                       // a in [2^exp, 2^(exp+1))
  if (exp < 1 - bias) exp = 1 - bias;    // subnormal: fixed exponent
  double q = std::nearbyint(std::ldexp(a, mant - exp));  // significand, ties to even
  if (q >= std::ldexp(1.0, mant + 1)) {
    q /= 2;
    ++exp;
  }
  const std::uint32_t m = std::uint32_t(q), hidden = 1u << mant;
  if (m < hidden) return std::uint16_t(sign | m);  // subnormal
  if (exp + bias >= max_exp) return std::uint16_t(sign | inf);
  return std::uint16_t(sign | (std::uint32_t(exp + bias) << mant) | (m - hidden));
}

std::string literal_for(const std::string& type, const ConstantValue& v, const std::string& name) {
  auto dt = DType::parse(type);
  bool is_bool = type == "bool";
  if (!dt && !is_bool)
    throw std::invalid_argument("[translate] function constant '" + name + "' has type '" + type +
                                "', which cannot be set from a host value");
  char buf[64];
  if (is_bool) {
    bool b = std::visit([](auto x) { return x != decltype(x)(0); }, v.value);
    return b ? "true" : "false";
  }
  if (dt->is_float()) {
    double d = std::visit([](auto x) { return double(x); }, v.value);
    std::snprintf(buf, sizeof buf, "(%s)(%a)", type.c_str(), d);
    std::string lit = buf;
    if (std::isnan(d)) lit = "(" + type + ")(__builtin_nanf(\"\"))";
    if (std::isinf(d)) lit = std::string("(") + type + ")(" + (d < 0 ? "-" : "") + "__builtin_inff())";
    // half and bfloat can be classes (bfloat always, half under CUDA) whose conversion from
    // float is not constexpr: MG_FC_HALF / MG_FC_BFLOAT (mg_kernel.h) build them from bits.
    if (dt->lanes == 1 && (dt->scalar == Scalar::float16 || dt->scalar == Scalar::bfloat16)) {
      const bool bf = dt->scalar == Scalar::bfloat16;
      std::snprintf(buf, sizeof buf, "(0x%04xu, ", unsigned(small_float_bits(d, bf)));
      return std::string(bf ? "MG_FC_BFLOAT" : "MG_FC_HALF") + buf + lit + ")";
    }
    return lit;
  }
  if (std::holds_alternative<double>(v.value))
    throw TypeMismatch("[translate] function constant '" + name + "' is " + type +
                       "; got a floating-point value");
  bool neg = std::holds_alternative<std::int64_t>(v.value) && std::get<std::int64_t>(v.value) < 0;
  if (neg && !dt->is_signed())
    throw std::invalid_argument("[translate] function constant '" + name + "' is " + type +
                                "; a negative value does not fit");
  if (neg) std::snprintf(buf, sizeof buf, "(%s)(%" PRId64 "LL)", type.c_str(), std::get<std::int64_t>(v.value));
  else {
    std::uint64_t u = std::visit([](auto x) { return std::uint64_t(x); }, v.value);
    std::snprintf(buf, sizeof buf, "(%s)(%" PRIu64 "ULL)", type.c_str(), u);
  }
  return buf;
}

// How an entry point reaches the launch block on each target.
struct LaunchAccess {
  const char* member;             // "__L->" (cpu: a pointer) or "__L." (cuda: by value)
  const char* slot_open;          // expression before the slot index for [[buffer(n)]]
  const char* slot_close;
  const char* threadgroup_first;  // first argument of threadgroup_slot()
};
constexpr LaunchAccess kCpuAccess{"__L->", "__L->slots[", "]", "__t"};
constexpr LaunchAccess kCudaAccess{"__L.", "__metalgpu::cuda::slot_address(__L, ", ")", "__L"};

// The parts of an entry point both targets share: binding each parameter, the call's
// argument list, and the size expression of each [[buffer(n)]] slot's type.
struct EntryArgs {
  std::string prologue;
  std::string args;
  std::string sizes[MG_SLOT_COUNT];
};

// The kernel function's pointer type.
std::string function_type(const KernelInfo& k) {
  return k.fn_type.empty() ? "decltype(&" + k.call + ")" : k.fn_type;
}

EntryArgs entry_args(const KernelInfo& k, const LaunchAccess& L) {
  EntryArgs e;
  for (std::size_t p = 0; p < k.params.size(); ++p) {
    const KernelParam& prm = k.params[p];
    const std::string n = std::to_string(p), slot = std::to_string(prm.slot);
    const std::string ty = "__metalgpu::arg_t<__F, " + n + ">";
    if (!e.args.empty()) e.args += ", ";
    switch (prm.role) {
      case ParamRole::buffer:
        e.prologue += "  auto&& __a" + n + " = __metalgpu::slot<" + ty + ">(" + L.slot_open + slot + L.slot_close + ");\n";
        e.args += "__a" + n;
        e.sizes[prm.slot] = "__metalgpu::slot_size<__metalgpu::arg_t<" + function_type(k) + ", " + n + ">>::value";
        break;
      case ParamRole::builtin:
        e.args += "__metalgpu::builtin_as<" + ty + ">(__t." + prm.builtin + ")";
        break;
      case ParamRole::threadgroup_memory:
        e.args += "__metalgpu::threadgroup_slot<" + ty + ">(" + L.threadgroup_first + ", " + slot + ")";
        break;
      case ParamRole::texture:
        e.args += "__metalgpu::texture_slot<" + ty + ">(" + std::string(L.member) + "textures[" + slot + "])";
        break;
      case ParamRole::sampler:
        e.args += std::string("__metalgpu::sampler_slot(") + L.member + "samplers[" + slot + "])";
        break;
    }
  }
  return e;
}

// Debug mode: the entry's names (`__aN`) of the kernel's arguments that debug_instrumentation
// proved accessed by the grid position.
std::vector<std::string> grid_proven_slots(const Translation& tr, const KernelInfo& k,
                                           const std::unordered_map<int, std::vector<std::string>>& grid) {
  std::vector<std::string> out;
  const auto it = grid.find(tr.model().structure().function_at(k.decl_token));
  if (it == grid.end()) return out;
  for (std::size_t p = 0; p < k.params.size(); ++p)
    if (k.params[p].role == ParamRole::buffer &&
        std::find(it->second.begin(), it->second.end(), k.params[p].name) != it->second.end())
      out.push_back("__a" + std::to_string(p));
  return out;
}

// Debug mode: the entry tells the checks which dispatch runs and what each slot is called.
std::string debug_prologue(const KernelInfo& k) {
  std::string out = "  ::__metalgpu::dbg::enter(__L, \"" + k.name + "\");\n";
  for (const KernelParam& p : k.params) {
    if (p.role == ParamRole::buffer)
      out += "  ::__metalgpu::dbg::note_buffer(__L, " + std::to_string(p.slot) + ", \"" + p.name + "\");\n";
    else if (p.role == ParamRole::threadgroup_memory)
      out += "  ::__metalgpu::dbg::name_threadgroup_slot(" + std::to_string(p.slot) + ", \"" + p.name + "\");\n";
  }
  return out;
}

std::string line_directive(const Translation& tr, const KernelInfo& k) {
  return "#line " + std::to_string(k.line) + " \"" + tr.model().lexed().files[k.file] + "\"\n";
}

// CPU: per kernel an entry running a range of threadgroups, and a descriptor; the module
// lists them through mg_module_kernels().
void emit_cpu_entries(std::string& out, const Translation& tr, const std::vector<bool>& selected, bool debug,
                      const WorkItemLoops& loops, const std::unordered_map<int, std::vector<std::string>>& grid) {
  const std::vector<bool>& work_item_loops = loops.kernels;
  const auto& kernels = tr.kernels();
  std::string table;
  std::size_t emitted = 0;
  for (std::size_t i = 0; i < kernels.size(); ++i) {
    const KernelInfo& k = kernels[i];
    if (!selected[i]) continue;
    const std::string sym = entry_symbol(i);
    const EntryArgs e = entry_args(k, kCpuAccess);
    out += line_directive(tr, k);
    out += "extern \"C\" MG_EXPORT void " + sym +
           "(const mg_launch* __L, unsigned long long __g0, unsigned long long __g1) {\n";
    out += "  using __F = " + function_type(k) + ";\n";
    if (debug) out += debug_prologue(k);
    out += e.prologue;
    // Threads that cooperate (barriers, SIMD-group functions, threadgroup memory) run as
    // fibers, or, where the kernel's body was rewritten into work-item loops, the kernel runs
    // once per group; the rest as a plain loop the compiler can vectorise.
    // Debug mode: a fault leaves through dbg::guarded, abandoning the rest of this share.
    // Accesses by the grid position proven for the share (dbg::prove_grid) make the loop two
    // copies: in the one taken when they are, the compiler sees them as plain accesses.
    const std::vector<std::string> proven = debug ? grid_proven_slots(tr, k, grid) : std::vector<std::string>();
    if (!proven.empty()) {
      std::string list;
      for (const std::string& a : proven) list += (list.empty() ? "" : ", ") + ("::__metalgpu::dbg::grid_access_of(" + a + ")");
      out += "  const ::__metalgpu::dbg::grid_access __mg_grid[] = {" + list + "};\n";
      out += "  ::__metalgpu::dbg::prove_grid(__L, __g0, __g1, __mg_grid, " + std::to_string(proven.size()) + "u);\n";
    }
    if (debug) out += "  ::__metalgpu::dbg::guarded([&] {\n";
    const bool wil = !work_item_loops.empty() && work_item_loops[i];
    if (!wil && i < loops.fibers_because.size() && !loops.fibers_because[i].empty())
      out += "// '" + k.name + "' runs as fibers: " + loops.fibers_because[i] + "\n";
    const std::string loop = std::string("  __metalgpu::cpu::") +
                             (wil ? "run_groups_wil" : k.cooperative ? "run_groups_cooperative" : "run_groups") +
                             "(__L, __g0, __g1, [&](const __metalgpu::thread_ctx& __t) " +
                             (k.cooperative && !wil ? "" : "MG_LAMBDA_INLINE ") + "{\n" + "    (void)__t;\n    " +
                             k.call + "(" + e.args + ");\n  });\n";
    if (!proven.empty()) out += "  if (::__metalgpu::dbg::grid_proven())\n  " + loop + "  else\n  " + loop;
    else out += loop;
    if (debug) out += "  });\n";
    out += "}\n";
    // Descriptor: sizes come from the compiler, so structs get Metal's layout as compiled.
    out += "static mg_kernel_desc " + sym + "_desc() {\n  mg_kernel_desc __s = {};\n  __s.name = \"" + k.name +
           "\";\n  __s.entry = (void*)&" + sym + ";\n";
    for (int s = 0; s < MG_SLOT_COUNT; ++s)
      if (!e.sizes[s].empty()) out += "  __s.slot_sizes[" + std::to_string(s) + "] = " + e.sizes[s] + ";\n";
    out += std::string("  __s.flags = ") + (k.cooperative ? "MG_KERNEL_COOPERATIVE" : "0") + ";\n";
    if (!k.threadgroup_variables.empty()) {
      std::string list;
      for (unsigned v : k.threadgroup_variables) list += (list.empty() ? "" : ", ") + std::to_string(v) + "u";
      out += "  static const unsigned __tgv[] = {" + list + "};\n  __s.static_threadgroup_bytes = "
             "__metalgpu::cpu::threadgroup_total(__tgv, " + std::to_string(k.threadgroup_variables.size()) + "u);\n";
    }
    out += "  return __s;\n}\n";
    table += "  out[" + std::to_string(emitted++) + "] = " + sym + "_desc();\n";
  }
  out += "extern \"C\" MG_EXPORT unsigned mg_module_kernels(mg_kernel_desc* out, unsigned cap) {\n";
  out += "  if (cap < " + std::to_string(emitted) + "u) return " + std::to_string(emitted) + "u;\n";
  out += table;
  out += "  return " + std::to_string(emitted) + "u;\n}\n";
}

// Debug mode (cuda): the names its reports give each [[buffer(n)]] slot, then each
// [[threadgroup(n)]] slot, as a device array the entry hands to dbg::enter.
std::string cuda_debug_names(const KernelInfo& k, const std::string& sym) {
  std::vector<std::string> names(MG_SLOT_COUNT + MG_THREADGROUP_SLOT_COUNT, "nullptr");
  for (const KernelParam& p : k.params) {
    if (p.role == ParamRole::buffer && p.slot >= 0 && p.slot < MG_SLOT_COUNT)
      names[std::size_t(p.slot)] = "\"" + p.name + "\"";
    else if (p.role == ParamRole::threadgroup_memory && p.slot >= 0 && p.slot < MG_THREADGROUP_SLOT_COUNT)
      names[std::size_t(MG_SLOT_COUNT + p.slot)] = "\"" + p.name + "\"";
  }
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
  return "__device__ const char* const " + sym + "_names[] = {" + list + "};\n";
}

// CUDA: does the module (its selected kernels) need barriers that count warps (mg_cuda_exec.h)?
bool module_counts_warps(const Translation& tr, const std::vector<bool>& selected) {
  for (std::size_t i = 0; i < selected.size(); ++i)
    if (selected[i] && tr.kernels()[i].cooperative && tr.divergent_barriers().kernels[i]) return true;
  return false;
}

// CUDA: one __global__ entry per kernel taking the launch block by value, and per kernel a
// device array the host reads back: the size of each [[buffer(n)]] slot's type (32 = flags).
// `debug`: the entry tells debug mode's checks the dispatch and the slots' names.
// `warp_barriers`: the module's cooperative kernels set up and leave the barriers that count
// warps (every one of them: barriers are one kind per module).
void emit_cuda_entries(std::string& out, const Translation& tr, const std::vector<bool>& selected, bool debug,
                       bool warp_barriers) {
  const auto& kernels = tr.kernels();
  for (std::size_t i = 0; i < kernels.size(); ++i) {
    const KernelInfo& k = kernels[i];
    if (!selected[i]) continue;
    const std::string sym = entry_symbol(i);
    const EntryArgs e = entry_args(k, kCudaAccess);
    if (debug) out += cuda_debug_names(k, sym);
    out += line_directive(tr, k);
    out += "extern \"C\" __global__ void " + sym + "(const __grid_constant__ mg_launch __L) {\n";
    out += "  using __F = " + function_type(k) + ";\n";
    if (debug) out += "  ::__metalgpu::dbg::enter(&__L, \"" + k.name + "\", " + sym + "_names);\n";
    out += "  const __metalgpu::thread_ctx __t = __metalgpu::cuda::make_ctx(__L);\n  (void)__t;\n" + e.prologue;
    const bool counted = warp_barriers && k.cooperative;
    if (counted) out += "  ::__metalgpu::cuda::barriers_begin();\n";
    out += "  " + k.call + "(" + e.args + ");\n";
    if (counted) out += "  ::__metalgpu::cuda::barriers_end();\n";
    out += "}\n";
    out += "extern \"C\" __device__ const unsigned " + sym + "_slot_sizes[" + std::to_string(MG_SLOT_COUNT + 1) + "] = {";
    for (int s = 0; s < MG_SLOT_COUNT; ++s) out += (s ? ", " : "") + (e.sizes[s].empty() ? "0u" : e.sizes[s]);
    out += std::string(", ") + (k.cooperative ? "1u" : "0u") + "};\n";
  }
}

}  // namespace

Target parse_target(const std::string& name) {
  if (name == "cpu") return Target::cpu;
  if (name == "cuda") return Target::cuda;
  throw std::invalid_argument("[translate] unknown target '" + name + "' (expected \"cpu\" or \"cuda\")");
}

std::string entry_symbol(std::size_t i) { return "mg_entry_" + std::to_string(i); }

Translation::Translation(const std::string& source, const std::string& path, const ShaderOptions& options)
    : path_(path), source_(source) {
  PreprocessOptions pp;
  pp.include_dirs = options.include_dirs;
  pp.defines = options.defines;
  pp.predefined = {{"__METAL_VERSION__", "310"},
                   {"__METAL_MACOS__", "1"},
                   {"__METALGPU__", "1"},
                   {"__HAVE_BFLOAT__", "1"}};
  PreprocessResult pre = preprocess(source, path, pp);
  model_ = std::make_unique<SourceModel>(lex_preprocessed(pre.text, path), path);
  omissions_ = omissions_for(*model_);
}

namespace {
bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }
}  // namespace

// Conservative: any identifier that could name something of a part keeps it (a false alarm
// costs parse time, a miss would fail the build), and the generated code itself names a part
// only where the source does (texture and sampler parameters, simdgroup-matrix statements).
std::string Translation::omissions_for(const SourceModel& model) {
  static const std::set<std::string, std::less<>> kSamplerWords = {
      "sampler",    "access",     "address",   "border_color", "compare_func", "coord",
      "filter",     "mag_filter", "min_filter", "mip_filter",  "r_address",    "s_address",
      "t_address",  "bias",       "level",     "min_lod_clamp", "lod_options"};
  bool textures = false, atomics = false, matrices = false;
  for (const Token& t : model.lexed().tokens) {
    if (t.kind != TokenKind::identifier) continue;
    const std::string_view w = t.text;
    textures = textures || starts_with(w, "texture") || starts_with(w, "depth") || starts_with(w, "gradient") ||
               kSamplerWords.count(w);
    atomics = atomics || starts_with(w, "atomic") || starts_with(w, "memory_order") || starts_with(w, "thread_scope");
    matrices = matrices || starts_with(w, "simdgroup_") || starts_with(w, "make_filled_simdgroup") ||
               w == "uniform" || w == "make_uniform";
  }
  std::string defines;
  if (!textures) defines += "#define MG_NO_TEXTURES 1\n";
  if (!atomics) defines += "#define MG_NO_ATOMICS 1\n";
  if (!matrices) defines += "#define MG_NO_SIMDGROUP_MATRIX 1\n";
  return defines;
}

std::vector<std::string> resolve_constants(const SourceModel& model, const Constants& constants) {
  const auto& decls = model.function_constants();
  std::vector<std::string> values(decls.size());
  for (const auto& [key, value] : constants) {
    bool found = false;
    for (std::size_t i = 0; i < decls.size(); ++i) {
      if (decls[i].name == key || std::to_string(decls[i].index) == key) {
        values[i] = literal_for(decls[i].type, value, decls[i].name);
        found = true;
      }
    }
    if (!found)
      throw std::invalid_argument("[set_function] the shader declares no function constant '" + key + "'");
  }
  return values;
}

const DivergentBarriers& Translation::divergent_barriers() const {
  std::call_once(divergent_once_, [this] { divergent_ = msl::divergent_barriers(*model_); });
  return divergent_;
}

std::string Translation::emit(Target target, const Constants& constants, const std::string* only,
                              bool debug, bool work_item_loops) const {
  if (only && !find(*only))
    throw std::invalid_argument("[translate] no kernel named '" + *only + "' in " + path_);
  std::vector<bool> selected(kernels().size(), true);
  if (only)
    for (std::size_t i = 0; i < selected.size(); ++i) selected[i] = kernels()[i].name == *only;
  return emit_selected(target, constants, selected, debug, work_item_loops);
}

std::string Translation::emit_representatives(Target target, const Constants& constants) const {
  // One instantiation per kernel definition: a template's code is checked once, not once per
  // type list (MLX's binary.metal: 4,122 entry points, a few dozen definitions).
  std::vector<bool> selected(kernels().size(), false);
  std::set<std::size_t> seen;
  for (std::size_t i = 0; i < selected.size(); ++i) selected[i] = seen.insert(kernels()[i].decl_token).second;
  return emit_selected(target, constants, selected);
}

std::string Translation::emit_for_check(Target target) const {
  const char* mode = std::getenv("METALGPU_CHECK_LIBRARY");
  if (mode && std::string(mode) == "all") return emit(target, {});
  return emit_representatives(target, {});
}

std::string Translation::emit_selected(Target target, const Constants& constants,
                                       const std::vector<bool>& selected, bool debug,
                                       bool work_item_loops) const {
  const SourceModel& m = *model_;
  const Lexed& lx = m.lexed();
  std::vector<std::string> values = resolve_constants(m, constants);
  LineWriter w(lx);
  const auto& toks = lx.tokens;
  // CUDA: user code lives in namespace metal_user (below). A library that opens `namespace
  // metal {` at file scope extends Apple's metal namespace (MLX adds bfloat math, type traits);
  // inside metal_user that would declare a new metal_user::metal. So metal_user is closed around
  // such a block, and the block sees the user's names (MLX's file-scope typedef bfloat16_t, its
  // helper functions) through a using-directive: for lookup from inside metal they act as if
  // declared at global scope, so metal's own names still come first, and a qualified metal::X
  // reaches them only where metal itself has no X.
  const bool cuda = target == Target::cuda;
  // The operands of a conditional convert to their common type, as Metal's builtin half would
  // (see SourceModel::type_conditional_literals): text to write before a token. MG_ARM_CAST is
  // that conversion where half is a class (CUDA; host compilers without _Float16 or with GCC's
  // C++23 rules for it) and nothing where half is the compiler's _Float16.
  std::unordered_map<std::size_t, std::string> before;
  {
    auto range = [&](std::size_t b, std::size_t e) {
      std::string r;
      for (std::size_t k = b; k < e; ++k) {
        if (!r.empty()) r += ' ';
        r += m.action(k) == TokenAction::replace ? m.replacement(k) : toks[k].text;
      }
      return r;
    };
    for (const auto& c : m.conditionals()) {
      const std::string a = range(c.question + 1, c.colon), b = range(c.colon + 1, c.end);
      before[c.question + 1] += "MG_ARM_CAST(decltype((" + a + ")), decltype((" + b + ")))(";
      before[c.colon].insert(0, ")");
      before[c.colon + 1] += "MG_ARM_CAST(decltype((" + b + ")), decltype((" + a + ")))(";
      before[c.end].insert(0, ")");
    }
  }
  // CUDA: the module's threadgroup barrier, one kind for all its kernels (mg_cuda_exec.h). With
  // barriers that count warps, the lanes that parted around a barrier meet again after the
  // statement where they parted, as on Apple GPUs (divergent_barriers.hpp).
  const bool warp_barriers = cuda && module_counts_warps(*this, selected);
  if (warp_barriers)
    for (const auto& [b, e] : divergent_barriers().rejoin) {
      before[b].insert(0, "{ const unsigned __mg_rejoin = ::__metalgpu::cuda::lanes_here(); ");
      before[e].insert(0, " ::__metalgpu::cuda::rejoin(__mg_rejoin); }");
    }
  // Debug mode: each access through its check (inside the conditionals' conversions).
  DebugChecks debug_checks;
  if (debug) debug_checks = debug_instrumentation(m);
  TextEdits& checks = debug_checks.edits;
  // cpu: T(x) with T a template's type parameter as Metal reads it (mg_functional_cast).
  if (target == Target::cpu)
    for (std::size_t k : functional_casts_to_type_parameters(m)) {
      // Both halves before tokens (the `>` before the `(`): the work-item-loop rewrite, which
      // writes some statements anew, carries what comes before a token, not what comes after.
      before[k] += "::metal::mg_functional_cast<";
      before[k + 1].insert(0, ">");
    }
  // Work-item loops (cpu), which keep debug mode's checks. The edits of a token, outermost
  // first: the rewrite's statement-level ones (a thread loop's head, braces), the
  // conditionals' conversions, debug mode's checks, the rewrite's edits inside expressions.
  WorkItemLoops loops;
  if (work_item_loops && target == Target::cpu)
    loops = msl::work_item_loops(m, selected, &before, debug ? &checks : nullptr);
  for (auto& [k, text] : checks.before) before[k] += text;
  for (auto& [k, text] : loops.edits.before) before[k].insert(0, text);
  for (auto& [k, text] : loops.inner.before) before[k] += text;
  // The rewrite changes no token debug mode edits (it leaves such a kernel to the fibers).
  for (auto& [k, text] : loops.edits.replace) checks.replace[k] = std::move(text);
  for (auto& [k, text] : loops.edits.after) checks.after[k] += text;
  for (auto& [k, text] : loops.inner.after) checks.after[k].insert(0, text);
  int depth = 0;                     // brace depth in the user's code
  int metal_block_depth = -1;        // depth inside the file-scope `namespace metal {`, if open
  bool metal_block_next_brace = false;
  for (std::size_t i = 0; i < toks.size(); ++i) {
    const Token& t = toks[i];
    if (t.kind == TokenKind::end) break;
    if (t.kind == TokenKind::pragma) {
      // A rewrite may drop a pragma (replace) or put code before or after it.
      if (checks.replace.count(i)) continue;
      if (auto b = before.find(i); b != before.end()) w.token(t, b->second);
      const std::string hint = cuda && t.text.rfind("pragma", 0) == 0 ? cuda_loop_hint(t.text.substr(6)) : "";
      w.pragma(t, hint.empty() ? t.text : "pragma " + hint);
      if (auto a = checks.after.find(i); a != checks.after.end()) w.token(t, a->second);
      continue;
    }
    if (cuda && t.kind == TokenKind::punct && t.text == "{") {
      ++depth;
      if (metal_block_next_brace) {
        metal_block_next_brace = false;
        metal_block_depth = depth;
        w.token(t, t.text);
        w.raw("using namespace ::metal_user;");
        continue;
      }
    } else if (cuda && t.kind == TokenKind::punct && t.text == "}") {
      if (depth-- == metal_block_depth) {
        metal_block_depth = -1;
        w.token(t, t.text);
        w.raw("namespace metal_user {");
        continue;
      }
    } else if (cuda && depth == 0 && metal_block_depth < 0 && t.kind == TokenKind::identifier &&
               t.text == "namespace" && m.action(i) == TokenAction::keep && i + 2 < toks.size() &&
               toks[i + 1].text == "metal" && (toks[i + 2].text == "{" || toks[i + 2].text == "::")) {
      w.raw("}  // namespace metal_user");
      metal_block_next_brace = true;
    }
    const auto checked = checks.replace.find(i);
    const auto checked_after = checks.after.find(i);
    if (!before.empty() || checked != checks.replace.end() || checked_after != checks.after.end()) {
      const auto it = before.find(i);
      const TokenAction act = m.action(i);
      if ((it != before.end() || checked != checks.replace.end() || checked_after != checks.after.end()) &&
          (act == TokenAction::keep || act == TokenAction::replace || act == TokenAction::drop)) {
        std::string text = it != before.end() ? it->second : std::string();
        if (checked != checks.replace.end()) text += checked->second;
        else if (act == TokenAction::keep) text += t.text;
        else if (act == TokenAction::replace) text += m.replacement(i);
        if (checked_after != checks.after.end()) text += checked_after->second;
        w.token(t, text);
        continue;
      }
    }
    if (cuda && t.kind == TokenKind::string_literal && i >= 2 && toks[i - 1].text == "(" &&
        toks[i - 2].text == "_Pragma" && m.action(i) == TokenAction::keep && t.text.size() >= 2) {
      const std::string hint = cuda_loop_hint(t.text.substr(1, t.text.size() - 2));
      if (!hint.empty()) {
        w.token(t, "\"" + hint + "\"");
        continue;
      }
    }
    switch (m.action(i)) {
      case TokenAction::keep: w.token(t, t.text); break;
      case TokenAction::drop: break;
      case TokenAction::replace: w.token(t, m.replacement(i)); break;
      case TokenAction::kernel_marker: w.token(t, "MG_KERNEL_FN"); break;  // each target defines it
      case TokenAction::program_constant: w.token(t, "MG_CONSTANT_DATA"); break;
      case TokenAction::constant_decl: {
        std::size_t idx = std::stoul(m.replacement(i));
        const FunctionConstant& fc = m.function_constants()[idx];
        const std::string& v = values[idx];
        w.token(t, "static constexpr " + fc.type + " " + fc.name + " = " +
                       (v.empty() ? fc.type + "()" : v) + ";");
        break;
      }
      case TokenAction::constant_defined:
        w.token(t, values[std::size_t(m.constant_ref(i))].empty() ? "false" : "true");
        break;
    }
  }
  std::string out;
  if (cuda)
    out = std::string("namespace __metalgpu {\nMG_DECL inline void threadgroup_barrier_impl() { ") +
          (warp_barriers ? "cuda::warp_barrier();" : "__syncthreads();") + " }\n}  // namespace __metalgpu\n";
  // CUDA predeclares math functions and vector types globally; user code lives in a
  // namespace where metal's names come first (see mg_constants.h).
  if (target == Target::cuda) out += "namespace metal_user {\n";
  out += w.take();
  out += "\n// ---- metalgpu entry points ----\n";
  if (target == Target::cpu) emit_cpu_entries(out, *this, selected, debug, loops, debug_checks.grid_arguments);
  else emit_cuda_entries(out, *this, selected, debug, warp_barriers);
  if (target == Target::cuda) out += "}  // namespace metal_user\n";
  return out;
}

}  // namespace metalgpu::msl
