#include "msl/lexer.hpp"

#include <algorithm>
#include <cstring>

#include "metalgpu/errors.hpp"

namespace metalgpu::msl {
namespace lex {
namespace {

// Length of a quoted literal whose opening quote is s[pos]; 0 when it is not closed on its line.
std::size_t quoted_length(std::string_view s, std::size_t pos) {
  const char quote = s[pos];
  for (std::size_t i = pos + 1; i < s.size(); ++i) {
    const char c = s[i];
    if (c == quote) return i + 1 - pos;
    if (c == '\n') return 0;
    if (c == '\\') ++i;  // skips the escaped character, so \" does not close
  }
  return 0;
}

// Length of a raw string literal R"delim( ... )delim" whose `"` is s[pos]; 0 if malformed.
std::size_t raw_string_length(std::string_view s, std::size_t pos) {
  const std::size_t open = s.find('(', pos + 1);
  if (open == std::string_view::npos || open - pos - 1 > 16) return 0;
  const std::string_view delim = s.substr(pos + 1, open - pos - 1);
  if (delim.find_first_of(" \\)\t\n\"") != std::string_view::npos) return 0;
  std::string closing = ")";
  closing += delim;
  closing += '"';
  const std::size_t close = s.find(closing, open + 1);
  if (close == std::string_view::npos) return 0;
  return close + closing.size() - pos;
}

// pp-number: a digit (or '.' digit) followed by identifier characters, dots, exponent signs
// (e+, E-, p+, P-) and C++14 digit separators.
std::size_t number_length(std::string_view s, std::size_t pos) {
  std::size_t i = pos + 1;
  while (i < s.size()) {
    const char c = s[i];
    if ((c == '+' || c == '-') && (s[i - 1] == 'e' || s[i - 1] == 'E' || s[i - 1] == 'p' ||
                                   s[i - 1] == 'P')) {
      ++i;
    } else if (is_ident_char(c) || c == '.') {
      ++i;
    } else if (c == '\'' && i + 1 < s.size() && is_ident_char(s[i + 1])) {
      i += 2;
    } else {
      break;
    }
  }
  return i - pos;
}

std::size_t punct_length(std::string_view s, std::size_t pos) {
  const char c = s[pos];
  const char d = pos + 1 < s.size() ? s[pos + 1] : '\0';
  const char e = pos + 2 < s.size() ? s[pos + 2] : '\0';
  switch (c) {
    case '>':
      if (d == '>') return e == '=' ? 3 : 2;
      return d == '=' ? 2 : 1;
    case '<':
      if (d == '<') return e == '=' ? 3 : 2;
      return d == '=' ? 2 : 1;
    case '.':
      if (d == '.' && e == '.') return 3;
      return d == '*' ? 2 : 1;
    case '-':
      if (d == '>') return e == '*' ? 3 : 2;
      return (d == '-' || d == '=') ? 2 : 1;
    case '+': return (d == '+' || d == '=') ? 2 : 1;
    case '&': return (d == '&' || d == '=') ? 2 : 1;
    case '|': return (d == '|' || d == '=') ? 2 : 1;
    case '#': return d == '#' ? 2 : 1;
    case ':': return d == ':' ? 2 : 1;
    case '*': case '/': case '%': case '^': case '=': case '!':
      return d == '=' ? 2 : 1;
    default: return 1;
  }
}

// If s[pos, pos+len) is an encoding prefix (u8 u U L, optionally followed by R) directly
// followed by a quote, the length of the whole literal; else 0.
std::size_t prefixed_literal_length(std::string_view s, std::size_t pos, std::size_t len,
                                    TokenKind& kind) {
  if (len > 3 || pos + len >= s.size()) return 0;
  const std::string_view word = s.substr(pos, len);
  const char q = s[pos + len];
  if (q != '"' && q != '\'') return 0;
  const bool raw = word.back() == 'R';
  const std::string_view enc = raw ? word.substr(0, word.size() - 1) : word;
  if (!(enc.empty() || enc == "u8" || enc == "u" || enc == "U" || enc == "L")) return 0;
  if (raw) {
    if (q != '"') return 0;
    const std::size_t n = raw_string_length(s, pos + len);
    if (n == 0) return 0;
    kind = TokenKind::string_literal;
    return len + n;
  }
  const std::size_t n = quoted_length(s, pos + len);
  if (n == 0) return 0;
  kind = q == '"' ? TokenKind::string_literal : TokenKind::char_literal;
  return len + n;
}

}  // namespace

std::size_t token_length(std::string_view s, std::size_t pos, TokenKind& kind) {
  const char c = s[pos];
  if (is_ident_start(c)) {
    std::size_t i = pos + 1;
    while (i < s.size() && is_ident_char(s[i])) ++i;
    const std::size_t len = i - pos;
    if (i < s.size() && (s[i] == '"' || s[i] == '\'')) {
      if (std::size_t n = prefixed_literal_length(s, pos, len, kind)) return n;
    }
    kind = TokenKind::identifier;
    return len;
  }
  if (is_digit(c) || (c == '.' && pos + 1 < s.size() && is_digit(s[pos + 1]))) {
    kind = TokenKind::number;
    return number_length(s, pos);
  }
  if (c == '"' || c == '\'') {
    if (std::size_t n = quoted_length(s, pos)) {
      kind = c == '"' ? TokenKind::string_literal : TokenKind::char_literal;
      return n;
    }
  }
  kind = TokenKind::punct;
  return punct_length(s, pos);
}

Scanner::Scanner(std::string_view source) : text_(source) {
  // Remove backslash-newline (and backslash-CR-LF) splices, remembering where they were.
  std::size_t at = source.find('\\');
  if (at == std::string_view::npos) return;
  bool any = false;
  for (std::size_t i = at; i != std::string_view::npos; i = source.find('\\', i + 1)) {
    if ((i + 1 < source.size() && source[i + 1] == '\n') ||
        (i + 2 < source.size() && source[i + 1] == '\r' && source[i + 2] == '\n')) {
      any = true;
      break;
    }
  }
  if (!any) return;
  storage_.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\\') {
      if (i + 1 < source.size() && source[i + 1] == '\n') {
        splices_.push_back(storage_.size());
        i += 1;
        continue;
      }
      if (i + 2 < source.size() && source[i + 1] == '\r' && source[i + 2] == '\n') {
        splices_.push_back(storage_.size());
        i += 2;
        continue;
      }
    }
    storage_ += source[i];
  }
  text_ = storage_;
}

