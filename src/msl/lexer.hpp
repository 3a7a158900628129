// MSL lexer: a low-level scanner shared by the preprocessor and the translator, and
// lex_preprocessed(), which turns the preprocessor's output into positioned tokens.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace metalgpu::msl {

enum class TokenKind : uint8_t { identifier, number, string_literal, char_literal, punct, pragma, end };

struct Token {
  TokenKind kind;
  std::string text;         // spelling; for `pragma` the whole directive text after '#', e.g. "pragma unroll"
  int file = 0;             // index into Lexed::files
  int line = 0;             // 1-based line in that file
  bool space_before = false;  // whitespace, a comment or a line break precedes the token
  bool line_start = false;    // first token on its line
};

struct Lexed {
  std::vector<std::string> files;
  std::vector<Token> tokens;  // ends with one `end` token
};

// Tokenizes PREPROCESSED text: `#line N "file"` lines (and GNU `# N "file" flags`) update
// positions and produce no token; `#pragma ...` lines become one `pragma` token; `_Pragma("...")`
// stays as ordinary tokens; any other directive is a CompileError. Comments are skipped.
// A directive's '#' must be the first character of its line (as the preprocessor writes
// them): a '#' after leading whitespace is an ordinary token, which is how the preprocessor
// keeps a macro-generated '#' at the start of a line from reading as a directive.
Lexed lex_preprocessed(std::string_view text, const std::string& initial_file);

namespace lex {

inline bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;  // UTF-8 identifiers, as clang accepts
}
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c); }

// Length and kind of the token that starts at s[pos] (longest match). s[pos] must not be
// whitespace or the start of a comment. Never returns 0: a stray character, or a quote
// that is not closed on its line, is a one-character punct.
std::size_t token_length(std::string_view s, std::size_t pos, TokenKind& kind);

// One token found by Scanner: `text` views the scanner's buffer.
struct RawToken {
  TokenKind kind = TokenKind::end;
  std::string_view text;
  int line = 0;  // physical line (splices count as lines)
  bool space_before = false;
  bool line_start = false;
  bool column0 = false;  // the very first character of its line
};

// Walks a source buffer token by token, skipping comments. Backslash-newline splices are
// removed up front (remembering where, so lines still count physical lines), which keeps
// every scanning routine free of splice handling. The scanner owns a copy only when the
// source has splices.
class Scanner {
 public:
  explicit Scanner(std::string_view source);
  Scanner(const Scanner&) = delete;
  Scanner& operator=(const Scanner&) = delete;

  // The next token; false (and `out.kind == end`) at the end of the buffer.
  bool next(RawToken& out);

 private:
  void skip_space_and_comments(bool& space, bool& line_start);
  void count_lines_up_to(std::size_t pos);

  std::string storage_;              // spliced copy, when needed
  std::string_view text_;
  std::vector<std::size_t> splices_;  // positions in text_ where a spliced newline was removed
  std::size_t next_splice_ = 0;
  std::size_t pos_ = 0;
  int line_ = 1;
  bool first_ = true;
};

}  // namespace lex
}  // namespace metalgpu::msl
