#include "msl/parser.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <cstdlib>
#include <map>
#include <set>

#include "metalgpu/errors.hpp"
#include "msl/record_layout.hpp"
#include "msl/safe_division.hpp"
#include "msl/structure.hpp"

namespace metalgpu::msl {
namespace {

// Kernel parameter attributes that bind a thread-position value rather than a buffer.
const std::set<std::string, std::less<>> kBuiltins = {
    "thread_position_in_grid", "thread_position_in_threadgroup", "threadgroup_position_in_grid",
    "threads_per_threadgroup", "threads_per_grid", "threadgroups_per_grid",
    "thread_index_in_threadgroup", "thread_execution_width", "threads_per_simdgroup",
    "simdgroup_index_in_threadgroup", "thread_index_in_simdgroup", "simdgroups_per_threadgroup",
    "quadgroup_index_in_threadgroup", "thread_index_in_quadgroup", "quadgroups_per_threadgroup",
    "dispatch_threads_per_threadgroup", "dispatch_simdgroups_per_threadgroup",
    "dispatch_quadgroups_per_threadgroup", "grid_origin", "grid_size",
};

// Standard C++ attributes survive the rewrite; every other [[...]] is Metal's and goes.
const std::set<std::string, std::less<>> kStandardAttributes = {
    "maybe_unused", "nodiscard", "noreturn", "deprecated", "fallthrough", "likely", "unlikely",
};

const std::set<std::string, std::less<>> kAddressSpaces = {"device", "constant", "threadgroup",
                                                           "thread"};

// Attributes Metal knows on a kernel's parameters besides the built-ins (kBuiltins); Apple's
// compiler rejects any other, so a misspelled one is an error here too.
const std::set<std::string, std::less<>> kParameterAttributes = {
    "buffer", "threadgroup", "texture", "sampler", "function_constant", "stage_in", "payload",
    "amplification_id", "raster_order_group", "imageblock_data", "threadgroup_imageblock", "color",
    "user", "id", "visible", "maybe_unused"};

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

bool is_swizzle_name(const std::string& s, std::vector<int>* lanes) {
  if (s.size() < 1 || s.size() > 4) return false;
  static const std::string xyzw = "xyzw", rgba = "rgba";
  for (const std::string* set : {&xyzw, &rgba}) {
    lanes->clear();
    for (char c : s) {
      auto p = set->find(c);
      if (p == std::string::npos) break;
      lanes->push_back(int(p));
    }
    if (lanes->size() == s.size()) return !(s.size() == 1 && set == &xyzw);
  }
  return false;
}

// The value of a string-literal argument: `"a" "b"` (adjacent literals, as macros with #x
// produce them) concatenate; simple escapes are decoded.
std::string string_value(const std::string& s) {
  std::string out;
  bool in = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (!in) {
      if (c == '"') in = true;
      continue;
    }
    if (c == '"') in = false;
    else if (c == '\\' && i + 1 < s.size()) out += s[++i];
    else out += c;
  }
  return out;
}

bool is_assignment(const std::string& s) {
  return s == "=" || s == "+=" || s == "-=" || s == "*=" || s == "/=" || s == "%=" || s == "&=" ||
         s == "|=" || s == "^=" || s == "<<=" || s == ">>=";
}


// Integer constant expressions of literals (what attribute arguments hold after macro
// expansion): + - * / % << >> & | ^ ~ ! and parentheses. False if it is anything else.
class IntegerExpression {
 public:
  explicit IntegerExpression(const std::string& s) : s_(s) {}
  bool evaluate(long long* out) {
    long long v = 0;
    if (!binary(0, &v)) return false;
    skip();
    if (i_ != s_.size()) return false;
    *out = v;
    return true;
  }

 private:
  void skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool take(const char* op) {
    skip();
    std::size_t n = std::strlen(op);
    if (s_.compare(i_, n, op) != 0) return false;
    // `<` must not take the first half of `<<`, nor `&` of `&&`.
    if (n == 1 && i_ + 1 < s_.size() && s_[i_ + 1] == op[0] && (op[0] == '<' || op[0] == '>' ||
                                                                 op[0] == '&' || op[0] == '|'))
      return false;
    i_ += n;
    return true;
  }
  // Precedence climbing over the binary operators, loosest first.
  bool binary(int level, long long* v) {
    static const char* const kLevels[][3] = {{"|", nullptr, nullptr}, {"^", nullptr, nullptr},
                                             {"&", nullptr, nullptr}, {"<<", ">>", nullptr},
                                             {"+", "-", nullptr},     {"*", "/", "%"}};
    constexpr int kCount = int(sizeof kLevels / sizeof kLevels[0]);
    if (level == kCount) return unary(v);
    if (!binary(level + 1, v)) return false;
    for (;;) {
      const char* op = nullptr;
      for (const char* candidate : kLevels[level])
        if (candidate && take(candidate)) { op = candidate; break; }
      if (!op) return true;
      long long r = 0;
      if (!binary(level + 1, &r)) return false;
      const std::string o = op;
      if ((o == "/" || o == "%") && r == 0) return false;
      if ((o == "<<" || o == ">>") && (r < 0 || r > 62)) return false;
      if (o == "|") *v |= r; else if (o == "^") *v ^= r; else if (o == "&") *v &= r;
      else if (o == "<<") *v = (long long)((unsigned long long)*v << r); else if (o == ">>") *v >>= r;
      else if (o == "+") *v += r; else if (o == "-") *v -= r; else if (o == "*") *v *= r;
      else if (o == "/") *v /= r; else *v %= r;
    }
  }
  bool unary(long long* v) {
    if (++depth_ > 200) return false;
    bool ok;
    if (take("-")) { ok = unary(v); *v = -*v; }
    else if (take("+")) ok = unary(v);
    else if (take("~")) { ok = unary(v); *v = ~*v; }
    else if (take("!")) { ok = unary(v); *v = !*v; }
    else if (take("(")) ok = binary(0, v) && take(")");
    else ok = literal(v);
    --depth_;
    return ok;
  }
  bool literal(long long* v) {
    skip();
    if (i_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_]))) return false;
    const char* begin = s_.c_str() + i_;
    char* end = nullptr;
    errno = 0;
    unsigned long long u = std::strtoull(begin, &end, 0);
    if (errno != 0 || u > (unsigned long long)LLONG_MAX) return false;
    i_ += std::size_t(end - begin);
    while (i_ < s_.size() && std::strchr("uUlL", s_[i_])) ++i_;
    *v = (long long)u;
    return true;
  }
  const std::string& s_;
  std::size_t i_ = 0;
  int depth_ = 0;
};

bool evaluate_integer(const std::string& text, long long* out) { return IntegerExpression(text).evaluate(out); }

}  // namespace

struct SourceModel::Scope {
  enum Kind { ns, cls, other } kind;
  int saved_paren;
  std::size_t saved_stmt;
};

SourceModel::SourceModel(Lexed lexed, std::string main_path)
    : lexed_(std::move(lexed)), main_path_(std::move(main_path)) {
  actions_.assign(lexed_.tokens.size(), TokenAction::keep);
  analyse();
  drop_address_space_overloads();
  rewrite_range_designators();
  type_conditional_literals();
  forward_half_to_float();
  find_swizzles();
  wrap_divisors();
  align_record_members();
}

// Each data member of a record gets Metal's layout alignment (record_layout.hpp). The type is
// written again inside the alignas, as its tokens are emitted (kept, replaced or dropped).
void SourceModel::align_record_members() {
  for (const MemberType& m : record_member_types(lexed_, *structure_)) {
    std::string type;
    bool plain = true;
    for (std::size_t k = m.type_begin; k < m.type_end && plain; ++k) {
      const TokenAction a = actions_[k];
      plain = a == TokenAction::keep || a == TokenAction::replace || a == TokenAction::drop;
      const std::string& t = a == TokenAction::replace ? replacements_[k] : lexed_.tokens[k].text;
      if (a != TokenAction::drop && !t.empty()) type += (type.empty() ? "" : " ") + t;
    }
    if (!plain || type.empty()) continue;
    std::string& first = replacements_[m.type_begin];
    if (actions_[m.type_begin] == TokenAction::keep) first = lexed_.tokens[m.type_begin].text;
    else if (actions_[m.type_begin] == TokenAction::drop) first.clear();
    actions_[m.type_begin] = TokenAction::replace;
    // In an anonymous struct, a type with constructors (the class half) goes through a
    // stand-in without them where the compiler needs that (mg_scalar.h).
    const std::string wrap = m.in_anonymous_struct ? "::metal::mg_anonymous_member<" : "";
    first = "alignas(::metal::mg_layout_align<" + type + ">) " + wrap + first;
    if (m.in_anonymous_struct) {
      const std::size_t last = m.type_end - 1;
      if (last != m.type_begin) {
        std::string& r = replacements_[last];
        if (actions_[last] == TokenAction::keep) r = lexed_.tokens[last].text;
        else if (actions_[last] == TokenAction::drop) r.clear();
        actions_[last] = TokenAction::replace;
      }
      replacements_[last] += ">";
    }
  }
}

// Integer division by zero traps on the CPU where a GPU gives a value (safe_division.hpp):
// each divisor becomes MG_NZ(divisor), on top of whatever its tokens already say.
void SourceModel::wrap_divisors() {
  for (const Division& d : divisions(*this)) {
    if (actions_[d.op] != TokenAction::keep) continue;
    std::string last;
    switch (actions_[d.last]) {
      case TokenAction::keep: last = lexed_.tokens[d.last].text; break;
      case TokenAction::replace: last = replacements_[d.last]; break;
      case TokenAction::drop: break;
      default: continue;
    }
    actions_[d.op] = TokenAction::replace;
    replacements_[d.op] = lexed_.tokens[d.op].text + " MG_NZ(";
    actions_[d.last] = TokenAction::replace;
    replacements_[d.last] = last + ")";
  }
}

