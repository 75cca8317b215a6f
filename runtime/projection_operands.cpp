#include "runtime/projection_operands.hpp"

#include "kernels/matmul.hpp"
#include "runtime/weight_prefetch.hpp"

namespace tori::runtime {

using kernels::Tensor;

namespace {

Tensor mm(const Tensor& x, const kernels::PackedWeight& w) {
  Tensor y;
  kernels::matmul(x, w, y);
  return y;
}

// A shared_ptr to tiles someone else owns (the layer's, for the model's lifetime).
std::shared_ptr<const collectives::EinsumWeights> borrowed(const collectives::EinsumWeights& t) {
  return std::shared_ptr<const collectives::EinsumWeights>(std::shared_ptr<void>(), &t);
}

// Weight-gathered factored (TSVD) weights: the gathered grids packed once for this step (the
// tsvd kind), as whole weights or as the looped einsum's tiles.
ProjectionOperands gathered_factors(const GatheredWeights& g, const ProjectionDataflow& f, bool with_kv, bool looped,
                                    const ShardOptions& opt, const collectives::TorusShape& shape) {
  ProjectionOperands w;
  w.with_kv = with_kv;
  if (looped) {
    const kernels::TsvdFactors* side = with_kv ? &*g.w_kv_factors : nullptr;
    w.in_tiles_ = std::make_shared<const collectives::EinsumWeights>(cut_einsum_factors(shape, f.in, *g.w_in_factors, side, opt));
    w.out_tiles_ = std::make_shared<const collectives::EinsumWeights>(cut_einsum_factors(shape, f.out, *g.w_out_factors, nullptr, opt));
    return w;
  }
  auto packed = [&opt](const kernels::TsvdFactors& t) {
    return std::make_shared<const kernels::PackedWeight>(kernels::pack_tsvd_weight(t, opt.format, opt.backend));
  };
  auto in = packed(*g.w_in_factors), out = packed(*g.w_out_factors);
  w.in = [in](const Tensor& x) { return mm(x, *in); };
  w.out = [out](const Tensor& x) { return mm(x, *out); };
  if (with_kv) {
    auto kv = packed(*g.w_kv_factors);
    w.kv = [kv](const Tensor& x) { return mm(x, *kv); };
  }
  return w;
}

}  // namespace

ProjectionOperands stationary_operands(const LayerShard& layer, const Projection& p, bool with_kv, bool looped) {
  ProjectionOperands w;
  w.with_kv = with_kv;
  if (looped) {
    w.in_tiles_ = borrowed(p.in_tiles);
    w.out_tiles_ = borrowed(p.out_tiles);
    return w;
  }
  w.in = [&p](const Tensor& x) { return mm(x, p.w_in_packed); };
  w.out = [&p](const Tensor& x) { return mm(x, p.w_out_packed); };
  if (with_kv) w.kv = [&layer](const Tensor& x) { return mm(x, layer.w_kv_packed); };
  return w;
}

ProjectionOperands gathered_operands(WeightPrefetch& prefetch, LayerRef at, const ProjectionDataflow& f, bool with_kv,
                                     bool looped, const ShardOptions& opt, const collectives::TorusShape& shape) {
  ProjectionOperands w;
  w.with_kv = with_kv;
  // Packed for this step only: int8 with the gathered columns' whole-K scales (undefined for
  // f32/bf16), as the stationary shards; f32 on oneDNN multiplies the buffer where it lies.
  auto pack = [opt](const Tensor& t, const Tensor& scales) {
    return kernels::pack_transient_weight(t, opt.format, opt.backend, scales);
  };
  if (prefetch.factored(at)) return gathered_factors(prefetch.take(at), f, with_kv, looped, opt, shape);
  if (!looped && kernels::reads_in_place(opt.format, opt.backend)) {
    // f32 on oneDNN: the gathered blocks are multiplied where they lie, never placed or packed.
    auto b = std::make_shared<const GatheredBlocks>(prefetch.take_blocks(at));
    w.in = [b](const Tensor& x) { return gathered_matmul(x, b->w_in, b->members, b->nx, true); };
    w.out = [b](const Tensor& x) { return gathered_matmul(x, b->w_out, b->members, b->nx, false); };
    if (with_kv) w.kv = [b, pack](const Tensor& x) { return mm(x, pack(b->w_kv, Tensor())); };
    return w;
  }
  auto g = std::make_shared<const GatheredWeights>(prefetch.take(at));
  if (looped) {
    // Tiles over the chains' axes; the views read the gathered tensors, which `keep` holds.
    auto cut = [&](const MatmulChain& c, const Tensor& t, const Tensor& side, const Tensor& scales,
                   const Tensor& side_scales) {
      return std::make_shared<const collectives::EinsumWeights>(collectives::cut_einsum_weights(
          shape, c.gather, c.scatter, t, side, opt.format, opt.backend, collectives::kEinsumPieces, scales,
          side_scales, /*transient=*/true));
    };
    w.keep = g;
    w.in_tiles_ = cut(f.in, g->w_in, with_kv ? g->w_kv : Tensor(), g->w_in_scales,
                      with_kv ? g->w_kv_scales : Tensor());
    w.out_tiles_ = cut(f.out, g->w_out, Tensor(), g->w_out_scales, Tensor());
    return w;
  }
  w.in = [g, pack](const Tensor& x) { return mm(x, pack(g->w_in, g->w_in_scales)); };
  w.out = [g, pack](const Tensor& x) { return mm(x, pack(g->w_out, g->w_out_scales)); };
  if (with_kv) w.kv = [g, pack](const Tensor& x) { return mm(x, pack(g->w_kv, g->w_kv_scales)); };
  return w;
}

}  // namespace tori::runtime
