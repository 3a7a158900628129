// The Metal backend (Objective-C++): the user's MSL goes to Metal's own compiler, buffers are
// MTLBuffers (`.contents` aliases shared storage), dispatches are compute command encoders on
// one command queue per Interface.
//
// Written within the limits that let the same file compile with Apple's clang and with
// g++/GNUstep against the test double (src/backends/metal/test_double): no ARC (manual
// retain/release, owned through Ref<>), no blocks, NSAutoreleasePool through the Pool guard
// (never @autoreleasepool), no @try. C++ exceptions leave this file and are caught by the
// .cpp callers; the Pool and Ref destructors keep pools and references balanced while they
// unwind. Objects returned by new.../alloc/copy/Create/Copy are owned (+1); everything else
// is autoreleased and lives until the innermost Pool drains.
#if defined(METALGPU_METAL_TEST_DOUBLE)
#import "backends/metal/test_double/Metal.h"  // TEST DOUBLE, not Apple's Metal
#else
#import <Foundation/Foundation.h>
#import <Metal/Metal.h>
#endif

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/backend.hpp"
#include "core/diagnostics.hpp"
#include "core/hash.hpp"
#include "core/interface_impl.hpp"
#include "metalgpu/dtype.hpp"
#include "metalgpu/errors.hpp"
#include "msl/translator.hpp"

// Deprecated-but-working API we use on purpose (fastMathEnabled, MTLArgument reflection):
// they exist on every macOS we support, their replacements do not.
#if defined(__clang__)
#define MG_ALLOW_DEPRECATED_BEGIN \
  _Pragma("clang diagnostic push") _Pragma("clang diagnostic ignored \"-Wdeprecated-declarations\"")
#define MG_ALLOW_DEPRECATED_END _Pragma("clang diagnostic pop")
#else
#define MG_ALLOW_DEPRECATED_BEGIN
#define MG_ALLOW_DEPRECATED_END
#endif

namespace metalgpu::metal {
namespace {

// An autorelease pool for the current scope; drained on scope exit, exceptions included.
class Pool {
 public:
  Pool() : pool_([[NSAutoreleasePool alloc] init]) {}
  ~Pool() { [pool_ drain]; }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

 private:
  NSAutoreleasePool* pool_;
};

// One owned reference to an Objective-C object. Copies retain, destruction releases.
template <class T>
class Ref {
 public:
  Ref() = default;
  static Ref adopt(T o) { return Ref(o); }  // takes over a +1 reference
  static Ref retain(T o) {
    [o retain];
    return Ref(o);
  }
  Ref(const Ref& other) : obj_(other.obj_) { [obj_ retain]; }
  Ref(Ref&& other) noexcept : obj_(other.obj_) { other.obj_ = nil; }
  Ref& operator=(Ref other) noexcept {
    T t = obj_;
    obj_ = other.obj_;
    other.obj_ = t;
    return *this;
  }
  ~Ref() { [obj_ release]; }
  T get() const { return obj_; }
  explicit operator bool() const { return obj_ != nil; }

 private:
  explicit Ref(T o) : obj_(o) {}
  T obj_ = nil;
};

std::string utf8(NSString* s) {
  if (!s) return {};
  const char* c = [s UTF8String];
  return c ? std::string(c) : std::string();
}

std::string describe_error(NSError* e) { return e ? utf8([e localizedDescription]) : std::string("unknown error"); }

// An owned NSString holding `s` (UTF-8).
Ref<NSString*> ns_string(const std::string& s) {
  NSString* str = [[NSString alloc] initWithBytes:s.data() length:s.size() encoding:NSUTF8StringEncoding];
  return Ref<NSString*>::adopt(str);
}

// ---- devices ------------------------------------------------------------------------------

struct DeviceList {
  std::vector<Ref<id<MTLDevice> > > devices;
  std::vector<DeviceInfo> infos;
  std::string why;
};

DeviceInfo describe(id<MTLDevice> dev, int index) {
  DeviceInfo d;
  d.name = utf8([dev name]);
  d.backend = "metal";
  d.index = index;
  d.memory = [dev recommendedMaxWorkingSetSize];
  MTLSize max = [dev maxThreadsPerThreadgroup];
  d.max_threads_per_threadgroup = std::uint32_t(std::min<NSUInteger>(max.width, 1024));
  d.simd_width = 32;  // every Apple GPU; pipelines report their threadExecutionWidth too
  d.max_threadgroup_memory = [dev maxThreadgroupMemoryLength];
  return d;
}

// The system default device first, then the others MTLCopyAllDevices reports. Built once and
// kept for the life of the process (devices do not come and go under an Interface).
const DeviceList& device_list() {
  static const DeviceList* list = [] {
    auto* l = new DeviceList;
    Pool pool;
    Ref<id<MTLDevice> > first = Ref<id<MTLDevice> >::adopt(MTLCreateSystemDefaultDevice());
    if (first) l->devices.push_back(first);
#if !defined(TARGET_OS_IPHONE) || !TARGET_OS_IPHONE
    NSArray* all = MTLCopyAllDevices();  // +1
    for (NSUInteger i = 0; i < [all count]; ++i) {
      id<MTLDevice> d = [all objectAtIndex:i];
      if (d != first.get()) l->devices.push_back(Ref<id<MTLDevice> >::retain(d));
    }
    [all release];
#endif
    for (std::size_t i = 0; i < l->devices.size(); ++i) l->infos.push_back(describe(l->devices[i].get(), int(i)));
    if (l->devices.empty()) l->why = "no Metal device found (MTLCreateSystemDefaultDevice returned nil)";
    return l;
  }();
  return *list;
}

// ---- buffers ------------------------------------------------------------------------------

constexpr std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// Runs one blit pass on `queue` and waits for it. Blits keep offsets and sizes multiples of 4
// (a macOS requirement); MTLBuffer lengths are rounded up to 16 bytes so that always fits.
class Blit {
 public:
  explicit Blit(id<MTLCommandQueue> queue) {
    cb_ = [queue commandBuffer];
    enc_ = [cb_ blitCommandEncoder];
  }
  id<MTLBlitCommandEncoder> encoder() const { return enc_; }
  void finish(const char* what) {
    [enc_ endEncoding];
    [cb_ commit];
    [cb_ waitUntilCompleted];
    if ([cb_ status] == MTLCommandBufferStatusError)
      throw std::runtime_error(std::string("[metal] ") + what + " failed: " + describe_error([cb_ error]));
  }

 private:
  id<MTLCommandBuffer> cb_;  // autoreleased: the caller holds a Pool
  id<MTLBlitCommandEncoder> enc_;
};

// The last command buffer that uses a resource: host access waits for it.
class LastUse {
 public:
  void set(const Ref<id<MTLCommandBuffer> >& cb) {
    std::lock_guard<std::mutex> lock(mutex_);
    cb_ = cb;
  }
  void wait() {
    Ref<id<MTLCommandBuffer> > cb;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      cb = cb_;
      cb_ = Ref<id<MTLCommandBuffer> >();
    }
    if (cb) [cb.get() waitUntilCompleted];
  }

