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
enum {
  MTLArgumentTypeBuffer = 0,
  MTLArgumentTypeThreadgroupMemory = 1,
  MTLArgumentTypeTexture = 2,
  MTLArgumentTypeSampler = 3,
};

typedef struct {
  NSUInteger x, y, z;
} MTLOrigin;

static inline MTLOrigin MTLOriginMake(NSUInteger x, NSUInteger y, NSUInteger z) {
  MTLOrigin o;
  o.x = x;
  o.y = y;
  o.z = z;
  return o;
}

typedef NSUInteger MTLPixelFormat;
enum {
  MTLPixelFormatInvalid = 0,
  MTLPixelFormatR8Unorm = 10,
  MTLPixelFormatR8Snorm = 12,
  MTLPixelFormatR8Uint = 13,
  MTLPixelFormatR8Sint = 14,
  MTLPixelFormatR16Unorm = 20,
  MTLPixelFormatR16Snorm = 22,
  MTLPixelFormatR16Uint = 23,
  MTLPixelFormatR16Sint = 24,
  MTLPixelFormatR16Float = 25,
  MTLPixelFormatRG8Unorm = 30,
  MTLPixelFormatRG8Snorm = 32,
  MTLPixelFormatRG8Uint = 33,
  MTLPixelFormatRG8Sint = 34,
  MTLPixelFormatR32Uint = 53,
  MTLPixelFormatR32Sint = 54,
  MTLPixelFormatR32Float = 55,
  MTLPixelFormatRG16Unorm = 60,
  MTLPixelFormatRG16Snorm = 62,
  MTLPixelFormatRG16Uint = 63,
  MTLPixelFormatRG16Sint = 64,
  MTLPixelFormatRG16Float = 65,
  MTLPixelFormatRGBA8Unorm = 70,
  MTLPixelFormatRGBA8Snorm = 72,
  MTLPixelFormatRGBA8Uint = 73,
  MTLPixelFormatRGBA8Sint = 74,
  MTLPixelFormatRG32Uint = 103,
  MTLPixelFormatRG32Sint = 104,
  MTLPixelFormatRG32Float = 105,
  MTLPixelFormatRGBA16Unorm = 110,
  MTLPixelFormatRGBA16Snorm = 112,
  MTLPixelFormatRGBA16Uint = 113,
  MTLPixelFormatRGBA16Sint = 114,
  MTLPixelFormatRGBA16Float = 115,
  MTLPixelFormatRGBA32Uint = 123,
  MTLPixelFormatRGBA32Sint = 124,
  MTLPixelFormatRGBA32Float = 125,
};

typedef NSUInteger MTLTextureType;
enum {
  MTLTextureType1D = 0,
  MTLTextureType1DArray = 1,
  MTLTextureType2D = 2,
  MTLTextureType2DArray = 3,
  MTLTextureType3D = 7,
};

typedef NSUInteger MTLTextureUsage;
enum { MTLTextureUsageUnknown = 0, MTLTextureUsageShaderRead = 1, MTLTextureUsageShaderWrite = 2 };

typedef NSUInteger MTLSamplerMinMagFilter;
enum { MTLSamplerMinMagFilterNearest = 0, MTLSamplerMinMagFilterLinear = 1 };

typedef NSUInteger MTLSamplerAddressMode;
enum {
  MTLSamplerAddressModeClampToEdge = 0,
  MTLSamplerAddressModeMirrorClampToEdge = 1,
  MTLSamplerAddressModeRepeat = 2,
  MTLSamplerAddressModeMirrorRepeat = 3,
  MTLSamplerAddressModeClampToZero = 4,
  MTLSamplerAddressModeClampToBorderColor = 5,
};

typedef NSUInteger MTLSamplerBorderColor;
enum {
  MTLSamplerBorderColorTransparentBlack = 0,
  MTLSamplerBorderColorOpaqueBlack = 1,
  MTLSamplerBorderColorOpaqueWhite = 2,
};

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
@protocol MTLTexture;
@protocol MTLSamplerState;
@class MTLCompileOptions;
@class MTLTextureDescriptor;
@class MTLSamplerDescriptor;
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

@protocol MTLTexture <MTLResource>
@property (readonly) MTLTextureType textureType;
@property (readonly) MTLPixelFormat pixelFormat;
@property (readonly) NSUInteger width;
@property (readonly) NSUInteger height;
@property (readonly) NSUInteger depth;
@property (readonly) NSUInteger arrayLength;
@property (readonly) MTLTextureUsage usage;
@end

