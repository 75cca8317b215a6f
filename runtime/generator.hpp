#pragma once
// Generator: drives a ShardedModel through prefill then decode and picks tokens. Every rank holds
// the same logits, so every rank picks the same token with no broadcast. Greedy for now.
#include <vector>

#include "models/reference_model.hpp"
#include "runtime/sharded_model.hpp"

namespace tori::runtime {

struct Generation {
  std::vector<models::TokenIds> generated;  // per sequence, max_new tokens
  double prefill_s = 0, decode_s = 0;       // wall time of each phase on this rank
  int64_t decode_steps = 0;
  std::vector<kernels::Tensor> logits;  // per step [B, V] (step 0 = prefill's last rows), if kept
};

Generation generate_greedy(ShardedModel& model, const std::vector<models::TokenIds>& prompts, int64_t max_new,
                           bool keep_logits = false);

// A plan that runs on this torus for this model and batch, following the paper's advice:
// weight-gathered prefill with batch-sharded attention, 2D weight-stationary decode with
// batch-sharded multiquery attention — falling back to head-sharded attention or 1D layouts when
// the batch or the shapes do not divide. Throws InputError when nothing fits.
Plan default_plan(const models::ModelConfig& c, const collectives::TorusShape& shape, int64_t batch);

}  // namespace tori::runtime