 private:
  std::mutex mutex_;
  Ref<id<MTLCommandBuffer> > cb_;
};

// A shared-storage MTLBuffer of at least `n` bytes (rounded up to 16), for staging.
Ref<id<MTLBuffer> > new_staging_buffer(id<MTLDevice> dev, std::size_t n) {
  Ref<id<MTLBuffer> > s =
      Ref<id<MTLBuffer> >::adopt([dev newBufferWithLength:round_up(std::max<std::size_t>(n, 1), 16)
                                                   options:MTLResourceStorageModeShared]);
  if (!s) throw std::bad_alloc();
  return s;
}

class MetalAllocation final : public Allocation {
 public:
  MetalAllocation(id<MTLDevice> dev, Ref<id<MTLCommandQueue> > queue, std::size_t bytes, Storage storage)
      : queue_(std::move(queue)) {
    nbytes = bytes;
    std::size_t length = round_up(std::max<std::size_t>(bytes, 1), 16);
    if (length > [dev maxBufferLength]) throw std::bad_alloc();
    MTLResourceOptions options = storage == Storage::shared
                                     ? MTLResourceStorageModeShared | MTLResourceHazardTrackingModeDefault
                                     : MTLResourceStorageModePrivate | MTLResourceHazardTrackingModeDefault;
    buffer_ = Ref<id<MTLBuffer> >::adopt([dev newBufferWithLength:length options:options]);
    if (!buffer_) throw std::bad_alloc();
    if (storage == Storage::shared) {
      host = [buffer_.get() contents];
      std::memset(host, 0, length);  // metalgpu buffers start zeroed on every backend
    } else {
      Pool pool;
      Blit blit(queue_.get());
      [blit.encoder() fillBuffer:buffer_.get() range:NSMakeRange(0, length) value:0];
      blit.finish("clearing a private buffer");
    }
    // What the core sees as the kernel's memory: shared storage is one memory for host and GPU
    // (interop exports it as host memory); private storage is only the MTLBuffer. Dispatches
    // bind buffer() either way.
    device = host ? host : (void*)buffer_.get();
  }
  // Memory the caller owns (Interface.wrap), used in place: page-aligned, a whole number of
  // pages (Apple's rule for newBufferWithBytesNoCopy); `owner` keeps it alive.
  MetalAllocation(id<MTLDevice> dev, Ref<id<MTLCommandQueue> > queue, void* memory, std::size_t bytes,
                  std::shared_ptr<void> owner)
      : queue_(std::move(queue)), owner_(std::move(owner)) {
    nbytes = bytes;
    buffer_ = Ref<id<MTLBuffer> >::adopt([dev newBufferWithBytesNoCopy:memory
                                                                length:bytes
                                                               options:MTLResourceStorageModeShared
                                                           deallocator:nil]);
    if (!buffer_)
      throw std::invalid_argument("[wrap] Metal refused to use the array's memory in place "
                                  "(newBufferWithBytesNoCopy:); use array_to_buffer() (one copy)");
    host = device = memory;
  }
  ~MetalAllocation() override {
    // A command buffer that uses this MTLBuffer retains it until it completes; memory that is
    // only borrowed must also stay with its owner until then.
    if (owner_) settle();
  }

  id<MTLBuffer> buffer() const { return buffer_.get(); }

  void write(std::size_t offset, const void* src, std::size_t n) override {
    settle();
    if (host) {
      std::memcpy(static_cast<char*>(host) + offset, src, n);
      return;
    }
    std::size_t a = offset & ~std::size_t(3), b = round_up(offset + n, 4);
    Pool pool;
    Ref<id<MTLBuffer> > staging = make_staging(b - a);
    if (a != offset || b != offset + n) {  // keep the bytes around an unaligned range
      Blit in(queue_.get());
      [in.encoder() copyFromBuffer:buffer_.get() sourceOffset:a toBuffer:staging.get() destinationOffset:0 size:b - a];
      in.finish("reading a private buffer");
    }
    std::memcpy(static_cast<char*>([staging.get() contents]) + (offset - a), src, n);
    Blit out(queue_.get());
    [out.encoder() copyFromBuffer:staging.get() sourceOffset:0 toBuffer:buffer_.get() destinationOffset:a size:b - a];
    out.finish("uploading to a private buffer");
  }

  void read(std::size_t offset, void* dst, std::size_t n) const override {
    auto* self = const_cast<MetalAllocation*>(this);
    self->settle();
    if (host) {
      std::memcpy(dst, static_cast<const char*>(host) + offset, n);
      return;
    }
    std::size_t a = offset & ~std::size_t(3), b = round_up(offset + n, 4);
    Pool pool;
    Ref<id<MTLBuffer> > staging = self->make_staging(b - a);
    Blit blit(queue_.get());
    [blit.encoder() copyFromBuffer:buffer_.get() sourceOffset:a toBuffer:staging.get() destinationOffset:0 size:b - a];
    blit.finish("reading back a private buffer");
    std::memcpy(dst, static_cast<const char*>([staging.get() contents]) + (offset - a), n);
  }

  void copy_to(Allocation& other) const override {
    auto* o = dynamic_cast<MetalAllocation*>(&other);
    if (!o) return Allocation::copy_to(other);
    const_cast<MetalAllocation*>(this)->settle();
    o->settle();
    std::size_t n = std::min(nbytes, o->nbytes);
    // Lengths are padded to 16, so rounding the size up to 4 stays inside both buffers; the
    // destination's padding bytes are never visible to the user.
    Pool pool;
    Blit blit(queue_.get());
    [blit.encoder() copyFromBuffer:buffer_.get() sourceOffset:0 toBuffer:o->buffer_.get() destinationOffset:0
                              size:round_up(n, 4)];
    blit.finish("copying between buffers");
  }

  void host_will_access() override { settle(); }

  void used_by(const Ref<id<MTLCommandBuffer> >& cb) { last_use_.set(cb); }

 private:
  void settle() { last_use_.wait(); }
  Ref<id<MTLBuffer> > make_staging(std::size_t n) { return new_staging_buffer([buffer_.get() device], n); }

