#pragma once
// Perplexity over a text, as llama.cpp's llama-perplexity defines it: the whole text is tokenised
// once and cut into consecutive, non-overlapping windows of ctx tokens (a remainder shorter than
// a window is left out); each window runs as one sequence from an empty KV cache, and only its
// second half is scored: the tokens at positions first + 1 .. ctx - 1 (first = ctx / 2), each
// given every token before it in the window, so every scored token has at least ctx / 2 tokens of
// context. With a model that starts prompts with BOS, each window's first token is replaced by BOS.
//   NLL = -mean log p(token),  PPL = exp(NLL),
//   standard error of NLL = sqrt(sample variance of -log p / N), of PPL = PPL · that (delta method).
// The windows and the statistics live here; the log-probabilities come from the reference model
// (reference_log_probs, below) or the sharded one (runtime::ShardedModel::prefill_log_probs).
#include <cstdint>
#include <vector>

#include "models/reference_model.hpp"

namespace tori::models {

// The position whose logits score the first token: ctx / 2 (it predicts position ctx / 2 + 1).
inline int64_t first_scored(int64_t ctx) { return ctx / 2; }
// Tokens scored per window: positions first_scored + 1 .. ctx - 1.
inline int64_t scored_per_window(int64_t ctx) { return ctx - 1 - first_scored(ctx); }

// The windows of `tokens`: floor(n / ctx) of them, window i = tokens[i·ctx, (i + 1)·ctx), its first
// token replaced by `bos` when bos >= 0.
std::vector<TokenIds> perplexity_windows(const TokenIds& tokens, int64_t ctx, int32_t bos);

// log Σ exp(x[j]) over n values in f64 (-inf when n = 0).
double log_sum_exp(const float* x, int64_t n);

// The reference model's log p(window[l + 1] | window[0..l]) for l in [first, L - 1) of each
// window, `batch` windows at a time (f64 log-softmax of its f32 logits).
std::vector<std::vector<double>> reference_log_probs(ReferenceModel& model, const std::vector<TokenIds>& windows,
                                                     int64_t first, int64_t batch);

struct Perplexity {
  int64_t tokens = 0;     // scored
  double nll = 0;         // mean negative log-likelihood (nats per token)
  double nll_stderr = 0;  // its standard error
  double ppl = 0;         // exp(nll)
  double ppl_stderr = 0;  // ppl · nll_stderr
};

// The statistics of every scored token's log-probability (at least two).
Perplexity perplexity_of(const std::vector<std::vector<double>>& log_probs);

}  // namespace tori::models
