#include "runtime/ffn_layouts.hpp"

#include <cstring>

#include "collectives/collective_matmul.hpp"
#include "kernels/columns.hpp"
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

bool looped(const StepContext& s) { return s.opt.overlap != collectives::Overlap::none; }
bool bidir(const StepContext& s) { return s.opt.overlap == collectives::Overlap::looped_bidir; }

// y = all_gather(h, -1, axes) @ [W_in | W_kv] as one looped einsum; returns {y, kv}.
std::pair<Tensor, Tensor> looped_input(StepContext& s, bool with_kv, const Tensor& h, Axes axes,
                                       std::span<const kernels::PackedWeight> blocks) {
  // [BL, E_axes] --looped all_gather(axes) @ [W_in | W_kv]--> [BL, units | 2KD]
  Tensor both = collectives::all_gather_matmul(s.coll, h, axes, blocks, bidir(s));
  if (!with_kv) return {both, Tensor()};
  const int64_t cols = both.size(1) - 2 * s.config.n_kv_heads * s.config.d_head;
  return {kernels::slice_columns(both, 0, cols), kernels::slice_columns(both, cols, both.size(1) - cols)};
}

// Cuts plain [K, N] weights into packed row (rows = true) or column blocks for `axes`.
std::vector<kernels::PackedWeight> cut(StepContext& s, const Tensor& w, Axes axes, bool rows) {
  const int G = collectives::loop_plan(s.pl.shape, axes).blocks;
  std::vector<kernels::PackedWeight> out;
  const int64_t R = w.size(0), C = w.size(1);
  for (int j = 0; j < G; ++j) {
    Tensor b = rows ? w.narrow0(j * (R / G), R / G).clone() : kernels::slice_columns(w, j * (C / G), C / G);
    out.push_back(kernels::pack_weight(b, s.opt.format, s.opt.backend));
  }
  return out;
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
  if (looped(s)) {
    // [BL, E_xyz] --looped all_gather(xyz) @ [W_in | W_kv]--> [BL, unit g | 2KD]
    auto [y, kv] = looped_input(s, with_kv, h, Axes::xyz, p.in_blocks);
    Tensor z = middle(y, kv);
    // [BL, unit_out g] --looped matmul @ W_out, reduce_scatter(xyz)--> [BL, E_xyz]
    return collectives::matmul_reduce_scatter(c, z, Axes::xyz, p.out_blocks, bidir(s));
  }
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
  if (looped(s)) {
    // [BL, E_xyz] --looped all_gather(yz) @ [W_in | W_kv]--> [BL, X units | 2KD] {partial x}
    auto [y, kv] = looped_input(s, with_kv, h, Axes::yz, p.in_blocks);
    y = c.reduce_scatter(y, -1, Axes::x);                 // --> [BL, unit g]
    if (with_kv) kv = c.all_reduce(kv, Axes::x);          // --> [BL, 2KD]
    Tensor z = c.all_gather(middle(y, kv), -1, Axes::x);  // [BL, unit_out g] --> [BL, X units_out]
    // --looped matmul @ W_out [X units_out, E_x], reduce_scatter(yz)--> [BL, E_xyz]
    return collectives::matmul_reduce_scatter(c, z, Axes::yz, p.out_blocks, bidir(s));
  }
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

Tensor weight_gathered_projection(StepContext& s, const LayerShard& /*layer: gathered via s.prefetch*/,
                                  const Projection& /*p: likewise*/, bool with_kv, const Tensor& h,
                                  const Middle& middle) {
  auto& c = s.coll;
  const Axes R = s.pl.e_axes;
  auto pack = [&](const Tensor& w) { return kernels::pack_weight(w, s.opt.format, s.opt.backend); };
  // Weights (weight_prefetch.hpp): W_in [E_x, X units] --all_gather(A)--> [E, units of my A-group],
  // W_out the transpose, W_kv [E_x, 2KD] --all_gather(x)--> [E, 2KD]; started a projection early.
  GatheredWeights g = s.prefetch->take(s.layer, s.proj);
  const Tensor& w_in = g.w_in;
  const Tensor& w_out = g.w_out;
  // Start the next projection's weights now: they travel while this one computes.
  auto start_next = [&] {
    auto [nl, np] = s.prefetch->next(s.layer, s.proj);
    s.prefetch->start(nl, np);
  };
  if (looped(s)) {
    start_next();
    Tensor in = with_kv ? kernels::concat_columns(w_in, g.w_kv) : w_in;
    // [B_A L, E_R] --looped all_gather(R) @ [W_in | W_kv]--> [B_A L, units | 2KD]
    auto in_blocks = cut(s, in, R, true);
    Tensor both = collectives::all_gather_matmul(c, h, R, in_blocks, bidir(s));
    const int64_t cols = w_in.size(1);
    Tensor y = with_kv ? kernels::slice_columns(both, 0, cols) : both, kv = with_kv ? kernels::slice_columns(both, cols, both.size(1) - cols) : Tensor();
    // [B_A L, units_out] --looped matmul @ W_out, reduce_scatter(R)--> [B_A L, E_R]
    return collectives::matmul_reduce_scatter(c, middle(y, kv), R, cut(s, w_out, R, false), bidir(s));
  }
  // [B_A L, E_R] --all_gather(R)--> [B_A L, E]
  Tensor x = c.all_gather(h, -1, R);
  start_next();
  // [B_A L, E] @ W_in [E, units] -> [B_A L, units]      (1D inside the R group: complete)
  Tensor y = mm(x, pack(w_in));
  Tensor kv = with_kv ? mm(x, pack(g.w_kv)) : Tensor();
  Tensor z = middle(y, kv);
  // [B_A L, units_out] @ W_out [units_out, E] -> [B_A L, E] {partial R} --reduce_scatter(R)--> [B_A L, E_R]
  return c.reduce_scatter(mm(z, pack(w_out)), -1, R);
}

}  // namespace tori::runtime