  Ref<id<MTLCommandQueue> > queue_;
  std::shared_ptr<void> owner_;  // wrapped memory's owner; released after buffer_
  Ref<id<MTLBuffer> > buffer_;
  LastUse last_use_;
};

// ---- textures -----------------------------------------------------------------------------

// The Metal pixel format of one of our texel formats (texture.hpp), by kind and channel count.
MTLPixelFormat pixel_format(const TextureFormat& f) {
  struct Row {
    unsigned kind;
    MTLPixelFormat r, rg, rgba;
  };
  static const Row rows[] = {
      {MG_TEXEL_FLOAT32, MTLPixelFormatR32Float, MTLPixelFormatRG32Float, MTLPixelFormatRGBA32Float},
      {MG_TEXEL_FLOAT16, MTLPixelFormatR16Float, MTLPixelFormatRG16Float, MTLPixelFormatRGBA16Float},
      {MG_TEXEL_UNORM8, MTLPixelFormatR8Unorm, MTLPixelFormatRG8Unorm, MTLPixelFormatRGBA8Unorm},
      {MG_TEXEL_SNORM8, MTLPixelFormatR8Snorm, MTLPixelFormatRG8Snorm, MTLPixelFormatRGBA8Snorm},
      {MG_TEXEL_UNORM16, MTLPixelFormatR16Unorm, MTLPixelFormatRG16Unorm, MTLPixelFormatRGBA16Unorm},
      {MG_TEXEL_SNORM16, MTLPixelFormatR16Snorm, MTLPixelFormatRG16Snorm, MTLPixelFormatRGBA16Snorm},
      {MG_TEXEL_UINT32, MTLPixelFormatR32Uint, MTLPixelFormatRG32Uint, MTLPixelFormatRGBA32Uint},
      {MG_TEXEL_SINT32, MTLPixelFormatR32Sint, MTLPixelFormatRG32Sint, MTLPixelFormatRGBA32Sint},
      {MG_TEXEL_UINT16, MTLPixelFormatR16Uint, MTLPixelFormatRG16Uint, MTLPixelFormatRGBA16Uint},
      {MG_TEXEL_SINT16, MTLPixelFormatR16Sint, MTLPixelFormatRG16Sint, MTLPixelFormatRGBA16Sint},
      {MG_TEXEL_UINT8, MTLPixelFormatR8Uint, MTLPixelFormatRG8Uint, MTLPixelFormatRGBA8Uint},
      {MG_TEXEL_SINT8, MTLPixelFormatR8Sint, MTLPixelFormatRG8Sint, MTLPixelFormatRGBA8Sint},
  };
  for (const Row& row : rows)
    if (row.kind == f.code >> 4) return f.channels == 1 ? row.r : f.channels == 2 ? row.rg : row.rgba;
  throw std::invalid_argument("[create_texture] format '" + f.name + "' has no Metal pixel format");
}

MTLTextureType metal_texture_type(TextureType t) {
  switch (t) {
    case TextureType::tex1d: return MTLTextureType1D;
    case TextureType::tex1d_array: return MTLTextureType1DArray;
    case TextureType::tex2d: return MTLTextureType2D;
    case TextureType::tex2d_array: return MTLTextureType2DArray;
    case TextureType::tex3d: return MTLTextureType3D;
  }
  return MTLTextureType2D;
}

// Encodes copies between a buffer holding texels in our layout (rows, then slices, packed)
// and the texture. Array layers are one copy each; a 3D texture is one copy of all its images.
void encode_texel_copy(id<MTLBlitCommandEncoder> enc, id<MTLBuffer> buffer, id<MTLTexture> texture,
                       const TextureLayout& l, bool to_texture) {
  const bool is3d = l.desc.type == TextureType::tex3d;
  const MTLSize size = MTLSizeMake(l.desc.width, l.desc.height, is3d ? l.desc.depth : 1);
  const NSUInteger bytes_per_image = is3d ? l.slice_pitch : 0;  // Apple: 0 unless 3D
  const MTLOrigin origin = MTLOriginMake(0, 0, 0);
  for (NSUInteger layer = 0; layer < l.desc.array_length; ++layer) {
    const NSUInteger offset = layer * l.slice_pitch;
    if (to_texture)
      [enc copyFromBuffer:buffer
                 sourceOffset:offset
            sourceBytesPerRow:l.row_pitch
          sourceBytesPerImage:bytes_per_image
                   sourceSize:size
                    toTexture:texture
             destinationSlice:layer
             destinationLevel:0
            destinationOrigin:origin];
    else
      [enc copyFromTexture:texture
                       sourceSlice:layer
                       sourceLevel:0
                      sourceOrigin:origin
                        sourceSize:size
                          toBuffer:buffer
                 destinationOffset:offset
            destinationBytesPerRow:l.row_pitch
          destinationBytesPerImage:bytes_per_image];
  }
}

// A texture: an MTLTexture (private storage: Metal lays texels out as it likes) and, for
// storage "shared", a host mirror in our linear layout that `.contents` aliases. Like CUDA's
// shared buffers, the two are kept coherent lazily: host writes are copied in before the next
// dispatch that binds the texture, kernel writes are copied out when the host next looks
// (at once, in the same command buffer, while a numpy view is open).
class MetalTexture final : public Allocation {
 public:
  MetalTexture(id<MTLDevice> dev, Ref<id<MTLCommandQueue> > queue, const TextureLayout& layout)
      : queue_(std::move(queue)), layout_(layout) {
    nbytes = layout.nbytes;
    Pool pool;
    Ref<MTLTextureDescriptor*> d = Ref<MTLTextureDescriptor*>::adopt([[MTLTextureDescriptor alloc] init]);
    [d.get() setTextureType:metal_texture_type(layout.desc.type)];
    [d.get() setPixelFormat:pixel_format(layout.format)];
    [d.get() setWidth:layout.desc.width];
    [d.get() setHeight:layout.desc.height];
    [d.get() setDepth:layout.desc.depth];
    [d.get() setArrayLength:layout.desc.array_length];
    [d.get() setMipmapLevelCount:1];
    [d.get() setStorageMode:MTLStorageModePrivate];
    // Kernels may declare any access; Metal checks the usage against it.
    [d.get() setUsage:MTLTextureUsageShaderRead | MTLTextureUsageShaderWrite];
    texture_ = Ref<id<MTLTexture> >::adopt([dev newTextureWithDescriptor:d.get()]);
    if (!texture_)
      throw std::invalid_argument("[create_texture] Metal could not create a " +
                                  std::string(texture_type_name(layout.desc.type)) + " of " +
                                  std::to_string(layout.desc.width) + " x " + std::to_string(layout.desc.height) +
                                  " x " + std::to_string(layout.desc.depth) + " x " +
                                  std::to_string(layout.desc.array_length) + " " + layout.format.name +
                                  " texels (Metal allows 16384 wide and high, 2048 deep or layers)");
    if (layout.desc.storage == Storage::shared) {
      mirror_ = new_staging_buffer(dev, nbytes);
      host = [mirror_.get() contents];
      std::memset(host, 0, nbytes);  // metalgpu textures start zeroed on every backend
      host_dirty_ = true;            // ... and the first dispatch copies those zeros in
    } else {
      Ref<id<MTLBuffer> > zeros = new_staging_buffer(dev, nbytes);
      std::memset([zeros.get() contents], 0, nbytes);
      Blit blit(queue_.get());
      encode_texel_copy(blit.encoder(), zeros.get(), texture_.get(), layout_, true);
      blit.finish("clearing a private texture");
    }
    device = host ? host : (void*)texture_.get();
  }

  id<MTLTexture> texture() const { return texture_.get(); }

