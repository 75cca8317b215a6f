#pragma once
// Row normalisations over the last dimension E (x: [..., E] f32; y may be x itself):
//   rmsnorm:   y = x / sqrt(mean(x^2) + eps) * w
//   layernorm: y = (x - mean) / sqrt(var + eps) * w + b     (biased variance, as torch)
// Rows run in parallel (OpenMP); each row is one vectorised pass for the statistics, one for y.
// *_ref: f64 accumulation, the same formulas as models/reference_model.cpp.
#include "kernels/tensor.hpp"

namespace tori::kernels {

void rmsnorm(const Tensor& x, const Tensor& w, float eps, Tensor& y);
void layernorm(const Tensor& x, const Tensor& w, const Tensor& b, float eps, Tensor& y);

void rmsnorm_ref(const Tensor& x, const Tensor& w, float eps, Tensor& y);
void layernorm_ref(const Tensor& x, const Tensor& w, const Tensor& b, float eps, Tensor& y);

}  // namespace tori::kernels
