#include "msl/work_item_loops.hpp"

#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "msl/statements.hpp"
#include "msl/structure.hpp"

namespace metalgpu::msl {
namespace {

// Thrown where the rewrite does not apply: the kernel keeps its fibers, and the generated code
// says why (METALGPU_DUMP shows it).
struct Unsupported {
  std::string why;
  std::size_t token;
};

// Built-ins that differ between the threads of a group, re-bound in every thread loop: their
// values from the loop's counters (x innermost, so the compiler can vectorise across threads).
const std::map<std::string, std::string, std::less<>> kPerThreadBuiltins = {
    {"thread_position_in_grid",
     "metal::uint3(__wo.x + __x, __wo.y + __y, __wo.z + __z)"},
    {"thread_position_in_threadgroup", "metal::uint3(__x, __y, __z)"},
    {"thread_index_in_threadgroup", "__i"},
    {"simdgroup_index_in_threadgroup", "(__i / 32u)"},
    {"thread_index_in_simdgroup", "(__i % 32u)"},
    {"quadgroup_index_in_threadgroup", "(__i / 4u)"},
    {"thread_index_in_quadgroup", "(__i % 4u)"}};

// The head of a loop over the current group's threads: __i is the thread's index. The index
// is the innermost loop's counter, bounded by its row's end, so the compiler can prove it never
// wraps and vectorise accesses like `sh[tid]` across threads.
constexpr const char* kThreadLoop =
    " for (uint __z = 0; __z < __ws.z; ++__z) for (uint __y = 0; __y < __ws.y; ++__y)"
    " for (uint __r = __ws.x * (__y + __ws.y * __z), __i = __r, __e = __r + __ws.x; __i < __e; ++__i) {"
    " const uint __x = __i - __r; (void)__x;";

// Metal's simdgroup-matrix operations that need a whole SIMD group's elements, and which of
// their arguments are matrices. A statement that is one call to them runs once per SIMD group,
// the matrices seen as every lane's copy (wi_lanes in mg_simdgroup_matrix.h).
const std::map<std::string, std::vector<unsigned>, std::less<>> kMatrixOperations = {
    {"simdgroup_load", {0}},
    {"simdgroup_store", {0}},
    {"simdgroup_multiply", {0, 1, 2}},
    {"simdgroup_multiply_accumulate", {0, 1, 2, 3}}};

// The head of a loop over the current group's SIMD groups, __i its first thread and __sw its
// width: the per-thread built-ins are bound for that thread.
constexpr const char* kSimdGroupLoop =
    " for (uint __s = 0, __sn = __ws.x * __ws.y * __ws.z; __s * 32u < __sn; ++__s) {"
    " const uint __i = __s * 32u, __sw = __sn - __i < 32u ? __sn - __i : 32u, __x = __i % __ws.x,"
    " __y = __i / __ws.x % __ws.y, __z = __i / (__ws.x * __ws.y); (void)__sw; (void)__x; (void)__y; (void)__z;";

// Words that may precede or follow a declaration's type.
const std::set<std::string, std::less<>> kQualifiers = {"const",    "volatile", "thread", "device", "constant",
                                                        "threadgroup", "typename", "struct", "class",  "enum",
                                                        "unsigned", "signed",   "long",   "short",  "register"};
const std::set<std::string, std::less<>> kTypeWords = {"unsigned", "signed", "long", "short"};
// Identifiers that never name a type.
const std::set<std::string, std::less<>> kNotTypes = {
    "return", "break",       "continue",   "goto",        "if",         "for",        "while",  "do",
    "switch", "case",        "default",    "else",        "sizeof",     "this",       "true",   "false",
    "nullptr", "operator",   "static_cast", "reinterpret_cast", "const_cast", "as_type", "new", "delete"};

// Statements that run at group level, not per thread: types, compile-time constants,
// threadgroup storage.
const std::set<std::string, std::less<>> kGroupLevelStarts = {"using", "typedef", "static_assert", "constexpr",
                                                              "static"};

struct Declarator {
  std::size_t ptr_begin = 0;  // [ptr_begin, name): *, & and qualifiers
  std::size_t name = 0;
  std::size_t suffix_end = 0;  // (name, suffix_end): array bounds
  std::size_t end = 0;         // the `,` or `;` after the initialiser
  bool has_init = false;
};
struct Declaration {
  std::size_t spec_begin = 0, spec_end = 0;
  bool is_auto = false;
  std::vector<Declarator> declarators;
};

struct Private {
  std::string name;
  unsigned index;  // bound as `__mgw_t<index>& name = __mgw_p<index>[__i]`, or kShadow
};
// A name declared at group level (a uniform loop's counter, a hoisted value) in an inner scope:
// it hides a per-thread variable of the same name from the thread loops there.
constexpr unsigned kShadow = ~0u;

// Helpers that synchronise, called by a kernel as a whole statement at group level: each gets
// a copy rewritten into work-item loops (a "clone", placed after the helper's definition),
// which the kernel calls once per group. Shared by the kernels of a unit: one clone per
// helper, mapping of its parameters to per-thread built-ins, and slot range.
struct HelperClones {
  std::map<std::string, std::string> names;        // key -> clone's name
  std::map<std::size_t, std::string> text_after;   // helper's closing brace -> clones to write after it
  const std::unordered_map<std::size_t, std::string>* prior_before = nullptr;  // the translator's
  unsigned count = 0;
};

// The slots of a helper's clone start here: above any the calling kernel uses.
constexpr unsigned kHelperSlotBase = 512;

struct Context {
  std::vector<std::string> live;  // per-thread conditions (masks) the threads must meet
  struct Loop {
    unsigned k;
    bool has_continue;
  };
  std::vector<Loop> loops;  // enclosing group-level loops, innermost last
  bool in_switch = false;   // directly in a switch run at group level: `break` is the switch's
};

class Transformer {
 public:
  // `debug`: debug mode's checks (debug_instrument.hpp), which the rewrite keeps: it leaves the
  // kernel to the fibers rather than change a token they edit, copies them where it copies
  // code, and marks barriers and each thread's turn for the race detector.
  Transformer(const SourceModel& m, const std::vector<bool>& sync_ids, const KernelInfo& k, const Definition& def,
              HelperClones* helpers, const TextEdits* debug, unsigned first_slot = 0)
      : m_(m), toks_(m.lexed().tokens), sync_ids_(sync_ids), kernel_(k), def_(def), helpers_(helpers),
        debug_(debug), wd_slot_(first_slot), next_slot_(first_slot + 1) {}

  unsigned slots_end() const { return next_slot_; }
  // Edits inside expressions (a SIMD-group call's result): written nearer the token than
  // statement-level ones and other rewrites' (see the translator's merge).
  TextEdits& inner() { return inner_; }

  TextEdits run() {
    const Stmt body = parse_body(m_.lexed(), def_.open);
    for (std::size_t i = def_.open; i < def_.close; ++i) {
      if (is(i, "goto")) throw Unsupported{"goto", i};
      // simd_vote::all() asks which lanes are active: an exchange no statement shows.
      if (is(i, ".") && is(i + 1, "all") && is(i + 2, "("))
        throw Unsupported{"a vote's all() (a SIMD-group exchange inside a member function)", i};
    }
    has_return_ = contains(body, Stmt::return_, false);
    for (std::size_t i = def_.open; i < def_.close && !matrices_; ++i)
      matrices_ = toks_[i].kind == TokenKind::identifier &&
                  (is_per_lane_matrix_name(toks_[i].text) || kMatrixOperations.count(toks_[i].text));
    scopes_.emplace_back();
    bind_parameters();
    process_block(body.kids, def_.close, Context{});
    // The group's size and origin as constants: loop bounds the compiler knows no store changes.
    std::string prologue = " ::__metalgpu::cpu::wi_group& __wg = ::__metalgpu::cpu::wi_current();"
                           " const metal::uint3 __ws = __wg.size, __wo = __wg.origin; (void)__wo;";
    prologue += builtin_typedefs_;
    if (matrices_) prologue += " __wg.lanes_known = 1;";
    if (has_return_)
      prologue += " unsigned char* __mgw_wd = (unsigned char*)::__metalgpu::cpu::wi_slot(__wg, " +
                  std::to_string(wd_slot_) + ", 1, 1);" +
                  kThreadLoop + " __mgw_wd[__i] = 0; }";
    add_after(def_.open, prologue);
    if (next_slot_ > kMaxSlots) throw Unsupported{"more than 1024 per-thread variables and masks", def_.open};
    if (next_helper_slot_ > kHelperSlotBase && next_slot_ > kHelperSlotBase)
      throw Unsupported{"more per-thread variables than a kernel calling a helper may keep", def_.open};
    return std::move(edits_);
  }

 private:
  static constexpr unsigned kMaxSlots = 1024;  // MG_WI_SLOTS in mg_cpu_wil.h

  // ---- classification

