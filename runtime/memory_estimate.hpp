#pragma once
// What one rank holds for a model, plan and batch, computed from the placements before anything is
// allocated — the one memory formula: ShardedModel refuses a run that will not fit with it, and
// the cost model and `tori plan` (planning/cost_model.hpp) report it.
//   weights   per storage the phases use ("E_x F_yz" and/or "E F_xyz", placement.hpp): every layer's
//             projection shards and W_kv [E rows held, 2KD] at the weight format's element bytes
//             (int8's per-column scales neglected), plus the plain copies the weight-gathered
//             layouts keep to all-gather (Tori: f32); the embedding block [V/n, E] f32 (the gather's
//             table) and the unembedding [E, V/n] packed in kernels::unembedding_format (tied or not),
//             and the RoPE table [context, D] (two with a separate local base: Gemma 3), f32
//             A TSVD checkpoint (tsvd: factored_weights.hpp) stores its factored weights' factors
//             instead: density · the dense shard's elements, f32 (layer_shards.hpp)
//   KV cache  Σ over layers of B_a · K_local · slots · D · 2 (K and V) · KV element bytes, in the
//             decode placement (B_a sequences attended here, K_local KV heads kept); slots = context
//             on a global layer, min(context, sink + w - 1 + kWindowSlack) on a local layer with a
//             sliding window w, each rounded up to kKvBlock as kernels/kv_cache.hpp allocates them.
//             The context is the run's, not the model's: ShardedModel allocates for its source's
//             max_seq, which every command sets to the positions the run reaches
//             (models/context_window.hpp: prompt + new tokens, serve's --context)
//   activations  the largest of the phases' steps (activation_bytes below): what a forward step
//             holds beyond the weights and the cache, in the activation format (a long step on a
//             local layer: its widened window cache too)
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/packed_weight.hpp"
#include "models/config.hpp"
#include "runtime/factored_weights.hpp"
#include "runtime/placement.hpp"

namespace tori::runtime {

// Bytes of one stored weight element in a format (int8's per-channel scales neglected).
double weight_element_bytes(kernels::WeightFormat f);

// One fused projection pair of a layer as layer_shards.cpp cuts it: which segments it carries and
// the widths of one unit's W_in columns and W_out rows (n shards of the padded config).
struct ProjectionUnits {
  bool with_q = false, with_kv = false, with_ffn = false;
  int64_t unit_in = 0, unit_out = 0;
};
std::vector<ProjectionUnits> projection_units(const models::ModelConfig& padded, int64_t n);

// The shape of one forward step, and the formats it runs in.
struct StepShape {
  int64_t batch = 1;             // B: sequences in the step
  int64_t tokens = 1;            // L: rows per sequence (a prefill chunk's length, 1 in decode)
  int64_t prompt = 0;            // a prefill's longest prompt (its handoff cache's length; 0: tokens)
  double act_bytes = 4;          // bytes of an activation element (Tori: f32)
  double gathered_bytes = 4;     // bytes of a gathered weight element (Tori: f32)
  bool overlap = false;          // --overlap looped*: the next layer's weights gathered ahead
  bool placed_copy = true;       // gathered bf16/int8 weights placed in a copy (Tori: weight_prefetch.cpp)
  const Placement* handoff = nullptr;  // prefill handing its K/V to this (decode) placement
};

// Peak bytes of activations one rank holds in a forward step of placement `pl`, as the runtime
// allocates them (tensors and the collectives' scratch, kernels/allocation_counter.hpp): the
// largest of its moments — the embedding ([B·L, E] partial sums, reduce-scattered), each layer's
// input chain, attention and activation, and output chain (the residual and its norm live
// throughout; sharded_model.cpp, transformer_block.cpp, projection.cpp, chain_strategy.cpp) — plus
// the collectives' grow-only scratch (sized by the step's largest collective input and output) and,
// for weight-gathered layouts, the gathered weights of the layers in flight (one, two with overlap;
// bf16/int8 also place them, a second copy) — and the logits of the step's last rows.
double activation_bytes(const models::ModelConfig& padded, const Placement& pl, const StepShape& s);

struct MemoryEstimate {
  double weight_bytes = 0, kv_bytes = 0, activation_bytes = 0;
  // The load's peak: the embedding loads first, and packing its unembedding holds the f32 table
  // block, the f32 [E, V/n] block being packed (tied: the table's transpose) and the packed result
  // at once, before any layer or cache exists (sharded_model.cpp load_embedding).
  double load_bytes = 0;
  double total() const { return weight_bytes + kv_bytes + activation_bytes; }
  double peak() const { return std::max(total(), load_bytes); }
};

// c: the padded config (padding.hpp) the placements were made for; context: KV positions per sequence.
// prefill / decode: the steps' shapes (prefill: tokens = the chunk; empty batch (0) = no activations).
// plain_bytes: element bytes of the plain copies weight-gathered layouts keep to all-gather (Tori: f32,
// 4; an accelerator gathering its stored weights: 0).
MemoryEstimate estimate_memory(const models::ModelConfig& c, const Placement& prefill, const Placement& decode,
                               kernels::WeightFormat weights, int64_t kv_elem_bytes, int64_t context,
                               const StepShape& prefill_step = {0}, const StepShape& decode_step = {0},
                               double plain_bytes = 4.0, const TsvdPricing* tsvd = nullptr);

// Weight elements one layer's shards hold in placement p's storage (projections and W_kv), the
// factored ones (tsvd) as their factors' numbers.
double layer_weight_elems(const models::ModelConfig& padded, const Placement& p, const TsvdPricing* tsvd);

// KV-cache bytes one rank holds per position of every sequence of one layer, in the decode placement.
double kv_bytes_per_position(const models::ModelConfig& c, const Placement& decode, int64_t kv_elem_bytes);
// KV-cache bytes one rank holds at `context` positions per sequence, every layer (its window's slots
// on a local layer), exactly as the caches allocate them.
double kv_cache_bytes(const models::ModelConfig& c, const Placement& decode, int64_t kv_elem_bytes, int64_t context);

}  // namespace tori::runtime
