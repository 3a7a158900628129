#include "msl/structure.hpp"

#include <algorithm>
#include <iterator>
#include <set>

namespace metalgpu::msl {
namespace {

const std::set<std::string, std::less<>> kRecordKeywords = {"struct", "class", "union"};

// Metal's SIMD-group functions, each also a quad-group one (`quad_` for `simd_`): an exact
// list, since libraries name their own helpers simd_size, simd_reduce ...
const std::set<std::string, std::less<>> kGroupFunctions = {
    "sum", "product", "min", "max", "and", "or", "xor", "prefix_inclusive_sum",
    "prefix_exclusive_sum", "prefix_inclusive_product", "prefix_exclusive_product", "shuffle",
    "shuffle_up", "shuffle_down", "shuffle_xor", "shuffle_rotate_up", "shuffle_rotate_down",
    "shuffle_and_fill_up", "shuffle_and_fill_down", "broadcast", "broadcast_first", "ballot",
    "active_threads_mask", "all", "any", "is_first", "vote",
};
// Barriers, simdgroup matrices (one matrix spread over the lanes of a SIMD group) and their
// functions, and the builtin Apple's headers read a lane with: an exact list, since libraries
// name their own variables simdgroup_sums ...
const std::set<std::string, std::less<>> kCooperative = {
    "threadgroup_barrier",   "simdgroup_barrier",   "__metal_get_thread_index_in_simdgroup",
    "simdgroup_matrix",      "simdgroup_float8x8",  "simdgroup_half8x8",
    "simdgroup_bfloat8x8",   "simdgroup_load",      "simdgroup_store",
    "simdgroup_multiply",    "simdgroup_multiply_accumulate", "make_filled_simdgroup_matrix",
};

const std::set<std::string, std::less<>> kPerLaneMatrix = {
    "simdgroup_matrix", "simdgroup_float8x8", "simdgroup_half8x8", "simdgroup_bfloat8x8",
    "make_filled_simdgroup_matrix"};

}  // namespace

bool is_per_lane_matrix_name(const std::string& name) { return kPerLaneMatrix.count(name) != 0; }

bool is_cooperative_function(const std::string& name) {
  if ((name.rfind("simd_", 0) == 0 || name.rfind("quad_", 0) == 0) && kGroupFunctions.count(name.substr(5)))
    return true;
  return kCooperative.count(name) != 0 || name.rfind("__metal_simd_", 0) == 0;
}

Structure::Structure(const Lexed& lexed) : lexed_(lexed) {
  token_ids_.assign(lexed_.tokens.size(), -1);
  for (std::size_t i = 0; i < lexed_.tokens.size(); ++i)
    if (lexed_.tokens[i].kind == TokenKind::identifier) token_ids_[i] = intern(lexed_.tokens[i].text);
  scan();
  for (std::size_t d = 0; d < defs_.size(); ++d)
    if (int i = id(defs_[d].name); i >= 0) by_name_[i].push_back(int(d));
}

const std::vector<int>& Structure::named(int id) const {
  static const std::vector<int> none;
  auto it = by_name_.find(id);
  return it == by_name_.end() ? none : it->second;
}

int Structure::intern(const std::string& name) {
  auto [it, inserted] = ids_.emplace(name, int(ids_.size()));
  return it->second;
}

int Structure::id(const std::string& name) const {
  auto it = ids_.find(name);
  return it == ids_.end() ? -1 : it->second;
}

std::vector<int> Structure::identifiers(std::size_t begin, std::size_t end) const {
  std::vector<int> out;
  for (std::size_t i = begin; i < end && i < token_ids_.size(); ++i)
    if (token_ids_[i] >= 0) out.push_back(token_ids_[i]);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool Structure::is(std::size_t i, const char* s) const {
  const Token& t = lexed_.tokens[i];
  return t.kind != TokenKind::string_literal && t.kind != TokenKind::end && t.text == s;
}

std::size_t Structure::matching(std::size_t open) const {
  int depth = 0;
  for (std::size_t i = open; i < lexed_.tokens.size(); ++i) {
    if (lexed_.tokens[i].kind != TokenKind::punct) continue;
    if (is(i, "{")) ++depth;
    else if (is(i, "}") && --depth == 0) return i;
  }
  return lexed_.tokens.size() - 1;
}

void Structure::scan() {
  const auto& toks = lexed_.tokens;
  enum Kind { ns, rec, fn, other };
  struct Scope {
    Kind kind;
    int def;
    int saved_paren;
  };
  std::vector<Scope> scopes;
  std::size_t stmt = 0;
  int paren = 0;
  auto kind = [&] { return scopes.empty() ? ns : scopes.back().kind; };
  auto enclosing_record = [&]() -> int {
    return !scopes.empty() && scopes.back().kind == rec ? scopes.back().def : -1;
  };
  for (std::size_t i = 0; i < toks.size(); ++i) {
    const Token& t = toks[i];
    if (t.kind == TokenKind::end) break;
    if (t.kind != TokenKind::punct) continue;
    const std::string& p = t.text;
    if (p == "(" || p == "[") ++paren;
    else if (p == ")" || p == "]") --paren;
    else if (p == ";" && paren == 0) stmt = i + 1;
    else if (p == ":" && paren == 0 && i > 0 && (is(i - 1, "public") || is(i - 1, "private") || is(i - 1, "protected")))
      stmt = i + 1;
    else if (p == "{") {
      Scope scope{other, -1, paren};
      if (paren == 0 && (kind() == ns || kind() == rec)) {
        // What the declaration before this brace defines.
        bool has_namespace = false, has_record = false, has_enum = false, assigned = false;
        std::size_t first_paren = std::string::npos, init_colon = std::string::npos;
        // Past the template headers: `template <class T, int N = 4>` holds a `class` and an
        // `=` that say nothing of what the declaration defines.
        std::size_t from = stmt;
        while (from + 1 < i && is(from, "template") && is(from + 1, "<")) {
          int angle = 0;
          std::size_t k = from + 1;
          for (; k < i; ++k) {
            if (is(k, "<")) ++angle;
            else if (is(k, ">")) --angle;
            else if (is(k, ">>")) angle -= 2;
            if (angle <= 0) break;
          }
          from = k + 1;
        }
        int depth = 0;
        for (std::size_t k = from; k < i; ++k) {
          if (is(k, "(") || is(k, "[")) {
            if (depth == 0 && is(k, "(") && first_paren == std::string::npos) first_paren = k;
            ++depth;
          } else if (is(k, ")") || is(k, "]")) {
            --depth;
          } else if (depth == 0) {
            if (is(k, "namespace")) has_namespace = true;
            if (is(k, "enum")) has_enum = true;
            if (is(k, "=") && first_paren == std::string::npos) assigned = true;
            if (toks[k].kind == TokenKind::identifier && kRecordKeywords.count(toks[k].text) &&
                first_paren == std::string::npos)
              has_record = true;
            if (is(k, ":") && first_paren != std::string::npos && init_colon == std::string::npos) init_colon = k;
          }
        }
        if (has_namespace) {
          scope.kind = ns;
        } else if (has_record && !has_enum && !assigned) {
          scope.kind = rec;
          Definition d;
          d.kind = Definition::record;
          for (std::size_t k = from; k < i; ++k)
            if (toks[k].kind == TokenKind::identifier && kRecordKeywords.count(toks[k].text)) {
              std::size_t n = k + 1;
              while (n < i && is(n, "[") ) {  // [[attributes]]
                int d2 = 0;
                for (; n < i; ++n) {
                  if (is(n, "[")) ++d2;
                  else if (is(n, "]") && --d2 == 0) { ++n; break; }
                }
              }
              if (n < i && toks[n].kind == TokenKind::identifier) d.name = toks[n].text;
              break;
            }
          d.head = stmt;
          d.open = i;
          d.owner = enclosing_record();
          scope.def = int(defs_.size());
          defs_.push_back(std::move(d));
        } else if (!has_enum && !assigned && first_paren != std::string::npos && first_paren > from) {
          // `S(int x) : a{x}, b(y) {`: braces of member initialisers are not the body.
          if (init_colon != std::string::npos && i > init_colon + 1 &&
              (toks[i - 1].kind == TokenKind::identifier || is(i - 1, ">"))) {
            i = matching(i);
            continue;
          }
          scope.kind = fn;
          Definition d;
          d.kind = Definition::function;
          const std::size_t n = first_paren - 1;
          if (is(n, "operator")) d.name = "operator()";
          else if (n > stmt && is(n - 1, "operator")) d.name = "operator" + toks[n].text;
          else d.name = toks[n].text;
          d.head = stmt;
          d.open = i;
          d.owner = enclosing_record();
          scope.def = int(defs_.size());
          defs_.push_back(std::move(d));
        }
      }
      scopes.push_back(scope);
      paren = 0;
      stmt = i + 1;
    } else if (p == "}") {
      if (scopes.empty()) continue;  // unbalanced input: the parser reports it
      const Scope s = scopes.back();
      scopes.pop_back();
      if (s.def >= 0) {
        defs_[std::size_t(s.def)].close = i;
        if (defs_[std::size_t(s.def)].kind == Definition::function)
          defs_[std::size_t(s.def)].uses = identifiers(defs_[std::size_t(s.def)].head, i);
      }
      paren = s.saved_paren;
      stmt = i + 1;
    }
  }
}

int Structure::function_at(std::size_t t) const {
  int best = -1;
  for (std::size_t d = 0; d < defs_.size(); ++d) {
    const Definition& def = defs_[d];
    if (def.kind != Definition::function || t < def.head || t > def.close) continue;
    if (best < 0 || def.head >= defs_[std::size_t(best)].head) best = int(d);
  }
  return best;
}

std::vector<bool> cooperating_definitions(const Lexed& lexed, const Structure& s,
                                          const std::vector<std::size_t>& storage_tokens,
                                          std::vector<bool>* cooperative_ids,
                                          const std::function<bool(const std::string&)>& given) {
  const std::function<bool(const std::string&)> primitive = given ? given : &is_cooperative_function;
  const auto& defs = s.definitions();
  std::vector<bool> coop(defs.size(), false);
  // Names of cooperative primitives the unit spells.
  std::vector<bool> ids;
  {
    std::size_t count = 0;
    for (const auto& t : lexed.tokens)
      if (t.kind == TokenKind::identifier) count = std::max(count, std::size_t(s.id(t.text) + 1));
    ids.assign(count, false);
    for (const auto& t : lexed.tokens)
      if (t.kind == TokenKind::identifier && primitive(t.text)) ids[std::size_t(s.id(t.text))] = true;
  }
  for (std::size_t t : storage_tokens)
    if (int d = s.function_at(t); d >= 0) coop[std::size_t(d)] = true;
  // Propagate through uses until nothing changes: a function using a cooperative name
  // cooperates; a record with a cooperative member makes its name cooperative.
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t d = 0; d < defs.size(); ++d) {
      const Definition& def = defs[d];
      if (def.kind != Definition::function) continue;
      if (!coop[d])
        for (int u : def.uses)
          if (ids[std::size_t(u)]) {
            coop[d] = true;
            break;
          }
      if (!coop[d]) continue;
      auto mark = [&](const std::string& name) {
        const int i = s.id(name);
        if (i >= 0 && !ids[std::size_t(i)]) {
          ids[std::size_t(i)] = true;
          changed = true;
        }
      };
      mark(def.name);
      for (int r = def.owner; r >= 0; r = defs[std::size_t(r)].owner) {
        coop[std::size_t(r)] = true;
        mark(defs[std::size_t(r)].name);
      }
    }
  }
  if (cooperative_ids) *cooperative_ids = std::move(ids);
  return coop;
}

