#pragma once
// Generator: drives a ShardedModel through prefill then decode and picks tokens (sampling.hpp).
// Every rank holds the same logits, so every rank picks the same token with no broadcast. A
// sequence that emits a stop token (or whose stop_after says so) is finished: its later tokens are
// not reported (it keeps its slot in the batch); decoding ends when every sequence is finished or
// has max_new tokens.
#include <functional>
#include <vector>

#include "models/reference_model.hpp"
#include "runtime/sampling.hpp"
#include "runtime/sharded_model.hpp"

namespace tori::runtime {

struct GenerateOptions {
  int64_t max_new = 16;
  SamplingOptions sampling;
  std::vector<int32_t> stop_tokens;
  // Called with each live sequence's new token (after the stop-token check); true finishes that
  // sequence (e.g. its text now holds a stop string). It sees the same tokens on every rank, so
  // every rank decides the same.
  std::function<bool(int64_t seq, int32_t token)> stop_after;
  bool keep_logits = false;
  // Called after every step with the tokens each sequence got this step (-1: finished earlier).
  std::function<void(int64_t step, const models::TokenIds& tokens)> on_step;
};

struct Generation {
  std::vector<models::TokenIds> generated;  // per sequence, up to max_new tokens (stop token included)
  double prefill_s = 0, decode_s = 0;       // wall time of each phase on this rank
  int64_t decode_steps = 0;
  std::vector<kernels::Tensor> logits;  // per step [B, V] (step 0 = prefill's last rows), if kept
};

// KV positions per sequence a generation of up to max_new tokens per prompt reaches: the longest
// prompt + max_new - 1 (the last token is sampled, never fed back). The commands size the model's
// caches to it (models/context_window.hpp); generate refuses a prompt that needs more than max_seq.
int64_t positions_needed(const std::vector<models::TokenIds>& prompts, int64_t max_new);

Generation generate(ShardedModel& model, const std::vector<models::TokenIds>& prompts, const GenerateOptions& opt);
// The same loop on the single-process reference (what --check-reference compares against).
Generation generate_reference(models::ReferenceModel& model, const std::vector<models::TokenIds>& prompts,
                              const GenerateOptions& opt);

// A plan that runs on this torus for this model and batch, following the paper's advice:
// weight-gathered prefill with batch-sharded attention, 2D weight-stationary decode with
// batch-sharded multiquery attention — falling back to head-sharded attention or 1D layouts when
// the batch or the shapes do not divide. Throws InputError when nothing fits.
Plan default_plan(const models::ModelConfig& c, const collectives::TorusShape& shape, int64_t batch);

}  // namespace tori::runtime