// Metal converts half to float by a standard conversion. Under CUDA half is a class, so a user
// function overloaded on float and on a class float converts to (MLX: log1p(float) beside
// log1p(complex64_t)) is ambiguous for a half argument. Each user function of one float
// parameter gets a half overload forwarding to it, unless the user wrote one; the runtime's
// MG_HALF_FORWARD makes it on CUDA only (a builtin half needs none).
void SourceModel::forward_half_to_float() {
  const auto& toks = lexed_.tokens;
  const auto& defs = structure_->definitions();
  // The parameter list of a function definition: [open, close] parentheses after its name.
  auto parameters = [&](const Definition& d, std::size_t* open, std::size_t* close) {
    for (std::size_t k = d.head; k + 1 < d.open; ++k)
      if (toks[k].kind == TokenKind::identifier && toks[k].text == d.name && is(k + 1, "(")) {
        *open = k + 1;
        *close = matching(k + 1);
        return *close < d.open;
      }
    return false;
  };
  // Parameter tokens other than qualifiers and the name: {"float"} or {"half"} say what we need.
  auto single_type = [&](std::size_t open, std::size_t close) {
    std::string type;
    for (std::size_t k = open + 1; k < close; ++k) {
      const std::string& w = toks[k].text;
      if (w == "const" || kAddressSpaces.count(w)) continue;
      if (w == "," || w == "=" || w == "*" || w == "&" || w == "&&" || w == "[") return std::string();
      if (!type.empty() && k + 1 == close && toks[k].kind == TokenKind::identifier) break;  // the name
      if (!type.empty()) return std::string();
      type = w;
    }
    return type;
  };
  std::set<std::string> has_half;
  std::vector<std::size_t> candidates;
  for (std::size_t i = 0; i < defs.size(); ++i) {
    const Definition& d = defs[i];
    if (d.kind != Definition::function || d.owner >= 0 || d.name.rfind("operator", 0) == 0) continue;
    std::size_t open = 0, close = 0;
    if (!parameters(d, &open, &close)) continue;
    const std::string type = single_type(open, close);
    if (type == "half") has_half.insert(d.name);
    bool templated = false;
    for (std::size_t k = d.head; k < open; ++k) templated |= is(k, "template");
    if (type == "float" && !templated) candidates.push_back(i);
  }
  for (std::size_t i : candidates) {
    const Definition& d = defs[i];
    if (has_half.count(d.name) || actions_[d.close] != TokenAction::keep) continue;
    actions_[d.close] = TokenAction::replace;
    replacements_[d.close] = "} MG_HALF_FORWARD(" + d.name + ")";
  }
}

// `c ? x : 0`: Metal's usual arithmetic conversions make the literal take x's type, bfloat
// included. A class bfloat converts to int and from int, which C++ calls ambiguous in a
// conditional; so an integer literal facing a non-literal operand becomes a value that converts
// to the other operand's type only (::metal::mg_int_literal).
void SourceModel::type_conditional_literals() {
  auto& toks = lexed_.tokens;
  auto integer_literal = [&](std::size_t k) {
    const Token& t = toks[k];
    if (t.kind != TokenKind::number || actions_[k] != TokenAction::keep) return false;
    return t.text.find_first_of(".eEpPhHfF") == std::string::npos ||
           (t.text.size() > 1 && (t.text[1] == 'x' || t.text[1] == 'X') &&
            t.text.find_first_of(".pP") == std::string::npos);
  };
  auto wrap = [&](std::size_t k) {
    actions_[k] = TokenAction::replace;
    replacements_[k] = "::metal::mg_int_literal<decltype(" + toks[k].text + "), " + toks[k].text + ">{}";
  };
  for (std::size_t q = 0; q < toks.size() && toks[q].kind != TokenKind::end; ++q) {
    if (!is(q, "?") || actions_[q] != TokenAction::keep) continue;
    // The ':' of this '?', past nested brackets and conditionals.
    std::size_t colon = std::string::npos;
    int depth = 0, nested = 0;
    for (std::size_t k = q + 1; k < toks.size() && toks[k].kind != TokenKind::end; ++k) {
      if (is(k, "(") || is(k, "[") || is(k, "{")) ++depth;
      else if (is(k, ")") || is(k, "]") || is(k, "}")) { if (--depth < 0) break; }
      else if (depth == 0 && is(k, ";")) break;
      else if (depth == 0 && is(k, "?")) ++nested;
      else if (depth == 0 && is(k, ":")) {
        if (nested == 0) { colon = k; break; }
        --nested;
      }
    }
    if (colon == std::string::npos) continue;
    // The third operand: up to the end of the conditional expression.
    std::size_t end = colon + 1;
    for (depth = 0; end < toks.size() && toks[end].kind != TokenKind::end; ++end) {
      if (is(end, "(") || is(end, "[") || is(end, "{")) ++depth;
      else if (is(end, ")") || is(end, "]") || is(end, "}")) { if (--depth < 0) break; }
      else if (depth == 0 && (is(end, ";") || is(end, ",") || is(end, ":") || is(end, "?"))) break;
    }
    const bool second_literal = colon == q + 2 && integer_literal(q + 1);
    const bool third_literal = end == colon + 2 && integer_literal(colon + 1);
    if (second_literal != third_literal) wrap(second_literal ? q + 1 : colon + 1);  // else int
    // A class half (CUDA; host compilers without a usable _Float16) converts to float and
    // float to half, which C++ calls ambiguous in a conditional (`il < 2 ? xb->d : xb->d / 16.f`,
    // ggml); Metal's half is a builtin type and the conditional is a float. The translation
    // converts each operand to the common type (MG_ARM_CAST), which repeats the operands inside
    // decltype: so only operands that hold no conditional (no exponential growth), no braces
    // (no lambdas, not allowed in decltype) and no '>' without its '<' (a third operand that
    // ran past a template argument list).
    if (colon == q + 1 || end >= toks.size() || toks[end].kind == TokenKind::end) continue;
    bool eligible = true;
    int angles = 0;
    for (std::size_t k = q + 1; k < end && eligible; ++k) {
      if (k == colon) continue;
      if (is(k, "?") || is(k, "{") || is(k, "}") ||
          (actions_[k] != TokenAction::keep && actions_[k] != TokenAction::replace))
        eligible = false;
      else if (is(k, "<")) ++angles;
      else if (is(k, ">")) --angles;
      else if (is(k, ">>")) angles -= 2;
    }
    if (eligible && angles >= 0) conditionals_.push_back({q, colon, end});
  }
}

// GNU range designators, `float s[N] = { [0 ... N - 1] = 0.0f };` (ggml), which C++ compilers
// other than clang reject: the array is declared, then filled by a loop.
void SourceModel::rewrite_range_designators() {
  auto& toks = lexed_.tokens;
  for (std::size_t i = 1; i + 3 < toks.size(); ++i) {
    if (!is(i, "{") || !is(i - 1, "=") || !is(i + 1, "[") || is(i + 2, "[")) continue;
    const std::size_t lbracket = i + 1, rbracket = matching(lbracket), close = matching(i);
    std::size_t dots = std::string::npos;
    for (std::size_t k = lbracket + 1; k < rbracket; ++k)
      if (is(k, "...")) dots = k;
    if (dots == std::string::npos || !is(rbracket + 1, "=") || close + 1 >= toks.size() || !is(close + 1, ";"))
      continue;
    // One designator covering the array; the value runs to the closing brace.
    bool single = true;
    for (std::size_t k = rbracket + 2, d = 0; k < close; ++k) {
      if (is(k, "(") || is(k, "[") || is(k, "{")) ++d;
      else if (is(k, ")") || is(k, "]") || is(k, "}")) --d;
      else if (d == 0 && is(k, ",") && k + 1 != close) single = false;
    }
    const std::size_t eq = i - 1;
    if (!single || eq < 2 || !is(eq - 1, "]")) continue;
    std::size_t dim_open = eq - 1;
    for (int d = 0; dim_open > 0; --dim_open) {
      if (is(dim_open, "]")) ++d;
      else if (is(dim_open, "[") && --d == 0) break;
    }
    if (dim_open == 0 || toks[dim_open - 1].kind != TokenKind::identifier) continue;
    const std::string name = toks[dim_open - 1].text;
    std::size_t value_end = close;
    if (is(close - 1, ",")) --value_end;
    for (std::size_t k = eq; k <= close; ++k) actions_[k] = TokenAction::drop;
    actions_[close + 1] = TokenAction::replace;
    replacements_[close + 1] = "; for (int __mg_i = (" + text(lbracket + 1, dots) + "); __mg_i <= (" +
                               text(dots + 1, rbracket) + "); ++__mg_i) " + name + "[__mg_i] = (" +
                               text(rbracket + 2, value_end) + ");";
    i = close + 1;
  }
}

const KernelInfo* SourceModel::find_kernel(const std::string& name) const {
  for (const auto& k : kernels_)
    if (k.name == name) return &k;
  return nullptr;
}

bool SourceModel::is(std::size_t i, const char* spelling) const {
  const Token& t = lexed_.tokens[i];
  return t.kind != TokenKind::string_literal && t.kind != TokenKind::end && t.text == spelling;
}

std::string SourceModel::text(std::size_t begin, std::size_t end) const {
  std::string out;
  for (std::size_t i = begin; i < end; ++i) {
    if (!out.empty() && lexed_.tokens[i].space_before) out += ' ';
    out += lexed_.tokens[i].text;
  }
  return out;
}

