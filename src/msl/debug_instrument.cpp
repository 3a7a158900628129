#include "msl/debug_instrument.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "msl/statements.hpp"

namespace metalgpu::msl {
namespace {

// Access kinds, as mg_cpu_debug.h numbers them; `quiet` is or'ed into a read that cannot race.
enum Access { address_only = 0, read = 1, write = 2, read_write = 3, quiet = 4 };

const std::set<std::string, std::less<>> kAssignments = {"=",  "+=", "-=", "*=",  "/=", "%=",
                                                         "&=", "|=", "^=", "<<=", ">>="};
// Keywords after which an expression starts (a `[` after them is no declarator's).
const std::set<std::string, std::less<>> kExpressionKeywords = {"return", "case",     "throw",
                                                                "else",   "co_return", "co_yield"};
// Tokens after which a `*` is a dereference (a unary operator), not a multiplication.
const std::set<std::string, std::less<>> kBeforeUnary = {
    "(",  "[",  "{",  ",",  ";",  "=",  "+=", "-=", "*=", "/=", "%=", "&=", "|=",     "^=",  "<<=",
    ">>=", "?", ":",  "!",  "~",  "+",  "-",  "/",  "%",  "&&", "||", "==", "!=", "<=", ">=", "return", "case"};
// thread_position_in_grid types whose value is the position itself (no narrowing, no sign).
const std::set<std::string, std::less<>> kGridIndexTypes = {"uint",     "unsigned", "unsigned int", "uint32_t",
                                                            "ulong",    "size_t",   "uint64_t",     "unsigned long"};
const std::set<std::string, std::less<>> kQualifiers = {"const", "constexpr", "static", "volatile", "thread",
                                                        "threadgroup", "device", "constant", "register"};

class Instrumenter {
 public:
  explicit Instrumenter(const SourceModel& m) : m_(m), toks_(m.lexed().tokens) {}

  DebugChecks run() {
    mark_bodies();
    note_kernel_buffers();
    for (std::size_t i = 0; i < toks_.size(); ++i) {
      if (!in_body_[i] || m_.action(i) != TokenAction::keep || toks_[i].kind != TokenKind::punct) continue;
      if (toks_[i].text == "[") subscript(i);
      else if (toks_[i].text == "*") dereference(i);
      else if (toks_[i].text == "->") arrow(i);
    }
    note_threadgroup_variables();
    quiet_reads_between_barriers();
    DebugChecks out;
    out.edits = compose();
    for (const KernelBody& k : kernel_bodies_)
      if (!k.proven.empty()) out.grid_arguments[k.definition] = std::vector<std::string>(k.proven.begin(), k.proven.end());
    return out;
  }

 private:
  struct Span {
    std::size_t start, end;  // first and last token
    std::string open;        // before `start`: the check's call up to its access kind
    std::string close;       // after `end` (empty: the span closes itself through `replace`)
    std::size_t close_before = npos;  // or before this token
    Access kind = read;      // written after `open`, then the operands
  };
  static constexpr std::size_t npos = std::string::npos;

  bool is(std::size_t i, const char* s) const {
    return i < toks_.size() && toks_[i].kind != TokenKind::string_literal && toks_[i].kind != TokenKind::end &&
           toks_[i].text == s;
  }
  bool ident(std::size_t i) const { return i < toks_.size() && toks_[i].kind == TokenKind::identifier; }
  bool kept(std::size_t i) const { return i < toks_.size() && m_.action(i) == TokenAction::keep; }

  std::size_t forward_match(std::size_t open) const {
    const std::string& o = toks_[open].text;
    const char* c = o == "(" ? ")" : o == "[" ? "]" : "}";
    int depth = 0;
    for (std::size_t k = open; k < toks_.size(); ++k) {
      if (toks_[k].kind != TokenKind::punct) continue;
      if (toks_[k].text == o) ++depth;
      else if (toks_[k].text == c && --depth == 0) return k;
    }
    return npos;
  }
  std::size_t back_match(std::size_t close) const {
    const std::string& c = toks_[close].text;
    const char* o = c == ")" ? "(" : c == "]" ? "[" : "{";
    int depth = 0;
    for (std::size_t k = close + 1; k-- > 0;) {
      if (toks_[k].kind != TokenKind::punct) continue;
      if (toks_[k].text == c) ++depth;
      else if (toks_[k].text == o && --depth == 0) return k;
    }
    return npos;
  }

