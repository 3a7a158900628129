// Tests of the MSL lexer and preprocessor. Standalone: returns nonzero and prints each
// failure. Build (from the repository root):
//   g++ -std=c++20 -O2 -Wall -Wextra -Isrc tests/msl/test_preprocessor.cpp
//       src/msl/preprocessor.cpp src/msl/lexer.cpp
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "metalgpu/errors.hpp"
#include "msl/lexer.hpp"
#include "msl/preprocessor.hpp"

using metalgpu::CompileError;
using namespace metalgpu::msl;
namespace fs = std::filesystem;

namespace {

int failures = 0;
int checks = 0;

void check(bool ok, const std::string& what, const std::string& detail = {}) {
  ++checks;
  if (ok) return;
  ++failures;
  std::cout << "FAIL: " << what << "\n";
  if (!detail.empty()) std::cout << detail << "\n";
}

void check_eq(const std::string& what, const std::string& got, const std::string& want) {
  check(got == want, what, "  got:  [" + got + "]\n  want: [" + want + "]");
}

std::string pp(const std::string& src, const PreprocessOptions& opts = {},
               const std::string& path = "<string>") {
  return preprocess(src, path, opts).text;
}

// The output's tokens joined by single spaces (pragmas as "#pragma ..."): compares
// expansions without caring about the exact spacing.
std::string norm(const std::string& text) {
  Lexed l = lex_preprocessed(text, "x");
  std::string s;
  for (const Token& t : l.tokens) {
    if (t.kind == TokenKind::end) break;
    if (!s.empty()) s += ' ';
    if (t.kind == TokenKind::pragma) s += '#';
    s += t.text;
  }
  return s;
}

std::string normalize_want(const std::string& want) { return norm(want); }

void expands(const std::string& what, const std::string& src, const std::string& want,
             const PreprocessOptions& opts = {}) {
  try {
    check_eq(what, norm(pp(src, opts)), normalize_want(want));
  } catch (const CompileError& e) {
    check(false, what, std::string("  unexpected CompileError: ") + e.what());
  }
}

void fails(const std::string& what, const std::string& src, const std::string& needle,
           const PreprocessOptions& opts = {}, const std::string& path = "<string>") {
  try {
    std::string out = preprocess(src, path, opts).text;
    check(false, what, "  no CompileError; output:\n" + out);
  } catch (const CompileError& e) {
    std::string msg = e.what();
    check(msg.find(needle) != std::string::npos, what, "  message: " + msg + "\n  expected: " + needle);
  }
}

// Line (as lex_preprocessed maps it) of the first token spelled `text`.
int line_of(const std::string& out, const std::string& text, std::string* file = nullptr) {
  Lexed l = lex_preprocessed(out, "?");
  for (const Token& t : l.tokens) {
    if (t.text == text) {
      if (file) *file = l.files[t.file];
      return t.line;
    }
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------

void test_standard_examples() {
  // C11 6.10.3.5 example 3.
  const std::string ex3 =
      "#define x 3\n"
      "#define f(a) f(x * (a))\n"
      "#undef x\n"
      "#define x 2\n"
      "#define g f\n"
      "#define z z[0]\n"
      "#define h g(~\n"
      "#define m(a) a(w)\n"
      "#define w 0,1\n"
      "#define t(a) a\n"
      "#define p() int\n"
      "#define q(x) x\n"
      "#define r(x,y) x ## y\n"
      "#define str(x) # x\n"
      "f(y+1) + f(f(z)) % t(t(g)(0) + t)(1);\n"
      "g(x+(3,4)-w) | h 5) & m\n"
      "(f)^m(m);\n"
      "p() i[q()] = { q(1), r(2,3), r(4,), r(,5), r(,) };\n"
      "char c[2][6] = { str(hello), str() };\n";
  expands("6.10.3.5 example 3", ex3,
          "f(2 * (y+1)) + f(2 * (f(2 * (z[0])))) % f(2 * (0)) + t(1);\n"
          "f(2 * (2+(3,4)-0,1)) | f(2 * (~ 5)) & f(2 * (0,1))^m(0,1);\n"
          "int i[] = { 1, 23, 4, 5, };\n"
          "char c[2][6] = { \"hello\", \"\" };\n");

  // Example 4: stringification and pasting (the #include line is checked in test_includes).
  const std::string ex4 =
      "#define str(s) # s\n"
      "#define xstr(s) str(s)\n"
      "#define debug(s, t) printf(\"x\" # s \"= %d, x\" # t \"= %s\", \\\n"
      " x ## s, x ## t)\n"
      "#define INCFILE(n) vers ## n\n"
      "#define glue(a, b) a ## b\n"
      "#define xglue(a, b) glue(a, b)\n"
      "#define HIGHLOW \"hello\"\n"
      "#define LOW LOW \", world\"\n"
      "debug(1, 2);\n"
      "fputs(str(strncmp(\"abc\\0d\", \"abc\", '\\4') // this goes away\n"
      " == 0) str(: @\\n), s);\n"
      "xstr(INCFILE(2).h)\n"
      "glue(HIGH, LOW);\n"
      "xglue(HIGH, LOW)\n";
  const std::string out4 = pp(ex4);
  expands("6.10.3.5 example 4", ex4,
          "printf(\"x\" \"1\" \"= %d, x\" \"2\" \"= %s\", x1, x2);\n"
          "fputs(\"strncmp(\\\"abc\\\\0d\\\", \\\"abc\\\", '\\\\4') == 0\" \": @\\n\", s);\n"
          "\"vers2.h\"\n"
          "\"hello\";\n"
          "\"hello\" \", world\"\n");
  check(out4.find("\"strncmp(\\\"abc\\\\0d\\\", \\\"abc\\\", '\\\\4') == 0\"") != std::string::npos,
        "example 4: exact stringified text", out4);

  // Example 5: placemarkers.
  expands("6.10.3.5 example 5",
          "#define t(x,y,z) x ## y ## z\n"
          "int j[] = { t(1,2,3), t(,4,5), t(6,,7), t(8,9,),\n"
          " t(10,,), t(,11,), t(,,12), t(,,) };\n",
          "int j[] = { 123, 45, 67, 89, 10, 11, 12, };");

  // Example 6 (6.10.3.3): hash_hash.
  const std::string hh =
      "#define hash_hash # ## #\n"
      "#define mkstr(a) # a\n"
      "#define in_between(a) mkstr(a)\n"
      "#define join(c, d) in_between(c hash_hash d)\n"
      "char p[] = join(x, y);\n";
  expands("hash_hash", hh, "char p[] = \"x ## y\";");
  check(pp(hh).find("\"x ## y\"") != std::string::npos, "hash_hash exact spelling", pp(hh));

  // Example 7: variadic macros.
  expands("6.10.3.5 example 7",
          "#define debug(...) fprintf(stderr, __VA_ARGS__)\n"
          "#define showlist(...) puts(#__VA_ARGS__)\n"
          "#define report(test, ...) ((test)?puts(#test): printf(__VA_ARGS__))\n"
          "debug(\"Flag\");\n"
          "debug(\"X = %d\\n\", x);\n"
          "showlist(The first, second, and third items.);\n"
          "report(x>y, \"x is %d but y is %d\", x, y);\n",
          "fprintf(stderr, \"Flag\");\n"
          "fprintf(stderr, \"X = %d\\n\", x);\n"
          "puts(\"The first, second, and third items.\");\n"
          "((x>y)?puts(\"x>y\"): printf(\"x is %d but y is %d\", x, y));\n");
  check(pp("#define showlist(...) puts(#__VA_ARGS__)\nshowlist(The first, second, and third items.);")
                .find("\"The first, second, and third items.\"") != std::string::npos,
        "showlist exact spelling");
}

void test_variadic() {
  const std::string va_opt =
      "#define F(...) f(0 __VA_OPT__(,) __VA_ARGS__)\n"
      "#define G(X, ...) f(0, X __VA_OPT__(,) __VA_ARGS__)\n"
      "#define SDEF(sname, ...) S sname __VA_OPT__(= { __VA_ARGS__ })\n"
      "#define EMP\n";
  expands("__VA_OPT__ F(a,b,c)", va_opt + "F(a,b,c)", "f(0, a, b, c)");
  expands("__VA_OPT__ F()", va_opt + "F()", "f(0)");
  expands("__VA_OPT__ F(EMP)", va_opt + "F(EMP)", "f(0)");
  expands("__VA_OPT__ G(a,b,c)", va_opt + "G(a,b,c)", "f(0, a, b, c)");
  expands("__VA_OPT__ G(a,)", va_opt + "G(a,)", "f(0, a)");
  expands("__VA_OPT__ G(a)", va_opt + "G(a)", "f(0, a)");
  expands("__VA_OPT__ SDEF(foo)", va_opt + "SDEF(foo);", "S foo;");
  expands("__VA_OPT__ SDEF(bar, 1, 2)", va_opt + "SDEF(bar, 1, 2);", "S bar = { 1, 2 };");
  expands("#__VA_OPT__", "#define S(...) #__VA_OPT__(x __VA_ARGS__)\nS() S(1)", "\"\" \"x 1\"");

  const std::string gnu = "#define e(fmt, ...) printf(fmt, ## __VA_ARGS__)\n";
  expands("GNU comma elision, empty", gnu + "e(\"a\")", "printf(\"a\")");
  expands("GNU comma elision, empty arg", gnu + "e(\"a\",)", "printf(\"a\")");
  expands("GNU comma elision, args", gnu + "e(\"a\", 1, 2)", "printf(\"a\", 1, 2)");
  expands("GNU comma elision, args expanded", gnu + "#define ONE 1\ne(\"a\", ONE)", "printf(\"a\", 1)");
  expands("GNU named variadic", "#define g(fmt, args...) h(fmt, args)\ng(1, 2, 3)", "h(1, 2, 3)");
  expands("variadic only", "#define v(...) [__VA_ARGS__]\nv() v(a) v(a, (b, c), d)",
          "[] [a] [a, (b, c), d]");
}

void test_mlx_macros() {
  const std::string src =
      "#define instantiate_kernel(name, func, ...) \\\n"
      "  template [[host_name(name)]] [[kernel]] decltype(func<__VA_ARGS__>) func<__VA_ARGS__>;\n"
      "#define instantiate_unary(op, tname, type) instantiate_kernel(\"v_\" #op #tname, unary_v, type, op)\n"
      "#define instantiate_unary_all(op) \\\n"
      "  instantiate_unary(op, float32, float) \\\n"
      "  instantiate_unary(op, float16, half)\n"
      "instantiate_unary(Abs, float32, float)\n"
      "instantiate_unary_all(Exp)\n";
  expands("MLX instantiate_unary", src,
          "template [[host_name(\"v_\" \"Abs\" \"float32\")]] [[kernel]] "
          "decltype(unary_v<float, Abs>) unary_v<float, Abs>;\n"
          "template [[host_name(\"v_\" \"Exp\" \"float32\")]] [[kernel]] "
          "decltype(unary_v<float, Exp>) unary_v<float, Exp>; "
          "template [[host_name(\"v_\" \"Exp\" \"float16\")]] [[kernel]] "
          "decltype(unary_v<half, Exp>) unary_v<half, Exp>;");
  const std::string out = pp(src);
  check(out.find("[[host_name(\"v_\" \"Abs\" \"float32\")]] [[kernel]]") != std::string::npos,
        "MLX exact spelling", out);
  check(line_of(out, "Exp") == 8, "MLX expansion reported at the invocation line");

  // ggml-style token pasting into names.
  expands("ggml-style kernel names",
          "#define KNAME(op, t) kernel_##op##_##t\n"
          "#define DECL(op, t) kernel void KNAME(op, t)(device t* x)\n"
          "DECL(add, float);",
          "kernel void kernel_add_float(device float* x);");
}

void test_macro_semantics() {
  expands("object-like", "#define N 4\nint a[N];", "int a[4];");
  expands("empty define", "#define E\na E b", "a b");
  expands("self-reference painted blue", "#define foo foo + 1\nfoo", "foo + 1");
  expands("mutual recursion", "#define a b\n#define b a\na b", "a b");
  expands("function mutual recursion", "#define f(x) g(x)\n#define g(x) f(x)\nf(1) g(2)", "f(1) g(2)");
  expands("painted token stays blue",
          "#define f(a) a*g\n#define g(a) f(a)\nf(2)(9)", "2*9*g");
  expands("function-like name alone", "#define f(x) [x]\nint f; f = 1; f (2)", "int f; f = 1; [2]");
  expands("function-like name at end of expansion takes args from the source",
          "#define f(x) [x]\n#define g f\ng(3)", "[3]");
  expands("args expanded before substitution", "#define ONE 1\n#define id(x) x\nid(ONE)", "1");
  expands("args not expanded next to # and ##",
          "#define ONE 1\n#define s(x) #x\n#define c(x) x ## 2\ns(ONE) c(ONE)", "\"ONE\" ONE2");
  expands("nested parentheses and commas in args", "#define two(a, b) <a|b>\ntwo((1, 2), f(3, 4))",
          "<(1, 2)|f(3, 4)>");
  expands("empty argument", "#define one(x) [x]\none() one( )", "[] []");
  expands("zero-parameter macro", "#define z() 0\nz() z( )", "0 0");
  expands("#undef", "#define X 1\nX\n#undef X\nX", "1 X");
  expands("redefinition replaces", "#define X 1\n#define X 1\nX\n#define X 2\nX", "1 2");
  expands("redefine object as function", "#define X 1\n#define X(a) a\nX(5)", "5");
  expands("pasting builds a macro name", "#define AB done\n#define cat(a, b) a ## b\ncat(A, B)", "done");
  expands("pasting operators", "#define cat(a, b) a ## b\ncat(<, <=) cat(-, >) cat(#, #)", "<<= -> ##");
  expands("pasting numbers", "#define cat(a, b) a ## b\ncat(1, .5f) cat(0x, 1p-3)", "1.5f 0x1p-3");
  expands("stringify escapes", "#define s(x) #x\ns(\"a\\n\" 'x' '\"' a   b\n)",
          "\"\\\"a\\\\n\\\" 'x' '\\\"' a b\"");
  const std::string esc = pp("#define s(x) #x\ns(\"a\\n\" '\\'')");
  check(esc.find("\"\\\"a\\\\n\\\" '\\\\''\"") != std::string::npos, "stringify escapes exact", esc);
  expands("stringify whitespace", "#define s(x) #x\ns(  a  +\n   b  )", "\"a + b\"");
  expands("__COUNTER__", "__COUNTER__ __COUNTER__ __COUNTER__", "0 1 2");
  expands("__cplusplus", "__cplusplus", "201402L");
  expands("__LINE__", "a\n\n__LINE__\n#define L __LINE__\nL", "a 3 5");
  expands("__FILE__", "__FILE__", "\"<string>\"");
  expands("macro invocation spanning lines", "#define f(a, b) a+b\nf(1,\n 2\n)\nx", "1+2 x");
  expands("function-like name and ( on later lines", "#define f(a) [a]\nf\n\n(1)", "[1]");
  expands("directive inside invocation", "#define f(a) [a]\nf(1\n#define Y 2\nY)", "[1 2]");
  expands("macro-made # at line start is no directive", "#define H #\n#define HH # ## #\nH define x\nHH y", " # define x ## y");
  expands("_Pragma passes through", "#define P _Pragma(\"unroll\") x\nP", "_Pragma(\"unroll\") x");

  PreprocessOptions o;
  o.predefined = {{"__METAL_VERSION__", "310"}, {"__HAVE_X__", ""}};
  o.defines = {{"N", "8"}, {"SQ(x)", "((x)*(x))"}, {"__METAL_VERSION__", "320"}};
  expands("predefined and defines", "__METAL_VERSION__ N SQ(N) [__HAVE_X__]", "320 8 ((8)*(8)) []", o);

  // Tokens that would merge are kept apart.
  const std::string sp = pp("#define P +\n#define E\n+P -E- x/E*y*/ a\n#define cat(a,b) a##b\ncat(x,1)cat(y,2)");
  check(sp.find("+ +") != std::string::npos && sp.find("- -") != std::string::npos &&
            sp.find("x1 y2") != std::string::npos && sp.find("/*") == std::string::npos,
        "spacing keeps tokens apart", sp);
  check_eq("norm of spacing", norm(sp), "+ + - - x / * y * / a x1 y2");
}

void test_conditionals() {
  expands("#if/#elif/#else",
          "#if 0\na\n#elif 1\nb\n#elif 1\nc\n#else\nd\n#endif\n"
          "#if 0\ne\n#else\nf\n#endif",
          "b f");
  expands("#ifdef/#ifndef", "#define X\n#ifdef X\na\n#endif\n#ifndef X\nb\n#endif\n#ifdef Y\nc\n#endif",
          "a");
  expands("#elifdef/#elifndef",
          "#define X\n#if 0\n#elifdef X\na\n#endif\n#if 0\n#elifndef X\nb\n#else\nc\n#endif", "a c");
  expands("nested skipped groups",
          "#if 0\n#if 1\na\n#else\nb\n#endif\n#bogus directive\n#elif 0\n#else\nc\n#endif", "c");
  expands("skipped group with stray quotes", "#if 0\ndon't \"care\n#endif\nok", "ok");
  expands("elif not evaluated after a taken group", "#if 1\na\n#elif 1/0\nb\n#endif", "a");
  expands("include guard", "#ifndef G\n#define G\nonce\n#endif\n#ifndef G\ntwice\n#endif", "once");

  struct Case {
    const char* expr;
    bool value;
  };
  const Case cases[] = {
      {"1 + 2 * 3 == 7", true},
      {"(1 + 2) * 3 == 9", true},
      {"-1 < 0", true},
      {"-1 < 0u", false},
      {"0xFFFFFFFFFFFFFFFF == -1", true},
      {"18446744073709551615u == -1", true},
      {"(1 ? -1 : 0u) > 0", true},
      {"'a' == 97", true},
      {"'\\n' == 10 && '\\x41' == 65 && '\\0' == 0", true},
      {"'\\377' < 0", true},
      {"10 / 3 == 3 && -7 / 2 == -3 && -7 % 3 == -1", true},
      {"(1 << 63) < 0", true},
      {"(1u << 63) > 0", true},
      {"~0u == 18446744073709551615u", true},
      {"(-16 >> 2) == -4", true},
      {"0x10 == 16 && 010 == 8 && 0b101 == 5", true},
      {"1L == 1 && 2ul == 2 && 3LL == 3 && 4ull == 4 && 5lu == 5", true},
      {"(3 & 5) == 1 && (3 | 5) == 7 && (3 ^ 5) == 6", true},
      {"!0 && !!7 == 1", true},
      {"1 || 0 && 0", true},
      {"(1 || 0) && 0", false},
      {"0 && (1 / 0)", false},
      {"1 || (1 / 0)", true},
      {"0 ? 1 / 0 : 2", true},
      {"1 ? 2 : 1 / 0", true},
      {"UNDEFINED_NAME", false},
      {"UNDEFINED_NAME == 0", true},
      {"true && !false", true},
      {"defined DEF && defined(DEF) && !defined NOPE && !defined(NOPE)", true},
      {"DEF == 7 && FN(3) == 6", true},
      {"ISDEF", true},
      {"__has_include(<metal_stdlib>) && __has_include(<simd/simd.h>)", true},
      {"__has_include(\"no_such_header.h\")", false},
      {"__has_include(<no_such_header.h>)", false},
      {"defined(__has_include) && defined __has_feature", true},
      {"__has_feature(cxx_rvalue_references) || __has_extension(x) || __has_builtin(__builtin_expect)", false},
      {"__has_attribute(noinline) || __has_cpp_attribute(nodiscard)", false},
      {"__has_cpp_attribute(deprecated) >= 201309", true},
      {"2 > 1 > 0", true},
      {"(2, 0)", false},
      {"1 ? 0 : 1 ? 1 : 1", false},
      {"-9223372036854775807 - 1 < 0", true},
      {"9223372036854775807 + 1 < 0", true},
  };
  for (const Case& c : cases) {
    const std::string src = std::string("#define DEF 7\n#define FN(x) ((x) * 2)\n#define ISDEF defined(DEF)\n") +
                            "#if " + c.expr + "\nyes\n#else\nno\n#endif\n";
    expands(std::string("#if ") + c.expr, src, c.value ? "yes" : "no");
  }

  fails("division by zero", "#if 1 / 0\n#endif", "division by zero");
  fails("#if with no expression", "#if\n#endif", "no expression");
  fails("floating constant", "#if 1.0\n#endif", "floating");
  fails("unbalanced parentheses", "#if (1\n#endif", "expected ')'");
  fails("garbage after expression", "#if 1 2\n#endif", "missing binary operator");
  fails("#endif without #if", "a\n#endif\n", "<string>:2: error: #endif without #if");
  fails("#else without #if", "#else\n", "#else without #if");
  fails("#elif after #else", "#if 1\n#else\n#elif 1\n#endif\n", "#elif after #else");
  fails("#else after #else", "#if 1\n#else\n#else\n#endif\n", "#else after #else");
  fails("unterminated #if", "a\n#if 1\nb\n", "<string>:2: error: unterminated");
  fails("#ifdef without name", "#ifdef\n#endif", "no macro name");
}

void test_directives() {
  fails("#error", "a\n#error stop \"here\" now\n", "<string>:2: error: #error stop \"here\" now");
  fails("#error in a named file", "\n\n#error boom", "k.metal:3: error: #error boom", {}, "k.metal");
  try {
    pp("\n#error x", {}, "dir/k.metal");
    check(false, "CompileError file/line");
  } catch (const CompileError& e) {
    check(e.file() == "dir/k.metal" && e.line() == 2, "CompileError carries file and line");
  }
  expands("#warning ignored", "#warning careful\nok", "ok");
  expands("#error in skipped group", "#if 0\n#error no\n#endif\nok", "ok");
  expands("null directive", "#\n# \nok", "ok");
  fails("unknown directive", "#frobnicate\n", "invalid preprocessing directive #frobnicate");
  fails("macro name must be an identifier", "#define 1 2\n", "macro names must be identifiers");
  fails("# without parameter", "#define s(x) #y\n", "'#' is not followed by a macro parameter");
  fails("## at the end", "#define c(x) x ##\n", "'##' cannot appear");
  fails("bad paste", "#define cat(a, b) a ## b\ncat(+, /)\n", "pasting \"+\" and \"/\"");
  fails("too many args", "#define f(a) a\nf(1, 2)\n", "passed 2 arguments, but takes just 1");
  fails("too few args", "#define f(a, b) a\nf(1)\n", "requires 2 arguments, but only 1 given");
  fails("unterminated invocation", "#define f(a) a\nx\nf(1,\n2\n", "<string>:3: error: unterminated argument list");
  fails("define defined", "#define defined 1\n", "\"defined\" cannot be used");

  // #pragma passes through on its own line, mapped to its source line.
  const std::string out = pp("a\n#pragma unroll(4)\nb\n#pragma clang loop vectorize(enable)\n");
  check(out.find("\n#pragma unroll(4)\n") != std::string::npos &&
            out.find("\n#pragma clang loop vectorize(enable)\n") != std::string::npos,
        "#pragma passes through", out);
  Lexed l = lex_preprocessed(out, "<string>");
  check(l.tokens.size() == 5 && l.tokens[1].kind == TokenKind::pragma &&
            l.tokens[1].text == "pragma unroll(4)" && l.tokens[1].line == 2 &&
            l.tokens[2].text == "b" && l.tokens[2].line == 3 && l.tokens[3].line == 4,
        "pragma positions", out);

  // #line in the input.
  const std::string lined = pp("a\n#line 100 \"other.metal\"\nb __LINE__ __FILE__\nc\n#line 7\nd");
  std::string file;
  check(line_of(lined, "b", &file) == 100 && file == "other.metal", "#line moves positions", lined);
  check(norm(lined) == "a b 100 \"other.metal\" c d", "#line affects __LINE__/__FILE__", lined);
  check(line_of(lined, "d", &file) == 7 && file == "other.metal", "#line without file", lined);
  const std::string gnu = pp("# 42 \"g.metal\" 1\nx __LINE__");
  check(line_of(gnu, "x", &file) == 42 && file == "g.metal" && norm(gnu) == "x 42",
        "GNU line marker in input", gnu);
}

void test_output_format() {
  const std::string out = pp("a\nb\n#define X 1\n\n\n\n\n\n\n\n\n\n\n\nX\n", {}, "dir/k.metal");
  check(out.rfind("#line 1 \"dir/k.metal\"\n", 0) == 0, "first line is #line 1", out);
  check(line_of(out, "a") == 1 && line_of(out, "b") == 2 && line_of(out, "1") == 15,
        "positions after blank lines / directives", out);

  // String sources.
  check(pp("x").rfind("#line 1 \"<string>\"\n", 0) == 0, "string source path");
  check(preprocess("x", "", {}).text.rfind("#line 1 \"<string>\"\n", 0) == 0, "empty path");
  // Backslashes and quotes are escaped in #line.
  const std::string esc = preprocess("x", "C:\\a\"b.metal", {}).text;
  check(esc.rfind("#line 1 \"C:\\\\a\\\"b.metal\"\n", 0) == 0, "#line escapes", esc);
  std::string f;
  line_of(esc, "x", &f);
  check(f == "C:\\a\"b.metal", "lex_preprocessed unescapes #line file names", f);

}

void test_multiline_positions() {
  const std::string out = pp("#define f(a, b) a + b\nq f(1,\n2\n) r\ns\n");
  check(line_of(out, "q") == 2 && line_of(out, "2") == 2 && line_of(out, "+") == 2 &&
            line_of(out, "r") == 4 && line_of(out, "s") == 5,
        "multi-line invocation positions", out);
  // At most one output line per logical source line.
  std::size_t lines = 0;
  for (char c : out) lines += c == '\n';
  check(lines <= 6, "no more output lines than source lines", out);
}

struct TempDir {
  fs::path root;
  TempDir() {
    root = fs::temp_directory_path() / ("metalgpu_pp_test_" + std::to_string(unique_suffix()));
    fs::remove_all(root);
    fs::create_directories(root);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  void write(const std::string& rel, const std::string& text) const {
    fs::path p = root / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
  }
  static long unique_suffix() {
    return static_cast<long>(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000007);
  }
};

void test_includes() {
  TempDir t;
  const std::string root = t.root.string();
  t.write("shaders/main.metal",
          "#include <metal_stdlib>\n"
          "#include <simd/simd.h>\n"
          "#include \"local.h\"\n"
          "#include <lib.h>\n"
          "#include \"sub/nested.h\"\n"
          "#include \"local.h\"\n"
          "#include \"guarded.h\"\n"
          "#include \"guarded.h\"\n"
          "#define HDR \"macro.h\"\n"
          "#include HDR\n"
          "#if __has_include(\"local.h\") && __has_include(<lib.h>) && !__has_include(<nope.h>)\n"
          "has_ok\n"
          "#endif\n"
          "end __LINE__\n");
  t.write("shaders/local.h", "#pragma once\nlocal_tok __FILE__ __LINE__\n");
  t.write("shaders/sub/nested.h", "#include \"sibling.h\"\nnested_tok\n");
  t.write("shaders/sub/sibling.h", "sibling_tok\n");
  t.write("inc/lib.h", "\n\nlib_tok\n");
  t.write("shaders/guarded.h", "#ifndef GUARDED_H\n#define GUARDED_H\nguarded_tok\n#endif\n");
  t.write("shaders/macro.h", "macro_tok\n");
  const std::string main_path = root + "/shaders/main.metal";
  std::ifstream in(main_path);
  std::string src((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  PreprocessOptions o;
  o.include_dirs = {root + "/inc"};
  try {
    PreprocessResult r = preprocess(src, main_path, o);
    const std::string local = root + "/shaders/local.h";
    check_eq("includes expand",
             norm(r.text),
             "local_tok \"" + local + "\" 2 lib_tok sibling_tok nested_tok guarded_tok macro_tok has_ok end 14");
    std::string file;
    check(line_of(r.text, "lib_tok", &file) == 3 && file == root + "/inc/lib.h", "include positions", r.text);
    check(line_of(r.text, "end", &file) == 14 && file == main_path, "position after includes", r.text);
    check(line_of(r.text, "sibling_tok", &file) == 1 && file == root + "/shaders/sub/sibling.h",
          "quote include relative to the including file", r.text);
    check(!r.files.empty() && r.files[0] == main_path && r.files.size() == 7, "files list",
          [&] {
            std::string s;
            for (auto& f : r.files) s += f + "\n";
            return s;
          }());
  } catch (const CompileError& e) {
    check(false, "includes", e.what());
  }

  fails("missing include", "a\n#include \"nope.h\"\n", "k.metal:2: error: 'nope.h' file not found", o,
        root + "/shaders/k.metal");
  fails("missing angle include", "\n\n#include <nope/x.h>\n", "<string>:3: error: 'nope/x.h' file not found", o);

  // Custom builtin-header rule.
  PreprocessOptions custom = o;
  custom.is_builtin_header = [](std::string_view h) { return h == "runtime.h"; };
  expands("custom builtin rule", "#include <runtime.h>\nok", "ok", custom);
  fails("custom rule replaces the default", "#include <metal_stdlib>\n", "'metal_stdlib' file not found", custom);

  // 6.10.3.5 example 4's #include xstr(INCFILE(2).h).
  t.write("shaders/vers2.h", "vers2_tok\n");
  expands("#include xstr(INCFILE(2).h)",
          "#define str(s) # s\n#define xstr(s) str(s)\n#define INCFILE(n) vers ## n\n#include xstr(INCFILE(2).h)\n",
          "vers2_tok", [&] {
            PreprocessOptions p;
            p.include_dirs = {root + "/shaders"};
            return p;
          }());

  // Unbounded recursion hits the depth limit; bounded recursion works.
  t.write("shaders/self.h", "#include \"self.h\"\n");
  fails("include depth limit", "#include \"self.h\"\n", "nested too deeply", o, root + "/shaders/r.metal");
  t.write("shaders/count.h", "#if __COUNTER__ < 150\n#include \"count.h\"\n#else\nbottom\n#endif\n");
  expands("bounded recursion", "#define DEPTH 0\n#include \"" + root + "/shaders/count.h\"\n", "bottom", o);

  // Include from a string source resolves against the current directory.
  const fs::path old = fs::current_path();
  fs::current_path(t.root / "shaders");
  expands("string source includes from cwd", "#include \"macro.h\"", "macro_tok");
  fs::current_path(old);

  // Unterminated #if inside an include is reported in that file.
  t.write("shaders/open.h", "\n#if 1\n");
  fails("unterminated #if in include", "#include \"open.h\"\n", "open.h:2: error: unterminated", o,
        root + "/shaders/m.metal");
}

void test_lexer() {
  const std::string text =
      "#line 1 \"a.metal\"\n"
      "x = 1.0f + 0x1p-3 + 1e+5 + 2u + 1.5h + 0xFFul + .5;\n"
      "a >>= b <<= c ... d ->* e :: f ## g [[kernel]] h->i++ --j\n"
      "s = u8\"x\\\"y\" L'c' '\\n' \"a\\\\\" R\"(raw)\"; // comment\n"
      "/* block\n comment */ k\n"
      "#line 50 \"b.metal\"\n"
      "  m\n"
      "#pragma unroll\n"
      "# 7 \"a.metal\" 2\n"
      "n _Pragma(\"x\")\n";
  Lexed l = lex_preprocessed(text, "start");
  std::vector<std::string> spell;
  for (const Token& t : l.tokens) spell.push_back(t.text);
  auto find = [&](const std::string& s) -> const Token* {
    for (const Token& t : l.tokens)
      if (t.text == s) return &t;
    return nullptr;
  };
  auto is = [&](const std::string& s, TokenKind k, int line, const std::string& file) {
    const Token* t = find(s);
    check(t && t->kind == k && t->line == line && l.files[t->file] == file, "lex token " + s,
          t ? "  line " + std::to_string(t->line) + " file " + l.files[t->file] : "  missing");
  };
  is("x", TokenKind::identifier, 1, "a.metal");
  for (const char* n : {"1.0f", "0x1p-3", "1e+5", "2u", "1.5h", "0xFFul", ".5"}) is(n, TokenKind::number, 1, "a.metal");
  for (const char* p : {">>=", "<<=", "...", "->*", "::", "##", "->", "++", "--"}) is(p, TokenKind::punct, 2, "a.metal");
  is("u8\"x\\\"y\"", TokenKind::string_literal, 3, "a.metal");
  is("L'c'", TokenKind::char_literal, 3, "a.metal");
  is("'\\n'", TokenKind::char_literal, 3, "a.metal");
  is("\"a\\\\\"", TokenKind::string_literal, 3, "a.metal");
  is("R\"(raw)\"", TokenKind::string_literal, 3, "a.metal");
  is("k", TokenKind::identifier, 5, "a.metal");
  is("m", TokenKind::identifier, 50, "b.metal");
  is("pragma unroll", TokenKind::pragma, 51, "b.metal");
  is("n", TokenKind::identifier, 7, "a.metal");
  is("_Pragma", TokenKind::identifier, 7, "a.metal");
  check(find("comment") == nullptr && find("block") == nullptr, "comments skipped");
  // `[[` is two tokens.
  int brackets = 0;
  for (const Token& t : l.tokens) brackets += t.text == "[";
  check(brackets == 2, "[[ lexes as two [");
  check(l.tokens.back().kind == TokenKind::end && l.files.size() == 3 && l.files[0] == "start",
        "end token and files");
  // space_before / line_start.
  const Token* eq = find("=");
  const Token* m = find("m");
  const Token* i = find("i");
  const Token* plus = find("++");
  check(eq && eq->space_before && !eq->line_start, "space_before set");
  check(i && !i->space_before && plus && !plus->space_before, "space_before clear");
  check(m && m->line_start && find("x")->line_start, "line_start");
  Lexed indented = lex_preprocessed("a\n # define x\n", "f");
  check(indented.tokens.size() == 5 && indented.tokens[1].text == "#", "indented # is an ordinary token");
  // Errors.
  try {
    lex_preprocessed("a\n#define X 1\n", "f.metal");
    check(false, "lex_preprocessed rejects other directives");
  } catch (const CompileError& e) {
    check(std::string(e.what()).find("f.metal:2") != std::string::npos, "lexer error position", e.what());
  }
  // Splices in raw text still count lines.
  Lexed s = lex_preprocessed("a \\\n b\nc", "f");
  check(s.tokens.size() == 4 && s.tokens[1].line == 2 && s.tokens[2].line == 3, "splices count lines");
}

std::string heavy_source(int lines) {
  std::string src =
      "#define CAT_(a, b) a ## b\n#define CAT(a, b) CAT_(a, b)\n"
      "#define STR_(x) #x\n#define STR(x) STR_(x)\n"
      "#define SQ(x) ((x) * (x))\n#define MAX(a, b) ((a) > (b) ? (a) : (b))\n"
      "#define instantiate_kernel(name, func, ...) \\\n"
      "  template [[host_name(name)]] [[kernel]] decltype(func<__VA_ARGS__>) func<__VA_ARGS__>;\n"
      "#define instantiate_unary(op, tname, type) instantiate_kernel(\"v_\" #op #tname, unary_v, type, op)\n"
      "#define LOG(fmt, ...) printf(fmt, ## __VA_ARGS__)\n";
  for (int i = 0; i < lines; ++i) {
    switch (i % 4) {
      case 0: src += "instantiate_unary(Op" + std::to_string(i) + ", float32, float)\n"; break;
      case 1: src += "float CAT(v, " + std::to_string(i) + ") = MAX(SQ(a + b), SQ(c)) + SQ(MAX(d, e));\n"; break;
      case 2: src += "const char* s" + std::to_string(i) + " = STR(CAT(x, y)); LOG(\"%d\", i, j);\n"; break;
      default: src += "  out[gid] = in[gid] * 2.0f + MAX(1, 2); // comment\n"; break;
    }
  }
  return src;
}

void test_speed() {
  const std::string src = heavy_source(10000);
  auto t0 = std::chrono::steady_clock::now();
  PreprocessResult r = preprocess(src, "<string>", {});
  auto t1 = std::chrono::steady_clock::now();
  const double pp_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  // Lexing the (token-dense) output: best of a few runs, as the translator sees it.
  double lex_s = 1e9;
  std::size_t tokens = 0;
  for (int rep = 0; rep < 5; ++rep) {
    t0 = std::chrono::steady_clock::now();
    Lexed l = lex_preprocessed(r.text, "x");
    t1 = std::chrono::steady_clock::now();
    lex_s = std::min(lex_s, std::chrono::duration<double>(t1 - t0).count());
    tokens = l.tokens.size();
  }
  std::printf("speed: preprocess 10,000 macro-heavy lines (%zu KB in, %zu KB out): %.1f ms\n",
              src.size() / 1024, r.text.size() / 1024, pp_ms);
  std::printf("speed: lex_preprocessed of that output: %.2f ms = %.0f MB/s (%zu tokens)\n",
              lex_s * 1e3, double(r.text.size()) / 1e6 / lex_s, tokens);
  check(norm(r.text).find("decltype(unary_v<float, Op0>)") != std::string::npos ||
            r.text.find("decltype(unary_v<float, Op0>)") != std::string::npos,
        "heavy source expands", r.text.substr(0, 400));
}

}  // namespace

int main() {
  const std::pair<const char*, void (*)()> tests[] = {
      {"standard examples", test_standard_examples},
      {"variadic", test_variadic},
      {"mlx macros", test_mlx_macros},
      {"macro semantics", test_macro_semantics},
      {"conditionals", test_conditionals},
      {"directives", test_directives},
      {"output format", test_output_format},
      {"multi-line positions", test_multiline_positions},
      {"includes", test_includes},
      {"lexer", test_lexer},
      {"speed", test_speed},
  };
  for (const auto& [name, fn] : tests) {
    try {
      fn();
    } catch (const std::exception& e) {
      ++failures;
      std::cout << "FAIL: " << name << " threw: " << e.what() << "\n";
    }
  }
  std::cout << (failures ? "FAILED " : "OK ") << checks - failures << "/" << checks << " checks passed\n";
  return failures ? 1 : 0;
}