void SourceModel::fail(std::size_t token, const std::string& message) const {
  const Token& t = lexed_.tokens[std::min(token, lexed_.tokens.size() - 1)];
  const std::string& file = lexed_.files.empty() ? main_path_ : lexed_.files[t.file];
  throw CompileError(file + ":" + std::to_string(t.line) + ": error: " + message, file, t.line);
}

std::size_t SourceModel::matching(std::size_t open) const {
  const std::string& o = lexed_.tokens[open].text;
  const char* c = o == "(" ? ")" : o == "[" ? "]" : o == "{" ? "}" : ">";
  int depth = 0;
  for (std::size_t i = open; i < lexed_.tokens.size(); ++i) {
    const Token& t = lexed_.tokens[i];
    if (t.kind != TokenKind::punct) continue;
    if (t.text == o) ++depth;
    else if (t.text == c && --depth == 0) return i;
    else if (o == "<" && t.text == ">>" && (depth -= 2) <= 0) return i;
  }
  fail(open, "unbalanced '" + o + "'");
}

std::size_t SourceModel::statement_end(std::size_t i) const {
  int depth = 0;
  for (; i < lexed_.tokens.size(); ++i) {
    const Token& t = lexed_.tokens[i];
    if (t.kind == TokenKind::end) break;
    if (t.kind != TokenKind::punct) continue;
    if (t.text == "(" || t.text == "[" || t.text == "{") ++depth;
    else if (t.text == ")" || t.text == "]" || t.text == "}") --depth;
    else if (t.text == ";" && depth == 0) return i;
  }
  fail(i, "expected ';'");
}

// Parses `[[name(args), ...]]` starting at the first '['; returns the index of the last ']'.
std::size_t SourceModel::parse_attribute(
    std::size_t i, std::vector<std::pair<std::string, std::vector<std::string>>>* out) {
  std::size_t close = matching(i);  // the outer '[' ... ']'
  std::size_t j = i + 2;
  while (j + 1 < close) {
    if (lexed_.tokens[j].kind != TokenKind::identifier) {
      ++j;
      continue;
    }
    std::string name = lexed_.tokens[j].text;
    while (j + 2 < close && is(j + 1, "::")) {  // gnu::always_inline
      name += "::" + lexed_.tokens[j + 2].text;
      j += 2;
    }
    std::vector<std::string> args;
    ++j;
    if (j < close && is(j, "(")) {
      std::size_t end = matching(j);
      std::size_t start = j + 1;
      int depth = 0;
      for (std::size_t k = j + 1; k <= end; ++k) {
        if (is(k, "(")) ++depth;
        if (is(k, ")") && depth-- > 0 && k != end) continue;
        if ((is(k, ",") && depth == 0) || k == end) {
          args.push_back(text(start, k));
          start = k + 1;
        }
      }
      j = end + 1;
    }
    if (out) out->emplace_back(name, std::move(args));
  }
  return close;
}

void SourceModel::check_unsupported(std::size_t i) {
  const Token& t = lexed_.tokens[i];
  if (t.kind != TokenKind::identifier) return;
  if (t.text == "double" && !allow_double_)
    fail(i, "'double' is not a Metal type (Metal has no 64-bit floating point): use float, or say "
            "`#pragma metalgpu double` to use it on the cpu and cuda backends");
  if (t.text == "asm" || t.text == "__asm" || t.text == "__asm__")
    fail(i, "unsupported construct: inline assembly / AIR intrinsic declared with '" + t.text +
                "' cannot be translated");
}

