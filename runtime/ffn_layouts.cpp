#include "runtime/ffn_layouts.hpp"

#include "kernels/matmul.hpp"

namespace tori::runtime {

using collectives::Axes;
using kernels::Tensor;

namespace {
Tensor mm(const Tensor& x, const kernels::PackedWeight& w) {
  Tensor y;
  kernels::matmul(x, w, y);
  return y;
}
}  // namespace

Tensor run_projection(StepContext& s, const LayerShard& layer, const Projection& p, bool with_kv,
                      const Tensor& h, const Middle& middle) {
  switch (s.pl.plan.ffn) {
    case FfnLayout::ws1d: return ws1d_projection(s, layer, p, with_kv, h, middle);
    case FfnLayout::ws2d: return ws2d_projection(s, layer, p, with_kv, h, middle);
    default: return weight_gathered_projection(s, layer, p, with_kv, h, middle);
  }
}

Tensor ws1d_projection(StepContext& s, const LayerShard& layer, const Projection& p, bool with_kv,
                       const Tensor& h, const Middle& middle) {
  auto& c = s.coll;
  // [BL, E_xyz] --all_gather(xyz)--> [BL, E]
  Tensor x = c.all_gather(h, -1, Axes::xyz);
  // [BL, E] @ W_in [E, unit g] -> [BL, unit g]          (complete: W_in holds every row of E)
  Tensor y = mm(x, p.w_in_packed);
  // [BL, E] @ W_kv [E, 2KD] -> [BL, 2KD]
  Tensor kv = with_kv ? mm(x, layer.w_kv_packed) : Tensor();
  // [BL, unit g] -> attention / activation -> [BL, unit_out g]
  Tensor z = middle(y, kv);
  // [BL, unit_out g] @ W_out [unit_out g, E] -> [BL, E] {partial xyz}
  Tensor out = mm(z, p.w_out_packed);
  // --reduce_scatter(xyz)--> [BL, E_xyz]
  return c.reduce_scatter(out, -1, Axes::xyz);
}

Tensor ws2d_projection(StepContext& s, const LayerShard& layer, const Projection& p, bool with_kv,
                       const Tensor& h, const Middle& middle) {
  auto& c = s.coll;
  // [BL, E_xyz] --all_gather(yz)--> [BL, E_x]
  Tensor x = c.all_gather(h, -1, Axes::yz);
  // [BL, E_x] @ W_in [E_x, X units] -> [BL, X units] {partial x}
  Tensor y = mm(x, p.w_in_packed);
  // --reduce_scatter(x) over units--> [BL, unit g]
  y = c.reduce_scatter(y, -1, Axes::x);
  Tensor kv;
  if (with_kv) {
    // [BL, E_x] @ W_kv [E_x, 2KD] -> [BL, 2KD] {partial x} --all_reduce(x)--> [BL, 2KD]
    kv = c.all_reduce(mm(x, layer.w_kv_packed), Axes::x);
  }
  // [BL, unit g] -> attention / activation -> [BL, unit_out g]
  Tensor z = middle(y, kv);
  // --all_gather(x)--> [BL, X units_out]
  z = c.all_gather(z, -1, Axes::x);
  // [BL, X units_out] @ W_out [X units_out, E_x] -> [BL, E_x] {partial yz}
  Tensor out = mm(z, p.w_out_packed);
  // --reduce_scatter(yz)--> [BL, E_xyz]
  return c.reduce_scatter(out, -1, Axes::yz);
}

Tensor weight_gathered_projection(StepContext& s, const LayerShard& layer, const Projection& p, bool with_kv,
                                  const Tensor& h, const Middle& middle) {
  auto& c = s.coll;
  const Axes A = s.pl.batch_axes, R = s.pl.e_axes, Ayz = A & Axes::yz;
  auto pack = [&](const Tensor& w) { return kernels::pack_weight(w, s.opt.format, s.opt.backend); };
  // Weights: W_in [E_x, X units] --all_gather(x) rows--> [E, X units] --all_gather(A∩yz) units-->
  // [E, units of my A-group]; W_out the transpose; W_kv [E_x, 2KD] --all_gather(x)--> [E, 2KD].
  Tensor w_in = c.all_gather(c.all_gather(p.w_in, 0, Axes::x), 1, Ayz);
  Tensor w_out = c.all_gather(c.all_gather(p.w_out, 1, Axes::x), 0, Ayz);
  // [B_A L, E_R] --all_gather(R)--> [B_A L, E]
  Tensor x = c.all_gather(h, -1, R);
  // [B_A L, E] @ W_in [E, units] -> [B_A L, units]      (1D inside the R group: complete)
  Tensor y = mm(x, pack(w_in));
  Tensor kv = with_kv ? mm(x, pack(c.all_gather(layer.w_kv, 0, Axes::x))) : Tensor();
  Tensor z = middle(y, kv);
  // [B_A L, units_out] @ W_out [units_out, E] -> [B_A L, E] {partial R} --reduce_scatter(R)--> [B_A L, E_R]
  return c.reduce_scatter(mm(z, pack(w_out)), -1, R);
}

}  // namespace tori::runtime
