#include "metalgpu/dtype.hpp"

#include <array>
#include <utility>

namespace metalgpu {
namespace {

struct NamedScalar {
  std::string_view name;
  Scalar scalar;
};

// Metal spellings first; then C spellings the translator meets in kernel signatures.
constexpr std::array<NamedScalar, 37> kScalarNames = {{
    {"bool", Scalar::boolean},   {"char", Scalar::int8},        {"uchar", Scalar::uint8},
    {"short", Scalar::int16},    {"ushort", Scalar::uint16},    {"int", Scalar::int32},
    {"uint", Scalar::uint32},    {"long", Scalar::int64},       {"ulong", Scalar::uint64},
    {"half", Scalar::float16},   {"bfloat", Scalar::bfloat16},  {"float", Scalar::float32},
    {"double", Scalar::float64}, {"byte", Scalar::int8},        {"ubyte", Scalar::uint8},
    {"longlong", Scalar::int64}, {"ulonglong", Scalar::uint64}, {"int8_t", Scalar::int8},
    {"uint8_t", Scalar::uint8},  {"int16_t", Scalar::int16},    {"uint16_t", Scalar::uint16},
    {"int32_t", Scalar::int32},  {"uint32_t", Scalar::uint32},  {"int64_t", Scalar::int64},
    {"uint64_t", Scalar::uint64}, {"signed char", Scalar::int8}, {"unsigned char", Scalar::uint8},
    {"unsigned short", Scalar::uint16}, {"unsigned int", Scalar::uint32},
    {"unsigned", Scalar::uint32}, {"unsigned long", Scalar::uint64}, {"long long", Scalar::int64},
    {"unsigned long long", Scalar::uint64}, {"bfloat16_t", Scalar::bfloat16},
    {"float16_t", Scalar::float16}, {"float32_t", Scalar::float32}, {"size_t", Scalar::uint64},
}};

constexpr std::string_view canonical(Scalar s) {
  switch (s) {
    case Scalar::boolean: return "bool";
    case Scalar::int8: return "char";
    case Scalar::uint8: return "uchar";
    case Scalar::int16: return "short";
    case Scalar::uint16: return "ushort";
    case Scalar::int32: return "int";
    case Scalar::uint32: return "uint";
    case Scalar::int64: return "long";
    case Scalar::uint64: return "ulong";
    case Scalar::float16: return "half";
    case Scalar::bfloat16: return "bfloat";
    case Scalar::float32: return "float";
    case Scalar::float64: return "double";
  }
  return "?";
}

}  // namespace

std::size_t DType::scalar_size() const noexcept {
  switch (scalar) {
    case Scalar::boolean: case Scalar::int8: case Scalar::uint8: return 1;
    case Scalar::int16: case Scalar::uint16: case Scalar::float16: case Scalar::bfloat16: return 2;
    case Scalar::int32: case Scalar::uint32: case Scalar::float32: return 4;
    case Scalar::int64: case Scalar::uint64: case Scalar::float64: return 8;
  }
  return 0;
}

std::size_t DType::size() const noexcept { return scalar_size() * (lanes == 3 ? 4 : lanes); }

bool DType::is_integer() const noexcept {
  return scalar != Scalar::boolean && !is_float();
}

bool DType::is_signed() const noexcept {
  switch (scalar) {
    case Scalar::int8: case Scalar::int16: case Scalar::int32: case Scalar::int64: return true;
    default: return is_float();
  }
}

bool DType::is_float() const noexcept {
  return scalar == Scalar::float16 || scalar == Scalar::bfloat16 || scalar == Scalar::float32 ||
         scalar == Scalar::float64;
}

std::string DType::name() const {
  std::string n(canonical(scalar));
  if (lanes > 1) n += char('0' + lanes);
  return n;
}

std::optional<DType> DType::parse(std::string_view name) {
  for (std::string_view prefix : {"metal::", "::"})
    if (name.substr(0, prefix.size()) == prefix) name.remove_prefix(prefix.size());
  std::uint8_t lanes = 1;
  if (!name.empty() && name.back() >= '2' && name.back() <= '4') {
    // "float4" is a vector; "int32_t" style names end in a digit too, so try whole first.
    for (const auto& n : kScalarNames)
      if (n.name == name) return DType{n.scalar, 1};
    lanes = std::uint8_t(name.back() - '0');
    name.remove_suffix(1);
    if (name.substr(0, 7) == "packed_") return std::nullopt;  // packed vectors: no buffer dtype
  }
  for (const auto& n : kScalarNames)
    if (n.name == name) return DType{n.scalar, lanes};
  return std::nullopt;
}

}  // namespace metalgpu
