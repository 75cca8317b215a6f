#include "runtime/layer_shards.hpp"

#include <algorithm>

#include "kernels/columns.hpp"
#include "kernels/divide.hpp"
#include "kernels/error.hpp"
#include "kernels/take.hpp"
#include "models/weight_names.hpp"
#include "runtime/factored_weights.hpp"

namespace tori::runtime {

using kernels::Tensor;
using models::Box;

int64_t segment_width(const models::ModelConfig& c, int64_t n, Segment s) {
  switch (s) {
    case Segment::q:
    case Segment::o: return c.n_heads * c.d_head / n;
    default: return c.d_ff / n;
  }
}

bool Projection::has(Segment s) const {
  for (Segment t : in_segments) if (t == s) return true;
  for (Segment t : out_segments) if (t == s) return true;
  return false;
}

int64_t Projection::offset(Segment s) const {
  const bool out = s == Segment::o || s == Segment::w_out;
  const auto& segs = out ? out_segments : in_segments;
  const auto& widths = out ? out_widths : in_widths;
  int64_t off = 0;
  for (size_t k = 0; k < segs.size(); ++k) {
    if (segs[k] == s) return off;
    off += widths[k];
  }
  throw Error("projection has no such segment");
}

int64_t LayerShard::bytes() const {
  int64_t b = static_cast<int64_t>(w_kv.nbytes() + attn_norm_w.nbytes() + attn_norm_b.nbytes() +
                                   ffn_norm_w.nbytes() + ffn_norm_b.nbytes() + post_attn_norm_w.nbytes() +
                                   post_attn_norm_b.nbytes() + post_ffn_norm_w.nbytes() + post_ffn_norm_b.nbytes() +
                                   q_norm_w.nbytes() + k_norm_w.nbytes());
  for (auto& p : projections) {
    b += static_cast<int64_t>(p.w_in.nbytes() + p.w_out.nbytes()) + p.w_in_packed.weight_bytes() +
         p.w_out_packed.weight_bytes();
    b += p.in_tiles.weight_bytes() + p.out_tiles.weight_bytes();
    for (const auto* f : {&p.w_in_factors, &p.w_out_factors})  // kept for weight-gathered layouts
      if (*f) b += 4 * (*f)->parameters();
  }
  b += w_kv_packed.weight_bytes();
  if (w_kv_factors) b += 4 * w_kv_factors->parameters();
  return b;
}

namespace {

const char* tensor_of(Segment s) {
  switch (s) {
    case Segment::q: return "wq";
    case Segment::w_in: return "w_in";
    case Segment::w_gate: return "w_gate";
    case Segment::o: return "wo";
    case Segment::w_out: return "w_out";
  }
  return "";
}

// Column maxima |w| of `cols` columns from col0 of tensor `name`'s rows [0, rows) (all of its input
// dimension K), folded into amax [cols]. Why read rather than all-reduce the ranks' partial maxima:
// it keeps loading free of collectives (any rank loads any shard, in any order) at the price of
// re-reading the rows of these columns other ranks hold — at most n times this rank's own share
// of a tensor, and only for --dtype int8 (measured: SmolLM2-135M Q4_1 GGUF, 8 ranks on 2 cores,
// whole run 5.8 s -> 9.5 s; an all-reduce(max) of the ranks' partial maxima over the axes that
// split K would avoid the re-reads). Read in chunks of rows so the stripe never exists whole.
void fold_stripe_amax(const models::WeightSource& src, const std::string& name, int64_t rows, int64_t col0,
                      int64_t cols, float* amax) {
  constexpr int64_t kChunkElements = int64_t(1) << 22;  // 16 MiB of f32 per read
  const int64_t step = std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, cols));
  for (int64_t k0 = 0; k0 < rows; k0 += step) {
    const int64_t len = std::min(step, rows - k0);
    Tensor a = kernels::column_amax(src.read(name, Box{{k0, col0}, {len, cols}}));
    for (int64_t j = 0; j < cols; ++j) amax[j] = std::max(amax[j], a.data<float>()[j]);
  }
}

