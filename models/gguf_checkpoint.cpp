#include "models/gguf_checkpoint.hpp"

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
    if (what == "wq") return {L + "attn_q.weight", true, c.n_heads};
    if (what == "wk") return {L + "attn_k.weight", true, c.n_kv_heads};
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
  if (arch != "llama")
    throw InputError(path + ": general.architecture = '" + arch + "' is not supported (allowed: llama)");
  ModelConfig c;
  c.name = f.get_string("general.name", std::filesystem::path(path).stem().string());
  c.block = Block::serial;
  c.mlp = Mlp::swiglu;
  c.norm = Norm::rmsnorm;
  c.n_layers = f.get_int("llama.block_count");
  c.d_model = f.get_int("llama.embedding_length");
  c.d_ff = f.get_int("llama.feed_forward_length");
  c.n_heads = f.get_int("llama.attention.head_count");
  c.n_kv_heads = f.get_int("llama.attention.head_count_kv", c.n_heads);
  c.d_head = f.get_int("llama.attention.key_length", c.n_heads > 0 ? c.d_model / c.n_heads : 0);
  const int64_t dv = f.get_int("llama.attention.value_length", c.d_head);
  if (dv != c.d_head)
    throw InputError(path + ": llama.attention.value_length = " + std::to_string(dv) +
                     " differs from key_length = " + std::to_string(c.d_head) + " (allowed: equal)");
  c.norm_eps = f.get_float("llama.attention.layer_norm_rms_epsilon", 1e-5);
  c.rope_theta = f.get_float("llama.rope.freq_base", 10000.0);
  c.max_seq = f.get_int("llama.context_length", 2048);
  if (const GgufValue* t = f.find("tokenizer.ggml.tokens"); t && t->type == GgufType::array)
    c.vocab = int64_t(t->array_size());
  else if (f.has("token_embd.weight") && f.info("token_embd.weight").dims.size() == 2)
    c.vocab = f.info("token_embd.weight").dims[1];
  c.vocab = f.get_int("llama.vocab_size", c.vocab);
  c.tied_embeddings = !f.has("output.weight");
  validate(c, path, {{"n_layers", "llama.block_count"}, {"d_model", "llama.embedding_length"},
                     {"n_heads", "llama.attention.head_count"}, {"n_kv_heads", "llama.attention.head_count_kv"},
                     {"d_head", "llama.attention.key_length"}, {"d_ff", "llama.feed_forward_length"},
                     {"vocab", "tokenizer.ggml.tokens"}, {"max_seq", "llama.context_length"},
                     {"rope_theta", "llama.rope.freq_base"}, {"norm_eps", "llama.attention.layer_norm_rms_epsilon"}});
  // Each layer has 9 tensors: a block_count the file cannot hold is an error here, before anything
  // enumerates the layers.
  if (c.n_layers > int64_t(f.tensors().size() / 9))
    throw InputError(path + ": llama.block_count = " + std::to_string(c.n_layers) + " but the file holds only " +
                     std::to_string(f.tensors().size()) + " tensors (9 per layer)");
  return c;
}

GgufCheckpoint::GgufCheckpoint(const std::string& path)
    : file_(std::make_unique<GgufFile>(path)), config_(gguf_llama_config(*file_)) {
  // Every tensor the metadata implies must be there with the right dims.
  for (const TensorSpec& s : model_tensors(config_)) {
    const GgufLocation at = gguf_locate(config_, s.name);
    if (!file_->has(at.name))
      throw Error("GGUF file '" + path + "': missing tensor '" + at.name + "' (our '" + s.name + "')");
    // ggml dims list the innermost first: [in, out] for a matrix stored [out][in].
    std::vector<int64_t> want(s.shape.rbegin(), s.shape.rend());
    if (at.transposed) std::swap(want[0], want[1]);
    const auto& dims = file_->info(at.name).dims;
    if (dims != want)
      throw Error("GGUF file '" + path + "': tensor '" + at.name + "' has dims " + kernels::shape_str(dims) +
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
