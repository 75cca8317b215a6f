#pragma once
// Looped CollectiveEinsum (Wang et al., 2023; docs/paper.md "Low-level techniques"): a matmul between an
// all-gather of its input and a reduce-scatter of its output,
//     y [M, N/Gs] = reduce_scatter(all_gather(x, -1, gather) @ W, -1, scatter)      x: [M, K/Gg]
// (either collective may be absent: gather or scatter = none), rewritten as loops over the rings
// of one torus axis each, so that every transfer travels while a matmul computes:
//
//   gather loop   my K-chunk is cut into P pieces along K; each piece is sent round the ring
//                 (start_ppermute) and multiplied as soon as it arrives, while the next travels.
//                 With a scatter to follow, only the output block the scatter ring sends first is
//                 computed here; the arriving pieces are kept.
//   scatter loop  at step s compute block c - s - 1 of the output (P column tiles, each its own
//                 partial sum), add the partial sum that arrived, pass it on; after Gs - 1 passes
//                 each tile of block c is complete here. Step 0's block came from the gather loop.
//
// So ws2d's input projection (gather yz, scatter x) hides its yz all-gather behind the first
// block's matmul and its x reduce-scatter behind the rest, instead of running the x collective
// plainly. P pieces per ring step (kEinsumPieces) pipeline each step's transfer: the first piece
// is being multiplied while the others are still on the link, which matters most on a ring of 2
// (a single transfer per collective). Pieces cut K (gather) or N (scatter), never the rows M, so
// no weight is read twice (decode is weight-bandwidth-bound).
//
// Bidirectional (looped-bidir): odd pieces travel the ring the other way, so both directions of
// every link carry half the bytes (needs P >= 2).
//
// Side output: a second weight W_side [K, N_side] whose product with the gathered input is
// all-reduced over the scatter axes (ws2d's K/V projection, partial over x): it is computed in the
// gather loop and its all-reduce starts at once, travelling while the scatter loop computes.
//
// Several axes: the outermost axis (x, y, z order) with more than one rank is looped, the axes
// inside it are gathered plainly before the loop (scattered plainly after it), which keeps every
// block contiguous in shard order. Traffic is counted as ppermute: the same bytes a ring
// all-gather / reduce-scatter would send (plus the side all-reduce). The contraction and the
// reduce-scatter are over E or F, never B or L, as the paper advises.
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "collectives/collectives.hpp"
#include "kernels/packed_weight.hpp"

namespace tori::collectives {

enum class Overlap { none, looped, looped_bidir };
std::string overlap_name(Overlap o);
// Parses none|looped|looped-bidir; throws InputError naming `flag` and the allowed values.
Overlap parse_overlap(const std::string& s, const std::string& flag = "--overlap");

// Pieces per ring step (at most; fewer when the dimension cut does not divide). Four keeps each
// matmul tile large enough for the GEMM to run near its rate at the model sizes we bench
// (docs/measurements/overlap.md) while exposing at most about one piece's transfer per loop.
inline constexpr int kEinsumPieces = 4;

// How a collective over several axes is looped: the outermost axis (x, y, z order) with more than
// one rank is looped over, and the axes inside it are gathered / scattered plainly — before the
// loop for an all-gather, after it for a reduce-scatter — which keeps every block contiguous in
// shard order. blocks = ranks along the loop axis (1: nothing to loop over).
struct LoopPlan {
  Axis loop = Axis::x;
  Axes inner;
  int blocks = 1;
};
LoopPlan loop_plan(const TorusShape& shape, Axes axes);

// W cut into tiles once (at load for weight-stationary layouts): rows into k_tiles = Gg·P pieces
// (1 without a gather loop), columns into n_tiles = Gs·P (1 without a scatter loop), Gg and Gs the
// loop_plan blocks. tiles[k·n_tiles + n] = W[rows k, columns n]; side[k] = W_side[rows k] (empty
// without a side weight).
struct EinsumWeights {
  Axes gather, scatter;
  int gather_blocks = 1, scatter_blocks = 1, pieces = 1, k_tiles = 1, n_tiles = 1;
  int64_t k = 0, n = 0;  // rows and columns of W
  std::vector<kernels::PackedWeight> tiles, side;
  const kernels::PackedWeight& tile(int k, int n_index) const { return tiles[size_t(k * n_tiles + n_index)]; }
  bool defined() const { return !tiles.empty(); }
  int64_t weight_bytes() const;
};
// w: [K, N] f32 (K = all gathered columns of x), side: [K, N_side] or undefined. Pieces: the
// largest P <= max_pieces dividing K/Gg and N/Gs (with a loop on that side); bidirectional needs
// P >= 2 and falls back to one direction when no such P divides.
// int8: scales [N] and side_scales [N_side] are the columns' scales over the whole weight
// (kernels/quantize.hpp), sliced for each tile, so every tile quantises as the whole weight does;
// undefined: each tile quantises on its own maxima (and f32/bf16 ignore them).
// transient: the weights serve one step (weight-gathered layouts): tiles are
// kernels::pack_transient_weight views where the format allows, instead of packed copies.
EinsumWeights cut_einsum_weights(const TorusShape& shape, Axes gather, Axes scatter, const kernels::Tensor& w,
                                 const kernels::Tensor& side, kernels::WeightFormat format, kernels::Backend backend,
                                 int max_pieces = kEinsumPieces, const kernels::Tensor& scales = kernels::Tensor(),
                                 const kernels::Tensor& side_scales = kernels::Tensor(), bool transient = false);

// The same cut for a weight held in another form than a dense tensor (a factored TSVD weight:
// runtime/layer_shards.hpp): block(r0, nr, c0, nc) packs W's rows [r0, r0 + nr) × columns
// [c0, c0 + nc), side(r0, nr) W_side's rows (empty function: no side weight). The pieces also keep
// every tile's rows a multiple of k_align and its columns of n_align (the factored weight's tile);
// throws tori::Error when even one piece per ring step does not.
using PackBlock = std::function<kernels::PackedWeight(int64_t r0, int64_t nr, int64_t c0, int64_t nc)>;
EinsumWeights cut_einsum_blocks(const TorusShape& shape, Axes gather, Axes scatter, int64_t k, int64_t n,
                                const PackBlock& block, const PackBlock& side, int64_t k_align = 1,
                                int64_t n_align = 1, int max_pieces = kEinsumPieces);

struct EinsumResult {
  kernels::Tensor y;  // [M, N / |scatter|]
  Pending side;       // [M, N_side], all-reduced over scatter (invalid without a side weight)
};
// y = reduce_scatter(all_gather(x, -1, w.gather) @ W, -1, w.scatter), side as above; x: f32
// [M, K / |gather|]. Equal to the plain forms up to f32 summation order.
EinsumResult collective_einsum(Collectives& coll, const kernels::Tensor& x, const EinsumWeights& w, bool bidirectional);

}  // namespace tori::collectives
