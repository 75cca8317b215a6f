#pragma once
// The log-probability of one given token per row, from logits that stay vocabulary-sharded.
// Each rank holds columns [v0, v0 + V_n) of the (padded) vocabulary of every row's logits; instead
// of all-gathering the [R, V] logits it reduces its block to two numbers per row, its log-sum-exp
// and the target's logit (-inf when the target is not in its block), and all-gathers those:
//   part [R, V_n] -> (lse_g, logit_g[target]) [R, 2] --all_gather(axes)--> [R, 2·G]
//   log p(target) = max_g logit_g[target] - log Σ_g exp(lse_g)
// (2·G floats per row cross the torus instead of V). Columns >= V (the vocabulary's padding,
// padding.hpp) are not part of the distribution. f32 logits, f64 reductions.
#include <cstdint>
#include <vector>

#include "collectives/collectives.hpp"
#include "kernels/tensor.hpp"

namespace tori::runtime {

// part: [R, V_n] f32, this rank's vocabulary block starting at column v0; V: the real vocabulary;
// targets: R token ids in [0, V). Collective over `axes` (the ranks that hold the other blocks).
std::vector<double> token_log_probs(collectives::Collectives& coll, collectives::Axes axes, const kernels::Tensor& part,
                                    int64_t v0, int64_t V, const std::vector<int32_t>& targets);

}  // namespace tori::runtime
