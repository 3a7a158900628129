#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

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
bool dtype_compatible(const DType& have, const std::string& declared) {
  if (declared.empty() || declared == "void") return true;
  auto want = DType::parse(declared);
  if (!want) return true;  // a struct or a template parameter: nothing to compare with
  if (have == *want) return true;
  if (have.lanes == 1 && (have.scalar == Scalar::uint8 || have.scalar == Scalar::int8)) return true;
  if (want->lanes == 1 && (want->scalar == Scalar::uint8 || want->scalar == Scalar::int8)) return true;
  // A buffer of scalars may back a vector parameter of the same scalar type, and the reverse.
  if (have.scalar == want->scalar && (have.lanes == 1 || want->lanes == 1)) return true;
  return false;
}

}  // namespace

void bind_arguments(Launch& launch, std::span<const Binding> bindings, const msl::KernelInfo& kernel,
                    const mg_kernel_desc& desc, const void* owner) {
  if (bindings.size() > MG_MAX_BUFFERS)
    throw std::invalid_argument("[run_function] " + std::to_string(bindings.size()) +
                                " buffers given; Metal has 31 buffer slots (0..30)");
  const msl::KernelParam* by_slot[MG_MAX_BUFFERS] = {};
  for (const auto& p : kernel.params)
    if (p.role == msl::ParamRole::buffer) by_slot[p.slot] = &p;

  launch.inline_bytes.reserve(MG_MAX_BUFFERS);
  for (int& i : launch.inline_index) i = -1;
  for (int slot = 0; slot < MG_MAX_BUFFERS; ++slot) {
    const msl::KernelParam* param = by_slot[slot];
    const Where where{slot, kernel, param};
    const Binding* b = slot < int(bindings.size()) ? &bindings[slot] : nullptr;
    if (!b || b->kind == Binding::Kind::empty) {
      if (param && param->function_constant.empty())  // conditional parameters may stay empty
        throw std::invalid_argument("[run_function] " + where.str() + " is not bound (the buffer list has " +
                                    std::to_string(bindings.size()) + " entries)");
      continue;
    }
    const unsigned want_size = desc.slot_sizes[slot];
    if (b->kind == Binding::Kind::buffer) {
      const auto& state = b->buffer.state();
      if (!state || !state->alloc)
        throw ReleasedError("[run_function] the Buffer given for " + where.str() + " was " +
                            (state ? state->released_why : std::string("never created")));
      auto owner_impl = state->owner.lock();
      if (owner_impl.get() != owner && owner_impl &&
          owner_impl->backend_name != static_cast<const detail::InterfaceImpl*>(owner)->backend_name)
        throw std::invalid_argument("[run_function] the Buffer given for " + where.str() +
                                    " belongs to a " + owner_impl->backend_name + " Interface");
      if (!state->alloc->device)
        throw std::invalid_argument("[run_function] the Buffer given for " + where.str() + " has no device memory");
      if (param && !dtype_compatible(state->dtype, param->element_type))
        throw TypeMismatch("[run_function] " + where.str() + " is declared " + param->element_type +
                           "; got a Buffer of " + state->dtype.name());
      if (param && param->reference && want_size > state->alloc->nbytes)
        throw std::invalid_argument("[run_function] " + where.str() + " needs " + std::to_string(want_size) +
                                    " bytes; the Buffer holds " + std::to_string(state->alloc->nbytes));
      launch.args.slots[slot] = state->alloc->device;
      launch.buffers[slot] = state->alloc;
      // Unknown parameters (unused slots) count as written: the safe side for coherence.
      launch.may_write[slot] = !param || !(param->is_const || param->address_space == "constant");
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
      auto type = DType::parse(param->element_type);
      if (!type || type->lanes != 1)
        throw TypeMismatch("[run_function] " + where.str() + " is declared " + param->element_type +
                           "; a Python number cannot be converted to it (pass bytes, a numpy scalar or a Buffer)");
      bytes = encode_scalar(type->scalar, *b, where);
    }
    // Pad so a kernel reading a whole element past a short value never leaves the copy.
    std::size_t stored = bytes.size();
    bytes.resize(std::max<std::size_t>(stored, 16) + 16, '\0');
    launch.inline_index[slot] = int(launch.inline_bytes.size());
    launch.inline_bytes.push_back(std::move(bytes));
    launch.args.slots[slot] = launch.inline_bytes.back().data();
  }
}

}  // namespace metalgpu
