#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "kernels/error.hpp"
#include "runtime/placement.hpp"

using namespace tori::runtime;
using tori::collectives::Axes;
using tori::collectives::Coords;
using tori::collectives::TorusShape;
using Catch::Contains;

namespace {
tori::models::ModelConfig tiny(int64_t heads = 8, int64_t kv = 1) {
  auto c = tori::models::load_model_config("palm-tiny");
  c.n_heads = heads;
  c.n_kv_heads = kv;
  c.d_model = 32 * heads;
  return c;
}
const char* kShapes[] = {"1x1x1", "2x1x1", "1x2x1", "1x1x2", "2x2x1", "4x2x1", "2x2x2", "8x1x1", "1x2x4"};
}  // namespace

TEST_CASE("stored 2D shards: a reduce-scatter over x hands each rank unit g", "[placement]") {
  for (const char* s : kShapes) {
    TorusShape shape = TorusShape::parse(s);
    auto c = tiny();
    for (int r = 0; r < shape.ranks(); ++r) {
      Coords me = tori::collectives::coords_of(shape, r);
      Placement p = make_placement(c, shape, me, parse_phase_plan("ws2d/heads", "t"), 8);
      // Chunk i (the x coordinate) of the stored units is this rank's xyz shard index.
      CHECK(p.stored_units.size() == size_t(shape[tori::collectives::Axis::x]));
      CHECK(p.stored_units[size_t(me[tori::collectives::Axis::x])] ==
            tori::collectives::shard_index(shape, me, Axes::xyz));
      CHECK(p.units == std::vector<int64_t>{tori::collectives::shard_index(shape, me, Axes::xyz)});
      CHECK(p.e_local * shape.ranks() == c.d_model);
    }
  }
}

TEST_CASE("every group covers every unit, head and sequence exactly once", "[placement]") {
  for (const char* s : kShapes) {
    TorusShape shape = TorusShape::parse(s);
    const int n = shape.ranks();
    for (int64_t kv : {int64_t(1), int64_t(2), int64_t(8)}) {
      auto c = tiny(8, kv);
      for (const PhasePlan& p : valid_phase_plans(c, shape, 8)) {
        INFO(s << " " << p.str() << " kv=" << kv);
        Axes A = make_placement(c, shape, {}, p, 8).batch_axes;
        // Units: within a batch group (the ranks sharing A's coordinates) each unit exactly once.
        std::map<int, std::multiset<int64_t>> units_by_group;
        std::map<int64_t, std::multiset<int64_t>> heads_by_sequence;
        for (int r = 0; r < n; ++r) {
          Coords me = tori::collectives::coords_of(shape, r);
          Placement pl = make_placement(c, shape, me, p, 8);
          int group = tori::collectives::shard_index(shape, me, A);
          units_by_group[group].insert(pl.units.begin(), pl.units.end());
          for (int64_t b = pl.attn_batch_offset; b < pl.attn_batch_offset + pl.attn_batch_local; ++b)
            heads_by_sequence[b].insert(pl.heads.begin(), pl.heads.end());
          // Local query heads fall into equal groups over the cached KV heads.
          CHECK(pl.heads.size() == pl.kv_heads.size() * size_t(pl.heads_per_kv));
          for (size_t k = 0; k < pl.heads.size(); ++k)
            CHECK(pl.kv_heads[k / size_t(pl.heads_per_kv)] == pl.heads[k] / c.group_size());
        }
        for (auto& [g, u] : units_by_group) {
          CHECK(u.size() == size_t(n));
          CHECK(std::set<int64_t>(u.begin(), u.end()).size() == size_t(n));
        }
        // Every sequence is attended for every head exactly once across the torus.
        CHECK(heads_by_sequence.size() == 8);
        for (auto& [b, h] : heads_by_sequence) {
          CHECK(h.size() == size_t(c.n_heads));
          CHECK(std::set<int64_t>(h.begin(), h.end()).size() == size_t(c.n_heads));
        }
      }
    }
  }
}

