#pragma once
// WeightSource: where a rank's shards come from. A shard is a rectangular box of a tensor (start
// and size per dimension); the full tensor is the box covering everything. Sources: the synthetic
// generator (any box, bit-identical to the same slice of the full tensor) and, later, checkpoints.
#include <optional>
#include <string>

#include "kernels/tensor.hpp"
#include "kernels/tsvd.hpp"
#include "models/config.hpp"

namespace tori::models {

struct Box {
  kernels::Shape start;
  kernels::Shape size;
  static Box full(const kernels::Shape& shape) { return {kernels::Shape(shape.size(), 0), shape}; }
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual const ModelConfig& config() const = 0;
  // The box `box` of tensor `name`, as f32. Throws tori::Error for unknown names or boxes outside
  // the tensor.
  virtual kernels::Tensor read(const std::string& name, const Box& box) const = 0;
  kernels::Tensor read_full(const std::string& name) const;
  // With tied embeddings: the [V, E] embedding as the logits matmul multiplies it. The embedding
  // itself, except where a wrapper rounds weights to a run's dtype (rounded_weights.hpp).
  virtual kernels::Tensor read_tied_unembedding() const { return read_full("embed"); }
  // Factored sources (TSVD checkpoints, tsvd_checkpoint.hpp): the tile shape of a compressed
  // tensor, or nullopt for a dense one (every tensor of every other source).
  virtual std::optional<kernels::TileShape> factor_tile(const std::string&) const { return std::nullopt; }
  // The factors of the tiles that `box` of a compressed tensor covers, as one TsvdFactors of the
  // box's shape (its tile (i, j) is the tensor's tile (start0/T_k + i, start1/T_n + j)), read
  // without forming the product; nullopt when the box is not made of whole tiles. Tensors without
  // factor_tile throw.
  virtual std::optional<kernels::TsvdFactors> read_factors(const std::string& name, const Box& box) const;
  // Numbers a compressed tensor's factors hold, Σ r·(T_k + T_n) over its tiles (0: dense).
  virtual int64_t factor_parameters(const std::string&) const { return 0; }
  // Whether a compressed tensor's factors are stored int8 with per-column scales (read_factors then
  // gives q·scale and each tile's V scales, TsvdFactors::v_scale): an int8 run multiplies them as
  // stored (runtime/factored_weights.hpp runs_factors).
  virtual bool int8_factors(const std::string&) const { return false; }
};

// The weights of another source under a changed config (a shorter context, other attention
// windows): every read, factored ones included, goes to `source`, which must outlive the view.
class ConfigView : public WeightSource {
 public:
  explicit ConfigView(const WeightSource& source) : source_(source), config_(source.config()) {}
  const ModelConfig& config() const override { return config_; }
  kernels::Tensor read(const std::string& name, const Box& box) const override { return source_.read(name, box); }
  kernels::Tensor read_tied_unembedding() const override { return source_.read_tied_unembedding(); }
  std::optional<kernels::TileShape> factor_tile(const std::string& name) const override { return source_.factor_tile(name); }
  std::optional<kernels::TsvdFactors> read_factors(const std::string& name, const Box& box) const override {
    return source_.read_factors(name, box);
  }
  int64_t factor_parameters(const std::string& name) const override { return source_.factor_parameters(name); }
  bool int8_factors(const std::string& name) const override { return source_.int8_factors(name); }

 protected:
  const WeightSource& source_;
  ModelConfig config_;
};

}  // namespace tori::models
