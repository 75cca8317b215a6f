#pragma once
// Softmax over the last dimension of f32 rows, max-subtracted (no overflow for any finite input),
// f32 accumulation of the sum. out may alias x. -inf entries get probability 0; a row of all -inf
// gives all zeros (a fully masked row), never NaN.
#include "kernels/tensor.hpp"

namespace tori::kernels {

void softmax(const Tensor& x, Tensor& out);
void softmax_ref(const Tensor& x, Tensor& out);  // f64 std::exp

}  // namespace tori::kernels
