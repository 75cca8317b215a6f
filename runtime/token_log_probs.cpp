#include "runtime/token_log_probs.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/error.hpp"
#include "models/perplexity.hpp"

namespace tori::runtime {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

void check_targets(const std::vector<int32_t>& targets, int64_t R, int64_t V) {
  if (int64_t(targets.size()) != R)
    throw Error("token_log_probs: " + std::to_string(targets.size()) + " targets for " + std::to_string(R) + " rows");
  for (int32_t t : targets)
    if (t < 0 || t >= V) throw Error("token_log_probs: target " + std::to_string(t) + " outside [0, " + std::to_string(V) + ")");
}

}  // namespace

std::vector<double> token_log_probs(collectives::Collectives& coll, collectives::Axes axes, const kernels::Tensor& part,
                                    int64_t v0, int64_t V, const std::vector<int32_t>& targets) {
  const int64_t R = part.size(0), Vn = part.size(1);
  check_targets(targets, R, V);
  const int64_t real = std::clamp<int64_t>(V - v0, 0, Vn);  // this block's columns inside the vocabulary
  kernels::Tensor mine({R, 2}, kernels::DType::f32);
  for (int64_t r = 0; r < R; ++r) {
    const float* row = part.data<float>() + r * Vn;
    const int64_t t = targets[size_t(r)] - v0;
    mine.set(r * 2, float(models::log_sum_exp(row, real)));
    mine.set(r * 2 + 1, t >= 0 && t < real ? row[t] : -std::numeric_limits<float>::infinity());
  }
  const kernels::Tensor all = coll.all_gather(mine, -1, axes);  // [R, 2·G]
  const int64_t G = all.size(1) / 2;
  std::vector<double> out(size_t(R), 0.0);
  for (int64_t r = 0; r < R; ++r) {
    const float* x = all.data<float>() + r * 2 * G;
    double m = kNegInf, target = kNegInf;
    for (int64_t g = 0; g < G; ++g) m = std::max(m, double(x[2 * g])), target = std::max(target, double(x[2 * g + 1]));
    double s = 0;
    for (int64_t g = 0; g < G; ++g) s += std::exp(double(x[2 * g]) - m);
    out[size_t(r)] = target - (m + std::log(s));
  }
  return out;
}

}  // namespace tori::runtime
