#pragma once
// Token sampling from one sequence's logits. Greedy when temperature is 0; otherwise logits are
// divided by the temperature, cut to the top_k largest (0 = all) and to the smallest set whose
// probability reaches top_p (1 = all), renormalised, and sampled with a uniform draw that is a
// counter-based hash of (seed, sequence, step). Every rank holds the same logits and computes the
// same draw, so every rank picks the same token with no broadcast, and the same seed gives the
// same tokens whatever the rank count, torus shape or plan (the layouts change logits only by
// f32 rounding, ~1e-6 relative, so a draw would have to land that close to a boundary to differ).
#include <cstdint>
#include <string>

namespace tori::runtime {

struct SamplingOptions {
  double temperature = 0.0;  // 0: greedy
  int64_t top_k = 0;         // 0: no limit
  double top_p = 1.0;        // 1: no nucleus cut
  uint64_t seed = 0;
  bool greedy() const { return temperature <= 0.0; }
  std::string str() const;   // "greedy" or "temperature=0.8,top_k=40,top_p=0.95,seed=1"
};

// Throws InputError naming the flag for temperature < 0, top_k < 0 or top_p outside (0, 1].
void validate(const SamplingOptions& s);

int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& s, int64_t sequence, int64_t step);

}  // namespace tori::runtime
