#include "kernels/softmax.hpp"

#include <cmath>
#include <limits>

#include "kernels/cpu_features.hpp"
#include "kernels/row_checks.hpp"
#include "kernels/vec_math.hpp"

namespace tori::kernels {

namespace {

TORI_SIMD_CLONES void softmax_row(const float* x, float* y, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
  for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  if (mx == -std::numeric_limits<float>::infinity()) {  // fully masked row
    for (int64_t i = 0; i < n; ++i) y[i] = 0.f;
    return;
  }
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    const float e = x[i] == -std::numeric_limits<float>::infinity() ? 0.f : exp_f32(x[i] - mx);
    y[i] = e;
    sum += e;
  }
  const float inv = 1.f / sum;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] *= inv;
}

}  // namespace

void softmax(const Tensor& x, Tensor& out) {
  const int64_t rows = detail::rows_of(x, -1, "softmax", "x");
  detail::like(x, out, "softmax");
  const int64_t n = x.rank() ? x.size(-1) : 0;
  const float* X = x.data<float>();
  float* Y = out.data<float>();
#pragma omp parallel for schedule(static) if (rows * n >= (1 << 14))  // small: no fork and join
  for (int64_t r = 0; r < rows; ++r) softmax_row(X + r * n, Y + r * n, n);
}

void softmax_ref(const Tensor& x, Tensor& out) {
  const int64_t rows = detail::rows_of(x, -1, "softmax_ref", "x");
  detail::like(x, out, "softmax_ref");
  const int64_t n = x.rank() ? x.size(-1) : 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* X = x.data<float>() + r * n;
    float* Y = out.data<float>() + r * n;
    double mx = -INFINITY;
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, double(X[i]));
    if (mx == -INFINITY) {
      for (int64_t i = 0; i < n; ++i) Y[i] = 0.f;
      continue;
    }
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += std::exp(double(X[i]) - mx);
    for (int64_t i = 0; i < n; ++i) Y[i] = float(std::exp(double(X[i]) - mx) / sum);
  }
}

}  // namespace tori::kernels
