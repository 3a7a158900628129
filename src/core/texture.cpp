#include <algorithm>
#include <cstring>

#include "core/backend.hpp"
#include "core/interface_impl.hpp"
#include "metalgpu/errors.hpp"

namespace metalgpu {
namespace {

struct KindInfo {
  const char* suffix;
  unsigned kind;
  unsigned bytes;
  char numpy_kind;
  char value_class;
};

const KindInfo kKinds[] = {
    {"32float", MG_TEXEL_FLOAT32, 4, 'f', 'f'}, {"16float", MG_TEXEL_FLOAT16, 2, 'f', 'f'},
    {"8unorm", MG_TEXEL_UNORM8, 1, 'u', 'f'},   {"8snorm", MG_TEXEL_SNORM8, 1, 'i', 'f'},
    {"16unorm", MG_TEXEL_UNORM16, 2, 'u', 'f'}, {"16snorm", MG_TEXEL_SNORM16, 2, 'i', 'f'},
    {"32uint", MG_TEXEL_UINT32, 4, 'u', 'u'},   {"32sint", MG_TEXEL_SINT32, 4, 'i', 'i'},
    {"16uint", MG_TEXEL_UINT16, 2, 'u', 'u'},   {"16sint", MG_TEXEL_SINT16, 2, 'i', 'i'},
    {"8uint", MG_TEXEL_UINT8, 1, 'u', 'u'},     {"8sint", MG_TEXEL_SINT8, 1, 'i', 'i'},
};
const char* const kChannels[] = {"r", "rg", "rgba"};

detail::TextureState& live(const std::shared_ptr<detail::TextureState>& s, const char* op) {
  if (!s) throw ReleasedError(std::string("[Texture.") + op + "] the texture is empty (default-constructed)");
  if (!s->alloc)
    throw ReleasedError(std::string("[Texture.") + op + "] the texture was " + s->released_why +
                        "; it can no longer be used");
  return *s;
}

}  // namespace

std::vector<std::string> TextureFormat::names() {
  std::vector<std::string> out;
  for (const auto& k : kKinds)
    for (const char* c : kChannels) out.push_back(std::string(c) + k.suffix);
  return out;
}

TextureFormat TextureFormat::parse(const std::string& name) {
  for (const auto& k : kKinds)
    for (unsigned i = 0; i < 3; ++i)
      if (name == std::string(kChannels[i]) + k.suffix) {
        TextureFormat f;
        f.name = name;
        f.channels = i == 2 ? 4 : i + 1;
        f.channel_bytes = k.bytes;
        f.code = MG_TEXEL_FORMAT(k.kind, f.channels);
        f.numpy_kind = k.numpy_kind;
        f.value_class = k.value_class;
        return f;
      }
  std::string list;
  for (const auto& n : names()) list += (list.empty() ? "" : " ") + n;
  throw std::invalid_argument("[create_texture] unknown format '" + name + "' (formats: " + list + ")");
}

const char* texture_type_name(TextureType t) {
  switch (t) {
    case TextureType::tex1d: return "texture1d";
    case TextureType::tex1d_array: return "texture1d_array";
    case TextureType::tex2d: return "texture2d";
    case TextureType::tex2d_array: return "texture2d_array";
    case TextureType::tex3d: return "texture3d";
  }
  return "texture";
}

std::uint32_t Sampler::bits() const {
  std::uint32_t b = MG_SAMPLER_VALID | (normalized ? MG_SAMPLER_NORMALIZED : 0u);
  for (int axis = 0; axis < 3; ++axis) b |= unsigned(address) << MG_SAMPLER_ADDRESS_SHIFT(axis);
  if (filter == Filter::linear) b |= MG_SAMPLER_MAG_LINEAR | MG_SAMPLER_MIN_LINEAR;
  return b;
}

Texture Interface::create_texture(const TextureDesc& d) {
  if (!impl_) throw std::invalid_argument("[Interface] this Interface was moved from");
  auto& s = *impl_;
  TextureFormat format = TextureFormat::parse(d.format);
  if (d.width == 0 || d.height == 0 || d.depth == 0 || d.array_length == 0)
    throw std::invalid_argument("[create_texture] width, height, depth and array_length must be at least 1");
  const bool has_height = d.type != TextureType::tex1d && d.type != TextureType::tex1d_array;
  const bool has_depth = d.type == TextureType::tex3d;
  const bool is_array = d.type == TextureType::tex1d_array || d.type == TextureType::tex2d_array;
  if ((!has_height && d.height != 1) || (!has_depth && d.depth != 1) || (!is_array && d.array_length != 1))
    throw std::invalid_argument(std::string("[create_texture] a ") + texture_type_name(d.type) + " has " +
                                (has_height ? "" : "no height, ") + (has_depth ? "" : "no depth, ") +
                                (is_array ? "" : "no array_length, ") + "got " + std::to_string(d.width) + " x " +
                                std::to_string(d.height) + " x " + std::to_string(d.depth) + " x " +
                                std::to_string(d.array_length));
  const std::uint64_t limit = 1u << 16;
  if (d.width > limit || d.height > limit || d.depth > 2048 || d.array_length > 2048)
    throw std::invalid_argument("[create_texture] " + std::to_string(d.width) + " x " + std::to_string(d.height) +
                                " x " + std::to_string(d.depth) + " x " + std::to_string(d.array_length) +
                                " is too large (width, height <= 65536; depth, array_length <= 2048)");
  const std::uint64_t row = std::uint64_t(d.width) * format.bytes_per_texel();
  const std::uint64_t slice = row * d.height;
  const std::uint64_t total = slice * d.depth * d.array_length;
  if (slice > 0xffffffffull || total > (std::uint64_t(1) << 40))
    throw std::invalid_argument("[create_texture] the texture would take " + std::to_string(total) +
                                " bytes; too large");
  TextureLayout layout;
  layout.desc = d;
  layout.format = format;
  layout.row_pitch = std::uint32_t(row);
  layout.slice_pitch = std::uint32_t(slice);
  layout.nbytes = std::size_t(total);
  auto state = std::make_shared<detail::TextureState>();
  state->alloc = detail::allocate_or_name(s.device, layout.nbytes,  // zero-filled, like every allocation
                                  "[create_texture] " + std::to_string(d.width) + " x " + std::to_string(d.height) +
                                      " x " + std::to_string(d.depth) + " x " + std::to_string(d.array_length) + " " +
                                      d.format,
                                  [&] { return s.backend->allocate_texture(layout); });
  state->desc = d;
  state->format = format;
  state->row_pitch = layout.row_pitch;
  state->slice_pitch = layout.slice_pitch;
  state->owner = impl_;
  std::lock_guard<std::mutex> lock(s.buffers_mutex);
  if (s.textures.size() >= 64 && (s.textures.size() & (s.textures.size() - 1)) == 0)
    s.textures.erase(std::remove_if(s.textures.begin(), s.textures.end(), [](auto& w) { return w.expired(); }),
                     s.textures.end());
  s.textures.push_back(state);
  return Texture(std::move(state));
}

TextureType Texture::type() const { return state_ ? state_->desc.type : TextureType::tex2d; }
std::uint32_t Texture::width() const { return state_ ? state_->desc.width : 0; }
std::uint32_t Texture::height() const { return state_ ? state_->desc.height : 0; }
std::uint32_t Texture::depth() const { return state_ ? state_->desc.depth : 0; }
std::uint32_t Texture::array_length() const { return state_ ? state_->desc.array_length : 0; }
const TextureFormat& Texture::format() const {
  static const TextureFormat none;
  return state_ ? state_->format : none;
}
Storage Texture::storage() const { return state_ ? state_->desc.storage : Storage::shared; }
std::size_t Texture::nbytes() const {
  return state_ ? std::size_t(state_->slice_pitch) * state_->desc.depth * state_->desc.array_length : 0;
}
bool Texture::released() const noexcept { return !state_ || !state_->alloc; }

void* Texture::contents() const {
  auto& s = live(state_, "contents");
  if (!s.alloc->host)
    throw std::invalid_argument(
        "[Texture.contents] this texture has storage \"private\" (device memory only); use readback() to copy "
        "it to the host, or create it with storage=\"shared\"");
  s.alloc->host_will_access();
  return s.alloc->host;
}

std::shared_ptr<Allocation> Texture::allocation() const { return live(state_, "allocation").alloc; }

void Texture::upload(const void* data, std::size_t n) {
  auto& s = live(state_, "upload");
  if (n != nbytes())
    throw std::invalid_argument("[Texture.upload] got " + std::to_string(n) + " bytes; the texture holds " +
                                std::to_string(nbytes()));
  s.alloc->write(0, data, n);
}

void Texture::readback(void* data, std::size_t n) const {
  auto& s = live(state_, "readback");
  if (n != nbytes())
    throw std::invalid_argument("[Texture.readback] asked for " + std::to_string(n) + " bytes; the texture holds " +
                                std::to_string(nbytes()));
  s.alloc->read(0, data, n);
}

void Texture::upload(const void* data, std::size_t n, std::size_t offset) {
  auto& s = live(state_, "upload");
  if (offset > nbytes() || n > nbytes() - offset)
    throw std::invalid_argument("[Texture.upload] bytes " + std::to_string(offset) + ".." + std::to_string(offset) +
                                "+" + std::to_string(n) + " do not fit the texture of " + std::to_string(nbytes()) +
                                " bytes");
  if (n) s.alloc->write(offset, data, n);
}

void Texture::readback(void* data, std::size_t n, std::size_t offset) const {
  auto& s = live(state_, "readback");
  if (offset > nbytes() || n > nbytes() - offset)
    throw std::invalid_argument("[Texture.readback] bytes " + std::to_string(offset) + ".." + std::to_string(offset) +
                                "+" + std::to_string(n) + " do not fit the texture of " + std::to_string(nbytes()) +
                                " bytes");
  if (n) s.alloc->read(offset, data, n);
}

void Texture::copy_to(Buffer& buffer) const {
  auto& s = live(state_, "copy_to");
  auto b = buffer.allocation();  // throws if the buffer was released
  if (b->nbytes < nbytes())
    throw std::invalid_argument("[Texture.copy_to] the texture holds " + std::to_string(nbytes()) +
                                " bytes; the buffer has only " + std::to_string(b->nbytes));
  copy_allocation_bytes(*s.alloc, *b, nbytes());
}

void Texture::copy_to(Texture& other) const {
  auto& s = live(state_, "copy_to");
  auto& o = live(other.state_, "copy_to");
  const auto& a = s.desc;
  const auto& b = o.desc;
  if (a.type != b.type || a.width != b.width || a.height != b.height || a.depth != b.depth ||
      a.array_length != b.array_length || s.format.code != o.format.code)
    throw std::invalid_argument(std::string("[Texture.copy_to] source is a ") + texture_type_name(a.type) + " " +
                                std::to_string(a.width) + "x" + std::to_string(a.height) + "x" +
                                std::to_string(a.depth) + "x" + std::to_string(a.array_length) + " " + s.format.name +
                                ", destination a " + texture_type_name(b.type) + " " + std::to_string(b.width) + "x" +
                                std::to_string(b.height) + "x" + std::to_string(b.depth) + "x" +
                                std::to_string(b.array_length) + " " + o.format.name + ": they must match");
  if (s.alloc == o.alloc) return;
  s.alloc->copy_to(*o.alloc);
}

void Texture::release() noexcept {
  if (state_ && state_->alloc) {
    state_->alloc.reset();
    state_->released_why = "released";
  }
}

}  // namespace metalgpu
