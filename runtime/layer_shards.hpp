#pragma once
// This rank's stored shards of one layer's weights (see placement.hpp for the unit layout):
//   Projection  a fused input/output projection pair: W_in columns and W_out rows as units, so the
//               parallel block's Q, W_in, W_gate share one input matmul and W_o, W_out one output
//               matmul; the serial block has an attention projection (Q | O) and an FFN one.
//   w_kv        [E rows held, 2·K·D]: W_k | W_v, all KV heads (computed whole on every rank).
//   norms       full [E] vectors (tiny; each layout slices what it needs).
// Weight-stationary layouts use the packed copies; weight-gathered ones gather the plain tensors
// and pack what they gathered.
// TSVD checkpoints (docs/tsvd.md), f32 runs: a weight whose tensors are all compressed is held as
// its factors only — the tiles its shard covers, read from the memory-mapped checkpoint and joined
// into one tile grid (factored_weights.hpp) — and its packed copy is the tsvd kind
// (kernels::pack_tsvd_weight), so every layout multiplies it with tsvd_matmul. A tile that does
// not divide the shard is refused (InputError naming the tensor, tile, shard and layout).
// int8 (--dtype int8): every packed copy (whole shard or looped-einsum block) quantises with the
// scales of its columns over the WHOLE weight's input dimension K (*_scales below), never its own
// block's maxima, so the int8 values a rank multiplies are the same slice of one quantised model
// whatever the rank count, torus or plan. The output projection's W_o and W_out rows are one
// matmul with one scale per output column, so in the parallel block that column's scale is the
// max over both tensors' columns (models/rounded_weights.hpp rounds the reference alike).
#include <optional>
#include <vector>

#include "collectives/collective_matmul.hpp"
#include "kernels/packed_weight.hpp"
#include "kernels/tensor.hpp"
#include "models/weight_source.hpp"
#include "runtime/attention_kernel.hpp"
#include "runtime/layout_dataflow.hpp"
#include "runtime/placement.hpp"

namespace tori::runtime {

enum class Segment { q, w_in, w_gate, o, w_out };

struct Projection {
  std::vector<Segment> in_segments, out_segments;
  std::vector<int64_t> in_widths, out_widths;  // columns (rows) of each segment per unit
  int64_t unit_in = 0, unit_out = 0;  // columns per unit of W_in, rows per unit of W_out
  kernels::Tensor w_in;               // [E rows held, units · unit_in]
  kernels::Tensor w_out;              // [units · unit_out, E rows held]
  kernels::PackedWeight w_in_packed, w_out_packed;
  // Factored (TSVD): W_in's and W_out's factors, the plain w_in / w_out then left undefined.
  std::optional<kernels::TsvdFactors> w_in_factors, w_out_factors;
  // Weight-gathered layouts: the floats each all-gather of the flattened factors carries (the
  // largest member's, agreed at load: factored_weights.hpp flatten_factors).
  int64_t in_floats = 0, out_floats = 0;
  // int8 only (else undefined): scales [units · unit_in] of W_in's columns and [E rows held] of
  // W_out's columns, over the full K (all of E for W_in; all of H·D and/or F for W_out).
  kernels::Tensor w_in_scales, w_out_scales;
  // --overlap looped: W_in (with W_kv as the side weight, attention projection) and W_out cut
  // into tiles for the layout's looped collective einsums (collective_matmul.hpp), packed once.
  collectives::EinsumWeights in_tiles, out_tiles;
  bool has(Segment s) const;
  // Column offset of a segment inside one unit (of W_in for q/w_in/w_gate, of W_out for o/w_out).
  int64_t offset(Segment s) const;
};

// Which projection of which layer a step is running (run_layer passes it down explicitly).
struct LayerRef {
  int64_t layer = 0;
  int proj = 0;  // parallel block: 0; serial block: 0 attention, 1 FFN
};

struct LayerShard {
  std::vector<Projection> projections;  // parallel: {fused}; serial: {attention, ffn}
  kernels::Tensor w_kv;
  kernels::PackedWeight w_kv_packed;
  std::optional<kernels::TsvdFactors> w_kv_factors;  // factored (TSVD) W_k | W_v
  int64_t kv_floats = 0;
  kernels::Tensor w_kv_scales;  // int8 only: [2·K·D] over all of E
  kernels::Tensor attn_norm_w, attn_norm_b, ffn_norm_w, ffn_norm_b;  // full [E]; b only for LayerNorm
  kernels::Tensor post_attn_norm_w, post_attn_norm_b, post_ffn_norm_w, post_ffn_norm_b;  // post_norms only
  kernels::Tensor q_norm_w, k_norm_w;  // qk_norm only: [D]
  int64_t bytes() const;
};

struct ShardOptions {
  kernels::Backend backend = kernels::Backend::onednn;
  kernels::WeightFormat format = kernels::WeightFormat::f32;
  bool pack = true;         // pack for direct use (weight-stationary)
  bool keep_plain = true;   // keep the plain f32 copies (weight-gathered layouts gather them)
  collectives::Overlap overlap = collectives::Overlap::none;
  // Weight-stationary layouts under --overlap looped|looped-bidir: the projection dataflow
  // (layout_dataflow.hpp) whose chains the tiles are cut for at load; none = no tiles.
  std::optional<ProjectionDataflow> tiles_for;
  // Chunked prefill (--prefill-chunk): each prefill step carries at most this many tokens over the
  // batch (max(1, N / B) per sequence), so its activations are bounded by the chunk; 0 = the whole
  // prompt batch in one step.
  int64_t prefill_chunk = kDefaultPrefillChunk;
  static constexpr int64_t kDefaultPrefillChunk = 2048;
  // --attention-kernel: the kernel of layers with a sparse pattern (attention_kernel.hpp).
  AttentionKernel attention_kernel = AttentionKernel::automatic;
};

// The looped einsums' tiles (see Projection) for the chains of `f`, W_kv the input chain's side
// weight. w_kv_scales: the int8 scales of w_kv's columns (undefined for f32/bf16).
// A factored weight cut into the looped einsum's tiles for chain c (each tile the factors of its
// block, whole tiles; InputError when the TSVD tile does not divide the einsum's blocks), side:
// W_kv's factors or null.
collectives::EinsumWeights cut_einsum_factors(const collectives::TorusShape& shape, const MatmulChain& c,
                                              const kernels::TsvdFactors& w, const kernels::TsvdFactors* side,
                                              const ShardOptions& opt);

// Factored projections cut their factors (whole tiles) instead of w_in / w_out / w_kv.
void build_overlap_blocks(Projection& p, const LayerShard& layer, bool with_kv, const collectives::TorusShape& shape,
                          const ProjectionDataflow& f, const ShardOptions& opt);

// Reads layer `layer`'s shards for placement `pl` (its stored units and rows) from `source`.
LayerShard load_layer_shard(const models::WeightSource& source, int64_t layer, const Placement& pl,
                            const ShardOptions& opt);

// Width of a segment's block (one unit's worth): HD/n for q and o, F/n for the FFN segments.
int64_t segment_width(const models::ModelConfig& c, int64_t n, Segment s);

}  // namespace tori::runtime
