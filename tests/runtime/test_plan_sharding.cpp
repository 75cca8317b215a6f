#include <catch2/catch.hpp>

#include "kernels/error.hpp"
#include "runtime/plan.hpp"
#include "runtime/sharding.hpp"

using namespace tori::runtime;
using Catch::Contains;

TEST_CASE("sharding notation parses and prints back identically", "[sharding]") {
  for (const char* s : {"BLE_xyz", "E_x F_yz", "F_yz E_x", "BLE", "B_xyz LE", "BLF_yz {x}", "BLE_x {yz}",
                        "B_z LHD", "E F_xyz", "BLH_yz D {x}", "H_yz D"})
    CHECK(Sharding::parse(s).str() == s);
  // Spaces are optional on input; the canonical form is printed.
  CHECK(Sharding::parse("E_xF_yz").str() == "E_x F_yz");
  Sharding w = Sharding::parse("E_x F_yz");
  CHECK(w.axes_of('E') == "x");
  CHECK(w.axes_of('F') == "yz");
  CHECK(Sharding::parse("BLF_yz {x}").partial() == "x");
}

TEST_CASE("bad sharding notation is refused", "[sharding]") {
  CHECK_THROWS_WITH(Sharding::parse("E_xx"), Contains("used twice"));
  CHECK_THROWS_WITH(Sharding::parse("E_x F_x"), Contains("used twice"));
  CHECK_THROWS_WITH(Sharding::parse("E_w"), Contains("not x, y or z"));
  CHECK_THROWS_WITH(Sharding::parse("BLQ"), Contains("unknown dimension 'Q'"));
  CHECK_THROWS_WITH(Sharding::parse("BLE_x {x}"), Contains("both splits"));
  CHECK_THROWS_WITH(Sharding::parse("E_"), Contains("without axes"));
  CHECK_THROWS_WITH(Sharding::parse("BLE {x"), Contains("unclosed"));
}

TEST_CASE("shard shapes divide by the axes' sizes and name the dim on failure", "[sharding]") {
  const int64_t t242[3] = {2, 4, 2};
  CHECK(Sharding::parse("E_x F_yz").shard_shape({256, 1024}, t242) == std::vector<int64_t>{128, 128});
  CHECK(Sharding::parse("BLE_xyz").shard_shape({4, 7, 256}, t242) == std::vector<int64_t>{4, 7, 16});
  CHECK(axes_size("yz", t242) == 8);
  CHECK_THROWS_WITH(Sharding::parse("E_x F_yz").shard_shape({256, 100}, t242),
                    Contains("F over yz = 100 is not divisible by 8"));
}

TEST_CASE("plans parse and print back identically", "[plan]") {
  for (const char* s : {"prefill=wg_xyz/batch:xyz,decode=ws2d/batch:xyz", "prefill=wg_xyz/batch,decode=ws2d/batch",
                        "prefill=ws1d/heads,decode=wg_xy/batch:z", "prefill=wg_x/batch:yz,decode=ws2d/heads"})
    CHECK(parse_plan(s, "--plan").str() == s);
  Plan p = parse_plan("ws2d/heads", "--plan");
  CHECK(p.str() == "prefill=ws2d/heads,decode=ws2d/heads");
  CHECK(p.prefill.ffn == FfnLayout::ws2d);
  CHECK(p.decode.attn == AttnLayout::heads);
  Plan q = parse_plan("prefill=wg_xyz/batch,decode=ws2d/batch:z", "--plan");
  CHECK(q.prefill.batch_axes == "xyz");
  CHECK(q.decode.batch_axes == "z");
}

TEST_CASE("bad plans name the flag and the allowed values", "[plan]") {
  CHECK_THROWS_WITH(parse_plan("ws3d/heads", "--plan"), Contains("--plan") && Contains("'ws3d'") && Contains("ws1d, ws2d"));
  CHECK_THROWS_WITH(parse_plan("ws2d/rows", "--plan"), Contains("'rows'") && Contains("batch:yz"));
  CHECK_THROWS_WITH(parse_plan("ws2d/batch:xy", "--plan"), Contains("'batch:xy'"));
  CHECK_THROWS_WITH(parse_plan("prefill=ws2d/heads", "--plan"), Contains("both phases"));
  CHECK_THROWS_WITH(parse_plan("prefill=ws2d/heads,prefill=ws1d/heads", "--plan"), Contains("each phase once"));
  CHECK_THROWS_WITH(parse_plan("ws2d", "run.yaml: plan"), Contains("run.yaml: plan") && Contains("FFN/ATTENTION"));
  CHECK_THROWS_AS(parse_plan("", "--plan"), tori::InputError);
}