void SourceModel::analyse() {
  auto& toks = lexed_.tokens;
  std::vector<Scope> scopes;
  Scope::Kind kind = Scope::ns;
  int paren = 0;
  std::size_t stmt = 0;
  auto at_namespace_scope = [&] { return kind == Scope::ns && paren == 0; };

  for (std::size_t i = 0; i < toks.size(); ++i) {
    const Token& t = toks[i];
    if (t.kind == TokenKind::end) break;
    if (t.kind == TokenKind::pragma) {
      // Our extension, off by default as on Metal: 64-bit floating point (cpu and cuda).
      if (t.text == "pragma metalgpu double") allow_double_ = true;
      continue;
    }
    check_unsupported(i);

    if (t.kind == TokenKind::number) {
      const std::string& s = t.text;
      bool hex = s.size() > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
      if (!hex && (s.back() == 'h' || s.back() == 'H')) {
        std::string v = s.substr(0, s.size() - 1);
        bool fractional = v.find_first_of(".eE") != std::string::npos;
        actions_[i] = TokenAction::replace;
        replacements_[i] = "half(" + v + (fractional ? "f" : "") + ")";
      }
      continue;
    }

    if (t.kind == TokenKind::punct) {
      const std::string& p = t.text;
      if (p == "[" && i + 1 < toks.size() && is(i + 1, "[")) {
        std::vector<std::pair<std::string, std::vector<std::string>>> attrs;
        std::size_t close = parse_attribute(i, &attrs);
        bool standard = !attrs.empty() && std::all_of(attrs.begin(), attrs.end(), [](auto& a) {
          return kStandardAttributes.count(a.first) != 0 || a.first.find("::") != std::string::npos;
        });
        bool is_kernel = std::any_of(attrs.begin(), attrs.end(),  // [[kernel, max_total_...]]
                                     [](auto& a) { return a.first == "kernel"; });
        if (!standard)
          for (std::size_t k = i; k <= close; ++k) actions_[k] = TokenAction::drop;
        if (is_kernel && at_namespace_scope()) {
          actions_[i] = TokenAction::kernel_marker;
          handle_kernel(i, stmt);
        }
        i = close;
        continue;
      }
      if (p == "(" || p == "[") ++paren;
      else if (p == ")" || p == "]") --paren;
      else if (p == ";" && paren == 0) stmt = i + 1;
      else if (p == "{") {
        Scope::Kind inner = Scope::other;
        if (paren == 0 && kind != Scope::other) {
          bool has_paren = false, has_record = false, has_ns = false, has_assign = false;
          for (std::size_t k = stmt; k < i; ++k) {
            if (is(k, "(")) has_paren = true;
            if (is(k, "=")) has_assign = true;
            if (is(k, "namespace") || (is(k, "extern") && k + 1 < i &&
                                       toks[k + 1].kind == TokenKind::string_literal))
              has_ns = true;
            if ((is(k, "struct") || is(k, "class") || is(k, "union")) && !has_paren) has_record = true;
          }
          if (has_ns && !has_paren) inner = Scope::ns;
          else if (has_record && !has_assign) inner = Scope::cls;
        }
        scopes.push_back({kind, paren, stmt});
        kind = inner;
        paren = 0;
        stmt = i + 1;
      } else if (p == "}") {
        if (scopes.empty()) fail(i, "unbalanced '}'");
        kind = scopes.back().kind;
        paren = scopes.back().saved_paren;
        scopes.pop_back();
        stmt = i + 1;
      }
      continue;
    }

    if (t.kind != TokenKind::identifier) continue;
    const std::string& id = t.text;

    // Fields of records: names a '.xy' must not be mistaken for a swizzle of.
    if (kind == Scope::cls && paren == 0 && i + 1 < toks.size()) {
      const std::string& n = toks[i + 1].text;
      if (n == ";" || n == "[" || n == "," || n == "=" || n == ":") field_names_.insert(id);
    }

    if (id == "template" && kind == Scope::cls && paren == 0 && i + 2 < toks.size() && is(i + 1, "<") &&
        is(i + 2, ">")) {
      // `template <> R f(X x)` inside a class (explicit specialization at class scope, which
      // Apple's compiler and clang accept and g++ does not): a non-template overload, which
      // calls with those argument types prefer just as they would the specialization.
      for (std::size_t k = i; k <= i + 2; ++k) actions_[k] = TokenAction::drop;
      i += 2;
      continue;
    }

    if (id == "is_function_constant_defined" && i + 1 < toks.size() && is(i + 1, "(")) {
      std::size_t close = matching(i + 1);
      std::string name = text(i + 2, close);
      auto it = std::find_if(constants_.begin(), constants_.end(),
                             [&](const FunctionConstant& c) { return c.name == name; });
      if (it == constants_.end()) fail(i, "'" + name + "' is not a function constant");
      actions_[i] = TokenAction::constant_defined;
      constant_refs_[i] = int(it - constants_.begin());
      for (std::size_t k = i + 1; k <= close; ++k) actions_[k] = TokenAction::drop;
      i = close;
      continue;
    }

    if (at_namespace_scope()) {
      if (id == "template" && i == stmt && i + 1 < toks.size() && !is(i + 1, "<")) {
        std::size_t end = statement_end(i);
        bool kernel_inst = false;
        for (std::size_t k = i; k < end; ++k)
          if (is(k, "kernel") || is(k, "host_name")) kernel_inst = true;
        if (kernel_inst) {
          i = handle_instantiation(i, end);
          stmt = i + 1;
          continue;
        }
      }
      if (id == "kernel") {
        actions_[i] = TokenAction::kernel_marker;
        handle_kernel(i, stmt);
        continue;
      }
      if (id == "vertex" || id == "fragment") {
        // Render-stage functions cannot run in a compute dispatch: leave them out, so the
        // kernels of a library that also holds them still build.
        std::size_t k = i + 1;
        while (k < toks.size() && toks[k].kind != TokenKind::end && !is(k, "(") && !is(k, ";")) ++k;
        if (k < toks.size() && is(k, "(")) {
          k = matching(k) + 1;
          int depth = 0;
          while (k < toks.size() && toks[k].kind != TokenKind::end) {
            if (is(k, "(") || is(k, "[")) ++depth;
            else if (is(k, ")") || is(k, "]")) --depth;
            else if (depth == 0 && is(k, "{")) { k = matching(k); break; }
            else if (depth == 0 && is(k, ";")) break;
            ++k;
          }
          for (std::size_t d = stmt; d <= k && d < toks.size(); ++d) actions_[d] = TokenAction::drop;
          i = k;
          stmt = k + 1;
          continue;
        }
      }
      if (id == "constant") {
        std::size_t end = statement_end(i);
        bool fc = false;
        for (std::size_t k = i; k < end; ++k)
          if (is(k, "function_constant")) fc = true;
        if (fc) {
          i = handle_function_constant(stmt, end);
          stmt = i + 1;
        } else {
          // The declarator: its name is the last identifier before the first `[`, `=`, `{` or
          // `;` outside brackets. `constant constexpr const float X<6>::table[8][8];` defines
          // a static data member declared in its class, whose storage the class declaration
          // already decided: no specifier (CUDA allows none on a member), only its const.
          bool member_definition = false;
          {
            int depth = 0;
            for (std::size_t k = i + 1; k < end; ++k) {
              if (is(k, "(") || is(k, "<")) ++depth;
              else if (is(k, ")") || is(k, ">")) --depth;
              else if (is(k, ">>")) depth -= 2;
              else if (depth <= 0 && (is(k, "[") || is(k, "=") || is(k, "{") || is(k, ";"))) {
                member_definition = k >= 2 && toks[k - 1].kind == TokenKind::identifier && is(k - 2, "::");
                break;
              }
            }
          }
          actions_[i] = TokenAction::program_constant;
          for (std::size_t k = stmt, e = statement_end(i); k < e; ++k)
            if (is(k, "const") || is(k, "constexpr")) {
              // `constant constexpr const T x = ...;`: only the storage goes in front.
              actions_[i] = TokenAction::replace;
              replacements_[i] = member_definition ? "" : "MG_CONSTANT_SPACE";
              break;
            }
          if (member_definition && actions_[i] == TokenAction::program_constant) {
            actions_[i] = TokenAction::replace;
            replacements_[i] = "const";
          }
          // `static constant T x[]`: the target's specifier already says static.
          for (std::size_t k = stmt, e = statement_end(i); k < e; ++k)
            if (is(k, "static") && (k < i || is(k - 1, "constexpr") || is(k - 1, "constant") ||
                                    is(k - 1, "const")))
              actions_[k] = TokenAction::drop;
        }
        continue;
      }
    }

    if (id == "alignof" && i + 1 < toks.size() && is(i + 1, "(")) {
      // Metal's alignment of a vector is its size, which the cpu runtime's vectors do not
      // have as C++ types (record_layout.hpp): `alignof(float3)` is 16 there too.
      actions_[i] = TokenAction::replace;
      replacements_[i] = "MG_ALIGNOF";
      continue;
    }

    if (id == "__extension__") {
      // GNU's marker that only silences pedantic warnings (ggml's anonymous unions); NVRTC
      // rejects it where clang and g++ accept it.
      actions_[i] = TokenAction::drop;
      continue;
    }

    if (id == "coherent") {
      // `coherent(system) device T*`: memory coherence across devices; one address space here.
      actions_[i] = TokenAction::drop;
      if (i + 1 < toks.size() && is(i + 1, "(")) {
        std::size_t close = matching(i + 1);
        for (std::size_t k = i + 1; k <= close; ++k) actions_[k] = TokenAction::drop;
        i = close;
      }
      continue;
    }

    if (kAddressSpaces.count(id)) {
      actions_[i] = TokenAction::drop;
      const bool qualifies_this = i > 0 && (is(i - 1, ")") || (is(i - 1, "const") && i > 1 && is(i - 2, ")")));
      if (id == "constant" && !qualifies_this && !declaration_has_const(i)) {
        // `constant T*` points at read-only data: keep it const, so a helper taking
        // `constant T*` accepts it and writes through it are rejected as on Metal.
        actions_[i] = TokenAction::replace;
        replacements_[i] = "const";
      }
      if (id == "constant" && kind == Scope::cls && paren == 0) {
        // `static const constant float max = ...;` in a struct: C++ wants constexpr for that.
        bool has_static = false, has_constexpr = false, has_init = false;
        for (std::size_t k = stmt, e = statement_end(i); k < e; ++k) {
          if (is(k, "static")) has_static = true;
          if (is(k, "constexpr")) has_constexpr = true;
          if (is(k, "=") || is(k, "{")) has_init = true;
        }
        if (has_static && has_init && !has_constexpr) {
          actions_[i] = TokenAction::replace;
          replacements_[i] = "constexpr";
        }
      }
      if (id == "threadgroup" && paren == 0 && kind == Scope::other && i == stmt &&
          declares_storage(i)) {
        // `threadgroup float tile[16][16];`: storage shared by the threadgroup.
        actions_[i] = TokenAction::replace;
        replacements_[i] = "MG_THREADGROUP_STORAGE";
        storage_tokens_.push_back(i);
        // `threadgroup float buf[32] = {0};`: the initializer goes through MG_THREADGROUP_INIT,
        // which CUDA (no initializers on __shared__) defines as nothing. One declarator only.
        std::size_t eq = std::string::npos, semi = std::string::npos;
        int depth = 0;
        bool several = false;
        for (std::size_t k = i + 1; k < toks.size() && toks[k].kind != TokenKind::end; ++k) {
          if (is(k, "(") || is(k, "[") || is(k, "{")) ++depth;
          else if (is(k, ")") || is(k, "]") || is(k, "}")) --depth;
          else if (depth == 0 && is(k, "=") && eq == std::string::npos) eq = k;
          else if (depth == 0 && is(k, ",")) several = true;
          else if (depth == 0 && is(k, ";")) { semi = k; break; }
        }
        if (eq != std::string::npos && semi != std::string::npos && !several &&
            actions_[eq] == TokenAction::keep && actions_[semi] == TokenAction::keep) {
          actions_[eq] = TokenAction::replace;
          replacements_[eq] = "MG_THREADGROUP_INIT(";
          actions_[semi] = TokenAction::replace;
          replacements_[semi] = ");";
        }
        // Each target learns the variables' sizes from its compiler: the cpu module records
        // them as it loads (MG_THREADGROUP_NOTE), for the kernels' static threadgroup memory.
        std::vector<std::string> names = declarator_names(i + 1, &semi);
        if (semi != std::string::npos && !names.empty() && actions_[semi] != TokenAction::drop) {
          std::string bytes;
          for (const auto& n : names) bytes += (bytes.empty() ? "sizeof(" : " + sizeof(") + n + ")";
          std::string& r = replacements_[semi];
          if (actions_[semi] == TokenAction::keep) r = ";";
          actions_[semi] = TokenAction::replace;
          r += " MG_THREADGROUP_NOTE(" + std::to_string(storage_tokens_.size() - 1) + "u, " + bytes + ")";
        }
      }
    }
  }
  if (!scopes.empty()) fail(toks.size() - 1, "unbalanced '{' at end of input");

  for (auto& k : kernels_) assign_slots(k);
  decide_cooperation();
  find_threadgroup_variables();
}

// Per kernel, from the structural model: its own body, what it calls (transitively), and the
// types its instantiation names (`unary_v<float, float, Exp>` runs Exp's members).
void SourceModel::decide_cooperation() {
  structure_ = std::make_unique<Structure>(lexed_);
  if (kernels_.empty()) return;
  const Structure& structure = *structure_;
  std::vector<bool> cooperative_ids;
  const std::vector<bool> coop = cooperating_definitions(lexed_, structure, storage_tokens_, &cooperative_ids);
  std::unordered_map<std::size_t, bool> by_declaration;
  for (auto& k : kernels_) {
    auto it = by_declaration.find(k.decl_token);
    if (it == by_declaration.end()) {
      // A kernel whose definition the model cannot place runs as fibers: the safe side.
      const int d = structure.function_at(k.decl_token);
      it = by_declaration.emplace(k.decl_token, d < 0 || coop[std::size_t(d)]).first;
    }
    bool cooperative = it->second;
    for (const auto& p : k.params) cooperative |= p.role == ParamRole::threadgroup_memory;
    for (std::size_t a = 0; !cooperative && a < k.call.size();) {
      if (!(std::isalpha(static_cast<unsigned char>(k.call[a])) || k.call[a] == '_')) {
        ++a;
        continue;
      }
      std::size_t b = a;
      while (b < k.call.size() && (std::isalnum(static_cast<unsigned char>(k.call[b])) || k.call[b] == '_')) ++b;
      const int id = structure.id(k.call.substr(a, b - a));
      cooperative |= id >= 0 && std::size_t(id) < cooperative_ids.size() && cooperative_ids[std::size_t(id)];
      a = b;
    }
    k.cooperative = cooperative;
  }
}

// Per kernel, the threadgroup variables it reaches: in its own body, in what it calls, and in
// the members of the types its instantiation names (`reduce<float, Sum>` runs Sum's members).
void SourceModel::find_threadgroup_variables() {
  if (storage_tokens_.empty() || kernels_.empty()) return;
  const Structure& structure = *structure_;
  const std::vector<std::vector<unsigned>> reached = reached_declarations(structure, storage_tokens_);
  for (auto& k : kernels_) {
    std::vector<unsigned> all;
    auto add = [&](int d) { all.insert(all.end(), reached[std::size_t(d)].begin(), reached[std::size_t(d)].end()); };
    if (int d = structure.function_at(k.decl_token); d >= 0) add(d);
    for (std::size_t a = 0; a < k.call.size();) {
      if (!(std::isalpha(static_cast<unsigned char>(k.call[a])) || k.call[a] == '_')) {
        ++a;
        continue;
      }
      std::size_t b = a;
      while (b < k.call.size() && (std::isalnum(static_cast<unsigned char>(k.call[b])) || k.call[b] == '_')) ++b;
      for (int d : structure.named(structure.id(k.call.substr(a, b - a)))) add(d);
      a = b;
    }
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    k.threadgroup_variables = std::move(all);
  }
}