  bool is(std::size_t i, const char* text) const {
    return i < toks_.size() && (toks_[i].kind == TokenKind::identifier || toks_[i].kind == TokenKind::punct) &&
           toks_[i].text == text;
  }
  bool sync(std::size_t b, std::size_t e) const {
    for (std::size_t i = b; i < e; ++i) {
      if (toks_[i].kind != TokenKind::identifier) continue;
      const int id = m_.structure().id(toks_[i].text);
      if (id >= 0 && std::size_t(id) < sync_ids_.size() && sync_ids_[std::size_t(id)]) return true;
    }
    return false;
  }
  // Debug mode: the barrier the rewrite removes is checked (every thread of the group, or
  // none, reaches it: the threads its masks leave out do not) and still orders what the race
  // detector sees.
  std::string barrier_check(const Stmt& s, const Context& c) const {
    const bool simd = is(s.begin, "simdgroup_barrier") || (is(s.begin, "metal") && is(s.begin + 2, "simdgroup_barrier"));
    const std::string l = live(c);
    return std::string(" { unsigned __mgw_reached = 0, __mgw_missing = 0;") + kThreadLoop + " if (" +
           (l.empty() ? "true" : l) + ") ++__mgw_reached; else if (!__mgw_missing) __mgw_missing = __i + 1; }" +
           " ::__metalgpu::dbg::wil_barrier(__wg, __mgw_reached, __mgw_missing, __FILE__, __LINE__, " +
           (simd ? "true" : "false") + "); }";
  }
  bool is_barrier(const Stmt& s) const {
    if (s.kind != Stmt::simple) return false;
    std::size_t i = s.begin;
    if (is(i, "metal") && is(i + 1, "::")) i += 2;
    if (!is(i, "threadgroup_barrier") && !is(i, "simdgroup_barrier")) return false;
    return is(i + 1, "(") && match_bracket(m_.lexed(), i + 1) + 2 == s.end;
  }
  // Atomics in threadgroup storage become metal::mg_group_atomic (plain operations: the
  // group's threads take turns on one OS thread).
  void group_atomics(const Stmt& s) {
    static const std::map<std::string, std::string, std::less<>> named = {
        {"atomic_int", "int"},   {"atomic_uint", "uint"},  {"atomic_float", "float"},
        {"atomic_bool", "bool"}, {"atomic_long", "long"}, {"atomic_ulong", "ulong"}};
    for (std::size_t i = s.begin + 1; i < s.end && toks_[i].kind == TokenKind::identifier; ++i) {
      const std::size_t start = i;
      if (is(i, "metal") && is(i + 1, "::")) i += 2;  // metal::atomic_uint
      if (auto it = named.find(toks_[i].text); it != named.end()) {
        erase(start, i);
        replace(i, "::metal::mg_group_atomic<" + it->second + ">");
      } else if (toks_[i].text == "atomic" && is(i + 1, "<")) {
        erase(start, i);
        replace(i, "::metal::mg_group_atomic");
      } else if (!kQualifiers.count(toks_[i].text)) {
        break;  // the type came and was not an atomic
      }
    }
  }
  bool is_storage(std::size_t tok) const {
    for (std::size_t t : m_.threadgroup_storage())
      if (t == tok) return true;
    return false;
  }
  bool is_group_level(const Stmt& s) const {
    if (s.kind != Stmt::simple) return false;
    const Token& t = toks_[s.begin];
    if (t.kind == TokenKind::identifier && kGroupLevelStarts.count(t.text)) return true;
    if (is_storage(s.begin)) return true;
    // A local type definition: `struct S { ... };`.
    if (is(s.begin, "struct") || is(s.begin, "class") || is(s.begin, "union") || is(s.begin, "enum"))
      return is(s.begin + 1, "{") || (toks_[s.begin + 1].kind == TokenKind::identifier && is(s.begin + 2, "{"));
    return false;
  }
  // Whether `s` holds a statement of `kind` reaching out of it (loops capture break and
  // continue, switches break). `through_loops`: look inside loops too (return).
  bool contains(const Stmt& s, Stmt::Kind kind, bool stop_at_loops = true) const {
    if (s.kind == kind) return true;
    const bool loop = s.kind == Stmt::for_ || s.kind == Stmt::range_for || s.kind == Stmt::while_ || s.kind == Stmt::do_;
    if (stop_at_loops && (loop || (kind == Stmt::break_ && s.kind == Stmt::switch_))) return false;
    for (const Stmt& k : s.kids)
      if (contains(k, kind, stop_at_loops)) return true;
    return false;
  }

  // ---- text

  std::string token_text(std::size_t i) const {
    switch (m_.action(i)) {
      case TokenAction::keep: return toks_[i].text;
      case TokenAction::replace: return m_.replacement(i);
      case TokenAction::drop: return std::string();
      default: throw Unsupported{"a token the rewrite cannot re-spell", i};
    }
  }
  static const std::string* edit_at(const std::unordered_map<std::size_t, std::string>& m, std::size_t i) {
    auto it = m.find(i);
    return it == m.end() ? nullptr : &it->second;
  }
  bool debug_edits(std::size_t i) const {
    return debug_ && (debug_->before.count(i) || debug_->replace.count(i) || debug_->after.count(i));
  }
  // Tokens [b, e) as code, with debug mode's checks where it has any.
  std::string render(std::size_t b, std::size_t e) const {
    std::string out;
    auto add = [&](const std::string& t) {
      if (t.empty()) return;
      if (!out.empty()) out += ' ';
      out += t;
    };
    for (std::size_t i = b; i < e; ++i) {
      if (!debug_) {
        add(token_text(i));
        continue;
      }
      if (const std::string* t = edit_at(debug_->before, i)) add(*t);
      const std::string* r = edit_at(debug_->replace, i);
      add(r ? *r : token_text(i));
      if (const std::string* t = edit_at(debug_->after, i)) add(*t);
    }
    return out;
  }
  void add_before(std::size_t i, const std::string& text) { edits_.before[i] += text; }
  void add_after(std::size_t i, const std::string& text) { edits_.after[i] += text; }
  void replace(std::size_t i, const std::string& text) {
    if (toks_[i].kind == TokenKind::pragma) throw Unsupported{"a pragma inside rewritten code", i};
    if (debug_edits(i)) throw Unsupported{"debug mode checks an access the rewrite would change", i};
    auto it = edits_.replace.find(i);
    if (it == edits_.replace.end()) edits_.replace[i] = text;
    else it->second += text;
  }
  void erase(std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) {
      if (toks_[i].kind == TokenKind::pragma) edits_.replace[i] = "";
      else replace(i, "");
    }
  }
  std::string live(const Context& c) const {
    std::string cond;
    for (const std::string& l : c.live) cond += (cond.empty() ? "" : " && ") + l;
    if (has_return_) cond += std::string(cond.empty() ? "" : " && ") + "!__mgw_wd[__i]";
    return cond;
  }
  // A loop over the group's threads, skipping those not live, with every per-thread name bound.
  std::string thread_loop(const Context& c) const {
    std::string s = kThreadLoop + lane_note() + debug_turn();
    if (const std::string l = live(c); !l.empty()) s += " if (!(" + l + ")) continue;";
    return s + binds();
  }
  // In a body with simdgroup matrices, each thread loop says which thread runs (a matrix's
  // diagonal constructor asks for its lane).
  std::string lane_note() const { return matrices_ ? " __wg.simd_thread = __i;" : ""; }
  // Debug mode: which thread runs (fault reports, the race detector).
  std::string debug_turn() const { return debug_ ? " ::__metalgpu::dbg::wil_thread(__wg, __i);" : ""; }
  std::string binds() const {
    std::string s = builtin_binds_;
    // The innermost declaration of each name (an inner scope's shadows an outer one's).
    std::set<std::string> bound;
    for (auto sc = scopes_.rbegin(); sc != scopes_.rend(); ++sc)
      for (auto p = sc->rbegin(); p != sc->rend(); ++p) {
        if (!bound.insert(p->name).second || p->index == kShadow) continue;
        const std::string n = std::to_string(p->index);
        s += " __mgw_t" + n + "& " + p->name + " = __mgw_p" + n + "[__i];";
      }
    return s;
  }
  std::string slot(const std::string& type, const std::string& var) {
    const std::string k = std::to_string(next_slot_++);
    return " " + type + "* " + var + " = (" + type + "*)::__metalgpu::cpu::wi_slot(__wg, " + k + ", sizeof(" + type +
           "), alignof(" + type + "));";
  }
  std::string mask(const std::string& var) { return slot("unsigned char", var); }

  // ---- built-ins

