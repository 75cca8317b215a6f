#pragma once
// Synthetic weights: element (tensor, flat index) = f(seed, tensor name, index) through a
// counter-based hash (SplitMix64 finaliser), so any rank can build exactly its shard and the
// Reference the whole tensor, bit-identically, with no files.
#include <cstdint>

#include "models/weight_names.hpp"
#include "models/weight_source.hpp"

namespace tori::models {

// Uniform value in [-sqrt(3), sqrt(3)) (unit variance) for (seed, name hash, flat index).
float synthetic_unit(uint64_t seed, uint64_t name_hash, uint64_t index);
// 64-bit FNV-1a of a tensor name.
uint64_t tensor_name_hash(const std::string& name);

class SyntheticWeights final : public WeightSource {
 public:
  SyntheticWeights(ModelConfig config, uint64_t seed) : config_(std::move(config)), seed_(seed) {}
  const ModelConfig& config() const override { return config_; }
  uint64_t seed() const { return seed_; }
  kernels::Tensor read(const std::string& name, const Box& box) const override;

 private:
  ModelConfig config_;
  uint64_t seed_;
};

}  // namespace tori::models
