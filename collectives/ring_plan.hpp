#pragma once
// Ring plans: how a collective over an axis set runs on a torus, axis by axis, as pure data (no
// MPI). The ring executors (ring_stage.hpp) carry plans out; the MPI-native algorithm and the cost
// model read the same plans to count what a ring sends (traffic_of). Unit-tested without MPI.
//
// Buffers are "chunk-major": chunk g of the group (g = shard index, see torus_shape.hpp) occupies
// elements [g·chunk, (g+1)·chunk). Because shard digits run x (most significant) to z, the chunks
// that differ only in the z digit are adjacent, those that differ in y are z-size apart, and so on,
// so every stage below moves contiguous blocks:
//  - all_gather runs the innermost axis first: after the z stage a rank holds the Z chunks of its
//    (x, y) line, which form one block of the y stage, and so on outwards.
//  - reduce_scatter runs the outermost axis first: the x stage sums X blocks of Y·Z chunks each and
//    leaves this rank its block; the y stage splits that block, and so on inwards.
//  - all_reduce is reduce_scatter stages then all_gather stages in reverse, on a flat buffer split
//    into nearly equal parts (any element count works).
//  - all_to_all exchanges one axis at a time; see plan notes in ring_stage.hpp.
// A stage's blocks are split into lanes: a one-way ring has one lane travelling +1; the
// bidirectional ring sends the first half of every block +1 and the second half -1.
#include <span>
#include <vector>

#include "collectives/axes.hpp"
#include "collectives/ring_schedule.hpp"
#include "collectives/traffic.hpp"

namespace tori::collectives {

// One ring of a group: an axis of the set that has more than one member, and my place on it.
struct RingCoord {
  Axis axis = Axis::x;
  int size = 1;
  int index = 0;
};

enum class LaneSplit { one_way, both_ways };

// One direction of travel and the part of every block it carries (blocks[g] for ring member g).
struct Lane {
  int dir = +1;
  std::vector<Span> blocks;
};

struct Stage {
  int ring = 0;              // index into the group's rings (x, y, z order)
  std::vector<Span> blocks;  // whole block of each member, before splitting into lanes
  std::vector<Lane> lanes;
};

// all_gather of `chunk` elements per rank over rings (x, y, z order): innermost ring first.
std::vector<Stage> plan_all_gather(std::span<const RingCoord> rings, int64_t chunk, LaneSplit split);
// reduce_scatter to `chunk` elements per rank: outermost ring first; the input has size·chunk.
std::vector<Stage> plan_reduce_scatter(std::span<const RingCoord> rings, int64_t chunk,
                                       LaneSplit split);
// all_reduce of n elements: reduce_scatter stages (outermost first) over nearly equal parts, then
// the same stages in reverse order as all_gather stages.
struct AllReducePlan {
  std::vector<Stage> reduce_scatter;
  std::vector<Stage> all_gather;
};
AllReducePlan plan_all_reduce(std::span<const RingCoord> rings, int64_t n, LaneSplit split);

// Bytes and block transfers one rank sends in a stage (elements of `elem_bytes` each).
Traffic all_gather_stage_traffic(const Stage& stage, const RingCoord& ring, size_t elem_bytes);
Traffic reduce_scatter_stage_traffic(const Stage& stage, const RingCoord& ring, size_t elem_bytes);
// all_to_all of a buffer of `total_bytes` (the whole per-rank tensor) on one ring: each member's
// share is total_bytes / size, forwarded by store and forward (ring_schedule.hpp).
Traffic all_to_all_stage_traffic(const RingCoord& ring, uint64_t total_bytes, LaneSplit split);

// Whole-collective traffic per axis (the traffic model): what the ring algorithm with `split`
// sends for one call. Reductions count f32 partial sums (4 bytes per element).
AxisTraffic all_gather_traffic(std::span<const RingCoord> rings, int64_t chunk, size_t elem_bytes,
                               LaneSplit split);
AxisTraffic reduce_scatter_traffic(std::span<const RingCoord> rings, int64_t chunk, LaneSplit split);
AxisTraffic all_reduce_traffic(std::span<const RingCoord> rings, int64_t n, LaneSplit split);
AxisTraffic all_to_all_traffic(std::span<const RingCoord> rings, uint64_t total_bytes,
                               LaneSplit split);
AxisTraffic ppermute_traffic(Axis axis, uint64_t bytes);

}  // namespace tori::collectives