  // The kernel's parameters as each thread sees them. Per-thread built-ins are re-bound in
  // every thread loop; a parameter the body changes becomes a per-thread copy (ggml's argsort
  // does `dst += offset`: one shared `dst` would move once per thread).
  void bind_parameters() {
    unsigned n = 0;
    for (const KernelParam& p : kernel_.params) {
      const auto builtin = kPerThreadBuiltins.find(p.builtin);
      const bool per_thread = p.role == ParamRole::builtin && builtin != kPerThreadBuiltins.end();
      const bool changed = !p.reference && mutated_in(p.name, def_.open, def_.close, p.pointer);
      if (per_thread || changed) varying_.insert(p.name);
      if (!per_thread && !changed) continue;
      const std::string t = "__mgw_b" + std::to_string(n++);
      builtin_typedefs_ += " typedef ::__metalgpu::strip_t<decltype(" + p.name + ")> " + t + ";";
      const std::string value =
          per_thread ? "::__metalgpu::builtin_as<" + t + ">(" + builtin->second + ")" : p.name;
      if (!changed) {
        builtin_binds_ += " " + t + " " + p.name + " = " + value + ";";
        continue;
      }
      const unsigned k = next_private_++;
      const std::string pt = "__mgw_t" + std::to_string(k), pp = "__mgw_p" + std::to_string(k);
      builtin_typedefs_ += " typedef " + t + " " + pt + ";" + slot(pt, pp) + kThreadLoop + " " + pp +
                           "[__i] = " + value + "; }";
      scopes_.front().push_back({p.name, k});
    }
  }

  // ---- declarations

  bool parse_declaration(std::size_t b, std::size_t e, Declaration& d) const {
    std::size_t k = b;
    bool type_word = false;
    while (k < e && toks_[k].kind == TokenKind::identifier && kQualifiers.count(toks_[k].text)) {
      type_word |= kTypeWords.count(toks_[k].text) != 0;
      ++k;
    }
    d.spec_begin = b;
    auto declarator_follows = [&](std::size_t i) {
      return is(i, "=") || is(i, ";") || is(i, ",") || is(i, "[") || is(i, "{") || is(i, "(");
    };
    if (k < e && toks_[k].kind == TokenKind::identifier && !kNotTypes.count(toks_[k].text) &&
        !(type_word && declarator_follows(k + 1))) {
      d.is_auto = toks_[k].text == "auto";
      ++k;
      for (;;) {
        if (is(k, "::") && k + 1 < e && toks_[k + 1].kind == TokenKind::identifier) {
          k += 2;
        } else if (is(k, "<")) {
          int depth = 0;
          for (; k < e; ++k) {
            if (is(k, "(") || is(k, "[")) k = match_bracket(m_.lexed(), k);
            else if (is(k, "<")) ++depth;
            else if (is(k, ">") && --depth == 0) break;
            else if (is(k, ">>") && (depth -= 2) <= 0) break;
            else if (is(k, ";") || is(k, "{")) return false;
          }
          if (k >= e || depth < 0) return false;
          ++k;
        } else {
          break;
        }
      }
    } else if (!type_word) {
      return false;
    }
    while (k < e && toks_[k].kind == TokenKind::identifier && kQualifiers.count(toks_[k].text)) ++k;
    d.spec_end = k;
    for (;;) {
      Declarator dc;
      dc.ptr_begin = k;
      while (k < e && (is(k, "*") || is(k, "&") || is(k, "&&") ||
                       (toks_[k].kind == TokenKind::identifier && kQualifiers.count(toks_[k].text))))
        ++k;
      if (k >= e || toks_[k].kind != TokenKind::identifier || kNotTypes.count(toks_[k].text)) return false;
      dc.name = k++;
      while (is(k, "[")) k = match_bracket(m_.lexed(), k) + 1;
      dc.suffix_end = k;
      if (is(k, "=")) {
        dc.has_init = true;
        while (k < e && !is(k, ",") && !is(k, ";")) {
          if (is(k, "(") || is(k, "[") || is(k, "{")) k = match_bracket(m_.lexed(), k);
          else if (is(k, "<")) {
            // `make_filled_simdgroup_matrix<float, 8>(0)`: a template argument list, if a
            // matching `>` comes before the `;` and a call or `::` follows it. Otherwise `a < b,
            // c > d` cannot be told from one here: give up.
            std::size_t gt = k + 1;
            for (int depth = 1; gt < e && !is(gt, ";") && depth > 0; ++gt) {
              if (is(gt, "(") || is(gt, "[") || is(gt, "{")) gt = match_bracket(m_.lexed(), gt);
              else if (is(gt, "<")) ++depth;
              else if (is(gt, ">") && --depth == 0) break;
            }
            if (gt < e && is(gt, ">") && (is(gt + 1, "(") || is(gt + 1, "::") || is(gt + 1, "{"))) {
              k = gt;
            } else {
              for (std::size_t q = k + 1; q < e && !is(q, ";"); ++q)
                if (is(q, ",")) return false;
            }
          }
          ++k;
        }
      } else if (is(k, "{") || is(k, "(")) {
        dc.has_init = true;
        k = match_bracket(m_.lexed(), k) + 1;
      }
      if (k >= e || (!is(k, ",") && !is(k, ";"))) return false;
      dc.end = k;
      d.declarators.push_back(dc);
      if (is(k, ";")) return k + 1 == e;
      ++k;
    }
  }

  bool used_in(const std::string& name, std::size_t b, std::size_t e) const {
    for (std::size_t i = b; i < e; ++i)
      if (toks_[i].kind == TokenKind::identifier && toks_[i].text == name) return true;
    return false;
  }

  // Makes a declaration's variables per thread: storage (returned, for group level before the
  // thread loop) and, in place, a reference to this thread's element initialised as declared.
  std::string privatize(const Declaration& d, std::vector<Private>& out) {
    std::string spec = render(d.spec_begin, d.spec_end);
    if (d.is_auto) {
      // `auto p = base + 8 * sg;` (ggml): the type the initialiser has, in place of `auto`.
      const Declarator& only = d.declarators.front();
      std::size_t eq = only.suffix_end;
      if (d.declarators.size() != 1 || !is(eq, "=") || only.ptr_begin != only.name)
        throw Unsupported{"an auto variable live across a barrier", d.spec_begin};
      spec.clear();
      for (std::size_t k = d.spec_begin; k < d.spec_end; ++k)
        spec += " " + (is(k, "auto") ? deduced_type(eq + 1, only.end) : render(k, k + 1));
    }
    std::string storage;
    erase(d.spec_begin, d.spec_end);
    for (const Declarator& dc : d.declarators) {
      for (std::size_t i = dc.ptr_begin; i < dc.name; ++i)
        if (is(i, "&") || is(i, "&&")) throw Unsupported{"a reference live across a barrier", i};
      const unsigned n = next_private_++;
      const std::string t = "__mgw_t" + std::to_string(n), p = "__mgw_p" + std::to_string(n);
      const std::string name = toks_[dc.name].text;
      storage += " typedef " + spec + " " + render(dc.ptr_begin, dc.name) + " " + t + " " +
                 render(dc.name + 1, dc.suffix_end) + ";" + slot(t, p);
      erase(dc.ptr_begin, dc.name);
      erase(dc.name + 1, dc.suffix_end);
      // Initialised as declared (any initialiser form, or none: a class's constructor still
      // runs), then copied into this thread's element.
      const std::string bind = " " + t + "& " + name + " = " + p + "[__i];";
      if (!dc.has_init) {
        replace(dc.name, bind + " ::__metalgpu::cpu::wi_default_construct(" + name);
        replace(dc.end, ");");
      } else {
        replace(dc.name, bind + " { " + t + " __mgw_v");
        // What the translator puts at the declaration's end stays after it (a GNU range
        // designator's fill loop: `; for (...) name[i] = v;`), once the element is bound.
        std::string tail;
        if (m_.action(dc.end) == TokenAction::replace) {
          tail = m_.replacement(dc.end);
          if (tail.rfind(";", 0) == 0) tail.erase(0, 1);
        }
        replace(dc.end, "; __builtin_memcpy((void*)&" + name + ", (const void*)&__mgw_v, sizeof(" + name + ")); }" + tail);
      }
      out.push_back({name, n});
      varying_.insert(name);
    }
    return storage;
  }

  // ---- statements

  enum class Role { region, barrier, group_level, hoisted, block, if_, loop, collective, matrix, helper, switch_ };

