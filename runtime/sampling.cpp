#include "runtime/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <vector>

#include "kernels/error.hpp"
#include "kernels/counter_hash.hpp"
#include "models/reference_model.hpp"

namespace tori::runtime {

std::string SamplingOptions::str() const {
  if (greedy()) return "greedy";
  std::ostringstream o;
  o << "temperature=" << temperature << ",top_k=" << top_k << ",top_p=" << top_p << ",seed=" << seed;
  return o.str();
}

void validate(const SamplingOptions& s) {
  if (!(s.temperature >= 0) || !std::isfinite(s.temperature))
    throw InputError("--temperature: " + std::to_string(s.temperature) + " (allowed: 0 for greedy, or > 0)");
  if (s.top_k < 0) throw InputError("--top-k: " + std::to_string(s.top_k) + " (allowed: 0 for no limit, or >= 1)");
  if (!(s.top_p > 0 && s.top_p <= 1)) throw InputError("--top-p: " + std::to_string(s.top_p) + " (allowed: (0, 1])");
}

int32_t sample_token(const float* logits, int64_t V, const SamplingOptions& s, int64_t sequence, int64_t step) {
  if (s.greedy()) return models::argmax(logits, V);
  // Candidates by descending logit (ties: lower id first), cut to top_k.
  std::vector<int32_t> ids(static_cast<size_t>(V));
  std::iota(ids.begin(), ids.end(), 0);
  const int64_t k = s.top_k > 0 ? std::min<int64_t>(s.top_k, V) : V;
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), by_logit);
  ids.resize(static_cast<size_t>(k));
  // Softmax of logit / temperature over the candidates, in f64.
  std::vector<double> p(ids.size());
  const double mx = logits[ids[0]];
  double sum = 0;
  for (size_t i = 0; i < ids.size(); ++i) sum += p[i] = std::exp((double(logits[ids[i]]) - mx) / s.temperature);
  // Nucleus: the smallest prefix whose probability reaches top_p.
  size_t keep = ids.size();
  if (s.top_p < 1) {
    double acc = 0;
    for (size_t i = 0; i < ids.size(); ++i)
      if ((acc += p[i] / sum) >= s.top_p) {
        keep = i + 1;
        break;
      }
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += p[i];
  // u in [0, 1) from (seed, sequence, step).
  const uint64_t bits = kernels::splitmix64(kernels::splitmix64(kernels::splitmix64(s.seed) ^ uint64_t(sequence)) + uint64_t(step));
  const double u = double(bits >> 11) * (1.0 / 9007199254740992.0) * total;
  double acc = 0;
  for (size_t i = 0; i < keep; ++i)
    if ((acc += p[i]) > u) return ids[i];
  return ids[keep - 1];
}

}  // namespace tori::runtime
