// TEST DOUBLE - NOT APPLE'S METAL.
//
// A declaration of the subset of Apple's Metal API that src/backends/metal/metal_backend.mm
// uses, written from Apple's documented Objective-C signatures (names, selectors, argument
// and return types, enum values), so that the SAME metal_backend.mm compiles on Linux with
// g++ -x objective-c++ and GNUstep Base. The classes behind it (metal_double.mm) run kernels
// on metalgpu's own CPU backend. Passing tests with it prove that our Objective-C++ drives the
// API the way the documentation says; they prove nothing about Apple's driver or compiler.
//
// Differences from Apple's header that do not change how the API is called: no nullability
// annotations or lightweight generics (GCC's Objective-C has neither), NSUInteger enums
// declared as typedef + constants, and only the members we use. On Apple platforms the real
// <Metal/Metal.h> is used and this file is never included.
#pragma once

#import <Foundation/Foundation.h>

#include <stdint.h>

#ifdef __cplusplus
#define MG_DOUBLE_EXTERN extern "C"
#else
#define MG_DOUBLE_EXTERN extern
#endif

#ifndef CFTimeInterval
typedef double CFTimeInterval;
#endif

// ---- plain types -------------------------------------------------------------------------

typedef struct {
  NSUInteger width, height, depth;
} MTLSize;

static inline MTLSize MTLSizeMake(NSUInteger width, NSUInteger height, NSUInteger depth) {
  MTLSize s;
  s.width = width;
  s.height = height;
  s.depth = depth;
  return s;
}

typedef NSUInteger MTLResourceOptions;
enum {
  MTLResourceCPUCacheModeDefaultCache = 0,
  MTLResourceStorageModeShared = 0UL << 4,
  MTLResourceStorageModeManaged = 1UL << 4,
  MTLResourceStorageModePrivate = 2UL << 4,
  MTLResourceHazardTrackingModeDefault = 0UL << 8,
};

typedef NSUInteger MTLStorageMode;
enum { MTLStorageModeShared = 0, MTLStorageModeManaged = 1, MTLStorageModePrivate = 2 };

typedef NSUInteger MTLLanguageVersion;
enum {
  MTLLanguageVersion2_4 = (2 << 16) + 4,
  MTLLanguageVersion3_0 = (3 << 16) + 0,
  MTLLanguageVersion3_1 = (3 << 16) + 1,
};

typedef NSUInteger MTLDataType;
enum {
  MTLDataTypeNone = 0,
  MTLDataTypeFloat = 3,
  MTLDataTypeHalf = 16,
  MTLDataTypeInt = 29,
  MTLDataTypeUInt = 33,
  MTLDataTypeShort = 37,
  MTLDataTypeUShort = 41,
  MTLDataTypeChar = 45,
  MTLDataTypeUChar = 49,
  MTLDataTypeBool = 53,
  MTLDataTypeLong = 81,
  MTLDataTypeULong = 85,
};

typedef NSUInteger MTLArgumentType;
enum { MTLArgumentTypeBuffer = 0, MTLArgumentTypeThreadgroupMemory = 1 };

typedef NSUInteger MTLPipelineOption;
enum { MTLPipelineOptionNone = 0, MTLPipelineOptionArgumentInfo = 1 << 0, MTLPipelineOptionBufferTypeInfo = 1 << 1 };

typedef NSUInteger MTLCommandBufferStatus;
enum {
  MTLCommandBufferStatusNotEnqueued = 0,
  MTLCommandBufferStatusEnqueued = 1,
  MTLCommandBufferStatusCommitted = 2,
  MTLCommandBufferStatusScheduled = 3,
  MTLCommandBufferStatusCompleted = 4,
  MTLCommandBufferStatusError = 5,
};

typedef NSInteger MTLGPUFamily;
enum {
  MTLGPUFamilyApple1 = 1001,
  MTLGPUFamilyApple4 = 1004,
  MTLGPUFamilyMac2 = 2002,
};

// ---- protocols ---------------------------------------------------------------------------

@protocol MTLDevice;
@protocol MTLCommandQueue;
@protocol MTLBuffer;
@protocol MTLLibrary;
@protocol MTLFunction;
@protocol MTLComputePipelineState;
@class MTLCompileOptions;
@class MTLFunctionConstantValues;
@class MTLComputePipelineReflection;

typedef MTLComputePipelineReflection* MTLAutoreleasedComputePipelineReflection;

@protocol MTLResource <NSObject>
@property (readonly) id<MTLDevice> device;
@property (readonly) MTLStorageMode storageMode;
@end

@protocol MTLBuffer <MTLResource>
@property (readonly) NSUInteger length;
- (void*)contents;
@end

@protocol MTLFunction <NSObject>
@property (readonly) id<MTLDevice> device;
@property (readonly) NSString* name;
@end

@protocol MTLLibrary <NSObject>
@property (readonly) id<MTLDevice> device;
@property (readonly) NSArray* functionNames;  // NSArray<NSString*>*
- (id<MTLFunction>)newFunctionWithName:(NSString*)functionName;
- (id<MTLFunction>)newFunctionWithName:(NSString*)name
                        constantValues:(MTLFunctionConstantValues*)constantValues
                                 error:(NSError**)error;
@end

@protocol MTLComputePipelineState <NSObject>
@property (readonly) id<MTLDevice> device;
@property (readonly) NSUInteger maxTotalThreadsPerThreadgroup;
@property (readonly) NSUInteger threadExecutionWidth;
@property (readonly) NSUInteger staticThreadgroupMemoryLength;
@end

