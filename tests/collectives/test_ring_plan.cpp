// Ring plans over whole tori, without MPI: every rank's stages are simulated step by step with the
// ring schedules, and the results (and the bytes the simulation sends) are checked against what
// the collective must produce and what the traffic model predicts.
#include <catch2/catch.hpp>

#include <map>
#include <sstream>
#include <vector>

#include "collectives/ring_plan.hpp"
#include "collectives/torus_shape.hpp"

using namespace tori::collectives;

namespace Catch {
template <> struct StringMaker<AxisTraffic> {
  static std::string convert(const AxisTraffic& t) {
    std::ostringstream s;
    for (const Traffic& a : t) s << '{' << a.bytes << " B, " << a.messages << " msg} ";
    return s.str();
  }
};
}  // namespace Catch

namespace {

std::vector<RingCoord> rings_of(const TorusShape& shape, Coords c, Axes axes) {
  std::vector<RingCoord> out;
  for (Axis a : axes.list())
    if (shape[a] > 1) out.push_back({a, shape[a], c[a]});
  return out;
}

int neighbour(const TorusShape& shape, Coords c, Axis a, int dir) {
  c[a] = wrap(c[a] + dir, shape[a]);
  return rank_of(shape, c);
}

double value(int rank, int64_t i) { return rank * 1000.0 + static_cast<double>(i); }

// One simulated stage k of every rank: `reduce` adds received data instead of overwriting, and
// the schedule is the reduce-scatter one. Returns bytes sent per rank (elements × 1).
void simulate_stage(const TorusShape& shape, Axes axes, std::vector<std::vector<double>>& buf,
                    const std::vector<std::vector<Stage>>& plans, size_t k, bool reduce,
                    std::vector<AxisTraffic>& sent) {
  const int ranks = shape.ranks();
  std::vector<std::vector<RingCoord>> rings(ranks);
  for (int r = 0; r < ranks; ++r) rings[r] = rings_of(shape, coords_of(shape, r), axes);
  const RingCoord& ring0 = rings[0][static_cast<size_t>(plans[0][k].ring)];
  for (int s = 0; s + 1 < ring0.size; ++s) {
    std::map<std::pair<int, int>, std::vector<double>> msgs;  // (to, dir) -> data
    for (int r = 0; r < ranks; ++r) {
      const Stage& st = plans[r][k];
      const RingCoord& ring = rings[r][static_cast<size_t>(st.ring)];
      for (const Lane& lane : st.lanes) {
        RingStep step = reduce ? reduce_scatter_step(ring.size, ring.index, s, lane.dir)
                               : all_gather_step(ring.size, ring.index, s, lane.dir);
        Span b = lane.blocks[static_cast<size_t>(step.send_block)];
        int to = neighbour(shape, coords_of(shape, r), ring.axis, lane.dir);
        msgs[{to, lane.dir}].assign(buf[r].begin() + b.offset, buf[r].begin() + b.offset + b.length);
        if (b.length > 0) sent[r][static_cast<size_t>(ring.axis)] += Traffic{static_cast<uint64_t>(b.length), 1};
      }
    }
    for (int r = 0; r < ranks; ++r) {
      const Stage& st = plans[r][k];
      const RingCoord& ring = rings[r][static_cast<size_t>(st.ring)];
      for (const Lane& lane : st.lanes) {
        RingStep step = reduce ? reduce_scatter_step(ring.size, ring.index, s, lane.dir)
                               : all_gather_step(ring.size, ring.index, s, lane.dir);
        Span b = lane.blocks[static_cast<size_t>(step.recv_block)];
        const auto& data = msgs.at({r, lane.dir});
        REQUIRE(static_cast<int64_t>(data.size()) == b.length);
        for (int64_t i = 0; i < b.length; ++i)
          buf[r][static_cast<size_t>(b.offset + i)] = (reduce ? buf[r][static_cast<size_t>(b.offset + i)] : 0.0) + data[static_cast<size_t>(i)];
      }
    }
  }
}

const std::vector<TorusShape> kShapes = {TorusShape{{2, 1, 1}}, TorusShape{{3, 1, 1}},
                                         TorusShape{{2, 3, 1}}, TorusShape{{2, 2, 2}},
                                         TorusShape{{3, 2, 2}}, TorusShape{{1, 4, 3}}};

}  // namespace

TEST_CASE("all_gather plans gather every chunk in shard order on every rank", "[plan]") {
  for (const TorusShape& shape : kShapes)
    for (Axes axes : Axes::all)
      for (LaneSplit split : {LaneSplit::one_way, LaneSplit::both_ways})
        for (int64_t chunk : {1, 5}) {
          INFO("torus " << shape.str() << " axes " << axes.str() << " chunk " << chunk);
          const int ranks = shape.ranks(), G = shape.group_size(axes);
          std::vector<std::vector<double>> buf(ranks, std::vector<double>(static_cast<size_t>(G * chunk), -1.0));
          std::vector<std::vector<Stage>> plans(ranks);
          for (int r = 0; r < ranks; ++r) {
            Coords c = coords_of(shape, r);
            int me = shard_index(shape, c, axes);
            for (int64_t i = 0; i < chunk; ++i) buf[r][static_cast<size_t>(me * chunk + i)] = value(r, i);
            plans[r] = plan_all_gather(rings_of(shape, c, axes), chunk, split);
          }
          std::vector<AxisTraffic> sent(ranks);
          for (size_t k = 0; k < plans[0].size(); ++k) simulate_stage(shape, axes, buf, plans, k, false, sent);
          for (int r = 0; r < ranks; ++r) {
            Coords c = coords_of(shape, r);
            for (int g = 0; g < G; ++g)
              for (int64_t i = 0; i < chunk; ++i)
                CHECK(buf[r][static_cast<size_t>(g * chunk + i)] == value(rank_of(shape, member_coords(shape, c, axes, g)), i));
            CHECK(sent[r] == all_gather_traffic(rings_of(shape, c, axes), chunk, 1, split));
          }
        }
}

