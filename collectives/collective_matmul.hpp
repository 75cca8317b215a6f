#pragma once
// Looped CollectiveEinsum (Wang et al., 2023; PAPER.md "Low-level techniques"): an all-gather
// followed by a matmul, or a matmul followed by a reduce-scatter, rewritten as a loop over the ring
// of one torus axis. Each step multiplies the chunk at hand while the next chunk travels to the
// neighbour (start_ppermute on the progress thread), so the transfer hides behind the compute.
//
//   all_gather_matmul     y [M, N] = all_gather(x, -1, axis) @ W      x: [M, K/G], my K-chunk
//                         Σ over ring steps s of chunk(c - s) @ W[rows of chunk c - s]
//   matmul_reduce_scatter y [M, N/G] = reduce_scatter(x @ W, -1, axis)  x: [M, K]
//                         at step s compute block c-s-1 of x @ W, add the partial sum that
//                         arrived, pass it on; after G-1 passes block c is complete here
//
// The contraction (all-gather) and the reduce-scatter are over E or F, never B or L, as the paper
// advises. Bidirectional variants split x's rows in two and run one ring each way, halving the
// bytes per link per step (M < 2 falls back to one direction). Traffic is counted as ppermute:
// the same bytes a ring all-gather / reduce-scatter would send. The blocks of W are packed once,
// at load time: w_blocks[j] holds the rows (all_gather_matmul) or columns (matmul_reduce_scatter)
// that go with shard j of the axis.
#include <span>
#include <string>

#include "collectives/collectives.hpp"
#include "kernels/packed_weight.hpp"

namespace tori::collectives {

enum class Overlap { none, looped, looped_bidir };
std::string overlap_name(Overlap o);
// Parses none|looped|looped-bidir; throws InputError naming `flag` and the allowed values.
Overlap parse_overlap(const std::string& s, const std::string& flag = "--overlap");

kernels::Tensor all_gather_matmul(Collectives& coll, const kernels::Tensor& x, Axis axis,
                                  std::span<const kernels::PackedWeight> w_blocks, bool bidirectional);

kernels::Tensor matmul_reduce_scatter(Collectives& coll, const kernels::Tensor& x, Axis axis,
                                      std::span<const kernels::PackedWeight> w_blocks, bool bidirectional);

// How a collective over several axes is looped: the outermost axis (x, y, z order) with more than
// one rank is looped over, and the axes inside it are gathered / scattered plainly — before the
// loop for an all-gather, after it for a reduce-scatter — which keeps every block contiguous in
// shard order. blocks = ranks along the loop axis (1: nothing to loop over, a plain matmul).
struct LoopPlan {
  Axis loop = Axis::x;
  Axes inner;
  int blocks = 1;
};
LoopPlan loop_plan(const TorusShape& shape, Axes axes);

// The compositions over an axis set: y = all_gather(x, -1, axes) @ W and
// y = reduce_scatter(x @ W, -1, axes), with W cut per loop_plan(axes).blocks.
kernels::Tensor all_gather_matmul(Collectives& coll, const kernels::Tensor& x, Axes axes,
                                  std::span<const kernels::PackedWeight> w_blocks, bool bidirectional);
kernels::Tensor matmul_reduce_scatter(Collectives& coll, const kernels::Tensor& x, Axes axes,
                                      std::span<const kernels::PackedWeight> w_blocks, bool bidirectional);

}  // namespace tori::collectives
