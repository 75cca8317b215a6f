#pragma once
// The paper's feed-forward layouts, one function each, applied to a fused projection pair
// (placement.hpp explains units). Each takes the normalised residual slice h [M, E_local] and
// returns this rank's slice of the block's output [M, E_local], to be added to the residual.
// Between the input and the output matmul, `middle` turns the projected units y [M, U·unit_in]
// (and, for the attention-bearing projection, kv [M, 2·K·D], all KV heads) into z [M, U·unit_out].
//
//   ws1d    "E F_xyz":  BLE_xyz --AG(xyz)--> BLE @ W_in --> BL(unit g) ... z @ W_out --> BLE{xyz}
//           --RS(xyz)--> BLE_xyz
//   ws2d    "E_x F_yz": BLE_xyz --AG(yz)--> BLE_x @ W_in --> BL(X units){x} --RS(x)--> BL(unit g)
//           ... z --AG(x)--> BL(X units) @ W_out --> BLE_x{yz} --RS(yz)--> BLE_xyz
//   wg_A    weights AG over A (rows over x, units over A∩yz); batch split over A, 1D inside the
//           rest R: B_A LE_R --AG(R)--> B_A LE @ W --> ... @ W_out --> B_A LE{R} --RS(R)--> B_A LE_R
// With --overlap looped|looped-bidir each AG --> matmul --> RS chain above runs as one looped
// collective einsum (collective_matmul.hpp): ws1d's and wg's as 1D loops, ws2d's as 2D ones (AG(yz)
// then RS(x) in, AG(x) then RS(yz) out, K/V's all-reduce(x) started as soon as it exists), and
// the weight-gathered layouts prefetch layer i+1's weights while layer i computes.
#include <functional>

#include "runtime/layer_shards.hpp"
#include "runtime/step_context.hpp"

namespace tori::runtime {

using Middle = std::function<kernels::Tensor(const kernels::Tensor& y, const kernels::Tensor& kv)>;

// Dispatches on s.pl.plan.ffn. `layer` supplies w_kv when with_kv (the attention projection).
kernels::Tensor run_projection(StepContext& s, const LayerShard& layer, const Projection& p, bool with_kv,
                               const kernels::Tensor& h, const Middle& middle);

kernels::Tensor ws1d_projection(StepContext& s, const LayerShard& layer, const Projection& p, bool with_kv,
                                const kernels::Tensor& h, const Middle& middle);
kernels::Tensor ws2d_projection(StepContext& s, const LayerShard& layer, const Projection& p, bool with_kv,
                                const kernels::Tensor& h, const Middle& middle);
kernels::Tensor weight_gathered_projection(StepContext& s, const LayerShard& layer, const Projection& p,
                                           bool with_kv, const kernels::Tensor& h, const Middle& middle);

}  // namespace tori::runtime
