#include "models/perplexity.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/error.hpp"

namespace tori::models {

std::vector<TokenIds> perplexity_windows(const TokenIds& tokens, int64_t ctx, int32_t bos) {
  if (ctx < 2) throw Error("perplexity_windows: ctx " + std::to_string(ctx) + " < 2");
  std::vector<TokenIds> out;
  for (size_t s = 0; s + size_t(ctx) <= tokens.size(); s += size_t(ctx)) {
    out.emplace_back(tokens.begin() + std::ptrdiff_t(s), tokens.begin() + std::ptrdiff_t(s) + ctx);
    if (bos >= 0) out.back()[0] = bos;
  }
  return out;
}

double log_sum_exp(const float* x, int64_t n) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < n; ++j) m = std::max(m, double(x[j]));
  if (std::isinf(m)) return m;
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += std::exp(double(x[j]) - m);
  return m + std::log(s);
}

std::vector<std::vector<double>> reference_log_probs(ReferenceModel& model, const std::vector<TokenIds>& windows,
                                                     int64_t first, int64_t batch) {
  const int64_t V = model.config().vocab;
  std::vector<std::vector<double>> out;
  for (size_t w0 = 0; w0 < windows.size(); w0 += size_t(batch)) {
    const std::vector<TokenIds> part(windows.begin() + std::ptrdiff_t(w0),
                                     windows.begin() + std::ptrdiff_t(std::min(windows.size(), w0 + size_t(batch))));
    model.reset(int64_t(part.size()));
    const std::vector<kernels::Tensor> logits = model.prefill(part);  // per window [L, V]
    for (size_t b = 0; b < part.size(); ++b) {
      std::vector<double> lp;
      for (int64_t l = first; l + 1 < int64_t(part[b].size()); ++l) {
        const float* row = logits[b].data<float>() + l * V;
        lp.push_back(double(row[part[b][size_t(l + 1)]]) - log_sum_exp(row, V));
      }
      out.push_back(std::move(lp));
    }
  }
  return out;
}

Perplexity perplexity_of(const std::vector<std::vector<double>>& log_probs) {
  Perplexity p;
  double sum = 0, sum2 = 0;
  for (const auto& w : log_probs)
    for (double lp : w) sum -= lp, sum2 += lp * lp, ++p.tokens;
  if (p.tokens < 2) throw Error("perplexity_of: " + std::to_string(p.tokens) + " scored token(s), need at least 2");
  const double n = double(p.tokens);
  p.nll = sum / n;
  const double variance = std::max(0.0, (sum2 - n * p.nll * p.nll) / (n - 1));  // sample variance of -log p
  p.nll_stderr = std::sqrt(variance / n);
  p.ppl = std::exp(p.nll);
  p.ppl_stderr = p.ppl * p.nll_stderr;
  return p;
}

}  // namespace tori::models
