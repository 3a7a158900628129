// Element types of buffers, spelled as in the Metal Shading Language.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "metalgpu/export.hpp"

namespace metalgpu {

enum class Scalar : std::uint8_t {
  boolean, int8, uint8, int16, uint16, int32, uint32, int64, uint64,
  float16, bfloat16, float32, float64,
};

// A scalar or a Metal vector of 2, 3 or 4 lanes. A 3-lane vector occupies four lanes of
// storage, as in Metal (`float3` is 16 bytes).
struct METALGPU_API DType {
  Scalar scalar = Scalar::float32;
  std::uint8_t lanes = 1;

  std::size_t scalar_size() const noexcept;
  std::size_t size() const noexcept;  // bytes per element, padding included
  bool is_integer() const noexcept;
  bool is_signed() const noexcept;
  bool is_float() const noexcept;
  std::string name() const;  // "int", "float4", "half", ...

  // Metal names and their aliases: "int" "uint" "short" "ushort" "char" "uchar" "long" "ulong"
  // "half" "bfloat" "float" "double" "bool" "longlong" "ulonglong" "byte" "ubyte", optionally
  // followed by a lane count ("float4"); also C names (uint32_t, int8_t, unsigned int, ...).
  static std::optional<DType> parse(std::string_view name);

  friend bool operator==(const DType&, const DType&) = default;
};

}  // namespace metalgpu
