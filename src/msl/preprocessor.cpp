// A complete C preprocessor for MSL sources.
//
// Macro expansion follows Dave Prosser's hide-set algorithm (the one the C standard's
// rescanning rules were written from): every token carries the set of macros whose expansion
// produced it, and a macro name is not expanded when it is in its own hide set. This gets the
// standard's tricky examples right, where a simpler "currently expanding" stack does not.
// Hide sets are interned as small integers so copying tokens stays cheap.

#include "msl/preprocessor.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "metalgpu/errors.hpp"
#include "msl/lexer.hpp"

namespace metalgpu::msl {

bool is_default_builtin_header(std::string_view header) {
  return header.substr(0, 6) == "metal_" || header.substr(0, 5) == "simd/";
}

namespace {

namespace fs = std::filesystem;

constexpr int kMaxIncludeDepth = 200;

struct PPTok {
  std::string text;
  int line = 0;  // presumed line
  int file = 0;  // index into Preprocessor::names_ (presumed file names)
  int hs = 0;    // interned hide set
  TokenKind kind = TokenKind::punct;
  bool space = false;        // whitespace before it
  bool bol = false;          // first token of its source line
  bool paste_op = false;     // a `##` operator of a macro body (not one from an argument)
  bool placemarker = false;  // stands for an empty argument next to `##`

  bool is(TokenKind k, std::string_view s) const { return kind == k && text == s; }
  bool is_punct(std::string_view s) const { return kind == TokenKind::punct && text == s; }
};

using Tokens = std::vector<PPTok>;

// ---------------------------------------------------------------------------------------------
// Hide sets: sorted vectors of macro ids, interned; operations are memoized because the same
// few combinations recur for every expansion of the same macro.

class HideSets {
 public:
  HideSets() { sets_.emplace_back(); }

  bool contains(int hs, int id) const {
    const auto& s = sets_[hs];
    return std::binary_search(s.begin(), s.end(), id);
  }

  int add(int hs, int id) {
    const uint64_t key = (uint64_t(uint32_t(hs)) << 32) | uint32_t(id);
    if (auto it = add_memo_.find(key); it != add_memo_.end()) return it->second;
    std::vector<int> s = sets_[hs];
    s.insert(std::lower_bound(s.begin(), s.end(), id), id);
    s.erase(std::unique(s.begin(), s.end()), s.end());
    return add_memo_[key] = intern(std::move(s));
  }

  int unite(int a, int b) {
    if (a == b || b == 0) return a;
    if (a == 0) return b;
    const uint64_t key = pair_key(a, b);
    if (auto it = union_memo_.find(key); it != union_memo_.end()) return it->second;
    std::vector<int> s;
    std::set_union(sets_[a].begin(), sets_[a].end(), sets_[b].begin(), sets_[b].end(),
                   std::back_inserter(s));
    return union_memo_[key] = intern(std::move(s));
  }

  int intersect(int a, int b) {
    if (a == b) return a;
    if (a == 0 || b == 0) return 0;
    const uint64_t key = pair_key(a, b);
    if (auto it = inter_memo_.find(key); it != inter_memo_.end()) return it->second;
    std::vector<int> s;
    std::set_intersection(sets_[a].begin(), sets_[a].end(), sets_[b].begin(), sets_[b].end(),
                          std::back_inserter(s));
    return inter_memo_[key] = intern(std::move(s));
  }

 private:
  static uint64_t pair_key(int a, int b) {
    if (a > b) std::swap(a, b);
    return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
  }
  int intern(std::vector<int>&& s) {
    auto [it, inserted] = index_.try_emplace(std::move(s), int(sets_.size()));
    if (inserted) sets_.push_back(it->first);
    return it->second;
  }

