// Structural analysis of a preprocessed MSL translation unit.
//
// We do not build a full C++ AST: MSL is C++14 plus address spaces and attributes, and the
// host compiler (or NVRTC) does the real parsing after our rewrite. What we need to know is
// where the entry points are, what their parameters bind to, which tokens are Metal-only
// syntax, and which member accesses are swizzles.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "msl/lexer.hpp"
#include "msl/structure.hpp"

namespace metalgpu::msl {

enum class ParamRole { buffer, builtin, threadgroup_memory, texture, sampler };

struct KernelParam {
  std::string name;
  std::string element_type;   // pointee / referee / value type, qualifiers and address space removed
  std::string address_space;  // "device", "constant", "threadgroup", "thread" or ""
  bool pointer = false;
  bool reference = false;
  bool is_const = false;
  ParamRole role = ParamRole::buffer;
  int slot = -1;              // [[buffer(n)]], [[threadgroup(n)]], [[texture(n)]] or [[sampler(n)]] index
  std::string builtin;        // e.g. "thread_position_in_grid"
  std::string function_constant;  // [[function_constant(c)]]: exists only when c is true
  int line = 0;
};

struct KernelInfo {
  std::string name;   // host name: what set_function() takes
  std::string call;   // C++ expression naming the function: "adder", "unary<float, Sin>"
  // The function's pointer type where decltype(&call) cannot name it (template arguments
  // deduced from an instantiation's parameter list): "void(*)(const float*, uint3)".
  std::string fn_type;
  std::vector<KernelParam> params;
  int file = 0;
  int line = 0;
  unsigned max_total_threads = 0;  // [[max_total_threads_per_threadgroup(n)]], 0 if absent
  // Uses barriers, SIMD-group functions or threadgroup memory, itself or through what it calls
  // (decided per kernel: a plain kernel keeps its speed beside cooperating ones).
  bool cooperative = false;
  // Indices into SourceModel::threadgroup_storage() of the threadgroup variables the kernel
  // declares, itself or in what it calls (by name: every overload of a called name counts).
  std::vector<unsigned> threadgroup_variables;
  std::size_t decl_token = 0;      // the '(' of the kernel function's parameter list
};

struct FunctionConstant {
  std::string type;
  std::string name;
  int index = -1;
  std::size_t first_token = 0;  // the declaration [first, last] is replaced on emission
  std::size_t last_token = 0;
  int line = 0;
};

// What emission does with a token (target-independent decisions made by analysis).
enum class TokenAction : unsigned char {
  keep,
  drop,
  replace,            // by `replacement[i]`
  kernel_marker,      // `kernel` / `[[kernel]]`: becomes the target's kernel-function specifier
  program_constant,   // program-scope `constant`: becomes the target's constant-data specifier
  constant_decl,      // first token of a function constant declaration (rest dropped)
  constant_defined,   // `is_function_constant_defined(x)` (rest dropped)
};

class SourceModel {
 public:
  SourceModel(Lexed lexed, std::string main_path);

  const Lexed& lexed() const { return lexed_; }
  const std::vector<KernelInfo>& kernels() const { return kernels_; }
  const KernelInfo* find_kernel(const std::string& name) const;
  const std::vector<FunctionConstant>& function_constants() const { return constants_; }
  TokenAction action(std::size_t i) const { return actions_[i]; }
  const std::string& replacement(std::size_t i) const { return replacements_.at(i); }
  // For constant_defined: index into function_constants().
  int constant_ref(std::size_t i) const { return constant_refs_.at(i); }
  // `c ? a : b` whose operands the CUDA translation converts to their common type (see
  // type_conditional_literals): the '?' and ':' and the token after the third operand.
  struct Conditional {
    std::size_t question, colon, end;
  };
  const std::vector<Conditional>& conditionals() const { return conditionals_; }
  // Functions and records, and what each body uses.
  const Structure& structure() const { return *structure_; }
  // The `threadgroup` tokens that declare threadgroup storage in a kernel body.
  const std::vector<std::size_t>& threadgroup_storage() const { return storage_tokens_; }
  // The names a declaration starting at token `at` declares (`float a[4], b[8]` -> a, b), and
  // its ';' in *semicolon (npos if none). Empty where no name can be told.
  std::vector<std::string> declarator_names(std::size_t at, std::size_t* semicolon) const;
  // The first token of the postfix expression that ends just before token `at` (a `.`, `->`
  // or `[`), or npos where there is none.
  std::size_t postfix_start(std::size_t at) const;

 private:
  struct Scope;
  void analyse();
  void collect_field_names();
  void find_swizzles();
  void rewrite_range_designators();
  void wrap_divisors();
  void align_record_members();
  void type_conditional_literals();
  void forward_half_to_float();
  void drop_address_space_overloads();
  // The '(' of the parameter list whose ')' is `close` (searching back to `start`).
  std::size_t parameter_list_open(std::size_t start, std::size_t close) const;
  std::string overload_key(std::size_t start, std::size_t close) const;
  std::string overload_body(std::size_t close, std::size_t body, std::size_t end) const;
  std::string overload_name(std::size_t start, std::size_t close) const;
  bool declares_storage(std::size_t at) const;
  bool declaration_has_const(std::size_t at) const;
  void check_unsupported(std::size_t i);
  std::size_t parse_attribute(std::size_t i, std::vector<std::pair<std::string, std::vector<std::string>>>* out);
  std::size_t handle_kernel(std::size_t marker, std::size_t stmt_begin);
  std::size_t handle_instantiation(std::size_t stmt_begin, std::size_t stmt_end);
  std::size_t handle_function_constant(std::size_t stmt_begin, std::size_t stmt_end);
  KernelParam parse_param(std::size_t begin, std::size_t end, const std::string& kernel);
  std::string param_type_text(std::size_t begin, std::size_t end) const;
  std::size_t matching(std::size_t open) const;
  std::size_t statement_end(std::size_t i) const;
  [[noreturn]] void fail(std::size_t token, const std::string& message) const;
  std::string text(std::size_t begin, std::size_t end) const;  // tokens [begin, end) joined
  bool is(std::size_t i, const char* spelling) const;
  void assign_slots(KernelInfo& k);
  void decide_cooperation();
  void find_threadgroup_variables();

  struct TemplateKernel {
    KernelInfo info;                        // params spelled with the template's names
    std::vector<std::string> template_params;
  };

  Lexed lexed_;
  std::string main_path_;
  std::vector<TokenAction> actions_;
  std::unordered_map<std::size_t, std::string> replacements_;
  std::unordered_map<std::size_t, int> constant_refs_;
  std::unordered_set<std::string> field_names_;
  std::vector<KernelInfo> kernels_;
  std::unordered_map<std::string, TemplateKernel> templates_;
  std::vector<FunctionConstant> constants_;
  std::vector<std::size_t> storage_tokens_;  // `threadgroup T x[...]` declarations
  bool allow_double_ = false;                // `#pragma metalgpu double` seen
  std::vector<Conditional> conditionals_;
  std::unique_ptr<Structure> structure_;  // functions and records, and what each body uses
};

}  // namespace metalgpu::msl
