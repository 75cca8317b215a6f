#pragma once
// ProjectionOperands: one projection pair's weights (W_in, W_out, W_kv) in the form the phase's
// chain strategy multiplies (chain_strategy.hpp):
//   plain    x @ W as a function: a packed whole weight (weight-stationary shards, packed at load;
//            gathered bf16/int8 weights, packed for the step), or f32 gathered blocks multiplied
//            where they arrived (gathered_matmul, weight_prefetch.hpp)
//   looped   W cut into the looped einsum's tiles for the chain's axes (weight-stationary: at load,
//            build_overlap_blocks; gathered: for the step, as views where the format allows)
// Where the weights come from is the layout's dataflow (layout_dataflow.hpp): the stored shards, or
// this step's all-gathers over weight_gather (WeightPrefetch).
#include <functional>
#include <memory>

#include "collectives/collective_matmul.hpp"
#include "collectives/torus_shape.hpp"
#include "kernels/tensor.hpp"
#include "runtime/layer_shards.hpp"
#include "runtime/layout_dataflow.hpp"

namespace tori::runtime {

class WeightPrefetch;

struct ProjectionOperands {
  using Multiply = std::function<kernels::Tensor(const kernels::Tensor& x)>;
  bool with_kv = false;
  Multiply in, out, kv;  // plain: x @ W_in, x @ W_out, x @ W_kv (kv empty without W_kv)
  std::shared_ptr<const collectives::EinsumWeights> in_tiles_, out_tiles_;  // looped
  std::shared_ptr<const void> keep;  // what the tiles' views read (this step's gathered weights)
  const collectives::EinsumWeights& in_tiles() const { return *in_tiles_; }
  const collectives::EinsumWeights& out_tiles() const { return *out_tiles_; }
};

// Weight-stationary: the stored shards of `p` (W_kv from `layer` when with_kv).
ProjectionOperands stationary_operands(const LayerShard& layer, const Projection& p, bool with_kv, bool looped);

// Weight-gathered: projection `at`'s weights all-gathered for this step (started earlier or now).
ProjectionOperands gathered_operands(WeightPrefetch& prefetch, LayerRef at, const ProjectionDataflow& f, bool with_kv,
                                     bool looped, const ShardOptions& opt, const collectives::TorusShape& shape);

}  // namespace tori::runtime
