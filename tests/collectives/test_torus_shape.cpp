// Pure torus maths: shape parsing and automatic factoring, rank order, shard indices, axis sets.
#include <catch2/catch.hpp>

#include <set>

#include "collectives/axes.hpp"
#include "collectives/torus_shape.hpp"
#include "kernels/error.hpp"

using namespace tori::collectives;

TEST_CASE("Axes parse and print canonically", "[axes]") {
  CHECK(Axes::parse("x") == Axes::x);
  CHECK(Axes::parse("zy") == Axes::yz);
  CHECK(Axes::parse("xyz").str() == "xyz");
  CHECK(Axes::parse("none") == Axes::none);
  CHECK(Axes::none.str() == "none");
  CHECK(Axes::xz.str() == "xz");
  CHECK(Axes::yz.list() == std::vector<Axis>{Axis::y, Axis::z});
  CHECK(Axes::xyz.count() == 3);
  CHECK(Axes(Axis::y) == Axes::y);
  CHECK(Axes::x.complement() == Axes::yz);
  CHECK_THROWS_WITH(Axes::parse("xw"), Catch::Contains("'xw'") && Catch::Contains("allowed"));
  CHECK_THROWS_WITH(Axes::parse("xx"), Catch::Contains("repeated"));
  CHECK_THROWS_AS(parse_axis("w"), tori::InputError);
  std::set<std::string> names;
  for (Axes a : Axes::all) names.insert(a.str());
  CHECK(names == std::set<std::string>{"x", "y", "z", "xy", "xz", "yz", "xyz"});
}

TEST_CASE("torus shapes parse, print and reject bad input", "[torus]") {
  CHECK(TorusShape::parse("2x4x2") == TorusShape{{2, 4, 2}});
  CHECK(TorusShape::parse("8x1x1").str() == "8x1x1");
  for (const char* bad : {"2x2", "2x2x2x2", "ax2x2", "0x1x1", "2x-1x1", "", "2x2x"})
    CHECK_THROWS_AS(TorusShape::parse(bad), tori::InputError);
  CHECK_THROWS_WITH(resolve_torus_shape("2x2x2", 4),
                    Catch::Contains("2x2x2") && Catch::Contains("4 MPI ranks") &&
                        Catch::Contains("allowed"));
  CHECK(resolve_torus_shape("auto", 6) == TorusShape{{3, 2, 1}});
  CHECK(resolve_torus_shape("", 2) == TorusShape{{2, 1, 1}});
}

TEST_CASE("automatic torus shapes follow the paper and factor other counts", "[torus]") {
  CHECK(auto_torus_shape(1).str() == "1x1x1");
  CHECK(auto_torus_shape(2).str() == "2x1x1");
  CHECK(auto_torus_shape(3).str() == "3x1x1");
  CHECK(auto_torus_shape(4).str() == "2x2x1");
  CHECK(auto_torus_shape(6).str() == "3x2x1");
  CHECK(auto_torus_shape(8).str() == "2x2x2");
  CHECK(auto_torus_shape(12).str() == "3x2x2");
  CHECK(auto_torus_shape(16).str() == "2x4x2");
  CHECK(auto_torus_shape(32).str() == "4x2x4");
  CHECK(auto_torus_shape(64).str() == "4x4x4");
  CHECK(auto_torus_shape(128).str() == "8x4x4");
  CHECK(auto_torus_shape(7).str() == "7x1x1");
  for (int n = 1; n <= 130; ++n) CHECK(auto_torus_shape(n).ranks() == n);
  CHECK_THROWS_AS(auto_torus_shape(0), tori::Error);
  CHECK(all_torus_shapes(8).size() == 10);
  for (const TorusShape& s : all_torus_shapes(12)) CHECK(s.ranks() == 12);
}

TEST_CASE("rank order is row-major with z fastest and shard indices put x first", "[torus]") {
  TorusShape s{{2, 4, 3}};
  CHECK(rank_of(s, Coords{{1, 2, 0}}) == (1 * 4 + 2) * 3 + 0);
  for (int r = 0; r < s.ranks(); ++r) CHECK(rank_of(s, coords_of(s, r)) == r);
  Coords c{{1, 2, 1}};
  CHECK(shard_index(s, c, Axes::x) == 1);
  CHECK(shard_index(s, c, Axes::yz) == 2 * 3 + 1);
  CHECK(shard_index(s, c, Axes::xz) == 1 * 3 + 1);
  CHECK(shard_index(s, c, Axes::xyz) == rank_of(s, c));
  CHECK(shard_index(s, c, Axes::none) == 0);
  CHECK(s.group_size(Axes::yz) == 12);
  // member_coords inverts shard_index and keeps the other axes.
  for (Axes axes : Axes::all)
    for (int i = 0; i < s.group_size(axes); ++i) {
      Coords m = member_coords(s, c, axes, i);
      CHECK(shard_index(s, m, axes) == i);
      for (Axis a : kAxes)
        if (!axes.contains(a)) CHECK(m[a] == c[a]);
    }
}