  void write(std::size_t offset, const void* src, std::size_t n) override {
    settle();
    if (host) {
      std::memcpy(static_cast<char*>(host) + offset, src, n);
      host_dirty_ = true;
      device_newer_ = false;
      return;
    }
    std::vector<char> whole;
    if (offset != 0 || n != nbytes) {  // a part: keep the texels around it
      whole.resize(nbytes);
      read(0, whole.data(), nbytes);
      std::memcpy(whole.data() + offset, src, n);
      src = whole.data();
    }
    Pool pool;
    Ref<id<MTLBuffer> > staging = new_staging_buffer([texture_.get() device], nbytes);
    std::memcpy([staging.get() contents], src, nbytes);
    Blit blit(queue_.get());
    encode_texel_copy(blit.encoder(), staging.get(), texture_.get(), layout_, true);
    blit.finish("uploading a texture");
  }

  void read(std::size_t offset, void* dst, std::size_t n) const override {
    auto* self = const_cast<MetalTexture*>(this);
    self->settle();
    if (host) {
      if (device_newer_) self->pull_host();
      std::memcpy(dst, static_cast<const char*>(host) + offset, n);
      return;
    }
    Pool pool;
    Ref<id<MTLBuffer> > staging = new_staging_buffer([texture_.get() device], nbytes);
    Blit blit(queue_.get());
    encode_texel_copy(blit.encoder(), staging.get(), texture_.get(), layout_, false);
    blit.finish("reading back a texture");
    std::memcpy(dst, static_cast<const char*>([staging.get() contents]) + offset, n);
  }

  // Between textures of the same type, size and format (checked by Texture::copy_to).
  void copy_to(Allocation& other) const override {
    auto* o = dynamic_cast<MetalTexture*>(&other);
    if (!o) return Allocation::copy_to(other);
    auto* self = const_cast<MetalTexture*>(this);
    self->settle();
    o->settle();
    self->push_host();  // the source's newest texels may sit in its mirror
    Pool pool;
    Blit blit(queue_.get());
    [blit.encoder() copyFromTexture:texture_.get() toTexture:o->texture_.get()];
    blit.finish("copying between textures");
    o->host_dirty_ = false;
    o->device_newer_ = o->mirror_ ? true : false;
    if (o->views_ > 0) o->pull_host();
  }

  void host_will_access() override {
    settle();
    if (device_newer_) pull_host();
    host_dirty_ = true;  // whoever asked for the pointer may write through it
  }
  void view_opened() override { ++views_; }
  void view_closed() override { --views_; }

  // Dispatch side, all encoded into the dispatch's own command buffer.
  bool needs_push() const { return mirror_ && (host_dirty_ || views_ > 0) && !device_newer_; }
  void encode_push(id<MTLBlitCommandEncoder> enc) {
    encode_texel_copy(enc, mirror_.get(), texture_.get(), layout_, true);
    host_dirty_ = false;
  }
  // After a kernel that may write the texture: a host with a live view gets the texels in the
  // same command buffer (returns true: encode_pull follows), others when they next look.
  bool written_needs_pull() {
    if (!mirror_) return false;
    if (views_ > 0) return true;
    device_newer_ = true;
    return false;
  }
  void encode_pull(id<MTLBlitCommandEncoder> enc) {
    encode_texel_copy(enc, mirror_.get(), texture_.get(), layout_, false);
    device_newer_ = false;
  }
  void used_by(const Ref<id<MTLCommandBuffer> >& cb) { last_use_.set(cb); }

 private:
  void settle() { last_use_.wait(); }
  void push_host() {
    if (!needs_push()) return;
    Pool pool;
    Blit blit(queue_.get());
    encode_push(blit.encoder());
    blit.finish("uploading a texture");
  }
  void pull_host() {
    Pool pool;
    Blit blit(queue_.get());
    encode_pull(blit.encoder());
    blit.finish("reading back a texture");
  }