  // The statements of a block, in order: runs of per-thread statements become thread loops,
  // the rest run at group level.
  void process_block(const std::vector<Stmt>& kids, std::size_t scope_end, const Context& c) {
    std::size_t run = kids.size();  // first statement of the pending run, if any
    auto flush = [&](std::size_t end) {
      if (run < end) region(kids, run, end, scope_end, c);
      run = kids.size();
    };
    for (std::size_t i = 0; i < kids.size(); ++i) {
      const Stmt& s = kids[i];
      if (s.kind == Stmt::pragma) {
        // A pragma belongs to the statement after it: kept for code that runs per thread,
        // dropped before group-level control flow.
        std::size_t j = i + 1;
        while (j < kids.size() && kids[j].kind == Stmt::pragma) ++j;
        if (j < kids.size() && role_of(kids[j], scope_end, c) == Role::region) {
          if (run == kids.size()) run = i;
        } else {
          flush(i);  // a run ends before the pragma it does not include
          erase(s.begin, s.end);
        }
        continue;
      }
      if (c.in_switch && s.kind == Stmt::break_) {  // the switch's own, at group level
        flush(i);
        continue;
      }
      const Role role = role_of(s, scope_end, c);
      if (role == Role::region) {
        if (run == kids.size()) run = i;
        note_varying(s);
        continue;
      }
      if (role == Role::collective) {
        // Each thread evaluates the call first (its inputs recorded); then a run of statements
        // starts with this one, where the call is replaced by the lane's result, computed once
        // per SIMD group by the function the call recorded.
        flush(i);
        record_call(s.begin, call_begin(s), call_end(s), c);
        run = i;
        note_varying(s);
        continue;
      }
      flush(i);
      switch (role) {
        case Role::barrier:
          erase(s.begin, s.end);
          if (debug_) add_before(s.begin, barrier_check(s, c));
          break;
        case Role::group_level:  // types, constants, threadgroup storage: nothing they run synchronises
          note_group_names(s);
          // Threadgroup storage: the body runs once per group, so the group's variables are
          // the body's own (on the stack) rather than thread_local statics, whose every access
          // from a loaded module goes through __tls_get_addr.
          if (is_storage(s.begin)) {
            replace(s.begin, " ");
            group_atomics(s);
          }
          break;
        case Role::hoisted:  // stays where it is, between the thread loops
          note_group_names(s);
          break;
        case Role::block:
          scopes_.emplace_back();
          process_block(s.kids, s.end - 1, c);
          scopes_.pop_back();
          break;
        case Role::if_: group_if(s, c); break;
        case Role::switch_: group_switch(s, c); break;
        case Role::loop: group_loop(s, c); break;
        case Role::matrix: per_simd_group(s, c); break;
        case Role::helper: call_helper_clone(s); break;
        case Role::region:
        case Role::collective: break;
      }
    }
    flush(kids.size());
  }

  Role role_of(const Stmt& s, std::size_t scope_end, const Context& c) const {
    if (is_barrier(s)) return Role::barrier;
    if (is_group_level(s)) return Role::group_level;
    if (!sync(s.begin, s.end)) return c.live.empty() && hoistable(s, scope_end) ? Role::hoisted : Role::region;
    switch (s.kind) {
      case Stmt::compound: return Role::block;
      case Stmt::if_: return Role::if_;
      case Stmt::for_:
      case Stmt::while_:
      case Stmt::do_: return Role::loop;
      case Stmt::simple:
        if (matrix_operation(s)) return Role::matrix;
        if (helper_call(s, c)) return Role::helper;
        if (call_begin(s) < s.end) return Role::collective;
        throw Unsupported{"`" + first_sync(s) + "` in a statement that is neither a barrier nor one call to a "
                          "SIMD-group function (a helper that synchronises, simdgroup_matrix, several calls)",
                          s.begin};
      case Stmt::switch_:
        if (!sync(s.open, s.close) && uniform(s.open, s.close)) return Role::switch_;
        throw Unsupported{"a barrier or SIMD-group call inside a switch whose value differs between threads",
                          s.begin};
      default: throw Unsupported{"a barrier or SIMD-group call inside a range-for", s.begin};
    }
  }

  // ---- SIMD-group functions

  std::string first_sync(const Stmt& s) const {
    for (std::size_t i = s.begin; i < s.end; ++i)
      if (toks_[i].kind == TokenKind::identifier && sync(i, i + 1)) return toks_[i].text;
    return "?";
  }

  // The one call to a SIMD-group (or quad-group) function of Metal's in [b, e) that
  // synchronises through nothing else: its first token (a `metal::` qualifier included), or e
  // if the range is not like that.
  std::size_t call_begin(std::size_t b, std::size_t e) const {
    std::size_t found = e;
    for (std::size_t i = b; i < e; ++i) {
      if (toks_[i].kind != TokenKind::identifier || !sync(i, i + 1)) continue;
      const std::string& name = toks_[i].text;
      const bool simd = (name.rfind("simd_", 0) == 0 || name.rfind("quad_", 0) == 0) &&
                        is_cooperative_function(name) && is(i + 1, "(");
      if (!simd || found != e) return e;  // a helper that synchronises, or two calls
      found = i;
      if (i >= 2 && is(i - 1, "::") && is(i - 2, "metal")) found = i - 2;
    }
    return found;
  }
  std::size_t call_end_at(std::size_t begin) const {
    std::size_t i = begin;
    while (!is(i, "(")) ++i;
    return match_bracket(m_.lexed(), i) + 1;
  }
  std::size_t call_begin(const Stmt& s) const { return call_begin(s.begin, s.end); }
  std::size_t call_end(const Stmt& s) const { return call_end_at(call_begin(s)); }
  // Before token `at`: each live thread evaluates the call [b, e) alone, its inputs recorded;
  // then the call's tokens stay, unevaluated, inside decltype (with whatever else rewrites
  // them), and give each thread its lane's result, computed once per SIMD group.
  void record_call(std::size_t at, std::size_t b, std::size_t e, const Context& c) {
    if (debug_ && debug_->before.count(b))
      throw Unsupported{"debug mode checks an access through a SIMD-group call's result", b};
    add_before(at, " ::__metalgpu::cpu::wi_simd_record(__wg);" + thread_loop(c) + " __wg.simd_thread = __i; (void)(" +
                       render(b, e) + "); } ::__metalgpu::cpu::wi_simd_recorded(__wg);");
    inner_.before[b] += " ::__metalgpu::cpu::wi_simd_result<decltype(";
    inner_.after[e - 1] += ")>(__wg, __i)";
  }

  // ---- simdgroup matrices

  // The first token of a statement that is one call to a simdgroup-matrix operation (a
  // `metal::` qualifier skipped), or s.end.
  std::size_t matrix_call(const Stmt& s) const {
    std::size_t i = s.begin;
    if (is(i, "metal") && is(i + 1, "::")) i += 2;
    if (toks_[i].kind != TokenKind::identifier || !kMatrixOperations.count(toks_[i].text) || !is(i + 1, "("))
      return s.end;
    return match_bracket(m_.lexed(), i + 1) + 2 == s.end ? i : s.end;
  }
  bool matrix_operation(const Stmt& s) const {
    const std::size_t i = matrix_call(s);
    return i < s.end && !sync(i + 1, s.end);
  }
  // The call's arguments, [begin, end) each.
  std::vector<std::pair<std::size_t, std::size_t>> arguments(std::size_t open) const {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    const std::size_t close = match_bracket(m_.lexed(), open);
    std::size_t b = open + 1;
    for (std::size_t k = open + 1; k < close; ++k) {
      if (is(k, "(") || is(k, "[") || is(k, "{")) k = match_bracket(m_.lexed(), k);
      else if (is(k, ",")) out.emplace_back(b, k), b = k + 1;
    }
    if (close > open + 1) out.emplace_back(b, close);
    return out;
  }
  const Private* bound(const std::string& name) const {
    for (auto sc = scopes_.rbegin(); sc != scopes_.rend(); ++sc)
      for (auto p = sc->rbegin(); p != sc->rend(); ++p)
        if (p->name == name) return p->index == kShadow ? nullptr : &*p;
    return nullptr;
  }
  // A simdgroup-matrix operation, once per SIMD group: its matrices must be the body's
  // per-thread variables (or elements of them), which the statement sees in every lane at once;
  // everything else it reads is its first thread's (Metal requires them the same in the group).
  void per_simd_group(const Stmt& s, const Context& c) {
    const std::size_t call = matrix_call(s);
    const auto args = arguments(call + 1);
    for (unsigned a : kMatrixOperations.at(toks_[call].text)) {
      if (a >= args.size()) continue;  // Metal's compiler reports the missing argument
      auto [b, e] = args[a];
      std::size_t k = b + 1;
      while (k < e && is(k, "[")) k = match_bracket(m_.lexed(), k) + 1;
      if (toks_[b].kind != TokenKind::identifier || k != e || !bound(toks_[b].text))
        throw Unsupported{"a simdgroup matrix (" + toks_[b].text + ") in " + toks_[call].text +
                              " that is not a variable of the kernel (or an element of one)",
                          b};
    }
    std::string head = kSimdGroupLoop;
    if (const std::string l = live(c); !l.empty()) head += " if (!(" + l + ")) continue;";
    if (debug_) head += debug_turn() + " ::__metalgpu::dbg::simd_synced(__s);";  // an exchange in SIMD group __s
    head += builtin_binds_;
    std::set<std::string> done;
    for (std::size_t i = s.begin; i < s.end; ++i) {
      if (toks_[i].kind != TokenKind::identifier || is(i - 1, ".") || is(i - 1, "->")) continue;
      const Private* p = bound(toks_[i].text);
      if (!p || !done.insert(p->name).second) continue;
      const std::string n = std::to_string(p->index);
      head += " decltype(auto) " + p->name + " = ::__metalgpu::cpu::wi_bind(__mgw_p" + n + ", __i, __sw); (void)" +
              p->name + ";";
    }
    add_before(s.begin, head);
    add_after(s.end - 1, " }");
  }

