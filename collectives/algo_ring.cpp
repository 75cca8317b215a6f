// The ring algorithms (one-way here; algo_bidir.cpp reuses this driver with two lanes): a
// collective over an axis set runs as one ring stage per torus axis, in the order ring_plan.hpp
// gives, each stage exchanging only with the two neighbours on that axis (ring_stage.cpp).
#include "collectives/algo_ring_family.hpp"
#include "collectives/layout.hpp"
#include "collectives/ring_stage.hpp"

namespace tori::collectives {

void RingFamilyAlgorithm::all_gather(const Group& g, std::byte* buf, int64_t chunk,
                                     size_t elem_bytes, const CallContext& ctx) const {
  std::vector<RingCoord> rings = g.ring_coords();
  // Innermost axis first: each stage's gathered region is one block of the next stage.
  for (const Stage& stage : plan_all_gather(rings, chunk, split_))
    run_all_gather_stage(g.rings[static_cast<size_t>(stage.ring)], stage, buf, elem_bytes, ctx);
}

void RingFamilyAlgorithm::reduce_scatter(const Group& g, const float* in, float* out,
                                         int64_t chunk, const CallContext& ctx) const {
  std::vector<RingCoord> rings = g.ring_coords();
  std::vector<Stage> plan = plan_reduce_scatter(rings, chunk, split_);
  // Partial sums live in `work` (indexed like `in`); a single stage on a 2-member ring needs none,
  // since its only step adds straight into `out`.
  float* work = nullptr;
  if (plan.size() > 1 || rings.front().size > 2)
    work = ctx.scratch->get_as<float>(Scratch::work, static_cast<size_t>(g.size * chunk));
  // Outermost axis first: each stage leaves this rank its block, which the next stage splits.
  for (size_t k = 0; k < plan.size(); ++k) {
    const Stage& stage = plan[k];
    const RingLink& ring = g.rings[static_cast<size_t>(stage.ring)];
    const float* src = k == 0 ? in : work;
    float* final = k + 1 == plan.size()
                       ? out
                       : work + stage.blocks[static_cast<size_t>(ring.coord.index)].offset;
    run_reduce_scatter_stage(ring, stage, src, work, final, ctx);
  }
}

void RingFamilyAlgorithm::all_reduce(const Group& g, const float* in, float* out, int64_t n,
                                     const CallContext& ctx) const {
  std::vector<RingCoord> rings = g.ring_coords();
  AllReducePlan plan = plan_all_reduce(rings, n, split_);
  // 1. Reduce-scatter axis by axis, outermost first, in place in `out` after the first stage.
  for (size_t k = 0; k < plan.reduce_scatter.size(); ++k) {
    const Stage& stage = plan.reduce_scatter[k];
    const RingLink& ring = g.rings[static_cast<size_t>(stage.ring)];
    float* final = out + stage.blocks[static_cast<size_t>(ring.coord.index)].offset;
    run_reduce_scatter_stage(ring, stage, k == 0 ? in : out, out, final, ctx);
  }
  // 2. All-gather the summed parts back, innermost axis first.
  for (const Stage& stage : plan.all_gather)
    run_all_gather_stage(g.rings[static_cast<size_t>(stage.ring)], stage,
                         reinterpret_cast<std::byte*>(out), sizeof(float), ctx);
}

void RingFamilyAlgorithm::all_to_all(const Group& g, const std::byte* in, std::byte* out,
                                     size_t piece_bytes, const CallContext& ctx) const {
  // One stage per axis (x, y, z). Piece p's shard digits start as "destination" and each stage
  // turns its axis's digit into "source": a stage sends member j every piece whose digit is j and
  // files what member j sent under digit j. Pieces sharing a digit are [outer][inner]-strided, so
  // they are gathered into contiguous member shares around the stage when outer > 1.
  const size_t K = g.rings.size();
  const size_t total = static_cast<size_t>(g.size) * piece_bytes;
  std::byte* other = K > 1 ? ctx.scratch->get(Scratch::work, total) : nullptr;  // ping-pong with out
  const std::byte* cur = in;
  int64_t outer = 1;
  for (size_t k = 0; k < K; ++k) {
    const RingLink& ring = g.rings[k];
    const int64_t gk = ring.coord.size;
    const int64_t inner = g.size / (outer * gk);
    std::byte* dst = (K - 1 - k) % 2 == 0 ? out : other;
    const size_t share = static_cast<size_t>(outer * inner) * piece_bytes;
    if (outer == 1) {
      run_all_to_all_stage(ring, split_, cur, dst, share, ctx);
    } else {
      std::byte* t1 = ctx.scratch->get(Scratch::stage_a, total);
      std::byte* t2 = ctx.scratch->get(Scratch::stage_b, total);
      const size_t unit = static_cast<size_t>(inner) * piece_bytes;
      transpose_blocks(cur, outer, gk, unit, t1);   // [outer][gk] -> [gk][outer]
      run_all_to_all_stage(ring, split_, t1, t2, share, ctx);
      transpose_blocks(t2, gk, outer, unit, dst);   // [gk][outer] -> [outer][gk]
    }
    cur = dst;
    outer *= gk;
  }
}

void RingFamilyAlgorithm::ppermute(const RingLink& ring, const std::byte* in, std::byte* out,
                                   size_t bytes, int shift, const CallContext& ctx) const {
  run_ppermute(ring, in, out, bytes, shift, ctx);
}

const AlgorithmImpl& ring_algorithm() {
  static const RingFamilyAlgorithm ring(LaneSplit::one_way);
  return ring;
}

}  // namespace tori::collectives
