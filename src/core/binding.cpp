#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/dispatch.hpp"
#include "core/interface_impl.hpp"
#include "metalgpu/errors.hpp"

namespace metalgpu {
namespace {

std::uint16_t float_to_half_bits(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  std::uint32_t sign = (x >> 16) & 0x8000u;
  std::uint32_t mag = x & 0x7fffffffu;
  if (mag >= 0x7f800000u) return std::uint16_t(sign | 0x7c00u | (mag > 0x7f800000u ? 0x200u : 0u));
  if (mag >= 0x477ff000u) return std::uint16_t(sign | 0x7c00u);  // rounds past 65504: inf
  if (mag < 0x38800000u) {                                       // subnormal half or zero
    if (mag < 0x33000000u) return std::uint16_t(sign);
    std::uint32_t mant = (mag & 0x7fffffu) | 0x800000u;
    int shift = 126 - int(mag >> 23);  // 14..24: units of 2^-24
    std::uint32_t r = mant >> shift;
    std::uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (r & 1))) ++r;
    return std::uint16_t(sign | r);
  }
  std::uint32_t r = ((mag - 0x38000000u) >> 13);
  std::uint32_t rem = mag & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) ++r;
  return std::uint16_t(sign | r);
}

std::uint16_t float_to_bfloat_bits(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return std::uint16_t(x >> 16);
}

template <class T> std::string bytes_of(T v) { return std::string(reinterpret_cast<const char*>(&v), sizeof v); }

struct Where {
  int slot;
  const msl::KernelInfo& kernel;
  const msl::KernelParam* param;
  std::string str() const {
    std::string s = "buffer(" + std::to_string(slot) + ") of kernel '" + kernel.name + "'";
    if (param && !param->name.empty()) s += " (parameter '" + param->name + "')";
    return s;
  }
};

template <class T>
std::string encode_integer(const Binding& b, const Where& w, const char* type) {
  auto fail = [&](const std::string& v) -> std::string {
    throw std::invalid_argument("[run_function] value " + v + " does not fit " + w.str() + ", declared " + type);
  };
  if (b.kind == Binding::Kind::float_value)
    throw TypeMismatch("[run_function] " + w.str() + " is declared " + type + "; got the float " +
                       std::to_string(b.float_value) + " (pass an int)");
  if (b.kind == Binding::Kind::uint_value) {
    if (b.uint_value > std::uint64_t(std::numeric_limits<T>::max())) fail(std::to_string(b.uint_value));
    return bytes_of(T(b.uint_value));
  }
  std::int64_t v = b.int_value;
  if constexpr (std::is_signed_v<T>) {
    if (v < std::int64_t(std::numeric_limits<T>::min()) || v > std::int64_t(std::numeric_limits<T>::max()))
      fail(std::to_string(v));
  } else {
    if (v < 0 || std::uint64_t(v) > std::uint64_t(std::numeric_limits<T>::max())) fail(std::to_string(v));
  }
  return bytes_of(T(v));
}

double as_double(const Binding& b) {
  switch (b.kind) {
    case Binding::Kind::float_value: return b.float_value;
    case Binding::Kind::uint_value: return double(b.uint_value);
    default: return double(b.int_value);
  }
}

std::string encode_scalar(Scalar s, const Binding& b, const Where& w) {
  switch (s) {
    case Scalar::boolean:
      if (b.kind == Binding::Kind::float_value)
        throw TypeMismatch("[run_function] " + w.str() + " is declared bool; got a float");
      return bytes_of<bool>(b.kind == Binding::Kind::uint_value ? b.uint_value != 0 : b.int_value != 0);
    case Scalar::int8: return encode_integer<std::int8_t>(b, w, "char");
    case Scalar::uint8: return encode_integer<std::uint8_t>(b, w, "uchar");
    case Scalar::int16: return encode_integer<std::int16_t>(b, w, "short");
    case Scalar::uint16: return encode_integer<std::uint16_t>(b, w, "ushort");
    case Scalar::int32: return encode_integer<std::int32_t>(b, w, "int");
    case Scalar::uint32: return encode_integer<std::uint32_t>(b, w, "uint");
    case Scalar::int64: return encode_integer<std::int64_t>(b, w, "long");
    case Scalar::uint64: return encode_integer<std::uint64_t>(b, w, "ulong");
    case Scalar::float16: return bytes_of(float_to_half_bits(float(as_double(b))));
    case Scalar::bfloat16: return bytes_of(float_to_bfloat_bits(float(as_double(b))));
    case Scalar::float32: return bytes_of(float(as_double(b)));
    case Scalar::float64: return bytes_of(as_double(b));
  }
  throw std::logic_error("unreachable");
}

