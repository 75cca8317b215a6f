#pragma once
// Attention layouts (docs/paper.md "Attention layouts"):
//   heads       query heads stay split as the FFN layout left them; the KV cache keeps every
//               sequence of the phase's local batch and the KV heads those query heads read (for
//               multiquery: the one K/V head, replicated — the paper's baseline).
//   batch:S     an all-to-all over S (minus the axes that already split the batch) moves Q from
//               head-sharded to batch-sharded: each rank attends all heads of its B/|S| sequences
//               against its own slice of the KV cache, and a second all-to-all moves the output
//               back. Per-rank KV memory and load time shrink by |S|.
// The KV cache lives in the decode placement. A prefill whose placement differs attends against a
// cache in its own placement (StepContext::handoff_caches, kept for the chunks of one prefill) and
// then hands decode its K/V: all-gathered to the whole batch and every KV head, then sliced into
// the decode placement.
#include "kernels/tensor.hpp"
#include "runtime/step_context.hpp"

namespace tori::runtime {

// q: [B_l, L, H_l, D], this rank's (ascending) query heads for the phase's local batch B_l, before
// RoPE. kv: [B_l·L, 2·K·D], every KV head, before RoPE. Returns o: [B_l, L, H_l, D].
kernels::Tensor sharded_attention(StepContext& s, int64_t layer, const kernels::Tensor& q,
                                  const kernels::Tensor& kv, bool cache_handoff);

// True when prefill's attention placement differs from decode's (same answer on every rank).
bool needs_cache_handoff(const Placement& prefill, const Placement& decode);

}  // namespace tori::runtime
