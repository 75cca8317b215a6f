#include "models/gguf_checkpoint.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "kernels/embedding.hpp"
#include "kernels/error.hpp"
#include "models/weight_names.hpp"

namespace tori::models {

GgufLocation gguf_locate(const ModelConfig& c, const std::string& ours) {
  if (ours == "embed") return {"token_embd.weight"};
  if (ours == "unembed") return {"output.weight", true};
  if (ours == "final_norm.weight") return {"output_norm.weight"};
  if (ours.starts_with("layers.")) {
    const size_t dot = ours.find('.', 7);
    const std::string L = "blk." + ours.substr(7, dot - 7) + ".", what = ours.substr(dot + 1);
    if (what == "attn_norm.weight") return {L + "attn_norm.weight"};
    if (what == "ffn_norm.weight") return {L + "ffn_norm.weight"};
    if (what == "post_attn_norm.weight") return {L + "post_attention_norm.weight"};
    if (what == "post_ffn_norm.weight") return {L + "post_ffw_norm.weight"};
    if (what == "q_norm.weight") return {L + "attn_q_norm.weight"};
    if (what == "k_norm.weight") return {L + "attn_k_norm.weight"};
    // Gemma's converter keeps Hugging Face's row order (its RoPE is rotate-half, "NEOX" in ggml).
    const bool permuted = !c.qk_norm;
    if (what == "wq") return {L + "attn_q.weight", true, permuted ? c.n_heads : 0};
    if (what == "wk") return {L + "attn_k.weight", true, permuted ? c.n_kv_heads : 0};
    if (what == "wv") return {L + "attn_v.weight", true};
    if (what == "wo") return {L + "attn_output.weight", true};
    if (what == "w_in") return {L + "ffn_up.weight", true};
    if (what == "w_gate") return {L + "ffn_gate.weight", true};
    if (what == "w_out") return {L + "ffn_down.weight", true};
  }
  throw Error("no GGUF tensor for '" + ours + "'");
}

// convert_hf_to_gguf.py: w.reshape(n_head, 2, D/2, in).swapaxes(1, 2).reshape(w.shape), so GGUF
// row h*D + 2i + j holds HF row h*D + j*D/2 + i.
int64_t gguf_qk_hf_row(int64_t g, int64_t D) {
  const int64_t h = g / D, o = g % D;
  return h * D + (o % 2) * (D / 2) + o / 2;
}
int64_t gguf_qk_gguf_row(int64_t r, int64_t D) {
  const int64_t h = r / D, o = r % D;
  return h * D + 2 * (o % (D / 2)) + o / (D / 2);
}

ModelConfig gguf_llama_config(const GgufFile& f) {
  const std::string& path = f.path();
  const std::string arch = f.get_string("general.architecture", "");
  if (arch != "llama" && arch != "gemma3")
    throw InputError(path + ": general.architecture = '" + arch + "' is not supported (allowed: llama, gemma3)");
  const bool gemma = arch == "gemma3";
  const std::string a = arch + ".";
  ModelConfig c;
  c.name = f.get_string("general.name", std::filesystem::path(path).stem().string());
  c.block = Block::serial;
  c.mlp = gemma ? Mlp::geglu : Mlp::swiglu;
  c.norm = Norm::rmsnorm;
  c.n_layers = f.get_int(a + "block_count");
  c.d_model = f.get_int(a + "embedding_length");
  c.d_ff = f.get_int(a + "feed_forward_length");
  c.n_heads = f.get_int(a + "attention.head_count");
  c.n_kv_heads = f.get_int(a + "attention.head_count_kv", c.n_heads);
  c.d_head = f.get_int(a + "attention.key_length", c.n_heads > 0 ? c.d_model / c.n_heads : 0);
  const int64_t dv = f.get_int(a + "attention.value_length", c.d_head);
  if (dv != c.d_head)
    throw InputError(path + ": " + a + "attention.value_length = " + std::to_string(dv) +
                     " differs from key_length = " + std::to_string(c.d_head) + " (allowed: equal)");
  c.norm_eps = f.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5);
  c.rope_theta = f.get_float(a + "rope.freq_base", 10000.0);
  const int64_t context = f.get_int(a + "context_length", 2048);
  c.max_seq = context;
  if (gemma) {
    // Gemma 3 (llama.cpp's gemma3 graph): GeGLU, query/key RMSNorm, post-attention and post-FFN
    // norms, embeddings times sqrt(E), softmax scale 1/sqrt(key_length) (query_pre_attn_scalar =
    // head_dim in the released sizes up to 12B; llama.cpp uses the same), five local layers (RoPE
    // base 10000, sliding window) to one global (rope.freq_base). The norm weights are stored as
    // 1 + w (the converter adds Gemma's 1), so a plain RMSNorm applies them.
    c.qk_norm = c.post_norms = c.scale_embeddings = true;
    c.query_scale = 1.0 / std::sqrt(double(c.d_head));
    c.global_every = f.get_int(a + "attention.sliding_window_pattern", 6);
    c.rope_theta_local = f.get_float(a + "rope.freq_base_swa", 10000.0);
    c.sliding_window = f.get_int(a + "attention.sliding_window", 512);
  }
  if (const GgufValue* t = f.find("tokenizer.ggml.tokens"); t && t->type == GgufType::array)
    c.vocab = int64_t(t->array_size());
  else if (f.has("token_embd.weight") && f.info("token_embd.weight").dims.size() == 2)
    c.vocab = f.info("token_embd.weight").dims[1];
  c.vocab = f.get_int(a + "vocab_size", c.vocab);
  c.tied_embeddings = !f.has("output.weight");
  validate(c, path, {{"n_layers", a + "block_count"}, {"d_model", a + "embedding_length"},
                     {"n_heads", a + "attention.head_count"}, {"n_kv_heads", a + "attention.head_count_kv"},
                     {"d_head", a + "attention.key_length"}, {"d_ff", a + "feed_forward_length"},
                     {"vocab", "tokenizer.ggml.tokens"}, {"max_seq", a + "context_length"},
                     {"rope_theta", a + "rope.freq_base"}, {"norm_eps", a + "attention.layer_norm_rms_epsilon"},
                     {"global_every", a + "attention.sliding_window_pattern"},
                     {"rope_theta_local", a + "rope.freq_base_swa"},
                     {"sliding_window", a + "attention.sliding_window"}});
  // Each layer has 9 tensors (Gemma 3: 13): a block_count the file cannot hold is an error here,
  // before anything enumerates the layers.
  const int64_t per_layer = gemma ? 13 : 9;
  if (c.n_layers > int64_t(f.tensors().size()) / per_layer)
    throw InputError(path + ": " + a + "block_count = " + std::to_string(c.n_layers) + " but the file holds only " +
                     std::to_string(f.tensors().size()) + " tensors (" + std::to_string(per_layer) + " per layer)");
  return c;
}