  Ref<id<MTLCommandQueue> > queue_;
  TextureLayout layout_;
  Ref<id<MTLTexture> > texture_;
  Ref<id<MTLBuffer> > mirror_;  // storage "shared" only
  std::atomic<int> views_{0};
  bool host_dirty_ = false;    // the mirror may be newer than the texture
  bool device_newer_ = false;  // the texture is newer than the mirror
  LastUse last_use_;
};

// The sampler state for sampler descriptor bits (mg_abi.h), as Metal understands them.
Ref<MTLSamplerDescriptor*> sampler_descriptor(std::uint32_t bits) {
  static const MTLSamplerAddressMode modes[] = {
      MTLSamplerAddressModeClampToEdge,   // MG_ADDRESS_CLAMP_TO_EDGE
      MTLSamplerAddressModeRepeat,        // MG_ADDRESS_REPEAT
      MTLSamplerAddressModeMirrorRepeat,  // MG_ADDRESS_MIRRORED_REPEAT
      MTLSamplerAddressModeClampToZero,   // MG_ADDRESS_CLAMP_TO_ZERO
      MTLSamplerAddressModeClampToBorderColor,  // MG_ADDRESS_CLAMP_TO_BORDER
  };
  static const MTLSamplerBorderColor borders[] = {MTLSamplerBorderColorTransparentBlack,
                                                  MTLSamplerBorderColorOpaqueBlack, MTLSamplerBorderColorOpaqueWhite};
  auto address = [&](int axis) {
    unsigned m = (bits >> MG_SAMPLER_ADDRESS_SHIFT(axis)) & 7u;
    return modes[m < 5 ? m : 0];
  };
  Ref<MTLSamplerDescriptor*> d = Ref<MTLSamplerDescriptor*>::adopt([[MTLSamplerDescriptor alloc] init]);
  [d.get() setNormalizedCoordinates:(bits & MG_SAMPLER_NORMALIZED) ? YES : NO];
  [d.get() setSAddressMode:address(0)];
  [d.get() setTAddressMode:address(1)];
  [d.get() setRAddressMode:address(2)];
  [d.get() setMagFilter:(bits & MG_SAMPLER_MAG_LINEAR) ? MTLSamplerMinMagFilterLinear : MTLSamplerMinMagFilterNearest];
  [d.get() setMinFilter:(bits & MG_SAMPLER_MIN_LINEAR) ? MTLSamplerMinMagFilterLinear : MTLSamplerMinMagFilterNearest];
  unsigned border = (bits >> MG_SAMPLER_BORDER_SHIFT) & 3u;
  [d.get() setBorderColor:borders[border < 3 ? border : 0]];
  return d;
}

// Metal defines sampling with pixel coordinates only for clamp_to_edge / clamp_to_zero and equal
// min and mag filters (MTLSamplerDescriptor.normalizedCoordinates); say so rather than let the
// GPU return undefined texels.
void check_pixel_sampler(std::uint32_t bits, int slot) {
  if (bits & MG_SAMPLER_NORMALIZED) return;
  for (int axis = 0; axis < 3; ++axis) {
    unsigned m = (bits >> MG_SAMPLER_ADDRESS_SHIFT(axis)) & 7u;
    if (m != MG_ADDRESS_CLAMP_TO_EDGE && m != MG_ADDRESS_CLAMP_TO_ZERO)
      throw std::invalid_argument("[run_function] sampler(" + std::to_string(slot) +
                                  ") uses pixel coordinates (normalized=False) with an address mode other than "
                                  "clamp_to_edge or clamp_to_zero, which Metal leaves undefined");
  }
  if (bool(bits & MG_SAMPLER_MAG_LINEAR) != bool(bits & MG_SAMPLER_MIN_LINEAR))
    throw std::invalid_argument("[run_function] sampler(" + std::to_string(slot) +
                                ") uses pixel coordinates with different min and mag filters, which Metal "
                                "leaves undefined");
}

// ---- libraries and pipelines --------------------------------------------------------------

// The shader as Metal receives it: our preprocessor's output (user includes resolved,
// defines applied, macros expanded, so include_dirs and defines behave as on every backend),
// with `#line` markers so Metal's diagnostics name the user's file and line, after the
// system headers our preprocessor set aside.
std::string metal_source(const msl::Translation& tr) {
  const msl::Lexed& lx = tr.model().lexed();
  std::string out = "#include <metal_stdlib>\n";
  if (tr.source().find("simd/") != std::string::npos) out += "#include <simd/simd.h>\n";
  int file = -1, line = 0;
  bool line_start = true;
  auto directive = [&](int f, int l) {
    if (!line_start) out += '\n';
    std::string name = f >= 0 && f < int(lx.files.size()) ? lx.files[std::size_t(f)] : std::string("<string>");
    std::string escaped;
    for (char c : name) {
      if (c == '\\' || c == '"') escaped += '\\';
      escaped += c;
    }
    out += "#line " + std::to_string(l) + " \"" + escaped + "\"\n";
    file = f;
    line = l;
    line_start = true;
  };
  for (const msl::Token& t : lx.tokens) {
    if (t.kind == msl::TokenKind::end) break;
    if (t.file != file || t.line < line || t.line - line > 8) directive(t.file, t.line);
    while (line < t.line) {
      out += '\n';
      ++line;
      line_start = true;
    }
    if (t.kind == msl::TokenKind::pragma) {
      if (!line_start) out += '\n';
      out += '#' + t.text + '\n';
      file = -1;  // re-sync with a #line before the next token
      line_start = true;
      continue;
    }
    if (!line_start) out += ' ';
    out += t.text;
    line_start = false;
  }
  out += '\n';
  return out;
}

// Metal's compiler log as a CompileError about the user's file and line.
[[noreturn]] void throw_compile_error(NSError* err, const std::string& what, const std::string& function,
                                      const std::string& source) {
  std::string log = err ? utf8([err localizedDescription]) : std::string();
  Diagnostic d = first_error(log);
  if (!d.found)
    throw CompileError("[metal] " + what + " failed" + (log.empty() ? std::string() : ":\n" + log.substr(0, 2000)),
                       "", 0, log, function, source);
  std::string message = d.file + ":" + std::to_string(d.line);
  if (d.column) message += ":" + std::to_string(d.column);
  message += ": error: " + d.text;
  throw CompileError(message, d.file, d.line, log, function, source);
}

MTLLanguageVersion language_version() {
#if defined(METALGPU_METAL_TEST_DOUBLE)
  return MTLLanguageVersion3_1;
#else
  // Numeric values, so building with an older SDK still works: 3.1 needs macOS 14, 3.0 macOS 13.
  NSOperatingSystemVersion v = [[NSProcessInfo processInfo] operatingSystemVersion];
  if (v.majorVersion >= 14) return MTLLanguageVersion((3 << 16) + 1);
  if (v.majorVersion >= 13) return MTLLanguageVersion((3 << 16) + 0);
  return MTLLanguageVersion((2 << 16) + 4);
#endif
}

MTLDataType data_type(const std::string& type) {
  if (type == "bool") return MTLDataTypeBool;
  if (type == "char" || type == "int8_t") return MTLDataTypeChar;
  if (type == "uchar" || type == "uint8_t") return MTLDataTypeUChar;
  if (type == "short" || type == "int16_t") return MTLDataTypeShort;
  if (type == "ushort" || type == "uint16_t") return MTLDataTypeUShort;
  if (type == "int" || type == "int32_t") return MTLDataTypeInt;
  if (type == "uint" || type == "uint32_t" || type == "unsigned" || type == "unsigned int") return MTLDataTypeUInt;
  if (type == "long" || type == "int64_t") return MTLDataTypeLong;
  if (type == "ulong" || type == "uint64_t") return MTLDataTypeULong;
  if (type == "half") return MTLDataTypeHalf;
  if (type == "float") return MTLDataTypeFloat;
  return MTLDataTypeNone;
}

std::uint16_t half_bits(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  std::uint32_t sign = (x >> 16) & 0x8000u, mag = x & 0x7fffffffu;
  if (mag > 0x7f800000u) return std::uint16_t(sign | 0x7e00u);  // NaN
  if (mag >= 0x477ff000u) return std::uint16_t(sign | 0x7c00u);  // overflows to inf
  if (mag < 0x38800000u) {                                      // half subnormal or zero
    if (mag < 0x33000000u) return std::uint16_t(sign);
    std::uint32_t mant = (mag & 0x7fffffu) | 0x800000u;
    int shift = 126 - int(mag >> 23);
    std::uint32_t r = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (r & 1))) ++r;
    return std::uint16_t(sign | r);
  }
  std::uint32_t r = (mag - 0x38000000u) >> 13, rem = mag & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) ++r;
  return std::uint16_t(sign | r);
}

