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

// ---- objects behind the protocols ---------------------------------------------------------

@class MGDoubleDevice;
@class MGDoubleQueue;

@interface MGDoubleBuffer : NSObject <MTLBuffer> {
 @public
  id<MTLDevice> device_;  // not retained: devices live for the process
  void* memory_;
  NSUInteger length_;
  MTLStorageMode mode_;
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
- (void)dealloc {
  std::free(memory_);
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
  std::vector<std::string> bytes;
  mg_launch args{};
  ~DispatchCommand() override {
    [pipeline release];
    for (auto b : buffers) [b release];
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
- (void)setThreadgroupMemoryLength:(NSUInteger)length atIndex:(NSUInteger)index {
  if (index >= MG_MAX_THREADGROUP_SLOTS) return [cb_ fail:"setThreadgroupMemoryLength: index out of range"];
  if (length % 16) return [cb_ fail:"setThreadgroupMemoryLength: length must be a multiple of 16"];
  tg_lengths_[index] = unsigned(length);
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
    if (p.role == metalgpu::msl::ParamRole::threadgroup_memory && !tg_lengths_[p.slot])
      return [cb_ fail:"threadgroup(" + std::to_string(p.slot) + ") of kernel " + k.name + " has no length"];
  }
  cmd->pipeline = [pipeline_ retain];
  for (int s = 0; s < MG_MAX_BUFFERS; ++s) {
    cmd->buffers[s] = [buffers_[s] retain];
    cmd->offsets[s] = offsets_[s];
  }
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
        MTLArgument* a = [[MTLArgument alloc] initWithName:[NSString stringWithUTF8String:param.name.c_str()]
                                                      type:buffer ? MTLArgumentTypeBuffer : MTLArgumentTypeThreadgroupMemory
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