TEST_CASE("reduce_scatter and all_reduce plans sum onto the right ranks", "[plan]") {
  for (const TorusShape& shape : kShapes)
    for (Axes axes : Axes::all)
      for (LaneSplit split : {LaneSplit::one_way, LaneSplit::both_ways})
        for (int64_t chunk : {1, 3}) {
          INFO("torus " << shape.str() << " axes " << axes.str() << " chunk " << chunk);
          const int ranks = shape.ranks(), G = shape.group_size(axes);
          const int64_t n = G * chunk;
          // reduce_scatter: rank r's summand of element i is value(r, i).
          std::vector<std::vector<double>> buf(ranks, std::vector<double>(static_cast<size_t>(n)));
          std::vector<std::vector<Stage>> plans(ranks);
          for (int r = 0; r < ranks; ++r) {
            for (int64_t i = 0; i < n; ++i) buf[r][static_cast<size_t>(i)] = value(r, i);
            plans[r] = plan_reduce_scatter(rings_of(shape, coords_of(shape, r), axes), chunk, split);
          }
          std::vector<AxisTraffic> sent(ranks);
          for (size_t k = 0; k < plans[0].size(); ++k) simulate_stage(shape, axes, buf, plans, k, true, sent);
          auto group_sum = [&](Coords c, int64_t i) {
            double s = 0;
            for (int g = 0; g < G; ++g) s += value(rank_of(shape, member_coords(shape, c, axes, g)), i);
            return s;
          };
          for (int r = 0; r < ranks; ++r) {
            Coords c = coords_of(shape, r);
            int me = shard_index(shape, c, axes);
            for (int64_t i = 0; i < chunk; ++i)
              CHECK(buf[r][static_cast<size_t>(me * chunk + i)] == group_sum(c, me * chunk + i));
            AxisTraffic model = reduce_scatter_traffic(rings_of(shape, c, axes), chunk, split);
            for (auto& t : model) t.bytes /= 4;  // the model counts f32 bytes, the simulation elements
            CHECK(sent[r] == model);
          }
          // all_reduce of an odd-length buffer: reduce-scatter stages then all-gather stages.
          const int64_t m = 2 * n + 1;
          std::vector<std::vector<Stage>> rs(ranks), ag(ranks);
          for (int r = 0; r < ranks; ++r) {
            buf[r].assign(static_cast<size_t>(m), 0.0);
            for (int64_t i = 0; i < m; ++i) buf[r][static_cast<size_t>(i)] = value(r, i);
            AllReducePlan p = plan_all_reduce(rings_of(shape, coords_of(shape, r), axes), m, split);
            rs[r] = p.reduce_scatter;
            ag[r] = p.all_gather;
          }
          std::vector<AxisTraffic> sent_ar(ranks);
          for (size_t k = 0; k < rs[0].size(); ++k) simulate_stage(shape, axes, buf, rs, k, true, sent_ar);
          for (size_t k = 0; k < ag[0].size(); ++k) simulate_stage(shape, axes, buf, ag, k, false, sent_ar);
          for (int r = 0; r < ranks; ++r) {
            Coords c = coords_of(shape, r);
            for (int64_t i = 0; i < m; ++i) CHECK(buf[r][static_cast<size_t>(i)] == group_sum(c, i));
            AxisTraffic model = all_reduce_traffic(rings_of(shape, c, axes), m, split);
            for (auto& t : model) t.bytes /= 4;  // the model counts f32 bytes, the simulation elements
            CHECK(sent_ar[r] == model);
          }
        }
}

TEST_CASE("traffic model matches the ring cost formulas", "[plan][traffic]") {
  // yz on a 1x2x3 torus, rank at y=1, z=2; 10 f32 elements per rank.
  std::vector<RingCoord> rings{{Axis::y, 2, 1}, {Axis::z, 3, 2}};
  // all_gather: z first moves 2 blocks of 10, then y moves 1 block of 30: (G-1)/G · output bytes.
  AxisTraffic ag = all_gather_traffic(rings, 10, 4, LaneSplit::one_way);
  CHECK(ag[1] == Traffic{30 * 4, 1});
  CHECK(ag[2] == Traffic{20 * 4, 2});
  CHECK(ag[0] == Traffic{});
  AxisTraffic ag2 = all_gather_traffic(rings, 10, 4, LaneSplit::both_ways);
  CHECK(ag2[1] == Traffic{30 * 4, 2});
  CHECK(ag2[2] == Traffic{20 * 4, 4});
  // reduce_scatter to 10 per rank: y first moves 1 block of 30, then z 2 blocks of 10 (f32 bytes).
  AxisTraffic rs = reduce_scatter_traffic(rings, 10, LaneSplit::one_way);
  CHECK(rs[1] == Traffic{30 * 4, 1});
  CHECK(rs[2] == Traffic{20 * 4, 2});
  // all_to_all of 60 bytes on a ring of 3: shares of 20; bundles of 2 then 1 one way, 1 + 1 both.
  std::vector<RingCoord> z3{{Axis::z, 3, 0}};
  CHECK(all_to_all_traffic(z3, 60, LaneSplit::one_way)[2] == Traffic{60, 2});
  CHECK(all_to_all_traffic(z3, 60, LaneSplit::both_ways)[2] == Traffic{40, 2});
  CHECK(ppermute_traffic(Axis::x, 12)[0] == Traffic{12, 1});
  CHECK(ppermute_traffic(Axis::x, 0)[0] == Traffic{});
}