// Whether a weight made of `tensors` runs factored: every tensor compressed, in a run whose format
// multiplies them (runs_factors: f32, bf16; int8 on int8 factors).
bool factored(const models::WeightSource& src, const std::vector<std::string>& tensors, const ShardOptions& opt) {
  for (const auto& t : tensors)
    if (!src.factor_tile(t) || !runs_factors(opt.format, src.int8_factors(t))) return false;
  return true;
}

// An int8 run's grid carries V scales in every tile slot (undefined where none: padding's zero
// tiles), so that every member of a weight gather flattens them (flatten_factors).
kernels::TsvdFactors with_scale_slots(kernels::TsvdFactors f, const ShardOptions& opt) {
  if (opt.format == kernels::WeightFormat::int8 && f.v_scale.empty()) f.v_scale.resize(f.ranks.size());
  return f;
}

// The factors of `box` of a compressed tensor, or the one error naming tensor, tile, shard and layout.
kernels::TsvdFactors shard_factors(const models::WeightSource& src, const std::string& name, const Box& box,
                                   const Placement& pl) {
  std::optional<kernels::TsvdFactors> f = src.read_factors(name, box);
  if (f) return std::move(*f);
  const kernels::TileShape t = *src.factor_tile(name);
  throw InputError("TSVD tile " + std::to_string(t.rows) + "x" + std::to_string(t.cols) + " of tensor '" + name +
                   "' does not divide this rank's shard of it (rows [" + std::to_string(box.start[0]) + ", " +
                   std::to_string(box.start[0] + box.size[0]) + ") x columns [" + std::to_string(box.start[1]) + ", " +
                   std::to_string(box.start[1] + box.size[1]) + ") of the padded " +
                   kernels::shape_str(models::find_tensor(src.config(), name).shape) + ") under layout " +
                   pl.plan.str() + " on torus " + pl.shape.str() +
                   ": compress with a --tile that divides every shard, or run another plan or torus");
}

// int4: a shard's rows of K [k0, k0 + rows) must start and end on group boundaries (quantize.hpp),
// or its groups would differ from the whole weight's.
void check_int4_rows(const ShardOptions& opt, const std::string& name, int64_t k0, int64_t rows, const Placement& pl) {
  const int64_t g = kernels::k_granule(opt.format);
  if (k0 % g == 0 && rows % g == 0) return;
  throw InputError("--dtype " + std::string(kernels::weight_format_name(opt.format)) + ": tensor " + name +
                   ": this layout's shard holds rows [" + std::to_string(k0) + ", " + std::to_string(k0 + rows) +
                   ") of its input dimension on torus " + pl.shape.str() + ", which does not fall on the groups of " +
                   std::to_string(g) + " rows the 4-bit format quantises (use fewer ranks, another plan, or --dtype int8)");
}