  std::vector<std::vector<int>> sets_;
  std::map<std::vector<int>, int> index_;
  std::unordered_map<uint64_t, int> add_memo_, union_memo_, inter_memo_;
};

// ---------------------------------------------------------------------------------------------

struct Macro {
  enum class Builtin : uint8_t { none, file, line, counter, if_only };
  int id = 0;
  bool function_like = false;
  bool variadic = false;  // the last parameter collects the variable arguments
  bool has_paste = false;  // the body has `##` operators
  Builtin builtin = Builtin::none;
  std::vector<std::string> params;
  Tokens body;
  std::vector<int> param_of;  // per body token: parameter index, or -1
};

struct Cond {
  bool parent_active;
  bool taken;  // some group of this #if chain was (or can no longer be) selected
  bool active;
  bool seen_else;
  int line;
  int file;
};

struct FileCtx {
  std::string dir;  // folder for quote includes; "" = the current directory
  std::string key;  // canonical path, for #pragma once ("" for string sources)
  std::string text;  // an included file's contents (the main source is the caller's)
  // Scanned lazily, a line at a time: a whole file of tokens at once costs more in memory
  // traffic than the scanning itself.
  std::unique_ptr<lex::Scanner> scanner;
  lex::RawToken ahead;  // the next token, not yet taken
  bool has_ahead = false;
  int name = 0;   // presumed file name (index into names_)
  int delta = 0;  // presumed line = physical line + delta
  std::vector<Cond> conds;
};

std::string quote_string(std::string_view s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  q += '"';
  return q;
}

// Should a space separate `a` and `b` so that they do not lex as one token (or a comment)?
bool needs_space(TokenKind ak, std::string_view a, TokenKind bk, std::string_view b) {
  const char x = a.back(), y = b.front();
  if (lex::is_ident_char(x) && lex::is_ident_char(y)) return true;
  if (ak == TokenKind::number && (y == '.' || ((y == '+' || y == '-') &&
                                               (x == 'e' || x == 'E' || x == 'p' || x == 'P')))) {
    return true;
  }
  if (x == '.' && lex::is_digit(y)) return true;
  if (ak == TokenKind::identifier &&
      (bk == TokenKind::string_literal || bk == TokenKind::char_literal)) {
    return true;  // `u8` `"x"` must not become a prefixed literal
  }
  if (ak == TokenKind::punct && bk == TokenKind::punct) {
    if (x == '/' && (y == '/' || y == '*')) return true;
    std::string s(a);
    s.append(b.substr(0, 2));
    TokenKind k;
    return lex::token_length(s, 0, k) > a.size();
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Output text with `#line` markers.

class Output {
 public:
  explicit Output(const std::vector<std::string>& names) : names_(names) {}

  void start(int file) {
    text_ = "#line 1 " + quote_string(names_[file]) + "\n";
    file_ = file;
    line_ = 1;
  }

  void token(const PPTok& t) {
    move_to(t.file, t.line);
    if (has_content_ && (t.space || needs_space(prev_kind_, prev_text(), t.kind, t.text))) {
      text_ += ' ';
    } else if (!has_content_ && t.kind == TokenKind::punct && t.text[0] == '#') {
      text_ += ' ';  // a '#' from a macro must not start a line, where it would read as a directive
    }
    has_content_ = true;
    prev_start_ = text_.size();
    prev_kind_ = t.kind;
    text_ += t.text;
  }

  // A directive that passes through (#pragma): on its own line, mapped to its source line.
  void directive_line(int file, int line, const std::string& text) {
    move_to(file, line);
    if (has_content_) marker(file, line);
    text_ += '#';
    text_ += text;
    text_ += '\n';
    line_ = line + 1;
    has_content_ = false;
  }

  std::string finish() {
    if (text_.empty() || text_.back() != '\n') text_ += '\n';
    return std::move(text_);
  }

 private:
  std::string_view prev_text() const {
    return std::string_view(text_).substr(prev_start_);
  }

  void marker(int file, int line) {
    if (!text_.empty() && text_.back() != '\n') text_ += '\n';
    text_ += "#line ";
    text_ += std::to_string(line);
    text_ += ' ';
    text_ += quote_string(names_[file]);
    text_ += '\n';
    file_ = file;
    line_ = line;
    has_content_ = false;
  }

  // Makes the output position `file:line`: same line, a few newlines, or a marker.
  void move_to(int file, int line) {
    if (file == file_ && line == line_) return;
    if (file == file_ && line > line_ && line - line_ <= 8) {
      text_.append(std::size_t(line - line_), '\n');
      line_ = line;
      has_content_ = false;
      return;
    }
    marker(file, line);
  }

  const std::vector<std::string>& names_;
  std::string text_;
  int file_ = 0;
  int line_ = 1;
  bool has_content_ = false;
  std::size_t prev_start_ = 0;
  TokenKind prev_kind_ = TokenKind::punct;
};

// ---------------------------------------------------------------------------------------------
// #if expression evaluation over fully expanded tokens.

struct Value {
  uintmax_t bits = 0;
  bool is_unsigned = false;
  intmax_t s() const { return static_cast<intmax_t>(bits); }
  bool truth() const { return bits != 0; }
};

class ExprParser {
 public:
  using Fail = std::function<void(const std::string&)>;
  ExprParser(const Tokens& toks, Fail fail) : t_(toks), fail_(std::move(fail)) {}

  Value parse() {
    if (t_.empty()) fail_("#if with no expression");
    Value v = parse_comma(true);
    if (i_ < t_.size()) fail_("missing binary operator before token \"" + t_[i_].text + "\"");
    return v;
  }

 private:
  bool at(std::string_view p) const { return i_ < t_.size() && t_[i_].is_punct(p); }

  void expect(std::string_view p) {
    if (!at(p)) {
      fail_("expected '" + std::string(p) + "' in preprocessor expression" +
            (i_ < t_.size() ? " before \"" + t_[i_].text + "\"" : std::string()));
    }
    ++i_;
  }

  Value parse_comma(bool live) {
    Value v = parse_cond(live);
    while (at(",")) {
      ++i_;
      v = parse_cond(live);
    }
    return v;
  }

  Value parse_cond(bool live) {
    Value c = parse_binary(1, live);
    if (!at("?")) return c;
    ++i_;
    const Nested nested(*this);
    Value a = parse_comma(live && c.truth());
    expect(":");
    Value b = parse_cond(live && !c.truth());
    Value r = c.truth() ? a : b;
    r.is_unsigned = a.is_unsigned || b.is_unsigned;
    return r;
  }

  static int precedence(const PPTok& t) {
    if (t.kind != TokenKind::punct) return 0;
    static const std::unordered_map<std::string_view, int> table = {
        {"*", 10}, {"/", 10}, {"%", 10}, {"+", 9},  {"-", 9},  {"<<", 8}, {">>", 8},
        {"<", 7},  {">", 7},  {"<=", 7}, {">=", 7}, {"==", 6}, {"!=", 6}, {"&", 5},
        {"^", 4},  {"|", 3},  {"&&", 2}, {"||", 1}};
    auto it = table.find(t.text);
    return it == table.end() ? 0 : it->second;
  }

  Value parse_binary(int min_prec, bool live) {
    Value lhs = parse_unary(live);
    while (i_ < t_.size()) {
      const int p = precedence(t_[i_]);
      if (p == 0 || p < min_prec) break;
      const std::string op = t_[i_++].text;
      if (op == "&&" || op == "||") {
        const bool decided = op == "&&" ? !lhs.truth() : lhs.truth();
        Value rhs = parse_binary(p + 1, live && !decided);
        lhs = Value{uintmax_t(op == "&&" ? (lhs.truth() && rhs.truth())
                                         : (lhs.truth() || rhs.truth())),
                    false};
        continue;
      }
      Value rhs = parse_binary(p + 1, live);
      lhs = apply(op, lhs, rhs, live);
    }
    return lhs;
  }

  Value apply(const std::string& op, Value a, Value b, bool live) {
    const bool u = a.is_unsigned || b.is_unsigned;
    auto boolean = [](bool x) { return Value{uintmax_t(x), false}; };
    if (op == "+") return Value{a.bits + b.bits, u};
    if (op == "-") return Value{a.bits - b.bits, u};
    if (op == "*") return Value{a.bits * b.bits, u};  // wraps; same bits as signed
    if (op == "/" || op == "%") {
      if (b.bits == 0) {
        if (live) fail_("division by zero in #if");
        return Value{0, u};
      }
      if (u) return Value{op == "/" ? a.bits / b.bits : a.bits % b.bits, true};
      if (a.s() == INTMAX_MIN && b.s() == -1) return Value{op == "/" ? a.bits : 0, false};
      return Value{uintmax_t(op == "/" ? a.s() / b.s() : a.s() % b.s()), false};
    }
    if (op == "<<" || op == ">>") return shift(op == "<<", a, b);
    if (op == "<") return boolean(u ? a.bits < b.bits : a.s() < b.s());
    if (op == ">") return boolean(u ? a.bits > b.bits : a.s() > b.s());
    if (op == "<=") return boolean(u ? a.bits <= b.bits : a.s() <= b.s());
    if (op == ">=") return boolean(u ? a.bits >= b.bits : a.s() >= b.s());
    if (op == "==") return boolean(a.bits == b.bits);
    if (op == "!=") return boolean(a.bits != b.bits);
    if (op == "&") return Value{a.bits & b.bits, u};
    if (op == "^") return Value{a.bits ^ b.bits, u};
    return Value{a.bits | b.bits, u};  // "|"
  }

  // The result has the left operand's type; counts that are negative shift the other way
  // and counts past the width saturate (GCC does the same).
  static Value shift(bool left, Value a, Value b) {
    intmax_t count = b.is_unsigned ? (b.bits > 64 ? 64 : intmax_t(b.bits)) : b.s();
    if (count < 0) {
      left = !left;
      count = count < -64 ? 64 : -count;
    }
    if (left) return Value{count >= 64 ? 0 : a.bits << count, a.is_unsigned};
    if (a.is_unsigned) return Value{count >= 64 ? 0 : a.bits >> count, true};
    if (count >= 64) return Value{a.s() < 0 ? ~uintmax_t(0) : 0, false};
    return Value{uintmax_t(a.s() >> count), false};
  }

  // Nesting (parentheses, unary operators, `?:`) recurses: bounded, so a hostile #if is a
  // CompileError rather than a stack overflow.
  static constexpr int kMaxNesting = 256;
  struct Nested {
    explicit Nested(ExprParser& p) : p_(p) {
      if (++p_.depth_ > kMaxNesting)
        p_.fail_("#if expression nested more than " + std::to_string(kMaxNesting) + " levels deep");
    }
    ~Nested() { --p_.depth_; }
    ExprParser& p_;
  };

  Value parse_unary(bool live) {
    if (i_ >= t_.size()) fail_("#if expression ends unexpectedly");
    const Nested nested(*this);
    const PPTok& t = t_[i_];
    if (t.kind == TokenKind::punct) {
      if (t.text == "+" || t.text == "-" || t.text == "~" || t.text == "!") {
        ++i_;
        Value v = parse_unary(live);
        if (t.text == "-") return Value{uintmax_t(0) - v.bits, v.is_unsigned};
        if (t.text == "~") return Value{~v.bits, v.is_unsigned};
        if (t.text == "!") return Value{uintmax_t(!v.truth()), false};
        return v;
      }
      if (t.text == "(") {
        ++i_;
        Value v = parse_comma(live);
        expect(")");
        return v;
      }
    }
    ++i_;
    switch (t.kind) {
      case TokenKind::number: return number(t.text);
      case TokenKind::char_literal: return character(t.text);
      case TokenKind::identifier:
        // After expansion, every identifier left is 0 - except C++'s boolean literals.
        return Value{uintmax_t(t.text == "true"), false};
      default: fail_("token \"" + t.text + "\" is not valid in preprocessor expressions");
    }
    return {};
  }

  Value number(const std::string& text) {
    std::string_view s = text;
    std::size_t end = s.size();
    while (end > 0 && (s[end - 1] == 'u' || s[end - 1] == 'U' || s[end - 1] == 'l' ||
                       s[end - 1] == 'L')) {
      --end;
    }
    const std::string_view suffix = s.substr(end);
    s = s.substr(0, end);
    int base = 10;
    if (s.size() > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
      base = 16;
      s.remove_prefix(2);
    } else if (s.size() > 1 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
      base = 2;
      s.remove_prefix(2);
    } else if (s.size() > 1 && s[0] == '0') {
      base = 8;
    }
    int lcount = 0, ucount = 0;
    for (char c : suffix) (c == 'u' || c == 'U') ? ++ucount : ++lcount;
    if (ucount > 1 || lcount > 2 || s.empty()) fail_("invalid integer constant \"" + text + "\" in #if");
    uintmax_t v = 0;
    for (char c : s) {
      if (c == '\'') continue;
      int d = -1;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      if (d < 0 || d >= base) {
        if (base == 10 && (c == '.' || c == 'e' || c == 'E')) {
          fail_("floating constant \"" + text + "\" in preprocessor expression");
        }
        fail_("invalid integer constant \"" + text + "\" in #if");
      }
      if (v > (UINTMAX_MAX - uintmax_t(d)) / uintmax_t(base)) {
        fail_("integer constant \"" + text + "\" is too large");
      }
      v = v * uintmax_t(base) + uintmax_t(d);
    }
    return Value{v, ucount > 0 || v > uintmax_t(INTMAX_MAX)};
  }

  Value character(const std::string& text) {
    std::size_t i = text.find('\'');
    const bool plain = i == 0;
    const std::size_t end = text.size() - 1;
    ++i;
    uintmax_t v = 0;
    int count = 0;
    while (i < end) {
      uintmax_t c = static_cast<unsigned char>(text[i++]);
      if (c == '\\' && i < end) c = escape(text, i, end);
      v = (v << 8) | (c & 0xff);
      if (!plain) v = c;
      ++count;
    }
    if (count == 0) fail_("empty character constant in #if");
    // A plain one-character constant is a (signed) char on the targets we care about.
    if (plain && count == 1) return Value{uintmax_t(intmax_t(static_cast<signed char>(v))), false};
    return Value{v, false};
  }

  static uintmax_t escape(const std::string& t, std::size_t& i, std::size_t end) {
    const char c = t[i++];
    switch (c) {
      case 'n': return '\n';
      case 't': return '\t';
      case 'r': return '\r';
      case 'a': return '\a';
      case 'b': return '\b';
      case 'f': return '\f';
      case 'v': return '\v';
      case 'x': case 'u': case 'U': {
        uintmax_t v = 0;
        while (i < end && std::isxdigit(static_cast<unsigned char>(t[i]))) {
          const char h = t[i++];
          v = v * 16 + uintmax_t(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
        }
        return v;
      }
      default:
        if (c >= '0' && c <= '7') {
          uintmax_t v = uintmax_t(c - '0');
          for (int n = 1; n < 3 && i < end && t[i] >= '0' && t[i] <= '7'; ++n) {
            v = v * 8 + uintmax_t(t[i++] - '0');
          }
          return v;
        }
        return static_cast<unsigned char>(c);  // \\ \' \" \? and unknown escapes
    }
  }

  const Tokens& t_;
  Fail fail_;
  std::size_t i_ = 0;
  int depth_ = 0;
};

// ---------------------------------------------------------------------------------------------

class Preprocessor {
 public:
  explicit Preprocessor(const PreprocessOptions& options) : options_(options), out_(names_) {}

  PreprocessResult run(std::string_view source, const std::string& path);

 private:
  // --- errors
  [[noreturn]] void fail(int file, int line, const std::string& what) const {
    const std::string& name = names_[file];
    throw CompileError(name + ":" + std::to_string(line) + ": error: " + what, name, line);
  }
  [[noreturn]] void fail(const PPTok& at, const std::string& what) const {
    fail(at.file, at.line, what);
  }

  // --- input
  int intern_name(const std::string& name);
  Tokens tokenize(std::string_view text, int name) const;
  void push_file(std::string_view text, std::string owned, int name, std::string dir,
                 std::string key);
  bool read_line(Tokens& line, bool stay_in_file);
  bool next_text_line(Tokens& pending, bool stay_in_file);
  bool active() const {
    return files_.empty() || files_.back()->conds.empty() || files_.back()->conds.back().active;
  }

  // --- directives
  void directive(Tokens& line);
  void conditional(const std::string& name, Tokens& line);
  void define(const Tokens& line, std::size_t at);
  void include(Tokens& line);
  void line_directive(Tokens& line, std::size_t first);
  bool eval_if(const Tokens& line, std::size_t from);
  void replace_if_operators(Tokens& toks, const PPTok& at);
  struct Resolved {
    enum Kind { missing, builtin, file } kind = missing;
    std::string path;
  };
  Resolved resolve_include(const std::string& name, bool angled) const;
  std::optional<std::pair<std::string, bool>> header_name(const Tokens& toks, std::size_t& i) const;
  bool is_builtin_header(std::string_view h) const {
    return options_.is_builtin_header ? options_.is_builtin_header(h) : is_default_builtin_header(h);
  }

  // --- expansion
  using MacroPtr = std::shared_ptr<const Macro>;
  const MacroPtr* find_macro(const std::string& name) const {
    auto it = macros_.find(name);
    return it == macros_.end() ? nullptr : &it->second;
  }
  int macro_id(const std::string& name);
  void expand(Tokens& pending, Tokens* out, bool top_level, bool in_if = false);
  void deliver(PPTok&& t, Tokens* out) {
    if (out) out->push_back(std::move(t));
    else out_.token(t);
  }
  bool next_is_lparen(Tokens& pending, bool top_level);
  std::vector<Tokens> collect_args(const Macro& m, const PPTok& name, Tokens& pending,
                                   bool top_level, int& rparen_hs);
  void substitute(const Macro& m, const PPTok& name, std::vector<Tokens>& args, int hs,
                  Tokens& pending);
  void substitute_range(const Macro& m, std::size_t begin, std::size_t end,
                        std::vector<Tokens>& args, std::vector<std::optional<Tokens>>& expanded,
                        const PPTok& name, Tokens& items);
  const Tokens& expanded_arg(std::vector<Tokens>& args,
                             std::vector<std::optional<Tokens>>& expanded, int p);
  Tokens paste_all(Tokens& items, const PPTok& name);
  void glue(PPTok& lhs, const PPTok& rhs, const PPTok& name);
  PPTok stringize(const Tokens& toks, bool space) const;
  bool expand_builtin(const Macro& m, PPTok& t);
  Tokens expand_isolated(Tokens toks, bool in_if = false);

  const PreprocessOptions& options_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, int> name_index_;
  Output out_;
  std::vector<std::unique_ptr<FileCtx>> files_;
  std::vector<std::string> files_read_;
  std::unordered_set<std::string> once_;  // canonical paths of `#pragma once` files
  std::unordered_map<std::string, MacroPtr> macros_;
  std::unordered_map<std::string, int> macro_ids_;
  HideSets hidesets_;
  // Macro invocations expanded so far: bounded, so macros that double at each level
  // (`#define X1 X0 X0` ... X40) are a CompileError instead of hours and all the memory.
  std::uint64_t expansions_ = 0;
  static constexpr std::uint64_t kMaxExpansions = 20'000'000;
  void count_expansion(const PPTok& at) {
    if (++expansions_ > kMaxExpansions)
      fail(at, "macro expansion too large: more than " + std::to_string(kMaxExpansions) +
                   " macro invocations expanded (macros that expand to several copies of themselves?)");
  }
  long counter_ = 0;
  Tokens line_;  // scratch for read_line
};

int Preprocessor::intern_name(const std::string& name) {
  auto [it, inserted] = name_index_.try_emplace(name, int(names_.size()));
  if (inserted) names_.push_back(name);
  return it->second;
}

int Preprocessor::macro_id(const std::string& name) {
  auto [it, inserted] = macro_ids_.try_emplace(name, int(macro_ids_.size()) + 1);
  return it->second;
}

Tokens Preprocessor::tokenize(std::string_view text, int name) const {
  Tokens toks;
  toks.reserve(text.size() / 3 + 16);
  lex::Scanner scanner(text);
  lex::RawToken raw;
  while (scanner.next(raw)) {
    PPTok t;
    t.text.assign(raw.text);
    t.line = raw.line;
    t.file = name;
    t.kind = raw.kind;
    t.space = raw.space_before;
    t.bol = raw.line_start;
    toks.push_back(std::move(t));
  }
  return toks;
}

// `text` is the file's source; included files pass their contents as `owned` instead.
void Preprocessor::push_file(std::string_view text, std::string owned, int name, std::string dir,
                             std::string key) {
  auto ctx = std::make_unique<FileCtx>();
  ctx->dir = std::move(dir);
  ctx->key = std::move(key);
  ctx->name = name;
  ctx->text = std::move(owned);
  ctx->scanner = std::make_unique<lex::Scanner>(ctx->text.empty() ? text : ctx->text);
  ctx->has_ahead = ctx->scanner->next(ctx->ahead);
  files_.push_back(std::move(ctx));
}

// The next logical line of the innermost file (tokens moved out, positions made presumed).
// At the end of a file its conditionals must be closed; then reading goes on in the file
// that included it, unless `stay_in_file`.
bool Preprocessor::read_line(Tokens& line, bool stay_in_file) {
  line.clear();
  while (!files_.empty()) {
    FileCtx& f = *files_.back();
    if (f.has_ahead) {
      do {
        const lex::RawToken& r = f.ahead;
        PPTok& t = line.emplace_back();
        t.text.assign(r.text);
        t.line = r.line + f.delta;
        t.file = f.name;
        t.kind = r.kind;
        t.space = r.space_before;
        t.bol = r.line_start;
        f.has_ahead = f.scanner->next(f.ahead);
      } while (f.has_ahead && !f.ahead.line_start);
      return true;
    }
    if (stay_in_file) return false;
    if (!f.conds.empty()) fail(f.conds.back().file, f.conds.back().line, "unterminated conditional directive");
    files_.pop_back();
  }
  return false;
}

// Reads lines, running directives and skipping inactive groups, until a line of text; its
// tokens go onto `pending` (a stack: the next token is at the back).
bool Preprocessor::next_text_line(Tokens& pending, bool stay_in_file) {
  while (read_line(line_, stay_in_file)) {
    if (line_[0].is_punct("#")) {
      Tokens line = std::move(line_);  // directives may read lines themselves
      directive(line);
      continue;
    }
    if (!active()) continue;
    for (auto it = line_.rbegin(); it != line_.rend(); ++it) pending.push_back(std::move(*it));
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Directives

void Preprocessor::directive(Tokens& line) {
  const PPTok& hash = line[0];
  if (line.size() == 1) return;  // null directive
  const PPTok& dname = line[1];
  const std::string& name = dname.text;
  if (name == "if" || name == "ifdef" || name == "ifndef" || name == "elif" ||
      name == "elifdef" || name == "elifndef" || name == "else" || name == "endif") {
    conditional(name, line);
    return;
  }
  if (!active()) return;  // anything else in a skipped group is ignored
  if (dname.kind == TokenKind::number) {
    line_directive(line, 1);  // GNU linemarker `# 33 "file"`
  } else if (name == "define") {
    define(line, 2);
  } else if (name == "undef") {
    if (line.size() < 3 || line[2].kind != TokenKind::identifier) fail(hash, "macro names must be identifiers");
    if (line[2].text == "defined") fail(hash, "\"defined\" cannot be used as a macro name");
    macros_.erase(line[2].text);
  } else if (name == "include" || name == "include_next" || name == "import") {
    include(line);
  } else if (name == "line") {
    line_directive(line, 2);
  } else if (name == "error") {
    std::string msg;
    for (std::size_t i = 2; i < line.size(); ++i) {
      if (i > 2 && line[i].space) msg += ' ';
      msg += line[i].text;
    }
    fail(hash, "#error " + msg);
  } else if (name == "warning") {
    // Ignored: warnings have no channel to the user here.
  } else if (name == "pragma") {
    if (line.size() == 3 && line[2].text == "once") {
      if (!files_.back()->key.empty()) once_.insert(files_.back()->key);
      return;
    }
    // Loop hints (`#pragma unroll N`, `#pragma clang loop unroll_count(N)`) take constant
    // expressions that clang macro-expands (ggml: `#pragma unroll (MIN(DK8/2, 4*NSG))`); the
    // macros are gone from the translation, so expand them here. Other pragmas pass verbatim.
    Tokens rest(line.begin() + 1, line.end());
    const bool loop_hint = line.size() > 3 && (line[2].text == "unroll" || line[2].text == "nounroll" ||
                                               (line[2].text == "clang" && line[3].text == "loop"));
    if (loop_hint) {
      Tokens args = expand_isolated(Tokens(line.begin() + 3, line.end()));
      rest.resize(2);
      rest.insert(rest.end(), args.begin(), args.end());
    }
    std::string text;
    for (std::size_t i = 0; i < rest.size(); ++i) {
      if (i > 0 && rest[i].space) text += ' ';
      text += rest[i].text;
    }
    out_.directive_line(hash.file, hash.line, text);
  } else {
    fail(hash, "invalid preprocessing directive #" + name);
  }
}


void Preprocessor::conditional(const std::string& name, Tokens& line) {
  FileCtx& f = *files_.back();
  const PPTok& hash = line[0];
  auto operand_defined = [&]() {
    if (line.size() < 3 || line[2].kind != TokenKind::identifier) {
      fail(hash, "no macro name given in #" + name + " directive");
    }
    return macros_.count(line[2].text) != 0;
  };
  if (name == "if" || name == "ifdef" || name == "ifndef") {
    const bool parent = active();
    bool value = false;
    if (parent) value = name == "if" ? eval_if(line, 2) : operand_defined() == (name == "ifdef");
    // In a skipped group the whole chain counts as taken, so no group of it turns on.
    f.conds.push_back(Cond{parent, value || !parent, value, false, hash.line, hash.file});
    return;
  }
  if (f.conds.empty()) fail(hash, "#" + name + " without #if");
  if (name == "endif") {
    f.conds.pop_back();
    return;
  }
  if (f.conds.back().seen_else) fail(hash, "#" + name + " after #else");
  if (name == "else") {
    Cond& c = f.conds.back();
    c.seen_else = true;
    c.active = !c.taken;
    c.taken = true;
    return;
  }
  if (f.conds.back().taken) {  // the expression is not even evaluated, as in C
    f.conds.back().active = false;
    return;
  }
  const bool value = name == "elif" ? eval_if(line, 2) : operand_defined() == (name == "elifdef");
  f.conds.back().active = value;
  f.conds.back().taken = value;
}

void Preprocessor::define(const Tokens& line, std::size_t at) {
  const PPTok& hash = line[0];
  if (at >= line.size() || line[at].kind != TokenKind::identifier) {
    fail(hash, "macro names must be identifiers");
  }
  const std::string& name = line[at].text;
  if (name == "defined") fail(hash, "\"defined\" cannot be used as a macro name");
  auto m = std::make_shared<Macro>();
  m->id = macro_id(name);
  std::size_t i = at + 1;
  const std::size_t n = line.size();
  if (i < n && line[i].is_punct("(") && !line[i].space) {
    m->function_like = true;
    ++i;
    if (i < n && line[i].is_punct(")")) {
      ++i;
    } else {
      for (;;) {
        if (i >= n) fail(hash, "missing ')' in macro parameter list");
        const PPTok& p = line[i];
        if (p.is_punct("...")) {
          m->variadic = true;
          m->params.push_back("__VA_ARGS__");
          ++i;
        } else if (p.kind == TokenKind::identifier && p.text != "__VA_ARGS__") {
          if (std::find(m->params.begin(), m->params.end(), p.text) != m->params.end()) {
            fail(hash, "duplicate macro parameter \"" + p.text + "\"");
          }
          m->params.push_back(p.text);
          ++i;
          if (i < n && line[i].is_punct("...")) {  // GNU named variadic parameter: `args...`
            m->variadic = true;
            ++i;
          }
        } else {
          fail(hash, "expected parameter name, found \"" + p.text + "\"");
        }
        if (i < n && line[i].is_punct(")")) {
          ++i;
          break;
        }
        if (m->variadic || i >= n || !line[i].is_punct(",")) {
          fail(hash, "expected ',' or ')' in macro parameter list");
        }
        ++i;
      }
    }
  }
  m->body.assign(line.begin() + std::ptrdiff_t(i), line.end());
  if (!m->body.empty()) m->body[0].space = false;
  const std::size_t nb = m->body.size();
  m->param_of.assign(nb, -1);
  for (std::size_t k = 0; k < nb; ++k) {
    PPTok& b = m->body[k];
    b.bol = false;
    if (b.kind == TokenKind::identifier && m->function_like) {
      auto it = std::find(m->params.begin(), m->params.end(), b.text);
      if (it != m->params.end()) m->param_of[k] = int(it - m->params.begin());
    }
    if (b.is_punct("##")) {
      if (k == 0 || k + 1 == nb) fail(hash, "'##' cannot appear at either end of a macro expansion");
      b.paste_op = true;
      m->has_paste = true;
    }
  }
  for (std::size_t k = 0; k < nb; ++k) {
    const PPTok& b = m->body[k];
    if (m->variadic && b.is(TokenKind::identifier, "__VA_OPT__")) {
      if (k + 1 >= nb || !m->body[k + 1].is_punct("(")) fail(hash, "__VA_OPT__ must be followed by '('");
      int depth = 0;
      std::size_t j = k + 1;
      for (; j < nb; ++j) {
        if (m->body[j].is_punct("(")) ++depth;
        if (m->body[j].is_punct(")") && --depth == 0) break;
      }
      if (j >= nb) fail(hash, "unterminated __VA_OPT__");
    }
    if (m->function_like && b.is_punct("#") &&
        !(k + 1 < nb && (m->param_of[k + 1] >= 0 ||
                         (m->variadic && m->body[k + 1].is(TokenKind::identifier, "__VA_OPT__"))))) {
      fail(hash, "'#' is not followed by a macro parameter");
    }
  }
  macros_[name] = std::move(m);  // a different redefinition simply replaces the old one
}

std::optional<std::pair<std::string, bool>> Preprocessor::header_name(const Tokens& toks,
                                                                      std::size_t& i) const {
  if (i >= toks.size()) return std::nullopt;
  const PPTok& t = toks[i];
  if (t.kind == TokenKind::string_literal && t.text.size() >= 2 && t.text[0] == '"') {
    ++i;
    return std::make_pair(t.text.substr(1, t.text.size() - 2), false);
  }
  if (!t.is_punct("<")) return std::nullopt;
  std::string name;
  for (std::size_t j = i + 1; j < toks.size(); ++j) {
    if (toks[j].is_punct(">")) {
      i = j + 1;
      return std::make_pair(name, true);
    }
    if (j > i + 1 && toks[j].space) name += ' ';
    name += toks[j].text;
  }
  return std::nullopt;
}

Preprocessor::Resolved Preprocessor::resolve_include(const std::string& name, bool angled) const {
  auto exists = [](const std::string& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec);
  };
  auto join = [&](const std::string& dir) -> std::string {
    if (dir.empty() || fs::path(name).is_absolute()) return name;
    return (fs::path(dir) / name).lexically_normal().string();
  };
  if (angled && is_builtin_header(name)) return {Resolved::builtin, {}};
  if (!angled) {
    std::string candidate = join(files_.empty() ? std::string() : files_.back()->dir);
    if (exists(candidate)) return {Resolved::file, candidate};
  }
  for (const std::string& dir : options_.include_dirs) {
    std::string candidate = join(dir);
    if (exists(candidate)) return {Resolved::file, candidate};
  }
  if (!angled && is_builtin_header(name)) return {Resolved::builtin, {}};
  return {};
}

void Preprocessor::include(Tokens& line) {
  const PPTok& hash = line[0];
  std::size_t i = 2;
  auto header = header_name(line, i);
  if (!header) {  // `#include MACRO`
    Tokens expanded = expand_isolated(Tokens(line.begin() + 2, line.end()));
    std::size_t j = 0;
    header = header_name(expanded, j);
    if (!header) fail(hash, "#include expects \"FILENAME\" or <FILENAME>");
  }
  const auto& [name, angled] = *header;
  const Resolved r = resolve_include(name, angled);
  if (r.kind == Resolved::missing && name.rfind("MetalPerformancePrimitives/", 0) == 0)
    fail(hash, "'" + name + "': MetalPerformancePrimitives (Apple's tensor operations for M5-class "
                            "GPUs) is not available on this backend");
  if (r.kind == Resolved::missing) fail(hash, "'" + name + "' file not found");
  if (r.kind == Resolved::builtin) return;
  if (files_.size() >= std::size_t(kMaxIncludeDepth)) {
    fail(hash, "#include nested too deeply (more than " + std::to_string(kMaxIncludeDepth) +
                   " levels) including '" + name + "'");
  }
  std::error_code ec;
  std::string key = fs::weakly_canonical(r.path, ec).string();
  if (ec) key = r.path;
  if (once_.count(key)) return;
  std::ifstream in(r.path, std::ios::binary);
  if (!in) fail(hash, "cannot read '" + r.path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (std::find(files_read_.begin(), files_read_.end(), r.path) == files_read_.end()) {
    files_read_.push_back(r.path);
  }
  push_file({}, text.str(), intern_name(r.path), fs::path(r.path).parent_path().string(), key);
}

void Preprocessor::line_directive(Tokens& line, std::size_t first) {
  const PPTok& hash = line[0];
  Tokens args(line.begin() + std::ptrdiff_t(first), line.end());
  if (args.empty() || args[0].kind != TokenKind::number) args = expand_isolated(std::move(args));
  if (args.empty() || args[0].kind != TokenKind::number ||
      args[0].text.find_first_not_of("0123456789") != std::string::npos || args[0].text.size() > 9) {
    fail(hash, "#line directive requires a simple digit sequence");
  }
  const int value = std::stoi(args[0].text);
  FileCtx& f = *files_.back();
  if (args.size() > 1) {
    if (args[1].kind != TokenKind::string_literal || args[1].text[0] != '"') {
      fail(hash, "invalid filename \"" + args[1].text + "\" in #line directive");
    }
    std::string name;
    const std::string& q = args[1].text;
    for (std::size_t k = 1; k + 1 < q.size(); ++k) {
      if (q[k] == '\\' && k + 2 < q.size()) ++k;
      name += q[k];
    }
    f.name = intern_name(name);
  }
  // The physical line after this directive becomes line `value`.
  const int physical_last = line.back().line - f.delta;
  f.delta = value - (physical_last + 1);
}

bool Preprocessor::eval_if(const Tokens& line, std::size_t from) {
  const PPTok& at = line[0];
  Tokens toks(line.begin() + std::ptrdiff_t(std::min(from, line.size())), line.end());
  replace_if_operators(toks, at);
  Tokens expanded = expand_isolated(std::move(toks), true);
  replace_if_operators(expanded, at);  // `defined` that came out of a macro (as GCC allows)
  ExprParser parser(expanded, [&](const std::string& what) { fail(at, what); });
  return parser.parse().truth();
}

namespace {
long has_query_value(const std::string& query, const std::string& arg) {
  if (query == "__has_cpp_attribute") {
    if (arg == "noreturn" || arg == "carries_dependency") return 200809;
    if (arg == "deprecated") return 201309;
  }
  return 0;
}
bool is_has_query(const std::string& s) {
  return s == "__has_feature" || s == "__has_extension" || s == "__has_builtin" ||
         s == "__has_attribute" || s == "__has_cpp_attribute" || s == "__has_c_attribute" ||
         s == "__has_declspec_attribute" || s == "__has_warning";
}
}  // namespace

// Evaluates `defined`, `__has_include` and the `__has_*` queries, whose operands must not
// be macro-expanded, into number tokens.
void Preprocessor::replace_if_operators(Tokens& toks, const PPTok& at) {
  Tokens out;
  out.reserve(toks.size());
  const std::size_t n = toks.size();
  auto number = [&](long v, const PPTok& like) {
    PPTok t;
    t.text = std::to_string(v);
    t.kind = TokenKind::number;
    t.line = like.line;
    t.file = like.file;
    t.space = like.space;
    out.push_back(std::move(t));
  };
  auto expect_punct = [&](std::size_t j, const char* p, const std::string& op) {
    if (j >= n || !toks[j].is_punct(p)) fail(at, "missing '" + std::string(p) + "' after \"" + op + "\"");
  };
  for (std::size_t i = 0; i < n; ++i) {
    const PPTok& t = toks[i];
    if (t.kind != TokenKind::identifier) {
      out.push_back(std::move(toks[i]));
      continue;
    }
    if (t.text == "defined") {
      std::size_t j = i + 1;
      const bool paren = j < n && toks[j].is_punct("(");
      if (paren) ++j;
      if (j >= n || toks[j].kind != TokenKind::identifier) {
        fail(at, "operator \"defined\" requires an identifier");
      }
      const bool value = macros_.count(toks[j].text) != 0;
      if (paren) expect_punct(++j, ")", "defined");
      number(value, t);
      i = j;
    } else if (t.text == "__has_include" || t.text == "__has_include_next") {
      std::size_t j = i + 1;
      expect_punct(j, "(", t.text);
      ++j;
      auto header = header_name(toks, j);
      if (!header) fail(at, t.text + " requires a header name");
      expect_punct(j, ")", t.text);
      number(resolve_include(header->first, header->second).kind != Resolved::missing, t);
      i = j;
    } else if (is_has_query(t.text)) {
      std::size_t j = i + 1;
      expect_punct(j, "(", t.text);
      std::string arg;
      int depth = 0;
      for (; j < n; ++j) {
        if (toks[j].is_punct("(")) ++depth;
        if (toks[j].is_punct(")") && --depth == 0) break;
        if (depth > 1 || !toks[j].is_punct("(")) arg += toks[j].text;
      }
      if (j >= n) fail(at, "missing ')' after \"" + t.text + "\"");
      number(has_query_value(t.text, arg), t);
      i = j;
    } else {
      out.push_back(std::move(toks[i]));
    }
  }
  toks = std::move(out);
}

// ---------------------------------------------------------------------------------------------
// Expansion

Tokens Preprocessor::expand_isolated(Tokens toks, bool in_if) {
  Tokens pending(std::make_move_iterator(toks.rbegin()), std::make_move_iterator(toks.rend()));
  Tokens out;
  out.reserve(toks.size());
  expand(pending, &out, false, in_if);
  return out;
}

// Expands everything on `pending` (a stack, next token at the back). At top level, output
// goes to out_ and invocations may pull further lines of the file for their arguments.
void Preprocessor::expand(Tokens& pending, Tokens* out, bool top_level, bool in_if) {
  while (!pending.empty()) {
    PPTok t = std::move(pending.back());
    pending.pop_back();
    if (t.kind != TokenKind::identifier) {
      deliver(std::move(t), out);
      continue;
    }
    if (in_if && t.text == "defined") {  // keep the operand of a generated `defined` intact
      deliver(std::move(t), out);
      if (!pending.empty() && pending.back().is_punct("(")) {
        deliver(std::move(pending.back()), out);
        pending.pop_back();
      }
      if (!pending.empty() && pending.back().kind == TokenKind::identifier) {
        deliver(std::move(pending.back()), out);
        pending.pop_back();
      }
      continue;
    }
    const MacroPtr* found = find_macro(t.text);
    if (!found || hidesets_.contains(t.hs, (*found)->id)) {
      deliver(std::move(t), out);
      continue;
    }
    const MacroPtr m = *found;  // stays alive even if an argument line #undefs it
    if (m->builtin != Macro::Builtin::none) {
      expand_builtin(*m, t);
      deliver(std::move(t), out);
      continue;
    }
    count_expansion(t);
    if (!m->function_like) {
      std::vector<Tokens> no_args;
      substitute(*m, t, no_args, hidesets_.add(t.hs, m->id), pending);
      continue;
    }
    if (!next_is_lparen(pending, top_level)) {  // a function-like name alone is no invocation
      deliver(std::move(t), out);
      continue;
    }
    int rparen_hs = 0;
    std::vector<Tokens> args = collect_args(*m, t, pending, top_level, rparen_hs);
    substitute(*m, t, args, hidesets_.add(hidesets_.intersect(t.hs, rparen_hs), m->id), pending);
  }
}

bool Preprocessor::expand_builtin(const Macro& m, PPTok& t) {
  switch (m.builtin) {
    case Macro::Builtin::file:
      t.kind = TokenKind::string_literal;
      t.text = quote_string(names_[t.file]);
      return true;
    case Macro::Builtin::line:
      t.kind = TokenKind::number;
      t.text = std::to_string(t.line);
      return true;
    case Macro::Builtin::counter:
      t.kind = TokenKind::number;
      t.text = std::to_string(counter_++);
      return true;
    default: return false;  // __has_include and friends mean something only in #if
  }
}

bool Preprocessor::next_is_lparen(Tokens& pending, bool top_level) {
  if (pending.empty()) {
    if (!top_level || !next_text_line(pending, true)) return false;
  }
  return pending.back().is_punct("(");
}

// Collects the arguments of an invocation whose '(' is at the back of `pending`.
std::vector<Tokens> Preprocessor::collect_args(const Macro& m, const PPTok& name, Tokens& pending,
                                               bool top_level, int& rparen_hs) {
  pending.pop_back();  // '('
  std::vector<Tokens> args(1);
  const std::size_t np = m.params.size();
  int depth = 0;
  for (;;) {
    if (pending.empty()) {
      if (!top_level || !next_text_line(pending, true)) {
        fail(name, "unterminated argument list invoking macro \"" + name.text + "\"");
      }
      pending.back().space = true;  // the line break counts as whitespace
    }
    PPTok t = std::move(pending.back());
    pending.pop_back();
    if (t.kind == TokenKind::punct) {
      if (t.text == "(") {
        ++depth;
      } else if (t.text == ")") {
        if (depth == 0) {
          rparen_hs = t.hs;
          break;
        }
        --depth;
      } else if (t.text == "," && depth == 0 && !(m.variadic && args.size() == np)) {
        args.emplace_back();
        continue;
      }
    }
    args.back().push_back(std::move(t));
  }
  if (np == 0) {
    if (args.size() == 1 && args[0].empty()) {
      args.clear();
      return args;
    }
  } else if (m.variadic) {
    if (args.size() + 1 == np) args.emplace_back();  // variable arguments left out entirely
    if (args.size() == np) return args;
    fail(name, "macro \"" + name.text + "\" requires at least " + std::to_string(np - 1) +
                   " arguments, but only " + std::to_string(args.size()) + " given");
  } else if (args.size() == np) {
    return args;
  }
  if (args.size() < np) {
    fail(name, "macro \"" + name.text + "\" requires " + std::to_string(np) +
                   " arguments, but only " + std::to_string(args.size()) + " given");
  }
  fail(name, "macro \"" + name.text + "\" passed " + std::to_string(args.size()) +
                 " arguments, but takes just " + std::to_string(np));
}

const Tokens& Preprocessor::expanded_arg(std::vector<Tokens>& args,
                                         std::vector<std::optional<Tokens>>& expanded, int p) {
  auto& e = expanded[std::size_t(p)];
  if (e) return *e;
  const Tokens& raw = args[std::size_t(p)];
  // Most arguments hold no macro names: they expand to themselves, so skip the copy.
  const bool plain = std::none_of(raw.begin(), raw.end(), [&](const PPTok& t) {
    return t.kind == TokenKind::identifier && macros_.count(t.text) != 0;
  });
  if (plain) return raw;
  e = expand_isolated(raw);
  return *e;
}

PPTok Preprocessor::stringize(const Tokens& toks, bool space) const {
  PPTok s;
  s.kind = TokenKind::string_literal;
  s.space = space;
  s.text = "\"";
  bool first = true;
  for (const PPTok& t : toks) {
    if (t.placemarker) continue;
    if (!first && t.space) s.text += ' ';
    first = false;
    if (t.kind == TokenKind::string_literal || t.kind == TokenKind::char_literal) {
      for (char c : t.text) {
        if (c == '"' || c == '\\') s.text += '\\';
        s.text += c;
      }
    } else {
      s.text += t.text;
    }
  }
  s.text += '"';
  return s;
}

namespace {
PPTok placemarker(const PPTok& like) {
  PPTok p;
  p.placemarker = true;
  p.space = like.space;
  return p;
}
void append(Tokens& items, const Tokens& src, bool space) {
  const std::size_t first = items.size();
  items.insert(items.end(), src.begin(), src.end());
  if (items.size() > first) items[first].space = space;
}
bool is_va_opt(const Macro& m, std::size_t i) {
  return m.variadic && m.param_of[i] < 0 && m.body[i].is(TokenKind::identifier, "__VA_OPT__");
}
// Index of the ')' matching the '(' at body[open] (define() checked that there is one).
std::size_t matching_paren(const Macro& m, std::size_t open) {
  int depth = 0;
  for (std::size_t j = open; j < m.body.size(); ++j) {
    if (m.body[j].is_punct("(")) ++depth;
    if (m.body[j].is_punct(")") && --depth == 0) return j;
  }
  return m.body.size() - 1;
}
}  // namespace

// First step of substitution: parameters replaced (raw next to ##, stringized after #,
// fully expanded otherwise), __VA_OPT__ resolved. `##` operators are still in `items`.
void Preprocessor::substitute_range(const Macro& m, std::size_t begin, std::size_t end,
                                    std::vector<Tokens>& args,
                                    std::vector<std::optional<Tokens>>& expanded,
                                    const PPTok& name, Tokens& items) {
  const int last = int(m.params.size()) - 1;
  auto va_present = [&] { return !expanded_arg(args, expanded, last).empty(); };
  for (std::size_t i = begin; i < end; ++i) {
    const PPTok& b = m.body[i];
    const int p = m.param_of[i];
    if (m.function_like && b.is_punct("#") && !b.paste_op && i + 1 < end) {
      if (const int q = m.param_of[i + 1]; q >= 0) {
        items.push_back(stringize(args[std::size_t(q)], b.space));
        ++i;
        continue;
      }
      if (is_va_opt(m, i + 1)) {  // #__VA_OPT__(...)
        const std::size_t close = matching_paren(m, i + 2);
        Tokens inner;
        if (va_present()) substitute_range(m, i + 3, close, args, expanded, name, inner);
        items.push_back(stringize(paste_all(inner, name), b.space));
        i = close;
        continue;
      }
    }
    if (is_va_opt(m, i)) {
      const std::size_t close = matching_paren(m, i + 1);
      const std::size_t mark = items.size();
      if (va_present()) substitute_range(m, i + 2, close, args, expanded, name, items);
      if (items.size() == mark) items.push_back(placemarker(b));
      else items[mark].space = b.space;
      i = close;
      continue;
    }
    if (p < 0) {
      items.push_back(b);
      continue;
    }
    const bool after_paste = i > 0 && m.body[i - 1].paste_op;
    const bool before_paste = i + 1 < m.body.size() && m.body[i + 1].paste_op;
    if (!after_paste && !before_paste) {
      append(items, expanded_arg(args, expanded, p), b.space);
      continue;
    }
    const Tokens& raw = args[std::size_t(p)];
    if (after_paste && m.variadic && p == last && items.size() >= 2 &&
        items[items.size() - 2].is_punct(",") && items.back().paste_op) {
      // GNU `, ## __VA_ARGS__`: without variable arguments the comma goes; with them the
      // `##` just disappears (no pasting).
      items.pop_back();
      if (raw.empty()) {
        items.pop_back();
        items.push_back(placemarker(b));
      } else {
        append(items, raw, b.space);
      }
      continue;
    }
    if (raw.empty()) items.push_back(placemarker(b));
    else append(items, raw, b.space);
  }
}

// Second step: applies the `##` operators left to right and drops placemarkers.
Tokens Preprocessor::paste_all(Tokens& items, const PPTok& name) {
  Tokens result;
  result.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].paste_op && !result.empty() && i + 1 < items.size()) {
      PPTok& rhs = items[++i];
      PPTok& lhs = result.back();
      if (rhs.placemarker) continue;
      if (lhs.placemarker) {
        const bool space = lhs.space;
        lhs = std::move(rhs);
        lhs.space = space;
        continue;
      }
      glue(lhs, rhs, name);
      continue;
    }
    result.push_back(std::move(items[i]));
  }
  result.erase(std::remove_if(result.begin(), result.end(),
                              [](const PPTok& t) { return t.placemarker; }),
               result.end());
  return result;
}

void Preprocessor::glue(PPTok& lhs, const PPTok& rhs, const PPTok& name) {
  std::string text = lhs.text + rhs.text;
  TokenKind kind;
  const bool comment = text.size() >= 2 && text[0] == '/' && (text[1] == '/' || text[1] == '*');
  if (comment || lex::token_length(text, 0, kind) != text.size()) {
    fail(name, "pasting \"" + lhs.text + "\" and \"" + rhs.text +
                   "\" does not give a valid preprocessing token");
  }
  lhs.text = std::move(text);
  lhs.kind = kind;
  lhs.paste_op = false;
  lhs.hs = hidesets_.intersect(lhs.hs, rhs.hs);
}

void Preprocessor::substitute(const Macro& m, const PPTok& name, std::vector<Tokens>& args,
                              int hs, Tokens& pending) {
  std::vector<std::optional<Tokens>> expanded(args.size());
  std::size_t size = m.body.size();
  for (const Tokens& a : args) size += 2 * a.size();  // raw and expanded copies, roughly
  Tokens items;
  items.reserve(size);
  substitute_range(m, 0, m.body.size(), args, expanded, name, items);
  Tokens result = m.has_paste ? paste_all(items, name) : std::move(items);
  if (!m.has_paste) {  // an empty __VA_OPT__ leaves a placemarker
    result.erase(std::remove_if(result.begin(), result.end(),
                                [](const PPTok& t) { return t.placemarker; }),
                 result.end());
  }
  if (!result.empty()) result.front().space = name.space;
  // Everything an expansion yields is reported at the invocation and hidden from the macro.
  for (auto it = result.rbegin(); it != result.rend(); ++it) {
    it->line = name.line;
    it->file = name.file;
    it->hs = hidesets_.unite(it->hs, hs);
    it->bol = false;
    it->paste_op = false;
    pending.push_back(std::move(*it));
  }
}

// ---------------------------------------------------------------------------------------------

PreprocessResult Preprocessor::run(std::string_view source, const std::string& path) {
  const bool from_string = path.empty() || path == "<string>";
  const std::string main_name = from_string ? "<string>" : path;
  const int main_index = intern_name(main_name);
  files_read_.push_back(main_name);
  out_.start(main_index);

  auto builtin = [&](const char* name, Macro::Builtin kind) {
    auto m = std::make_shared<Macro>();
    m->id = macro_id(name);
    m->builtin = kind;
    macros_[name] = std::move(m);
  };
  builtin("__FILE__", Macro::Builtin::file);
  builtin("__LINE__", Macro::Builtin::line);
  builtin("__COUNTER__", Macro::Builtin::counter);
  for (const char* q : {"__has_include", "__has_include_next", "__has_feature", "__has_extension",
                        "__has_builtin", "__has_attribute", "__has_cpp_attribute",
                        "__has_c_attribute", "__has_declspec_attribute", "__has_warning"}) {
    builtin(q, Macro::Builtin::if_only);
  }
  const int command_line = intern_name("<command line>");
  auto define_option = [&](const std::string& name, std::string value) {
    std::replace(value.begin(), value.end(), '\n', ' ');
    Tokens toks = tokenize("#define " + name + " " + value, command_line);
    define(toks, 2);
  };
  define_option("__cplusplus", "201402L");
  for (const auto& [name, value] : options_.predefined) define_option(name, value);
  for (const auto& [name, value] : options_.defines) define_option(name, value);

  std::string dir, key;
  if (!from_string) {
    dir = fs::path(path).parent_path().string();
    std::error_code ec;
    key = fs::weakly_canonical(path, ec).string();
    if (ec) key = path;
  }
  push_file(source, {}, main_index, dir, key);
  Tokens pending;
  while (next_text_line(pending, false)) expand(pending, nullptr, true);
  return PreprocessResult{out_.finish(), std::move(files_read_)};
}

}  // namespace

PreprocessResult preprocess(std::string_view source, const std::string& path,
                            const PreprocessOptions& options) {
  Preprocessor pp(options);
  return pp.run(source, path);
}

}  // namespace metalgpu::msl