  // Tokens strictly inside a function body, outside attributes.
  void mark_bodies() {
    in_body_.assign(toks_.size(), false);
    for (const Definition& d : m_.structure().definitions())
      if (d.kind == Definition::function)
        for (std::size_t k = d.open + 1; k < d.close && k < toks_.size(); ++k) in_body_[k] = true;
    for (std::size_t k = 0; k + 1 < toks_.size(); ++k)
      if (is(k, "[") && is(k + 1, "[")) {
        const std::size_t e = forward_match(k);
        for (std::size_t j = k; j <= e && j < toks_.size(); ++j) in_body_[j] = false;
        if (e == npos) break;
        k = e;
      }
  }

  // A kernel's device, constant and threadgroup pointer arguments: its body starts by looking up
  // the buffer each points into (dbg::kernel_buffer), once - the compiler hoists it out of the thread
  // loop - and an access through the argument's name checks against that (dbg::sub_in).
  // A kernel with a lambda is left out: a lambda's explicit captures would not name them.
  void note_kernel_buffers() {
    kernel_args_.assign(toks_.size(), -1);
    std::set<int> done;
    for (const KernelInfo& k : m_.kernels()) {
      const int f = m_.structure().function_at(k.decl_token);
      if (f < 0 || !done.insert(f).second) continue;  // template instantiations share a body
      const Definition& d = m_.structure().definitions()[std::size_t(f)];
      if (d.open >= d.close || d.close >= toks_.size() || has_lambda(d.open, d.close)) continue;
      KernelBody body;
      body.definition = f;
      for (const KernelParam& a : k.params) {
        const bool buffer = a.role == ParamRole::buffer && a.pointer &&
                            (a.address_space == "device" || a.address_space == "constant");
        // [[threadgroup(n)]] pointers too: the cuda backend checks them the same way (the cpu
        // backend's lookup finds buffers only, so they keep its full check and race detection).
        const bool threadgroup = a.role == ParamRole::threadgroup_memory && a.pointer;
        if ((buffer || threadgroup) && !a.name.empty()) {
          body.arguments.push_back(a.name);
          if (buffer && only_read(a.name, d.open, d.close)) body.fixed.insert(a.name);
          after_[d.open] += " const ::__metalgpu::dbg::region* const __mg_buffer_" + a.name +
                            " = ::__metalgpu::dbg::kernel_buffer(" + a.name + ");";
        }
        if (!k.cooperative && a.role == ParamRole::builtin && a.builtin == "thread_position_in_grid" &&
            !a.name.empty() && kGridIndexTypes.count(a.element_type) && only_read(a.name, d.open, d.close))
          body.grid_index = a.name;
      }
      if (body.arguments.empty()) continue;
      // What the proof is about, as the kernel received it: dbg::sub_grid compares an access's
      // pointer and index with these (equal, and folded away, where the names were left alone).
      if (!body.grid_index.empty() && !body.fixed.empty()) {
        after_[d.open] += " const auto __mg_grid_index = " + body.grid_index + ";";
        for (const std::string& a : body.fixed) after_[d.open] += " const auto __mg_grid_" + a + " = " + a + ";";
      } else {
        body.grid_index.clear();
      }
      kernel_bodies_.push_back(std::move(body));
      for (std::size_t t = d.open + 1; t < d.close; ++t) kernel_args_[t] = int(kernel_bodies_.size() - 1);
    }
  }
  // Is every use of `name` in the body (open, close) a read of it: never assigned, stepped,
  // its address taken or a name declared again? Syntax only, and only a hint: dbg::sub_grid
  // compares the pointer and index it is given with the kernel's own, so a change this misses
  // (`T* name` again, a helper taking it by reference) costs the proof, never a check.
  bool only_read(const std::string& name, std::size_t open, std::size_t close) const {
    for (std::size_t k = open + 1; k < close; ++k) {
      if (!ident(k) || toks_[k].text != name) continue;
      if (is(k - 1, ".") || is(k - 1, "->") || is(k - 1, "::")) continue;  // a member of that name
      if (kAssignments.count(toks_[k + 1].text) || is(k + 1, "++") || is(k + 1, "--") || is(k - 1, "++") ||
          is(k - 1, "--"))
        return false;
      if (is(k - 1, "&") && !(k >= 2 && (ident(k - 2) || is(k - 2, ")") || is(k - 2, "]") ||
                                         toks_[k - 2].kind == TokenKind::number)))
        return false;  // &name: its address
      if (ident(k - 1) && !kExpressionKeywords.count(toks_[k - 1].text)) return false;  // `T name`
      if (is(k - 1, ",")) {
        const std::size_t st = statement_start(k);
        if (st != npos && declares(st)) return false;  // `int a, name;`
      }
    }
    return true;
  }
  bool has_lambda(std::size_t open, std::size_t close) const {
    for (std::size_t k = open + 1; k < close; ++k) {
      if (!is(k, "[") || is(k + 1, "[") || is(k - 1, "[") || ident(k - 1) || is(k - 1, ")") || is(k - 1, "]"))
        continue;
      const std::size_t e = forward_match(k);
      if (e == npos || is(e + 1, "(") || is(e + 1, "{") || is(e + 1, "mutable")) return true;
    }
    return false;
  }
  // The argument whose buffer the kernel looked up, if the operand [s, e] is its bare name.
  const std::string* kernel_argument(std::size_t s, std::size_t e) const {
    if (s != e || !ident(s) || kernel_args_[s] < 0) return nullptr;
    for (const std::string& n : kernel_bodies_[std::size_t(kernel_args_[s])].arguments)
      if (n == toks_[s].text) return &n;
    return nullptr;
  }
  // `arg[i]` (tokens s, b, b + 1, close) with both names proven fixed in the kernel: the
  // access is proven per share; the argument is noted for the entry's check.
  bool grid_access(std::size_t s, std::size_t b, std::size_t close, const std::string& arg) {
    if (close != b + 2 || !ident(b + 1) || kernel_args_[s] < 0) return false;
    KernelBody& k = kernel_bodies_[std::size_t(kernel_args_[s])];
    if (k.grid_index.empty() || toks_[b + 1].text != k.grid_index || !k.fixed.count(arg)) return false;
    k.proven.insert(arg);
    return true;
  }

