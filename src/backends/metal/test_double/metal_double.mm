// TEST DOUBLE - NOT APPLE'S METAL.
//
// Implements the Metal API subset declared in Metal.h on top of metalgpu's CPU backend, so that
// metal_backend.mm - the same file that drives Apple's Metal on a Mac - can be built and tested
// on Linux (g++ -x objective-c++, GNUstep Base). Libraries compile through our MSL translator
// and the host compiler; buffers are host memory; a committed command buffer runs on the CPU
// when someone waits for it or asks for its status (work is deferred on purpose, so that code
// which reads results without waiting fails here as it would on a GPU).
//
// It checks the rules Apple documents for the calls it implements (encoders ended before
// commit, one encoder at a time, blit offsets and sizes multiples of 4 on macOS, private buffers
// have no contents, every buffer a kernel uses is bound, threadgroup sizes within the pipeline's
// limit, non-uniform grids only where the device supports them) and reports a violation as a
// failed command buffer or a nil result with an NSError, never silently.
//
// What passing tests with it proves: our Objective-C++ calls the API as documented, balances
// retain/release (mg_metal_double_live_objects) and handles the results. What it cannot prove:
// that Apple's Metal compiler accepts our generated source, or that the GPU agrees.
#import "backends/metal/test_double/Metal.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.hpp"
#include "core/backend.hpp"
#include "core/interface_impl.hpp"
#include "metalgpu/errors.hpp"
#include "msl/translator.hpp"