std::vector<std::string> SourceModel::declarator_names(std::size_t at, std::size_t* semicolon) const {
  // Template arguments count as nesting before a declarator's name and initializer (where a
  // '<' can only open them), so `vec<float, 4> v[8]` is one declarator, named v.
  const auto& toks = lexed_.tokens;
  std::vector<std::string> names;
  std::string name;
  int depth = 0, angle = 0;
  bool in_declarator = true;  // before the declarator's '[', '(' or '='
  *semicolon = std::string::npos;
  for (std::size_t k = at; k < toks.size() && toks[k].kind != TokenKind::end; ++k) {
    const bool open = is(k, "(") || is(k, "[") || is(k, "{"), close = is(k, ")") || is(k, "]") || is(k, "}");
    if (open) {
      if (depth == 0 && angle == 0) in_declarator = false;
      ++depth;
    } else if (close) {
      if (--depth < 0) return {};
    } else if (depth > 0) {
      continue;
    } else if (in_declarator && is(k, "<")) {
      ++angle;
    } else if (in_declarator && angle > 0 && (is(k, ">") || is(k, ">>"))) {
      angle -= is(k, ">>") ? 2 : 1;
    } else if (angle > 0) {
      continue;
    } else if (is(k, "=")) {
      in_declarator = false;
    } else if (is(k, ",") || is(k, ";")) {
      if (name.empty()) return {};
      names.push_back(name);
      name.clear();
      in_declarator = true;
      if (is(k, ";")) {
        *semicolon = k;
        return names;
      }
    } else if (in_declarator && toks[k].kind == TokenKind::identifier) {
      name = toks[k].text;
    }
  }
  return {};
}

// Whether the decl-specifiers around the address space at `at` already say const
// (`const constant T&`, `constant const T*`, `constant T const*`): a second const is an error.
bool SourceModel::declaration_has_const(std::size_t at) const {
  const auto& toks = lexed_.tokens;
  auto stops = [&](std::size_t k) {
    const Token& t = toks[k];
    if (t.kind == TokenKind::end) return true;
    if (t.kind != TokenKind::punct) return false;
    return t.text != "::";
  };
  for (std::size_t k = at; k-- > 0;) {
    if (stops(k)) break;
    if (is(k, "const")) return true;
  }
  int angle = 0;
  for (std::size_t k = at + 1; k < toks.size(); ++k) {
    if (is(k, "<")) { ++angle; continue; }
    if (angle > 0) {
      if (is(k, ">")) --angle;
      else if (is(k, ">>")) angle -= 2;
      else if (is(k, ";") || is(k, "{")) break;
      continue;
    }
    if (stops(k)) break;
    if (is(k, "const")) return true;
  }
  return false;
}

// `threadgroup T name[...];` declares storage; `threadgroup T* p = ...;` only qualifies a pointer.
bool SourceModel::declares_storage(std::size_t at) const {
  for (std::size_t k = at + 1; k < lexed_.tokens.size(); ++k) {
    const Token& t = lexed_.tokens[k];
    if (t.kind != TokenKind::punct) continue;
    if (t.text == "*" || t.text == "&" || t.text == "&&") return false;
    if (t.text == "[" || t.text == "=" || t.text == ";" || t.text == "(" || t.text == "{") return true;
  }
  return false;
}

void SourceModel::find_swizzles() {
  auto& toks = lexed_.tokens;
  std::vector<int> lanes;
  for (std::size_t i = 0; i + 1 < toks.size(); ++i) {
    if (actions_[i] != TokenAction::keep || toks[i].kind != TokenKind::punct) continue;
    if (toks[i].text != "." && toks[i].text != "->") continue;
    const Token& m = toks[i + 1];
    if (m.kind != TokenKind::identifier) continue;
    if (!is_swizzle_name(m.text, &lanes)) continue;
    if (i > 0 && toks[i - 1].kind == TokenKind::punct && toks[i - 1].text == "template") continue;
    std::string member = ".";
    if (lanes.size() == 1) {
      member += std::string(1, "xyzw"[lanes[0]]);
    } else {
      bool write = i + 2 < toks.size() && toks[i + 2].kind == TokenKind::punct &&
                   is_assignment(toks[i + 2].text);
      member += write ? "template swz_ref<" : "template swz<";
      for (std::size_t l = 0; l < lanes.size(); ++l) member += (l ? "," : "") + std::to_string(lanes[l]);
      member += ">()";
    }
    if (field_names_.count(m.text)) {
      // Some record has a field of this name: decide by the object's type when compiled.
      std::size_t start = postfix_start(i);
      if (start == std::string::npos || actions_[start] != TokenAction::keep) {
        ++i;
        continue;  // leave it a field access
      }
      const bool arrow = toks[i].text == "->";
      const std::string obj = arrow ? "(*__mgo)" : "__mgo";
      replacements_[start] =
          "[](auto&& __mgo) -> decltype(auto) { if constexpr (::metal::is_vector_v<::metal::"
          "remove_cvref_t<decltype(" + obj + ")>>) return (" + obj + member + "); else return (" +
          obj + "." + m.text + "); }(" + toks[start].text;
      actions_[start] = TokenAction::replace;
      replacements_[i] = ")";
    } else {
      replacements_[i] = toks[i].text + member.substr(1);
    }
    actions_[i] = TokenAction::replace;
    actions_[i + 1] = TokenAction::drop;
    ++i;
  }
}

// What distinguishes a function from its address-space overloads once address spaces are
// gone: the tokens from `start` to the parameter list's ')' at `close`, with address spaces
// removed (`constant` counting as const), parameter names and default arguments dropped.
std::size_t SourceModel::parameter_list_open(std::size_t start, std::size_t close) const {
  std::size_t open = close;
  for (int depth = 0; open > start; --open) {
    if (is(open, ")")) ++depth;
    else if (is(open, "(") && --depth == 0) break;
  }
  return open;
}

std::string SourceModel::overload_key(std::size_t start, std::size_t close) const {
  const auto& toks = lexed_.tokens;
  const std::size_t open = parameter_list_open(start, close);
  std::string key;
  for (std::size_t k = start; k < open; ++k)
    if (!(toks[k].kind == TokenKind::identifier && kAddressSpaces.count(toks[k].text))) key += toks[k].text + " ";
  key += "(";
  int depth = 0;
  std::size_t a = open + 1;
  for (std::size_t k = open + 1; k <= close; ++k) {
    if (k != close && (is(k, "(") || is(k, "[") || is(k, "{") || is(k, "<"))) ++depth;
    else if (k != close && (is(k, ")") || is(k, "]") || is(k, "}") || is(k, ">"))) --depth;
    else if (is(k, ">>")) depth -= 2;
    if (!((is(k, ",") && depth == 0) || k == close)) continue;
    std::vector<std::string> words;
    bool is_const = false, in_prefix = true;
    int d = 0;
    for (std::size_t m = a; m < k; ++m) {
      const std::string& w = toks[m].text;
      if (toks[m].kind == TokenKind::punct) {
        if (w == "<" || w == "(" || w == "[") ++d;
        else if (w == ">" || w == ")" || w == "]") --d;
        if (d == 0 && w == "=") break;  // default argument
        if (d == 0 && (w == "*" || w == "&" || w == "&&")) in_prefix = false;
      }
      if (toks[m].kind == TokenKind::identifier && kAddressSpaces.count(w)) {
        is_const |= w == "constant" && in_prefix;
        continue;
      }
      if (in_prefix && d == 0 && w == "const") {
        is_const = true;
        continue;
      }
      words.push_back(w);
    }
    // The declarator name, if any: a trailing identifier that is not the whole type.
    if (words.size() >= 2 && !words.back().empty() &&
        (std::isalpha(static_cast<unsigned char>(words.back()[0])) || words.back()[0] == '_') &&
        words[words.size() - 2] != "::" && words.back() != "const")
      words.pop_back();
    if (is_const) key += "const ";
    for (const auto& w : words) key += w + " ";
    key += ",";
    a = k + 1;
  }
  return key + ")";
}

// The body [body, end] of the function whose parameter list closes at `close`, as compared
// between overloads: address spaces left out, each parameter's name as its position.
std::string SourceModel::overload_body(std::size_t close, std::size_t body, std::size_t end) const {
  const auto& toks = lexed_.tokens;
  const std::size_t open = parameter_list_open(0, close);
  std::map<std::string, std::string> params;  // name -> "$n"
  int depth = 0;
  std::string last;  // the parameter's last identifier before a default argument
  bool in_default = false;
  for (std::size_t k = open + 1; k <= close; ++k) {
    if (k == close || (is(k, ",") && depth == 0)) {
      if (!last.empty()) params.emplace(last, "$" + std::to_string(params.size()));
      last.clear();
      in_default = false;
      continue;
    }
    if (is(k, "(") || is(k, "[") || is(k, "<") || is(k, "{")) ++depth;
    else if (is(k, ")") || is(k, "]") || is(k, ">") || is(k, "}")) --depth;
    else if (depth == 0 && is(k, "=")) in_default = true;
    else if (depth == 0 && !in_default && toks[k].kind == TokenKind::identifier) last = toks[k].text;
  }
  std::string text;
  for (std::size_t k = body; k <= end && k < toks.size(); ++k) {
    if (toks[k].kind == TokenKind::identifier && kAddressSpaces.count(toks[k].text)) continue;
    auto p = toks[k].kind == TokenKind::identifier ? params.find(toks[k].text) : params.end();
    text += (p != params.end() ? p->second : toks[k].text) + " ";
  }
  return text;
}

