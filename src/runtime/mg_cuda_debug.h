// Debug mode on the CUDA backend (METALGPU_DEBUG=1, Interface(debug=True)): the translator
// routes every subscript, `*p` and `p->` through the same checks as on the cpu backend
// (debug_instrument.cpp, mg_debug_access.h), and the functions here judge bounds:
// - an access through a pointer into a buffer argument or [[threadgroup(n)]] memory stays
//   inside the region its base pointer points into;
// - C arrays and metal::array stay inside their extent (threadgroup arrays included).
// A failed check records a fault in the launch's report (device memory the
// host reads after the kernel: it raises KernelFault) and sends the access to a scratch
// element, so the kernel finishes without touching memory it does not own - the CUDA context
// stays usable, unlike after a hardware fault.
// Not checked on cuda (the cpu backend's debug mode checks them): threadgroup-memory races and
// barriers that not every thread reaches, and pointers into threadgroup variables (a variable
// indexed by name is checked against its extent).
#pragma once

#if MG_DEBUG

namespace __metalgpu {
namespace dbg {

// What the checks know of the running dispatch, set by each block's first thread at entry:
// the launch block (a __grid_constant__ parameter, addressable) and the names to report.
struct block_info {
  const mg_launch* launch;
  const char* kernel;
  const char* const* names;  // [[buffer(n)]] names, then [[threadgroup(n)]] names
  unsigned regions;          // how many of `regions` below are set
};
__shared__ block_info block;

struct region {
  const unsigned char* base;
  const unsigned char* end;
  int slot;
  bool threadgroup;
};
// The launch's bound slots and [[threadgroup(n)]] memory, listed once per block (about 1.5 KiB
// of shared memory in debug mode): a lookup visits the few regions bound, not every slot.
__shared__ region regions[MG_MAX_BUFFERS + MG_MAX_THREADGROUP_SLOTS];

__device__ __forceinline__ void enter(const mg_launch* L, const char* kernel, const char* const* names) {
  if ((threadIdx.x | threadIdx.y | threadIdx.z) == 0) {
    unsigned n = 0;
    for (unsigned k = 0; k < MG_MAX_BUFFERS; ++k)
      if (const unsigned long long bytes = L->slot_bytes[k]) {
        const auto* base = static_cast<const unsigned char*>(cuda::slot_address(*L, k));
        regions[n++] = region{base, base + bytes, int(k), false};
      }
    unsigned offset = 0;
    for (unsigned k = 0; k < MG_MAX_THREADGROUP_SLOTS; ++k) {
      const unsigned bytes = L->threadgroup_sizes[k];
      const unsigned char* base = cuda::dynamic_threadgroup_memory + offset;
      offset += bytes;
      if (bytes) regions[n++] = region{base, base + bytes, int(k), true};
    }
    block = block_info{L, kernel, names, n};
  }
  __syncthreads();
}

// ---- the report: the fault of the lowest faulting thread of a dispatch, formatted on the device

struct text {
  char* at;
  char* end;
  __device__ void put(const char* s) {
    while (s && *s && at < end) *at++ = *s++;
  }
  __device__ void put(unsigned long long v) {
    char digits[24];
    int n = 0;
    do digits[n++] = char('0' + v % 10); while ((v /= 10) && n < 24);
    while (n && at < end) *at++ = digits[--n];
  }
  __device__ void put_signed(long long v) {
    if (v < 0) {
      put("-");
      put((unsigned long long)(-(v + 1)) + 1ull);
    } else {
      put((unsigned long long)v);
    }
  }
};

// This thread's position in the grid.
__device__ __forceinline__ void position(unsigned (&pos)[3]) {
  const mg_launch& L = *block.launch;
  pos[0] = (blockIdx.x + L.group_offset[0]) * L.tg[0] + threadIdx.x;
  pos[1] = (blockIdx.y + L.group_offset[1]) * L.tg[1] + threadIdx.y;
  pos[2] = (blockIdx.z + L.group_offset[2]) * L.tg[2] + threadIdx.z;
}

// Takes the report for this thread's fault and starts its message ("kernel 'k', file:line: "),
// or returns null: the report keeps the fault of the lowest thread in the grid (the first of
// that thread's own), whatever order the threads ran in. The report stays locked until finish().
__device__ __noinline__ mg_debug_report* claim(const char* file, int line, text& t) {
  mg_debug_report* r = block.launch->debug;
  if (!r) return nullptr;
  const mg_launch& L = *block.launch;
  unsigned pos[3];
  position(pos);
  const unsigned long long order =
      pos[0] + (unsigned long long)L.grid[0] * (pos[1] + (unsigned long long)L.grid[1] * pos[2]);
  volatile mg_debug_report* v = r;
  if (v->faulted && v->order <= order) return nullptr;
  while (atomicCAS(&r->lock, 0, 1) != 0) {
  }
  __threadfence();
  if (v->faulted && v->order <= order) {
    __threadfence();
    atomicExch(&r->lock, 0);
    return nullptr;
  }
  r->order = order;
  r->line = line;
  for (int k = 0; k < 3; ++k) r->thread_position[k] = pos[k];
  t = text{r->message, r->message + sizeof r->message - 1};
  t.put("kernel '");
  t.put(block.kernel);
  t.put("', ");
  t.put(file);
  t.put(":");
  t.put((unsigned long long)line);
  t.put(": ");
  return r;
}

// Ends the message with the thread's position, publishes the report and unlocks it.
__device__ __noinline__ void finish(mg_debug_report* r, text& t) {
  t.put(" (thread_position_in_grid (");
  for (int k = 0; k < 3; ++k) {
    if (k) t.put(", ");
    t.put((unsigned long long)r->thread_position[k]);
  }
  t.put("))");
  *t.at = '\0';
  r->faulted = 1;
  __threadfence();
  atomicExch(&r->lock, 0);
}

__device__ __noinline__ void out_of_bounds(const char* file, int line, const char* expr, unsigned kind,
                                           const region& r, const void* at, size_t size) {
  text t;
  mg_debug_report* rep = claim(file, line, t);
  if (!rep) return;
  const long long bytes = (long long)(r.end - r.base);
  const long long offset = (long long)(static_cast<const unsigned char*>(at) - r.base);
  const long long s = (long long)size;
  const long long index = offset >= 0 ? offset / s : -((-offset + s - 1) / s);
  const char* name = block.names ? block.names[r.threadgroup ? MG_MAX_BUFFERS + r.slot : r.slot] : nullptr;
  t.put("out-of-bounds ");
  t.put(access_word(kind));
  t.put(" `");
  t.put(expr);
  t.put("`: element ");
  t.put_signed(index);
  t.put(" (");
  t.put((unsigned long long)size);
  t.put(" bytes each, byte offset ");
  t.put_signed(offset);
  t.put(") of '");
  t.put(name ? name : "threadgroup memory");
  t.put(r.threadgroup ? "' ([[threadgroup(" : "' ([[buffer(");
  t.put((unsigned long long)r.slot);
  t.put(")]], ");
  t.put((unsigned long long)bytes);
  t.put(" bytes), which holds ");
  t.put((unsigned long long)(bytes / s));
  finish(rep, t);
}

__device__ __noinline__ void index_out_of_range(const char* file, int line, const char* expr, unsigned kind,
                                                long long index, size_t extent) {
  text t;
  mg_debug_report* rep = claim(file, line, t);
  if (!rep) return;
  t.put("out-of-bounds ");
  t.put(access_word(kind));
  t.put(" `");
  t.put(expr);
  t.put("`: index ");
  t.put_signed(index);
  t.put(" of an array of ");
  t.put((unsigned long long)extent);
  t.put(" elements");
  finish(rep, t);
}

// Where a failed access goes instead (one per module; what is read there means nothing).
__device__ __align__(64) unsigned char sink_bytes[1 << 16];
template <class T> __device__ __forceinline__ T& sink() {
  static_assert(sizeof(T) <= sizeof(sink_bytes), "an element larger than debug mode's scratch space");
  return *reinterpret_cast<T*>(sink_bytes);
}

// ---- regions: the launch's buffers and dynamic threadgroup memory

// The region holding `a`; with `one_past`, else one that `a` is just past the end of. Inside
// wins: buffers can be adjacent (the pointer to one is then also one past the end of another).
__device__ __forceinline__ const region* region_holding(const unsigned char* a) {
  for (unsigned k = 0; k < block.regions; ++k)
    if (a >= regions[k].base && a < regions[k].end) return &regions[k];
  return nullptr;
}
__device__ __forceinline__ bool find(const unsigned char* a, region& out, bool one_past) {
  if (const region* r = region_holding(a)) {
    out = *r;
    return true;
  }
  for (unsigned k = 0; one_past && k < block.regions; ++k)
    if (a == regions[k].end) {
      out = regions[k];
      return true;
    }
  return false;
}

// A pointer in no region that lands close beyond (or before) a buffer most likely came from it.
__device__ __forceinline__ bool near(const unsigned char* a, region& out) {
  constexpr unsigned long long window = 16ull << 20;
  const mg_launch& L = *block.launch;
  for (unsigned n = 0; n < MG_MAX_BUFFERS; ++n) {
    const unsigned long long bytes = L.slot_bytes[n];
    if (!bytes || L.inline_offset[n] != MG_NOT_INLINE) continue;
    const auto* base = static_cast<const unsigned char*>(cuda::slot_address(L, n));
    if ((a >= base + bytes && (unsigned long long)(a - (base + bytes)) < window) ||
        (a < base && (unsigned long long)(base - a) <= window)) {
      out = region{base, base + bytes, int(n), false};
      return true;
    }
  }
  return false;
}

__device__ __forceinline__ bool fits(const region& r, const unsigned char* a, size_t size, unsigned kind) {
  return a >= r.base && (kind == address_only ? a <= r.end : a + size <= r.end && a + size > a);
}

// An access of `size` bytes at `at` through a pointer whose base was `base` (as on cpu: the
// region of the base, else of the access, else the buffer it lands near; memory in none of
// them - a thread's own arrays, program constants, threadgroup variables - is not checked).
__device__ __forceinline__ bool pointer_ok(const char* file, int line, const char* expr, unsigned kind,
                                           const void* base, const void* at, size_t size) {
  const auto* a = static_cast<const unsigned char*>(at);
  if (__isLocal(at)) return true;
  region r;
  if (!find(static_cast<const unsigned char*>(base), r, true) && !find(a, r, false) && (__isShared(at) || !near(a, r)))
    return true;
  if (fits(r, a, size, kind)) return true;
  out_of_bounds(file, line, expr, kind, r, at, size);
  return false;
}

// A load or store on CUDA must be aligned to its type's alignment (16 bytes for a float4);
// Apple GPUs take vectors at addresses aligned only to their element (ggml's mul_mm writes rows
// through `(device float4 *)` at 8-byte aligned addresses when a row is not a multiple of 4
// floats), and on CUDA such an access ends the context. Debug mode names it instead.
__device__ __forceinline__ bool aligned(const void* at, size_t align) {
  return ((unsigned long long)at & (align - 1)) == 0;
}
__device__ __noinline__ void misaligned(const char* file, int line, const char* expr, unsigned kind, const void* at,
                                        size_t size, size_t align) {
  text t;
  mg_debug_report* rep = claim(file, line, t);
  if (!rep) return;
  const unsigned long long a = (unsigned long long)at;
  t.put("misaligned ");
  t.put(access_word(kind));
  t.put(" `");
  t.put(expr);
  t.put("`: ");
  t.put((unsigned long long)size);
  t.put(" bytes at an address aligned to ");
  t.put(a & (~a + 1));
  t.put(" bytes; CUDA needs ");
  t.put((unsigned long long)align);
  t.put(" (Apple GPUs accept a vector aligned to its element; on the cuda backend vectors are aligned to "
        "their size unless METALGPU_CUDA_ELEMENT_ALIGNED_VECTORS=1)");
  finish(rep, t);
}
__device__ __forceinline__ bool alignment_ok(const char* file, int line, const char* expr, unsigned kind,
                                             const void* at, size_t size, size_t align) {
  if (kind == address_only || aligned(at, align)) return true;
  misaligned(file, line, expr, kind, at, size, align);
  return false;
}

// An element of an array of known extent, in bounds: nothing more to check on cuda.
__device__ __forceinline__ void array_element(const char*, int, const char*, unsigned, const void*, size_t) {}

// A kernel's pointer argument (device, constant or threadgroup), looked up once at the kernel's
// start: an access through it that stays inside takes a few comparisons, any other the full
// check. (The cpu backend's proof of accesses by the grid position per share has no
// counterpart here: grid_proven() declines.)
template <class P> __device__ __forceinline__ const region* kernel_buffer(P p) {
  if constexpr (metal::is_pointer<P>::value) return region_holding(static_cast<const unsigned char*>((const void*)p));
  return nullptr;
}
__device__ __forceinline__ bool within(const region* r, const void* base, const void* at, size_t size, size_t align,
                                       unsigned kind) {
  const auto *b = static_cast<const unsigned char*>(base), *a = static_cast<const unsigned char*>(at);
  return r && b >= r->base && b < r->end && fits(*r, a, size, kind) && aligned(at, align);
}
__device__ __forceinline__ bool grid_proven() { return false; }

// Threadgroup variables are checked through their extent only (see the top of this file).
__device__ __forceinline__ void note_threadgroup_variable(const void*, size_t, const char*) {}

}  // namespace dbg

__device__ inline void threadgroup_barrier_impl(const char*, int) { threadgroup_barrier_impl(); }

}  // namespace __metalgpu

#endif  // MG_DEBUG
