#pragma once
// Placement: where one phase's layout puts everything on this rank — the pure index maths of the
// paper's layouts (no MPI; unit-tested alone). Notation as docs/paper.md; n = X·Y·Z ranks; the shard
// index along an axis set follows collectives/torus_shape.hpp (x most significant).
//
// Weight units. Q (H·D columns) and the FFN hidden dim F (of W_in, W_gate) are cut into n blocks;
// block b holds heads [b·H/n, (b+1)·H/n) and hidden units [b·F/n, (b+1)·F/n). A projection's
// local columns are a list of *units*, each the columns of one block for every segment it carries
// ([Q_b | Fin_b | Fgate_b] for the fused parallel block), and its output projection's rows the same
// units ([O_b | F_b]) in the same order, so whatever a layout does to the columns it does to the
// rows. K and V are computed whole on every rank (the paper's multiquery head-sharded baseline:
// the single K/V head is replicated) and each rank keeps in its cache only the KV heads its query
// heads read.
//
// Stored shards (the same for ws2d and every weight-gathered layout, so prefill and decode can
// differ without re-sharding): "E_x F_yz" — rank (x = i, yz-index j) holds rows E[i·E/X, (i+1)·E/X)
// and the X units c·YZ + j (c = 0..X-1). With that order a reduce-scatter over x of the unit
// columns hands rank (i, j) unit i·YZ + j = its xyz shard index g, and the final reduce-scatter
// over yz of E gives it E block g: the residual stream is "BLE_xyz" in canonical order.
// ws1d stores "E F_xyz": all rows, the single unit g.
//
// Everything here is in the *padded* model's indices (padding.hpp): query heads, KV heads, F and V
// are padded with zero weights to split over the n shards, so a model whose H, F or V do not
// divide by n still runs (the functions below accept the real config and pad it themselves).
#include <cstdint>
#include <string>
#include <vector>

#include "collectives/axes.hpp"
#include "collectives/torus_shape.hpp"
#include "models/config.hpp"
#include "runtime/padding.hpp"
#include "runtime/plan.hpp"
#include "runtime/sharding.hpp"

namespace tori::runtime {

using collectives::Axes;

enum class Storage { s2d, s1d };  // "E_x F_yz" (ws2d, wg_*) or "E F_xyz" (ws1d)
Storage storage_for(FfnLayout f);

struct Placement {
  PhasePlan plan;
  collectives::TorusShape shape;
  collectives::Coords coords;
  Padding padding;  // of the model for shape.ranks() shards; heads below are padded indices

  // Residual stream [B_local, L, E_local] between layers.
  Axes batch_axes;  // A: axes the batch is split over (none for weight-stationary layouts)
  Axes e_axes;      // axes E is split over (xyz for ws1d/ws2d; the rest, R, for wg_A)
  int64_t batch_local = 0, batch_offset = 0;
  int64_t e_local = 0, e_offset = 0;

  // Units (block ids) of the projections' columns once the layout's input collectives are done.
  std::vector<int64_t> units;
  // Units this rank stores (storage_for(plan.ffn)).
  std::vector<int64_t> stored_units;
  int64_t stored_e_rows = 0, stored_e_offset = 0;  // rows of W_in held (columns of W_out)

  // Attention: query heads are split over the axes the units are split over; batch-sharded
  // attention moves heads to batch over `a2a_axes` (S minus A) with an all-to-all.
  Axes a2a_axes;
  int64_t attn_batch_local = 0, attn_batch_offset = 0;  // sequences attended here
  std::vector<int64_t> heads;     // query heads attended here, ascending
  std::vector<int64_t> a2a_heads; // the same heads in the order the all-to-all delivers them
  std::vector<int64_t> kv_heads;  // KV heads kept in this rank's cache, ascending
  int64_t heads_per_kv = 0;       // consecutive local query heads per local KV head

  Sharding residual_sharding() const;  // "BLE_xyz", "B_x LE_yz", ...
  Sharding weight_sharding() const;    // "E_x F_yz" or "E F_xyz"
  std::string describe() const;        // all of it, for logs
};

// Checks that the plan fits the model (padded), torus and batch; throws InputError naming the dim,
// the axes and the sizes otherwise. `what` names the phase ("prefill"/"decode").
void validate_phase(const models::ModelConfig& c, const collectives::TorusShape& shape,
                    const PhasePlan& p, int64_t batch, const std::string& what);

Placement make_placement(const models::ModelConfig& c, const collectives::TorusShape& shape,
                         collectives::Coords coords, const PhasePlan& p, int64_t batch);

// Every phase plan that can run on this torus for this model and batch (for `verify --plan all`).
std::vector<PhasePlan> valid_phase_plans(const models::ModelConfig& c,
                                         const collectives::TorusShape& shape, int64_t batch);

}  // namespace tori::runtime
