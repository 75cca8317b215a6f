#pragma once
// How a projection's two matmul chains (layout_dataflow.hpp) run their collectives: a strategy
// chosen once per phase from --overlap, as the paper's own code picks its collective-matmul variant,
// so the projection (projection.hpp) has one code path whatever the layout and the overlap:
//   plain    all_gather(gather), one local matmul, reduce_scatter(scatter); the K/V product
//            x @ W_kv all-reduced over kv_reduce after it
//   looped   each chain as one looped collective einsum (collectives/collective_matmul.hpp): every
//            transfer travels while a matmul computes; W_kv is the input einsum's side weight, its
//            all-reduce started as soon as the product exists (looped-bidir: both ring directions)
// ProjectionOperands (projection_operands.hpp) hold the weights in the form the strategy multiplies.
#include <utility>

#include "collectives/collective_matmul.hpp"
#include "collectives/collectives.hpp"
#include "runtime/layout_dataflow.hpp"
#include "runtime/projection_operands.hpp"

namespace tori::runtime {

class ChainStrategy {
 public:
  virtual ~ChainStrategy() = default;
  // Whether the operands must be cut into looped-einsum tiles.
  virtual bool looped() const = 0;
  // h [M, K/|c.gather|] -> {y [M, N/|c.scatter|], kv [M, 2KD] (undefined without W_kv)}
  virtual std::pair<kernels::Tensor, kernels::Tensor> input(collectives::Collectives& coll, const kernels::Tensor& h,
                                                            const MatmulChain& c, Axes kv_reduce,
                                                            const ProjectionOperands& w) const = 0;
  // z [M, K/|c.gather|] -> [M, N/|c.scatter|]
  virtual kernels::Tensor output(collectives::Collectives& coll, const kernels::Tensor& z, const MatmulChain& c,
                                 const ProjectionOperands& w) const = 0;
};

// The strategy for a phase: looped when --overlap asks for it and the chains have a ring to loop
// over (a weight-gathered layout whose E axes R hold one rank runs plain: nothing to overlap).
const ChainStrategy& chain_strategy(collectives::Overlap overlap, const Placement& pl, const ProjectionDataflow& f);

}  // namespace tori::runtime