Projection load_projection(const models::WeightSource& src, int64_t layer, const Placement& pl,
                           std::vector<Segment> ins, std::vector<Segment> outs, const ShardOptions& opt) {
  const auto& c = src.config();
  const int64_t n = pl.shape.ranks(), rows = pl.stored_e_rows, r0 = pl.stored_e_offset;
  Projection p;
  p.in_segments = std::move(ins);
  p.out_segments = std::move(outs);
  for (Segment s : p.in_segments) p.in_widths.push_back(segment_width(c, n, s)), p.unit_in += p.in_widths.back();
  for (Segment s : p.out_segments) p.out_widths.push_back(segment_width(c, n, s)), p.unit_out += p.out_widths.back();
  const int64_t U = static_cast<int64_t>(pl.stored_units.size());
  std::vector<std::string> tensors;
  for (const auto* segs : {&p.in_segments, &p.out_segments})
    for (Segment s : *segs) tensors.push_back(models::layer_tensor(layer, tensor_of(s)));
  if (factored(src, tensors, opt)) {
    // W_in: the (unit, segment) column boxes side by side; W_out: the row boxes stacked.
    std::vector<kernels::TsvdFactors> in, out;
    for (int64_t u = 0; u < U; ++u) {
      const int64_t b = pl.stored_units[size_t(u)];
      for (Segment s : p.in_segments) {
        const int64_t w = segment_width(c, n, s);
        in.push_back(shard_factors(src, models::layer_tensor(layer, tensor_of(s)), Box{{r0, b * w}, {rows, w}}, pl));
      }
      for (Segment s : p.out_segments) {
        const int64_t w = segment_width(c, n, s);
        out.push_back(shard_factors(src, models::layer_tensor(layer, tensor_of(s)), Box{{b * w, r0}, {w, rows}}, pl));
      }
    }
    p.w_in_factors = with_scale_slots(join_factors(in, 1), opt);
    p.w_out_factors = with_scale_slots(join_factors(out, 0), opt);
    p.in_floats = factor_floats(*p.w_in_factors);
    p.out_floats = factor_floats(*p.w_out_factors);
    if (opt.pack) {
      p.w_in_packed = kernels::pack_tsvd_weight(*p.w_in_factors, opt.format, opt.backend);
      p.w_out_packed = kernels::pack_tsvd_weight(*p.w_out_factors, opt.format, opt.backend);
    }
    return p;
  }
  for (Segment s : p.in_segments) check_int4_rows(opt, models::layer_tensor(layer, tensor_of(s)), r0, rows, pl);
  for (Segment s : p.out_segments)
    if (U > 0) {
      const int64_t w = segment_width(c, n, s);
      check_int4_rows(opt, models::layer_tensor(layer, tensor_of(s)), pl.stored_units[0] * w, w, pl);
    }
  p.w_in = Tensor({rows, U * p.unit_in}, kernels::DType::f32);
  p.w_out = Tensor({U * p.unit_out, rows}, kernels::DType::f32);
  for (int64_t u = 0; u < U; ++u) {
    const int64_t b = pl.stored_units[size_t(u)];
    int64_t col = u * p.unit_in;
    for (Segment s : p.in_segments) {
      const int64_t w = segment_width(c, n, s);
      // W [E, cols]: rows held x block b of the segment's columns.
      kernels::put_block(p.w_in, 0, col, src.read(models::layer_tensor(layer, tensor_of(s)), Box{{r0, b * w}, {rows, w}}));
      col += w;
    }
    int64_t row = u * p.unit_out;
    for (Segment s : p.out_segments) {
      const int64_t w = segment_width(c, n, s);
      // W [rows, E]: block b of the segment's rows x the E columns held.
      kernels::put_block(p.w_out, row, 0, src.read(models::layer_tensor(layer, tensor_of(s)), Box{{b * w, r0}, {w, rows}}));
      row += w;
    }
  }
  if (opt.format == kernels::WeightFormat::int8) {
    // W_in [E, cols]: each stored column block over all E rows.
    Tensor in_amax({U * p.unit_in}, kernels::DType::f32), out_amax({rows}, kernels::DType::f32);
    std::fill_n(in_amax.data<float>(), in_amax.numel(), 0.f);
    std::fill_n(out_amax.data<float>(), out_amax.numel(), 0.f);
    for (int64_t u = 0; u < U; ++u) {
      const int64_t b = pl.stored_units[size_t(u)];
      int64_t col = u * p.unit_in;
      for (Segment s : p.in_segments) {
        const int64_t w = segment_width(c, n, s);
        fold_stripe_amax(src, models::layer_tensor(layer, tensor_of(s)), c.d_model, b * w, w,
                         in_amax.data<float>() + col);
        col += w;
      }
    }
    // W_out [K, E] (W_o rows, then W_out rows): the E columns held, over all rows of every segment.
    for (Segment s : p.out_segments)
      fold_stripe_amax(src, models::layer_tensor(layer, tensor_of(s)), n * segment_width(c, n, s), r0, rows,
                       out_amax.data<float>());
    p.w_in_scales = kernels::int8_scales(in_amax);
    p.w_out_scales = kernels::int8_scales(out_amax);
  }
  if (opt.pack) {
    p.w_in_packed = kernels::pack_weight(p.w_in, opt.format, opt.backend, p.w_in_scales);
    p.w_out_packed = kernels::pack_weight(p.w_out, opt.format, opt.backend, p.w_out_scales);
  }
  return p;
}

}  // namespace

