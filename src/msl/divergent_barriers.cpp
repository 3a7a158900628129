#include "msl/divergent_barriers.hpp"

#include <cctype>
#include <cstddef>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include "msl/statements.hpp"

namespace metalgpu::msl {
namespace {

// Builtins whose value differs between the lanes of one SIMD group.
const std::set<std::string, std::less<>> kLaneBuiltins = {
    "thread_position_in_grid",   "thread_position_in_threadgroup", "thread_index_in_threadgroup",
    "thread_index_in_simdgroup", "thread_index_in_quadgroup",      "quadgroup_index_in_threadgroup"};

const std::set<std::string, std::less<>> kAssignments = {"=",  "+=", "-=", "*=",  "/=",  "%=",
                                                         "&=", "|=", "^=", "<<=", ">>="};

// Words after which `name(` or `name{` is not a declaration with an initializer.
const std::set<std::string, std::less<>> kNotTypes = {"return", "else", "case", "do", "throw", "new", "delete",
                                                      "sizeof", "typename", "co_return"};

using Names = std::set<std::string, std::less<>>;

class Analysis {
 public:
  explicit Analysis(const SourceModel& m) : m_(m), toks_(m.lexed().tokens), s_(m.structure()) {
    cooperating_definitions(m.lexed(), s_, {}, &barrier_ids_,
                            [](const std::string& name) { return name == "threadgroup_barrier"; });
  }

  DivergentBarriers result() {
    const auto& defs = s_.definitions();
    taints_.assign(defs.size(), {});
    for (const KernelInfo& k : m_.kernels()) {
      const int d = s_.function_at(k.decl_token);
      if (d < 0) continue;
      for (const KernelParam& p : k.params)
        if (p.role == ParamRole::builtin && kLaneBuiltins.count(p.builtin) && !p.name.empty())
          taints_[std::size_t(d)].insert(p.name);
    }
    // From the kernels' lane builtins through locals and into the parameters of what they call,
    // until nothing changes.
    params_.resize(defs.size());
    for (std::size_t d = 0; d < defs.size(); ++d)
      if (defs[d].kind == Definition::function) params_[d] = parameters(defs[d]);
    for (bool changed = true; changed;) {
      changed = false;
      for (std::size_t d = 0; d < defs.size(); ++d) {
        const Definition& def = defs[d];
        if (def.kind != Definition::function || def.open >= def.close || taints_[d].empty()) continue;
        changed |= spread_taint(taints_[d], def.open, def.close);
        changed |= pass_to_callees(taints_[d], def.open, def.close);
      }
    }
    std::vector<bool> divergent(defs.size(), false);
    std::set<std::string, std::less<>> names;  // of definitions with a divergent barrier
    for (std::size_t d = 0; d < defs.size(); ++d) {
      const Definition& def = defs[d];
      if (def.kind != Definition::function || def.open >= def.close || taints_[d].empty() || !reaches_barrier(def))
        continue;
      taint_ = &taints_[d];
      const std::size_t sites = rejoin_.size();
      try {
        divergent[d] = walk(parse_body(m_.lexed(), def.open), false);
      } catch (const std::runtime_error&) {
        rejoin_.resize(sites);
        divergent[d] = true;  // a body the statement parser cannot split: the safe side
      }
      if (divergent[d]) names.insert(def.name);
    }
    // A kernel reaches a divergent barrier through its own body or anything it uses.
    std::vector<bool> ids;
    const std::vector<bool> reach = cooperating_definitions(
        m_.lexed(), s_, {}, &ids, [&](const std::string& name) { return names.count(name) > 0; });
    std::vector<bool> out;
    for (const KernelInfo& k : m_.kernels()) {
      const int d = s_.function_at(k.decl_token);
      out.push_back((d >= 0 && reach[std::size_t(d)]) || call_names_any(k.call, ids));
    }
    return {std::move(out), std::move(rejoin_)};
  }

