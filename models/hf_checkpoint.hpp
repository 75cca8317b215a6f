#pragma once
// Hugging Face checkpoints (config.json + model.safetensors, or sharded with
// model.safetensors.index.json) as a WeightSource, for two families:
//   Llama  (LlamaForCausalLM): serial block, RMSNorm, SwiGLU, RoPE, grouped or multiquery
//   Falcon (FalconForCausalLM, the 7B layout: parallel attention + MLP sharing one LayerNorm,
//          multiquery, fused query_key_value, GELU)
// Tensors are translated to our names and [in, out] orientation box by box, so each rank reads
// only its shard from the memory-mapped files. export_hf_checkpoint() writes any WeightSource of a
// model in one of these families as such a checkpoint (the synthetic model, for tests).
#include <memory>
#include <string>

#include "models/safetensors_reader.hpp"
#include "models/weight_source.hpp"

namespace tori::models {

enum class HfFamily { llama, falcon };

class HfCheckpoint final : public WeightSource {
 public:
  // Throws InputError for a missing/invalid config.json or an unsupported architecture, and
  // tori::Error when a tensor is missing or its shape does not match the config.
  explicit HfCheckpoint(const std::string& dir);
  const ModelConfig& config() const override { return config_; }
  kernels::Tensor read(const std::string& name, const Box& box) const override;
  HfFamily family() const { return family_; }

 private:
  ModelConfig config_;
  HfFamily family_;
  SafetensorsCheckpoint st_;
};

// The family a config can be exported as; throws InputError naming the mismatching keys.
HfFamily hf_family_for(const ModelConfig& c);
// Writes dir/config.json and the weights (dtype "f32" | "f16" | "bf16") in one file, or in files
// of at most max_shard_bytes with an index when max_shard_bytes > 0.
void export_hf_checkpoint(const WeightSource& src, const std::string& dir, const std::string& dtype,
                          int64_t max_shard_bytes = 0);

// True if `path` is a directory holding config.json (a checkpoint rather than a preset or YAML).
bool is_checkpoint_dir(const std::string& path);
// A preset name, a model YAML (synthetic weights from `seed`), a checkpoint directory, a
// llama.cpp .gguf file (GgufCheckpoint) or a TSVD checkpoint directory of `tori compress`
// (tsvd_checkpoint.hpp: its source model with the compressed matrices factored).
std::unique_ptr<WeightSource> open_model(const std::string& model, uint64_t seed);

}  // namespace tori::models
