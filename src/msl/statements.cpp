#include "msl/statements.hpp"

#include <stdexcept>

namespace metalgpu::msl {
namespace {

class BodyParser {
 public:
  explicit BodyParser(const Lexed& lexed) : toks_(lexed.tokens), lexed_(lexed) {}

  Stmt compound(std::size_t open) {
    Stmt s;
    s.kind = Stmt::compound;
    s.begin = open;
    const std::size_t close = match_bracket(lexed_, open);
    if (!is(close, "}")) fail(open, "unbalanced braces");
    std::size_t i = open + 1;
    while (i < close) {
      s.kids.push_back(statement(i, close));
      i = s.kids.back().end;
    }
    s.end = close + 1;
    return s;
  }

 private:
  // One statement starting at `i`, within a block that closes at `limit`.
  Stmt statement(std::size_t i, std::size_t limit) {
    if (i >= limit) fail(i, "a statement is missing");
    Stmt s;
    s.begin = i;
    const Token& t = toks_[i];
    if (t.kind == TokenKind::pragma) {
      s.kind = Stmt::pragma;
      s.end = i + 1;
      return s;
    }
    if (is(i, "_Pragma") && is(i + 1, "(")) {
      s.kind = Stmt::pragma;
      s.end = match_bracket(lexed_, i + 1) + 1;
      return s;
    }
    if (is(i, "{")) return compound(i);
    if (is(i, ";")) {
      s.kind = Stmt::empty;
      s.end = i + 1;
      return s;
    }
    if (t.kind == TokenKind::identifier) {
      const std::string& w = t.text;
      if (w == "if") {
        s.kind = Stmt::if_;
        std::size_t p = i + 1;
        if (is(p, "constexpr")) ++p;
        parens(s, p);
        s.kids.push_back(statement(s.close + 1, limit));
        std::size_t e = s.kids.back().end;
        if (e < limit && is(e, "else")) {
          s.else_token = e;
          s.kids.push_back(statement(e + 1, limit));
          e = s.kids.back().end;
        }
        s.end = e;
        return s;
      }
      if (w == "for") {
        parens(s, i + 1);
        s.kind = Stmt::for_;
        int depth = 0;
        for (std::size_t k = s.open + 1; k < s.close; ++k) {
          if (is(k, "(") || is(k, "[") || is(k, "{")) ++depth;
          else if (is(k, ")") || is(k, "]") || is(k, "}")) --depth;
          else if (depth == 0 && is(k, ";")) (s.semi1 ? s.semi2 : s.semi1) = k;
        }
        if (!s.semi1 || !s.semi2) s.kind = Stmt::range_for;
        s.kids.push_back(statement(s.close + 1, limit));
        s.end = s.kids.back().end;
        return s;
      }
      if (w == "while" || w == "switch") {
        s.kind = w == "while" ? Stmt::while_ : Stmt::switch_;
        parens(s, i + 1);
        s.kids.push_back(statement(s.close + 1, limit));
        s.end = s.kids.back().end;
        return s;
      }
      if (w == "do") {
        s.kind = Stmt::do_;
        s.kids.push_back(statement(i + 1, limit));
        const std::size_t w2 = s.kids.back().end;
        if (!is(w2, "while")) fail(w2, "`do` without `while`");
        parens(s, w2 + 1);
        if (!is(s.close + 1, ";")) fail(s.close, "`;` expected after do-while");
        s.end = s.close + 2;
        return s;
      }
      if (w == "return") s.kind = Stmt::return_;
      else if (w == "break") s.kind = Stmt::break_;
      else if (w == "continue") s.kind = Stmt::continue_;
    }
    // A simple statement: up to the `;` outside brackets (braces of initialisers, lambdas
    // and local class definitions included).
    std::size_t k = i;
    while (k < limit && !is(k, ";")) {
      if (is(k, "(") || is(k, "[") || is(k, "{")) k = match_bracket(lexed_, k);
      ++k;
    }
    if (k >= limit) fail(i, "statement without `;`");
    s.end = k + 1;
    return s;
  }

  void parens(Stmt& s, std::size_t p) {
    if (!is(p, "(")) fail(p, "`(` expected");
    s.open = p;
    s.close = match_bracket(lexed_, p);
    if (!is(s.close, ")")) fail(p, "unbalanced parentheses");
  }

  bool is(std::size_t i, const char* text) const {
    return i < toks_.size() && (toks_[i].kind == TokenKind::punct || toks_[i].kind == TokenKind::identifier) &&
           toks_[i].text == text;
  }
  [[noreturn]] void fail(std::size_t i, const std::string& what) const {
    const int line = i < toks_.size() ? toks_[i].line : 0;
    throw std::runtime_error("line " + std::to_string(line) + ": " + what);
  }

  const std::vector<Token>& toks_;
  const Lexed& lexed_;
};

}  // namespace

std::size_t match_bracket(const Lexed& lexed, std::size_t open) {
  const auto& toks = lexed.tokens;
  int depth = 0;
  for (std::size_t i = open; i < toks.size(); ++i) {
    if (toks[i].kind == TokenKind::end) return i;
    if (toks[i].kind != TokenKind::punct || toks[i].text.size() != 1) continue;
    const char c = toks[i].text[0];
    if (c == '(' || c == '[' || c == '{') ++depth;
    else if ((c == ')' || c == ']' || c == '}') && --depth == 0) return i;
  }
  return toks.size() - 1;
}

Stmt parse_body(const Lexed& lexed, std::size_t open) { return BodyParser(lexed).compound(open); }

}  // namespace metalgpu::msl