@protocol MTLCommandEncoder <NSObject>
@property (readonly) id<MTLDevice> device;
- (void)endEncoding;
@end

@protocol MTLComputeCommandEncoder <MTLCommandEncoder>
- (void)setComputePipelineState:(id<MTLComputePipelineState>)state;
- (void)setBuffer:(id<MTLBuffer>)buffer offset:(NSUInteger)offset atIndex:(NSUInteger)index;
- (void)setBytes:(const void*)bytes length:(NSUInteger)length atIndex:(NSUInteger)index;
- (void)setThreadgroupMemoryLength:(NSUInteger)length atIndex:(NSUInteger)index;
- (void)dispatchThreadgroups:(MTLSize)threadgroupsPerGrid threadsPerThreadgroup:(MTLSize)threadsPerThreadgroup;
- (void)dispatchThreads:(MTLSize)threadsPerGrid threadsPerThreadgroup:(MTLSize)threadsPerThreadgroup;
@end

@protocol MTLBlitCommandEncoder <MTLCommandEncoder>
- (void)copyFromBuffer:(id<MTLBuffer>)sourceBuffer
          sourceOffset:(NSUInteger)sourceOffset
              toBuffer:(id<MTLBuffer>)destinationBuffer
     destinationOffset:(NSUInteger)destinationOffset
                  size:(NSUInteger)size;
- (void)fillBuffer:(id<MTLBuffer>)buffer range:(NSRange)range value:(uint8_t)value;
@end

@protocol MTLCommandBuffer <NSObject>
@property (readonly) id<MTLDevice> device;
@property (readonly) id<MTLCommandQueue> commandQueue;
@property (readonly) MTLCommandBufferStatus status;
@property (readonly) NSError* error;
@property (readonly) CFTimeInterval GPUStartTime;
@property (readonly) CFTimeInterval GPUEndTime;
- (id<MTLComputeCommandEncoder>)computeCommandEncoder;
- (id<MTLBlitCommandEncoder>)blitCommandEncoder;
- (void)commit;
- (void)waitUntilCompleted;
@end

@protocol MTLCommandQueue <NSObject>
@property (readonly) id<MTLDevice> device;
- (id<MTLCommandBuffer>)commandBuffer;
@end

@protocol MTLDevice <NSObject>
@property (readonly) NSString* name;
@property (readonly) MTLSize maxThreadsPerThreadgroup;
@property (readonly) NSUInteger maxThreadgroupMemoryLength;
@property (readonly) NSUInteger maxBufferLength;
@property (readonly) uint64_t recommendedMaxWorkingSetSize;
@property (readonly) BOOL hasUnifiedMemory;
- (BOOL)supportsFamily:(MTLGPUFamily)gpuFamily;
- (id<MTLCommandQueue>)newCommandQueue;
- (id<MTLBuffer>)newBufferWithLength:(NSUInteger)length options:(MTLResourceOptions)options;
- (id<MTLBuffer>)newBufferWithBytes:(const void*)pointer length:(NSUInteger)length options:(MTLResourceOptions)options;
- (id<MTLLibrary>)newLibraryWithSource:(NSString*)source options:(MTLCompileOptions*)options error:(NSError**)error;
- (id<MTLComputePipelineState>)newComputePipelineStateWithFunction:(id<MTLFunction>)computeFunction
                                                              error:(NSError**)error;
- (id<MTLComputePipelineState>)newComputePipelineStateWithFunction:(id<MTLFunction>)computeFunction
                                                            options:(MTLPipelineOption)options
                                                         reflection:(MTLAutoreleasedComputePipelineReflection*)reflection
                                                              error:(NSError**)error;
@end

// ---- classes -----------------------------------------------------------------------------

@interface MTLCompileOptions : NSObject {
  BOOL fastMathEnabled_;
  MTLLanguageVersion languageVersion_;
  NSDictionary* preprocessorMacros_;
}
@property (readwrite, nonatomic) BOOL fastMathEnabled;
@property (readwrite, nonatomic) MTLLanguageVersion languageVersion;
@property (readwrite, nonatomic, copy) NSDictionary* preprocessorMacros;
@end

@interface MTLFunctionConstantValues : NSObject {
  NSMutableArray* entries_;  // the double's own storage
}
- (void)setConstantValue:(const void*)value type:(MTLDataType)type atIndex:(NSUInteger)index;
- (void)setConstantValue:(const void*)value type:(MTLDataType)type withName:(NSString*)name;
@end

@interface MTLArgument : NSObject {
  NSString* name_;
  MTLArgumentType type_;
  NSUInteger index_;
  NSUInteger bufferDataSize_;
  NSUInteger bufferAlignment_;
  BOOL active_;
}
@property (readonly) NSString* name;
@property (readonly) MTLArgumentType type;
@property (readonly) NSUInteger index;
@property (readonly, getter=isActive) BOOL active;
@property (readonly) NSUInteger bufferDataSize;
@property (readonly) NSUInteger bufferAlignment;
@end

@interface MTLComputePipelineReflection : NSObject {
  NSArray* arguments_;
}
@property (readonly) NSArray* arguments;  // NSArray<MTLArgument*>*
@end

// ---- functions ---------------------------------------------------------------------------

MG_DOUBLE_EXTERN id<MTLDevice> MTLCreateSystemDefaultDevice(void);
MG_DOUBLE_EXTERN NSArray* MTLCopyAllDevices(void);  // NSArray<id<MTLDevice>>*

// Not Metal API: how many objects of the double are alive (leak checks in tests).
MG_DOUBLE_EXTERN long mg_metal_double_live_objects(void);
