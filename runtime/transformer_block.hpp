#pragma once
// One transformer layer on this rank's residual slice [M, E_local], in the phase's layout:
//   parallel  y = x + Attn(N(x)) + FFN(N(x)): one fused input projection (Q | W_in | W_gate), one
//             fused output projection (W_o | W_out), so one all-gather in and one reduce-scatter
//             out per layer (ws2d);
//   serial    y' = x + Attn(N1(x)); y = y' + FFN(N2(y')): two projections, two norms (Gemma 3's
//             post_norms: y' = x + N1'(Attn(N1(x))); y = y' + N2'(FFN(N2(y'))), four norms).
// The "middle" between the projections gathers each unit's Q columns into ascending heads for
// attention_layouts.hpp (after Gemma's query/key RMSNorm and query scale) and applies SwiGLU /
// GELU / GeGLU to the FFN columns.
#include "kernels/tensor.hpp"
#include "runtime/layer_shards.hpp"
#include "runtime/step_context.hpp"

namespace tori::runtime {

void run_layer(StepContext& s, int64_t layer, const LayerShard& w, kernels::Tensor& resid, bool cache_handoff);

}  // namespace tori::runtime
