#include "runtime/weight_prefetch.hpp"

#include "kernels/matmul.hpp"
#include "kernels/take.hpp"
#include "runtime/factored_weights.hpp"

namespace tori::runtime {

using collectives::Axes;
using kernels::Tensor;

namespace {

// g: the |A| members' [r, c] tensors stacked along rows (member-major). Places member m =
// (x_m, j_m) at row block x_m and column block j_m of the result (x_on_rows), or the transpose.
Tensor place_blocks(const Tensor& g, int members, int nx, bool x_on_rows) {
  const BlockGrid grid = gathered_grid(members, nx, x_on_rows);
  // One column block (wg_x's W_in, wg_xy's W_out on a 1-long x...): already in place.
  if (grid.col_blocks == 1) return g;
  const int nj = members / nx;
  const int64_t r = g.size(0) / members, c = g.size(1);
  Tensor out = Tensor::empty({grid.row_blocks * r, grid.col_blocks * c}, kernels::DType::f32);  // all written below
  for (int m = 0; m < members; ++m) {
    const int xm = m / nj, jm = m % nj;
    kernels::put_block(out, (x_on_rows ? xm : jm) * r, (x_on_rows ? jm : xm) * c, g.narrow0(m * r, r));
  }
  return out;
}

}  // namespace

Tensor gathered_matmul(const Tensor& x, const Tensor& g, int members, int nx, bool x_on_rows) {
  const int nj = members / nx;
  const int64_t r = g.size(0) / members, c = g.size(1);
  const auto [row_blocks, col_blocks] = gathered_grid(members, nx, x_on_rows);
  const int64_t K = row_blocks * r, N = col_blocks * c;
  if (x.rank() != 2 || x.size(1) != K || x.dtype() != kernels::DType::f32)
    throw Error("gathered_matmul: x must be f32 [M, " + std::to_string(K) + "], got " + kernels::shape_str(x.shape()));
  Tensor y;
  if (col_blocks == 1) {  // one column block: the gather already left the blocks in place
    kernels::matmul(x, kernels::pack_transient_weight(g, kernels::WeightFormat::f32, kernels::Backend::onednn, Tensor()), y);
    return y;
  }
  const int64_t M = x.size(0);
  y = Tensor::empty({M, N}, kernels::DType::f32);  // every column block is written by its first row block
  for (int cb = 0; cb < col_blocks; ++cb)
    for (int rb = 0; rb < row_blocks; ++rb) {
      const int m = x_on_rows ? rb * nj + cb : cb * nj + rb;  // member (x_m, j_m) = m / nj, m % nj
      const kernels::PackedWeight w =
          kernels::pack_transient_weight(g.narrow0(m * r, r), kernels::WeightFormat::f32, kernels::Backend::onednn, Tensor());
      kernels::matmul_strided(x.data<float>() + rb * r, K, M, w, y.data<float>() + cb * c, N, {1.f, rb > 0});
    }
  return y;
}

void WeightPrefetch::start_layer(int64_t layer) {
  if (layer >= static_cast<int64_t>(layers_.size())) return;
  for (int p = 0; p < static_cast<int>(layers_[size_t(layer)].projections.size()); ++p) start(layer, p);
}

void WeightPrefetch::start(int64_t layer, int proj) {
  if (layer >= static_cast<int64_t>(layers_.size()) || started_.count({layer, proj})) return;
  const LayerShard& l = layers_[size_t(layer)];
  const Projection& p = l.projections.at(size_t(proj));
  Started s;
  // Factored: [1, floats] per member --all_gather(A) rows--> [members, floats] (W_kv: over x).
  const bool f = p.w_in_factors.has_value();
  s.w_in = coll_.start_all_gather(f ? flatten_factors(*p.w_in_factors, p.in_floats) : p.w_in, 0, pl_.batch_axes);
  s.w_out = coll_.start_all_gather(f ? flatten_factors(*p.w_out_factors, p.out_floats) : p.w_out, 0, pl_.batch_axes);
  if (proj == 0)
    s.w_kv = coll_.start_all_gather(l.w_kv_factors ? flatten_factors(*l.w_kv_factors, l.kv_floats) : l.w_kv, 0, Axes::x);
  if (p.w_in_scales.defined()) {
    // [1, X units] and [1, E_x] per member --all_gather(A) rows--> [members, ·]
    s.w_in_scales = coll_.start_all_gather(p.w_in_scales.reshape({1, p.w_in_scales.numel()}), 0, pl_.batch_axes);
    s.w_out_scales = coll_.start_all_gather(p.w_out_scales.reshape({1, p.w_out_scales.numel()}), 0, pl_.batch_axes);
  }
  started_.emplace(std::make_pair(layer, proj), std::move(s));
}

GatheredBlocks WeightPrefetch::take_blocks(LayerRef at) {
  if (ahead_ && at.proj == 0) {
    start_layer(at.layer);
    start_layer(at.layer + 1);
  }
  start(at.layer, at.proj);
  auto it = started_.find({at.layer, at.proj});
  Started s = std::move(it->second);
  started_.erase(it);
  GatheredBlocks b;
  b.members = pl_.shape.group_size(pl_.batch_axes), b.nx = pl_.shape[collectives::Axis::x];
  b.w_in = s.w_in.wait();
  b.w_out = s.w_out.wait();
  if (s.w_kv.valid()) b.w_kv = s.w_kv.wait();
  if (s.w_in_scales.valid()) b.w_in_scales = s.w_in_scales.wait(), b.w_out_scales = s.w_out_scales.wait();
  return b;
}

bool WeightPrefetch::factored(LayerRef at) const {
  return layers_[size_t(at.layer)].projections.at(size_t(at.proj)).w_in_factors.has_value();
}

namespace {

// The members' flattened grids g [members, floats], each [k, n] in `tile`, joined as place_blocks
// places dense blocks (member (x_m, j_m) at grid row x_m, column j_m when x_on_rows).
kernels::TsvdFactors place_factors(const Tensor& g, int members, int nx, bool x_on_rows,
                                   const kernels::TsvdFactors& own) {
  const int64_t k = own.k, n = own.n;
  const bool v_scales = !own.v_scale.empty();  // int8: every member's grid carries them (layer_shards.cpp)
  const BlockGrid grid = gathered_grid(members, nx, x_on_rows);
  const int nj = members / nx;
  std::vector<kernels::TsvdFactors> rows;
  for (int rb = 0; rb < grid.row_blocks; ++rb) {
    std::vector<kernels::TsvdFactors> cols;
    for (int cb = 0; cb < grid.col_blocks; ++cb) {
      const int m = x_on_rows ? rb * nj + cb : cb * nj + rb;  // member (x_m, j_m) = m / nj, m % nj
      cols.push_back(unflatten_factors(g.data<float>() + int64_t(m) * g.size(1), k, n, own.tile, v_scales));
    }
    rows.push_back(join_factors(cols, 1));
  }
  return join_factors(rows, 0);
}

}  // namespace

GatheredWeights WeightPrefetch::take(LayerRef at) {
  const GatheredBlocks b = take_blocks(at);
  const int members = b.members, nx = b.nx;
  GatheredWeights w;
  const LayerShard& l = layers_[size_t(at.layer)];
  const Projection& p = l.projections.at(size_t(at.proj));
  if (p.w_in_factors) {
    const kernels::TsvdFactors &in = *p.w_in_factors, &out = *p.w_out_factors;
    w.w_in_factors = place_factors(b.w_in, members, nx, true, in);
    w.w_out_factors = place_factors(b.w_out, members, nx, false, out);
    if (b.w_kv.defined())  // every x member's [E_x, 2KD] stacked: a grid of nx × 1 members
      w.w_kv_factors = place_factors(b.w_kv, nx, nx, true, *l.w_kv_factors);
    return w;
  }
  w.w_in = place_blocks(b.w_in, members, nx, true);     // [E, units]: x on rows
  w.w_out = place_blocks(b.w_out, members, nx, false);  // [units_out, E]: x on columns
  w.w_kv = b.w_kv;
  if (b.w_in_scales.defined()) {
    // Placed like the weights, one row per member: row 0 holds [units] (x = 0, every j) and
    // [E] (every x, j = 0).
    Tensor in = place_blocks(b.w_in_scales, members, nx, true);
    Tensor out = place_blocks(b.w_out_scales, members, nx, false);
    w.w_in_scales = in.narrow0(0, 1).clone().reshape({in.size(1)});
    w.w_out_scales = out.narrow0(0, 1).clone().reshape({out.size(1)});
    if (w.w_kv.defined()) w.w_kv_scales = layers_[size_t(at.layer)].w_kv_scales;
  }
  return w;
}

}  // namespace tori::runtime
