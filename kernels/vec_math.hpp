#pragma once
// exp and erf in f32 written so that GCC vectorises them inside `#pragma omp simd` loops (std::exp
// and std::erf are library calls that block vectorisation without -ffast-math). Accuracy, checked
// in tests/kernels/test_ops.cpp against f64 std::exp/std::erf:
//   exp_f32: relative error <= 2e-7 over [-87, 88] (Cody-Waite reduction + degree-6 polynomial,
//            Cephes expf coefficients); underflows to 0 below -87.3, saturates above 88.7.
//   erf_f32: absolute error <= 3e-7 (1 - erfc, erfc from Numerical Recipes' Chebyshev fit).
//   gelu_f32: relative error ~ 1e-6 near 0, growing to ~|x|^2/2 * 2^-24 in the negative tail
//            (the f32 rounding of the exponent -x^2/2): ~ 5e-6 at x = -12.
#include <cstdint>
#include <cstring>

namespace tori::kernels {

inline float exp_f32(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
  // n = round(x / ln 2) via the 1.5 * 2^23 trick (no libm call, exact for |n| < 2^22)
  const float t = x * 1.44269504088896341f + 12582912.f;
  const float n = t - 12582912.f;
  int32_t ti;
  std::memcpy(&ti, &t, 4);
  const int32_t e = ti - 0x4B400000;
  // r = x - n ln2, ln2 split in two so r keeps full precision
  const float r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const int32_t bits = (e + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

// erfc on z >= 0, Numerical Recipes' Chebyshev fit: fractional error < 1.2e-7 everywhere, so the
// tail keeps its relative accuracy (no 1 - erf cancellation).
inline float erfc_nonneg_f32(float z) {
  const float t = 1.f / (1.f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  return t * exp_f32(p - z * z);
}

inline float erf_f32(float x) {
  const float y = 1.f - erfc_nonneg_f32(x < 0 ? -x : x);
  return x < 0 ? -y : y;
}

// silu(x) = x * sigmoid(x); gelu(x) = x/2 (1 + erf(x / sqrt 2)) (exact-erf form, not tanh).
inline float silu_f32(float x) { return x / (1.f + exp_f32(-x)); }
// gelu via erfc so that the negative tail (1 + erf -> 0) keeps relative accuracy.
inline float gelu_f32(float x) {
  const float c = erfc_nonneg_f32((x < 0 ? -x : x) * 0.70710678118654752f);
  return x < 0 ? 0.5f * x * c : x - 0.5f * x * c;
}

// gelu_tanh(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) = x sigmoid(2 u) (Gemma's GeGLU).
inline float gelu_tanh_f32(float x) {
  const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
  return x / (1.f + exp_f32(-2.f * u));
}

}  // namespace tori::kernels