GgufCheckpoint::GgufCheckpoint(const std::string& path)
    : file_(std::make_unique<GgufFile>(path)), config_(gguf_llama_config(*file_)) {
  // Every tensor the metadata implies must be there with the right dims.
  for (const TensorSpec& s : model_tensors(config_)) {
    const GgufLocation at = gguf_locate(config_, s.name);
    if (!file_->has(at.name))
      throw InputError("GGUF file '" + path + "': missing tensor '" + at.name + "' (our '" + s.name + "')");
    // ggml dims list the innermost first: [in, out] for a matrix stored [out][in].
    std::vector<int64_t> want(s.shape.rbegin(), s.shape.rend());
    if (at.transposed) std::swap(want[0], want[1]);
    const auto& dims = file_->info(at.name).dims;
    if (dims != want)
      throw InputError("GGUF file '" + path + "': tensor '" + at.name + "' has dims " + kernels::shape_str(dims) +
                  " but the metadata implies " + kernels::shape_str(want) + " (ggml order, innermost first)");
  }
}

kernels::Tensor GgufCheckpoint::read(const std::string& name, const Box& box) const {
  TensorSpec spec = find_tensor(config_, name);
  if (box.start.size() != spec.shape.size() || box.size.size() != spec.shape.size())
    throw Error("shard of '" + name + "' has the wrong rank for " + kernels::shape_str(spec.shape));
  for (size_t d = 0; d < spec.shape.size(); ++d)
    if (box.start[d] < 0 || box.size[d] < 0 || box.start[d] + box.size[d] > spec.shape[d])
      throw Error("shard of '" + name + "' outside " + kernels::shape_str(spec.shape));
  const GgufLocation at = gguf_locate(config_, name);
  if (spec.shape.size() == 1) return file_->read_rows(at.name, 0, 1, box.start[0], box.size[0]).reshape({box.size[0]});
  if (!at.transposed) return file_->read_rows(at.name, box.start[0], box.size[0], box.start[1], box.size[1]);
  // Ours [in, out] rows r, cols c  =  stored [out][in] rows c (Q/K: permuted), cols r, transposed.
  std::vector<int64_t> rows(size_t(box.size[1]));
  for (int64_t k = 0; k < box.size[1]; ++k) {
    const int64_t r = box.start[1] + k;
    rows[size_t(k)] = at.permute_heads > 0 ? gguf_qk_gguf_row(r, config_.d_head) : r;
  }
  return kernels::transpose2d(file_->read_rows(at.name, rows, box.start[0], box.size[0]));
}

bool is_gguf_path(const std::string& path) { return path.size() > 5 && path.ends_with(".gguf"); }

}  // namespace tori::models