 private:
  bool is(std::size_t k, const char* text) const { return k < toks_.size() && toks_[k].text == text; }
  bool ident(std::size_t k) const { return k < toks_.size() && toks_[k].kind == TokenKind::identifier; }
  bool member_name(std::size_t k) const { return k > 0 && (is(k - 1, ".") || is(k - 1, "->")); }

  bool reaches_barrier(const Definition& def) const {
    for (int u : def.uses)
      if (std::size_t(u) < barrier_ids_.size() && barrier_ids_[std::size_t(u)]) return true;
    return false;
  }
  bool calls_barrier(std::size_t b, std::size_t e) const {
    for (std::size_t k = b; k < e && k < toks_.size(); ++k)
      if (ident(k) && barrier_id(k)) return true;
    return false;
  }
  bool barrier_id(std::size_t k) const {
    const int id = s_.id(toks_[k].text);
    return id >= 0 && std::size_t(id) < barrier_ids_.size() && barrier_ids_[std::size_t(id)];
  }
  bool mentions(const Names& taint, std::size_t b, std::size_t e) const {
    for (std::size_t k = b; k < e && k < toks_.size(); ++k)
      if (ident(k) && !member_name(k) && taint.count(toks_[k].text)) return true;
    return false;
  }
  bool mentions_lane(std::size_t b, std::size_t e) const { return mentions(*taint_, b, e); }
  // Names in the template arguments of a kernel's instantiation (`gemv_t<float, ...>`).
  bool call_names_any(const std::string& call, const std::vector<bool>& ids) const {
    for (std::size_t a = 0; a < call.size();) {
      if (!(std::isalpha(static_cast<unsigned char>(call[a])) || call[a] == '_')) {
        ++a;
        continue;
      }
      std::size_t b = a;
      while (b < call.size() && (std::isalnum(static_cast<unsigned char>(call[b])) || call[b] == '_')) ++b;
      const int id = s_.id(call.substr(a, b - a));
      if (id >= 0 && std::size_t(id) < ids.size() && ids[std::size_t(id)]) return true;
      a = b;
    }
    return false;
  }

  // The names a function definition's parameter list declares: per top-level parameter, its
  // last identifier before a default argument or an attribute.
  std::vector<std::string> parameters(const Definition& def) const {
    std::vector<std::string> out;
    std::string simple = def.name;
    if (auto c = simple.rfind("::"); c != std::string::npos) simple = simple.substr(c + 2);
    const bool op = simple.rfind("operator", 0) == 0;
    std::size_t open = 0;
    for (std::size_t k = def.head; k < def.open && !open; ++k) {
      if (op && is(k, "operator")) {
        for (std::size_t j = k + 1; j < def.open; ++j)  // operator() takes its list after `()`
          if (is(j, "(") && !(is(j + 1, ")") && j == k + 1)) {
            open = j;
            break;
          }
      } else if (!op && ident(k) && toks_[k].text == simple && is(k + 1, "(")) {
        open = k + 1;
      }
    }
    if (!open) return out;
    const std::size_t close = match_bracket(m_.lexed(), open);
    std::size_t last = 0;
    bool cut = false;
    for (std::size_t k = open + 1; k <= close && k < toks_.size(); ++k) {
      if (k == close || is(k, ",")) {
        out.push_back(last ? toks_[last].text : std::string());
        last = 0;
        cut = false;
        continue;
      }
      if (is(k, "(") || is(k, "[") || is(k, "{")) {
        cut = cut || is(k, "[");  // an attribute [[...]] ends the name part
        k = match_bracket(m_.lexed(), k);
        continue;
      }
      if (is(k, "<")) {  // template arguments of the parameter's type
        int depth = 1;
        while (++k < close && depth) depth += is(k, "<") ? 1 : is(k, ">") ? -1 : 0;
        --k;
        continue;
      }
      if (is(k, "=")) cut = true;
      if (!cut && ident(k)) last = k;
    }
    return out;
  }

