#pragma once
// Helpers shared by the kernel tests: deterministic random tensors and error measures.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/tensor.hpp"

namespace tori::kernels::testing {

// Uniform in [lo, hi), reproducible from `seed` (splitmix64).
inline Tensor random_tensor(Shape shape, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Tensor t = Tensor::empty(std::move(shape), DType::f32);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < t.numel(); ++i) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    t.data<float>()[i] = lo + (hi - lo) * float(double(z >> 11) * 0x1.0p-53);
  }
  return t;
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(double(a.get(i)) - b.get(i)));
  return m;
}

// Same values rounded through bf16 (what a bf16 operand carries).
inline Tensor bf16_rounded(const Tensor& t) { return t.to(DType::bf16).to(DType::f32); }

}  // namespace tori::kernels::testing
