// Standalone include of the whole runtime, in prelude order (tests only; the build concatenates).
#pragma once
#include "mg_config.h"
#include "mg_traits.h"
#include "mg_scalar.h"
#include "mg_vector.h"
#include "mg_array.h"
#include "mg_matrix.h"
#include "mg_math.h"
#include "mg_constants.h"
