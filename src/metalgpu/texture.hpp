// Textures and samplers: images kernels read, write and sample through texture1d/2d/3d<T>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metalgpu/buffer.hpp"
#include "metalgpu/export.hpp"

namespace metalgpu {

enum class TextureType { tex1d, tex1d_array, tex2d, tex2d_array, tex3d };

// A texel format named like Metal's pixel formats ("rgba8unorm", "r32float", ...).
struct TextureFormat {
  std::string name;
  unsigned code = 0;       // MG_TEXEL_FORMAT(kind, channels), as kernels see it
  unsigned channels = 0;   // 1, 2 or 4
  unsigned channel_bytes = 0;
  char numpy_kind = 'f';   // 'f' float, 'u' unsigned, 'i' signed: the numpy dtype of .contents
  char value_class = 'f';  // what kernels read it as: 'f' float/half, 'u' uint, 'i' int
  unsigned bytes_per_texel() const { return channels * channel_bytes; }

  // Throws std::invalid_argument listing the known names.
  METALGPU_API static TextureFormat parse(const std::string& name);
  METALGPU_API static std::vector<std::string> names();
};

METALGPU_API const char* texture_type_name(TextureType t);

struct TextureDesc {
  TextureType type = TextureType::tex2d;
  std::uint32_t width = 1, height = 1, depth = 1, array_length = 1;
  std::string format = "rgba32float";
  Storage storage = Storage::shared;
};

namespace detail {
struct TextureState;
}
class Allocation;

// A handle to a texture (copies share it). Memory is linear rows of texels: texel (x, y) of
// slice s (depth index or array layer) at s*slice_pitch + y*row_pitch + x*bytes_per_texel,
// rows and slices packed. After release() (or once its Interface is gone) every use throws
// ReleasedError; views taken earlier keep the memory alive.
class METALGPU_API Texture {
 public:
  Texture() = default;
  explicit Texture(std::shared_ptr<detail::TextureState> state) : state_(std::move(state)) {}

  TextureType type() const;
  std::uint32_t width() const;
  std::uint32_t height() const;
  std::uint32_t depth() const;
  std::uint32_t array_length() const;
  const TextureFormat& format() const;
  Storage storage() const;
  std::size_t nbytes() const;
  bool released() const noexcept;
  explicit operator bool() const noexcept { return state_ != nullptr; }

  void* contents() const;  // host memory (storage "shared"); makes it current
  std::shared_ptr<Allocation> allocation() const;
  void upload(const void* data, std::size_t nbytes);  // exactly nbytes()
  void readback(void* data, std::size_t nbytes) const;
  // A byte range: `nbytes` bytes at byte `offset`, which must lie inside the texture.
  void upload(const void* data, std::size_t nbytes, std::size_t offset);
  void readback(void* data, std::size_t nbytes, std::size_t offset) const;
  void copy_to(Texture& other) const;  // same type, size and format
  // All texels (packed rows, as above) to the start of `buffer`, which must hold at least nbytes().
  void copy_to(Buffer& buffer) const;
  void release() noexcept;

  const std::shared_ptr<detail::TextureState>& state() const noexcept { return state_; }

 private:
  std::shared_ptr<detail::TextureState> state_;
};

// How sample() reads a texture. Packed into the launch block's sampler slot.
struct Sampler {
  enum class Filter { nearest, linear };
  enum class Address { clamp_to_edge, repeat, mirrored_repeat, clamp_to_zero, clamp_to_border };
  Filter filter = Filter::nearest;
  Address address = Address::clamp_to_edge;  // all three axes
  bool normalized = true;
  METALGPU_API std::uint32_t bits() const;
};

}  // namespace metalgpu
