#pragma once
// Multigrain sparse attention (docs/multigrain.md): softmax attention of new query tokens against a
// KvCache under an AttentionPattern (sliding window, global tokens, block-random), with the same
// contract as kernels::attention (attention.hpp) otherwise:
//
//   q:     [B, L, H, D] f32 (B and K match the cache's slice; H a multiple of K: MHA, GQA, MQA)
//   n_new: per sequence, how many of the L rows are new tokens (0 = idle, rows come out zero); their
//          K/V already appended, so row i of sequence b sits at position p = length(b) - n_new[b] + i
//          and sees the cached positions k <= p the pattern allows. Empty span = L for every
//          sequence. Prefill: L = prompt block (T cached ahead allowed); decode: L = 1.
//   out:   [B, L, H, D] f32, allocated if undefined. Scale 1/sqrt(D); f32 accumulation.
//
// Each sequence's split (cached_split: once per (pattern, L, T, offset)) gives per query block of
// 64 tokens coarse runs of keys every query of the block sees — run as two small dense GEMMs
// (S = Q_tile · K_tileᵀ, softmax, O = P · V_tile; oneDNN's plain-layout matmul, or OpenBLAS sgemm
// with `gemm`, single-threaded per item) — and
// fine pieces, run by the attention block kernel (AVX-512 or portable) with a per-row start and
// end. Runs and pieces are independent work items with their own partial softmax (max m, sum l,
// unnormalised acc), scheduled together over the rank's OpenMP threads; each query block's partials
// are then merged by the log-sum-exp rule. `grain` selects the single-grain variants the benchmark
// compares (Grain::coarse: every touched key block as a masked GEMM tile; Grain::fine: everything
// by the block kernel; Grain::dense: every causal tile masked, i.e. dense attention under the mask).
//
// multigrain_attention_ref: dense masked loops with f64 accumulation (the yardstick).
#include <cstdint>
#include <span>

#include "kernels/attention_pattern.hpp"
#include "kernels/backend.hpp"
#include "kernels/kv_cache.hpp"
#include "kernels/matmul.hpp"
#include "kernels/tensor.hpp"

namespace tori::kernels {

void multigrain_attention(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new,
                          const AttentionPattern& pattern, Tensor& out, Grain grain = Grain::multi,
                          Backend gemm = Backend::onednn);
void multigrain_attention_ref(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new,
                              const AttentionPattern& pattern, Tensor& out);

// FLOPs (4·D per allowed (query head, position) pair: QKᵀ and PV) and bytes (the KV positions any
// query sees, once per KV head, plus q and out).
// multigrain_assigned_flops: 4·H·D per (query, key) pair the variant's split assigns: runs whole
// (masked padding included), fine pieces as pieces (the block kernel also computes the rest of
// each 64-key block a piece touches, which this does not count).
KernelCost multigrain_attention_cost(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new,
                                     const AttentionPattern& pattern);
double multigrain_assigned_flops(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new,
                                  const AttentionPattern& pattern, Grain grain);

}  // namespace tori::kernels