void Scanner::count_lines_up_to(std::size_t pos) {
  while (next_splice_ < splices_.size() && splices_[next_splice_] <= pos) {
    ++line_;
    ++next_splice_;
  }
}

void Scanner::skip_space_and_comments(bool& space, bool& line_start) {
  const std::size_t n = text_.size();
  while (pos_ < n) {
    const char c = text_[pos_];
    if (c == '\n') {
      ++line_;
      ++pos_;
      space = true;
      line_start = true;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      ++pos_;
      space = true;
    } else if (c == '/' && pos_ + 1 < n && text_[pos_ + 1] == '/') {
      const std::size_t end = text_.find('\n', pos_);
      pos_ = end == std::string_view::npos ? n : end;
      space = true;
    } else if (c == '/' && pos_ + 1 < n && text_[pos_ + 1] == '*') {
      std::size_t end = text_.find("*/", pos_ + 2);
      end = end == std::string_view::npos ? n : end + 2;
      line_ += static_cast<int>(std::count(text_.begin() + pos_, text_.begin() + end, '\n'));
      pos_ = end;
      space = true;
    } else {
      break;
    }
  }
}

bool Scanner::next(RawToken& out) {
  bool space = false;
  bool line_start = first_;
  first_ = false;
  // Splices inside the whitespace were passed over without counting; count them now.
  skip_space_and_comments(space, line_start);
  count_lines_up_to(pos_);
  if (pos_ >= text_.size()) {
    out = RawToken{};
    out.line = line_;
    return false;
  }
  TokenKind kind;
  const std::size_t len = token_length(text_, pos_, kind);
  out.kind = kind;
  out.text = text_.substr(pos_, len);
  out.line = line_;
  out.space_before = space;
  out.line_start = line_start;
  out.column0 = pos_ == 0 || text_[pos_ - 1] == '\n';
  if (kind == TokenKind::string_literal && out.text.find('\n') != std::string_view::npos) {
    line_ += static_cast<int>(std::count(out.text.begin(), out.text.end(), '\n'));  // raw strings
  }
  pos_ += len;
  return true;
}

}  // namespace lex

namespace {

std::string unescape_file_name(std::string_view quoted) {
  std::string name;
  for (std::size_t i = 1; i + 1 < quoted.size(); ++i) {
    if (quoted[i] == '\\' && i + 2 < quoted.size()) ++i;
    name += quoted[i];
  }
  return name;
}

[[noreturn]] void fail(const std::string& file, int line, const std::string& what) {
  throw CompileError(file + ":" + std::to_string(line) + ": error: " + what, file, line);
}

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : -1;
    if (n < 0 || i + std::size_t(n) >= s.size()) return false;
    std::uint32_t cp = n == 0 ? c : c & (0x3fu >> n);
    for (int k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + std::size_t(k)]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
      return false;
    i += std::size_t(n) + 1;
  }
  return true;
}

