#pragma once
// Row normalisations over the last dimension E (x: [..., E] f32; y may be x itself):
//   rmsnorm:   y = x / sqrt(mean(x^2) + eps) * w
//   layernorm: y = (x - mean) / sqrt(var + eps) * w + b     (biased variance, as torch)
// Rows run in parallel (OpenMP); each row is one vectorised pass for the statistics, one for y.
// *_ref: f64 accumulation, the same formulas as models/reference_model.cpp.
#include <cstdint>

#include "kernels/tensor.hpp"

namespace tori::kernels {

void rmsnorm(const Tensor& x, const Tensor& w, float eps, Tensor& y);
void layernorm(const Tensor& x, const Tensor& w, const Tensor& b, float eps, Tensor& y);

// The two passes of a norm whose rows are split across ranks (runtime/sharded_norm.cpp all-reduces
// the partial statistics in between), in f64 as the reference model; rows over the threads from
// kNormSerialBelow values, each row one vectorised pass:
//   row_stats(x [M, n], center, square, s):  s[m] = Σ_e t(x[m, e] − c_m), t(v) = square ? v² : v,
//                                             c_m = center ? center[m] : 0
//   normalize_rows(x [M, n], mean, inv, w, b, y):  y[m, e] = (x[m, e] − mean_m)·inv_m·w[e] + b[e]
//                                             (mean, b null: 0)
void row_stats(const float* x, int64_t M, int64_t n, const double* center, bool square, float* s);
void normalize_rows(const float* x, int64_t M, int64_t n, const double* mean, const double* inv, const float* w,
                    const float* b, float* y);

void rmsnorm_ref(const Tensor& x, const Tensor& w, float eps, Tensor& y);
void layernorm_ref(const Tensor& x, const Tensor& w, const Tensor& b, float eps, Tensor& y);

}  // namespace tori::kernels