@protocol MTLSamplerState <NSObject>
@property (readonly) id<MTLDevice> device;
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
- (void)setTexture:(id<MTLTexture>)texture atIndex:(NSUInteger)index;
- (void)setSamplerState:(id<MTLSamplerState>)sampler atIndex:(NSUInteger)index;
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
- (void)copyFromBuffer:(id<MTLBuffer>)sourceBuffer
           sourceOffset:(NSUInteger)sourceOffset
      sourceBytesPerRow:(NSUInteger)sourceBytesPerRow
    sourceBytesPerImage:(NSUInteger)sourceBytesPerImage
             sourceSize:(MTLSize)sourceSize
              toTexture:(id<MTLTexture>)destinationTexture
       destinationSlice:(NSUInteger)destinationSlice
       destinationLevel:(NSUInteger)destinationLevel
      destinationOrigin:(MTLOrigin)destinationOrigin;
- (void)copyFromTexture:(id<MTLTexture>)sourceTexture
                 sourceSlice:(NSUInteger)sourceSlice
                 sourceLevel:(NSUInteger)sourceLevel
                sourceOrigin:(MTLOrigin)sourceOrigin
                  sourceSize:(MTLSize)sourceSize
                    toBuffer:(id<MTLBuffer>)destinationBuffer
           destinationOffset:(NSUInteger)destinationOffset
      destinationBytesPerRow:(NSUInteger)destinationBytesPerRow
    destinationBytesPerImage:(NSUInteger)destinationBytesPerImage;
- (void)copyFromTexture:(id<MTLTexture>)sourceTexture toTexture:(id<MTLTexture>)destinationTexture;
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
// Apple's deallocator is a block, which GCC's Objective-C cannot declare; callers pass nil.
- (id<MTLBuffer>)newBufferWithBytesNoCopy:(void*)pointer
                                   length:(NSUInteger)length
                                  options:(MTLResourceOptions)options
                              deallocator:(id)deallocator;
- (id<MTLTexture>)newTextureWithDescriptor:(MTLTextureDescriptor*)descriptor;
- (id<MTLSamplerState>)newSamplerStateWithDescriptor:(MTLSamplerDescriptor*)descriptor;
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

@interface MTLTextureDescriptor : NSObject {
  MTLTextureType textureType_;
  MTLPixelFormat pixelFormat_;
  NSUInteger width_, height_, depth_, arrayLength_, mipmapLevelCount_;
  MTLStorageMode storageMode_;
  MTLTextureUsage usage_;
}
@property (readwrite, nonatomic) MTLTextureType textureType;
@property (readwrite, nonatomic) MTLPixelFormat pixelFormat;
@property (readwrite, nonatomic) NSUInteger width;
@property (readwrite, nonatomic) NSUInteger height;
@property (readwrite, nonatomic) NSUInteger depth;
@property (readwrite, nonatomic) NSUInteger arrayLength;
@property (readwrite, nonatomic) NSUInteger mipmapLevelCount;
@property (readwrite, nonatomic) MTLStorageMode storageMode;
@property (readwrite, nonatomic) MTLTextureUsage usage;
@end

@interface MTLSamplerDescriptor : NSObject {
  MTLSamplerMinMagFilter minFilter_, magFilter_;
  MTLSamplerAddressMode sAddressMode_, tAddressMode_, rAddressMode_;
  MTLSamplerBorderColor borderColor_;
  BOOL normalizedCoordinates_;
}
@property (readwrite, nonatomic) MTLSamplerMinMagFilter minFilter;
@property (readwrite, nonatomic) MTLSamplerMinMagFilter magFilter;
@property (readwrite, nonatomic) MTLSamplerAddressMode sAddressMode;
@property (readwrite, nonatomic) MTLSamplerAddressMode tAddressMode;
@property (readwrite, nonatomic) MTLSamplerAddressMode rAddressMode;
@property (readwrite, nonatomic) MTLSamplerBorderColor borderColor;
@property (readwrite, nonatomic) BOOL normalizedCoordinates;
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
// Not Metal API: how many texture blits (buffer <-> texture, texture -> texture) have run.
MG_DOUBLE_EXTERN long mg_metal_double_texture_copies(void);
