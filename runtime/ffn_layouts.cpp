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

// The input projection as one looped einsum: y = reduce_scatter(all_gather(h) @ W_in) with
// W_kv's product all-reduced beside it (its all-reduce travels while y's scatter loop computes);
// returns {y, kv}.
std::pair<Tensor, Tensor> looped_input(StepContext& s, bool with_kv, const Tensor& h,
                                       const collectives::EinsumWeights& w) {
  collectives::EinsumResult r = collectives::collective_einsum(s.coll, h, w, bidir(s));
  return {r.y, with_kv ? r.side.wait() : Tensor()};
}

}  // namespace

Tensor run_projection(StepContext& s, const LayerShard& layer, const Projection& p, bool with_kv,
                      const Tensor& h, const Middle& middle) {
  // Timeline sections (comm_timeline.hpp): layer s.layer runs from its first projection's start
  // to its last one's end; norms between them count in the layer, the rest of the step in kOther.
  auto& timeline = s.coll.timeline();
  if (s.proj == 0) timeline.enter(int(s.layer));
  Tensor out;
  switch (s.pl.plan.ffn) {
    case FfnLayout::ws1d: out = ws1d_projection(s, layer, p, with_kv, h, middle); break;
    case FfnLayout::ws2d: out = ws2d_projection(s, layer, p, with_kv, h, middle); break;
    default: out = weight_gathered_projection(s, layer, p, with_kv, h, middle); break;
  }
  if (s.proj + 1 == int(layer.projections.size())) timeline.enter(collectives::CommTimeline::kOther);
  return out;
}

Tensor ws1d_projection(StepContext& s, const LayerShard& layer, const Projection& p, bool with_kv,
                       const Tensor& h, const Middle& middle) {
  auto& c = s.coll;
  if (looped(s)) {
    // [BL, E_xyz] --looped all_gather(xyz) @ W_in--> [BL, unit g], side @ W_kv --> [BL, 2KD]
    auto [y, kv] = looped_input(s, with_kv, h, p.in_tiles);
    Tensor z = middle(y, kv);
    // [BL, unit_out g] --looped matmul @ W_out, reduce_scatter(xyz)--> [BL, E_xyz]
    return collectives::collective_einsum(c, z, p.out_tiles, bidir(s)).y;
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
    // [BL, E_xyz] --looped all_gather(yz) @ W_in [E_x, X units]--> [BL, X units]{partial x}
    //   --looped reduce_scatter(x)--> [BL, unit g];  side: @ W_kv --> [BL, 2KD]{partial x}
    //   --all_reduce(x), started as soon as it exists--> [BL, 2KD]
    auto [y, kv] = looped_input(s, with_kv, h, p.in_tiles);
    // [BL, unit_out g] --looped all_gather(x) @ W_out [X units_out, E_x]--> [BL, E_x]{partial yz}
    //   --looped reduce_scatter(yz)--> [BL, E_xyz]
    return collectives::collective_einsum(c, middle(y, kv), p.out_tiles, bidir(s)).y;
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
  // int8: with the gathered columns' whole-K scales (undefined for f32/bf16), as the stationary shards.
  // Used for this step only: f32 on oneDNN multiplies the gathered buffer where it lies
  // (kernels::pack_transient_weight), the other formats pack a copy.
  auto pack = [&](const Tensor& w, const Tensor& scales) {
    return kernels::pack_transient_weight(w, s.opt.format, s.opt.backend, scales);
  };
  // Weights (weight_prefetch.hpp): W_in [E_x, X units] --all_gather(A)--> [E, units of my A-group],
  // W_out the transpose, W_kv [E_x, 2KD] --all_gather(x)--> [E, 2KD]. Overlapped: when layer i
  // starts, its gathers (if not yet started) and then layer i+1's are queued, so layer i+1's
  // weights travel while layer i computes. --overlap none: each projection gathers its own
  // weights when it needs them (the serial baseline).
  if (looped(s) && s.proj == 0) {
    s.prefetch->start_layer(s.layer);
    s.prefetch->start_layer(s.layer + 1);
  }
  const bool loop_r = looped(s) && s.pl.shape.group_size(R) > 1;  // else there is no ring to loop over
  if (!loop_r && kernels::reads_in_place(s.opt.format, s.opt.backend)) {
    // f32 on oneDNN: the gathered blocks are multiplied where they lie (gathered_matmul), never
    // placed or packed. [B_A L, E_R] --all_gather(R)--> [B_A L, E] @ W_in -> [B_A L, units]
    GatheredBlocks b = s.prefetch->take_blocks(s.layer, s.proj);
    Tensor x = c.all_gather(h, -1, R);
    Tensor y = gathered_matmul(x, b.w_in, b.members, b.nx, true);
    Tensor kv = with_kv ? mm(x, pack(b.w_kv, Tensor())) : Tensor();
    // [B_A L, units_out] @ W_out -> [B_A L, E] {partial R} --reduce_scatter(R)--> [B_A L, E_R]
    return c.reduce_scatter(gathered_matmul(middle(y, kv), b.w_out, b.members, b.nx, false), -1, R);
  }
  GatheredWeights g = s.prefetch->take(s.layer, s.proj);
  const Tensor& w_in = g.w_in;
  const Tensor& w_out = g.w_out;
  if (loop_r) {
    auto tiles = [&](Axes gather, Axes scatter, const Tensor& w, const Tensor& side, const Tensor& scales,
                     const Tensor& side_scales) {
      return collectives::cut_einsum_weights(s.pl.shape, gather, scatter, w, side, s.opt.format, s.opt.backend,
                                             collectives::kEinsumPieces, scales, side_scales, /*transient=*/true);
    };
    // [B_A L, E_R] --looped all_gather(R) @ W_in--> [B_A L, units], side @ W_kv --> [B_A L, 2KD]
    auto [y, kv] = looped_input(s, with_kv, h,
                                tiles(R, Axes::none, w_in, with_kv ? g.w_kv : Tensor(), g.w_in_scales,
                                      with_kv ? g.w_kv_scales : Tensor()));
    // [B_A L, units_out] --looped matmul @ W_out, reduce_scatter(R)--> [B_A L, E_R]
    return collectives::collective_einsum(c, middle(y, kv), tiles(Axes::none, R, w_out, Tensor(), g.w_out_scales, Tensor()),
                                          bidir(s)).y;
  }
  // [B_A L, E_R] --all_gather(R)--> [B_A L, E]
  Tensor x = c.all_gather(h, -1, R);
  // [B_A L, E] @ W_in [E, units] -> [B_A L, units]      (1D inside the R group: complete)
  Tensor y = mm(x, pack(w_in, g.w_in_scales));
  Tensor kv = with_kv ? mm(x, pack(g.w_kv, g.w_kv_scales)) : Tensor();
  Tensor z = middle(y, kv);
  // [B_A L, units_out] @ W_out [units_out, E] -> [B_A L, E] {partial R} --reduce_scatter(R)--> [B_A L, E_R]
  return c.reduce_scatter(mm(z, pack(w_out, g.w_out_scales)), -1, R);
}

}  // namespace tori::runtime