// Position state of lex_preprocessed: the presumed file and the offset from physical lines.
struct Position {
  Lexed& lexed;
  int file = 0;
  int delta = 0;

  int file_index(const std::string& name) {
    auto it = std::find(lexed.files.begin(), lexed.files.end(), name);
    if (it != lexed.files.end()) return static_cast<int>(it - lexed.files.begin());
    lexed.files.push_back(name);
    return static_cast<int>(lexed.files.size() - 1);
  }
};

// Rebuilds directive text from its tokens, one space where the source had any.
std::string spell(const std::vector<lex::RawToken>& toks, std::size_t from) {
  std::string text;
  for (std::size_t i = from; i < toks.size(); ++i) {
    if (i > from && toks[i].space_before) text += ' ';
    text += toks[i].text;
  }
  return text;
}

// Applies one directive line (tokens after '#'); returns a pragma token's text or "".
void apply_directive(const std::vector<lex::RawToken>& dir, int hash_line, Position& pos,
                     std::vector<Token>& out) {
  if (dir.empty()) return;  // null directive
  const std::string& cur = pos.lexed.files[pos.file];
  const int presumed = hash_line + pos.delta;
  std::size_t i = 0;
  if (dir[0].kind == TokenKind::identifier && dir[0].text == "pragma") {
    Token t;
    t.kind = TokenKind::pragma;
    t.text = spell(dir, 0);
    t.file = pos.file;
    t.line = presumed;
    t.space_before = false;
    t.line_start = true;
    out.push_back(std::move(t));
    return;
  }
  if (dir[0].kind == TokenKind::identifier && dir[0].text == "line") i = 1;
  if (dir[0].kind != TokenKind::number && i == 0) {
    fail(cur, presumed, "unexpected directive '#" + std::string(dir[0].text) + "' in preprocessed source");
  }
  if (i >= dir.size() || dir[i].kind != TokenKind::number) fail(cur, presumed, "malformed #line directive");
  const std::string_view num = dir[i].text;
  long value = 0;
  for (char c : num) {
    if (!lex::is_digit(c) || value > 1000000000L) fail(cur, presumed, "malformed #line directive");
    value = value * 10 + (c - '0');
  }
  if (i + 1 < dir.size()) {
    if (dir[i + 1].kind != TokenKind::string_literal) fail(cur, presumed, "malformed #line directive");
    pos.file = pos.file_index(unescape_file_name(dir[i + 1].text));
  }
  // The line after the directive is line `value`.
  pos.delta = static_cast<int>(value) - (dir.back().line + 1);
}

}  // namespace

Lexed lex_preprocessed(std::string_view text, const std::string& initial_file) {
  Lexed lexed;
  lexed.files.push_back(initial_file);
  // Dense expanded code runs ~1 token per 2 bytes; pages past the real count are never touched.
  lexed.tokens.reserve(text.size() / 2 + 16);
  Position pos{lexed};
  lex::Scanner scanner(text);
  lex::RawToken raw;
  bool have = scanner.next(raw);
  std::vector<lex::RawToken> directive;
  while (have) {
    if (raw.line_start && raw.column0 && raw.kind == TokenKind::punct && raw.text == "#") {
      const int hash_line = raw.line;
      directive.clear();
      while ((have = scanner.next(raw)) && !raw.line_start) directive.push_back(raw);
      apply_directive(directive, hash_line, pos, lexed.tokens);
      continue;
    }
    Token& t = lexed.tokens.emplace_back(Token{raw.kind, std::string(raw.text)});
    t.file = pos.file;
    t.line = raw.line + pos.delta;
    // Code (comments are gone by now) must be UTF-8, as Apple's compiler requires; NVRTC would
    // otherwise stop at a stray byte without saying where.
    if ((raw.kind == TokenKind::identifier || raw.kind == TokenKind::punct) && !valid_utf8(raw.text))
      fail(lexed.files[std::size_t(t.file)], t.line, "source file is not valid UTF-8 (a stray byte in code)");
    t.space_before = raw.space_before;
    t.line_start = raw.line_start;
    have = scanner.next(raw);
  }
  Token end;
  end.kind = TokenKind::end;
  end.file = pos.file;
  end.line = raw.line + pos.delta;
  end.line_start = true;
  lexed.tokens.push_back(std::move(end));
  return lexed;
}

}  // namespace metalgpu::msl