// Raw-byte buffers ("uchar", "char") may be bound to anything, and anything to `void*`.
// `declared` is empty for void, structs and template parameters: nothing to compare with.
bool dtype_compatible(const DType& have, const std::optional<DType>& declared) {
  if (!declared) return true;
  const DType* want = &*declared;
  if (have == *want) return true;
  if (have.lanes == 1 && (have.scalar == Scalar::uint8 || have.scalar == Scalar::int8)) return true;
  if (want->lanes == 1 && (want->scalar == Scalar::uint8 || want->scalar == Scalar::int8)) return true;
  // A buffer of scalars may back a vector parameter of the same scalar type, and the reverse.
  if (have.scalar == want->scalar && (have.lanes == 1 || want->lanes == 1)) return true;
  return false;
}

}  // namespace

KernelPlan make_plan(const msl::KernelInfo& kernel) {
  KernelPlan plan;
  for (const auto& p : kernel.params) {
    if (p.role == msl::ParamRole::texture || p.role == msl::ParamRole::sampler) plan.uses_textures = true;
    if (p.role != msl::ParamRole::buffer || p.slot < 0 || p.slot >= MG_MAX_BUFFERS) continue;
    KernelPlan::Slot& s = plan.slots[p.slot];
    s.param = &p;
    if (!p.element_type.empty() && p.element_type != "void") s.declared = DType::parse(p.element_type);
    s.read_only = p.is_const || p.address_space == "constant";
    plan.conditional_values += !p.pointer && !p.function_constant.empty();
  }
  return plan;
}

void bind_arguments(Launch& launch, std::span<const Binding> bindings, const KernelPlan& plan,
                    const msl::KernelInfo& kernel, const mg_kernel_desc& desc, const void* owner) {
  if (bindings.size() > MG_MAX_BUFFERS)
    throw std::invalid_argument("[run_function] " + std::to_string(bindings.size()) +
                                " buffers given; Metal has 31 buffer slots (0..30)");
  // Values are kept in launch.inline_bytes, and slots point into them: no reallocation after.
  std::size_t values = plan.conditional_values;
  for (const Binding& b : bindings) values += b.kind != Binding::Kind::empty && b.kind != Binding::Kind::buffer;
  if (values) launch.inline_bytes.reserve(values);
  auto store_value = [&](int slot, std::string bytes) {
    // Pad so a kernel reading a whole element past a short value never leaves the copy.
    std::size_t stored = bytes.size();
    bytes.resize(std::max<std::size_t>(stored, 16) + 16, '\0');
    launch.inline_index[slot] = int(launch.inline_bytes.size());
    launch.inline_bytes.push_back(std::move(bytes));
    launch.args.slots[slot] = launch.inline_bytes.back().data();
    launch.args.slot_bytes[slot] = stored;
  };
  for (int& i : launch.inline_index) i = -1;
  for (int slot = 0; slot < MG_MAX_BUFFERS; ++slot) {
    const msl::KernelParam* param = plan.slots[slot].param;
    const Where where{slot, kernel, param};
    const Binding* b = slot < int(bindings.size()) ? &bindings[slot] : nullptr;
    if (!b || b->kind == Binding::Kind::empty) {
      if (param && param->function_constant.empty())  // conditional parameters may stay empty
        throw std::invalid_argument("[run_function] " + where.str() + " is not bound (the buffer list has " +
                                    std::to_string(bindings.size()) + " entries)");
      // A reference or value that a function constant turned off is never used, but the entry
      // still binds the reference (or copies the value) from its slot: zero bytes of its type
      // stand in, since binding a reference to *nullptr is undefined behaviour (UBSan: "reference
      // binding to null pointer") and a copy from it reads address 0.
      if (param && !param->pointer) store_value(slot, std::string(desc.slot_sizes[slot], '\0'));
      continue;
    }
    const unsigned want_size = desc.slot_sizes[slot];
    if (b->kind == Binding::Kind::buffer) {
      const auto& state = b->buffer.state();
      if (!state || !state->alloc)
        throw ReleasedError("[run_function] the Buffer given for " + where.str() + " was " +
                            (state ? state->released_why : std::string("never created")));
      if (state->owner_address != owner) {
        auto owner_impl = state->owner.lock();
        if (owner_impl && owner_impl->backend_name != static_cast<const detail::InterfaceImpl*>(owner)->backend_name)
          throw std::invalid_argument("[run_function] the Buffer given for " + where.str() + " belongs to a " +
                                      owner_impl->backend_name + " Interface");
      }
      if (!state->alloc->device)
        throw std::invalid_argument("[run_function] the Buffer given for " + where.str() + " has no device memory");
      if (param && !dtype_compatible(state->dtype, plan.slots[slot].declared))
        throw TypeMismatch("[run_function] " + where.str() + " is declared " + param->element_type +
                           "; got a Buffer of " + state->dtype.name());
      if (param && param->reference && want_size > state->alloc->nbytes)
        throw std::invalid_argument("[run_function] " + where.str() + " needs " + std::to_string(want_size) +
                                    " bytes; the Buffer holds " + std::to_string(state->alloc->nbytes));
      launch.args.slots[slot] = state->alloc->device;
      launch.args.slot_bytes[slot] = state->alloc->nbytes;
      launch.buffers[slot] = state->alloc;
      // Unknown parameters (unused slots) count as written: the safe side for coherence.
      launch.may_write[slot] = !param || !plan.slots[slot].read_only;
      continue;
    }
    if (!param) continue;  // a value for a slot the kernel does not use
    std::string bytes;
    if (b->kind == Binding::Kind::bytes) {
      bytes = b->bytes;
      bool ok = param->pointer ? (want_size == 0 || (!bytes.empty() && bytes.size() % want_size == 0))
                               : bytes.size() == want_size;
      if (!ok)
        throw std::invalid_argument("[run_function] " + where.str() + " is declared " + param->element_type +
                                    " (" + std::to_string(want_size) + " bytes); got " +
                                    std::to_string(bytes.size()) + " bytes");
    } else {
      const std::optional<DType>& type = plan.slots[slot].declared;
      if (!type || type->lanes != 1)
        throw TypeMismatch("[run_function] " + where.str() + " is declared " + param->element_type +
                           "; a Python number cannot be converted to it (pass bytes, a numpy scalar or a Buffer)");
      bytes = encode_scalar(type->scalar, *b, where);
    }
    store_value(slot, std::move(bytes));
  }
}

