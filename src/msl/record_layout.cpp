#include "msl/record_layout.hpp"

#include <set>
#include <string>
#include <unordered_map>

namespace metalgpu::msl {
namespace {

// First words of member declarations that declare no data member (or a static one).
const std::set<std::string, std::less<>> kNotDataMember = {
    "static", "typedef", "using", "friend", "template", "enum", "struct", "class", "union",
    "static_assert", "constexpr", "inline", "virtual", "operator", "explicit", "~"};
const std::set<std::string, std::less<>> kAccess = {"public", "private", "protected"};

class RecordMembers {
 public:
  RecordMembers(const Lexed& lexed, const Structure& s) : toks_(lexed.tokens), s_(s) {}

  std::vector<MemberType> run() {
    const auto& defs = s_.definitions();
    // Per record, its member functions and nested records (first token -> last): their
    // tokens are no data members.
    std::vector<std::unordered_map<std::size_t, std::size_t>> owned(defs.size());
    for (const Definition& d : defs)
      if (d.owner >= 0) owned[std::size_t(d.owner)].emplace(d.head, d.close);
    for (std::size_t r = 0; r < defs.size(); ++r)
      if (defs[r].kind == Definition::record) {
        anonymous_ = defs[r].name.empty() && defs[r].owner >= 0 && anonymous_struct(defs[r]);
        scan_body(defs[r].open, defs[r].close, owned[r]);
      }
    return std::move(out_);
  }

 private:
  bool is(std::size_t i, const char* s) const { return i < toks_.size() && toks_[i].text == s; }

  // `struct { ... };` inside a record: no name, and no declarator after its body.
  bool anonymous_struct(const Definition& d) const {
    bool keyword = false;
    for (std::size_t k = d.head; k < d.open; ++k) keyword = keyword || is(k, "struct") || is(k, "class");
    return keyword && is(d.close + 1, ";");
  }

  void scan_body(std::size_t open, std::size_t close, const std::unordered_map<std::size_t, std::size_t>& skip) {
    std::size_t stmt = open + 1;
    int depth = 0;  // (, [ and { (brace initializers)
    for (std::size_t i = open + 1; i < close; ++i) {
      if (const auto d = skip.find(i); d != skip.end()) {
        i = d->second;     // a definition ends the statement (`struct {...} x;` declares nothing
        stmt = i + 1;      // whose alignment is not already its record's)
        continue;
      }
      if (is(i, "(") || is(i, "[") || is(i, "{")) ++depth;
      else if (is(i, ")") || is(i, "]") || is(i, "}")) --depth;
      else if (is(i, ":") && depth == 0 && i > stmt && kAccess.count(toks_[i - 1].text)) stmt = i + 1;
      else if (is(i, ";") && depth == 0) {
        member(stmt, i);
        stmt = i + 1;
      }
    }
  }

  // The member declaration [b, e) (without its ';'): `T name`, `T name[4]`, `T a = x, b{y}`.
  void member(std::size_t b, std::size_t e) {
    if (b >= e || kNotDataMember.count(toks_[b].text)) return;
    if (is(b, "mutable")) ++b;
    if (b >= e || (toks_[b].kind != TokenKind::identifier && !is(b, "::"))) return;
    int angle = 0, depth = 0;
    std::size_t name_end = e;  // the first declarator's `[`, `=`, `{` or `,`
    bool in_init = false;      // inside an initializer (until the next declarator)
    for (std::size_t k = b; k < e; ++k) {
      const std::string& t = toks_[k].text;
      const bool first = name_end == e;
      if (t == "(" || t == "[" || t == "{") {
        if (t == "(" && first && depth == 0 && angle == 0) return;  // a function, or a pointer to one
        if (first && depth == 0 && angle == 0 && t != "(") name_end = k;
        if (t == "{" && depth == 0) in_init = true;
        ++depth;
      } else if (t == ")" || t == "]" || t == "}") {
        --depth;
      } else if (depth == 0 && first && (t == "<" || t == ">" || t == ">>")) {
        angle += t == "<" ? 1 : t == ">" ? -1 : -2;
      } else if (depth == 0 && angle == 0) {
        if (t == "=" || t == ",") {
          if (first) name_end = k;
          in_init = t == "=";
        } else if (!in_init && (t == "*" || t == "&" || t == "&&" || t == ":" || t == "...")) {
          return;  // pointers and references (aligned as C++ aligns them), bit-fields
        }
      }
    }
    if (name_end <= b + 1 || toks_[name_end - 1].kind != TokenKind::identifier) return;
    out_.push_back({b, name_end - 1, anonymous_});
  }

  const std::vector<Token>& toks_;
  const Structure& s_;
  std::vector<MemberType> out_;
  bool anonymous_ = false;  // the record being scanned is an anonymous struct
};

}  // namespace

std::vector<MemberType> record_member_types(const Lexed& lexed, const Structure& structure) {
  return RecordMembers(lexed, structure).run();
}

}  // namespace metalgpu::msl
