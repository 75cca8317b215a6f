#pragma once
// Softmax attention of new query tokens against a KvCache, for multihead (K = H), grouped
// (1 < K < H) and multiquery (K = 1) attention: query head h reads KV head h / (H / K).
//
//   q:     [B, L, H, D] f32 (rows of x @ W_q after RoPE; B and K match the cache's slice)
//   n_new: per sequence, how many of the L rows are new tokens this step (0 = idle sequence, its
//          rows come out zero). Their K/V must already be appended, so query row i of sequence b
//          sits at position p = length(b) - n_new[b] + i and sees cache positions [0, p] (causal).
//          Empty span = every sequence has L new tokens. Prefill: L = prompt block, T cached ahead
//          of it (T = 0 allowed); decode: L = 1.
//   out:   [B, L, H, D] f32, allocated if undefined. Scale 1/sqrt(D); f32 accumulation.
//
// The fast kernel reads each (sequence, KV head) block of the cache once for all H/K query heads
// that share it, in blocks of 64 positions with an online (streaming) softmax; decode splits long
// caches into chunks across threads and merges the partial softmaxes, so one sequence still uses
// every thread. attention_ref: the reference model's loops, f64 accumulation.
#include <cstdint>
#include <functional>
#include <span>

#include "kernels/kv_cache.hpp"
#include "kernels/matmul.hpp"
#include "kernels/tensor.hpp"

namespace tori::kernels {

void attention(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new, Tensor& out);
// The same attention on bf16 GEMM tiles through oneDNN (AMX, or AVX512-BF16): Q·K^T and P·V with
// Q, K, V and the softmax weights P rounded to bf16, f32 accumulation and softmax
// (attention_bf16.cpp). For prefill of the weight formats whose matmuls already round activations to
// bf16; error against attention_ref ~ 2^-8 relative (kAttentionBf16Tol in its test). Needs
// attention_bf16_available() (without bf16 instructions oneDNN would emulate them).
void attention_bf16(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new, Tensor& out);
bool attention_bf16_available();
void attention_ref(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new,
                   Tensor& out);

// FLOPs (QK^T and PV, 4·D per visible (query head, position)) and KV bytes read (each visible
// position of each KV head once per step).
KernelCost attention_cost(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new);

// Tests: run the portable block kernel even where AVX-512 exists (both must match attention_ref).
void set_force_portable_attention(bool on);
bool force_portable_attention();

namespace detail {
// Dense softmax attention with f64 accumulation: row i of sequence b, at position
// p = length(b) - n[b] + i, over the keys k <= p with allowed(p, k) (empty: all of them); rows
// i >= n[b] are zero. attention_ref and multigrain_attention_ref are this.
void attention_ref_masked(const Tensor& q, const KvCache& cache, const std::vector<int64_t>& n,
                          const std::function<bool(int64_t, int64_t)>& allowed, Tensor& out);
// Counts a step's attention FLOPs (4·H·D per visible (row, position) pair: attention_cost's count)
// and zeroes out's idle rows (i >= n[b]); returns the largest n[b]. attention and attention_bf16.
int64_t attention_count_and_clear_idle(const Tensor& q, const KvCache& cache, const std::vector<int64_t>& n,
                                       Tensor& out);
// Validates shapes; returns n_new expanded to one entry per sequence.
std::vector<int64_t> attention_check(const Tensor& q, const KvCache& cache,
                                     std::span<const int64_t> n_new, Tensor& out, const char* op);
}  // namespace detail

}  // namespace tori::kernels