  // The statement's first token: after the `;`, `{` or `}` before `at` at its own depth, or
  // npos when an unclosed `(`, `[` or `{` comes first (`at` is inside a call or initializer).
  std::size_t statement_start(std::size_t at) const {
    int depth = 0;
    for (std::size_t k = at; k-- > 0;) {
      const std::string& t = toks_[k].text;
      if (toks_[k].kind != TokenKind::punct) continue;
      if (t == ")" || t == "]") ++depth;
      else if (t == "(" || t == "[") {
        if (depth-- == 0) return npos;
      } else if (depth == 0 && (t == ";" || t == "{" || t == "}")) {
        return k + 1;
      }
    }
    return npos;
  }

  // Does the statement starting at `s` declare variables (`float a[4], *b;`)? Qualifiers, a
  // type name (qualified, with template arguments), `*`/`&`s, then a name.
  bool declares(std::size_t s) const {
    std::size_t k = s;
    while (ident(k) && kQualifiers.count(toks_[k].text)) ++k;
    if (!ident(k) || kExpressionKeywords.count(toks_[k].text)) return false;
    ++k;
    while (is(k, "::") && ident(k + 1)) k += 2;
    if (is(k, "<")) {
      int depth = 0;
      for (; k < toks_.size(); ++k) {
        if (is(k, "<")) ++depth;
        else if (is(k, ">") && --depth == 0) break;
        else if (is(k, ">>") && (depth -= 2) <= 0) break;
        else if (is(k, ";") || is(k, "{") || is(k, "}")) return false;
      }
      ++k;
    }
    while (is(k, "*") || is(k, "&") || is(k, "&&") || (ident(k) && kQualifiers.count(toks_[k].text))) ++k;
    return ident(k);
  }