namespace {

std::atomic<long> g_live{0};
std::atomic<long> g_texture_copies{0};  // texture blits executed

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

NSError* make_error(NSString* domain, long code, const std::string& text) {
  NSString* s = [NSString stringWithUTF8String:text.c_str()];
  if (!s) s = @"(message not valid UTF-8)";
  return [NSError errorWithDomain:domain
                             code:code
                         userInfo:[NSDictionary dictionaryWithObject:s forKey:NSLocalizedDescriptionKey]];
}

std::string utf8(NSString* s) {
  const char* c = s ? [s UTF8String] : nullptr;
  return c ? c : "";
}

float half_to_float(std::uint16_t h) {
  std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, bits;
  if (exp == 0) {
    if (mant == 0) bits = sign;
    else {
      exp = 127 - 15 + 1;
      while (!(mant & 0x400u)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// The CPU backend the double runs on: one for the process.
metalgpu::Backend& engine() {
  static std::shared_ptr<metalgpu::Backend> cpu = metalgpu::cpu::create(0);
  return *cpu;
}

struct Command {
  virtual ~Command() = default;
  virtual std::string run() = 0;  // "" = success, else the failure
};

}  // namespace

// ---- plain classes ------------------------------------------------------------------------

@implementation MTLCompileOptions
- (id)init {
  if ((self = [super init])) {
    ++g_live;
    fastMathEnabled_ = YES;
    languageVersion_ = MTLLanguageVersion3_1;
  }
  return self;
}
- (void)dealloc {
  [preprocessorMacros_ release];
  --g_live;
  [super dealloc];
}
- (BOOL)fastMathEnabled { return fastMathEnabled_; }
- (void)setFastMathEnabled:(BOOL)v { fastMathEnabled_ = v; }
- (MTLLanguageVersion)languageVersion { return languageVersion_; }
- (void)setLanguageVersion:(MTLLanguageVersion)v { languageVersion_ = v; }
- (NSDictionary*)preprocessorMacros { return preprocessorMacros_; }
- (void)setPreprocessorMacros:(NSDictionary*)m {
  NSDictionary* c = [m copy];
  [preprocessorMacros_ release];
  preprocessorMacros_ = c;
}
@end

// Defaults as Apple documents them (textureType 2D, RGBA8Unorm, 1 x 1 x 1, one level and layer,
// shader-read usage; storage managed on macOS).
@implementation MTLTextureDescriptor
- (id)init {
  if ((self = [super init])) {
    ++g_live;
    textureType_ = MTLTextureType2D;
    pixelFormat_ = MTLPixelFormatRGBA8Unorm;
    width_ = height_ = depth_ = arrayLength_ = mipmapLevelCount_ = 1;
    storageMode_ = MTLStorageModeManaged;
    usage_ = MTLTextureUsageShaderRead;
  }
  return self;
}
- (void)dealloc {
  --g_live;
  [super dealloc];
}
- (MTLTextureType)textureType { return textureType_; }
- (void)setTextureType:(MTLTextureType)v { textureType_ = v; }
- (MTLPixelFormat)pixelFormat { return pixelFormat_; }
- (void)setPixelFormat:(MTLPixelFormat)v { pixelFormat_ = v; }
- (NSUInteger)width { return width_; }
- (void)setWidth:(NSUInteger)v { width_ = v; }
- (NSUInteger)height { return height_; }
- (void)setHeight:(NSUInteger)v { height_ = v; }
- (NSUInteger)depth { return depth_; }
- (void)setDepth:(NSUInteger)v { depth_ = v; }
- (NSUInteger)arrayLength { return arrayLength_; }
- (void)setArrayLength:(NSUInteger)v { arrayLength_ = v; }
- (NSUInteger)mipmapLevelCount { return mipmapLevelCount_; }
- (void)setMipmapLevelCount:(NSUInteger)v { mipmapLevelCount_ = v; }
- (MTLStorageMode)storageMode { return storageMode_; }
- (void)setStorageMode:(MTLStorageMode)v { storageMode_ = v; }
- (MTLTextureUsage)usage { return usage_; }
- (void)setUsage:(MTLTextureUsage)v { usage_ = v; }
@end

// Defaults as Apple documents them: nearest filtering, clamp_to_edge, normalised coordinates,
// transparent black border.
@implementation MTLSamplerDescriptor
- (id)init {
  if ((self = [super init])) {
    ++g_live;
    normalizedCoordinates_ = YES;
  }
  return self;
}
- (void)dealloc {
  --g_live;
  [super dealloc];
}
- (MTLSamplerMinMagFilter)minFilter { return minFilter_; }
- (void)setMinFilter:(MTLSamplerMinMagFilter)v { minFilter_ = v; }
- (MTLSamplerMinMagFilter)magFilter { return magFilter_; }
- (void)setMagFilter:(MTLSamplerMinMagFilter)v { magFilter_ = v; }
- (MTLSamplerAddressMode)sAddressMode { return sAddressMode_; }
- (void)setSAddressMode:(MTLSamplerAddressMode)v { sAddressMode_ = v; }
- (MTLSamplerAddressMode)tAddressMode { return tAddressMode_; }
- (void)setTAddressMode:(MTLSamplerAddressMode)v { tAddressMode_ = v; }
- (MTLSamplerAddressMode)rAddressMode { return rAddressMode_; }
- (void)setRAddressMode:(MTLSamplerAddressMode)v { rAddressMode_ = v; }
- (MTLSamplerBorderColor)borderColor { return borderColor_; }
- (void)setBorderColor:(MTLSamplerBorderColor)v { borderColor_ = v; }
- (BOOL)normalizedCoordinates { return normalizedCoordinates_; }
- (void)setNormalizedCoordinates:(BOOL)v { normalizedCoordinates_ = v; }
@end

// One set value: index (or -1) / name, type, bytes.
@interface MGDoubleConstant : NSObject {
 @public
  long index;
  NSString* name;
  MTLDataType type;
  NSData* bytes;
}
@end
@implementation MGDoubleConstant
- (id)init {
  if ((self = [super init])) ++g_live;
  return self;
}
- (void)dealloc {
  [name release];
  [bytes release];
  --g_live;
  [super dealloc];
}
@end

static NSUInteger constant_size(MTLDataType t) {
  switch (t) {
    case MTLDataTypeBool: case MTLDataTypeChar: case MTLDataTypeUChar: return 1;
    case MTLDataTypeShort: case MTLDataTypeUShort: case MTLDataTypeHalf: return 2;
    case MTLDataTypeInt: case MTLDataTypeUInt: case MTLDataTypeFloat: return 4;
    case MTLDataTypeLong: case MTLDataTypeULong: return 8;
    default: return 0;
  }
}

@implementation MTLFunctionConstantValues
- (id)init {
  if ((self = [super init])) {
    ++g_live;
    entries_ = [[NSMutableArray alloc] init];
  }
  return self;
}
- (void)dealloc {
  [entries_ release];
  --g_live;
  [super dealloc];
}
- (void)add:(const void*)value type:(MTLDataType)type index:(long)index name:(NSString*)name {
  NSUInteger n = constant_size(type);
  if (n == 0) {
    NSLog(@"[metal test double] setConstantValue: type %lu is not supported by the double", (unsigned long)type);
    abort();
  }
  MGDoubleConstant* c = [[MGDoubleConstant alloc] init];
  c->index = index;
  c->name = [name copy];
  c->type = type;
  c->bytes = [[NSData alloc] initWithBytes:value length:n];
  [entries_ addObject:c];
  [c release];
}
- (void)setConstantValue:(const void*)value type:(MTLDataType)type atIndex:(NSUInteger)index {
  [self add:value type:type index:long(index) name:nil];
}
- (void)setConstantValue:(const void*)value type:(MTLDataType)type withName:(NSString*)name {
  [self add:value type:type index:-1 name:name];
}
// Not Metal API: the values as metalgpu constants.
- (metalgpu::Constants)mgConstants {
  metalgpu::Constants out;
  for (NSUInteger i = 0; i < [entries_ count]; ++i) {
    MGDoubleConstant* c = [entries_ objectAtIndex:i];
    std::string key = c->index >= 0 ? std::to_string(c->index) : utf8(c->name);
    const void* p = [c->bytes bytes];
    metalgpu::ConstantValue v;
    switch (c->type) {
      case MTLDataTypeBool: v.value = *static_cast<const bool*>(p); break;
      case MTLDataTypeChar: v.value = std::int64_t(*static_cast<const std::int8_t*>(p)); break;
      case MTLDataTypeUChar: v.value = std::uint64_t(*static_cast<const std::uint8_t*>(p)); break;
      case MTLDataTypeShort: v.value = std::int64_t(*static_cast<const std::int16_t*>(p)); break;
      case MTLDataTypeUShort: v.value = std::uint64_t(*static_cast<const std::uint16_t*>(p)); break;
      case MTLDataTypeInt: v.value = std::int64_t(*static_cast<const std::int32_t*>(p)); break;
      case MTLDataTypeUInt: v.value = std::uint64_t(*static_cast<const std::uint32_t*>(p)); break;
      case MTLDataTypeLong: v.value = std::int64_t(*static_cast<const std::int64_t*>(p)); break;
      case MTLDataTypeULong: v.value = std::uint64_t(*static_cast<const std::uint64_t*>(p)); break;
      case MTLDataTypeHalf: v.value = double(half_to_float(*static_cast<const std::uint16_t*>(p))); break;
      case MTLDataTypeFloat: v.value = double(*static_cast<const float*>(p)); break;
      default: break;
    }
    out.push_back({key, v});
  }
  return out;
}
@end

@implementation MTLArgument
- (id)initWithName:(NSString*)name type:(MTLArgumentType)type index:(NSUInteger)index size:(NSUInteger)size {
  if ((self = [super init])) {
    ++g_live;
    name_ = [name copy];
    type_ = type;
    index_ = index;
    bufferDataSize_ = size;
    bufferAlignment_ = size >= 16 ? 16 : (size ? size : 1);
    active_ = YES;
  }
  return self;
}
- (void)dealloc {
  [name_ release];
  --g_live;
  [super dealloc];
}
- (NSString*)name { return name_; }
- (MTLArgumentType)type { return type_; }
- (NSUInteger)index { return index_; }
- (BOOL)isActive { return active_; }
- (NSUInteger)bufferDataSize { return bufferDataSize_; }
- (NSUInteger)bufferAlignment { return bufferAlignment_; }
@end

@implementation MTLComputePipelineReflection
- (id)initWithArguments:(NSArray*)args {
  if ((self = [super init])) {
    ++g_live;
    arguments_ = [args retain];
  }
  return self;
}
- (void)dealloc {
  [arguments_ release];
  --g_live;
  [super dealloc];
}
- (NSArray*)arguments { return arguments_; }
@end

// ---- textures and samplers ----------------------------------------------------------------

namespace {

// What the double knows of a pixel format: metalgpu's texel kind (the CPU runtime reads texels
// by it), channels and bytes per channel.
struct PixelFormatInfo {
  unsigned kind = 0, channels = 0, channel_bytes = 0;
  unsigned bytes() const { return channels * channel_bytes; }
  explicit operator bool() const { return channels != 0; }
};

PixelFormatInfo pixel_format_info(MTLPixelFormat pf) {
  struct Kind {
    unsigned kind, channel_bytes;
    MTLPixelFormat formats[3];  // 1, 2, 4 channels
  };
  static const Kind kinds[] = {
      {MG_TEXEL_FLOAT32, 4, {MTLPixelFormatR32Float, MTLPixelFormatRG32Float, MTLPixelFormatRGBA32Float}},
      {MG_TEXEL_FLOAT16, 2, {MTLPixelFormatR16Float, MTLPixelFormatRG16Float, MTLPixelFormatRGBA16Float}},
      {MG_TEXEL_UNORM8, 1, {MTLPixelFormatR8Unorm, MTLPixelFormatRG8Unorm, MTLPixelFormatRGBA8Unorm}},
      {MG_TEXEL_SNORM8, 1, {MTLPixelFormatR8Snorm, MTLPixelFormatRG8Snorm, MTLPixelFormatRGBA8Snorm}},
      {MG_TEXEL_UNORM16, 2, {MTLPixelFormatR16Unorm, MTLPixelFormatRG16Unorm, MTLPixelFormatRGBA16Unorm}},
      {MG_TEXEL_SNORM16, 2, {MTLPixelFormatR16Snorm, MTLPixelFormatRG16Snorm, MTLPixelFormatRGBA16Snorm}},
      {MG_TEXEL_UINT32, 4, {MTLPixelFormatR32Uint, MTLPixelFormatRG32Uint, MTLPixelFormatRGBA32Uint}},
      {MG_TEXEL_SINT32, 4, {MTLPixelFormatR32Sint, MTLPixelFormatRG32Sint, MTLPixelFormatRGBA32Sint}},
      {MG_TEXEL_UINT16, 2, {MTLPixelFormatR16Uint, MTLPixelFormatRG16Uint, MTLPixelFormatRGBA16Uint}},
      {MG_TEXEL_SINT16, 2, {MTLPixelFormatR16Sint, MTLPixelFormatRG16Sint, MTLPixelFormatRGBA16Sint}},
      {MG_TEXEL_UINT8, 1, {MTLPixelFormatR8Uint, MTLPixelFormatRG8Uint, MTLPixelFormatRGBA8Uint}},
      {MG_TEXEL_SINT8, 1, {MTLPixelFormatR8Sint, MTLPixelFormatRG8Sint, MTLPixelFormatRGBA8Sint}},
  };
  static const unsigned channel_counts[3] = {1, 2, 4};
  for (const Kind& k : kinds)
    for (int c = 0; c < 3; ++c)
      if (k.formats[c] == pf) return PixelFormatInfo{k.kind, channel_counts[c], k.channel_bytes};
  return {};
}

bool is_array_type(MTLTextureType t) { return t == MTLTextureType1DArray || t == MTLTextureType2DArray; }

// The texture type a kernel parameter declares ("texture2d<float, access::read>" -> 2D), and
// whether it reads and writes (access::sample and access::read read; write and read_write write).
bool parameter_texture_type(const std::string& declared, MTLTextureType* type, bool* reads, bool* writes) {
  std::string t;
  for (char c : declared)
    if (c != ' ') t += c;
  if (t.rfind("metal::", 0) == 0) t = t.substr(7);
  std::string base = t.substr(0, t.find('<'));
  static const std::pair<const char*, MTLTextureType> types[] = {
      {"texture1d", MTLTextureType1D}, {"texture1d_array", MTLTextureType1DArray}, {"texture2d", MTLTextureType2D},
      {"texture2d_array", MTLTextureType2DArray}, {"texture3d", MTLTextureType3D}};
  bool found = false;
  for (const auto& [name, tt] : types)
    if (base == name) {
      *type = tt;
      found = true;
    }
  *writes = t.find("access::write") != std::string::npos || t.find("access::read_write") != std::string::npos;
  *reads = !(t.find("access::write") != std::string::npos);
  return found;
}

}  // namespace

@interface MGDoubleTexture : NSObject <MTLTexture> {
 @public
  id<MTLDevice> device_;  // not retained: devices live for the process
  MTLTextureType type_;
  MTLPixelFormat format_;
  PixelFormatInfo info_;
  NSUInteger width_, height_, depth_, layers_;
  MTLTextureUsage usage_;
  MTLStorageMode mode_;
  // Texels in rows padded to 64 bytes - a layout of the double's own, unlike the packed rows
  // metalgpu's host mirrors use, so only correct blits move texels between the two.
  char* memory_;
  std::size_t row_pitch_, slice_pitch_;
}
@end
@implementation MGDoubleTexture
- (id)initWithDevice:(id<MTLDevice>)dev descriptor:(MTLTextureDescriptor*)d info:(PixelFormatInfo)info {
  if ((self = [super init])) {
    ++g_live;
    device_ = dev;
    type_ = [d textureType];
    format_ = [d pixelFormat];
    info_ = info;
    width_ = [d width];
    height_ = [d height];
    depth_ = [d depth];
    layers_ = [d arrayLength];
    usage_ = [d usage];
    mode_ = [d storageMode];
    row_pitch_ = (width_ * info.bytes() + 63) / 64 * 64;
    slice_pitch_ = row_pitch_ * height_;
    void* p = nullptr;
    // Metal leaves a new texture's contents undefined: the double fills it with a pattern.
    if (posix_memalign(&p, 64, slice_pitch_ * depth_ * layers_) == 0) std::memset(p, 0xA5, slice_pitch_ * depth_ * layers_);
    memory_ = static_cast<char*>(p);
  }
  return self;
}
- (void)dealloc {
  std::free(memory_);
  --g_live;
  [super dealloc];
}
- (id<MTLDevice>)device { return device_; }
- (MTLStorageMode)storageMode { return mode_; }
- (MTLTextureType)textureType { return type_; }
- (MTLPixelFormat)pixelFormat { return format_; }
- (NSUInteger)width { return width_; }
- (NSUInteger)height { return height_; }
- (NSUInteger)depth { return depth_; }
- (NSUInteger)arrayLength { return layers_; }
- (MTLTextureUsage)usage { return usage_; }
// Not Metal API: the texture as the CPU runtime reads it.
- (mg_texture)mgTexture {
  mg_texture t{};
  t.data = memory_;
  t.width = unsigned(width_);
  t.height = unsigned(height_);
  t.depth = unsigned(depth_);
  t.array_length = unsigned(layers_);
  t.format = MG_TEXEL_FORMAT(info_.kind, info_.channels);
  t.row_pitch = unsigned(row_pitch_);
  t.slice_pitch = unsigned(slice_pitch_);
  return t;
}
@end

@interface MGDoubleSampler : NSObject <MTLSamplerState> {
 @public
  id<MTLDevice> device_;
  unsigned bits_;  // metalgpu's sampler descriptor bits (mg_abi.h)
}
@end
@implementation MGDoubleSampler
- (id)init {
  if ((self = [super init])) ++g_live;
  return self;
}
- (void)dealloc {
  --g_live;
  [super dealloc];
}
- (id<MTLDevice>)device { return device_; }
@end


// ---- objects behind the protocols ---------------------------------------------------------

@class MGDoubleDevice;
@class MGDoubleQueue;

@interface MGDoubleBuffer : NSObject <MTLBuffer> {
 @public
  id<MTLDevice> device_;  // not retained: devices live for the process
  void* memory_;
  NSUInteger length_;
  MTLStorageMode mode_;
  BOOL borrowed_;  // newBufferWithBytesNoCopy: the caller's memory, not freed here
}
@end
@implementation MGDoubleBuffer
- (id)initWithDevice:(id<MTLDevice>)dev length:(NSUInteger)length options:(MTLResourceOptions)options {
  if ((self = [super init])) {
    ++g_live;
    device_ = dev;
    length_ = length;
    mode_ = (options >> 4) & 0xf;
    if (posix_memalign(&memory_, 64, length ? length : 1) != 0) memory_ = nullptr;
    if (memory_) std::memset(memory_, 0, length);
  }
  return self;
}
- (id)initWithDevice:(id<MTLDevice>)dev borrowing:(void*)memory length:(NSUInteger)length {
  if ((self = [super init])) {
    ++g_live;
    device_ = dev;
    length_ = length;
    mode_ = MTLStorageModeShared;
    memory_ = memory;
    borrowed_ = YES;
  }
  return self;
}
- (void)dealloc {
  if (!borrowed_) std::free(memory_);
  --g_live;
  [super dealloc];
}
- (id<MTLDevice>)device { return device_; }
- (MTLStorageMode)storageMode { return mode_; }
- (NSUInteger)length { return length_; }
// Apple: "contents ... returns NULL for buffers with private storage".
- (void*)contents { return mode_ == MTLStorageModePrivate ? nullptr : memory_; }
@end

// Library = one translation; functions are (library, name, constants) compiled by the CPU
// backend (which caches modules by source hash).
struct LibraryState {
  std::shared_ptr<const metalgpu::msl::Translation> tr;
  std::shared_ptr<metalgpu::Program> base;  // built at creation when there are no constants
};

@interface MGDoubleFunction : NSObject <MTLFunction> {
 @public
  id<MTLDevice> device_;
  NSString* name_;
  std::shared_ptr<metalgpu::Program>* program_;
  const mg_kernel_desc* desc_;
  metalgpu::msl::KernelInfo* kernel_;
}
@end
@implementation MGDoubleFunction
- (id)init {
  if ((self = [super init])) ++g_live;
  return self;
}
- (void)dealloc {
  delete program_;
  delete kernel_;
  [name_ release];
  --g_live;
  [super dealloc];
}
- (id<MTLDevice>)device { return device_; }
- (NSString*)name { return name_; }
@end

@interface MGDoubleLibrary : NSObject <MTLLibrary> {
 @public
  id<MTLDevice> device_;
  LibraryState* state_;
}
@end
@implementation MGDoubleLibrary
- (id)init {
  if ((self = [super init])) {
    ++g_live;
    state_ = new LibraryState;
  }
  return self;
}
- (void)dealloc {
  delete state_;
  --g_live;
  [super dealloc];
}
- (id<MTLDevice>)device { return device_; }
- (NSArray*)functionNames {
  NSMutableArray* names = [NSMutableArray array];
  for (const auto& k : state_->tr->kernels()) [names addObject:[NSString stringWithUTF8String:k.name.c_str()]];
  return names;
}
- (id<MTLFunction>)makeFunction:(NSString*)name program:(std::shared_ptr<metalgpu::Program>)program {
  std::string n = utf8(name);
  const metalgpu::msl::KernelInfo* k = state_->tr->find(n);
  const mg_kernel_desc* d = program ? program->find(n) : nullptr;
  if (!k || !d) return nil;
  MGDoubleFunction* f = [[MGDoubleFunction alloc] init];
  f->device_ = device_;
  f->name_ = [name copy];
  f->program_ = new std::shared_ptr<metalgpu::Program>(program);
  f->desc_ = d;
  f->kernel_ = new metalgpu::msl::KernelInfo(*k);
  return f;
}
- (id<MTLFunction>)newFunctionWithName:(NSString*)functionName {
  // A library with function constants has no unspecialised functions to hand out.
  if (!state_->base) return nil;
  return [self makeFunction:functionName program:state_->base];
}
- (id<MTLFunction>)newFunctionWithName:(NSString*)name
                        constantValues:(MTLFunctionConstantValues*)constantValues
                                 error:(NSError**)error {
  std::shared_ptr<metalgpu::Program> program;
  std::string failure;
  try {
    program = engine().build(*state_->tr, [constantValues mgConstants]);
  } catch (const metalgpu::CompileError& e) {
    failure = e.log().empty() ? e.what() : e.log();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!program) {
    if (error) *error = make_error(@"MTLLibraryErrorDomain", 3, failure);
    return nil;
  }
  id<MTLFunction> f = [self makeFunction:name program:program];
  if (!f && error) *error = make_error(@"MTLLibraryErrorDomain", 5, "function " + utf8(name) + " not found");
  return f;
}
@end

@interface MGDoublePipeline : NSObject <MTLComputePipelineState> {
 @public
  id<MTLDevice> device_;
  MGDoubleFunction* function_;  // retained
}
@end
@implementation MGDoublePipeline
- (id)init {
  if ((self = [super init])) ++g_live;
  return self;
}
- (void)dealloc {
  [function_ release];
  --g_live;
  [super dealloc];
}
- (id<MTLDevice>)device { return device_; }
- (NSUInteger)maxTotalThreadsPerThreadgroup {
  unsigned m = function_->kernel_->max_total_threads;
  return m ? m : 1024;
}
- (NSUInteger)threadExecutionWidth { return 32; }
- (NSUInteger)staticThreadgroupMemoryLength { return function_->desc_->static_threadgroup_bytes; }
@end

// ---- command buffers ----------------------------------------------------------------------

@interface MGDoubleCommandBuffer : NSObject <MTLCommandBuffer> {
 @public
  MGDoubleQueue* queue_;  // retained
  std::vector<std::unique_ptr<Command> >* commands_;
  MTLCommandBufferStatus status_;
  NSError* error_;
  double start_, end_;
  BOOL encoding_;  // an encoder is open
}
- (void)execute;
- (void)fail:(const std::string&)why;
@end

@interface MGDoubleQueue : NSObject <MTLCommandQueue> {
 @public
  id<MTLDevice> device_;
  NSMutableArray* pending_;  // committed, not yet run
}
- (void)runUpTo:(MGDoubleCommandBuffer*)cb;
@end

@implementation MGDoubleQueue
- (id)init {
  if ((self = [super init])) {
    ++g_live;
    pending_ = [[NSMutableArray alloc] init];
  }
  return self;
}
- (void)dealloc {
  [pending_ release];
  --g_live;
  [super dealloc];
}
- (id<MTLDevice>)device { return device_; }
- (id<MTLCommandBuffer>)commandBuffer {
  MGDoubleCommandBuffer* cb = [[MGDoubleCommandBuffer alloc] init];
  cb->queue_ = [self retain];
  return [cb autorelease];
}
- (void)runUpTo:(MGDoubleCommandBuffer*)cb {
  // In commit order, as a queue executes; removing a buffer may free it, so hold it.
  while ([pending_ count] > 0) {
    MGDoubleCommandBuffer* first = [[pending_ objectAtIndex:0] retain];
    [pending_ removeObjectAtIndex:0];
    [first execute];
    BOOL reached = first == cb;
    [first release];
    if (reached) break;
  }
}
@end

@interface MGDoubleComputeEncoder : NSObject <MTLComputeCommandEncoder> {
 @public
  MGDoubleCommandBuffer* cb_;  // retained
  MGDoublePipeline* pipeline_;  // retained
  id<MTLBuffer> buffers_[MG_MAX_BUFFERS];  // retained
  NSUInteger offsets_[MG_MAX_BUFFERS];
  std::vector<std::string>* bytes_;  // by index; empty = not set
  unsigned tg_lengths_[MG_MAX_THREADGROUP_SLOTS];
  bool tg_set_[MG_MAX_THREADGROUP_SLOTS];  // setThreadgroupMemoryLength was called (0 bytes is a length)
  id<MTLTexture> textures_[MG_MAX_TEXTURES];         // retained
  id<MTLSamplerState> samplers_[MG_MAX_SAMPLERS];    // retained
  BOOL ended_;
}
@end

@interface MGDoubleBlitEncoder : NSObject <MTLBlitCommandEncoder> {
 @public
  MGDoubleCommandBuffer* cb_;
  BOOL ended_;
}
@end

// A kernel dispatch, with everything it uses retained until it has run.
struct DispatchCommand final : Command {
  MGDoublePipeline* pipeline = nil;
  id<MTLBuffer> buffers[MG_MAX_BUFFERS] = {};
  NSUInteger offsets[MG_MAX_BUFFERS] = {};
  MGDoubleTexture* textures[MG_MAX_TEXTURES] = {};
  MGDoubleSampler* samplers[MG_MAX_SAMPLERS] = {};
  std::vector<std::string> bytes;
  mg_launch args{};
  ~DispatchCommand() override {
    [pipeline release];
    for (auto b : buffers) [b release];
    for (auto t : textures) [t release];
    for (auto m : samplers) [m release];
  }
  std::string run() override {
    metalgpu::Launch launch;
    launch.kernel = pipeline->function_->desc_;
    launch.program = pipeline->function_->program_->get();
    launch.args = args;
    for (int s = 0; s < MG_MAX_BUFFERS; ++s) {
      if (buffers[s]) launch.args.slots[s] = static_cast<char*>(((MGDoubleBuffer*)buffers[s])->memory_) + offsets[s];
      else if (!bytes[std::size_t(s)].empty()) launch.args.slots[s] = bytes[std::size_t(s)].data();
    }
    for (int t = 0; t < MG_MAX_TEXTURES; ++t)
      if (textures[t]) launch.args.textures[t] = [textures[t] mgTexture];
    for (int t = 0; t < MG_MAX_SAMPLERS; ++t)
      if (samplers[t]) launch.args.samplers[t] = samplers[t]->bits_;
    metalgpu::detail::RunState run;
    try {
      engine().dispatch(launch, run);
    } catch (const std::exception& e) {
      return std::string("kernel failed on the CPU: ") + e.what();
    }
    return {};
  }
};

struct CopyCommand final : Command {
  MGDoubleBuffer* src = nil;
  MGDoubleBuffer* dst = nil;  // retained
  NSUInteger src_offset = 0, dst_offset = 0, size = 0;
  bool fill = false;
  std::uint8_t value = 0;
  ~CopyCommand() override {
    [src release];
    [dst release];
  }
  std::string run() override {
    if (fill) std::memset(static_cast<char*>(dst->memory_) + dst_offset, value, size);
    else std::memmove(static_cast<char*>(dst->memory_) + dst_offset, static_cast<char*>(src->memory_) + src_offset, size);
    return {};
  }
};

// Copies `images` x `rows` rows of `row_bytes` between two strided memories (texture blits).
struct RegionCopy final : Command {
  id src_owner = nil, dst_owner = nil;  // retained
  const char* src = nullptr;
  char* dst = nullptr;
  std::size_t src_row = 0, src_image = 0, dst_row = 0, dst_image = 0, row_bytes = 0, rows = 0, images = 0;
  ~RegionCopy() override {
    [src_owner release];
    [dst_owner release];
  }
  std::string run() override {
    ++g_texture_copies;
    for (std::size_t i = 0; i < images; ++i)
      for (std::size_t r = 0; r < rows; ++r)
        std::memcpy(dst + i * dst_image + r * dst_row, src + i * src_image + r * src_row, row_bytes);
    return {};
  }
};

@implementation MGDoubleCommandBuffer
- (id)init {
  if ((self = [super init])) {
    ++g_live;
    commands_ = new std::vector<std::unique_ptr<Command> >;
    status_ = MTLCommandBufferStatusNotEnqueued;
  }
  return self;
}
- (void)dealloc {
  delete commands_;
  [error_ release];
  [queue_ release];
  --g_live;
  [super dealloc];
}
- (id<MTLDevice>)device { return queue_->device_; }
- (id<MTLCommandQueue>)commandQueue { return queue_; }
- (NSError*)error { return error_; }
- (CFTimeInterval)GPUStartTime { return start_; }
- (CFTimeInterval)GPUEndTime { return end_; }
- (void)fail:(const std::string&)why {
  if (error_) return;  // the first violation is the one to report
  error_ = [make_error(@"MTLCommandBufferErrorDomain", 1, "[metal test double] " + why) retain];
}
- (MTLCommandBufferStatus)status {
  // The simulated GPU makes progress when observed.
  if (status_ == MTLCommandBufferStatusCommitted) [queue_ runUpTo:self];
  return status_;
}
- (id<MTLComputeCommandEncoder>)computeCommandEncoder {
  if (encoding_ || status_ != MTLCommandBufferStatusNotEnqueued) {
    [self fail:"computeCommandEncoder while another encoder is open or after commit"];
    return nil;
  }
  encoding_ = YES;
  MGDoubleComputeEncoder* e = [[MGDoubleComputeEncoder alloc] init];
  e->cb_ = [self retain];
  return [e autorelease];
}
- (id<MTLBlitCommandEncoder>)blitCommandEncoder {
  if (encoding_ || status_ != MTLCommandBufferStatusNotEnqueued) {
    [self fail:"blitCommandEncoder while another encoder is open or after commit"];
    return nil;
  }
  encoding_ = YES;
  MGDoubleBlitEncoder* e = [[MGDoubleBlitEncoder alloc] init];
  e->cb_ = [self retain];
  return [e autorelease];
}
- (void)commit {
  if (status_ != MTLCommandBufferStatusNotEnqueued) {
    NSLog(@"[metal test double] commit called twice on one command buffer (Metal raises here)");
    abort();
  }
  if (encoding_) [self fail:"commit with a command encoder still open (endEncoding missing)"];
  status_ = MTLCommandBufferStatusCommitted;
  [queue_->pending_ addObject:self];
}
- (void)waitUntilCompleted {
  if (status_ == MTLCommandBufferStatusNotEnqueued) {
    NSLog(@"[metal test double] waitUntilCompleted before commit would block forever on Metal");
    abort();
  }
  if (status_ == MTLCommandBufferStatusCommitted) [queue_ runUpTo:self];
}
- (void)execute {
  start_ = now_seconds();
  if (!error_) {
    for (auto& c : *commands_) {
      std::string why = c->run();
      if (!why.empty()) {
        [self fail:why];
        break;
      }
    }
  }
  commands_->clear();  // release what the commands retained
  end_ = now_seconds();
  if (end_ <= start_) end_ = start_ + 1e-9;
  status_ = error_ ? MTLCommandBufferStatusError : MTLCommandBufferStatusCompleted;
}
@end

@implementation MGDoubleComputeEncoder
- (id)init {
  if ((self = [super init])) {
    ++g_live;
    bytes_ = new std::vector<std::string>(MG_MAX_BUFFERS);
  }
  return self;
}
- (void)dealloc {
  if (!ended_) {
    NSLog(@"[metal test double] a compute command encoder was released without endEncoding (Metal asserts)");
    abort();
  }
  [pipeline_ release];
  for (auto b : buffers_) [b release];
  for (auto t : textures_) [t release];
  for (auto m : samplers_) [m release];
  delete bytes_;
  [cb_ release];
  --g_live;
  [super dealloc];
}
- (id<MTLDevice>)device { return [cb_ device]; }
- (void)endEncoding {
  ended_ = YES;
  cb_->encoding_ = NO;
}
- (void)setComputePipelineState:(id<MTLComputePipelineState>)state {
  [state retain];
  [pipeline_ release];
  pipeline_ = (MGDoublePipeline*)state;
}
- (void)setBuffer:(id<MTLBuffer>)buffer offset:(NSUInteger)offset atIndex:(NSUInteger)index {
  if (index >= MG_MAX_BUFFERS) return [cb_ fail:"setBuffer: index out of range"];
  if (buffer && offset >= [buffer length]) return [cb_ fail:"setBuffer: offset past the end of the buffer"];
  [buffer retain];
  [buffers_[index] release];
  buffers_[index] = buffer;
  offsets_[index] = offset;
  (*bytes_)[index].clear();
}
- (void)setBytes:(const void*)bytes length:(NSUInteger)length atIndex:(NSUInteger)index {
  if (index >= MG_MAX_BUFFERS) return [cb_ fail:"setBytes: index out of range"];
  if (length > 4096) return [cb_ fail:"setBytes: more than 4096 bytes (Apple's documented limit)"];
  [buffers_[index] release];
  buffers_[index] = nil;
  (*bytes_)[index].assign(static_cast<const char*>(bytes), length);
  (*bytes_)[index].resize(std::max<std::size_t>(length, 16) + 16, '\0');  // a kernel may read a whole vector
}
- (void)setTexture:(id<MTLTexture>)texture atIndex:(NSUInteger)index {
  if (index >= MG_MAX_TEXTURES) return [cb_ fail:"setTexture: index beyond the double's 16 texture slots"];
  [texture retain];
  [textures_[index] release];
  textures_[index] = texture;
}
- (void)setSamplerState:(id<MTLSamplerState>)sampler atIndex:(NSUInteger)index {
  if (index >= MG_MAX_SAMPLERS) return [cb_ fail:"setSamplerState: index out of range (16 sampler slots)"];
  [sampler retain];
  [samplers_[index] release];
  samplers_[index] = sampler;
}
- (void)setThreadgroupMemoryLength:(NSUInteger)length atIndex:(NSUInteger)index {
  if (index >= MG_MAX_THREADGROUP_SLOTS) return [cb_ fail:"setThreadgroupMemoryLength: index out of range"];
  if (length % 16) return [cb_ fail:"setThreadgroupMemoryLength: length must be a multiple of 16"];
  tg_lengths_[index] = unsigned(length);
  tg_set_[index] = true;
}
- (void)encode:(MTLSize)grid groups:(MTLSize)groups tg:(MTLSize)tg {
  if (!pipeline_) return [cb_ fail:"dispatch without setComputePipelineState:"];
  if (tg.width * tg.height * tg.depth > [pipeline_ maxTotalThreadsPerThreadgroup] || !tg.width || !tg.height || !tg.depth)
    return [cb_ fail:"threadsPerThreadgroup exceeds maxTotalThreadsPerThreadgroup or is empty"];
  const metalgpu::msl::KernelInfo& k = *pipeline_->function_->kernel_;
  auto* cmd = new DispatchCommand;
  std::unique_ptr<Command> owned(cmd);
  // A parameter under [[function_constant(c)]] exists only when c is true: the double does not
  // evaluate c, so it leaves those to the kernel (where the parser records them).
  auto conditional = [](const auto& q) {
    if constexpr (requires { q.function_constant; }) return !q.function_constant.empty();
    else return false;
  };
  for (const auto& p : k.params) {
    if (conditional(p)) continue;
    if (p.role == metalgpu::msl::ParamRole::buffer && !buffers_[p.slot] && (*bytes_)[std::size_t(p.slot)].empty())
      return [cb_ fail:"buffer(" + std::to_string(p.slot) + ") of kernel " + k.name + " is not bound"];
    if (p.role == metalgpu::msl::ParamRole::threadgroup_memory && !tg_set_[p.slot])
      return [cb_ fail:"threadgroup(" + std::to_string(p.slot) + ") of kernel " + k.name + " has no length"];
    if (p.role == metalgpu::msl::ParamRole::sampler && !samplers_[p.slot])
      return [cb_ fail:"sampler(" + std::to_string(p.slot) + ") of kernel " + k.name + " is not bound"];
    if (p.role == metalgpu::msl::ParamRole::texture) {
      const std::string where = "texture(" + std::to_string(p.slot) + ") of kernel " + k.name;
      id<MTLTexture> t = textures_[p.slot];
      if (!t) return [cb_ fail:where + " is not bound"];
      MTLTextureType declared = MTLTextureType2D;
      bool reads = false, writes = false;
      if (!parameter_texture_type(p.element_type, &declared, &reads, &writes))
        return [cb_ fail:where + " has a texture type the double does not know: " + p.element_type];
      // Metal's validation layer rejects these; the double reports them as a failed command buffer.
      if ([t textureType] != declared) return [cb_ fail:where + " is bound to a texture of another type"];
      if (writes && !([t usage] & MTLTextureUsageShaderWrite))
        return [cb_ fail:where + " is written, but the texture lacks MTLTextureUsageShaderWrite"];
      if (reads && !([t usage] & MTLTextureUsageShaderRead))
        return [cb_ fail:where + " is read, but the texture lacks MTLTextureUsageShaderRead"];
    }
  }
  cmd->pipeline = [pipeline_ retain];
  for (int s = 0; s < MG_MAX_BUFFERS; ++s) {
    cmd->buffers[s] = [buffers_[s] retain];
    cmd->offsets[s] = offsets_[s];
  }
  for (int t = 0; t < MG_MAX_TEXTURES; ++t) cmd->textures[t] = (MGDoubleTexture*)[textures_[t] retain];
  for (int t = 0; t < MG_MAX_SAMPLERS; ++t) cmd->samplers[t] = (MGDoubleSampler*)[samplers_[t] retain];
  cmd->bytes = *bytes_;
  auto& a = cmd->args;
  for (int i = 0; i < MG_MAX_THREADGROUP_SLOTS; ++i) a.threadgroup_sizes[i] = tg_lengths_[i];
  NSUInteger g[3] = {grid.width, grid.height, grid.depth}, n[3] = {groups.width, groups.height, groups.depth},
             t[3] = {tg.width, tg.height, tg.depth};
  for (int d = 0; d < 3; ++d) {
    a.grid[d] = unsigned(g[d]);
    a.tg[d] = unsigned(t[d]);
    a.groups[d] = unsigned(n[d]);
    a.group_offset[d] = 0;
  }
  for (auto& o : a.inline_offset) o = MG_NOT_INLINE;
  cb_->commands_->push_back(std::move(owned));
}
- (void)dispatchThreadgroups:(MTLSize)groups threadsPerThreadgroup:(MTLSize)tg {
  MTLSize grid = MTLSizeMake(groups.width * tg.width, groups.height * tg.height, groups.depth * tg.depth);
  [self encode:grid groups:groups tg:tg];
}
- (void)dispatchThreads:(MTLSize)grid threadsPerThreadgroup:(MTLSize)tg {
  id<MTLDevice> dev = [cb_ device];
  if (![dev supportsFamily:MTLGPUFamilyApple4] && ![dev supportsFamily:MTLGPUFamilyMac2])
    return [cb_ fail:"dispatchThreads: (non-uniform threadgroups) on a device without support for it"];
  if (!tg.width || !tg.height || !tg.depth) return [cb_ fail:"empty threadsPerThreadgroup"];
  MTLSize groups = MTLSizeMake((grid.width + tg.width - 1) / tg.width, (grid.height + tg.height - 1) / tg.height,
                               (grid.depth + tg.depth - 1) / tg.depth);
  [self encode:grid groups:groups tg:tg];
}
@end

@implementation MGDoubleBlitEncoder
- (id)init {
  if ((self = [super init])) ++g_live;
  return self;
}
- (void)dealloc {
  if (!ended_) {
    NSLog(@"[metal test double] a blit command encoder was released without endEncoding (Metal asserts)");
    abort();
  }
  [cb_ release];
  --g_live;
  [super dealloc];
}
- (id<MTLDevice>)device { return [cb_ device]; }
- (void)endEncoding {
  ended_ = YES;
  cb_->encoding_ = NO;
}
- (void)copyFromBuffer:(id<MTLBuffer>)src
          sourceOffset:(NSUInteger)so
              toBuffer:(id<MTLBuffer>)dst
     destinationOffset:(NSUInteger)dof
                  size:(NSUInteger)size {
  // Apple: on macOS, offsets and size must be multiples of 4.
  if (so % 4 || dof % 4 || size % 4) return [cb_ fail:"copyFromBuffer: offsets and size must be multiples of 4 on macOS"];
  if (so + size > [src length] || dof + size > [dst length]) return [cb_ fail:"copyFromBuffer: range outside a buffer"];
  auto* c = new CopyCommand;
  c->src = (MGDoubleBuffer*)[src retain];
  c->dst = (MGDoubleBuffer*)[dst retain];
  c->src_offset = so;
  c->dst_offset = dof;
  c->size = size;
  cb_->commands_->push_back(std::unique_ptr<Command>(c));
}
// Checks one buffer <-> texture blit as Apple documents it; "" if fine. Fills `c` with the
// texture side of the copy.
- (std::string)checkBuffer:(id<MTLBuffer>)buffer
                    offset:(NSUInteger)offset
               bytesPerRow:(NSUInteger)bpr
             bytesPerImage:(NSUInteger)bpi
                      size:(MTLSize)size
                   texture:(id<MTLTexture>)texture
                     slice:(NSUInteger)slice
                     level:(NSUInteger)level
                    origin:(MTLOrigin)origin
                      copy:(RegionCopy*)c
                 toTexture:(BOOL)to_texture {
  auto* t = (MGDoubleTexture*)texture;
  const NSUInteger px = t->info_.bytes();
  if (level != 0) return "mipmap level out of range (the texture has one level)";
  if (offset % px) return "the buffer offset must be a multiple of the pixel size";
  if (bpr % px || bpr < size.width * px) return "bytesPerRow must be a multiple of the pixel size and hold a row";
  if (t->type_ != MTLTextureType3D && bpi != 0) return "bytesPerImage must be 0 unless the texture is 3D";
  if (t->type_ == MTLTextureType3D && size.depth > 1 && (bpi % px || bpi < bpr * size.height))
    return "bytesPerImage must be a multiple of the pixel size and hold an image";
  if (slice >= (is_array_type(t->type_) ? t->layers_ : 1)) return "slice out of range";
  if (origin.x + size.width > t->width_ || origin.y + size.height > t->height_ || origin.z + size.depth > t->depth_ ||
      !size.width || !size.height || !size.depth)
    return "the region lies outside the texture";
  const std::size_t end = offset + (size.depth - 1) * bpi + (size.height - 1) * bpr + size.width * px;
  if (end > [buffer length]) return "the copy reaches past the end of the buffer";
  char* texels = t->memory_ + slice * t->slice_pitch_ + origin.z * t->slice_pitch_ + origin.y * t->row_pitch_ +
                 origin.x * px;
  char* linear = static_cast<char*>(((MGDoubleBuffer*)buffer)->memory_) + offset;
  c->row_bytes = size.width * px;
  c->rows = size.height;
  c->images = size.depth;
  if (to_texture) {
    c->src = linear, c->src_row = bpr, c->src_image = bpi;
    c->dst = texels, c->dst_row = t->row_pitch_, c->dst_image = t->slice_pitch_;
  } else {
    c->src = texels, c->src_row = t->row_pitch_, c->src_image = t->slice_pitch_;
    c->dst = linear, c->dst_row = bpr, c->dst_image = bpi;
  }
  return {};
}
// One buffer <-> texture blit, checked, with both resources retained until it has run.
- (void)addCopyBetween:(id<MTLBuffer>)buffer
                offset:(NSUInteger)offset
           bytesPerRow:(NSUInteger)bpr
         bytesPerImage:(NSUInteger)bpi
                  size:(MTLSize)size
               texture:(id<MTLTexture>)texture
                 slice:(NSUInteger)slice
                 level:(NSUInteger)level
                origin:(MTLOrigin)origin
             toTexture:(BOOL)to_texture {
  auto c = std::make_unique<RegionCopy>();
  std::string why = [self checkBuffer:buffer offset:offset bytesPerRow:bpr bytesPerImage:bpi size:size texture:texture
                                slice:slice level:level origin:origin copy:c.get() toTexture:to_texture];
  if (!why.empty())
    return [cb_ fail:std::string(to_texture ? "copyFromBuffer:...toTexture: " : "copyFromTexture:...toBuffer: ") + why];
  id b = buffer, t = texture;
  c->src_owner = [(to_texture ? b : t) retain];
  c->dst_owner = [(to_texture ? t : b) retain];
  cb_->commands_->push_back(std::move(c));
}
- (void)copyFromBuffer:(id<MTLBuffer>)src
           sourceOffset:(NSUInteger)offset
      sourceBytesPerRow:(NSUInteger)bpr
    sourceBytesPerImage:(NSUInteger)bpi
             sourceSize:(MTLSize)size
              toTexture:(id<MTLTexture>)texture
       destinationSlice:(NSUInteger)slice
       destinationLevel:(NSUInteger)level
      destinationOrigin:(MTLOrigin)origin {
  [self addCopyBetween:src offset:offset bytesPerRow:bpr bytesPerImage:bpi size:size texture:texture slice:slice
                  level:level origin:origin toTexture:YES];
}
- (void)copyFromTexture:(id<MTLTexture>)texture
                 sourceSlice:(NSUInteger)slice
                 sourceLevel:(NSUInteger)level
                sourceOrigin:(MTLOrigin)origin
                  sourceSize:(MTLSize)size
                    toBuffer:(id<MTLBuffer>)dst
           destinationOffset:(NSUInteger)offset
      destinationBytesPerRow:(NSUInteger)bpr
    destinationBytesPerImage:(NSUInteger)bpi {
  [self addCopyBetween:dst offset:offset bytesPerRow:bpr bytesPerImage:bpi size:size texture:texture slice:slice
                  level:level origin:origin toTexture:NO];
}
- (void)copyFromTexture:(id<MTLTexture>)source toTexture:(id<MTLTexture>)destination {
  auto* a = (MGDoubleTexture*)source;
  auto* b = (MGDoubleTexture*)destination;
  // Apple: same pixel format, sample count and dimensions (all slices and levels are copied).
  if (a->format_ != b->format_ || a->type_ != b->type_ || a->width_ != b->width_ || a->height_ != b->height_ ||
      a->depth_ != b->depth_ || a->layers_ != b->layers_)
    return [cb_ fail:"copyFromTexture:toTexture: the textures differ in format, type or size"];
  auto c = std::make_unique<RegionCopy>();
  c->src = a->memory_;
  c->dst = b->memory_;
  c->row_bytes = a->slice_pitch_ * a->depth_ * a->layers_;  // identical layouts: one block
  c->rows = c->images = 1;
  c->src_owner = [source retain];
  c->dst_owner = [destination retain];
  cb_->commands_->push_back(std::move(c));
}
- (void)fillBuffer:(id<MTLBuffer>)buffer range:(NSRange)range value:(uint8_t)value {
  if (range.location % 4 || range.length % 4) return [cb_ fail:"fillBuffer: range must be multiples of 4 on macOS"];
  if (range.location + range.length > [buffer length]) return [cb_ fail:"fillBuffer: range outside the buffer"];
  auto* c = new CopyCommand;
  c->dst = (MGDoubleBuffer*)[buffer retain];
  c->dst_offset = range.location;
  c->size = range.length;
  c->fill = true;
  c->value = value;
  cb_->commands_->push_back(std::unique_ptr<Command>(c));
}
@end

// ---- the device ---------------------------------------------------------------------------

@interface MGDoubleDevice : NSObject <MTLDevice> {
 @public
  BOOL nonuniform_;
}
@end
@implementation MGDoubleDevice
- (id)init {
  if ((self = [super init])) {
    ++g_live;
    const char* e = std::getenv("METALGPU_METAL_DOUBLE_UNIFORM_ONLY");
    nonuniform_ = !(e && *e == '1');
  }
  return self;
}
- (void)dealloc {
  --g_live;
  [super dealloc];
}
- (NSString*)name { return @"metalgpu Metal TEST DOUBLE (runs on the CPU backend; not Apple Metal)"; }
- (MTLSize)maxThreadsPerThreadgroup { return MTLSizeMake(1024, 1024, 1024); }
- (NSUInteger)maxThreadgroupMemoryLength { return 32768; }
- (NSUInteger)maxBufferLength { return NSUInteger(1) << 40; }
- (uint64_t)recommendedMaxWorkingSetSize { return engine().info().memory; }
- (BOOL)hasUnifiedMemory { return YES; }
- (BOOL)supportsFamily:(MTLGPUFamily)family {
  if (family == MTLGPUFamilyApple4 || family == MTLGPUFamilyMac2) return nonuniform_;
  return family == MTLGPUFamilyApple1;
}
- (id<MTLCommandQueue>)newCommandQueue {
  MGDoubleQueue* q = [[MGDoubleQueue alloc] init];
  q->device_ = self;
  return q;
}
- (id<MTLBuffer>)newBufferWithLength:(NSUInteger)length options:(MTLResourceOptions)options {
  if (length == 0 || length > [self maxBufferLength]) return nil;
  MGDoubleBuffer* b = [[MGDoubleBuffer alloc] initWithDevice:self length:length options:options];
  if (!b->memory_) {
    [b release];
    return nil;
  }
  return b;
}
- (id<MTLBuffer>)newBufferWithBytes:(const void*)pointer length:(NSUInteger)length options:(MTLResourceOptions)options {
  MGDoubleBuffer* b = (MGDoubleBuffer*)[self newBufferWithLength:length options:options];
  if (b) std::memcpy(b->memory_, pointer, length);
  return b;
}
- (id<MTLBuffer>)newBufferWithBytesNoCopy:(void*)pointer
                                   length:(NSUInteger)length
                                  options:(MTLResourceOptions)options
                              deallocator:(id)deallocator {
  // Apple: a page-aligned pointer, and a length that makes a page-aligned region.
  const NSUInteger page = NSUInteger(getpagesize());
  if (!pointer || !length || reinterpret_cast<std::uintptr_t>(pointer) % page || length % page ||
      ((options >> 4) & 0xf) == MTLStorageModePrivate || deallocator)
    return nil;
  return [[MGDoubleBuffer alloc] initWithDevice:self borrowing:pointer length:length];
}
- (id<MTLTexture>)newTextureWithDescriptor:(MTLTextureDescriptor*)d {
  PixelFormatInfo info = pixel_format_info([d pixelFormat]);
  MTLTextureType type = [d textureType];
  const bool is1d = type == MTLTextureType1D || type == MTLTextureType1DArray;
  const bool known = is1d || type == MTLTextureType2D || type == MTLTextureType2DArray || type == MTLTextureType3D;
  // Apple's limits on recent GPUs: 16384 wide and high, 2048 deep and 2048 layers.
  const NSUInteger max_side = type == MTLTextureType3D ? 2048 : 16384;
  bool ok = info && known && [d mipmapLevelCount] == 1 && [d width] >= 1 && [d height] >= 1 && [d depth] >= 1 &&
            [d arrayLength] >= 1 && [d width] <= max_side && [d height] <= max_side && [d depth] <= 2048 &&
            [d arrayLength] <= 2048 && (!is1d || [d height] == 1) && (type == MTLTextureType3D || [d depth] == 1) &&
            (is_array_type(type) || [d arrayLength] == 1);
  if (!ok) return nil;
  MGDoubleTexture* t = [[MGDoubleTexture alloc] initWithDevice:self descriptor:d info:info];
  if (!t->memory_) {
    [t release];
    return nil;
  }
  return t;
}
- (id<MTLSamplerState>)newSamplerStateWithDescriptor:(MTLSamplerDescriptor*)d {
  // Back to metalgpu's sampler bits, which the CPU runtime samples with.
  unsigned bits = MG_SAMPLER_VALID | ([d normalizedCoordinates] ? MG_SAMPLER_NORMALIZED : 0u);
  const MTLSamplerAddressMode modes[3] = {[d sAddressMode], [d tAddressMode], [d rAddressMode]};
  for (int axis = 0; axis < 3; ++axis) {
    unsigned m;
    switch (modes[axis]) {
      case MTLSamplerAddressModeClampToEdge: m = MG_ADDRESS_CLAMP_TO_EDGE; break;
      case MTLSamplerAddressModeRepeat: m = MG_ADDRESS_REPEAT; break;
      case MTLSamplerAddressModeMirrorRepeat: m = MG_ADDRESS_MIRRORED_REPEAT; break;
      case MTLSamplerAddressModeClampToZero: m = MG_ADDRESS_CLAMP_TO_ZERO; break;
      case MTLSamplerAddressModeClampToBorderColor: m = MG_ADDRESS_CLAMP_TO_BORDER; break;
      default: return nil;  // mirror_clamp_to_edge: not in the CPU runtime
    }
    // Apple: with pixel coordinates, only clamp_to_edge and clamp_to_zero are defined.
    if (![d normalizedCoordinates] && m != MG_ADDRESS_CLAMP_TO_EDGE && m != MG_ADDRESS_CLAMP_TO_ZERO) {
      NSLog(@"[metal test double] a sampler with pixel coordinates and repeat/mirror/border addressing is undefined");
      return nil;
    }
    bits |= m << MG_SAMPLER_ADDRESS_SHIFT(axis);
  }
  if ([d magFilter] == MTLSamplerMinMagFilterLinear) bits |= MG_SAMPLER_MAG_LINEAR;
  if ([d minFilter] == MTLSamplerMinMagFilterLinear) bits |= MG_SAMPLER_MIN_LINEAR;
  bits |= unsigned([d borderColor] & 3u) << MG_SAMPLER_BORDER_SHIFT;
  MGDoubleSampler* s = [[MGDoubleSampler alloc] init];
  s->device_ = self;
  s->bits_ = bits;
  return s;
}
- (id<MTLLibrary>)newLibraryWithSource:(NSString*)source options:(MTLCompileOptions*)options error:(NSError**)error {
  std::string failure;
  MGDoubleLibrary* lib = [[MGDoubleLibrary alloc] init];
  lib->device_ = self;
  try {
    metalgpu::ShaderOptions so;
    // MTLCompileOptions.preprocessorMacros: NAME -> value.
    NSDictionary* macros = options ? [options preprocessorMacros] : nil;
    NSArray* keys = [macros allKeys];
    for (NSUInteger i = 0; i < [keys count]; ++i) {
      id k = [keys objectAtIndex:i];
      so.defines.push_back({utf8([k description]), utf8([[macros objectForKey:k] description])});
    }
    lib->state_->tr = std::make_shared<const metalgpu::msl::Translation>(utf8(source), "program_source", so);
    if (!lib->state_->tr->has_function_constants()) lib->state_->base = engine().build(*lib->state_->tr, {});
  } catch (const metalgpu::CompileError& e) {
    failure = e.log().empty() ? e.what() : e.log();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) {
    [lib release];
    if (error) *error = make_error(@"MTLLibraryErrorDomain", 3, failure);
    return nil;
  }
  return lib;
}
- (id<MTLComputePipelineState>)newComputePipelineStateWithFunction:(id<MTLFunction>)f error:(NSError**)error {
  return [self newComputePipelineStateWithFunction:f options:MTLPipelineOptionNone reflection:nullptr error:error];
}
- (id<MTLComputePipelineState>)newComputePipelineStateWithFunction:(id<MTLFunction>)f
                                                            options:(MTLPipelineOption)options
                                                         reflection:(MTLAutoreleasedComputePipelineReflection*)reflection
                                                              error:(NSError**)error {
  if (!f) {
    if (error) *error = make_error(@"MTLLibraryErrorDomain", 1, "no function given");
    return nil;
  }
  MGDoublePipeline* p = [[MGDoublePipeline alloc] init];
  p->device_ = self;
  p->function_ = (MGDoubleFunction*)[f retain];
  if (reflection) {
    NSMutableArray* args = [NSMutableArray array];
    if (options & MTLPipelineOptionArgumentInfo) {
      MGDoubleFunction* fn = (MGDoubleFunction*)f;
      for (const auto& param : fn->kernel_->params) {
        if (param.role == metalgpu::msl::ParamRole::builtin) continue;
        bool buffer = param.role == metalgpu::msl::ParamRole::buffer;
        NSUInteger size = buffer ? fn->desc_->slot_sizes[param.slot] : 0;
        MTLArgumentType type = buffer                                                   ? MTLArgumentTypeBuffer
                               : param.role == metalgpu::msl::ParamRole::texture ? MTLArgumentTypeTexture
                               : param.role == metalgpu::msl::ParamRole::sampler ? MTLArgumentTypeSampler
                                                                                  : MTLArgumentTypeThreadgroupMemory;
        MTLArgument* a = [[MTLArgument alloc] initWithName:[NSString stringWithUTF8String:param.name.c_str()]
                                                      type:type
                                                     index:NSUInteger(param.slot)
                                                      size:size];
        [args addObject:a];
        [a release];
      }
    }
    MTLComputePipelineReflection* r = [[MTLComputePipelineReflection alloc] initWithArguments:args];
    *reflection = [r autorelease];
  }
  return p;
}
@end

// ---- entry points -------------------------------------------------------------------------

static MGDoubleDevice* the_device() {
  static MGDoubleDevice* dev = [[MGDoubleDevice alloc] init];  // lives for the process
  return dev;
}

extern "C" id<MTLDevice> MTLCreateSystemDefaultDevice(void) {
  try {
    engine();  // the double needs the CPU backend (a host compiler)
  } catch (const std::exception& e) {
    NSLog(@"[metal test double] no device: %s", e.what());
    return nil;
  }
  return [the_device() retain];
}

extern "C" NSArray* MTLCopyAllDevices(void) {
  id<MTLDevice> d = MTLCreateSystemDefaultDevice();
  if (!d) return [[NSArray alloc] init];
  NSArray* all = [[NSArray alloc] initWithObjects:d, nil];
  [d release];
  return all;
}

extern "C" __attribute__((visibility("default"))) long mg_metal_double_live_objects(void) { return g_live.load(); }

extern "C" __attribute__((visibility("default"))) long mg_metal_double_texture_copies(void) {
  return g_texture_copies.load();
}