TEST_CASE("batch-sharded multiquery attention divides the KV cache by the batch shards", "[placement]") {
  TorusShape shape = TorusShape::parse("2x2x2");
  auto c = tiny(8, 1);
  Coords me = tori::collectives::coords_of(shape, 5);
  Placement heads = make_placement(c, shape, me, parse_phase_plan("ws2d/heads", "t"), 16);
  Placement batch = make_placement(c, shape, me, parse_phase_plan("ws2d/batch:xyz", "t"), 16);
  Placement yz = make_placement(c, shape, me, parse_phase_plan("ws2d/batch:yz", "t"), 16);
  // Head-sharded: every sequence, the single KV head replicated; batch-sharded: B/n sequences.
  CHECK(heads.attn_batch_local == 16);
  CHECK(heads.kv_heads == std::vector<int64_t>{0});
  CHECK(batch.attn_batch_local == 2);
  CHECK(batch.heads.size() == 8);
  CHECK(yz.attn_batch_local == 4);
  CHECK(yz.heads.size() == 4);
}

TEST_CASE("impossible plans are refused naming the dim, the axes and the sizes", "[placement]") {
  TorusShape shape = TorusShape::parse("2x2x2");
  auto c = tiny(8, 1);
  CHECK_THROWS_WITH(validate_phase(c, shape, parse_phase_plan("ws2d/batch:xyz", "t"), 4, "decode"),
                    Contains("decode") && Contains("batch = 4") && Contains("smaller than the batch-shard count 8") &&
                        Contains("xyz of torus 2x2x2"));
  CHECK_THROWS_WITH(validate_phase(c, shape, parse_phase_plan("ws2d/batch:yz", "t"), 6, "decode"),
                    Contains("batch = 6 is not divisible by 4 (yz of torus 2x2x2)"));
  // Heads, d_ff and vocab that do not divide are padded (padding.hpp); d_model is not.
  CHECK_NOTHROW(validate_phase(tiny(4, 1), shape, parse_phase_plan("ws1d/heads", "t"), 8, "prefill"));
  auto odd = tiny(8, 1);
  odd.d_ff = 1020;
  odd.vocab = 509;
  CHECK_NOTHROW(validate_phase(odd, shape, parse_phase_plan("ws1d/heads", "t"), 8, "prefill"));
  odd.d_model = 260;
  CHECK_THROWS_WITH(validate_phase(odd, shape, parse_phase_plan("ws1d/heads", "t"), 8, "prefill"),
                    Contains("d_model (E) = 260 is not divisible by 8 (xyz of torus 2x2x2)"));
  CHECK_THROWS_WITH(validate_phase(c, shape, parse_phase_plan("wg_xy/batch:z", "t"), 8, "prefill"),
                    Contains("wg_xy already splits the batch over xy"));
  CHECK_THROWS_AS(validate_phase(c, shape, parse_phase_plan("wg_xyz/batch:xyz", "t"), 4, "prefill"), tori::InputError);
}

TEST_CASE("placements print their shardings in the paper's notation", "[placement]") {
  TorusShape shape = TorusShape::parse("2x2x2");
  auto c = tiny(8, 1);
  auto at = [&](const char* plan) { return make_placement(c, shape, {}, parse_phase_plan(plan, "t"), 8); };
  CHECK(at("ws2d/heads").residual_sharding().str() == "BLE_xyz");
  CHECK(at("ws2d/heads").weight_sharding().str() == "E_x F_yz");
  CHECK(at("ws1d/heads").weight_sharding().str() == "E F_xyz");
  CHECK(at("wg_x/heads").residual_sharding().str() == "B_x LE_yz");
  CHECK(at("wg_xy/heads").residual_sharding().str() == "B_xy LE_z");
  CHECK(at("wg_xyz/batch:xyz").residual_sharding().str() == "B_xyz LE");
  CHECK(at("wg_xyz/batch:xyz").weight_sharding().str() == "E_x F_yz");
}