  // Is the name at `s` (the start of `s ... [`) being declared rather than used?
  bool is_declarator(std::size_t s) const {
    if (s == 0) return false;
    const std::size_t p = s - 1;
    if (ident(p)) return !kExpressionKeywords.count(toks_[p].text);  // `float a[4]`
    if (is(p, ">")) return true;  // `vec<float, 4> a[2]` - or a comparison, left unchecked
    if (is(p, "*") || is(p, "&") || is(p, "&&")) {
      // `T* p[2]` at the start of a declaration, against `x * a[i]`.
      std::size_t q = p;
      while (q > 0 && (is(q, "*") || is(q, "&") || is(q, "&&") || is(q, "const"))) --q;
      if (!(ident(q) || is(q, ">"))) return false;
      const std::size_t st = statement_start(s);
      return st != npos && declares(st);
    }
    if (is(p, ",")) {
      const std::size_t st = statement_start(s);
      return st != npos && declares(st);
    }
    return false;
  }

  // How an access whose expression ends at `end` (its operand starting at `start`) is used.
  Access access_kind(std::size_t start, std::size_t end) const {
    std::size_t k = end + 1;
    while (is(k, ".") && ident(k + 1)) k += 2;  // members and swizzles of the element
    if (is(k, "[")) return address_only;        // a row of a multi-dimensional array
    if (k < toks_.size() && toks_[k].kind == TokenKind::punct && kAssignments.count(toks_[k].text))
      return is(k, "=") ? write : read_write;
    if (is(k, "++") || is(k, "--")) return read_write;
    if (start > 0 && (is(start - 1, "++") || is(start - 1, "--"))) return read_write;
    if (start > 0 && is(start - 1, "&") && !(start > 1 && (ident(start - 2) || is(start - 2, ")") ||
                                                             is(start - 2, "]") ||
                                                             toks_[start - 2].kind == TokenKind::number)))
      return address_only;  // &x[i]: only its address
    return read;
  }

  std::string text(std::size_t b, std::size_t e) const {
    std::string r;
    for (std::size_t k = b; k <= e && k < toks_.size(); ++k) {
      if (!r.empty() && toks_[k].space_before) r += ' ';
      r += toks_[k].text;
    }
    if (r.size() > 60) r = r.substr(0, 57) + "...";
    std::string q;
    for (char c : r) {
      if (c == '"' || c == '\\') q += '\\';
      if (c == '\n') c = ' ';
      q += c;
    }
    return q;
  }

  // The check's call up to its access kind (compose() adds it); through a kernel's buffer
  // argument `arg`, the variant that is told the argument's buffer.
  std::string call(const char* fn, std::size_t b, std::size_t e, const std::string* arg = nullptr,
                   bool grid = false) const {
    std::string c = std::string(" ::__metalgpu::dbg::") + fn;
    if (!arg) c += "(";
    else if (grid) c += "_grid(__mg_buffer_" + *arg + ", __mg_grid_" + *arg + ", __mg_grid_index, ";
    else c += "_in(__mg_buffer_" + *arg + ", ";
    return c + "__FILE__, __LINE__, \"" + text(b, e) + "\", ";
  }

  // x[i]
  void subscript(std::size_t b) {
    if (b == 0 || is(b + 1, "[") || is(b - 1, "[")) return;
    const std::size_t p = b - 1;
    const bool operand_end = (ident(p) && !kExpressionKeywords.count(toks_[p].text) && !is(p, "operator") &&
                              !is(p, "new") && !is(p, "delete")) ||
                             is(p, ")") || is(p, "]");
    if (!operand_end) return;  // a lambda's captures, structured bindings, `new T[n]`
    if (is(p, ")")) {
      const std::size_t o = back_match(p);
      if (o == npos || o == 0 || is(o - 1, "decltype") || is(o - 1, "sizeof") || is(o - 1, "]")) return;
    }
    const std::size_t close = forward_match(b);
    const std::size_t s = m_.postfix_start(b);
    if (close == npos || s == npos || !kept(s) || !kept(close) || !in_body_[s]) return;
    if (s > 0 && (is(s - 1, "new") || is(s - 1, "delete"))) return;
    if (is_declarator(s)) return;
    for (std::size_t k = s; k < b; ++k)
      if (is(k, "<") || is(k, "template")) return;  // `f<N>(x)[i]`: a template call, not worth the risk
    const std::string* arg = kernel_argument(s, b - 1);
    const bool grid = arg && grid_access(s, b, close, *arg);
    const Access kind = access_kind(s, close);
    spans_.push_back({s, close, call("sub", s, close, arg, grid), "", npos, kind});
    replace_[b] = ",";
    replace_[close] = ")";
  }

