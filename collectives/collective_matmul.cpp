#include "collectives/collective_matmul.hpp"

#include <algorithm>

#include "collectives/ring_schedule.hpp"
#include "kernels/activations.hpp"
#include "kernels/columns.hpp"
#include "kernels/divide.hpp"
#include "kernels/error.hpp"
#include "kernels/matmul.hpp"
#include "kernels/take.hpp"

namespace tori::collectives {

using kernels::Tensor;

std::string overlap_name(Overlap o) {
  switch (o) {
    case Overlap::none: return "none";
    case Overlap::looped: return "looped";
    case Overlap::looped_bidir: return "looped-bidir";
  }
  return "?";
}

Overlap parse_overlap(const std::string& s, const std::string& flag) {
  if (s == "none") return Overlap::none;
  if (s == "looped") return Overlap::looped;
  if (s == "looped-bidir") return Overlap::looped_bidir;
  throw InputError(flag + ": '" + s + "' (allowed: none, looped, looped-bidir)");
}

LoopPlan loop_plan(const TorusShape& shape, Axes axes) {
  LoopPlan p;
  bool found = false;
  for (Axis a : axes.list()) {
    if (found) {
      p.inner = p.inner | Axes(a);
    } else if (shape[a] > 1) {
      p.loop = a;
      p.blocks = shape[a];
      found = true;
    }
  }
  return p;
}

int64_t EinsumWeights::weight_bytes() const {
  int64_t b = 0;
  for (const auto* v : {&tiles, &side})
    for (const auto& w : *v) b += w.weight_bytes();
  return b;
}

EinsumWeights cut_einsum_blocks(const TorusShape& shape, Axes gather, Axes scatter, int64_t k, int64_t n,
                                const PackBlock& block, const PackBlock& side, int64_t k_align, int64_t n_align,
                                int max_pieces) {
  EinsumWeights e;
  e.gather = gather;
  e.scatter = scatter;
  e.gather_blocks = loop_plan(shape, gather).blocks;
  e.scatter_blocks = loop_plan(shape, scatter).blocks;
  e.k = k;
  e.n = n;
  const int64_t kc = divide(e.k, e.gather_blocks, "rows of the einsum weight over gather " + gather.str());
  const int64_t nc = divide(e.n, e.scatter_blocks, "columns of the einsum weight over scatter " + scatter.str());
  const bool gl = e.gather_blocks > 1, sl = e.scatter_blocks > 1;
  if (kc % k_align || nc % n_align)
    throw Error("einsum blocks [" + std::to_string(kc) + ", " + std::to_string(nc) + "] are not multiples of [" +
                std::to_string(k_align) + ", " + std::to_string(n_align) + "]");
  if (gl || sl)
    for (int p = std::max(1, max_pieces); p >= 1; --p)
      if ((!gl || (kc % p == 0 && (kc / p) % k_align == 0)) && (!sl || (nc % p == 0 && (nc / p) % n_align == 0))) {
        e.pieces = p;
        break;
      }
  e.k_tiles = gl ? e.gather_blocks * e.pieces : 1;
  e.n_tiles = sl ? e.scatter_blocks * e.pieces : 1;
  const int64_t kt = e.k / e.k_tiles, nt = e.n / e.n_tiles;
  for (int kk = 0; kk < e.k_tiles; ++kk) {
    for (int nn = 0; nn < e.n_tiles; ++nn) e.tiles.push_back(block(kk * kt, kt, nn * nt, nt));
    if (side) e.side.push_back(side(kk * kt, kt, 0, 0));
  }
  return e;
}

EinsumWeights cut_einsum_weights(const TorusShape& shape, Axes gather, Axes scatter, const Tensor& w,
                                 const Tensor& side, kernels::WeightFormat format, kernels::Backend backend,
                                 int max_pieces, const Tensor& scales, const Tensor& side_scales, bool transient) {
  const int64_t N = w.size(1);
  // The scales of columns [n0, n0 + len) (undefined when none were given).
  auto scale_tile = [&](int64_t n0, int64_t len) {
    if (!scales.defined() || (n0 == 0 && len == N)) return scales;
    return kernels::slice_columns(scales.reshape({1, N}), n0, len).reshape({len});
  };
  // Row blocks are contiguous views (narrow0), packed without a copy; column tiles are copied out
  // (transient: f32 on oneDNN reads both where they lie, kernels/packed_weight.hpp).
  auto pack = [&](const Tensor& rows, int64_t n0, int64_t len, const Tensor& tile_scales) {
    return transient ? kernels::pack_transient_weight(rows, format, backend, tile_scales, n0, len)
                     : kernels::pack_weight_columns(rows, format, backend, tile_scales, n0, len);
  };
  PackBlock block = [&](int64_t r0, int64_t nr, int64_t c0, int64_t nc) {
    return pack(w.narrow0(r0, nr), c0, nc, scale_tile(c0, nc));
  };
  PackBlock side_block;
  if (side.defined())
    side_block = [&](int64_t r0, int64_t nr, int64_t, int64_t) {
      const Tensor side_rows = side.narrow0(r0, nr);
      return pack(side_rows, 0, side_rows.size(1), side_scales);
    };
  // int4: row pieces hold whole groups of rows (kernels::k_granule).
  const int64_t kg = kernels::k_granule(format), kc = w.size(0) / loop_plan(shape, gather).blocks;
  if (kc % kg != 0)
    throw InputError("--dtype " + std::string(kernels::weight_format_name(format)) + ": the looped einsum cuts the " +
                     std::to_string(w.size(0)) + " rows of its weight into blocks of " + std::to_string(kc) + " over " +
                     gather.str() + ", not whole groups of " + std::to_string(kg) +
                     " rows (use --overlap none, fewer ranks, or --dtype int8)");
  return cut_einsum_blocks(shape, gather, scatter, w.size(0), N, block, side_block, kg, 1, max_pieces);
}

EinsumResult collective_einsum(Collectives& coll, const Tensor& x, const EinsumWeights& w, bool bidirectional) {
  const TorusShape& shape = coll.torus().shape();
  const LoopPlan g = loop_plan(shape, w.gather), r = loop_plan(shape, w.scatter);
  if (g.blocks != w.gather_blocks || r.blocks != w.scatter_blocks)
    throw Error("collective_einsum: weights cut for " + std::to_string(w.gather_blocks) + " x " +
                std::to_string(w.scatter_blocks) + " loop blocks, torus " + shape.str() + " has " +
                std::to_string(g.blocks) + " x " + std::to_string(r.blocks));
  if (x.rank() != 2 || x.dtype() != kernels::DType::f32)
    throw Error("collective_einsum: x must be f32 [M, K], got " + kernels::shape_str(x.shape()));
  // [M, K/|gather|] --all_gather(inner gather axes)--> [M, K/Gg]: my block along the loop axis
  const Tensor xin = g.inner.empty() ? x : coll.all_gather(x, -1, g.inner);
  const int Gg = w.gather_blocks, Gs = w.scatter_blocks, P = w.pieces;
  if (xin.size(1) * Gg != w.k)
    throw Error("collective_einsum: x " + kernels::shape_str(x.shape()) + " gathered over " + w.gather.str() +
                " does not give the weight's " + std::to_string(w.k) + " rows");
  const bool two_way = bidirectional && P >= 2;
  auto dir = [&](int p) { return two_way && p % 2 == 1 ? -1 : 1; };
  const int cg = Gg > 1 ? coll.torus().coord(g.loop) : 0, cs = Gs > 1 ? coll.torus().coord(r.loop) : 0;

  // The output tiles the gather loop computes: all of W's columns without a scatter loop; with one
  // and a gather loop, the tiles the scatter ring sends at step 0 (block cs - dir); else none.
  std::vector<int> first_cols;
  if (Gs == 1) first_cols = {0};
  else if (Gg > 1)
    for (int q = 0; q < P; ++q) first_cols.push_back(wrap(cs - dir(q), Gs) * P + q);
  std::vector<Tensor> acc(first_cols.size()), got(size_t(w.k_tiles));
  Tensor side_acc;
  // Multiply K-piece k into the tiles of first_cols (and the side product), accumulating.
  auto multiply = [&](int k) {
    for (size_t i = 0; i < first_cols.size(); ++i)
      kernels::matmul(got[size_t(k)], w.tile(k, first_cols[i]), acc[i], {1.f, acc[i].defined()});
    if (!w.side.empty()) kernels::matmul(got[size_t(k)], w.side[size_t(k)], side_acc, {1.f, side_acc.defined()});
  };

  // ---- gather loop over g.loop: piece p of member cg - dir·s arrives at step s ----
  if (Gg == 1) {
    got[0] = xin;
    multiply(0);
  } else {
    const int64_t kp = xin.size(1) / P;
    std::vector<Pending> next(static_cast<size_t>(P));
    // step 0: send my pieces on their way, and multiply them meanwhile
    for (int p = 0; p < P; ++p) {
      Tensor& mine = got[size_t(cg * P + p)];
      mine = P == 1 ? xin : kernels::slice_columns(xin, p * kp, kp);
      next[size_t(p)] = coll.start_ppermute(mine, g.loop, dir(p));
    }
    for (int p = 0; p < P; ++p) multiply(cg * P + p);
    // step s: forward each arrived piece at once, then multiply it
    for (int s = 1; s < Gg; ++s)
      for (int p = 0; p < P; ++p) {
        const int k = wrap(cg - dir(p) * s, Gg) * P + p;
        got[size_t(k)] = next[size_t(p)].wait();
        if (s < Gg - 1) next[size_t(p)] = coll.start_ppermute(got[size_t(k)], g.loop, dir(p));
        multiply(k);
      }
  }
  EinsumResult out;
  // [M, N_side]{partial scatter} --all_reduce(scatter)--> travels while the scatter loop computes
  if (!w.side.empty()) out.side = coll.start_all_reduce(side_acc, w.scatter);
  if (Gs == 1) {
    out.y = acc[0];
    return out;
  }

  // ---- scatter loop over r.loop: at step s tile q of block cs - dir·(s+1), plus what arrived ----
  std::vector<Pending> next(static_cast<size_t>(P));
  std::vector<Tensor> done(static_cast<size_t>(P));
  for (int s = 0; s < Gs; ++s)
    for (int q = 0; q < P; ++q) {
      Tensor t;
      if (s == 0 && Gg > 1) {
        t = acc[size_t(q)];  // computed in the gather loop
      } else {
        const int n = wrap(cs - dir(q) * (s + 1), Gs) * P + q;
        for (int k = 0; k < w.k_tiles; ++k) kernels::matmul(got[size_t(k)], w.tile(k, n), t, {1.f, k > 0});
      }
      if (s > 0) kernels::add(t, next[size_t(q)].wait(), t);
      if (s < Gs - 1) next[size_t(q)] = coll.start_ppermute(t, r.loop, dir(q));
      else done[size_t(q)] = t;  // after Gs - 1 passes: tile q of my block, complete
    }
  Tensor y = done[0];
  if (P > 1) {
    // the P column tiles side by side: [M, N/Gs]
    const int64_t M = y.size(0), nt = y.size(1);
    y = Tensor::empty({M, nt * P}, kernels::DType::f32);  // every tile is written below
    for (int q = 0; q < P; ++q) kernels::put_block(y, 0, q * nt, done[size_t(q)]);
  }
  // [M, N/Gs]{partial inner} --reduce_scatter(inner scatter axes)--> [M, N/|scatter|]
  out.y = r.inner.empty() ? y : coll.reduce_scatter(y, -1, r.inner);
  return out;
}

}  // namespace tori::collectives
