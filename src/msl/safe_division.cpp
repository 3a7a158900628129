#include "msl/safe_division.hpp"

#include <set>
#include <string>
#include <vector>

#include "msl/parser.hpp"
#include "msl/statements.hpp"
#include "msl/structure.hpp"

namespace metalgpu::msl {
namespace {

const std::set<std::string, std::less<>> kPrefixOperators = {"-", "+", "!", "~", "*", "&", "++", "--"};
// Words inside parentheses that make them a cast: `(int) x`, `(device const float*) p`.
const std::set<std::string, std::less<>> kCastWords = {"const", "volatile", "unsigned", "signed", "device",
                                                       "constant", "threadgroup", "thread", "struct"};

class Divisors {
 public:
  explicit Divisors(const SourceModel& m) : m_(m), toks_(m.lexed().tokens) {}

  std::vector<Division> run() {
    std::vector<bool> in_body(toks_.size(), false);
    for (const Definition& d : m_.structure().definitions())
      if (d.kind == Definition::function)
        for (std::size_t k = d.open + 1; k < d.close && k < toks_.size(); ++k) in_body[k] = true;
    for (std::size_t i = 1; i + 1 < toks_.size(); ++i) {
      if (!in_body[i] || toks_[i].kind != TokenKind::punct || m_.action(i) != TokenAction::keep) continue;
      const std::string& t = toks_[i].text;
      if (t != "/" && t != "%" && t != "/=" && t != "%=") continue;
      if (is(i - 1, "operator")) continue;
      const std::size_t last = operand_end(i + 1);
      if (last == npos) continue;
      bool cooperative = false;  // a SIMD-group call's result: the rewrites that record it wrap it
      for (std::size_t k = i + 1; k <= last; ++k) cooperative |= ident(k) && is_cooperative_function(toks_[k].text);
      if (!cooperative) out_.push_back({i, last});
    }
    return std::move(out_);
  }

 private:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  bool is(std::size_t i, const char* s) const {
    return i < toks_.size() && toks_[i].kind != TokenKind::string_literal && toks_[i].kind != TokenKind::end &&
           toks_[i].text == s;
  }
  bool ident(std::size_t i) const { return i < toks_.size() && toks_[i].kind == TokenKind::identifier; }
  // Tokens [b, e] are ordinary expression tokens (kept, respelled or dropped by the other
  // passes): text before the first and after the last then encloses the whole divisor.
  bool plain(std::size_t b, std::size_t e) const {
    for (std::size_t k = b; k <= e; ++k) {
      const TokenAction a = m_.action(k);
      if ((a != TokenAction::keep && a != TokenAction::replace && a != TokenAction::drop) ||
          toks_[k].kind == TokenKind::pragma)
        return false;
    }
    return true;
  }
  // The bracket closing the one at `open` (statements.hpp), or npos if it is not closed.
  std::size_t match(std::size_t open) const {
    const std::size_t c = match_bracket(m_.lexed(), open);
    return c < toks_.size() && toks_[c].kind != TokenKind::end ? c : npos;
  }
  // `<...>` after a name, when what follows makes it a template argument list
  // (`static_cast<int>(x)`, `as_type<uint>(f)`, `T::template f<1>()`): its `>`, or npos.
  std::size_t template_args(std::size_t lt) const {
    int depth = 0;
    for (std::size_t k = lt; k < toks_.size(); ++k) {
      if (is(k, "(") || is(k, "[")) {
        k = match(k);
        if (k == npos) return npos;
      } else if (is(k, "<")) {
        ++depth;
      } else if (is(k, ">") || is(k, ">>")) {
        depth -= is(k, ">") ? 1 : 2;
        if (depth == 0) return is(k + 1, "(") || is(k + 1, "::") || is(k + 1, "{") ? k : npos;
        if (depth < 0) return npos;
      } else if (is(k, ";") || is(k, "{") || is(k, "}") || is(k, ")") || is(k, "]") || is(k, "&&") ||
                 is(k, "||")) {
        return npos;
      }
    }
    return npos;
  }
  bool looks_like_cast(std::size_t open, std::size_t close) const {
    if (close == open + 1) return false;
    bool type_word = false;
    for (std::size_t k = open + 1; k < close; ++k) {
      if (ident(k)) {
        type_word |= kCastWords.count(toks_[k].text) != 0;
        continue;
      }
      if (is(k, "*") || is(k, "&") || is(k, "::") || is(k, "<") || is(k, ">")) continue;
      return false;
    }
    // `(a) x` is a cast whatever `a` is; `(a) - x` would be a subtraction, so only a following
    // name, number or parenthesis counts.
    return type_word || ident(close + 1) || (close + 1 < toks_.size() && toks_[close + 1].kind == TokenKind::number) ||
           is(close + 1, "(");
  }

  // The last token of the cast-expression starting at `k`, or npos.
  std::size_t operand_end(std::size_t k) const {
    const std::size_t start = k;
    for (;;) {
      if (k < toks_.size() && toks_[k].kind == TokenKind::punct && kPrefixOperators.count(toks_[k].text)) {
        ++k;
      } else if (is(k, "(")) {
        const std::size_t c = match(k);
        if (c == npos) return npos;
        if (!looks_like_cast(k, c)) break;
        k = c + 1;
      } else {
        break;
      }
    }
    // The primary.
    if (ident(k)) {
      if (is(k, "sizeof")) return npos;
      for (;;) {
        if (is(k + 1, "<")) {
          // `n / f<T>(x)` names a template; `n / b < c` compares; `n / size<T>` (a variable
          // template) cannot be told from a comparison here: left alone.
          const std::size_t gt = template_args(k + 1);
          if (gt == npos) return npos;
          k = gt;
        }
        if (is(k + 1, "::") && ident(k + 2)) k += 2;
        else break;
      }
      ++k;
    } else if (k < toks_.size() && (toks_[k].kind == TokenKind::number || toks_[k].kind == TokenKind::char_literal)) {
      ++k;
    } else if (is(k, "(")) {
      const std::size_t c = match(k);
      if (c == npos) return npos;
      k = c + 1;
    } else {
      return npos;
    }
    // Its postfix chain.
    for (;;) {
      if (is(k, "[") || is(k, "(") || (is(k, "{") && ident(k - 1))) {
        const std::size_t c = match(k);
        if (c == npos) return npos;
        k = c + 1;
      } else if ((is(k, ".") || is(k, "->")) && ident(k + 1)) {
        k += 2;
        if (is(k, "<")) {
          const std::size_t gt = template_args(k);
          if (gt == npos) return npos;
          k = gt + 1;
        }
      } else if (is(k, "++") || is(k, "--")) {
        ++k;
      } else {
        break;
      }
    }
    if (k == start || !plain(start, k - 1)) return npos;
    return k - 1;
  }

  const SourceModel& m_;
  const std::vector<Token>& toks_;
  std::vector<Division> out_;
};

}  // namespace

std::vector<Division> divisions(const SourceModel& model) { return Divisors(model).run(); }

}  // namespace metalgpu::msl
