#pragma once
// Reference: the single-process transformer every sharded layout is checked against. Written for
// obviousness, not speed: plain loops, f32 storage, f64 accumulation in every dot product and
// reduction, no oneDNN, no MPI. Covers embedding, RMSNorm/LayerNorm, RoPE (rotate-half, as Hugging
// Face Llama/Falcon), multiquery/grouped/multihead attention with a KV cache and causal mask (a local layer's
// sliding window and sink tokens on top, models/config.hpp),
// parallel and serial blocks, SwiGLU, GELU and GeGLU, final norm and logits; Gemma 3's query/key
// norms, post-attention/post-FFN norms, sqrt(E) embedding scale, query scale and local/global RoPE
// bases (models/config.hpp).
#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/tensor.hpp"
#include "models/config.hpp"
#include "models/weight_source.hpp"

namespace tori::models {

using TokenIds = std::vector<int32_t>;

// The inputs of a layer's matrices, one E- or F-vector per position, as an InputHook sees them:
//   attention_in   the attention norm's output: the input of wq, wk, wv          [E]
//   attention_out  the attention's output (heads concatenated): the input of wo  [H·D]
//   ffn_in         the FFN norm's output (parallel blocks: attention_in's value): w_in, w_gate [E]
//   ffn_hidden     the gated FFN hidden (act(x·w_gate) * x·w_in, or gelu(x·w_in)): w_out [F]
enum class MatmulInput { attention_in, attention_out, ffn_in, ffn_hidden };
// The site whose values multiply layer matrix `kind` (wq, wk, wv, wo, w_in, w_gate, w_out).
MatmulInput matmul_input_of(const std::string& kind);
// Called with each position's input of each site, in order (layer by layer, position by position
// within a forward call); the vector is only valid during the call.
using InputHook = std::function<void(int64_t layer, MatmulInput site, const std::vector<float>& x)>;

class ReferenceModel {
 public:
  // Reads every tensor in full from `weights`.
  explicit ReferenceModel(const WeightSource& weights);
  const ModelConfig& config() const { return config_; }

  // Starts `batch` sequences with empty KV caches.
  void reset(int64_t batch);
  int64_t batch() const { return static_cast<int64_t>(seqs_.size()); }
  // Tokens already in sequence b's KV cache.
  int64_t length(int64_t b) const { return seqs_.at(static_cast<size_t>(b)).length; }

  // Appends prompts[b] (lengths may differ, each >= 1) to sequence b; returns logits for every new
  // position, one [L_b, V] tensor per sequence.
  std::vector<kernels::Tensor> prefill(const std::vector<TokenIds>& prompts);
  // Appends one token per sequence; returns logits [B, V].
  kernels::Tensor decode(const TokenIds& tokens);

  // Observes the matrices' inputs (calibration: models/tsvd_calibration.hpp) without changing
  // what is computed; an empty hook (the default) costs one branch per site.
  void set_input_hook(InputHook hook) { hook_ = std::move(hook); }

 private:
  struct Layer {
    std::vector<float> attn_norm_w, attn_norm_b, ffn_norm_w, ffn_norm_b;
    std::vector<float> post_attn_norm_w, post_attn_norm_b, post_ffn_norm_w, post_ffn_norm_b;  // post_norms
    std::vector<float> q_norm_w, k_norm_w;                                                    // qk_norm
    std::vector<float> wq, wk, wv, wo, w_in, w_gate, w_out;
  };
  struct Sequence {
    int64_t length = 0;
    std::vector<std::vector<float>> k, v;  // per layer: [max_seq, K, D]
  };
  // Runs `tokens` through the model for sequence b; returns logits [L, V].
  kernels::Tensor forward(int64_t b, const TokenIds& tokens);

  ModelConfig config_;
  std::vector<float> embed_, unembed_, final_norm_w_, final_norm_b_;
  std::vector<float> tied_unembed_;  // tied embeddings rounded for the logits (empty: embed_ itself)
  std::vector<Layer> layers_;
  std::vector<Sequence> seqs_;
  InputHook hook_;
};

// Index of the largest logit (lowest index on ties): greedy sampling.
int32_t argmax(const float* logits, int64_t n);

struct GreedyResult {
  std::vector<TokenIds> generated;              // per sequence, max_new tokens
  std::vector<kernels::Tensor> prefill_logits;  // per sequence [L_b, V]
  std::vector<kernels::Tensor> decode_logits;   // per decode step [B, V] (max_new - 1 steps)
  double prefill_s = 0, decode_s = 0;
};

// Prefill all prompts, then greedily decode until each sequence has max_new new tokens.
GreedyResult greedy_generate(ReferenceModel& model, const std::vector<TokenIds>& prompts,
                             int64_t max_new);

}  // namespace tori::models