// The function's name: the identifier before its parameter list (which closes at `close`).
std::string SourceModel::overload_name(std::size_t start, std::size_t close) const {
  const std::size_t open = parameter_list_open(start, close);
  return open > start ? lexed_.tokens[open - 1].text : std::string();
}

// Metal overloads functions on address spaces: member functions on the object's
// (`T get() thread`, `T get() device`, MLX's complex64_t constructors ...), free functions and
// operators on their parameters' (`operator+=(thread complex_t&, ...)` beside a `device` one,
// `elem_to_loc` for `constant` and `device` strides). Without address spaces those are one
// function defined several times: keep the first of each, drop the others -
// unless their bodies differ, which is a CompileError (the one kept would stand for both).
void SourceModel::drop_address_space_overloads() {
  auto& toks = lexed_.tokens;
  std::vector<std::size_t> braces;  // open '{' indices
  std::set<std::pair<std::size_t, std::string>> seen;
  std::unordered_map<std::size_t, int> scope_kind;  // 1 record body, 2 namespace body, 0 other
  auto kind_of = [&](std::size_t open) {
    auto it = scope_kind.find(open);
    if (it != scope_kind.end()) return it->second;
    int kind = 0;
    for (std::size_t k = open; k-- > 0;) {
      if (is(k, ";") || is(k, "}") || is(k, "{") || is(k, ")")) break;
      if (is(k, "struct") || is(k, "class") || is(k, "union")) kind = 1;
      if (is(k, "namespace")) { kind = 2; break; }
    }
    return scope_kind[open] = kind;
  };
  constexpr std::size_t kGlobal = std::size_t(-1);
  // Per overload kept: its first token and its body as overload_body() spells it.
  std::map<std::pair<std::size_t, std::string>, std::pair<std::size_t, std::string>> bodies;
  for (std::size_t c = 0; c < toks.size() && toks[c].kind != TokenKind::end; ++c) {
    if (toks[c].kind != TokenKind::punct) continue;
    if (toks[c].text == "{" && kind_of(c) == 1 && (braces.empty() || kind_of(braces.back()) == 2)) {
      // `template <class T> struct pointer_element<device T*> {...};` beside a `thread T*`
      // one: the same specialization once address spaces are gone.
      std::size_t start = c;
      while (start > 0 && !is(start - 1, ";") && !is(start - 1, "}") && !is(start - 1, "{")) --start;
      bool specialization = false, spaces = false;
      std::string key;
      for (std::size_t k = start; k < c; ++k) {
        const bool space = toks[k].kind == TokenKind::identifier && kAddressSpaces.count(toks[k].text);
        spaces |= space;
        if (is(k, "<") && k > start && toks[k - 1].kind == TokenKind::identifier && !is(k - 1, "template"))
          specialization = true;
        if (!space) key += toks[k].text + " ";
      }
      const std::size_t close = matching(c);
      if (specialization && spaces && !seen.insert({braces.empty() ? std::size_t(-1) : braces.back(), key}).second) {
        std::size_t last = close + 1 < toks.size() && is(close + 1, ";") ? close + 1 : close;
        for (std::size_t k = start; k <= last; ++k) actions_[k] = TokenAction::drop;
        c = last;
        continue;
      }
    }
    if (toks[c].text == "{") braces.push_back(c);
    else if (toks[c].text == "}" && !braces.empty()) braces.pop_back();
    if (toks[c].text != ")") continue;
    const int kind = braces.empty() ? 2 : kind_of(braces.back());
    if (kind == 0) continue;
    const std::size_t scope = braces.empty() ? kGlobal : braces.back();
    std::size_t q = c + 1;
    while (q < toks.size() && (is(q, "const") || is(q, "volatile"))) ++q;
    const bool qualified =
        q < toks.size() && toks[q].kind == TokenKind::identifier && kAddressSpaces.count(toks[q].text);
    std::size_t after = qualified ? q + 1 : q;
    while (after < toks.size() && (is(after, "const") || is(after, "volatile"))) ++after;
    if (after >= toks.size()) continue;
    const bool member_end = is(after, ":") || is(after, ";") || is(after, "=");
    if (!(is(after, "{") || is(after, "noexcept") || is(after, "->") || (kind == 1 && member_end)))
      continue;
    // Start of the declaration: after the previous ';', '}', '{' or access label.
    const std::size_t floor = scope == kGlobal ? 0 : scope + 1;
    // From the parameter list's ')' itself, so braces inside it (`T x = T{}`) stay nested.
    std::size_t start = c + 1;
    int depth = 0;
    while (start > floor) {
      const std::size_t k = start - 1;
      if (is(k, ")") || is(k, "]") || is(k, ">")) ++depth;
      else if (is(k, ">>")) depth += 2;
      else if (is(k, "(") || is(k, "[") || is(k, "<")) --depth;
      else if (depth <= 0 && (is(k, ";") || is(k, "}") || is(k, "{") ||
                              (is(k, ":") && k >= 1 && (is(k - 1, "public") || is(k - 1, "private") ||
                                                        is(k - 1, "protected")))))
        break;
      --start;
    }
    // End: the body's closing brace, or the ';' of a declaration.
    std::size_t end = after;
    int d = 0;
    for (; end < toks.size() && toks[end].kind != TokenKind::end; ++end) {
      if (is(end, "(") || is(end, "[")) ++d;
      else if (is(end, ")") || is(end, "]")) --d;
      else if (d == 0 && is(end, "{")) { end = matching(end); break; }
      else if (d == 0 && is(end, ";")) break;
    }
    const bool definition = end < toks.size() && is(end, "}");
    if (kind == 2 && !definition) continue;  // a namespace-scope declaration may repeat
    std::string key = overload_key(start, c);
    for (std::size_t k = c + 1; k < after; ++k)
      if (is(k, "const") || is(k, "volatile")) key += toks[k].text + " ";
    if (!seen.insert({scope, key}).second) {
      // The one kept stands for both: only right where they do the same thing.
      if (definition) {
        auto first = bodies.find({scope, key});
        if (first != bodies.end() && first->second.second != overload_body(c, after, end))
          fail(start, "overloads that differ only in address space ('" + overload_name(start, c) +
                          "', also at line " + std::to_string(toks[first->second.first].line) +
                          ") have different bodies: metalgpu's cpu and CUDA targets have no address spaces "
                          "in types, so they would be one function; give them different names");
      }
      for (std::size_t k = start; k <= end && k < toks.size(); ++k) actions_[k] = TokenAction::drop;
    } else if (definition) {
      bodies[{scope, key}] = {start, overload_body(c, after, end)};
    }
    c = definition ? end : c;
  }
}

// First token of the postfix expression that ends just before token `dot` (a '.' or '->'),
// or npos where it cannot be told.
std::size_t SourceModel::postfix_start(std::size_t dot) const {
  static const std::set<std::string, std::less<>> kNotCallee = {
      "return", "case", "throw", "else", "do", "co_return", "co_yield", "if", "while", "for",
      "switch", "sizeof", "alignof", "decltype", "static_assert"};
  auto& toks = lexed_.tokens;
  auto back_match = [&](std::size_t close) -> std::size_t {
    const std::string& c = toks[close].text;
    const char* o = c == ")" ? "(" : c == "]" ? "[" : "<";
    int depth = 0;
    for (std::size_t k = close + 1; k-- > 0;) {
      if (toks[k].kind != TokenKind::punct) continue;
      if (toks[k].text == c) ++depth;
      else if (toks[k].text == o && --depth == 0) return k;
    }
    return std::string::npos;
  };
  if (dot == 0) return std::string::npos;
  std::size_t j = dot - 1;
  while (true) {
    const Token& t = toks[j];
    std::size_t start;
    if (t.kind == TokenKind::identifier) {
      start = j;
    } else if (t.kind == TokenKind::punct && (t.text == ")" || t.text == "]" || t.text == ">")) {
      std::size_t k = back_match(j);
      if (k == std::string::npos || k == 0) return k == 0 && t.text == ")" ? 0 : std::string::npos;
      const Token& before = toks[k - 1];
      bool callee = (before.kind == TokenKind::identifier && !kNotCallee.count(before.text)) ||
                    (before.kind == TokenKind::punct &&
                     (before.text == ")" || before.text == "]" || before.text == ">"));
      if (t.text == ")" && !callee) return k;  // parenthesised primary expression
      j = k - 1;
      continue;
    } else {
      return std::string::npos;
    }
    // Qualified names and member chains continue to the left.
    if (start >= 2 && (is(start - 1, "::") || is(start - 1, ".") || is(start - 1, "->"))) {
      j = start - 2;
      continue;
    }
    if (start >= 1 && is(start - 1, "::")) return start - 1;
    return start;
  }
}

