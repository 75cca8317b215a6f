#pragma once
// What one rank holds for a model, plan and batch, computed from the placements before anything is
// allocated — the one memory formula: ShardedModel refuses a run that will not fit with it, and
// the cost model and `tori plan` (planning/cost_model.hpp) report it.
//   weights   per storage the phases use ("E_x F_yz" and/or "E F_xyz", placement.hpp): every layer's
//             projection shards and W_kv [E rows held, 2KD] at the weight format's element bytes
//             (int8's per-column scales neglected), plus the f32 plain copies the weight-gathered
//             layouts keep to all-gather; the embedding block [V/n, E] (and the unembedding when
//             untied) and the RoPE table [max_seq, D], f32
//   KV cache  layers · B_a · K_local · context · D · 2 (K and V) · KV element bytes, in the decode
//             placement (B_a sequences attended here, K_local KV heads kept)
#include <cstdint>

#include "kernels/packed_weight.hpp"
#include "models/config.hpp"
#include "runtime/placement.hpp"

namespace tori::runtime {

// Bytes of one stored weight element in a format (int8's per-channel scales neglected).
double weight_element_bytes(kernels::WeightFormat f);

struct MemoryEstimate {
  double weight_bytes = 0, kv_bytes = 0;
  double total() const { return weight_bytes + kv_bytes; }
};

// c: the padded config (padding.hpp) the placements were made for; context: KV positions per sequence.
MemoryEstimate estimate_memory(const models::ModelConfig& c, const Placement& prefill, const Placement& decode,
                               kernels::WeightFormat weights, int64_t kv_elem_bytes, int64_t context);

// KV-cache bytes one rank holds per position of every sequence, in the decode placement.
double kv_bytes_per_position(const models::ModelConfig& c, const Placement& decode, int64_t kv_elem_bytes);

}  // namespace tori::runtime
