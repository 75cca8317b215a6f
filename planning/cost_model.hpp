#pragma once
// CostModel: what one forward step (a prefill block or a decode step) of the sharded model costs on
// one rank, predicted from the model config, the torus, the phase plan and the step's shape — no
// MPI, no weights. Notation as docs/paper.md: B batch, L tokens this step (prompt length padded to the
// longest in prefill, 1 in decode), T tokens cached before the step, E, F, H, K, D, V, n = X·Y·Z.
//
// Counts (exact, per rank, for Tori's runtime as it runs the layouts):
//   traffic   bytes and messages per collective kind per axis, following the code of
//             ffn_layouts.cpp, attention_layouts.cpp, sharded_norm.cpp and sharded_model.cpp call by
//             call, each call priced with collectives/ring_plan.hpp's traffic model (what the one-way
//             ring sends; the `mpi` algorithm books the same, traffic.hpp). Activations, weight
//             gathers and partial sums travel as f32 (4 bytes per element), as Tori runs them.
//             Per layer (what ShardedModel::layer_traffic counts), with M = B_local·L rows:
//               norm      all_reduce [M, 1] over the residual's E axes (LayerNorm: twice)
//               ws1d      AG(xyz) [M, E/n] ; RS(xyz) [M, E] → [M, E/n]
//               ws2d      AG(yz) [M, E/n] ; RS(x) [M, X·u_in] ; AR(x) [M, 2KD] (K/V) ;
//                         AG(x) [M, u_out] ; RS(yz) [M, E/X]
//               wg_A      AG(x) then AG(A∩yz) of W_in, W_out (and W_kv over x) ; AG(R) [M, E/|R|] ;
//                         RS(R) [M, E]
//               attention all_to_all [B_l, L, H_l, D] over S' = S \ A, there and back;
//                         prefill with a KV-cache handoff: AG(S') then AG(A) of K and V [B_a·L, KD]
//             (u_in/u_out: a unit's projection columns/rows, placement.hpp.) The whole step adds
//             the embedding RS(A) [B·L, E] then RS(E axes) [B_A·L, E], and, on each sequence's
//             last row only (R = B rows in all), the final norm, AG(E axes) and AG(A) of the
//             hidden state, and the logits AG(xyz) [R, V/n].
//   flops     2·M·K·N of every local matmul (and each shape with its count: matmuls) (incl. the K/V projection [M, E_held]·[E_held, 2KD]
//             every rank computes — the multiquery baseline's redundancy) + attention
//             4·H_a·D·Σ_b (L·T + L(L+1)/2) over this rank's B_a sequences and H_a heads (causal;
//             ≈ 4·B·L·T·H·D / n, as kernels::attention_cost counts it; per sequence with
//             seq_tokens/seq_cached). Equal to kernels/flop_counter.hpp's counts (tested).
//             TSVD (StepQuery::tsvd): a factored weight's x·W is tsvd_matmul's nK + nN GEMMs,
//             2·M·(its factors' numbers) FLOPs; at M <= kTsvdFusedMaxM its small-batch kernel, one
//             pass over the factors, listed as the matmul [M, K] x [K, numbers/K] (same FLOPs, bytes).
//   weight_bytes  weight elements the layer's matmuls read × bytes(dtype) (gathered weights for wg;
//             factored weights: their factors' numbers × 4, 2 or 1 (f32, bf16, int8 factors); their
//             gathers carry the flattened factors, tiles + numbers (+ T_n V scales per tile when
//             int8), runtime/weight_prefetch.hpp).
//   kv_bytes  KV cache read: B_a · K_local · (T + L) · D · 2 · kv element bytes.
//   repack_bytes  weight-gathered layouts, every step: bf16/int8 place the gathered f32 weights
//             in order (a copy, 8 bytes per element, unless the gather already left them in place:
//             weight_prefetch.cpp) and pack them (pack_elements: priced at the calibrated pack rate
//             when the profile has one, step_time.hpp, else as read 4 + write bytes(dtype)); f32 multiplies each
//             gathered block where it lies (gathered_matmul: one matmul per block) with oneDNN's
//             plain-layout kernel, which copies each block once more as it goes (read 4;
//             kernels::pack_transient_weight; the default oneDNN backend is assumed). Priced at cache speed when two layers' gathered weights
//             fit in the cache (their gathers have just written them there: repack_block_bytes),
//             else at memory speed.
//   memory    per chip: weights as ShardedModel::estimate_memory counts them (f32 plain copies kept
//             for weight-gathered layouts; packed copies at the weight dtype), KV cache at a context,
//             activations of the largest step (runtime::activation_bytes: a prefill chunk's).
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "collectives/torus_shape.hpp"
#include "collectives/traffic.hpp"
#include "kernels/packed_weight.hpp"
#include "models/config.hpp"
#include "runtime/memory_estimate.hpp"
#include "runtime/plan.hpp"