  // Locals computed from tainted names become tainted, until nothing changes: assignments
  // (`x = ...`, `x += ...`, `a[i].f = ...` taints `a`) and `T x(...)` / `T x{...}`.
  bool spread_taint(Names& taint, std::size_t open, std::size_t close) const {
    bool any = false;
    for (bool changed = true; changed;) {
      changed = false;
      for (std::size_t k = open + 1; k < close; ++k) {
        std::size_t root = 0, rhs = 0, rhs_end = 0;
        if (toks_[k].kind == TokenKind::punct && kAssignments.count(toks_[k].text)) {
          root = lhs_root(k);
          rhs = k + 1;
          rhs_end = expression_end(k + 1, close);
        } else if (ident(k) && (is(k + 1, "(") || is(k + 1, "{")) && k > open + 1 &&
                   (ident(k - 1) || is(k - 1, ">") || is(k - 1, "&") || is(k - 1, "*")) &&
                   !(ident(k - 1) && kNotTypes.count(toks_[k - 1].text)) && !member_name(k)) {
          root = k;
          rhs = k + 2;
          rhs_end = match_bracket(m_.lexed(), k + 1);
        }
        if (!root || taint.count(toks_[root].text) || !mentions(taint, rhs, rhs_end)) continue;
        taint.insert(toks_[root].text);
        changed = any = true;
      }
    }
    return any;
  }

  // Calls `f(a, b)`, `T::f<U>(a)`, `obj.f(a)` and constructions `T x(a)` in a body: a callee's
  // parameter whose argument mentions a tainted name is tainted (in every definition of that
  // name: overloads are not told apart).
  bool pass_to_callees(const Names& taint, std::size_t open, std::size_t close) {
    bool any = false;
    for (std::size_t k = open + 1; k < close; ++k) {
      if (!ident(k)) continue;
      std::size_t paren = k + 1;
      if (is(paren, "<")) {  // explicit template arguments
        int depth = 1;
        while (++paren < close && depth) depth += is(paren, "<") ? 1 : is(paren, ">") ? -1 : 0;
      } else if (ident(paren) && (is(paren + 1, "(") || is(paren + 1, "{"))) {
        ++paren;  // `T x(args)`: T's constructors
      }
      if (!(is(paren, "(") || is(paren, "{"))) continue;
      const int id = s_.id(toks_[k].text);
      if (id < 0) continue;
      const std::size_t end = match_bracket(m_.lexed(), paren);
      std::vector<std::pair<std::size_t, std::size_t>> args;
      for (std::size_t a = paren + 1; a < end;) {
        const std::size_t e = expression_end(a, end);
        args.emplace_back(a, e);
        a = e + 1;
      }
      for (int callee : s_.named(id)) {
        const auto& ps = params_[std::size_t(callee)];
        for (std::size_t i = 0; i < args.size() && i < ps.size(); ++i)
          if (!ps[i].empty() && !taints_[std::size_t(callee)].count(ps[i]) && mentions(taint, args[i].first, args[i].second)) {
            taints_[std::size_t(callee)].insert(ps[i]);
            any = true;
          }
      }
    }
    return any;
  }
  std::size_t lhs_root(std::size_t k) const {
    if (k == 0) return 0;
    std::size_t j = k - 1;
    for (int guard = 0; guard < 64 && j > 0; ++guard) {
      if (is(j, "]")) {  // back to the matching `[`
        int depth = 1;
        while (j > 0 && depth) {
          --j;
          depth += is(j, "]") ? 1 : is(j, "[") ? -1 : 0;
        }
        if (j == 0) return 0;
        --j;
      } else if (ident(j) && member_name(j) && j >= 2) {
        j -= 2;
      } else {
        break;
      }
    }
    return ident(j) ? j : 0;
  }
  std::size_t expression_end(std::size_t k, std::size_t limit) const {
    int depth = 0;
    for (; k < limit; ++k) {
      if (is(k, "(") || is(k, "[") || is(k, "{")) ++depth;
      else if (is(k, ")") || is(k, "]") || is(k, "}")) {
        if (depth-- == 0) break;
      } else if (depth == 0 && (is(k, ";") || is(k, ","))) {
        break;
      }
    }
    return k;
  }