  // ---- helpers that synchronise

  // The one definition of a free function named `name`, or -1.
  int only_definition(const std::string& name) const {
    const int id = m_.structure().id(name);
    if (id < 0) return -1;
    const auto& defs = m_.structure().named(id);
    if (defs.size() != 1) return -1;
    const Definition& d = m_.structure().definitions()[std::size_t(defs[0])];
    return d.kind == Definition::function && d.owner < 0 ? defs[0] : -1;
  }
  // `helper(args);` or `helper<targs>(args);`, the whole statement, run by every thread of the
  // group (no mask): a call of a free function that synchronises.
  bool helper_call(const Stmt& s, const Context& c) const {
    if (!helpers_ || !c.live.empty() || toks_[s.begin].kind != TokenKind::identifier) return false;
    const std::string& name = toks_[s.begin].text;
    if (is_cooperative_function(name) || !sync(s.begin, s.begin + 1) || only_definition(name) < 0) return false;
    const std::size_t open = call_open(s.begin);
    return open < s.end && match_bracket(m_.lexed(), open) + 2 == s.end;
  }
  // The `(` of a call at `name` (past template arguments), or toks_.size().
  std::size_t call_open(std::size_t name) const {
    std::size_t k = name + 1;
    if (is(k, "<")) {
      int depth = 0;
      for (; k < toks_.size(); ++k) {
        if (is(k, "(") || is(k, "[")) k = match_bracket(m_.lexed(), k);
        else if (is(k, "<")) ++depth;
        else if (is(k, ">") && --depth == 0) break;
        else if (is(k, ">>") && (depth -= 2) <= 0) break;
        else if (is(k, ";") || is(k, "{")) return toks_.size();
      }
      ++k;
    }
    return is(k, "(") ? k : toks_.size();
  }
  // A function's parameters as the rewrite needs them: name, pointer, reference.
  // The `(` of a function definition's parameter list, or d.open if it cannot be found.
  std::size_t parameter_list(const Definition& d) const {
    std::size_t open = d.head;
    while (open < d.open && !(toks_[open].kind == TokenKind::identifier && toks_[open].text == d.name &&
                              is(open + 1, "(")))
      ++open;
    return open < d.open ? open + 1 : d.open;
  }
  std::vector<KernelParam> parameters_of(const Definition& d) const {
    const std::size_t list = parameter_list(d);
    if (list >= d.open) throw Unsupported{"a helper whose parameter list the rewrite cannot find", d.head};
    const std::size_t open = list - 1;
    std::vector<KernelParam> out;
    for (auto [b, e] : arguments(open + 1)) {
      KernelParam p;
      for (std::size_t k = b; k < e && !is(k, "="); ++k) {
        if (is(k, "[") && is(k + 1, "[")) {  // an attribute: [[thread_index_in_simdgroup]]
          k = match_bracket(m_.lexed(), k);
          continue;
        }
        if (toks_[k].kind == TokenKind::identifier) p.name = toks_[k].text;
        p.pointer |= is(k, "*");
        p.reference |= is(k, "&") || is(k, "&&");
      }
      if (p.name.empty()) throw Unsupported{"a helper parameter without a name", b};
      out.push_back(p);
    }
    return out;
  }
  // The helper's definition rewritten into work-item loops, under a new name.
  std::string render_clone(const Definition& d, const TextEdits& e, const TextEdits& inner, const std::string& name) const {
    std::string out;
    bool named = false;
    auto add = [&](const std::string& t) {
      if (t.empty()) return;
      if (!out.empty()) out += ' ';
      out += t;
    };
    // Each token as the translator writes one (its merge): statement-level edits outermost.
    for (std::size_t i = d.head; i <= d.close; ++i) {
      if (const std::string* t = edit_at(e.before, i)) add(*t);
      if (helpers_->prior_before)
        if (const std::string* t = edit_at(*helpers_->prior_before, i)) add(*t);
      if (debug_)
        if (const std::string* t = edit_at(debug_->before, i)) add(*t);
      if (const std::string* t = edit_at(inner.before, i)) add(*t);
      if (!named && i < d.open && toks_[i].kind == TokenKind::identifier && toks_[i].text == d.name && is(i + 1, "(")) {
        add(name);
        named = true;
      } else if (const std::string* r = edit_at(e.replace, i)) {
        add(*r);
      } else if (toks_[i].kind == TokenKind::pragma) {
        out += "\n#" + toks_[i].text + "\n";
      } else if (const std::string* r = debug_ ? edit_at(debug_->replace, i) : nullptr) {
        add(*r);
      } else {
        add(token_text(i));
      }
      if (const std::string* t = edit_at(inner.after, i)) add(*t);
      if (debug_)
        if (const std::string* t = edit_at(debug_->after, i)) add(*t);
      if (const std::string* t = edit_at(e.after, i)) add(*t);
    }
    return out;
  }
  // The kernel calls the helper's clone once per group: the arguments are the group's (the
  // same in every thread, or a per-thread built-in the clone binds per thread itself).
  void call_helper_clone(const Stmt& s) {
    const std::string& name = toks_[s.begin].text;
    const Definition& d = m_.structure().definitions()[std::size_t(only_definition(name))];
    if (d.close >= def_.head) throw Unsupported{"a helper defined after the kernel that calls it", s.begin};
    std::size_t ret = d.head;
    while (ret < d.open && !is(ret, "void")) ++ret;
    if (ret >= d.open) throw Unsupported{"a helper that synchronises and returns a value", s.begin};
    const std::size_t open = call_open(s.begin);
    const auto args = arguments(open);
    KernelInfo info;
    info.params = parameters_of(d);
    if (info.params.size() != args.size()) throw Unsupported{"a helper called with default arguments", s.begin};
    std::string key = std::to_string(only_definition(name)) + "@" + std::to_string(next_helper_slot_);
    for (std::size_t j = 0; j < args.size(); ++j) {
      auto [b, e] = args[j];
      const KernelParam* builtin = nullptr;
      if (e == b + 1 && toks_[b].kind == TokenKind::identifier)
        for (const KernelParam& p : kernel_.params)
          if (p.name == toks_[b].text && p.role == ParamRole::builtin && kPerThreadBuiltins.count(p.builtin))
            builtin = &p;
      if (builtin) {
        info.params[j].role = ParamRole::builtin;
        info.params[j].builtin = builtin->builtin;
        key += "," + std::to_string(j) + "=" + builtin->builtin;
      } else if (!uniform(b, e)) {
        throw Unsupported{"a helper that synchronises, given a value that differs between threads", b};
      }
    }
    auto found = helpers_->names.find(key);
    if (found == helpers_->names.end()) {
      Transformer clone(m_, sync_ids_, info, d, nullptr, debug_, next_helper_slot_);
      TextEdits e;
      try {
        e = clone.run();
      } catch (const Unsupported& u) {
        throw Unsupported{"in helper `" + name + "`: " + u.why, u.token};
      }
      const std::string clone_name = name + "__mgw_wil" + std::to_string(helpers_->count++);
      helpers_->text_after[d.close] += "\n" + render_clone(d, e, clone.inner(), clone_name) + "\n";
      found = helpers_->names.emplace(key, clone_name).first;
      helper_slots_[key] = clone.slots_end();
    }
    next_helper_slot_ = helper_slots_[key];
    if (next_helper_slot_ > kMaxSlots) throw Unsupported{"more than 1024 per-thread variables and masks", s.begin};
    replace(s.begin, found->second);
  }

  // ---- names every thread loop sees

