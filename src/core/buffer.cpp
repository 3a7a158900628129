#include <algorithm>
#include <cstring>
#include <vector>

#include "core/backend.hpp"
#include "core/interface_impl.hpp"
#include "metalgpu/errors.hpp"
#include "metalgpu/texture.hpp"

namespace metalgpu {

void Allocation::write(std::size_t offset, const void* src, std::size_t n) {
  std::memcpy(static_cast<char*>(host ? host : device) + offset, src, n);
}
void Allocation::read(std::size_t offset, void* dst, std::size_t n) const {
  std::memcpy(dst, static_cast<const char*>(host ? host : device) + offset, n);
}
void Allocation::copy_to(Allocation& dst) const {
  dst.write(0, host ? host : device, std::min(nbytes, dst.nbytes));
}

std::shared_ptr<Allocation> Backend::wrap(void*, std::size_t, std::shared_ptr<void>) {
  throw std::invalid_argument("[wrap] the " + info().backend +
                              " backend cannot use host memory directly; use array_to_buffer() (one copy)");
}

namespace {

detail::BufferState& live(const std::shared_ptr<detail::BufferState>& s, const char* op) {
  if (!s) throw ReleasedError(std::string("[Buffer.") + op + "] the buffer is empty (default-constructed)");
  if (!s->alloc)
    throw ReleasedError(std::string("[Buffer.") + op + "] the buffer was " + s->released_why +
                        "; it can no longer be used");
  return *s;
}

// Checks that [offset, offset + n) lies inside `size` bytes, without overflowing.
void check_range(const char* where, std::size_t offset, std::size_t n, std::size_t size, const char* what) {
  if (offset > size || n > size - offset)
    throw std::invalid_argument(std::string(where) + " bytes " + std::to_string(offset) + ".." +
                                std::to_string(offset) + "+" + std::to_string(n) + " do not fit the " + what +
                                " of " + std::to_string(size) + " bytes");
}

}  // namespace

// Between a buffer and a texture, through host memory: every backend's Allocation can read
// and write host bytes, while a device-side copy between the two kinds would need one per
// backend (a Metal texture is not linear memory).
void copy_allocation_bytes(const Allocation& from, Allocation& to, std::size_t n) {
  std::vector<char> staging(n);
  from.read(0, staging.data(), n);
  to.write(0, staging.data(), n);
}

std::size_t Buffer::count() const { return state_ ? state_->count : 0; }
DType Buffer::dtype() const { return state_ ? state_->dtype : DType{}; }
std::size_t Buffer::nbytes() const { return state_ ? state_->count * state_->dtype.size() : 0; }
Storage Buffer::storage() const { return state_ ? state_->storage : Storage::shared; }
bool Buffer::released() const noexcept { return !state_ || !state_->alloc; }

void* Buffer::contents() const {
  auto& s = live(state_, "contents");
  if (!s.alloc->host)
    throw std::invalid_argument(
        "[Buffer.contents] this buffer has storage \"private\" (device memory only); use "
        "readback() to copy it to the host, or create it with storage=\"shared\"");
  s.alloc->host_will_access();
  return s.alloc->host;
}

std::shared_ptr<Allocation> Buffer::allocation() const { return live(state_, "allocation").alloc; }

void Buffer::upload(const void* data, std::size_t nbytes) {
  auto& s = live(state_, "upload");
  if (nbytes != s.alloc->nbytes)
    throw std::invalid_argument("[Buffer.upload] got " + std::to_string(nbytes) + " bytes; the buffer holds " +
                                std::to_string(s.alloc->nbytes));
  s.alloc->write(0, data, nbytes);
}

void Buffer::readback(void* data, std::size_t nbytes) const {
  auto& s = live(state_, "readback");
  if (nbytes != s.alloc->nbytes)
    throw std::invalid_argument("[Buffer.readback] asked for " + std::to_string(nbytes) +
                                " bytes; the buffer holds " + std::to_string(s.alloc->nbytes));
  s.alloc->read(0, data, nbytes);
}

void Buffer::upload(const void* data, std::size_t nbytes, std::size_t offset) {
  auto& s = live(state_, "upload");
  check_range("[Buffer.upload]", offset, nbytes, s.alloc->nbytes, "buffer");
  if (nbytes) s.alloc->write(offset, data, nbytes);
}

void Buffer::readback(void* data, std::size_t nbytes, std::size_t offset) const {
  auto& s = live(state_, "readback");
  check_range("[Buffer.readback]", offset, nbytes, s.alloc->nbytes, "buffer");
  if (nbytes) s.alloc->read(offset, data, nbytes);
}

void Buffer::copy_to(Texture& texture) const {
  auto& s = live(state_, "copy_to");
  auto t = texture.allocation();  // throws if the texture was released
  if (s.alloc->nbytes < texture.nbytes())
    throw std::invalid_argument("[Buffer.copy_to] the buffer holds " + std::to_string(s.alloc->nbytes) +
                                " bytes; the texture needs " + std::to_string(texture.nbytes()));
  copy_allocation_bytes(*s.alloc, *t, texture.nbytes());
}

void Buffer::copy_to(Buffer& other) const {
  auto& s = live(state_, "copy_to");
  auto& o = live(other.state_, "copy_to");
  if (!(s.dtype == o.dtype) || s.count != o.count)
    throw std::invalid_argument("[Buffer.copy_to] source is " + std::to_string(s.count) + " x " +
                                s.dtype.name() + ", destination is " + std::to_string(o.count) +
                                " x " + o.dtype.name() + ": they must match");
  if (s.alloc == o.alloc) return;
  s.alloc->copy_to(*o.alloc);
}

void Buffer::release() noexcept {
  if (state_ && state_->alloc) {
    state_->alloc.reset();
    state_->released_why = "released";
  }
}

}  // namespace metalgpu
