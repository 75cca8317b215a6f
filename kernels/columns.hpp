#pragma once
// Column blocks of a row-major f32 matrix: slice_columns copies columns [c0, c0 + n) of x [M, C]
// into a new [M, n] tensor. Used where fused projections are split (Q | K | V, W_in | W_kv) and
// weight blocks are cut.
#include <cstring>

#include "kernels/tensor.hpp"

namespace tori::kernels {

inline Tensor slice_columns(const Tensor& x, int64_t c0, int64_t n) {
  const int64_t M = x.size(0), C = x.size(1);
  Tensor out({M, n}, DType::f32);
  for (int64_t m = 0; m < M; ++m)
    std::memcpy(out.data<float>() + m * n, x.data<float>() + m * C + c0, size_t(n) * sizeof(float));
  return out;
}

}  // namespace tori::kernels