// The bytes of `v` as a value of Metal type `t`.
std::string constant_bytes(MTLDataType t, const ConstantValue& v) {
  double d = std::visit([](auto x) { return double(x); }, v.value);
  std::int64_t i = std::visit([](auto x) { return std::int64_t(x); }, v.value);
  std::uint64_t u = std::visit([](auto x) { return std::uint64_t(x); }, v.value);
  auto raw = [](auto x) { return std::string(reinterpret_cast<const char*>(&x), sizeof x); };
  switch (t) {
    case MTLDataTypeBool: return raw(bool(d != 0));
    case MTLDataTypeChar: return raw(std::int8_t(i));
    case MTLDataTypeUChar: return raw(std::uint8_t(u));
    case MTLDataTypeShort: return raw(std::int16_t(i));
    case MTLDataTypeUShort: return raw(std::uint16_t(u));
    case MTLDataTypeInt: return raw(std::int32_t(i));
    case MTLDataTypeUInt: return raw(std::uint32_t(u));
    case MTLDataTypeLong: return raw(std::int64_t(i));
    case MTLDataTypeULong: return raw(std::uint64_t(u));
    case MTLDataTypeHalf: return raw(half_bits(float(d)));
    case MTLDataTypeFloat: return raw(float(d));
    default: return {};
  }
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Function-constant values for newFunctionWithName:constantValues:error:, by index or name
// as the caller gave them. The constants were validated by msl::resolve_constants.
Ref<MTLFunctionConstantValues*> constant_values(const msl::Translation& tr, const Constants& constants) {
  MTLFunctionConstantValues* fresh = [[MTLFunctionConstantValues alloc] init];
  Ref<MTLFunctionConstantValues*> values = Ref<MTLFunctionConstantValues*>::adopt(fresh);
  const auto& decls = tr.model().function_constants();
  for (const auto& [key, value] : constants) {
    for (const auto& decl : decls) {
      bool by_index = all_digits(key) && std::to_string(decl.index) == key;
      if (!by_index && decl.name != key) continue;
      MTLDataType t = data_type(decl.type);
      if (t == MTLDataTypeNone)
        throw std::invalid_argument("[set_function] function constant '" + decl.name + "' has type '" + decl.type +
                                    "', which the metal backend cannot set from a host value");
      std::string bytes = constant_bytes(t, value);
      if (by_index) {
        [values.get() setConstantValue:bytes.data() type:t atIndex:NSUInteger(decl.index)];
      } else {
        Ref<NSString*> name = ns_string(decl.name);
        [values.get() setConstantValue:bytes.data() type:t withName:name.get()];
      }
      break;
    }
  }
  return values;
}

// One kernel's pipeline: `desc.entry` points here.
struct KernelPipeline {
  std::string name;
  mg_kernel_desc desc{};
  Ref<id<MTLComputePipelineState> > pso;
  std::uint32_t max_threads = 0;
  std::uint32_t width = 0;
  std::uint32_t threadgroup_slots = 0;  // bit n: the kernel declares [[threadgroup(n)]]
};

// One library with one set of function-constant values; a kernel's pipeline is made the
// first time it is asked for, then kept: the cache is keyed (library, constants) -> function.
class MetalProgram final : public Program {
 public:
  MetalProgram(id<MTLDevice> dev, Ref<id<MTLLibrary> > library, Ref<MTLFunctionConstantValues*> values,
               const msl::Translation& tr)
      : dev_(dev), library_(std::move(library)), values_(std::move(values)), kernels_(tr.kernels()),
        source_(tr.source()) {}

  const mg_kernel_desc* find(const std::string& name) const override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& p : pipelines_)
      if (p->name == name) return &p->desc;
    const msl::KernelInfo* kernel = nullptr;
    for (const auto& k : kernels_)
      if (k.name == name) kernel = &k;
    if (!kernel) return nullptr;
    pipelines_.push_back(make_pipeline(*kernel));
    return &pipelines_.back()->desc;
  }
  std::uint32_t max_total_threads(const mg_kernel_desc& d) const override {
    return static_cast<const KernelPipeline*>(d.entry)->max_threads;
  }
  std::size_t pipeline_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pipelines_.size();
  }

 private:
  std::unique_ptr<KernelPipeline> make_pipeline(const msl::KernelInfo& kernel) const {
    Pool pool;
    Ref<NSString*> fname = ns_string(kernel.name);
    NSError* err = nil;
    Ref<id<MTLFunction> > fn;
    if (values_) {
      fn = Ref<id<MTLFunction> >::adopt([library_.get() newFunctionWithName:fname.get()
                                                              constantValues:values_.get()
                                                                       error:&err]);
      if (!fn) throw_compile_error(err, "specialising '" + kernel.name + "'", kernel.name, source_);
    } else {
      fn = Ref<id<MTLFunction> >::adopt([library_.get() newFunctionWithName:fname.get()]);
      if (!fn)
        throw std::runtime_error("[metal] the compiled library has no function '" + kernel.name + "'");
    }
    auto p = std::make_unique<KernelPipeline>();
    p->name = kernel.name;
    MTLComputePipelineReflection* reflection = nil;  // autoreleased
    MG_ALLOW_DEPRECATED_BEGIN
    p->pso = Ref<id<MTLComputePipelineState> >::adopt([dev_ newComputePipelineStateWithFunction:fn.get()
                                                                                       options:MTLPipelineOptionArgumentInfo |
                                                                                               MTLPipelineOptionBufferTypeInfo
                                                                                    reflection:&reflection
                                                                                         error:&err]);
    MG_ALLOW_DEPRECATED_END
    if (!p->pso) throw_compile_error(err, "building the pipeline of '" + kernel.name + "'", kernel.name, source_);
    p->max_threads = std::uint32_t([p->pso.get() maxTotalThreadsPerThreadgroup]);
    p->width = std::uint32_t([p->pso.get() threadExecutionWidth]);
    p->desc.name = p->name.c_str();
    p->desc.entry = p.get();
    p->desc.static_threadgroup_bytes = unsigned([p->pso.get() staticThreadgroupMemoryLength]);
    p->desc.flags = kernel.cooperative ? MG_KERNEL_COOPERATIVE : 0;
    for (const auto& param : kernel.params)
      if (param.role == msl::ParamRole::threadgroup_memory && param.slot >= 0 && param.slot < MG_MAX_THREADGROUP_SLOTS)
        p->threadgroup_slots |= 1u << param.slot;
    // Sizes the core checks arguments against: the pipeline's reflection, else the declared
    // type where it is a scalar or vector (parameters Metal dropped as unused).
    MG_ALLOW_DEPRECATED_BEGIN
    NSArray* args = reflection ? [reflection arguments] : nil;
    for (NSUInteger i = 0; i < [args count]; ++i) {
      MTLArgument* a = [args objectAtIndex:i];
      NSUInteger slot = [a index];
      if ([a type] == MTLArgumentTypeBuffer && slot < MG_MAX_BUFFERS) p->desc.slot_sizes[slot] = unsigned([a bufferDataSize]);
    }
    MG_ALLOW_DEPRECATED_END
    for (const auto& param : kernel.params) {
      if (param.role != msl::ParamRole::buffer || param.slot < 0 || param.slot >= MG_MAX_BUFFERS) continue;
      if (p->desc.slot_sizes[param.slot]) continue;
      if (auto t = DType::parse(param.element_type)) p->desc.slot_sizes[param.slot] = unsigned(t->size());
    }
    return p;
  }

  id<MTLDevice> dev_;  // the device list keeps it alive
  Ref<id<MTLLibrary> > library_;
  Ref<MTLFunctionConstantValues*> values_;
  std::vector<msl::KernelInfo> kernels_;
  std::string source_;
  mutable std::mutex mutex_;
  mutable std::vector<std::unique_ptr<KernelPipeline> > pipelines_;
};

// ---- the backend --------------------------------------------------------------------------

double gpu_seconds(id<MTLCommandBuffer> cb) {
  double t = [cb GPUEndTime] - [cb GPUStartTime];
  return t > 0 ? t : 0;
}

void check_completed(id<MTLCommandBuffer> cb) {
  if ([cb status] == MTLCommandBufferStatusError)
    throw std::runtime_error("[metal] the dispatch failed: " + describe_error([cb error]));
}

