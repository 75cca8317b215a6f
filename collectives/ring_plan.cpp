#include "collectives/ring_plan.hpp"

#include <cstddef>

namespace tori::collectives {

namespace {

constexpr size_t kF32Bytes = 4;  // reductions travel as f32 partial sums

std::vector<Lane> split_lanes(const std::vector<Span>& blocks, LaneSplit split) {
  if (split == LaneSplit::one_way) return {Lane{+1, blocks}};
  Lane right{+1, {}}, left{-1, {}};
  for (const Span& b : blocks) {
    int64_t half = b.length / 2;  // odd lengths: the extra element goes left
    right.blocks.push_back({b.offset, half});
    left.blocks.push_back({b.offset + half, b.length - half});
  }
  return {right, left};
}

Stage make_stage(int ring, std::vector<Span> blocks, LaneSplit split) {
  Stage s;
  s.ring = ring;
  s.lanes = split_lanes(blocks, split);
  s.blocks = std::move(blocks);
  return s;
}

// Number of chunks spanned by one member's block at ring k: product of the sizes of rings after k.
int64_t inner_chunks(std::span<const RingCoord> rings, size_t k) {
  int64_t n = 1;
  for (size_t j = k + 1; j < rings.size(); ++j) n *= rings[j].size;
  return n;
}

// Chunk index where the region of ring k that contains me starts: my digits before k, zeros after.
int64_t region_start(std::span<const RingCoord> rings, size_t k) {
  int64_t start = 0;
  for (size_t j = 0; j < rings.size(); ++j) start = start * rings[j].size + (j < k ? rings[j].index : 0);
  return start;
}

Stage even_stage(std::span<const RingCoord> rings, size_t k, int64_t chunk, LaneSplit split) {
  int64_t block = inner_chunks(rings, k) * chunk;
  int64_t base = region_start(rings, k) * chunk;
  std::vector<Span> blocks;
  for (int g = 0; g < rings[k].size; ++g) blocks.push_back({base + g * block, block});
  return make_stage(static_cast<int>(k), std::move(blocks), split);
}

}  // namespace

std::vector<Stage> plan_all_gather(std::span<const RingCoord> rings, int64_t chunk, LaneSplit split) {
  std::vector<Stage> out;
  for (size_t k = rings.size(); k-- > 0;) out.push_back(even_stage(rings, k, chunk, split));
  return out;
}

std::vector<Stage> plan_reduce_scatter(std::span<const RingCoord> rings, int64_t chunk,
                                       LaneSplit split) {
  std::vector<Stage> out;
  for (size_t k = 0; k < rings.size(); ++k) out.push_back(even_stage(rings, k, chunk, split));
  return out;
}

AllReducePlan plan_all_reduce(std::span<const RingCoord> rings, int64_t n, LaneSplit split) {
  AllReducePlan plan;
  Span segment{0, n};  // the part of the flat buffer this rank still reduces
  for (size_t k = 0; k < rings.size(); ++k) {
    std::vector<Span> blocks;
    for (int g = 0; g < rings[k].size; ++g)
      blocks.push_back(balanced_part(segment.offset, segment.length, rings[k].size, g));
    segment = blocks[static_cast<size_t>(rings[k].index)];
    plan.reduce_scatter.push_back(make_stage(static_cast<int>(k), std::move(blocks), split));
  }
  plan.all_gather.assign(plan.reduce_scatter.rbegin(), plan.reduce_scatter.rend());
  return plan;
}

Traffic all_gather_stage_traffic(const Stage& stage, const RingCoord& ring, size_t elem_bytes) {
  Traffic t;
  for (const Lane& lane : stage.lanes)
    for (int s = 0; s + 1 < ring.size; ++s) {
      int64_t len = lane.blocks[static_cast<size_t>(all_gather_step(ring.size, ring.index, s, lane.dir).send_block)].length;
      if (len > 0) t += {static_cast<uint64_t>(len) * elem_bytes, 1};
    }
  return t;
}

Traffic reduce_scatter_stage_traffic(const Stage& stage, const RingCoord& ring, size_t elem_bytes) {
  Traffic t;
  for (const Lane& lane : stage.lanes)
    for (int s = 0; s + 1 < ring.size; ++s) {
      int64_t len = lane.blocks[static_cast<size_t>(reduce_scatter_step(ring.size, ring.index, s, lane.dir).send_block)].length;
      if (len > 0) t += {static_cast<uint64_t>(len) * elem_bytes, 1};
    }
  return t;
}

Traffic all_to_all_stage_traffic(const RingCoord& ring, uint64_t total_bytes, LaneSplit split) {
  Traffic t;
  uint64_t share = total_bytes / static_cast<uint64_t>(ring.size);
  bool both = split == LaneSplit::both_ways;
  for (int reach : {all_to_all_reach_right(ring.size, both), all_to_all_reach_left(ring.size, both)})
    for (int k = 1; k <= reach; ++k)
      if (share > 0) t += {static_cast<uint64_t>(all_to_all_bundle(reach, k)) * share, 1};
  return t;
}

AxisTraffic all_gather_traffic(std::span<const RingCoord> rings, int64_t chunk, size_t elem_bytes,
                               LaneSplit split) {
  AxisTraffic out{};
  for (const Stage& s : plan_all_gather(rings, chunk, split))
    out[static_cast<size_t>(rings[static_cast<size_t>(s.ring)].axis)] +=
        all_gather_stage_traffic(s, rings[static_cast<size_t>(s.ring)], elem_bytes);
  return out;
}

AxisTraffic reduce_scatter_traffic(std::span<const RingCoord> rings, int64_t chunk, LaneSplit split) {
  AxisTraffic out{};
  for (const Stage& s : plan_reduce_scatter(rings, chunk, split))
    out[static_cast<size_t>(rings[static_cast<size_t>(s.ring)].axis)] +=
        reduce_scatter_stage_traffic(s, rings[static_cast<size_t>(s.ring)], kF32Bytes);
  return out;
}

AxisTraffic all_reduce_traffic(std::span<const RingCoord> rings, int64_t n, LaneSplit split) {
  AxisTraffic out{};
  AllReducePlan plan = plan_all_reduce(rings, n, split);
  for (const Stage& s : plan.reduce_scatter)
    out[static_cast<size_t>(rings[static_cast<size_t>(s.ring)].axis)] +=
        reduce_scatter_stage_traffic(s, rings[static_cast<size_t>(s.ring)], kF32Bytes);
  for (const Stage& s : plan.all_gather)
    out[static_cast<size_t>(rings[static_cast<size_t>(s.ring)].axis)] +=
        all_gather_stage_traffic(s, rings[static_cast<size_t>(s.ring)], kF32Bytes);
  return out;
}

AxisTraffic all_to_all_traffic(std::span<const RingCoord> rings, uint64_t total_bytes,
                               LaneSplit split) {
  AxisTraffic out{};
  for (const RingCoord& r : rings)
    out[static_cast<size_t>(r.axis)] += all_to_all_stage_traffic(r, total_bytes, split);
  return out;
}

AxisTraffic ppermute_traffic(Axis axis, uint64_t bytes) {
  AxisTraffic out{};
  if (bytes > 0) out[static_cast<size_t>(axis)] = {bytes, 1};
  return out;
}

}  // namespace tori::collectives
