#include "runtime/layout_dataflow.hpp"

namespace tori::runtime {

LayoutDataflow layout_dataflow(const Placement& pl) {
  const Axes A = pl.batch_axes, R = pl.e_axes;
  LayoutDataflow d;
  ProjectionDataflow& p = d.projection;
  switch (pl.plan.ffn) {
    case FfnLayout::ws1d:  // "E F_xyz": BLE_xyz --AG(xyz)--> BLE @ W_in ... @ W_out --> BLE{xyz} --RS(xyz)-->
      p.in = {Axes::xyz, Axes::none};
      p.out = {Axes::none, Axes::xyz};
      break;
    case FfnLayout::ws2d:  // "E_x F_yz": --AG(yz)--> @ W_in {x} --RS(x)--> ... --AG(x)--> @ W_out {yz} --RS(yz)-->
      p.in = {Axes::yz, Axes::x};
      p.kv_reduce = Axes::x;
      p.out = {Axes::x, Axes::yz};
      break;
    default:  // wg_A: weights AG(A); B_A LE_R --AG(R)--> @ W_in ... @ W_out {R} --RS(R)--> B_A LE_R
      // Gathers over a one-rank group (A and x of size 1 on this torus: one rank, or wg_x on a
      // 1-long x) would hand each rank its own shard: none at all, so the stored shards are packed
      // once at load and multiplied as a weight-stationary layout's are, with no per-step re-pack.
      if (pl.shape.group_size(A | Axes::x) > 1) {
        p.weight_gather = A;
        p.kv_weight_gather = Axes::x;
      }
      p.in = {R, Axes::none};
      p.out = {Axes::none, R};
      break;
  }
  d.attention = {pl.a2a_axes, pl.a2a_axes, A};
  d.step = {A, R, R, R, A, Axes::xyz};
  return d;
}

WeightShapes stored_weights(const Placement& pl, int64_t unit_in, int64_t unit_out) {
  const int64_t units = static_cast<int64_t>(pl.stored_units.size()), rows = pl.stored_e_rows;
  return {rows, units * unit_in, units * unit_out, rows, rows};
}

WeightShapes multiplied_weights(const Placement& pl, const ProjectionDataflow& f, int64_t unit_in,
                                int64_t unit_out) {
  WeightShapes w = stored_weights(pl, unit_in, unit_out);
  // Members stacked along rows are placed as x on E rows and A∩yz on units (weight_prefetch.hpp).
  const int64_t on_rows = pl.shape.group_size(f.weight_gather & Axes::x);
  const int64_t on_units = pl.shape.group_size(f.weight_gather & Axes::yz);
  w.in_rows *= on_rows, w.in_cols *= on_units;
  w.out_rows *= on_units, w.out_cols *= on_rows;
  w.kv_rows *= pl.shape.group_size(f.kv_weight_gather);
  return w;
}

BlockGrid gathered_grid(int members, int nx, bool x_on_rows) {
  const int nj = members / nx;
  return x_on_rows ? BlockGrid{nx, nj} : BlockGrid{nj, nx};
}

}  // namespace tori::runtime