  // The end of the postfix expression that starts at `k` (a name or a parenthesised group), or
  // npos when it is not one this pass handles.
  std::size_t operand_end(std::size_t k) const {
    std::size_t e;
    if (is(k, "(")) {
      e = forward_match(k);
      if (e == npos || e == k + 1) return npos;
      // A cast `(T*)x` / `(float)x`: its operand follows; not handled.
      if (is(e - 1, "*") || is(e - 1, "&") || (e == k + 2 && ident(k + 1))) return npos;
    } else if (ident(k) && !kExpressionKeywords.count(toks_[k].text) && !is(k, "sizeof")) {
      e = k;
      while (is(e + 1, "::") && ident(e + 2)) e += 2;
      if (is(e + 1, "<")) return npos;
    } else {
      return npos;
    }
    for (;;) {
      if (is(e + 1, "[") || is(e + 1, "(")) {
        const std::size_t c = forward_match(e + 1);
        if (c == npos) return npos;
        e = c;
      } else if ((is(e + 1, ".") || is(e + 1, "->")) && ident(e + 2)) {
        e += 2;
      } else if (is(e + 1, "++") || is(e + 1, "--")) {
        ++e;
      } else {
        return e;
      }
    }
  }

  // *p
  void dereference(std::size_t k) {
    if (k == 0) return;
    const Token& prev = toks_[k - 1];
    const bool unary = (prev.kind == TokenKind::punct || prev.kind == TokenKind::identifier) &&
                       kBeforeUnary.count(prev.text) && prev.kind != TokenKind::string_literal;
    if (!unary) return;
    const std::size_t s = k + 1, e = operand_end(s);
    if (e == npos || !kept(s) || !kept(e)) return;
    if (is(k - 1, "(") && is(e + 1, ")") && is(e + 2, "(")) return;  // `(*fp)(x)`, or a declaration of fp
    if (is(k - 1, ",")) {
      const std::size_t st = statement_start(k);
      if (st != npos && declares(st)) return;  // `int a, *b;`
    }
    Access kind = access_kind(k, e);
    if (is(k - 1, "&")) kind = address_only;
    spans_.push_back({s, e, call("ptr", k, e, kernel_argument(s, e)), ")", npos, kind});
  }

  // p->m
  void arrow(std::size_t a) {
    if (a == 0 || !ident(a + 1)) return;
    if (is(a - 1, ")")) {
      const std::size_t o = back_match(a - 1);
      if (o == npos || o == 0 || is(o - 1, "]") || is(o - 1, "decltype")) return;  // a lambda's return type
    }
    const std::size_t s = m_.postfix_start(a);
    if (s == npos || !kept(s) || !kept(a - 1) || !in_body_[s]) return;
    for (std::size_t k = s; k < a; ++k)
      if (is(k, "<") || is(k, "template")) return;
    std::size_t e = a + 1;
    while ((is(e + 1, ".") || is(e + 1, "->")) && ident(e + 2)) e += 2;
    Access kind = access_kind(s, e);
    if (kind == address_only) kind = read;
    spans_.push_back({s, a - 1, call("ptr", s, a + 1, kernel_argument(s, a - 1)), "", a, kind});
  }

