// The structural model of a preprocessed MSL translation unit: which functions and records
// are defined where, and which names each definition's body uses. Every per-function analysis
// reads it (which kernel cooperates, transitively through what it calls) instead of scanning
// tokens file-wide.
//
// Names, not overloads: a call is matched to every definition of that name (over-approximate,
// which is the safe side for the analyses built on it).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "msl/lexer.hpp"

namespace metalgpu::msl {

struct Definition {
  enum Kind { function, record };
  Kind kind = function;
  std::string name;         // "f", "operator()", "S" (a record or a constructor)
  std::size_t head = 0;     // first token of the declaration (template header included)
  std::size_t open = 0;     // the body's '{' and '}'
  std::size_t close = 0;
  int owner = -1;           // enclosing record definition (member functions), else -1
  std::vector<int> uses;    // interned identifiers in the body (records: none; see members)
};

class Structure {
 public:
  explicit Structure(const Lexed& lexed);

  const std::vector<Definition>& definitions() const { return defs_; }
  // The function definition whose declaration holds token `t` (its head to its body), or -1.
  int function_at(std::size_t t) const;
  // Interned id of an identifier, or -1 if the unit never spells it.
  int id(const std::string& name) const;
  // Ids of the identifiers among tokens [begin, end).
  std::vector<int> identifiers(std::size_t begin, std::size_t end) const;
  // The definitions named by interned id `id` (every overload, every record of that name).
  const std::vector<int>& named(int id) const;

 private:
  int intern(const std::string& name);
  void scan();
  bool is(std::size_t i, const char* s) const;
  std::size_t matching(std::size_t open) const;

  const Lexed& lexed_;
  std::vector<Definition> defs_;
  std::unordered_map<std::string, int> ids_;
  std::vector<int> token_ids_;  // per token: interned id, or -1 for non-identifiers
  std::unordered_map<int, std::vector<int>> by_name_;  // id -> definitions of that name
};

// Which functions cooperate: call threadgroup or SIMD-group barriers, SIMD-group functions or
// simdgroup matrices, or declare threadgroup storage - directly or through anything they
// use, transitively. `storage_tokens` are the tokens that declare threadgroup storage.
// Returns, per definition, whether it cooperates; `cooperative_ids` receives the names that do
// (a record cooperates when one of its member functions does). `primitive` says which of
// Metal's names cooperate (is_cooperative_function unless given).
std::vector<bool> cooperating_definitions(const Lexed& lexed, const Structure& s,
                                          const std::vector<std::size_t>& storage_tokens,
                                          std::vector<bool>* cooperative_ids,
                                          const std::function<bool(const std::string&)>& primitive = {});

// Per definition, the indices into `declarations` (tokens, such as the `threadgroup` of each
// threadgroup variable) that it reaches: those in its own body, and those of every definition
// it uses, transitively. A used name reaches every definition of that name; a record reaches
// what its member functions do.
std::vector<std::vector<unsigned>> reached_declarations(const Structure& s,
                                                        const std::vector<std::size_t>& declarations);

// A Metal function that makes the threads of a group run interleaved.
bool is_cooperative_function(const std::string& name);
// A simdgroup matrix's type or a function that works on one lane's elements alone
// (make_filled_simdgroup_matrix): cooperative, but nothing in them exchanges between lanes.
bool is_per_lane_matrix_name(const std::string& name);

}  // namespace metalgpu::msl
