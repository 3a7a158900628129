// metalgpu: run Metal Shading Language compute kernels on Metal, NVIDIA GPUs and CPUs.
#pragma once

#include "metalgpu/buffer.hpp"
#include "metalgpu/device.hpp"
#include "metalgpu/dtype.hpp"
#include "metalgpu/errors.hpp"
#include "metalgpu/interface.hpp"
#include "metalgpu/texture.hpp"
