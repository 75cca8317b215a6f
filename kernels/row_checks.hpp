#pragma once
// Shape checks shared by the row-wise ops (internal to kernels/): every op names itself, the
// operand and the shapes in the error it throws.
#include <string>

#include "kernels/tensor.hpp"

namespace tori::kernels::detail {

// x must be f32 with last dimension n (if n >= 0); returns the number of rows.
inline int64_t rows_of(const Tensor& x, int64_t n, const char* op, const char* operand) {
  if (!x.defined() || x.dtype() != DType::f32 || x.rank() < 1 || (n >= 0 && x.size(-1) != n))
    throw Error(std::string(op) + ": " + operand + " must be f32 [..., " +
                (n >= 0 ? std::to_string(n) : std::string("n")) + "], got " +
                (x.defined() ? std::string(dtype_name(x.dtype())) + " " + shape_str(x.shape())
                             : std::string("undefined")));
  const int64_t last = x.size(-1);
  return last ? x.numel() / last : 0;
}

// y: allocated like x if undefined, else must have x's shape and be f32.
inline void like(const Tensor& x, Tensor& y, const char* op) {
  if (!y.defined()) {
    y = Tensor::empty(x.shape(), DType::f32);
    return;
  }
  if (y.dtype() != DType::f32 || y.shape() != x.shape())
    throw Error(std::string(op) + ": output must be f32 " + shape_str(x.shape()) + ", got " +
                std::string(dtype_name(y.dtype())) + " " + shape_str(y.shape()));
}

}  // namespace tori::kernels::detail
