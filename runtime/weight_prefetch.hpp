#pragma once
// WeightPrefetch: the weight all-gathers of the weight-gathered layouts (wg_x, wg_xy, wg_xyz),
// started early so they travel while earlier layers compute (docs/paper.md: "collectives started early
// where data allows"): with overlap the layout starts layer i+1's gathers when layer i starts.
// Each stored tensor is all-gathered over the layout's batch axes A in ONE collective
// (start_all_gather on the progress thread) and rearranged locally:
//   W_in  [E_x, X units]  --all_gather(A) rows--> members stacked --> [E, units of my A-group]
//   W_out [X units, E_x]  --all_gather(A) rows--> members stacked --> [units of my A-group, E]
//   W_kv  [E_x, 2KD]      --all_gather(x) rows--> [E, 2KD]          (attention projection only)
// A member m of the A group is (x_m, j_m) with x most significant (torus_shape.hpp), so its block
// goes to E rows x_m and unit block j_m — the same arrangement as gathering over x, then A∩yz.
// int8: the gathered weights are packed every step, with their columns' whole-K scales (see
// layer_shards.hpp), so each projection's W_in and W_out scales are all-gathered over A beside
// them (4 bytes per column, against 4·K per column of weight): W_in's are members (x = 0, j)'s,
// W_out's members (x, j = 0)'s; W_kv's columns are whole on every rank.
// Factored (TSVD) weights gather their factors, not the product: each member's grid flattened
// (factored_weights.hpp: ranks, U's, V's; all members send the agreed largest length), and the
// members' grids joined in the same arrangement, so the gathered weight is again one tile grid,
// and the gather carries the factors' bytes (1/ratio of the dense weight's).
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "collectives/collectives.hpp"
#include "runtime/layer_shards.hpp"
#include "runtime/placement.hpp"

namespace tori::runtime {

struct GatheredWeights {
  kernels::Tensor w_in, w_out, w_kv;  // w_kv undefined for projections without attention
  kernels::Tensor w_in_scales, w_out_scales, w_kv_scales;  // int8 only: [units], [E], [2KD]
  // Factored projections (then w_in, w_out, w_kv are undefined): the gathered grids.
  std::optional<kernels::TsvdFactors> w_in_factors, w_out_factors, w_kv_factors;
};

// The gathered weights as they arrived: the |A| members' blocks stacked along rows (member-major),
// not yet placed; gathered_matmul multiplies f32 ones block by block where they lie.
struct GatheredBlocks {
  kernels::Tensor w_in, w_out, w_kv;  // w_kv: [E, 2KD] (in place: gathered over x alone), or undefined
  kernels::Tensor w_in_scales, w_out_scales;  // int8 only: [members, ·], one row per member
  int members = 1, nx = 1;
};

// y [M, cols] = x [M, rows] @ (g placed as WeightPrefetch::take places it), without placing: each
// member's block is a view (kernels::pack_transient_weight) multiplied against its column block
// of x into its column block of y (kernels::matmul_strided, summing over the row blocks).
// x_on_rows: W_in's arrangement (member (x_m, j_m) at row block x_m, column block j_m), else
// W_out's (row block j_m, column block x_m). f32 weights on the onednn backend.
kernels::Tensor gathered_matmul(const kernels::Tensor& x, const kernels::Tensor& g, int members, int nx,
                                bool x_on_rows);

class WeightPrefetch {
 public:
  // ahead (--overlap looped|looped-bidir): taking a layer's first projection starts that layer's
  // gathers and the next layer's, so layer i+1's weights travel while layer i computes; otherwise
  // each projection gathers its own weights when it needs them (the serial baseline).
  WeightPrefetch(collectives::Collectives& coll, const Placement& pl, const std::vector<LayerShard>& layers,
                 bool ahead)
      : coll_(coll), pl_(pl), layers_(layers), ahead_(ahead) {}
  // Starts the gathers of projection `proj` of `layer` (no-op if started or out of range).
  void start(int64_t layer, int proj);
  // Starts every projection of `layer`, in order (no-op for those started, or out of range).
  void start_layer(int64_t layer);
  // Waits for (starting first if needed) that projection's weights, as they arrived.
  GatheredBlocks take_blocks(LayerRef at);
  // The same, rearranged (take_blocks, then placed; factored projections: their grids joined).
  GatheredWeights take(LayerRef at);
  // Whether that projection's weights are factored (TSVD).
  bool factored(LayerRef at) const;

 private:
  struct Started {
    collectives::Pending w_in, w_out, w_kv, w_in_scales, w_out_scales;
  };
  collectives::Collectives& coll_;
  const Placement& pl_;
  const std::vector<LayerShard>& layers_;
  bool ahead_;
  std::map<std::pair<int64_t, int>, Started> started_;
};

}  // namespace tori::runtime