  // Is there a barrier in a statement that lanes of one SIMD group may reach apart? `under`:
  // inside a branch or loop whose condition depends on the lane. Records in rejoin_ the
  // outermost such statements that no jump leaves (`prev`: the statement before, whose
  // #pragma belongs to this one).
  bool walk(const Stmt& st, bool under, const Stmt* prev = nullptr) {
    switch (st.kind) {
      case Stmt::compound:
      case Stmt::range_for: {
        bool any = false;
        for (std::size_t i = 0; i < st.kids.size(); ++i)
          any |= walk(st.kids[i], under, i ? &st.kids[i - 1] : nullptr);
        return any;
      }
      case Stmt::if_:
      case Stmt::switch_:
      case Stmt::while_:
      case Stmt::do_:
      case Stmt::for_: {
        const bool loop = st.kind == Stmt::while_ || st.kind == Stmt::do_ || st.kind == Stmt::for_;
        const std::size_t b = st.kind == Stmt::for_ ? st.semi1 + 1 : st.open + 1;
        const std::size_t e = st.kind == Stmt::for_ ? st.semi2 : st.close;
        const bool inner = under || mentions_lane(b, e);
        bool divergent = inner && calls_barrier(st.open + 1, st.close);
        // A loop the lanes leave at different trips (a break or return on a lane condition)
        // with a barrier in it.
        if (loop && !inner && calls_barrier(st.begin, st.end))
          for (const Stmt& kid : st.kids) divergent = divergent || jumps_apart(kid, false);
        const bool parts_here = !under && (divergent || inner);
        for (const Stmt& kid : st.kids) divergent |= walk(kid, inner);
        if (divergent && parts_here && !leaves(st, false, false)) {
          const std::size_t begin = prev && prev->kind == Stmt::pragma ? prev->begin : st.begin;
          rejoin_.emplace_back(begin, st.end);
        }
        return divergent;
      }
      default:
        return under && calls_barrier(st.begin, st.end);
    }
  }
  // Does a return, or a break or continue not caught inside, leave the statement?
  static bool leaves(const Stmt& st, bool in_loop, bool in_switch) {
    if (st.kind == Stmt::return_) return true;
    if (st.kind == Stmt::break_) return !in_loop && !in_switch;
    if (st.kind == Stmt::continue_) return !in_loop;
    const bool loop = st.kind == Stmt::while_ || st.kind == Stmt::do_ || st.kind == Stmt::for_ ||
                      st.kind == Stmt::range_for;
    for (const Stmt& kid : st.kids)
      if (leaves(kid, in_loop || loop, in_switch || st.kind == Stmt::switch_)) return true;
    return false;
  }
  bool jumps_apart(const Stmt& st, bool under) const {
    if (st.kind == Stmt::break_ || st.kind == Stmt::continue_ || st.kind == Stmt::return_) return under;
    bool inner = under;
    if (st.kind == Stmt::if_ || st.kind == Stmt::switch_) inner = under || mentions_lane(st.open + 1, st.close);
    for (const Stmt& kid : st.kids)
      if (jumps_apart(kid, inner)) return true;
    return false;
  }

  const SourceModel& m_;
  const std::vector<Token>& toks_;
  const Structure& s_;
  std::vector<bool> barrier_ids_;
  std::vector<Names> taints_;                     // per definition: names that differ between lanes
  std::vector<std::vector<std::string>> params_;  // per function definition: its parameters' names
  const Names* taint_ = nullptr;                  // the definition being walked
  std::vector<std::pair<std::size_t, std::size_t>> rejoin_;  // see DivergentBarriers::rejoin
};

}  // namespace

DivergentBarriers divergent_barriers(const SourceModel& model) {
  if (model.kernels().empty()) return {};
  return Analysis(model).result();
}

}  // namespace metalgpu::msl