// A committed command buffer, as a Run waits for it.
class CommandBufferCompletion final : public detail::Completion {
 public:
  explicit CommandBufferCompletion(Ref<id<MTLCommandBuffer> > cb) : cb_(std::move(cb)) {}
  void wait(detail::RunState& r) override {
    [cb_.get() waitUntilCompleted];
    r.gpu_time = gpu_seconds(cb_.get());
    check_completed(cb_.get());
  }
  bool ready() override {
    MTLCommandBufferStatus st = [cb_.get() status];
    return st == MTLCommandBufferStatusCompleted || st == MTLCommandBufferStatusError;
  }

 private:
  Ref<id<MTLCommandBuffer> > cb_;
};

class MetalBackend final : public Backend {
 public:
  MetalBackend(id<MTLDevice> dev, const DeviceInfo& info) : dev_(dev), info_(info) {
    queue_ = Ref<id<MTLCommandQueue> >::adopt([dev newCommandQueue]);
    if (!queue_) throw std::runtime_error("[metal] newCommandQueue failed on " + info.name);
    MG_ALLOW_DEPRECATED_BEGIN
    nonuniform_ = [dev supportsFamily:MTLGPUFamilyApple4] || [dev supportsFamily:MTLGPUFamilyMac2];
    MG_ALLOW_DEPRECATED_END
  }
  ~MetalBackend() override {
    for (auto& cb : inflight_) [cb.get() waitUntilCompleted];
  }

  const DeviceInfo& info() const override { return info_; }

  std::shared_ptr<Allocation> allocate(std::size_t nbytes, Storage storage) override {
    return std::make_shared<MetalAllocation>(dev_, queue_, nbytes, storage);
  }
  // numpy memory in place, where Metal allows it (Apple GPUs share the host's memory).
  std::shared_ptr<Allocation> wrap(void* memory, std::size_t nbytes, std::shared_ptr<void> owner) override {
    const std::size_t page = std::size_t(getpagesize());
    const std::size_t misalignment = reinterpret_cast<std::uintptr_t>(memory) % page;
    if (misalignment || nbytes % page)
      throw std::invalid_argument("[wrap] Metal uses an array's memory in place only when it starts on a page boundary "
                                  "and holds a whole number of pages (" + std::to_string(page) +
                                  " bytes here); this array starts " + std::to_string(misalignment) +
                                  " bytes into a page and holds " + std::to_string(nbytes) +
                                  " bytes. Use array_to_buffer() (one copy), or allocate page-aligned memory");
    return std::make_shared<MetalAllocation>(dev_, queue_, memory, nbytes, std::move(owner));
  }
  std::shared_ptr<Allocation> allocate_texture(const TextureLayout& layout) override {
    return std::make_shared<MetalTexture>(dev_, queue_, layout);
  }

  // Metal compiles whole libraries (newLibraryWithSource), so the check at load of a large
  // library is simply that compile; the result is cached and reused by build().
  void check_library(const msl::Translation& tr) override { build(tr, {}, nullptr); }

