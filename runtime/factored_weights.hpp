#pragma once
// Factored (TSVD) weights as a rank holds them: kernels::TsvdFactors grids cut and joined along
// tile boundaries, so a shard assembled from boxes of several tensors (a projection's units and
// segments, W_k | W_v, zero padding) is one tile grid that kernels::pack_tsvd_weight packs and
// tsvd_matmul multiplies (nK + nN GEMMs for the whole shard). Pure tile bookkeeping, no MPI.
// Tile (i, j) of a grid of nK × nN tiles is entry i·nN + j (kernels/tsvd.hpp).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kernels/tsvd.hpp"
#include "models/weight_source.hpp"

namespace tori::runtime {

// The grids of `parts` side by side (dim 1: equal rows) or stacked (dim 0: equal columns), all of
// one tile shape.
kernels::TsvdFactors join_factors(const std::vector<kernels::TsvdFactors>& parts, int dim);

// A zero [k, n] weight as a grid of rank-1 tiles with zero factors (padding: zero heads, F, V):
// k and n multiples of the tile. Its product is exactly zero.
kernels::TsvdFactors zero_factors(int64_t k, int64_t n, kernels::TileShape tile);

// Rows [r0, r0 + nr) × columns [c0, c0 + nc) of f's grid; nullopt unless they are whole tiles.
std::optional<kernels::TsvdFactors> factor_block(const kernels::TsvdFactors& f, int64_t r0, int64_t nr, int64_t c0,
                                                 int64_t nc);

// The all-gather form of a grid (weight_prefetch.hpp gathers factors, not products): [1, floats]
// f32, the tiles' ranks, then every tile's U, then every tile's V, in tile order, then (int8
// factors: f.v_scale not empty) every tile's V scales [T_n] (zero where undefined: padding),
// zero-padded to `floats` (>= factor_floats(f): the members of a gather send equal lengths).
int64_t factor_floats(const kernels::TsvdFactors& f);
kernels::Tensor flatten_factors(const kernels::TsvdFactors& f, int64_t floats);
// The inverse, for a grid of [k, n] in `tile` (the ranks are in the data; v_scales: the V scales too).
kernels::TsvdFactors unflatten_factors(const float* data, int64_t k, int64_t n, kernels::TileShape tile,
                                       bool v_scales = false);

// A TSVD checkpoint as the memory and cost models price it, without reading factors: per
// compressed tensor kind (wq, wk, wv, wo, w_in, w_gate, w_out) the factors' numbers per dense
// element, Σ r·(T_k + T_n) / (K·N) over the layers (1/ratio). A factored [k, n] shard then stores
// density·k·n numbers and x·W costs 2·M·density·k·n FLOPs (exact when a kind's ranks are uniform,
// as --ratio makes them; per-tile ranks are priced at their mean; padding's zero tiles, rank 1, are
// not counted). A weight runs factored when every tensor it joins is compressed (layer_shards.hpp).
struct TsvdPricing {
  kernels::TileShape tile;
  std::map<std::string, double> density;
  bool int8 = false;  // int8 factors (every compressed tensor's): int8 runs multiply them too
  bool factored(const std::vector<std::string>& kinds) const;
  // Numbers stored for rows × (Σ cols of each kind): density-weighted.
  double stored(int64_t rows, const std::vector<std::pair<std::string, int64_t>>& kind_cols) const;
};
// nullopt for a source without compressed tensors.
std::optional<TsvdPricing> tsvd_pricing(const models::WeightSource& src);

// Whether a run of weight format f multiplies a TSVD checkpoint's factors: f32 and bf16 always
// (packed as such), int8 when the factors are stored int8 (int8_factors: packed back to the stored
// q and per-column scales, TsvdFactors::v_scale). Otherwise (int8 on f32/bf16 factors, whose V
// scales would need every row block of the weight; int4) the run multiplies the dense product U·V
// per tile, quantised as a dense weight.
inline bool runs_factors(kernels::WeightFormat f, bool int8_factors) {
  return f == kernels::WeightFormat::f32 || f == kernels::WeightFormat::bf16 ||
         (f == kernels::WeightFormat::int8 && int8_factors);
}
// The pricing of a run of format f on src: tsvd_pricing when the run multiplies the factors
// (runs_factors), else nullopt (dense weights: the product U·V, priced as dense).
std::optional<TsvdPricing> run_pricing(const models::WeightSource& src, kernels::WeightFormat f);

// Whether [start, start + size) is made of whole tiles of size t.
inline bool whole_tiles(int64_t start, int64_t size, int64_t t) { return t > 0 && start % t == 0 && size % t == 0; }

}  // namespace tori::runtime
