#include "runtime/projection.hpp"

#include "runtime/chain_strategy.hpp"
#include "runtime/projection_operands.hpp"

namespace tori::runtime {

using kernels::Tensor;

Tensor run_projection(StepContext& s, LayerRef at, const LayerShard& layer, const Projection& p, bool with_kv,
                      const Tensor& h, const Middle& middle) {
  const ProjectionDataflow& f = s.flow.projection;
  // W_in, W_out, W_kv: the stored shards, or gathered over weight_gather for this step.
  const ProjectionOperands w =
      f.weight_gather.empty()
          ? stationary_operands(layer, p, with_kv, s.chains.looped())
          : gathered_operands(*s.prefetch, at, f, with_kv, s.chains.looped(), s.opt, s.pl.shape);
  // [M, E_local] --AG(in.gather)--> @ W_in --RS(in.scatter)--> y [M, units·unit_in];
  // @ W_kv --AR(kv_reduce)--> kv [M, 2KD]
  auto [y, kv] = s.chains.input(s.coll, h, f.in, f.kv_reduce, w);
  // y -> attention / activation -> z [M, units·unit_out]
  const Tensor z = middle(y, kv);
  // --AG(out.gather)--> @ W_out --RS(out.scatter)--> [M, E_local]
  return s.chains.output(s.coll, z, f.out, w);
}

}  // namespace tori::runtime