  // Metal builds whole libraries (cheap on the device's compiler): `only` is not needed.
  std::shared_ptr<Program> build(const msl::Translation& tr, const Constants& constants,
                                 const std::string* /*only*/) override {
    std::vector<std::string> literals = msl::resolve_constants(tr.model(), constants);  // validates
    std::string source = metal_source(tr);
    std::string library_key = Sha256().update(source).hex();
    std::string key = library_key;
    for (const auto& l : literals) key += "\n" + l;
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = programs_.find(key); it != programs_.end()) return it->second;
    Ref<id<MTLLibrary> > library = library_for(library_key, source, tr);
    Ref<MTLFunctionConstantValues*> values;
    if (tr.has_function_constants()) values = constant_values(tr, constants);
    auto program = std::make_shared<MetalProgram>(dev_, library, values, tr);
    programs_[key] = program;
    return program;
  }

  void dispatch(Launch& launch, detail::RunState& run) override {
    auto* k = static_cast<KernelPipeline*>(launch.kernel->entry);
    const mg_launch& a = launch.args;
    // Everything that can fail is checked before encoding starts.
    MetalAllocation* bufs[MG_MAX_BUFFERS] = {};
    for (int s = 0; s < MG_MAX_BUFFERS; ++s) {
      if (!launch.buffers[s]) continue;
      bufs[s] = dynamic_cast<MetalAllocation*>(launch.buffers[s].get());
      if (!bufs[s]) throw std::invalid_argument("[run_function] buffer(" + std::to_string(s) + ") is not a Metal buffer");
    }
    MetalTexture* texs[MG_MAX_TEXTURES] = {};
    std::vector<MetalTexture*> distinct;  // each texture once, however many slots bind it
    bool written[MG_MAX_TEXTURES] = {};   // by index into `distinct`
    for (int t = 0; t < MG_MAX_TEXTURES; ++t) {
      if (!launch.textures[t]) continue;
      texs[t] = dynamic_cast<MetalTexture*>(launch.textures[t].get());
      if (!texs[t]) throw std::invalid_argument("[run_function] texture(" + std::to_string(t) + ") is not a Metal texture");
      auto at = std::find(distinct.begin(), distinct.end(), texs[t]);
      if (at == distinct.end()) at = distinct.insert(distinct.end(), texs[t]);
      written[at - distinct.begin()] |= launch.texture_may_write[t];
    }
    for (int t = 0; t < MG_MAX_SAMPLERS; ++t)
      if (a.samplers[t] & MG_SAMPLER_VALID) check_pixel_sampler(a.samplers[t], t);
    Pool pool;
    id<MTLSamplerState> samplers[MG_MAX_SAMPLERS] = {};  // the backend's cache keeps them
    for (int t = 0; t < MG_MAX_SAMPLERS; ++t)
      if (a.samplers[t] & MG_SAMPLER_VALID) samplers[t] = sampler_state(a.samplers[t]);
    // Values longer than setBytes allows (4 KB) travel in a buffer of their own.
    std::vector<Ref<id<MTLBuffer> > > big_values;
    id<MTLCommandBuffer> cb = [queue_.get() commandBuffer];
    if (!cb) throw std::runtime_error("[metal] the command queue gave no command buffer");
    // Host writes to shared textures' mirrors reach the textures first, in this command buffer.
    if (std::any_of(distinct.begin(), distinct.end(), [](MetalTexture* t) { return t->needs_push(); })) {
      id<MTLBlitCommandEncoder> blit = [cb blitCommandEncoder];
      for (MetalTexture* t : distinct)
        if (t->needs_push()) t->encode_push(blit);
      [blit endEncoding];
    }
    id<MTLComputeCommandEncoder> enc = [cb computeCommandEncoder];
    [enc setComputePipelineState:k->pso.get()];
    for (int s = 0; s < MG_MAX_BUFFERS; ++s) {
      if (bufs[s]) {
        [enc setBuffer:bufs[s]->buffer() offset:0 atIndex:NSUInteger(s)];
      } else if (launch.inline_index[s] >= 0) {
        const std::string& bytes = launch.inline_bytes[std::size_t(launch.inline_index[s])];
        if (bytes.size() <= 4096) {
          [enc setBytes:bytes.data() length:bytes.size() atIndex:NSUInteger(s)];
        } else {
          Ref<id<MTLBuffer> > b = Ref<id<MTLBuffer> >::adopt(
              [dev_ newBufferWithBytes:bytes.data() length:bytes.size() options:MTLResourceStorageModeShared]);
          [enc setBuffer:b.get() offset:0 atIndex:NSUInteger(s)];
          big_values.push_back(b);
        }
      }
    }
    for (int t = 0; t < MG_MAX_TEXTURES; ++t)
      if (texs[t]) [enc setTexture:texs[t]->texture() atIndex:NSUInteger(t)];
    for (int t = 0; t < MG_MAX_SAMPLERS; ++t)
      if (samplers[t]) [enc setSamplerState:samplers[t] atIndex:NSUInteger(t)];
    for (int i = 0; i < MG_MAX_THREADGROUP_SLOTS; ++i)
      // Every declared slot, 0 bytes too: a kernel may leave its threadgroup memory unused and
      // the host size it 0, as ggml does; Metal wants the length set all the same.
      if (a.threadgroup_sizes[i] || (k->threadgroup_slots >> i & 1u))
        [enc setThreadgroupMemoryLength:round_up(a.threadgroup_sizes[i], 16) atIndex:NSUInteger(i)];
    MTLSize tg = MTLSizeMake(a.tg[0], a.tg[1], a.tg[2]);
    if (nonuniform_) [enc dispatchThreads:MTLSizeMake(a.grid[0], a.grid[1], a.grid[2]) threadsPerThreadgroup:tg];
    else [enc dispatchThreadgroups:MTLSizeMake(a.groups[0], a.groups[1], a.groups[2]) threadsPerThreadgroup:tg];
    [enc endEncoding];
    // Kernel writes reach the mirrors of textures the host has a view of, in this command buffer.
    std::vector<MetalTexture*> pull;
    for (std::size_t i = 0; i < distinct.size(); ++i)
      if (written[i] && distinct[i]->written_needs_pull()) pull.push_back(distinct[i]);
    if (!pull.empty()) {
      id<MTLBlitCommandEncoder> blit = [cb blitCommandEncoder];
      for (MetalTexture* t : pull) t->encode_pull(blit);
      [blit endEncoding];
    }
    [cb commit];
    Ref<id<MTLCommandBuffer> > held = Ref<id<MTLCommandBuffer> >::retain(cb);
    for (auto* b : bufs)
      if (b) b->used_by(held);
    for (MetalTexture* t : distinct) t->used_by(held);
    track(held);
    if (launch.wait) {
      [cb waitUntilCompleted];
      check_completed(cb);
      run.gpu_time = gpu_seconds(cb);
      run.done = true;
      return;
    }
    run.done = false;
    run.completion = std::make_unique<CommandBufferCompletion>(held);
  }

  void synchronize() override {
    std::vector<Ref<id<MTLCommandBuffer> > > all;
    {
      std::lock_guard<std::mutex> lock(inflight_mutex_);
      all.swap(inflight_);
    }
    for (auto& cb : all) [cb.get() waitUntilCompleted];
    for (auto& cb : all) check_completed(cb.get());
  }

 private:
  void track(const Ref<id<MTLCommandBuffer> >& cb) {
    std::lock_guard<std::mutex> lock(inflight_mutex_);
    inflight_.erase(std::remove_if(inflight_.begin(), inflight_.end(),
                                   [](const Ref<id<MTLCommandBuffer> >& c) {
                                     MTLCommandBufferStatus st = [c.get() status];
                                     return st == MTLCommandBufferStatusCompleted;
                                   }),
                    inflight_.end());
    inflight_.push_back(cb);
  }

  // One MTLSamplerState per distinct sampler description, made on first use and kept.
  id<MTLSamplerState> sampler_state(std::uint32_t bits) {
    std::lock_guard<std::mutex> lock(samplers_mutex_);
    auto it = samplers_.find(bits);
    if (it != samplers_.end()) return it->second.get();
    Ref<MTLSamplerDescriptor*> d = sampler_descriptor(bits);
    Ref<id<MTLSamplerState> > state = Ref<id<MTLSamplerState> >::adopt([dev_ newSamplerStateWithDescriptor:d.get()]);
    if (!state) throw std::runtime_error("[metal] newSamplerStateWithDescriptor failed");
    return samplers_.emplace(bits, state).first->second.get();
  }

  // MTLLibrary per shader source, shared by every constants set of it.
  Ref<id<MTLLibrary> > library_for(const std::string& key, const std::string& source, const msl::Translation& tr) {
    if (auto it = libraries_.find(key); it != libraries_.end()) return it->second;
    Pool pool;
    MTLCompileOptions* fresh = [[MTLCompileOptions alloc] init];
    Ref<MTLCompileOptions*> options = Ref<MTLCompileOptions*>::adopt(fresh);
    MG_ALLOW_DEPRECATED_BEGIN
    [options.get() setFastMathEnabled:YES];  // Metal's default; precise:: opts out
    MG_ALLOW_DEPRECATED_END
    [options.get() setLanguageVersion:language_version()];
    Ref<NSString*> text = ns_string(source);
    NSError* err = nil;
    Ref<id<MTLLibrary> > library =
        Ref<id<MTLLibrary> >::adopt([dev_ newLibraryWithSource:text.get() options:options.get() error:&err]);
    // A library with warnings comes with an NSError too: only a nil library is a failure.
    if (!library) throw_compile_error(err, "compiling " + tr.path(), "", tr.source());
    libraries_[key] = library;
    return library;
  }

  id<MTLDevice> dev_;  // the device list keeps it alive
  DeviceInfo info_;
  Ref<id<MTLCommandQueue> > queue_;  // one per Interface
  bool nonuniform_ = true;
  std::mutex mutex_;
  std::unordered_map<std::string, Ref<id<MTLLibrary> > > libraries_;
  std::unordered_map<std::string, std::shared_ptr<MetalProgram> > programs_;
  std::mutex inflight_mutex_;
  std::vector<Ref<id<MTLCommandBuffer> > > inflight_;
  std::mutex samplers_mutex_;
  std::unordered_map<std::uint32_t, Ref<id<MTLSamplerState> > > samplers_;
};

}  // namespace

std::vector<DeviceInfo> probe(std::string* why) {
  const DeviceList& l = device_list();
  if (l.infos.empty() && why) *why = l.why;
  return l.infos;
}

std::shared_ptr<Backend> create(int index) {
  const DeviceList& l = device_list();
  if (index < 0 || index >= int(l.devices.size()))
    throw std::invalid_argument("[metal] device " + std::to_string(index) + " does not exist");
  return std::make_shared<MetalBackend>(l.devices[std::size_t(index)].get(), l.infos[std::size_t(index)]);
}

}  // namespace metalgpu::metal