  // Names a statement at group level declares (hoisted values, constants, threadgroup storage).
  void note_group_names(const Stmt& s) {
    Declaration d;
    std::size_t b = s.begin;
    while (b < s.end && (is(b, "constexpr") || is(b, "static"))) ++b;
    if (s.kind == Stmt::simple && parse_declaration(b, s.end, d))
      for (const Declarator& dc : d.declarators) shadow(toks_[dc.name].text);
  }
  void shadow(const std::string& name) {
    group_names_.insert(name);
    scopes_.back().push_back({name, kShadow});
  }
  // The type `auto name = init` deduces, spelled so it is valid at group level (before the
  // thread loop that declares it): the initialiser inside decltype, its per-thread variables as
  // declval of their storage's type. Throws if the initialiser names anything else that a
  // thread loop declares (or anything this cannot tell).
  std::string deduced_type(std::size_t b, std::size_t e) {
    std::string out = "decltype(::__metalgpu::cpu::wi_decay(";
    for (std::size_t i = b; i < e; ++i) {
      std::string t = render(i, i + 1);
      if (toks_[i].kind == TokenKind::identifier && !is(i - 1, ".") && !is(i - 1, "->") && !is(i - 1, "::") &&
          !is(i + 1, "(") && !is(i + 1, "::") && !is(i + 1, "<")) {
        const std::string& name = toks_[i].text;
        bool param = false;
        for (const KernelParam& p : kernel_.params) param |= p.name == name;
        if (const Private* p = bound(name)) {
          t = "::metal::mg_declval<__mgw_t" + std::to_string(p->index) + "&>()";
        } else if (!param && !group_names_.count(name) && name != "true" && name != "false" &&
                   name != "nullptr" && name != "sizeof") {
          throw Unsupported{"an auto variable live across a barrier, initialised from `" + name + "`", i};
        }
      }
      out += " " + t;
    }
    return out + "))";
  }

  // ---- uniformity: what is the same in every thread of the group

  // The names a block-level statement run per thread declares differ between threads.
  void note_varying(const Stmt& s) {
    Declaration d;
    if (s.kind == Stmt::simple && parse_declaration(s.begin, s.end, d))
      for (const Declarator& dc : d.declarators) varying_.insert(toks_[dc.name].text);
  }
  // No identifier in [b, e) names something that differs between threads (members after `.`
  // and `->` are not names here).
  bool uniform(std::size_t b, std::size_t e) const {
    for (std::size_t i = b; i < e; ++i)
      if (toks_[i].kind == TokenKind::identifier && !is(i - 1, ".") && !is(i - 1, "->") &&
          varying_.count(toks_[i].text))
        return false;
    return true;
  }
  // Whether [b, e) may change variable `name`: assigns or steps it, takes its address, or -
  // unless it is a pointer, whose subscripts and members are what it points to - assigns to
  // an element or member of it, or calls a member function on it.
  bool mutated_in(const std::string& name, std::size_t b, std::size_t e, bool pointer) const {
    auto assigns = [&](std::size_t k) {
      const std::string& t = toks_[k].text;
      return (toks_[k].kind == TokenKind::punct && !t.empty() && t.back() == '=' && t != "==" && t != "<=" &&
              t != ">=" && t != "!=") ||
             t == "++" || t == "--";
    };
    for (std::size_t i = b; i < e; ++i) {
      if (toks_[i].kind != TokenKind::identifier || toks_[i].text != name) continue;
      if (is(i - 1, ".") || is(i - 1, "->")) continue;  // a member of something else
      if (is(i - 1, "&") || is(i - 1, "++") || is(i - 1, "--")) return true;
      if ((is(i - 1, "(") || is(i - 1, ",")) && (is(i + 1, ",") || is(i + 1, ")")) && by_reference(i, b)) return true;
      std::size_t k = i + 1;
      while (!pointer) {
        if (is(k, "[")) {
          k = match_bracket(m_.lexed(), k) + 1;
        } else if ((is(k, ".") || is(k, "->")) && toks_[k + 1].kind == TokenKind::identifier) {
          if (is(k + 2, "(")) return true;  // a member function may change it
          k += 2;
        } else {
          break;
        }
      }
      if (assigns(k)) return true;
    }
    return false;
  }
  // Whether the call argument at token `arg` (a name alone) may be bound to a reference the
  // callee changes it through: a parameter `T& x` or `const T*& p` of a function of the program
  // (MLX's adjust_matrix_offsets moves the kernel's pointers so), or an out-parameter of Metal's.
  bool by_reference(std::size_t arg, std::size_t floor) const {
    static const std::set<std::string, std::less<>> metal_out = {"sincos", "modf", "frexp", "remquo"};
    std::size_t open = arg - 1;
    for (int depth = 0; open > floor; --open) {
      if (is(open, ")") || is(open, "]") || is(open, "}")) ++depth;
      else if (is(open, "(") || is(open, "[") || is(open, "{")) {
        if (depth == 0) break;
        --depth;
      }
    }
    if (!is(open, "(") || open == 0) return false;
    std::size_t callee = open - 1;
    if (is(callee, ">")) {  // f<...>(x)
      for (int depth = 0; callee > floor; --callee) {
        if (is(callee, ">")) ++depth;
        else if (is(callee, ">>")) depth += 2;
        else if (is(callee, "<") && --depth == 0) break;
      }
      --callee;
    }
    if (toks_[callee].kind != TokenKind::identifier) return false;
    std::size_t j = 0;
    for (const auto& [b, e] : arguments(open)) {
      if (b <= arg && arg < e) break;
      ++j;
    }
    if (metal_out.count(toks_[callee].text)) return j > 0;
    const int id = m_.structure().id(toks_[callee].text);
    if (id < 0) return false;
    for (int d : m_.structure().named(id)) {
      const Definition& def = m_.structure().definitions()[std::size_t(d)];
      if (def.kind != Definition::function) continue;
      const std::size_t params = parameter_list(def);
      if (params >= def.open) return true;  // cannot tell: the safe side
      const auto list = arguments(params);
      if (j >= list.size()) continue;
      bool is_const = false;
      for (std::size_t k = list[j].first; k < list[j].second && !is(k, "="); ++k) {
        if (is(k, "const")) is_const = true;
        if (is(k, "*")) is_const = false;  // what a `const T*` points to is const, not the pointer
        if ((is(k, "&") || is(k, "&&")) && !is_const) return true;
      }
    }
    return false;
  }
  static bool is_pointer(const std::vector<Token>& toks, std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i)
      if (toks[i].kind == TokenKind::punct && toks[i].text == "*") return true;
    return false;
  }
  // Scalar and vector types: a variable of one changes only by assignment (not through
  // member functions or being passed by reference to something that changes it).
  bool plain_value_type(std::size_t b, std::size_t e) const {
    static const std::set<std::string, std::less<>> scalars = {
        "bool", "char", "uchar", "short", "ushort", "int", "uint", "long", "ulong", "half", "float", "bfloat",
        "size_t", "ptrdiff_t", "int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t", "uint32_t", "int64_t",
        "uint64_t", "unsigned", "signed"};
    bool any = false;
    for (std::size_t i = b; i < e; ++i) {
      if (toks_[i].kind != TokenKind::identifier) return false;
      std::string t = toks_[i].text;
      if (t == "const" || t == "constexpr" || t == "thread" || t == "metal") continue;
      if (!t.empty() && (t.back() == '2' || t.back() == '3' || t.back() == '4')) t.pop_back();
      if (!scalars.count(t)) return false;
      any = true;
    }
    return any;
  }
  // A declaration whose values are the same in every thread and never change afterwards runs
  // once, at group level: `const uint n_iter = size / stride;`, `device const float* row = src
  // + tgpig.x * nb01;`. The thread loops around it see it as an ordinary variable.
  bool hoistable(const Stmt& s, std::size_t scope_end) const {
    Declaration d;
    if (s.kind != Stmt::simple || !parse_declaration(s.begin, s.end, d)) return false;
    if (!uniform(d.spec_begin, d.spec_end)) return false;
    bool is_const = false;
    for (std::size_t i = d.spec_begin; i < d.spec_end; ++i) is_const |= is(i, "const") || is(i, "constexpr");
    for (const Declarator& dc : d.declarators) {
      if (!dc.has_init || !uniform(dc.ptr_begin, dc.end)) return false;
      const bool pointer = is_pointer(toks_, dc.ptr_begin, dc.name), array = dc.suffix_end > dc.name + 1;
      // Objects of other types may change through their member functions or a reference.
      if (!pointer && !(array ? is_const : is_const || plain_value_type(d.spec_begin, d.spec_end))) return false;
      if (mutated_in(toks_[dc.name].text, s.end, scope_end, pointer)) return false;
    }
    return true;
  }
  // A loop the whole group runs the same way: its header is uniform, it declares what it
  // steps, and nothing in its body leaves it early (a thread's break would be its own).
  bool uniform_loop(const Stmt& s) const {
    const Stmt& body = s.kids[0];
    if (contains_jump(body, Stmt::break_) || contains_jump(body, Stmt::continue_)) return false;
    if (s.kind != Stmt::for_) return uniform(s.open, s.close);
    if (!uniform(s.open + 1, s.close)) return false;
    Declaration d;
    if (s.semi1 > s.open + 1 && parse_declaration(s.open + 1, s.semi1 + 1, d))
      for (const Declarator& dc : d.declarators)
        if (mutated_in(toks_[dc.name].text, body.begin, body.end, is_pointer(toks_, dc.ptr_begin, dc.name)) ||
            !plain_value_type(d.spec_begin, d.spec_end))
          return false;
    return true;
  }
  // if / for / while / do kept as they are at group level, their statements processed inside.
  void keep_at_group_level(const Stmt& s, const Context& c) {
    for (const Stmt& part : s.kids) {
      if (part.kind != Stmt::compound) {
        add_before(part.begin, " {");
        add_after(part.end - 1, " }");
      }
      scopes_.emplace_back();
      Declaration d;  // a uniform for's counter, seen by its body
      if (s.kind == Stmt::for_ && s.semi1 > s.open + 1 && parse_declaration(s.open + 1, s.semi1 + 1, d))
        for (const Declarator& dc : d.declarators) shadow(toks_[dc.name].text);
      process_block(part.kind == Stmt::compound ? part.kids : std::vector<Stmt>{part},
                    part.kind == Stmt::compound ? part.end - 1 : part.end, c);
      scopes_.pop_back();
    }
  }

