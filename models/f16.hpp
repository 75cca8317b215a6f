#pragma once
// Half precision conversions for the checkpoint readers and writers: kernels/f16.hpp (the int4
// weight format's group scales are f16 too).
#include "kernels/f16.hpp"

namespace tori::models {
using kernels::float_to_half;
using kernels::half_to_float;
}  // namespace tori::models
