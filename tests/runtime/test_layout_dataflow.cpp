// The layouts' dataflow (runtime/layout_dataflow.hpp) against the paper's table and against the
// placements it connects: for every valid plan on every torus, each chain's input is the residual
// slice the placement holds, its output the units the middle reads, and the output chain lands
// back on the residual slice. (predicted == counted, tests/planning, checks that executor and cost
// model both follow it.)
#include <catch2/catch.hpp>

#include "runtime/layout_dataflow.hpp"
#include "runtime/placement.hpp"

using namespace tori::runtime;
using tori::collectives::Axes;
using tori::collectives::Coords;
using tori::collectives::TorusShape;

TEST_CASE("the paper's table: ws1d, ws2d and weight-gathered chains", "[dataflow]") {
  const auto c = tori::models::load_model_config("palm-tiny");
  const TorusShape shape = TorusShape::parse("2x2x2");
  auto flow = [&](const char* plan) {
    return layout_dataflow(make_placement(c, shape, Coords{}, parse_phase_plan(plan, "t"), 8)).projection;
  };
  const ProjectionDataflow ws1d = flow("ws1d/heads"), ws2d = flow("ws2d/heads"), wg = flow("wg_xy/batch:xyz");
  CHECK((ws1d.in == MatmulChain{Axes::xyz, Axes::none}));
  CHECK((ws1d.out == MatmulChain{Axes::none, Axes::xyz}));
  CHECK(ws1d.weight_gather.empty());
  CHECK((ws2d.in == MatmulChain{Axes::yz, Axes::x}));
  CHECK(ws2d.kv_reduce == Axes::x);
  CHECK((ws2d.out == MatmulChain{Axes::x, Axes::yz}));
  CHECK(wg.weight_gather == Axes::xy);
  CHECK(wg.kv_weight_gather == Axes::x);
  CHECK((wg.in == MatmulChain{Axes::z, Axes::none}));
  CHECK((wg.out == MatmulChain{Axes::none, Axes::z}));
}

TEST_CASE("every valid plan's chains connect its placement's shapes", "[dataflow]") {
  const int64_t ui = 24, uo = 16;  // any unit widths: shapes scale with them
  for (const char* model : {"palm-tiny", "llama-tiny"}) {
    const auto c = tori::models::load_model_config(model);
    for (const char* s : {"1x1x1", "2x1x1", "1x2x1", "2x2x1", "4x2x1", "2x2x2", "1x2x4"}) {
      const TorusShape shape = TorusShape::parse(s);
      const int64_t B = 8;
      for (const PhasePlan& plan : valid_phase_plans(c, shape, B))
        for (int r = 0; r < shape.ranks(); ++r) {
          const Placement pl = make_placement(c, shape, tori::collectives::coords_of(shape, r), plan, B);
          const LayoutDataflow d = layout_dataflow(pl);
          const ProjectionDataflow& f = d.projection;
          const WeightShapes w = multiplied_weights(pl, f, ui, uo);
          const int64_t units = static_cast<int64_t>(pl.units.size());
          INFO(model << " torus " << s << " rank " << r << " plan " << plan.str());
          // h [M, E_local] --AG(in.gather)--> [M, K] @ W_in [K, N] --RS(in.scatter)--> [M, units · u_in]
          CHECK(pl.e_local * shape.group_size(f.in.gather) == w.in_rows);
          CHECK(w.in_cols / shape.group_size(f.in.scatter) == units * ui);
          CHECK(w.kv_rows == w.in_rows);
          // z [M, units · u_out] --AG(out.gather)--> @ W_out [K, N] --RS(out.scatter)--> [M, E_local]
          CHECK(units * uo * shape.group_size(f.out.gather) == w.out_rows);
          CHECK(w.out_cols / shape.group_size(f.out.scatter) == pl.e_local);
          // Weights gathered only by the weight-gathered layouts, over their batch axes, and not
          // at all where those and x are one-rank groups (the stored shard is the whole gather).
          const bool trivial = shape.group_size(pl.batch_axes | Axes::x) == 1;
          CHECK(f.weight_gather == (trivial ? Axes::none : pl.batch_axes));
          CHECK(f.kv_weight_gather == (trivial || pl.batch_axes.empty() ? Axes::none : Axes::x));
          // Around the layers: rows over A, columns over R, and they cover the torus.
          CHECK(d.step.embed_rows == pl.batch_axes);
          CHECK(d.step.embed_cols == pl.e_axes);
          CHECK((d.step.embed_rows | d.step.embed_cols) == Axes::xyz);
          CHECK(d.attention.to_batch == pl.a2a_axes);
        }
    }
  }
}