namespace {

// "metal::texture2d<float, access::read_write>" -> base "texture2d", args {"float", "read_write"}.
void split_texture_type(const std::string& type, std::string* base, std::vector<std::string>* args) {
  std::string t;
  for (char c : type)
    if (c != ' ') t += c;
  std::size_t lt = t.find('<');
  *base = t.substr(0, lt);
  if (base->rfind("metal::", 0) == 0) *base = base->substr(7);
  if (lt == std::string::npos) return;
  std::string inner = t.substr(lt + 1, t.size() - lt - 2);
  std::size_t start = 0;
  for (std::size_t k = 0; k <= inner.size(); ++k)
    if (k == inner.size() || inner[k] == ',') {
      std::string a = inner.substr(start, k - start);
      if (a.rfind("metal::", 0) == 0) a = a.substr(7);
      if (a.rfind("access::", 0) == 0) a = a.substr(8);
      args->push_back(a);
      start = k + 1;
    }
}

// 'f' float/half, 'u' unsigned, 'i' signed integers, 0 unknown (a template parameter...).
char value_class_of(const std::string& t) {
  if (t == "float" || t == "half" || t == "float32_t" || t == "half_t") return 'f';
  if (t == "uint" || t == "ushort" || t == "uchar" || t == "unsigned" || t == "uint32_t" || t == "uint16_t" ||
      t == "uint8_t" || t == "unsignedint")
    return 'u';
  if (t == "int" || t == "short" || t == "char" || t == "int32_t" || t == "int16_t" || t == "int8_t") return 'i';
  return 0;
}

const char* value_class_name(char c) {
  return c == 'f' ? "float or half" : c == 'u' ? "uint or ushort" : "int or short";
}

}  // namespace

