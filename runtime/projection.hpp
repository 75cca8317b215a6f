#pragma once
// One projection pair of a layer in the phase's layout, one code path for every layout: the
// layout's dataflow (layout_dataflow.hpp) says which axes each chain gathers and scatters over and
// whether the weights are stored or gathered this step, the chain strategy (chain_strategy.hpp)
// whether the chains run as plain collectives or looped einsums. Takes the normalised residual
// slice h [M, E_local] and returns this rank's slice of the block's output [M, E_local], to be
// added to the residual:
//   h --AG(in.gather)--> @ W_in --RS(in.scatter)--> y [M, units · unit_in]   (+ kv [M, 2KD])
//     --middle--> z [M, units · unit_out] --AG(out.gather)--> @ W_out --RS(out.scatter)--> [M, E_local]
// `middle` turns y (and, for the attention-bearing projection, kv: all KV heads) into z.
#include <functional>

#include "runtime/layer_shards.hpp"
#include "runtime/step_context.hpp"

namespace tori::runtime {

using Middle = std::function<kernels::Tensor(const kernels::Tensor& y, const kernels::Tensor& kv)>;

// `layer` supplies W_kv when with_kv (the attention projection).
kernels::Tensor run_projection(StepContext& s, LayerRef at, const LayerShard& layer, const Projection& p, bool with_kv,
                               const kernels::Tensor& h, const Middle& middle);

}  // namespace tori::runtime