  // ---- reads in an interval no thread writes
  // Between two threadgroup barriers that are statements of one block, every thread of the
  // group runs the statements between them and nothing else (debug mode faults a barrier that
  // not all reach). Where those statements write nothing through a checked access, call no
  // function of the program (which might) and hand no element out by address, no read there
  // can race: its record in the race detector would never be looked at. Such reads are marked
  // (dbg::quiet) and skip the detector; their bounds are still checked.
  void quiet_reads_between_barriers() {
    std::set<int> done;
    for (const KernelInfo& k : m_.kernels()) {
      if (!k.cooperative) continue;
      const int f = m_.structure().function_at(k.decl_token);
      if (f < 0 || !done.insert(f).second) continue;
      const Definition& d = m_.structure().definitions()[std::size_t(f)];
      try {
        quiet_reads_in(parse_body(m_.lexed(), d.open));
      } catch (const std::exception&) {
        // a body the statement parser cannot split: its reads stay fully checked
      }
    }
  }
  void quiet_reads_in(const Stmt& st) {
    if (st.kind == Stmt::compound) {
      std::size_t last = npos;  // the kid that is the last barrier seen
      for (std::size_t i = 0; i < st.kids.size(); ++i) {
        if (!is_barrier(st.kids[i])) continue;
        if (last != npos && quiet_interval(st.kids[last].end, st.kids[i].begin))
          for (Span& sp : spans_)
            if (sp.kind == read && sp.start >= st.kids[last].end && sp.start < st.kids[i].begin)
              sp.kind = Access(read | quiet);
        last = i;
      }
    }
    for (const Stmt& kid : st.kids) quiet_reads_in(kid);
  }
  bool is_barrier(const Stmt& st) const {
    std::size_t k = st.begin;
    if (is(k, "metal") && is(k + 1, "::")) k += 2;
    return st.kind == Stmt::simple && is(k, "threadgroup_barrier") && is(k + 1, "(");
  }
  bool quiet_interval(std::size_t begin, std::size_t end) const {
    static const std::set<std::string, std::less<>> kWritesThrough = {
        "sincos", "modf", "frexp", "simdgroup_store", "threadgroup_async_copy", "simdgroup_async_copy"};
    for (std::size_t k = begin; k < end; ++k) {
      if (!ident(k)) continue;
      // A jump that may leave the statements without reaching the second barrier: what runs
      // next (after a loop, say) is in the same interval.
      if (is(k, "break") || is(k, "continue") || is(k, "goto")) return false;
      if (kWritesThrough.count(toks_[k].text)) return false;
      const int id = m_.structure().id(toks_[k].text);
      if (id >= 0 && !m_.structure().named(id).empty()) return false;  // the program's own function or type
    }
    if (has_lambda(begin - 1, end)) return false;
    for (const Span& sp : spans_)  // a write, or an address handed out (a row `a[i][j]`'s `a[i]` is neither)
      if (sp.start >= begin && sp.start < end && sp.kind != read && !(sp.kind == address_only && is(sp.end + 1, "[")))
        return false;
    return true;
  }

  // `threadgroup T name[...];` in a kernel: tell the race detector where it lives.
  void note_threadgroup_variables() {
    for (std::size_t t : m_.threadgroup_storage()) {
      std::size_t semi = npos;
      for (const std::string& n : m_.declarator_names(t + 1, &semi))
        after_[semi] += " ::__metalgpu::dbg::note_threadgroup_variable(&" + n + ", sizeof(" + n + "), \"" + n + "\");";
    }
  }

  TextEdits compose() {
    // Spans that start at one token open outermost first (the one that ends last); closes
    // after one token come innermost first.
    std::stable_sort(spans_.begin(), spans_.end(), [](const Span& x, const Span& y) {
      return x.start != y.start ? x.start < y.start : x.end > y.end;
    });
    TextEdits out;
    for (const Span& sp : spans_) out.before[sp.start] += sp.open + std::to_string(int(sp.kind)) + ", ";
    std::vector<const Span*> by_end;
    for (const Span& sp : spans_) by_end.push_back(&sp);
    std::stable_sort(by_end.begin(), by_end.end(), [](const Span* x, const Span* y) {
      return x->end != y->end ? x->end < y->end : x->start > y->start;
    });
    for (const Span* sp : by_end) {
      if (sp->close_before != npos) out.before[sp->close_before].insert(0, ")");
      else if (!sp->close.empty()) out.after[sp->end] += sp->close;
    }
    out.replace = std::move(replace_);
    for (auto& [k, v] : after_) out.after[k] += v;
    return out;
  }

  const SourceModel& m_;
  const std::vector<Token>& toks_;
  std::vector<bool> in_body_;
  struct KernelBody {
    int definition = -1;
    std::vector<std::string> arguments;  // device, constant and threadgroup pointer arguments
    std::set<std::string> fixed;         // those of them only read in the body
    std::string grid_index;              // the scalar thread_position_in_grid, if only read
    std::set<std::string> proven;        // arguments accessed as arg[grid_index]
  };
  std::vector<int> kernel_args_;  // per token: index into kernel_bodies_ of the kernel body it is in, or -1
  std::vector<KernelBody> kernel_bodies_;
  std::vector<Span> spans_;
  std::unordered_map<std::size_t, std::string> replace_, after_;
};

}  // namespace

DebugChecks debug_instrumentation(const SourceModel& model) { return Instrumenter(model).run(); }

}  // namespace metalgpu::msl
