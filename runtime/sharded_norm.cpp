#include "runtime/sharded_norm.hpp"

#include <cmath>

namespace tori::runtime {

using kernels::Tensor;

Tensor sharded_norm(collectives::Collectives& coll, collectives::Axes e_axes, const models::ModelConfig& c,
                    const Tensor& x, int64_t e_offset, const Tensor& w, const Tensor& b) {
  const int64_t M = x.size(0), El = x.size(1), E = c.d_model;
  const float* xp = x.data<float>();
  Tensor y({M, El}, kernels::DType::f32);
  float* yp = y.data<float>();
  const float* wp = w.data<float>() + e_offset;
  // [M, 1] partial sums over my E slice --all_reduce(e_axes)--> full-row statistics
  // Prefill's rows over the threads; decode's row or few on the calling thread (no fork and join).
  const bool parallel = M > 1 && M * El >= (1 << 14);
  auto row_sums = [&](auto&& term) {
    Tensor s({M, 1}, kernels::DType::f32);
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t m = 0; m < M; ++m) {
      double acc = 0;
      for (int64_t e = 0; e < El; ++e) acc += term(xp[m * El + e], m);
      s.data<float>()[m] = float(acc);
    }
    return coll.all_reduce(s, e_axes);
  };
  if (c.norm == models::Norm::rmsnorm) {
    Tensor ss = row_sums([](float v, int64_t) { return double(v) * v; });
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t m = 0; m < M; ++m) {
      const double inv = 1.0 / std::sqrt(double(ss.data<float>()[m]) / double(E) + c.norm_eps);
      for (int64_t e = 0; e < El; ++e) yp[m * El + e] = float(xp[m * El + e] * inv * wp[e]);
    }
  } else {
    // Two passes (mean, then centred variance) keep f32 partial sums accurate.
    Tensor sum = row_sums([](float v, int64_t) { return double(v); });
    std::vector<double> mean(static_cast<size_t>(M));
    for (int64_t m = 0; m < M; ++m) mean[size_t(m)] = double(sum.data<float>()[m]) / double(E);
    Tensor var = row_sums([&](float v, int64_t m) { return (v - mean[size_t(m)]) * (v - mean[size_t(m)]); });
    const float* bp = b.data<float>() + e_offset;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t m = 0; m < M; ++m) {
      const double inv = 1.0 / std::sqrt(double(var.data<float>()[m]) / double(E) + c.norm_eps);
      for (int64_t e = 0; e < El; ++e)
        yp[m * El + e] = float((xp[m * El + e] - mean[size_t(m)]) * inv * wp[e] + bp[e]);
    }
  }
  return y;
}

}  // namespace tori::runtime
