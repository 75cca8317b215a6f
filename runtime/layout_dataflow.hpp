#pragma once
// LayoutDataflow: a phase's layout described once, as the paper's dataflow over torus axes. The
// executor (projection.hpp, attention_layouts.hpp, sharded_model.cpp) runs these values and the cost
// model (planning/cost_model.hpp) prices them; nothing else says which collective a layout makes.
// Notation as docs/paper.md; A = the layout's batch axes, R = its E axes (placement.hpp).
//
// Every projection pair (placement.hpp's units) is two matmul chains with the attention or the
// activation between them:
//     h [M, E_local] --AG(in.gather)--> @ W_in [K, N] --RS(in.scatter)--> y [M, units · unit_in]
//                    (x @ W_kv [K, 2KD] beside it, a partial sum over kv_reduce: all-reduced)
//     z [M, units · unit_out] --AG(out.gather)--> @ W_out --RS(out.scatter)--> [M, E_local]
// and the weight-gathered layouts all-gather W_in, W_out over A (W_kv over x) first:
//
//   layout   weight_gather   in (gather | scatter)   kv_reduce   out (gather | scatter)
//   ws1d     -               xyz | -                 -           - | xyz
//   ws2d     -               yz  | x                 x           x | yz
//   wg_A     A (W_kv: x)     R   | -                 -           - | R
//   (wg_A where A and x are one-rank groups gathers nothing: weight_gather and kv_weight_gather
//   are none, and the stored shards are the multiplied weights)
//
// Attention (attention_layouts.hpp): heads -> batch is an all-to-all over S' (the attention's batch
// axes minus A) there and back; a prefill in another placement than decode's hands its K/V over
// with an all-gather over S', then over A. Around the layers (sharded_model.cpp): the embedding's
// reduce-scatter of rows over A then of columns over R, every norm's all-reduce of [M, 1] over R,
// the final hidden state's all-gather of columns over R then rows over A, and the logits'
// all-gather of vocabulary columns over xyz.
#include <cstdint>

#include "collectives/axes.hpp"
#include "runtime/placement.hpp"

namespace tori::runtime {

// y = reduce_scatter(all_gather(x, -1, gather) @ W, -1, scatter); either may be none.
struct MatmulChain {
  Axes gather, scatter;
  bool operator==(const MatmulChain&) const = default;
};

struct ProjectionDataflow {
  Axes weight_gather;     // W_in and W_out all-gathered over these axes every step (wg_A: A)
  Axes kv_weight_gather;  // W_kv likewise (wg_A: x)
  MatmulChain in;
  Axes kv_reduce;  // x @ W_kv is partial over these axes: all-reduced (ws2d: x)
  MatmulChain out;
};

struct AttentionDataflow {
  Axes to_batch;      // all_to_all over S': query heads -> batch before attention, back after
  Axes handoff_rows;  // prefill -> decode K/V handoff: all_gather over S', then over handoff_batch
  Axes handoff_batch;
};

struct StepDataflow {
  Axes embed_rows, embed_cols;    // reduce_scatter of the embedding's rows (A), then columns (R)
  Axes norm;                      // all_reduce of each norm's [M, 1] statistics (R)
  Axes hidden_cols, hidden_rows;  // final hidden state: all_gather of columns (R), then rows (A)
  Axes logits;                    // all_gather of the vocabulary columns (xyz)
};

struct LayoutDataflow {
  ProjectionDataflow projection;
  AttentionDataflow attention;
  StepDataflow step;
};

LayoutDataflow layout_dataflow(const Placement& pl);

// The weights one chain multiplies on this rank, [rows, cols] per unit width: W_in [K, units · unit_in],
// W_out [units · unit_out, K], W_kv [K, 2KD], K the E rows held — after the weight gather for the
// weight-gathered layouts (every row of E, the units of the rank's A group).
struct WeightShapes {
  int64_t in_rows = 0, in_cols = 0;    // W_in
  int64_t out_rows = 0, out_cols = 0;  // W_out
  int64_t kv_rows = 0;                 // W_kv (columns: 2KD)
};
// unit_in / unit_out: a unit's projection columns / rows (layer_shards.hpp). Stored shapes are the
// same with no gather (Placement::stored_units, stored_e_rows).
WeightShapes multiplied_weights(const Placement& pl, const ProjectionDataflow& f, int64_t unit_in, int64_t unit_out);
WeightShapes stored_weights(const Placement& pl, int64_t unit_in, int64_t unit_out);

// How the |A| members' gathered blocks of a weight lie (weight_prefetch.hpp): member (x_m, j_m) of
// the A group is row block x_m, column block j_m of W_in (x_on_rows) and the transpose for W_out.
struct BlockGrid {
  int row_blocks = 1, col_blocks = 1;
};
BlockGrid gathered_grid(int members, int nx, bool x_on_rows);

}  // namespace tori::runtime
