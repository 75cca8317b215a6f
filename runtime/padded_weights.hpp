#pragma once
// PaddedWeights: a WeightSource that serves the padded model (padding.hpp) from the real one. A
// box of a padded tensor is read as the boxes of the real tensor it covers — one read per run of
// consecutive real heads (units, vocabulary rows) — with zeros in the padding, so each rank still
// materialises only its own shard and the full padded tensor never exists. Works over every
// source (synthetic, safetensors, GGUF) because it only calls read(). Tensors without a padded
// dimension pass straight through.
#include "models/weight_source.hpp"
#include "runtime/padding.hpp"

namespace tori::runtime {

class PaddedWeights final : public models::WeightSource {
 public:
  // `real` must outlive this object.
  PaddedWeights(const models::WeightSource& real, int64_t shards);
  const models::ModelConfig& config() const override { return config_; }  // the padded model
  const Padding& padding() const { return padding_; }
  kernels::Tensor read(const std::string& name, const models::Box& box) const override;
  // Factored tensors: the real tensor's factors for its runs, rank-1 zero tiles for the padding;
  // nullopt unless every run along the padded dimension (real and padding) is whole tiles.
  std::optional<kernels::TileShape> factor_tile(const std::string& name) const override {
    return real_.factor_tile(name);
  }
  std::optional<kernels::TsvdFactors> read_factors(const std::string& name, const models::Box& box) const override;
  int64_t factor_parameters(const std::string& name) const override { return real_.factor_parameters(name); }
  bool int8_factors(const std::string& name) const override { return real_.int8_factors(name); }

 private:
  const models::WeightSource& real_;
  Padding padding_;
  models::ModelConfig config_;
};

}  // namespace tori::runtime
