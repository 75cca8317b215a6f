#include "models/hf_checkpoint.hpp"

#include "models/attention_override.hpp"
#include "models/tsvd_checkpoint.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <type_traits>
#include <nlohmann/json.hpp>

#include "kernels/bf16.hpp"
#include "kernels/embedding.hpp"
#include "kernels/error.hpp"
#include "models/json_file.hpp"
#include "models/f16.hpp"
#include "models/gguf_checkpoint.hpp"
#include "models/safetensors_writer.hpp"
#include "models/synthetic_weights.hpp"
#include "models/weight_names.hpp"

namespace tori::models {

namespace fs = std::filesystem;
using kernels::Tensor;

namespace {

// Where one of our tensors lives in the checkpoint: an HF tensor, stored [out, in] (transposed
// relative to ours) or as is, possibly a row range of a fused tensor.
struct HfLocation {
  std::string name;
  bool transposed = false;
  int64_t row_offset = 0;  // rows of the HF tensor before ours (fused query_key_value)
};

HfLocation locate(const ModelConfig& c, HfFamily f, const std::string& ours) {
  const bool llama = f == HfFamily::llama;
  if (ours == "embed") return {llama ? "model.embed_tokens.weight" : "transformer.word_embeddings.weight"};
  if (ours == "unembed") return {"lm_head.weight", true};
  if (ours == "final_norm.weight") return {llama ? "model.norm.weight" : "transformer.ln_f.weight"};
  if (ours == "final_norm.bias") return {"transformer.ln_f.bias"};
  // layers.N.what
  const size_t dot = ours.find('.', 7);
  const std::string layer = ours.substr(7, dot - 7), what = ours.substr(dot + 1);
  const std::string L = llama ? "model.layers." + layer + "." : "transformer.h." + layer + ".";
  const int64_t HD = c.n_heads * c.d_head, KD = c.n_kv_heads * c.d_head;
  if (llama) {
    if (what == "attn_norm.weight") return {L + "input_layernorm.weight"};
    if (what == "ffn_norm.weight") return {L + "post_attention_layernorm.weight"};
    if (what == "wq") return {L + "self_attn.q_proj.weight", true};
    if (what == "wk") return {L + "self_attn.k_proj.weight", true};
    if (what == "wv") return {L + "self_attn.v_proj.weight", true};
    if (what == "wo") return {L + "self_attn.o_proj.weight", true};
    if (what == "w_in") return {L + "mlp.up_proj.weight", true};
    if (what == "w_gate") return {L + "mlp.gate_proj.weight", true};
    if (what == "w_out") return {L + "mlp.down_proj.weight", true};
  } else {
    if (what == "attn_norm.weight") return {L + "input_layernorm.weight"};
    if (what == "attn_norm.bias") return {L + "input_layernorm.bias"};
    // query_key_value [(H + 2K)·D, E]: the H query heads, then K, then V
    if (what == "wq") return {L + "self_attention.query_key_value.weight", true, 0};
    if (what == "wk") return {L + "self_attention.query_key_value.weight", true, HD};
    if (what == "wv") return {L + "self_attention.query_key_value.weight", true, HD + KD};
    if (what == "wo") return {L + "self_attention.dense.weight", true};
    if (what == "w_in") return {L + "mlp.dense_h_to_4h.weight", true};
    if (what == "w_out") return {L + "mlp.dense_4h_to_h.weight", true};
  }
  throw Error("no Hugging Face tensor for '" + ours + "'");
}

template <typename T>
T key(const nlohmann::json& j, std::initializer_list<const char*> names, const std::string& path, const T* dflt = nullptr) {
  for (const char* n : names)
    if (j.contains(n) && !j[n].is_null()) {
      const nlohmann::json& v = j[n];
      // JSON's type must be the key's: nlohmann converts 2.5 to an integer 2, and 1e30 with
      // undefined behaviour.
      const char* want = std::is_same_v<T, bool> ? "true or false"
                         : std::is_same_v<T, std::string> ? "a string"
                         : std::is_integral_v<T> ? "an integer" : "a number";
      const bool ok = std::is_same_v<T, bool> ? v.is_boolean()
                      : std::is_same_v<T, std::string> ? v.is_string()
                      : std::is_integral_v<T> ? v.is_number_integer() : v.is_number();
      if (!ok) throw InputError(path + ": key '" + n + "' has the wrong type (" + v.dump().substr(0, 40) + "; expected " + want + ")");
      return v.get<T>();
    }
  if (dflt) return *dflt;
  throw InputError(path + ": missing key '" + *names.begin() + "'");
}

ModelConfig parse_hf_config(const std::string& path, HfFamily& family) {
  nlohmann::json j = read_json_file(path);
  if (!j.is_object()) throw InputError(path + ": expected a JSON object");
  std::string arch;
  if (j.contains("architectures") && !j["architectures"].is_null()) {
    const nlohmann::json& a = j["architectures"];
    if (!a.is_array() || !std::all_of(a.begin(), a.end(), [](const nlohmann::json& x) { return x.is_string(); }))
      throw InputError(path + ": key 'architectures' has the wrong type (" + a.dump().substr(0, 40) +
                       "; expected a list of strings)");
    if (!a.empty()) arch = a[0].get<std::string>();
  }
  const std::string dflt;
  const std::string type = key<std::string>(j, {"model_type"}, path, &dflt);
  ModelConfig c;
  c.name = fs::path(path).parent_path().filename().string();
  if (arch == "LlamaForCausalLM" || type == "llama") {
    family = HfFamily::llama;
    c.block = Block::serial;
    c.mlp = Mlp::swiglu;
    c.norm = Norm::rmsnorm;
    c.d_model = key<int64_t>(j, {"hidden_size"}, path);
    c.n_heads = key<int64_t>(j, {"num_attention_heads"}, path);
    c.n_kv_heads = key<int64_t>(j, {"num_key_value_heads"}, path, &c.n_heads);
    c.d_ff = key<int64_t>(j, {"intermediate_size"}, path);
    const double eps = 1e-6;
    c.norm_eps = key<double>(j, {"rms_norm_eps"}, path, &eps);
    const bool tied = false;
    c.tied_embeddings = key<bool>(j, {"tie_word_embeddings"}, path, &tied);
  } else if (arch == "FalconForCausalLM" || arch == "RWForCausalLM" || type == "falcon") {
    family = HfFamily::falcon;
    const bool no = false, yes = true;
    if (key<bool>(j, {"new_decoder_architecture"}, path, &no))
      throw InputError(path + ": new_decoder_architecture = true (Falcon-40B layout) is not supported (allowed: the "
                            "Falcon-7B layout)");
    if (!key<bool>(j, {"parallel_attn"}, path, &yes)) throw InputError(path + ": parallel_attn = false is not supported");
    if (key<bool>(j, {"bias"}, path, &no)) throw InputError(path + ": bias = true is not supported (allowed: false)");
    if (key<bool>(j, {"alibi"}, path, &no)) throw InputError(path + ": alibi = true is not supported (allowed: false, RoPE)");
    if (!key<bool>(j, {"multi_query"}, path, &yes))
      throw InputError(path + ": multi_query = false is not supported (allowed: true, the Falcon-7B layout)");
    c.block = Block::parallel;
    c.mlp = Mlp::gelu;
    c.norm = Norm::layernorm;
    c.d_model = key<int64_t>(j, {"hidden_size"}, path);
    c.n_heads = key<int64_t>(j, {"num_attention_heads", "n_head"}, path);
    c.n_kv_heads = 1;
    const int64_t ff = 4 * c.d_model;
    c.d_ff = key<int64_t>(j, {"ffn_hidden_size"}, path, &ff);
    const double eps = 1e-5;
    c.norm_eps = key<double>(j, {"layer_norm_epsilon"}, path, &eps);
    c.tied_embeddings = key<bool>(j, {"tie_word_embeddings"}, path, &yes);
  } else {
    throw InputError(path + ": architecture '" + arch + "' (model_type '" + type +
                     "') is not supported (allowed: LlamaForCausalLM, FalconForCausalLM)");
  }
  c.n_layers = key<int64_t>(j, {"num_hidden_layers", "n_layer"}, path);
  c.vocab = key<int64_t>(j, {"vocab_size"}, path);
  const int64_t seq = 2048;
  c.max_seq = key<int64_t>(j, {"max_position_embeddings"}, path, &seq);
  const int64_t hd = c.n_heads > 0 ? c.d_model / c.n_heads : 0;
  c.d_head = key<int64_t>(j, {"head_dim"}, path, &hd);
  const double theta = 10000.0;
  c.rope_theta = key<double>(j, {"rope_theta"}, path, &theta);
  const bool llama = family == HfFamily::llama;
  validate(c, path, {{"n_layers", "num_hidden_layers"}, {"d_model", "hidden_size"}, {"n_heads", "num_attention_heads"},
                     {"n_kv_heads", "num_key_value_heads"}, {"d_head", "head_dim"},
                     {"d_ff", llama ? "intermediate_size" : "ffn_hidden_size"}, {"vocab", "vocab_size"},
                     {"max_seq", "max_position_embeddings"}, {"norm_eps", llama ? "rms_norm_eps" : "layer_norm_epsilon"}});
  return c;
}

}  // namespace

HfCheckpoint::HfCheckpoint(const std::string& dir)
    : config_(parse_hf_config((fs::path(dir) / "config.json").string(), family_)), st_(dir) {
  // Every tensor the config implies must be there with the right shape.
  for (const TensorSpec& s : model_tensors(config_)) {
    HfLocation at = locate(config_, family_, s.name);
    if (!st_.has(at.name))
      throw InputError("checkpoint '" + dir + "': missing tensor '" + at.name + "' (our '" + s.name + "')");
    const auto& shape = st_.info(at.name).shape;
    kernels::Shape want = s.shape;
    if (at.transposed) std::swap(want[0], want[1]);
    if (at.name.find("query_key_value") != std::string::npos)
      want[0] = (config_.n_heads + 2 * config_.n_kv_heads) * config_.d_head;
    if (shape != want)
      throw InputError("checkpoint '" + dir + "': tensor '" + at.name + "' has shape " + kernels::shape_str(shape) +
                  " but config.json implies " + kernels::shape_str(want) + " (checkpoint/config mismatch)");
  }
}

Tensor HfCheckpoint::read(const std::string& name, const Box& box) const {
  TensorSpec spec = find_tensor(config_, name);
  for (size_t d = 0; d < spec.shape.size(); ++d)
    if (box.start.size() != spec.shape.size() || box.start[d] < 0 || box.start[d] + box.size[d] > spec.shape[d])
      throw Error("shard of '" + name + "' outside " + kernels::shape_str(spec.shape));
  HfLocation at = locate(config_, family_, name);
  if (spec.shape.size() == 1) return st_.read_rows(at.name, 0, 1, box.start[0], box.size[0]).reshape({box.size[0]});
  if (!at.transposed) return st_.read_rows(at.name, box.start[0], box.size[0], box.start[1], box.size[1]);
  // Ours [in, out] rows r, cols c  =  HF [out, in] rows c (+ fused offset), cols r, transposed.
  return kernels::transpose2d(
      st_.read_rows(at.name, at.row_offset + box.start[1], box.size[1], box.start[0], box.size[0]));
}

HfFamily hf_family_for(const ModelConfig& c) {
  if (c.block == Block::serial && c.norm == Norm::rmsnorm && c.mlp == Mlp::swiglu) return HfFamily::llama;
  if (c.block == Block::parallel && c.norm == Norm::layernorm && c.mlp == Mlp::gelu && c.n_kv_heads == 1)
    return HfFamily::falcon;
  throw InputError("model '" + c.name + "' (" + to_string(c.block) + ", " + to_string(c.norm) + ", " + to_string(c.mlp) +
                   ", n_kv_heads " + std::to_string(c.n_kv_heads) +
                   ") has no Hugging Face layout (allowed: Llama = serial, rmsnorm, swiglu; Falcon = parallel, "
                   "layernorm, gelu, n_kv_heads 1)");
}

namespace {

// Converts an f32 tensor to the checkpoint dtype, returning it as raw bytes in a Tensor of
// matching element size (s8 storage for the byte buffer).
Tensor encode(const Tensor& t, const std::string& dtype) {
  if (dtype == "f32") return t;
  if (dtype == "bf16") return t.to(kernels::DType::bf16);
  Tensor out = Tensor::empty(t.shape(), kernels::DType::bf16);  // 2-byte storage
  uint16_t* o = reinterpret_cast<uint16_t*>(out.raw());
  for (int64_t i = 0; i < t.numel(); ++i) o[i] = float_to_half(t.get(i));
  return out;
}

}  // namespace

void export_hf_checkpoint(const WeightSource& src, const std::string& dir, const std::string& dtype,
                          int64_t max_shard_bytes) {
  const ModelConfig& c = src.config();
  const HfFamily family = hf_family_for(c);
  if (dtype != "f32" && dtype != "f16" && dtype != "bf16")
    throw InputError("--dtype: '" + dtype + "' (allowed: f32, f16, bf16)");
  fs::create_directories(dir);
  const int64_t HD = c.n_heads * c.d_head, KD = c.n_kv_heads * c.d_head;
  // HF tensors in order, each assembled from ours.
  NamedTensors hf;
  for (const TensorSpec& s : model_tensors(c)) {
    HfLocation at = locate(c, family, s.name);
    if (at.name.find("query_key_value") != std::string::npos) {
      if (s.name.ends_with(".wq")) {
        const std::string l = s.name.substr(0, s.name.size() - 2);
        Tensor qkv({HD + 2 * KD, c.d_model}, kernels::DType::f32);
        int64_t row = 0;
        for (const char* w : {"wq", "wk", "wv"}) {
          Tensor part = kernels::transpose2d(src.read_full(l + w));
          std::memcpy(qkv.data<float>() + row * c.d_model, part.data<float>(), part.nbytes());
          row += part.size(0);
        }
        hf.emplace_back(at.name, qkv);
      }
      continue;
    }
    Tensor t = src.read_full(s.name);
    hf.emplace_back(at.name, at.transposed ? kernels::transpose2d(t) : t);
  }
  // Split into files of at most max_shard_bytes (one file when 0).
  std::vector<NamedTensors> files(1);
  int64_t bytes = 0;
  const int64_t esize = dtype == "f32" ? 4 : 2;
  for (auto& [name, t] : hf) {
    const int64_t b = t.numel() * esize;
    if (max_shard_bytes > 0 && bytes > 0 && bytes + b > max_shard_bytes) files.emplace_back(), bytes = 0;
    files.back().emplace_back(name, encode(t, dtype));
    bytes += b;
  }
  // safetensors_writer names dtypes by storage; f16 data sits in 2-byte storage: patch the name.
  nlohmann::json index = {{"metadata", nlohmann::json::object()}, {"weight_map", nlohmann::json::object()}};
  for (size_t k = 0; k < files.size(); ++k) {
    const std::string fname = files.size() == 1 ? "model.safetensors"
                                                : "model-" + std::to_string(k + 1) + "-of-" + std::to_string(files.size()) +
                                                      ".safetensors";
    write_safetensors((fs::path(dir) / fname).string(), files[k], {{"format", "pt"}},
                      dtype == "f16" ? "F16" : "");
    for (auto& [name, t] : files[k]) index["weight_map"][name] = fname;
  }
  if (files.size() > 1) std::ofstream(fs::path(dir) / "model.safetensors.index.json") << index.dump(2) << "\n";
  nlohmann::json cfg;
  if (family == HfFamily::llama) {
    cfg = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", c.d_model},
           {"intermediate_size", c.d_ff}, {"num_attention_heads", c.n_heads}, {"num_key_value_heads", c.n_kv_heads},
           {"num_hidden_layers", c.n_layers}, {"vocab_size", c.vocab}, {"max_position_embeddings", c.max_seq},
           {"rms_norm_eps", c.norm_eps}, {"rope_theta", c.rope_theta}, {"tie_word_embeddings", c.tied_embeddings},
           {"hidden_act", "silu"}, {"head_dim", c.d_head}};
  } else {
    cfg = {{"architectures", {"FalconForCausalLM"}}, {"model_type", "falcon"}, {"hidden_size", c.d_model},
           {"ffn_hidden_size", c.d_ff}, {"num_attention_heads", c.n_heads}, {"num_hidden_layers", c.n_layers},
           {"vocab_size", c.vocab}, {"max_position_embeddings", c.max_seq}, {"layer_norm_epsilon", c.norm_eps},
           {"rope_theta", c.rope_theta}, {"tie_word_embeddings", c.tied_embeddings}, {"multi_query", true},
           {"parallel_attn", true}, {"bias", false}, {"alibi", false}, {"new_decoder_architecture", false},
           {"head_dim", c.d_head}};
  }
  cfg["torch_dtype"] = dtype == "f32" ? "float32" : dtype == "f16" ? "float16" : "bfloat16";
  std::ofstream(fs::path(dir) / "config.json") << cfg.dump(2) << "\n";
}

bool is_checkpoint_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::exists(fs::path(path) / "config.json", ec);
}

std::unique_ptr<WeightSource> open_model(const std::string& model, uint64_t seed) {
  // The global --sliding-window / --sink-tokens (attention_override.hpp) on every source.
  if (is_tsvd_checkpoint(model)) return with_attention_override(open_tsvd_checkpoint(model));
  if (is_checkpoint_dir(model)) return with_attention_override(std::make_unique<HfCheckpoint>(model));
  if (is_gguf_path(model)) return with_attention_override(std::make_unique<GgufCheckpoint>(model));
  ModelConfig c = load_model_config(model);
  apply_attention_override(c);
  return std::make_unique<SyntheticWeights>(c, seed);
}

}  // namespace tori::models
