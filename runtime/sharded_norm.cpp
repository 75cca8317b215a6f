#include "runtime/sharded_norm.hpp"

#include <cmath>
#include <vector>

#include "kernels/norms.hpp"

namespace tori::runtime {

using kernels::Tensor;

Tensor sharded_norm(collectives::Collectives& coll, collectives::Axes e_axes, const models::ModelConfig& c,
                    const Tensor& x, int64_t e_offset, const Tensor& w, const Tensor& b) {
  const int64_t M = x.size(0), El = x.size(1), E = c.d_model;
  const float* xp = x.data<float>();
  Tensor y = Tensor::empty({M, El}, kernels::DType::f32);
  const float* wp = w.data<float>() + e_offset;
  // [M, 1] partial sums over my E slice --all_reduce(e_axes)--> full-row statistics (f64 per row;
  // kernels/norms.hpp: prefill's rows over the threads, decode's on the calling thread).
  auto row_sums = [&](const double* center, bool square) {
    Tensor s = Tensor::empty({M, 1}, kernels::DType::f32);
    kernels::row_stats(xp, M, El, center, square, s.data<float>());
    return coll.all_reduce(s, e_axes);
  };
  std::vector<double> mean, inv(static_cast<size_t>(M));
  if (c.norm == models::Norm::rmsnorm) {
    const Tensor ss = row_sums(nullptr, true);
    for (int64_t m = 0; m < M; ++m) inv[size_t(m)] = 1.0 / std::sqrt(double(ss.data<float>()[m]) / double(E) + c.norm_eps);
  } else {
    // Two passes (mean, then centred variance) keep f32 partial sums accurate.
    const Tensor sum = row_sums(nullptr, false);
    mean.resize(static_cast<size_t>(M));
    for (int64_t m = 0; m < M; ++m) mean[size_t(m)] = double(sum.data<float>()[m]) / double(E);
    const Tensor var = row_sums(mean.data(), true);
    for (int64_t m = 0; m < M; ++m)
      inv[size_t(m)] = 1.0 / std::sqrt(double(var.data<float>()[m]) / double(E) + c.norm_eps);
  }
  kernels::normalize_rows(xp, M, El, mean.empty() ? nullptr : mean.data(), inv.data(), wp,
                          c.norm == models::Norm::rmsnorm ? nullptr : b.data<float>() + e_offset, y.data<float>());
  return y;
}

}  // namespace tori::runtime