// A parameter's type as emitted: attributes and the name gone, address spaces rewritten.
std::string SourceModel::param_type_text(std::size_t begin, std::size_t end) const {
  std::vector<std::size_t> kept;
  for (std::size_t i = begin; i < end; ++i) {
    if (is(i, "[") && i + 1 < end && is(i + 1, "[")) {
      i = matching(i);
      continue;
    }
    kept.push_back(i);
  }
  if (kept.size() >= 2 && lexed_.tokens[kept.back()].kind == TokenKind::identifier &&
      !is(kept[kept.size() - 2], "::"))
    kept.pop_back();  // the parameter's name
  bool has_const = false;
  for (std::size_t i : kept) has_const |= is(i, "const");
  std::string out;
  for (std::size_t i : kept) {
    std::string w = lexed_.tokens[i].text;
    if (lexed_.tokens[i].kind == TokenKind::identifier && kAddressSpaces.count(w)) {
      if (w != "constant" || has_const) continue;
      w = "const";
    }
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

KernelParam SourceModel::parse_param(std::size_t begin, std::size_t end, const std::string& kernel) {
  KernelParam p;
  p.line = lexed_.tokens[begin].line;
  std::vector<std::pair<std::string, std::vector<std::string>>> attrs;
  std::vector<std::size_t> type_tokens;
  for (std::size_t i = begin; i < end; ++i) {
    if (is(i, "[") && i + 1 < end && is(i + 1, "[")) {
      i = parse_attribute(i, &attrs);
      continue;
    }
    type_tokens.push_back(i);
  }
  if (type_tokens.empty()) fail(begin, "empty parameter in kernel '" + kernel + "'");
  // An array declarator (`constant int64_t strides[2]`) declares a pointer, as in C++: the
  // first bound decays; any further ones stay in the element type.
  std::string inner_bounds;
  bool array_declarator = false;
  while (type_tokens.size() >= 3 && is(type_tokens.back(), "]")) {
    std::size_t k = type_tokens.size() - 1;
    int depth = 0;
    for (;; --k) {
      if (is(type_tokens[k], "]")) ++depth;
      else if (is(type_tokens[k], "[") && --depth == 0) break;
      if (k == 0) fail(begin, "unbalanced [ ] in a parameter of kernel '" + kernel + "'");
    }
    std::string bound;
    for (std::size_t j = k; j < type_tokens.size(); ++j) bound += lexed_.tokens[type_tokens[j]].text;
    if (array_declarator) inner_bounds = bound + inner_bounds;  // collected right to left
    else inner_bounds = bound;
    type_tokens.resize(k);
    array_declarator = true;
  }
  if (array_declarator) {
    // inner_bounds now holds every bound, outermost first; drop the outermost (it decays).
    std::size_t close = inner_bounds.find(']');
    inner_bounds = inner_bounds.substr(close + 1);
  }
  // The declarator name is the last identifier, unless the parameter is unnamed.
  std::size_t last = type_tokens.back();
  if (type_tokens.size() >= 2 && lexed_.tokens[last].kind == TokenKind::identifier &&
      !is(type_tokens[type_tokens.size() - 2], "::")) {
    p.name = lexed_.tokens[last].text;
    type_tokens.pop_back();
  }
  std::string element;
  for (std::size_t i : type_tokens) {
    const std::string& s = lexed_.tokens[i].text;
    if (kAddressSpaces.count(s)) p.address_space = s;
    else if (s == "*") p.pointer = true;
    else if (s == "&" || s == "&&") p.reference = true;
    else if (s == "const") p.is_const = true;
    else if (s == "volatile" || s == "restrict" || s == "__restrict" || s == "__restrict__") {}
    else {
      if (!element.empty() && s != "::" && element.back() != ':' && s != "<" && s != ">" &&
          s != "," && element.back() != '<')
        element += ' ';
      element += s;
    }
  }
  if (array_declarator) {
    p.pointer = true;
    element += inner_bounds;
  }
  p.element_type = element;
  const std::string where = "parameter '" + p.name + "' of kernel '" + kernel + "'";
  {
    // Textures and samplers: texture1d/1d_array/2d/2d_array/3d<T, access> and sampler.
    std::string base = element.substr(0, element.find('<'));
    while (!base.empty() && base.back() == ' ') base.pop_back();
    if (base.rfind("metal::", 0) == 0) base = base.substr(7);
    if (base == "texture1d" || base == "texture1d_array" || base == "texture2d" || base == "texture2d_array" ||
        base == "texture3d") {
      p.role = ParamRole::texture;
    } else if (base == "sampler") {
      p.role = ParamRole::sampler;
    } else {
      for (const char* prefix : {"texture", "depth", "sampler", "acceleration_structure", "visible_function_table",
                                 "intersection_function_table", "indirect_command_buffer"}) {
        if (base.rfind(prefix, 0) == 0)
          fail(begin, "unsupported construct: " + where + " has type '" + element +
                          "' (supported: texture1d, texture1d_array, texture2d, texture2d_array, texture3d "
                          "and sampler)");
      }
    }
  }
  for (auto& [name, args] : attrs) {
    auto index = [&]() {
      long long v = -1;
      if (args.empty() || !evaluate_integer(args[0], &v) || v < 0 || v > 65535)
        fail(begin, "bad index in [[" + name + "]] of " + where);
      return int(v);
    };
    if (name == "buffer") {
      p.role = ParamRole::buffer;
      p.slot = index();
    } else if (name == "threadgroup") {
      p.role = ParamRole::threadgroup_memory;
      p.slot = index();
    } else if (kBuiltins.count(name)) {
      p.role = ParamRole::builtin;
      p.builtin = name;
    } else if (name == "texture" && p.role == ParamRole::texture) {
      p.slot = index();
    } else if (name == "sampler" && p.role == ParamRole::sampler) {
      p.slot = index();
    } else if (name == "stage_in" || name == "texture" || name == "sampler" || name == "payload" ||
               name == "amplification_id") {
      fail(begin, "unsupported construct: [[" + name + "]] on " + where);
    } else if (name == "function_constant") {
      // Present only when that constant is true: the host may leave its slot empty.
      p.function_constant = args.empty() ? std::string("?") : args[0];
    }
  }
  for (const auto& attribute : attrs) {
    const std::string& name = attribute.first;
    if (kBuiltins.count(name) || kParameterAttributes.count(name) || name.find("::") != std::string::npos)
      continue;
    std::string best;
    std::size_t best_distance = 4;
    for (const auto& known : kBuiltins)
      if (std::size_t d = edit_distance(name, known); d < best_distance) {
        best_distance = d;
        best = known;
      }
    fail(begin, "unknown attribute [[" + name + "]] on " + where +
                    (best.empty() ? std::string() : " (did you mean [[" + best + "]]?)"));
  }
  if ((p.pointer || p.reference) && p.address_space.empty() && p.role == ParamRole::buffer)
    fail(begin, where + " is a " + (p.pointer ? "pointer" : "reference") +
                    " without an address space: say device, constant or threadgroup");
  if (p.role == ParamRole::buffer && p.address_space == "threadgroup")
    p.role = ParamRole::threadgroup_memory;
  return p;
}

std::size_t SourceModel::handle_kernel(std::size_t marker, std::size_t stmt_begin) {
  auto& toks = lexed_.tokens;
  // Template header, if any: `template <typename T, int N>`.
  std::vector<std::string> template_params;
  bool is_template = is(stmt_begin, "template") && stmt_begin + 1 < toks.size() && is(stmt_begin + 1, "<");
  if (is_template) {
    std::size_t close = matching(stmt_begin + 1);
    for (std::size_t k = stmt_begin + 2; k < close; ++k) {
      if (toks[k].kind == TokenKind::identifier &&
          (is(k + 1, ",") || k + 1 == close || is(k + 1, "=")) && !is(k, "typename") && !is(k, "class"))
        template_params.push_back(toks[k].text);
    }
  }
  KernelInfo info;
  info.file = toks[marker].file;
  info.line = toks[marker].line;
  std::vector<std::pair<std::string, std::vector<std::string>>> attrs;
  std::size_t open = std::string::npos;
  for (std::size_t k = stmt_begin; k < toks.size() && toks[k].kind != TokenKind::end; ++k) {
    if (is(k, "[") && is(k + 1, "[")) {
      k = parse_attribute(k, &attrs);
      continue;
    }
    if (is(k, "<") && is_template && k == stmt_begin + 1) {
      k = matching(k);
      continue;
    }
    if (is(k, "(")) {
      open = k;
      break;
    }
    if (is(k, ";") || is(k, "{")) break;
  }
  if (open == std::string::npos || open == 0 || toks[open - 1].kind != TokenKind::identifier)
    fail(marker, "cannot find the kernel function's name and parameters");
  std::string fname = toks[open - 1].text;
  if (open >= 2 && !is(open - 2, "void") && !is(open - 2, "::"))
    fail(marker, "kernel '" + fname + "' must return void");
  info.decl_token = open;
  info.name = fname;
  info.call = fname;
  for (auto& [name, args] : attrs) {
    if (name == "host_name" && !args.empty() && args[0].size() >= 2)
      info.name = string_value(args[0]);
    if (name == "max_total_threads_per_threadgroup" && !args.empty())
      info.max_total_threads = unsigned(std::strtoul(args[0].c_str(), nullptr, 0));
  }
  std::size_t close = matching(open);
  bool definition = false;
  for (std::size_t k = close + 1; k < toks.size(); ++k) {
    if (is(k, "{")) { definition = true; break; }
    if (is(k, ";")) break;
  }
  if (!definition) return marker;  // a declaration; the definition comes later
  // Split parameters at top-level commas.
  int depth = 0;
  std::size_t start = open + 1;
  for (std::size_t k = open + 1; k <= close; ++k) {
    const std::string& s = toks[k].text;
    if (toks[k].kind == TokenKind::punct) {
      if (s == "(" || s == "[" || s == "{" || s == "<") ++depth;
      else if ((s == ")" || s == "]" || s == "}" || s == ">") && k != close) --depth;
      else if (s == ">>") depth -= 2;
    }
    if ((toks[k].kind == TokenKind::punct && s == "," && depth == 0) || k == close) {
      if (k > start) info.params.push_back(parse_param(start, k, info.name));
      start = k + 1;
    }
  }
  if (is_template) {
    templates_[fname] = TemplateKernel{std::move(info), std::move(template_params)};
  } else {
    if (find_kernel(info.name)) fail(marker, "kernel '" + info.name + "' is defined twice");
    kernels_.push_back(std::move(info));
  }
  return marker;
}

std::size_t SourceModel::handle_instantiation(std::size_t begin, std::size_t end) {
  auto& toks = lexed_.tokens;
  for (std::size_t k = begin; k <= end; ++k) actions_[k] = TokenAction::drop;
  std::vector<std::pair<std::string, std::vector<std::string>>> attrs;
  for (std::size_t k = begin; k < end; ++k)
    if (is(k, "[") && is(k + 1, "[")) k = parse_attribute(k, &attrs);
  // The instantiated function is the trailing `name<args>` or, when its template arguments
  // are deduced from the parameter list (`template [[kernel]] void f(device T*, ...);`), `name`.
  std::size_t j = end - 1;
  std::size_t params_open = std::string::npos;
  if (is(j, ")")) {
    int depth = 0;
    for (; j > begin; --j) {
      if (is(j, ")")) ++depth;
      if (is(j, "(") && --depth == 0) break;
    }
    params_open = j;
    --j;
  }
  std::size_t name_tok = j, lt = std::string::npos;
  if (is(j, ">") || is(j, ">>")) {  // `f<vec<float, 4>>`: the lexer keeps '>>' whole
    int depth = 0;
    for (lt = j; lt > begin; --lt) {
      if (is(lt, ">")) ++depth;
      if (is(lt, ">>")) depth += 2;
      if (is(lt, "<") && --depth == 0) break;
    }
    if (lt == begin || toks[lt - 1].kind != TokenKind::identifier)
      fail(begin, "cannot read the instantiated kernel's name");
    name_tok = lt - 1;
  } else if (params_open == std::string::npos || toks[j].kind != TokenKind::identifier) {
    fail(begin, "cannot read the instantiated kernel's template arguments");
  }
  std::size_t call_begin = name_tok;
  while (call_begin >= begin + 2 && is(call_begin - 1, "::") &&
         toks[call_begin - 2].kind == TokenKind::identifier)
    call_begin -= 2;
  const std::string fname = toks[name_tok].text;
  auto it = templates_.find(fname);
  if (it == templates_.end())
    fail(begin, "instantiation of '" + fname + "', which is not a kernel template defined above");
  KernelInfo info = it->second.info;
  info.call = text(call_begin, (lt == std::string::npos ? name_tok : j) + 1);
  info.name = info.call;
  info.line = toks[begin].line;
  info.file = toks[begin].file;
  for (auto& [name, args] : attrs)
    if (name == "host_name" && !args.empty() && args[0].size() >= 2)
      info.name = string_value(args[0]);
  if (params_open != std::string::npos) {
    // The instantiation spells every parameter type concretely; the template's declaration
    // holds the attributes ([[buffer(n)]], built-ins) where the instantiation has none.
    std::vector<KernelParam> concrete;
    const std::size_t close = matching(params_open);
    int depth = 0;
    std::size_t start = params_open + 1;
    for (std::size_t k = params_open + 1; k <= close; ++k) {
      if (is(k, "(") || is(k, "[") || is(k, "{") || is(k, "<")) ++depth;
      else if ((is(k, ")") || is(k, "]") || is(k, "}") || is(k, ">")) && k != close) --depth;
      else if (is(k, ">>")) depth -= 2;
      if ((is(k, ",") && depth == 0) || k == close) {
        if (k > start) concrete.push_back(parse_param(start, k, info.name));
        start = k + 1;
      }
    }
    if (lt == std::string::npos) {
      // Deduced template arguments: the entry point names the function by its type.
      info.fn_type = "void(*)(";
      int d = 0;
      std::size_t from = params_open + 1;
      bool first = true;
      for (std::size_t k = params_open + 1; k <= close; ++k) {
        if (is(k, "(") || is(k, "[") || is(k, "{") || is(k, "<")) ++d;
        else if ((is(k, ")") || is(k, "]") || is(k, "}") || is(k, ">")) && k != close) --d;
        else if (is(k, ">>")) d -= 2;
        if ((is(k, ",") && d == 0) || k == close) {
          if (k > from) info.fn_type += (first ? "" : ", ") + param_type_text(from, k);
          first = false;
          from = k + 1;
        }
      }
      info.fn_type += ")";
    }
    if (concrete.size() != info.params.size())
      fail(begin, "the instantiation of '" + fname + "' has " + std::to_string(concrete.size()) +
                      " parameters; the kernel template has " + std::to_string(info.params.size()));
    for (std::size_t a = 0; a < concrete.size(); ++a) {
      KernelParam& p = info.params[a];
      const KernelParam& c = concrete[a];
      const bool has_attributes = c.slot >= 0 || !c.builtin.empty() || !c.function_constant.empty();
      if (has_attributes) {
        p = c;
        continue;
      }
      p.element_type = c.element_type;
      p.address_space = c.address_space;
      p.pointer = c.pointer;
      p.reference = c.reference;
      p.is_const = c.is_const;
    }
  } else if (lt != std::string::npos) {
    // Template arguments, to spell parameter types concretely (for the host's type checks).
    std::vector<std::string> args;
    int d = 0;
    std::size_t start = lt + 1;
    for (std::size_t k = lt + 1; k <= j; ++k) {
      if (is(k, "<") || is(k, "(")) ++d;
      if ((is(k, ">") || is(k, ")")) && k != j) --d;
      if (is(k, ">>") && k != j) d -= 2;
      if ((is(k, ",") && d == 0) || k == j) {
        // A final '>>' closes the last argument's own template too.
        args.push_back(text(start, k) + (k == j && is(k, ">>") ? ">" : ""));
        start = k + 1;
      }
    }
    const auto& names = it->second.template_params;
    for (auto& p : info.params) {
      for (std::size_t a = 0; a < names.size() && a < args.size(); ++a)
        if (p.element_type == names[a]) p.element_type = args[a];
    }
  }
  if (find_kernel(info.name)) fail(begin, "kernel '" + info.name + "' is defined twice");
  kernels_.push_back(std::move(info));
  return end;
}

std::size_t SourceModel::handle_function_constant(std::size_t begin, std::size_t end) {
  // constant T name [[function_constant(n)]];
  FunctionConstant fc;
  fc.first_token = begin;
  fc.last_token = end;
  fc.line = lexed_.tokens[begin].line;
  std::vector<std::pair<std::string, std::vector<std::string>>> attrs;
  std::size_t attr_at = end;
  for (std::size_t k = begin; k < end; ++k)
    if (is(k, "[") && is(k + 1, "[")) {
      attr_at = std::min(attr_at, k);
      k = parse_attribute(k, &attrs);
    }
  if (attr_at == end || attr_at == begin || lexed_.tokens[attr_at - 1].kind != TokenKind::identifier)
    fail(begin, "malformed function constant declaration");
  fc.name = lexed_.tokens[attr_at - 1].text;
  std::string type;
  for (std::size_t k = begin; k + 1 < attr_at; ++k) {
    if (is(k, "constant") || is(k, "static") || is(k, "const") || is(k, "constexpr")) continue;
    if (!type.empty()) type += ' ';
    type += lexed_.tokens[k].text;
  }
  fc.type = type;
  for (auto& [name, args] : attrs)
    if (name == "function_constant" && !args.empty()) {
      // ggml writes `[[function_constant(FC_MUL_MV + 2)]]`: an expression after expansion.
      long long v = -1;
      if (!evaluate_integer(args[0], &v) || v < 0 || v > 65535)
        fail(begin, "function constant '" + fc.name + "' has index '" + args[0] +
                        "', which is not an integer constant in 0..65535");
      fc.index = int(v);
    }
  if (fc.index < 0) fail(begin, "function constant '" + fc.name + "' has no index");
  for (std::size_t k = begin; k <= end; ++k) actions_[k] = TokenAction::drop;
  actions_[begin] = TokenAction::constant_decl;
  replacements_[begin] = std::to_string(constants_.size());
  constants_.push_back(fc);
  return end;
}

void SourceModel::assign_slots(KernelInfo& k) {
  // One index space per role: buffers, threadgroup memory, textures, samplers.
  auto limit = [](ParamRole r) { return r == ParamRole::texture || r == ParamRole::sampler ? 16 : 31; };
  auto attr = [](ParamRole r) {
    return r == ParamRole::texture ? "texture" : r == ParamRole::sampler ? "sampler"
           : r == ParamRole::threadgroup_memory ? "threadgroup" : "buffer";
  };
  std::map<ParamRole, std::set<int>> used;
  for (const auto& p : k.params) {
    if (p.role == ParamRole::builtin || p.slot < 0) continue;
    std::set<int>& set = used[p.role];
    if (p.slot >= limit(p.role))
      throw CompileError(lexed_.files[k.file] + ":" + std::to_string(p.line) + ": error: [[" + attr(p.role) + "(" +
                             std::to_string(p.slot) + ")]] of kernel '" + k.name + "' is out of range (0.." +
                             std::to_string(limit(p.role) - 1) + ")",
                         lexed_.files[k.file], p.line);
    if (!set.insert(p.slot).second)
      throw CompileError(lexed_.files[k.file] + ":" + std::to_string(p.line) + ": error: index " +
                             std::to_string(p.slot) + " is bound twice in kernel '" + k.name + "'",
                         lexed_.files[k.file], p.line);
  }
  std::map<ParamRole, int> next;
  for (auto& p : k.params) {
    if (p.slot >= 0 || p.role == ParamRole::builtin) continue;
    int& n = next[p.role];
    std::set<int>& set = used[p.role];
    while (set.count(n)) ++n;
    if (n >= limit(p.role))
      throw CompileError(lexed_.files[k.file] + ":" + std::to_string(p.line) + ": error: kernel '" + k.name +
                             "' has more " + attr(p.role) + " parameters than slots (" +
                             std::to_string(limit(p.role)) + ")",
                         lexed_.files[k.file], p.line);
    p.slot = n;
    set.insert(n);
  }
}

}  // namespace metalgpu::msl
