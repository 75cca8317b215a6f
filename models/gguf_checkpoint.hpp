#pragma once
// llama.cpp GGUF checkpoints of the Llama and Gemma 3 architectures (general.architecture = "llama": serial
// block, RMSNorm, SwiGLU, RoPE, grouped or multiquery attention) as a WeightSource.
//
// Metadata -> ModelConfig: llama.block_count, llama.embedding_length, llama.feed_forward_length,
// llama.attention.head_count, llama.attention.head_count_kv (default: head_count),
// llama.attention.key_length (default: embedding_length / head_count),
// llama.attention.layer_norm_rms_epsilon, llama.rope.freq_base (default 10000),
// llama.context_length (default 2048); the vocabulary is the length of tokenizer.ggml.tokens, else
// token_embd.weight's outer dim. Embeddings are tied when output.weight is absent.
//
// Tensors (token_embd, output_norm, output, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output,
// ffn_norm, ffn_gate, ffn_up, ffn_down}.weight) are translated to our names and [in, out]
// orientation box by box, so each rank decodes only the blocks of its shard from the memory map.
//
// Gemma 3 (general.architecture = "gemma3"): the same keys under gemma3., plus GeGLU, query/key
// norms (blk.N.attn_q_norm / attn_k_norm), post-attention and post-FFN norms (post_attention_norm,
// post_ffw_norm), sqrt(E) embedding scale, 1/sqrt(key_length) query scale, local/global layers
// (attention.sliding_window_pattern, default 6; rope.freq_base_swa, default 10000;
// attention.sliding_window): see docs/checkpoints.md. Its norm weights are stored as 1 + w by the
// converter, so they are plain RMSNorm weights here. The local layers attend within the window
// (models/config.hpp layer_pattern); max_seq = context_length. Its Q/K rows are not permuted.
//
// RoPE: llama.cpp's convert_hf_to_gguf.py permutes the rows of Q and K for its interleaved RoPE
// (within each head, rows (j * D/2 + i) move to (2 i + j)); we, like Hugging Face, rotate halves,
// so the reader undoes that permutation.
#include <memory>
#include <string>

#include "models/gguf_file.hpp"
#include "models/weight_source.hpp"

namespace tori::models {

// Where one of our tensors lives in a llama GGUF.
struct GgufLocation {
  std::string name;
  bool transposed = false;  // stored [out][in] (ggml dims [in, out]); ours is [in, out]
  int64_t permute_heads = 0;  // > 0: Q/K rows permuted for interleaved RoPE, in this many heads
};
GgufLocation gguf_locate(const ModelConfig& c, const std::string& ours);
// The Q/K row permutation of convert_hf_to_gguf.py within heads of d_head rows: the HF row held in
// GGUF row `gguf_row`, and the GGUF row holding HF row `hf_row` (inverse of each other).
int64_t gguf_qk_hf_row(int64_t gguf_row, int64_t d_head);
int64_t gguf_qk_gguf_row(int64_t hf_row, int64_t d_head);

// The ModelConfig a llama GGUF describes; InputError naming file, key and allowed values.
ModelConfig gguf_llama_config(const GgufFile& f);

class GgufCheckpoint final : public WeightSource {
 public:
  // Throws tori::Error for a malformed file, InputError for an unsupported architecture, and
  // tori::Error when a tensor is missing or its dims do not match the metadata.
  explicit GgufCheckpoint(const std::string& path);
  const ModelConfig& config() const override { return config_; }
  kernels::Tensor read(const std::string& name, const Box& box) const override;
  const GgufFile& file() const { return *file_; }

 private:
  std::unique_ptr<GgufFile> file_;
  ModelConfig config_;
};

// True if `path` names a GGUF file (ends in .gguf).
bool is_gguf_path(const std::string& path);

}  // namespace tori::models