namespace tori::planning {

// The layouts and plans this library prices are runtime's (runtime/plan.hpp, placement.hpp).
using runtime::FfnLayout;
using runtime::Plan;
using runtime::PhasePlan;

// Per collective kind (collectives::kCollectives order), per axis — like ShardedModel::LayerTraffic.
using TrafficTable = std::array<collectives::AxisTraffic, collectives::kCollectives.size()>;

struct StepQuery {
  models::ModelConfig config;
  collectives::TorusShape shape;
  PhasePlan plan;                        // this phase's layout
  std::optional<PhasePlan> decode_plan;  // prefill: decode's layout (KV-cache handoff if it differs)
  bool prefill = false;
  int64_t batch = 1;
  int64_t tokens = 1;  // L
  int64_t cached = 0;  // T (before the step)
  // Ragged batches (optional, size `batch`): each sequence's real new tokens (<= L; prompts are
  // padded to L but attention skips the padding) and cached tokens. Empty: L and T for all.
  std::vector<int64_t> seq_tokens, seq_cached;
  kernels::WeightFormat weights = kernels::WeightFormat::f32;
  // A TSVD checkpoint run factored (runtime::run_pricing): its weights' FLOPs, bytes
  // and weight gathers are the factors' (runtime::tsvd_pricing of the source).
  std::optional<runtime::TsvdPricing> tsvd;
  bool logits = true;  // the step ends with the logits (a chunked prefill: its last chunk only)
  // Rows the unembedding runs on (-1: batch). A prefill chunk computed on its active sequences'
  // rows only (runtime/active_batch.hpp) ends with the logits of every sequence's last row.
  int64_t logit_rows = -1;
  int64_t kv_elem_bytes = 4;       // KV cache element bytes (Tori: f32)
  collectives::Coords coords{};    // the rank predicted (traffic can differ by a message per rank)
};

// Local matmuls of one shape [M, K] x [K, N], `count` times (step_time.hpp prices each shape at
// the rate a CPU measured for it: small K·N run further below peak).
struct MatmulShape {
  int64_t M = 0, K = 0, N = 0;
  double count = 0;
};

// One collective call's traffic per axis, `count` times (step_time.hpp prices each call by its
// size when the profile has per-size collective figures: large transfers leave the caches).
struct CommCall {
  collectives::Collective kind = collectives::Collective::all_gather;
  collectives::AxisTraffic traffic{};
  double count = 0;
};

struct Work {
  double flops = 0;         // all local matmuls + attention
  double matmul_flops = 0;  // matmuls only (= Σ matmuls count·2·M·K·N)
  std::vector<MatmulShape> matmuls;
  double attn_flops = 0;
  double weight_bytes = 0;
  double kv_bytes = 0;
  double repack_bytes = 0;  // weight-gathered: bytes read and written rearranging gathered weights
  double pack_elements = 0;  // weight-gathered bf16/int8: gathered elements packed for the kernel
  double repack_block_bytes = 0;  // weight-gathered: gathered weights resident at once (two layers'
                                  // f32: one in use, the next arriving), just written by their gathers
  TrafficTable traffic{};
  std::vector<CommCall> calls;  // the same traffic, call by call
  Work& operator+=(const Work& o);
  Work scaled(int64_t k) const;  // k copies (the layer loop)
};

struct StepCost {
  Work layer;         // one transformer layer (ShardedModel::layer_traffic's scope)
  Work step;          // the whole step: n_layers · layer + embedding, final norm, logits
  double model_flops = 0;  // useful FLOPs of the step over all chips (no redundant K/V): MFU's numerator
  int64_t tokens = 0;      // tokens processed: B·L
  int64_t rows = 0;        // M = B_local·L: rows of this rank's layer matmuls
  int64_t row_split = 1;   // ranks one row's elementwise work (RoPE, softmax, SwiGLU) is split over:
                           // n / |batch axes| (its heads and F are split over the rest)
  int64_t sequences = 0;   // B_a: sequences this rank attends (each an attention call and a KV-cache
                           // append: decode's per-row work, which heads-sharded attention does not split)
  int64_t layers = 0;      // transformer layers in the step
  bool prefill = false;
  bool handoff = false;    // prefill hands its K/V to decode's placement
};

StepCost predict_step(const StepQuery& q);

// Query heads the cost model splits over the n chips (the one place the model's head count is read:
// padded heads, when placement pads them, are counted here).
int64_t modelled_heads(const models::ModelConfig& c);

// Per-rank memory: runtime/memory_estimate.hpp's formula (the one ShardedModel refuses a run with)
// for rank 0's placements, the KV cache of the decode placement at `context` tokens per sequence.
// Per layer, averaged over the model's layers: (query, key) pairs one sequence's step of `tokens`
// new positions after `cached` attends (each layer under its pattern: causal, or a local layer's
// window and sinks), and the KV positions it reads.
double mean_allowed_pairs(const models::ModelConfig& c, int64_t cached, int64_t tokens);
double mean_kv_positions(const models::ModelConfig& c, int64_t cached, int64_t tokens);

using MemoryCost = runtime::MemoryEstimate;
// prefill_step / decode_step: the steps' shapes for their activations (batch 0: none; a handoff is
// filled in here); plain_bytes as estimate_memory's.
MemoryCost predict_memory(const models::ModelConfig& c, const collectives::TorusShape& shape,
                          const PhasePlan& prefill, const PhasePlan& decode, int64_t batch,
                          int64_t context, kernels::WeightFormat weights, int64_t kv_elem_bytes,
                          runtime::StepShape prefill_step = {0}, runtime::StepShape decode_step = {0},
                          double plain_bytes = 4.0,
                          const runtime::TsvdPricing* tsvd = nullptr);

// Largest context (tokens per sequence) whose KV cache fits in `budget_bytes` per chip for the
// decode layout `decode` (0 if not even one token fits; kUnboundedContext when every layer keeps a
// sliding window that fits: the cache stops growing). Local layers count their window's slots; the
// bytes are what the runtime allocates at that context (runtime::kv_cache_bytes, padded heads).
constexpr int64_t kUnboundedContext = -1;
int64_t max_context(const models::ModelConfig& c, const collectives::TorusShape& shape,
                    const PhasePlan& decode, int64_t batch, double budget_bytes, int64_t kv_elem_bytes);

}  // namespace tori::planning