LayerShard load_layer_shard(const models::WeightSource& src, int64_t layer, const Placement& pl,
                            const ShardOptions& opt) {
  const auto& c = src.config();
  const bool gated = c.mlp != models::Mlp::gelu, ln = c.norm == models::Norm::layernorm;
  std::vector<Segment> ffn_in = gated ? std::vector<Segment>{Segment::w_in, Segment::w_gate}
                                       : std::vector<Segment>{Segment::w_in};
  LayerShard s;
  if (c.block == models::Block::parallel) {
    std::vector<Segment> ins = {Segment::q};
    ins.insert(ins.end(), ffn_in.begin(), ffn_in.end());
    s.projections.push_back(load_projection(src, layer, pl, ins, {Segment::o, Segment::w_out}, opt));
  } else {
    s.projections.push_back(load_projection(src, layer, pl, {Segment::q}, {Segment::o}, opt));
    s.projections.push_back(load_projection(src, layer, pl, ffn_in, {Segment::w_out}, opt));
  }
  const int64_t KD = c.n_kv_heads * c.d_head, rows = pl.stored_e_rows, r0 = pl.stored_e_offset;
  const std::string wk = models::layer_tensor(layer, "wk"), wv = models::layer_tensor(layer, "wv");
  if (factored(src, {wk, wv}, opt)) {
    s.w_kv_factors = with_scale_slots(join_factors({shard_factors(src, wk, Box{{r0, 0}, {rows, KD}}, pl),
                                                    shard_factors(src, wv, Box{{r0, 0}, {rows, KD}}, pl)},
                                                   1),
                                      opt);
    s.kv_floats = factor_floats(*s.w_kv_factors);
    if (opt.pack) s.w_kv_packed = kernels::pack_tsvd_weight(*s.w_kv_factors, opt.format, opt.backend);
  } else {
    check_int4_rows(opt, wk, r0, rows, pl);
    s.w_kv = Tensor({rows, 2 * KD}, kernels::DType::f32);
    kernels::put_block(s.w_kv, 0, 0, src.read(wk, Box{{r0, 0}, {rows, KD}}));
    kernels::put_block(s.w_kv, 0, KD, src.read(wv, Box{{r0, 0}, {rows, KD}}));
  }
  if (opt.format == kernels::WeightFormat::int8) {
    // W_k | W_v [E, 2KD]: every column over all E rows.
    Tensor amax({2 * KD}, kernels::DType::f32);
    std::fill_n(amax.data<float>(), amax.numel(), 0.f);
    fold_stripe_amax(src, models::layer_tensor(layer, "wk"), c.d_model, 0, KD, amax.data<float>());
    fold_stripe_amax(src, models::layer_tensor(layer, "wv"), c.d_model, 0, KD, amax.data<float>() + KD);
    s.w_kv_scales = kernels::int8_scales(amax);
  }
  if (opt.pack && !s.w_kv_factors) s.w_kv_packed = kernels::pack_weight(s.w_kv, opt.format, opt.backend, s.w_kv_scales);
  if (opt.tiles_for)
    for (size_t k = 0; k < s.projections.size(); ++k)
      build_overlap_blocks(s.projections[k], s, k == 0, pl.shape, *opt.tiles_for, opt);
  if (!opt.keep_plain) {  // the factors too: weight-gathered layouts gather them, the rest is packed
    s.w_kv = Tensor();
    s.w_kv_factors.reset();
    for (auto& p : s.projections) p.w_in = p.w_out = Tensor(), p.w_in_factors.reset(), p.w_out_factors.reset();
  }
  s.attn_norm_w = src.read_full(models::layer_tensor(layer, "attn_norm.weight"));
  if (ln) s.attn_norm_b = src.read_full(models::layer_tensor(layer, "attn_norm.bias"));
  if (c.block == models::Block::serial) {
    s.ffn_norm_w = src.read_full(models::layer_tensor(layer, "ffn_norm.weight"));
    if (ln) s.ffn_norm_b = src.read_full(models::layer_tensor(layer, "ffn_norm.bias"));
  }
  if (c.post_norms) {
    s.post_attn_norm_w = src.read_full(models::layer_tensor(layer, "post_attn_norm.weight"));
    s.post_ffn_norm_w = src.read_full(models::layer_tensor(layer, "post_ffn_norm.weight"));
    if (ln) s.post_attn_norm_b = src.read_full(models::layer_tensor(layer, "post_attn_norm.bias"));
    if (ln) s.post_ffn_norm_b = src.read_full(models::layer_tensor(layer, "post_ffn_norm.bias"));
  }
  if (c.qk_norm) {
    s.q_norm_w = src.read_full(models::layer_tensor(layer, "q_norm.weight"));
    s.k_norm_w = src.read_full(models::layer_tensor(layer, "k_norm.weight"));
  }
  return s;
}