  bool is_plain(const Stmt& s) const {
    return s.kind != Stmt::pragma && !is_barrier(s) && !is_group_level(s) && !sync(s.begin, s.end);
  }
  std::size_t run_end(const std::vector<Stmt>& kids, std::size_t i) const {
    while (i < kids.size() && (is_plain(kids[i]) || kids[i].kind == Stmt::pragma)) {
      if (kids[i].kind == Stmt::pragma) {
        std::size_t j = i + 1;
        while (j < kids.size() && kids[j].kind == Stmt::pragma) ++j;
        if (j >= kids.size() || !is_plain(kids[j])) break;
      }
      ++i;
    }
    return i;
  }

  // Statements kids[a, b) run per thread.
  void region(const std::vector<Stmt>& kids, std::size_t a, std::size_t b, std::size_t scope_end,
              const Context& c) {
    const unsigned label = next_label_++;
    std::string storage;
    std::vector<Private> declared;
    const std::size_t after_run = kids[b - 1].end;
    for (std::size_t i = a; i < b; ++i) {
      const Stmt& s = kids[i];
      Declaration d;
      if (s.kind != Stmt::simple || !parse_declaration(s.begin, s.end, d)) continue;
      bool later = false;
      for (const Declarator& dc : d.declarators) later |= used_in(toks_[dc.name].text, after_run, scope_end);
      if (later) storage += privatize(d, declared);
    }
    bool jumps = false;
    for (std::size_t i = a; i < b; ++i) rewrite_jumps(kids[i], 0, 0, c, label, jumps);
    add_before(kids[a].begin, storage + thread_loop(c) + " {");
    add_after(kids[b - 1].end - 1, std::string(" }") + (jumps ? " __mgw_r" + std::to_string(label) + ": ;" : "") + " }");
    for (Private& p : declared) scopes_.back().push_back(p);
  }

  // return / break / continue that leave a region: clear this thread's bits, leave the region.
  void rewrite_jumps(const Stmt& s, int loops, int switches, const Context& c, unsigned label, bool& jumps) {
    const std::string leave = " goto __mgw_r" + std::to_string(label) + "; }";
    auto clear_loops = [&](std::size_t from) {
      std::string t;
      for (std::size_t l = from; l < c.loops.size(); ++l) {
        const std::string k = std::to_string(c.loops[l].k);
        t += " __mgw_l" + k + "[__i] = 0;";
        if (c.loops[l].has_continue) t += " __mgw_c" + k + "[__i] = 0;";
      }
      return t;
    };
    switch (s.kind) {
      case Stmt::return_:
        if (s.end != s.begin + 2) throw Unsupported{"return with a value", s.begin};
        replace(s.begin, " { __mgw_wd[__i] = 1;" + clear_loops(0) + leave);
        replace(s.end - 1, "");
        jumps = true;
        return;
      case Stmt::break_:
        if (loops == 0 && switches == 0) {
          if (c.loops.empty()) throw Unsupported{"break outside a loop", s.begin};
          replace(s.begin, " {" + clear_loops(c.loops.size() - 1) + leave);
          replace(s.end - 1, "");
          jumps = true;
        }
        return;
      case Stmt::continue_:
        if (loops == 0) {
          if (c.loops.empty()) throw Unsupported{"continue outside a loop", s.begin};
          replace(s.begin, " { __mgw_c" + std::to_string(c.loops.back().k) + "[__i] = 0;" + leave);
          replace(s.end - 1, "");
          jumps = true;
        }
        return;
      default: break;
    }
    const bool loop = s.kind == Stmt::for_ || s.kind == Stmt::range_for || s.kind == Stmt::while_ || s.kind == Stmt::do_;
    for (const Stmt& k : s.kids)
      rewrite_jumps(k, loops + (loop ? 1 : 0), switches + (s.kind == Stmt::switch_ ? 1 : 0), c, label, jumps);
  }

  // `if` whose branches hold barriers: each thread's condition into a mask, then each branch
  // for the threads it selects. `if constexpr` is the same for every thread: kept as it is.
  void group_if(const Stmt& s, const Context& c) {
    bool simd_condition = false;
    if (sync(s.open, s.close)) {
      // `if (simd_max(x) <= limit)`: the call first, as a statement's would be; every live
      // thread evaluates the condition (nothing may short-circuit past the call).
      const std::size_t b = call_begin(s.open + 1, s.close);
      bool plain = b < s.close;
      for (std::size_t k = s.open + 1; plain && k < s.close; ++k) plain = !is(k, "&&") && !is(k, "||") && !is(k, "?");
      if (!plain) throw Unsupported{"a SIMD-group call or barrier in an if condition", s.open};
      record_call(s.begin, b, call_end_at(b), c);
      simd_condition = true;
    }
    if (!simd_condition && (is(s.begin + 1, "constexpr") || uniform(s.open, s.close))) return keep_at_group_level(s, c);
    const std::string k = std::to_string(next_label_++), m = "__mgw_m" + k;
    // `if` -> mask, loop head; `(cond)` stays; then the rest of the loop.
    replace(s.begin, mask(m) + thread_loop_unmasked(c, m) + " " + m + "[__i] = ");
    add_after(s.close, " ? 1 : 2; }");
    if (s.else_token) replace(s.else_token, "");
    for (std::size_t b = 0; b < s.kids.size(); ++b) {
      const Stmt& branch = s.kids[b];
      Context inner = c;
      inner.live.push_back(m + "[__i] == " + (b == 0 ? "1" : "2"));
      scopes_.emplace_back();
      add_before(branch.begin, " {");
      add_after(branch.end - 1, " }");
      process_block(branch.kind == Stmt::compound ? branch.kids : std::vector<Stmt>{branch},
                    branch.kind == Stmt::compound ? branch.end - 1 : branch.end, inner);
      scopes_.pop_back();
    }
  }
  // `switch` on a value the whole group shares (ggml's on a function constant): kept at group
  // level, each case's statements processed apart (a region never runs across a label), its
  // `break`s the switch's own.
  void group_switch(const Stmt& s, const Context& c) {
    const Stmt& body = s.kids[0];
    if (body.kind != Stmt::compound) throw Unsupported{"a switch without braces", s.begin};
    Context inner = c;
    inner.in_switch = true;
    scopes_.emplace_back();
    std::vector<Stmt> part;
    auto run = [&] {
      if (!part.empty()) process_block(part, body.end - 1, inner);
      part.clear();
    };
    for (const Stmt& kid : body.kids) {
      std::size_t k = kid.begin;
      bool labelled = false;
      for (;;) {  // `case X:` and `default:`, any number of them
        if (is(k, "default") && is(k + 1, ":")) {
          k += 2;
        } else if (is(k, "case")) {
          while (k < kid.end && !is(k, ":")) ++k;
          if (k >= kid.end) throw Unsupported{"a case label the rewrite cannot read", kid.begin};
          ++k;
        } else {
          break;
        }
        labelled = true;
      }
      if (labelled) {
        run();
        if (kid.kind != Stmt::simple || k >= kid.end || is(k, "{"))
          throw Unsupported{"a case label before anything but a simple statement", kid.begin};
        Stmt rest = kid;
        rest.begin = k;
        if (rest.end == rest.begin + 1) rest.kind = Stmt::empty;
        else if (is(k, "break") && rest.end == k + 2) rest.kind = Stmt::break_;
        else if (is(k, "return")) rest.kind = Stmt::return_;
        part.push_back(rest);
      } else {
        if (kid.kind != Stmt::break_ && contains_jump(kid, Stmt::break_))
          throw Unsupported{"a break out of a switch from inside another statement", kid.begin};
        part.push_back(kid);
      }
    }
    run();
    scopes_.pop_back();
  }

  // A thread loop that first clears `m` for every thread, then skips the ones not live.
  std::string thread_loop_unmasked(const Context& c, const std::string& m) const {
    std::string s = kThreadLoop + lane_note() + (" " + m + "[__i] = 0;");
    if (const std::string l = live(c); !l.empty()) s += " if (!(" + l + ")) continue;";
    return s + binds();
  }