void bind_textures(Launch& launch, const std::vector<Texture>& textures,
                   const std::vector<std::optional<Sampler>>& samplers, const KernelPlan& plan,
                   const msl::KernelInfo& kernel, const void* owner) {
  if (textures.empty() && samplers.empty() && !plan.uses_textures) return;
  if (textures.size() > MG_MAX_TEXTURES)
    throw std::invalid_argument("[run_function] " + std::to_string(textures.size()) +
                                " textures given; there are 16 texture slots (0..15)");
  if (samplers.size() > MG_MAX_SAMPLERS)
    throw std::invalid_argument("[run_function] " + std::to_string(samplers.size()) +
                                " samplers given; there are 16 sampler slots (0..15)");
  const auto* impl = static_cast<const detail::InterfaceImpl*>(owner);
  const msl::KernelParam* tex_param[MG_MAX_TEXTURES] = {};
  const msl::KernelParam* smp_param[MG_MAX_SAMPLERS] = {};
  for (const auto& p : kernel.params) {
    if (p.role == msl::ParamRole::texture && p.slot >= 0 && p.slot < MG_MAX_TEXTURES) tex_param[p.slot] = &p;
    if (p.role == msl::ParamRole::sampler && p.slot >= 0 && p.slot < MG_MAX_SAMPLERS) smp_param[p.slot] = &p;
  }
  auto where = [&](const char* what, int slot, const msl::KernelParam* p) {
    std::string s = std::string(what) + "(" + std::to_string(slot) + ") of kernel '" + kernel.name + "'";
    if (p && !p->name.empty()) s += " (parameter '" + p->name + "')";
    return s;
  };
  for (int slot = 0; slot < MG_MAX_TEXTURES; ++slot) {
    const msl::KernelParam* param = tex_param[slot];
    const Texture* t = slot < int(textures.size()) && textures[std::size_t(slot)] ? &textures[std::size_t(slot)] : nullptr;
    if (!t) {
      if (param && param->function_constant.empty())
        throw std::invalid_argument("[run_function] " + where("texture", slot, param) +
                                    " is not bound (the textures list has " + std::to_string(textures.size()) +
                                    " entries)");
      continue;
    }
    const auto& state = t->state();
    if (!state->alloc)
      throw ReleasedError("[run_function] the Texture given for " + where("texture", slot, param) + " was " +
                          state->released_why);
    auto owner_impl = state->owner.lock();
    if (owner_impl && owner_impl.get() != owner && owner_impl->backend_name != impl->backend_name)
      throw std::invalid_argument("[run_function] the Texture given for " + where("texture", slot, param) +
                                  " belongs to a " + owner_impl->backend_name + " Interface");
    if (!param) continue;  // a texture for a slot the kernel does not use
    std::string base;
    std::vector<std::string> args;
    split_texture_type(param->element_type, &base, &args);
    // One row of texels is the same memory as a 1d texture.
    // Metal binds real texture objects, and a 2D texture cannot be bound to a 1D parameter there.
    const bool row_as_1d = base == "texture1d" && state->desc.type == TextureType::tex2d && state->desc.height == 1 &&
                           impl->backend_name != "metal";
    if (base != texture_type_name(state->desc.type) && !row_as_1d)
      throw TypeMismatch("[run_function] " + where("texture", slot, param) + " is declared " + base + "; got a " +
                         texture_type_name(state->desc.type) +
                         (base == "texture1d" && state->desc.height == 1
                              ? std::string(" (the metal backend needs texture_type=\"1d\" for a texture1d)")
                              : std::string()));
    char declared = args.empty() ? 0 : value_class_of(args[0]);
    if (declared && declared != state->format.value_class)
      throw TypeMismatch("[run_function] " + where("texture", slot, param) + " is declared " + base + "<" + args[0] +
                         ">; a " + state->format.name + " texture is read as " +
                         value_class_name(state->format.value_class));
    const bool writes = args.size() > 1 && (args[1] == "write" || args[1] == "read_write");
    mg_texture& m = launch.args.textures[slot];
    m.data = state->alloc->device;
    m.width = state->desc.width;
    m.height = state->desc.height;
    m.depth = state->desc.depth;
    m.array_length = state->desc.array_length;
    m.format = state->format.code;
    m.row_pitch = state->row_pitch;
    m.slice_pitch = state->slice_pitch;
    launch.textures[slot] = state->alloc;
    launch.texture_may_write[slot] = writes;
  }
  for (int slot = 0; slot < MG_MAX_SAMPLERS; ++slot) {
    const msl::KernelParam* param = smp_param[slot];
    const bool given = slot < int(samplers.size()) && samplers[std::size_t(slot)].has_value();
    if (!given) {
      if (param && param->function_constant.empty())
        throw std::invalid_argument("[run_function] " + where("sampler", slot, param) +
                                    " is not bound (the samplers list has " + std::to_string(samplers.size()) +
                                    " entries)");
      continue;
    }
    launch.args.samplers[slot] = samplers[std::size_t(slot)]->bits();
  }
}

}  // namespace metalgpu