std::vector<std::vector<unsigned>> reached_declarations(const Structure& s,
                                                        const std::vector<std::size_t>& declarations) {
  const auto& defs = s.definitions();
  std::vector<std::vector<unsigned>> reached(defs.size());
  if (declarations.empty()) return reached;
  for (std::size_t k = 0; k < declarations.size(); ++k)
    if (int d = s.function_at(declarations[k]); d >= 0) reached[std::size_t(d)].push_back(unsigned(k));
  auto merge = [&](std::size_t into, const std::vector<unsigned>& from) {
    if (from.empty() || &reached[into] == &from) return false;
    std::vector<unsigned> both;
    std::set_union(reached[into].begin(), reached[into].end(), from.begin(), from.end(), std::back_inserter(both));
    if (both.size() == reached[into].size()) return false;
    reached[into] = std::move(both);
    return true;
  };
  // Until nothing changes: sets only grow, and are bounded by `declarations`.
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t d = 0; d < defs.size(); ++d) {
      const Definition& def = defs[d];
      if (def.kind != Definition::function) continue;
      for (int u : def.uses)
        for (int e : s.named(u)) changed |= merge(d, reached[std::size_t(e)]);
      for (int r = def.owner; r >= 0; r = defs[std::size_t(r)].owner) changed |= merge(std::size_t(r), reached[d]);
    }
  }
  return reached;
}

}  // namespace metalgpu::msl
