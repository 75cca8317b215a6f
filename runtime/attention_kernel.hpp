#pragma once
// Which kernel attends a layer under its pattern: --attention-kernel (a global flag; it travels in
// ShardOptions to every command that runs the sharded model; docs/multigrain.md "In the runtime").
//
//   auto          causal attention (kernels/attention.hpp) where every query sees every slot it
//                 could causally (no sequence's slots exceed the window: a short context), else
//                 multigrain attention — the default
//   multigrain    multigrain attention (coarse GEMM tiles + fine pieces, concurrently) whatever the
//                 context
//   coarse        single grain, padded blocks: every 64-key block a query block touches as a masked
//                 GEMM tile
//   fine          single grain, fine-grained: every allowed key interval by the block kernel
//   dense-masked  dense attention under the pattern's mask: every causal 64-key block as a masked
//                 GEMM tile
//
// The choice applies to layers with a sparse pattern (a sliding window, sinks); a layer whose
// pattern is plain causal (a global layer, a model without a window) always runs the causal kernel,
// which is dense attention already. Every choice computes the same attention (kMultigrainTol).
#include <cstdint>
#include <span>
#include <string>

#include "kernels/attention_pattern.hpp"
#include "kernels/backend.hpp"
#include "kernels/packed_weight.hpp"
#include "kernels/kv_cache.hpp"
#include "kernels/tensor.hpp"

namespace tori::runtime {

enum class AttentionKernel : uint8_t { automatic, multigrain, coarse, fine, dense_masked };

// "auto", "multigrain", "coarse", "fine", "dense-masked" (InputError naming `flag` and the allowed
// values otherwise).
AttentionKernel parse_attention_kernel(const std::string& text, const std::string& flag);
std::string attention_kernel_name(AttentionKernel k);

// q [B, L, H, D] against `cache` under `pattern` with the chosen kernel (multigrain_attention.hpp's
// contract: n_new per sequence, o allocated if undefined). bf16_tiles: the run's matmuls round
// activations to bf16 (bf16 and int8 weights on oneDNN; bf16_attention_applies), so causal prefill
// of kBf16TilesMinTokens or more new tokens runs on bf16 GEMM tiles (kernels::attention_bf16) where
// the CPU has bf16 instructions; decode and f32 runs keep the f32 kernel.
inline constexpr int64_t kBf16TilesMinTokens = 16;
void attend_with_kernel(const kernels::Tensor& q, const kernels::KvCache& cache, std::span<const int64_t> n_new,
                        const kernels::AttentionPattern& pattern, AttentionKernel choice, kernels::Tensor& o,
                        bool bf16_tiles = false);
// Whether a run with these weights and matmul backend attends on bf16 tiles (above).
bool bf16_attention_applies(kernels::WeightFormat format, kernels::Backend backend);

}  // namespace tori::runtime
