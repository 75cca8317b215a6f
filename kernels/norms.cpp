#include "kernels/norms.hpp"

#include <cmath>

#include "kernels/cpu_features.hpp"
#include "kernels/row_checks.hpp"

namespace tori::kernels {

namespace {

TORI_SIMD_CLONES void rmsnorm_row(const float* x, const float* w, float eps, float* y, int64_t n) {
  float ss = 0;
#pragma omp simd reduction(+ : ss)
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float inv = 1.f / std::sqrt(ss / float(n) + eps);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * w[i];
}

TORI_SIMD_CLONES void layernorm_row(const float* x, const float* w, const float* b, float eps,
                                    float* y, int64_t n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += x[i];
  const float mean = s / float(n);
  float v = 0;
#pragma omp simd reduction(+ : v)
  for (int64_t i = 0; i < n; ++i) v += (x[i] - mean) * (x[i] - mean);
  const float inv = 1.f / std::sqrt(v / float(n) + eps);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * inv * w[i] + b[i];
}

TORI_SIMD_CLONES float row_stat(const float* x, int64_t n, double c, bool square) {
  double acc = 0;
  if (square) {
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < n; ++i) acc += (double(x[i]) - c) * (double(x[i]) - c);
  } else {
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < n; ++i) acc += double(x[i]) - c;
  }
  return float(acc);
}

TORI_SIMD_CLONES void normalize_row(const float* x, int64_t n, double mean, double inv, const float* w, const float* b,
                                    float* y) {
  if (b) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = float((double(x[i]) - mean) * inv * double(w[i]) + double(b[i]));
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = float((double(x[i]) - mean) * inv * double(w[i]));
  }
}

}  // namespace

// Fewer values than this normalise on the calling thread (decode: a row or a few), sparing the
// team's fork and join.
constexpr int64_t kNormSerialBelow = 1 << 14;

void rmsnorm(const Tensor& x, const Tensor& w, float eps, Tensor& y) {
  const int64_t E = x.rank() ? x.size(-1) : 0;
  const int64_t rows = detail::rows_of(x, E, "rmsnorm", "x");
  detail::rows_of(w, E, "rmsnorm", "weight");
  detail::like(x, y, "rmsnorm");
  const float* X = x.data<float>();
  const float* W = w.data<float>();
  float* Y = y.data<float>();
#pragma omp parallel for schedule(static) if (rows * E >= kNormSerialBelow)
  for (int64_t r = 0; r < rows; ++r) rmsnorm_row(X + r * E, W, eps, Y + r * E, E);
}

void layernorm(const Tensor& x, const Tensor& w, const Tensor& b, float eps, Tensor& y) {
  const int64_t E = x.rank() ? x.size(-1) : 0;
  const int64_t rows = detail::rows_of(x, E, "layernorm", "x");
  detail::rows_of(w, E, "layernorm", "weight");
  detail::rows_of(b, E, "layernorm", "bias");
  detail::like(x, y, "layernorm");
  const float* X = x.data<float>();
  const float* W = w.data<float>();
  const float* B = b.data<float>();
  float* Y = y.data<float>();
#pragma omp parallel for schedule(static) if (rows * E >= kNormSerialBelow)
  for (int64_t r = 0; r < rows; ++r) layernorm_row(X + r * E, W, B, eps, Y + r * E, E);
}

void row_stats(const float* x, int64_t M, int64_t n, const double* center, bool square, float* s) {
#pragma omp parallel for schedule(static) if (M > 1 && M * n >= kNormSerialBelow)
  for (int64_t m = 0; m < M; ++m) s[m] = row_stat(x + m * n, n, center ? center[m] : 0.0, square);
}

void normalize_rows(const float* x, int64_t M, int64_t n, const double* mean, const double* inv, const float* w,
                    const float* b, float* y) {
#pragma omp parallel for schedule(static) if (M > 1 && M * n >= kNormSerialBelow)
  for (int64_t m = 0; m < M; ++m) normalize_row(x + m * n, n, mean ? mean[m] : 0.0, inv[m], w, b, y + m * n);
}

void rmsnorm_ref(const Tensor& x, const Tensor& w, float eps, Tensor& y) {
  const int64_t E = x.rank() ? x.size(-1) : 0;
  const int64_t rows = detail::rows_of(x, E, "rmsnorm_ref", "x");
  detail::rows_of(w, E, "rmsnorm_ref", "weight");
  detail::like(x, y, "rmsnorm_ref");
  for (int64_t r = 0; r < rows; ++r) {
    const float* X = x.data<float>() + r * E;
    double ss = 0;
    for (int64_t i = 0; i < E; ++i) ss += double(X[i]) * X[i];
    const double inv = 1.0 / std::sqrt(ss / double(E) + eps);
    for (int64_t i = 0; i < E; ++i) y.data<float>()[r * E + i] = float(X[i] * inv * w.data<float>()[i]);
  }
}

void layernorm_ref(const Tensor& x, const Tensor& w, const Tensor& b, float eps, Tensor& y) {
  const int64_t E = x.rank() ? x.size(-1) : 0;
  const int64_t rows = detail::rows_of(x, E, "layernorm_ref", "x");
  detail::rows_of(w, E, "layernorm_ref", "weight");
  detail::rows_of(b, E, "layernorm_ref", "bias");
  detail::like(x, y, "layernorm_ref");
  for (int64_t r = 0; r < rows; ++r) {
    const float* X = x.data<float>() + r * E;
    double mean = 0;
    for (int64_t i = 0; i < E; ++i) mean += X[i];
    mean /= double(E);
    double var = 0;
    for (int64_t i = 0; i < E; ++i) var += (X[i] - mean) * (X[i] - mean);
    var /= double(E);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < E; ++i)
      y.data<float>()[r * E + i] = float((X[i] - mean) * inv * w.data<float>()[i] + b.data<float>()[i]);
  }
}

}  // namespace tori::kernels