collectives::EinsumWeights cut_einsum_factors(const collectives::TorusShape& shape, const MatmulChain& c,
                                              const kernels::TsvdFactors& w, const kernels::TsvdFactors* side,
                                              const ShardOptions& opt) {
  auto pack = [&opt](const kernels::TsvdFactors& f, int64_t r0, int64_t nr, int64_t c0, int64_t nc) {
    return kernels::pack_tsvd_weight(*factor_block(f, r0, nr, c0, nc), opt.format, opt.backend);
  };
  collectives::PackBlock side_block;
  if (side) side_block = [&](int64_t r0, int64_t nr, int64_t, int64_t) { return pack(*side, r0, nr, 0, side->n); };
  const int64_t kc = w.k / std::max(1, collectives::loop_plan(shape, c.gather).blocks);
  const int64_t nc = w.n / std::max(1, collectives::loop_plan(shape, c.scatter).blocks);
  if (kc % w.tile.rows || nc % w.tile.cols)
    throw InputError("--overlap: the looped einsum over gather " + c.gather.str() + " / scatter " + c.scatter.str() +
                     " on torus " + shape.str() + " cuts a TSVD weight [" + std::to_string(w.k) + ", " +
                     std::to_string(w.n) + "] into blocks [" + std::to_string(kc) + ", " + std::to_string(nc) +
                     "] that tile " + std::to_string(w.tile.rows) + "x" + std::to_string(w.tile.cols) +
                     " does not divide: compress with a smaller --tile, or run --overlap none");
  return collectives::cut_einsum_blocks(
      shape, c.gather, c.scatter, w.k, w.n,
      [&](int64_t r0, int64_t nr, int64_t c0, int64_t nc) { return pack(w, r0, nr, c0, nc); }, side_block,
      w.tile.rows, w.tile.cols);
}

void build_overlap_blocks(Projection& p, const LayerShard& layer, bool with_kv, const collectives::TorusShape& shape,
                          const ProjectionDataflow& f, const ShardOptions& opt) {
  if (p.w_in_factors) {
    if (with_kv && !layer.w_kv_factors) throw Error("build_overlap_blocks: factored W_in beside a dense W_kv");
    const kernels::TsvdFactors* side = with_kv ? &*layer.w_kv_factors : nullptr;
    p.in_tiles = cut_einsum_factors(shape, f.in, *p.w_in_factors, side, opt);
    p.out_tiles = cut_einsum_factors(shape, f.out, *p.w_out_factors, nullptr, opt);
    return;
  }
  const Tensor* w_kv = with_kv ? &layer.w_kv : nullptr;
  // int8: every tile quantises with its columns' whole-K scales (undefined for f32/bf16).
  // [BL, E_xyz] --gather(in) @ W_in, scatter(in)--> [BL, unit g], side W_kv all-reduced over in.scatter
  p.in_tiles = collectives::cut_einsum_weights(shape, f.in.gather, f.in.scatter, p.w_in, w_kv ? *w_kv : Tensor(),
                                               opt.format, opt.backend, collectives::kEinsumPieces, p.w_in_scales,
                                               w_kv ? layer.w_kv_scales : Tensor());
  // [BL, unit_out g] --gather(out) @ W_out, scatter(out)--> [BL, E_xyz]
  p.out_tiles = collectives::cut_einsum_weights(shape, f.out.gather, f.out.scatter, p.w_out, Tensor(), opt.format,
                                                opt.backend, collectives::kEinsumPieces, p.w_out_scales);
}

}  // namespace tori::runtime
