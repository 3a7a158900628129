// Buffers: memory shared between the host and kernels.
#pragma once

#include <cstddef>
#include <memory>

#include "metalgpu/dtype.hpp"
#include "metalgpu/export.hpp"

namespace metalgpu {

enum class Storage { shared, device_private };

namespace detail {
struct BufferState;
}
class Allocation;
class Texture;

// A handle to a buffer. Copies share the buffer. After release() (or once its Interface is
// gone) every use throws ReleasedError; memory handed out through allocation() stays valid
// until its last holder lets go, so no view ever reads freed memory.
class METALGPU_API Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::shared_ptr<detail::BufferState> state) : state_(std::move(state)) {}

  std::size_t count() const;
  DType dtype() const;
  std::size_t nbytes() const;
  Storage storage() const;
  bool released() const noexcept;
  explicit operator bool() const noexcept { return state_ != nullptr; }

  // Host pointer to the memory (storage "shared" only); waits for pending kernels that
  // may write it.
  void* contents() const;
  // The memory itself, for views that must outlive the handle.
  std::shared_ptr<Allocation> allocation() const;

  void upload(const void* data, std::size_t nbytes);  // exactly nbytes()
  void readback(void* data, std::size_t nbytes) const;
  // A byte range: `nbytes` bytes at byte `offset`, which must lie inside the buffer.
  void upload(const void* data, std::size_t nbytes, std::size_t offset);
  void readback(void* data, std::size_t nbytes, std::size_t offset) const;
  void copy_to(Buffer& other) const;  // same count and dtype
  // The texture's bytes (texels packed as Texture describes) from the start of this buffer,
  // which must hold at least texture.nbytes().
  void copy_to(Texture& texture) const;
  void release() noexcept;

  const std::shared_ptr<detail::BufferState>& state() const noexcept { return state_; }

 private:
  std::shared_ptr<detail::BufferState> state_;
};

}  // namespace metalgpu
