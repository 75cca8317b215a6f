#pragma once
// Batch-1 matmul (GEMV) over oneDNN's packed f32 and bf16 weights, read where they lie: y[N]
// (=|+=) alpha * x[K] @ W. oneDNN 2.6's brgemm matmul streams these weights at M = 1 at 0.65-0.75
// of the machine's read bandwidth; this kernel reads 4 column panels per thread in lockstep (4
// sequential streams, as the read-bandwidth measurement reads) and reaches ~0.9
// (docs/measurements/kernels.md "Decode GEMV").
//
// The layouts brgemm picks for [K, N] weights (format_tag::any) are column panels of 64:
//   f32   BA16a64b    panel p = [Kp][64] f32            W[k, 64p + j] at p*Kp*64 + k*64 + j
//   bf16  BA16a64b2a  panel p = [Kp/2][64][2] bf16      W[k, 64p + j] at p*Kp*64 + (k/2)*128 + 2j + k%2
// with Kp = K rounded up to the K block (16 for f32, 32 for bf16) and zeros beyond K and N. A weight
// in any other layout (the desc says which) keeps oneDNN's own kernel.
#include <cstdint>

namespace tori::kernels::detail {

enum class PanelLayout : uint8_t { none, f32_16a64b, bf16_16a64b2a };

constexpr int64_t kGemvPanelCols = 64;

// x: K values (f32, or bf16 for the bf16 layout, never read beyond K); panels: the packed weight;
// kp: padded K (the panel stride is kp * 64 elements). AVX-512 (bf16: AVX512-BF16) only: callers
// check cpu_has_avx512() / cpu_has_avx512_bf16() first.
void panel_gemv_f32_avx512(const float* x, int64_t K, int64_t kp, const float* panels, int64_t N, float* y,
                           float alpha, bool accumulate);
void panel_gemv_bf16_avx512(const uint16_t* x, int64_t K, int64_t kp, const uint16_t* panels, int64_t N,
                            float* y, float alpha, bool accumulate);

}  // namespace tori::kernels::detail