  struct DoTail {
    std::size_t while_token = 0, close = 0, semi = 0;
    std::string l, any;
  };

  // for / while / do whose body holds barriers: the loop runs at group level while any
  // thread's condition holds; a thread whose condition fails (or that breaks) sits out.
  void group_loop(const Stmt& s, const Context& c) {
    if (s.kind == Stmt::for_ ? sync(s.open, s.close) : sync(s.open, s.close + 1))
      throw Unsupported{"a SIMD-group call or barrier in a loop header", s.open};
    if (uniform_loop(s)) return keep_at_group_level(s, c);
    const Stmt& body = s.kids[0];
    const std::string k = std::to_string(next_label_++);
    const std::string l = "__mgw_l" + k, cm = "__mgw_c" + k, any = "__mgw_a" + k;
    const bool has_continue = contains_jump(body, Stmt::continue_);
    Context in_loop = c;  // where the condition and the step run
    in_loop.live.push_back(l + "[__i]");
    Context in_body = c;
    in_body.live.push_back((has_continue ? cm : l) + "[__i]");
    in_body.loops.push_back({unsigned(std::stoul(k)), has_continue});
    scopes_.emplace_back();  // the loop's own variables (a for's init)
    std::string head = " {" + mask(l) + (has_continue ? mask(cm) : "");
    const std::string reset_continue =
        has_continue ? kThreadLoop + (" " + cm + "[__i] = " + l + "[__i]; }") : "";
    std::string step;
    DoTail tail;
    if (s.kind == Stmt::for_) {
      if (sync(s.open, s.close)) throw Unsupported{"a SIMD-group call or barrier in a loop header", s.open};
      // for ( init ; cond ; step ) body
      Declaration d;
      std::vector<Private> declared;
      std::string storage;
      if (s.semi1 > s.open + 1 && parse_declaration(s.open + 1, s.semi1 + 1, d)) {
        // The loop's own `k` hides an outer per-thread `k` from the loop that initialises it.
        for (const Declarator& dc : d.declarators) scopes_.back().push_back({toks_[dc.name].text, kShadow});
        storage = privatize(d, declared);
      }
      replace(s.begin, head + storage + thread_loop_unmasked(c, l) + " " + l + "[__i] = 1;");
      replace(s.open, "");
      for (Private& p : declared) scopes_.back().push_back(p);
      std::string after_init = " } for (;;) { bool " + any + " = false;" + thread_loop(in_loop) + " if (!(";
      if (s.semi2 == s.semi1 + 1) after_init += "1";
      replace(s.semi1, (declared.empty() ? ";" : "") + after_init);
      replace(s.semi2, ")) " + l + "[__i] = 0; else " + any + " = true; } if (!" + any + ") break;" + reset_continue);
      if (s.close > s.semi2 + 1) step = thread_loop(in_loop) + " " + render(s.semi2 + 1, s.close) + "; }";
      erase(s.semi2 + 1, s.close + 1);
    } else if (s.kind == Stmt::while_) {
      if (sync(s.open, s.close)) throw Unsupported{"a SIMD-group call or barrier in a loop header", s.open};
      replace(s.begin, head + thread_loop_unmasked(c, l) + " " + l + "[__i] = 1; } for (;;) { bool " + any +
                           " = false;" + thread_loop(in_loop) + " if (!");
      add_after(s.close, ") " + l + "[__i] = 0; else " + any + " = true; } if (!" + any + ") break;" + reset_continue);
    } else {  // do body while (cond);
      const std::size_t w = body.end;
      if (sync(s.open, s.close)) throw Unsupported{"a SIMD-group call or barrier in a loop header", s.open};
      replace(s.begin, head + thread_loop_unmasked(c, l) + " " + l + "[__i] = 1; } for (;;) {" + reset_continue);
      // After the body: the condition per thread, then whether any thread goes round again.
      // (The binds are made when the body's scope has closed.)
      tail = {w, s.close, s.end - 1, l, any};
    }
    add_before(body.begin, " {");
    scopes_.emplace_back();
    process_block(body.kind == Stmt::compound ? body.kids : std::vector<Stmt>{body},
                  body.kind == Stmt::compound ? body.end - 1 : body.end, in_body);
    scopes_.pop_back();
    add_after(body.end - 1, " }");
    if (s.kind == Stmt::do_) {
      const DoTail& t = tail;
      replace(t.while_token, " bool " + t.any + " = false;" + thread_loop(in_loop) + " if (!");
      add_after(t.close, ") " + t.l + "[__i] = 0; else " + t.any + " = true; } if (!" + t.any + ") break;");
      replace(t.semi, " } }");
    } else {
      add_after(body.end - 1, step + " } }");
    }
    scopes_.pop_back();
  }
  // A continue/break in `s` that leaves it (not one of an inner loop's).
  bool contains_jump(const Stmt& s, Stmt::Kind kind) const {
    for (const Stmt& k : s.kids)
      if (contains(k, kind, true)) return true;
    return s.kind == kind;
  }

  const SourceModel& m_;
  const std::vector<Token>& toks_;
  const std::vector<bool>& sync_ids_;
  const KernelInfo& kernel_;
  const Definition& def_;
  TextEdits edits_;
  std::string builtin_typedefs_, builtin_binds_;
  std::vector<std::vector<Private>> scopes_;
  std::set<std::string> varying_;  // names whose value may differ between threads
  std::set<std::string> group_names_;  // declared at group level: seen by every thread loop
  bool has_return_ = false;
  bool matrices_ = false;  // the body uses simdgroup matrices
  HelperClones* helpers_;  // null in a helper's clone: its own helpers stay unsupported
  const TextEdits* debug_;  // debug mode's checks, or null
  TextEdits inner_;
  unsigned wd_slot_;       // the returned-threads mask
  unsigned next_helper_slot_ = kHelperSlotBase;
  std::map<std::string, unsigned> helper_slots_;  // where each clone's slots end
  unsigned next_slot_;
  unsigned next_label_ = 0;
  unsigned next_private_ = 0;
};

// What makes a statement wait for other threads: what cooperates, except a simdgroup
// matrix's type and per-lane functions (each thread runs those on its own elements).
bool synchronises(const std::string& name) { return is_cooperative_function(name) && !is_per_lane_matrix_name(name); }

void merge(TextEdits& into, TextEdits&& from) {
  for (auto& [k, v] : from.before) into.before[k] += v;
  for (auto& [k, v] : from.replace) into.replace[k] = std::move(v);
  for (auto& [k, v] : from.after) into.after[k] += v;
}

}  // namespace

WorkItemLoops work_item_loops(const SourceModel& model, const std::vector<bool>& selected,
                              const std::unordered_map<std::size_t, std::string>* prior_before,
                              const TextEdits* debug) {
  WorkItemLoops out;
  HelperClones helpers;
  helpers.prior_before = prior_before;
  const auto& kernels = model.kernels();
  out.kernels.assign(kernels.size(), false);
  out.fibers_because.assign(kernels.size(), std::string());
  std::vector<bool> sync_ids;
  bool have_ids = false;
  std::map<int, std::string> by_definition;  // a template's body is shared by its instantiations
  for (std::size_t i = 0; i < kernels.size(); ++i) {
    const KernelInfo& k = kernels[i];
    if (!selected[i] || !k.cooperative) continue;
    const int def = model.structure().function_at(k.decl_token);
    if (def < 0) continue;
    auto it = by_definition.find(def);
    if (it == by_definition.end()) {
      if (!have_ids) {
        // Names that synchronise threads, directly or through what they call. Threadgroup
        // storage alone does not: regions share it in order.
        cooperating_definitions(model.lexed(), model.structure(), {}, &sync_ids, &synchronises);
        have_ids = true;
      }
      std::string why;
      try {
        // (A clone made for a kernel that then stays on fibers is kept: another may call it.)
        Transformer t(model, sync_ids, k, model.structure().definitions()[std::size_t(def)], &helpers, debug);
        TextEdits e = t.run();
        merge(out.edits, std::move(e));
        merge(out.inner, std::move(t.inner()));
      } catch (const Unsupported& u) {
        const Token& t = model.lexed().tokens[u.token];
        why = u.why + " (" + model.lexed().files[std::size_t(t.file)] + ":" + std::to_string(t.line) + ")";
      } catch (const std::runtime_error& e) {  // a body parse_body cannot split
        why = std::string("a body the statement parser cannot split: ") + e.what();
      }
      it = by_definition.emplace(def, why).first;
    }
    out.kernels[i] = it->second.empty();
    out.fibers_because[i] = it->second;
  }
  for (auto& [close, text] : helpers.text_after) out.edits.after[close] += text;
  return out;
}

bool work_item_loops_enabled() {
  const char* e = std::getenv("METALGPU_CPU_FIBERS");
  return !e || !*e || std::string(e) == "0";
}

}  // namespace metalgpu::msl
