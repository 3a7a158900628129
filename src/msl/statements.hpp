// Function bodies as statements: the part of the structural model that transformations of a
// kernel's control flow read (work-item loops on the CPU). A body's tokens are split into
// statements by C++'s statement grammar - compound, if/else, for, while, do, switch, jumps,
// and simple statements ending in `;` - without parsing expressions or types.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "msl/lexer.hpp"

namespace metalgpu::msl {

struct Stmt {
  enum Kind {
    compound,     // { kids... }
    if_,          // if (cond) kids[0] [else kids[1]]
    for_,         // for (init; cond; step) kids[0]
    range_for,    // for (decl : range) kids[0]
    while_,       // while (cond) kids[0]
    do_,          // do kids[0] while (cond);
    switch_,      // switch (cond) kids[0]
    return_,
    break_,
    continue_,
    pragma,       // #pragma line, or _Pragma("...")
    simple,       // anything else that ends in `;`: a declaration or an expression
    empty,        // `;`
  };
  Kind kind = simple;
  std::size_t begin = 0;  // first token
  std::size_t end = 0;    // one past the last token
  // if/for/while/do/switch: the parentheses after the keyword; for_: its two `;` inside them.
  std::size_t open = 0, close = 0, semi1 = 0, semi2 = 0;
  std::size_t else_token = 0;  // if_ with an else branch (0: none)
  std::vector<Stmt> kids;
};

// The statements of the compound statement whose `{` is token `open` (kind compound, begin =
// open, end = one past its `}`). Throws std::runtime_error on a body it cannot split.
Stmt parse_body(const Lexed& lexed, std::size_t open);

// The index of the bracket that closes the one at `open` ( `(`, `[` or `{` ), counting all
// three kinds; the `end` token's index if it is not closed.
std::size_t match_bracket(const Lexed& lexed, std::size_t open);

}  // namespace metalgpu::msl
