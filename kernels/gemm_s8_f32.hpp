#pragma once
// int8 weight-only matmul for small batch (decode): y[M, N] = alpha * scale[n] * (x[M, K] @ q[K, N])
// (+ y when accumulating). Up to 16 rows of x per sweep over the weights: the int8 weights are read
// once per sweep and dequantised in registers (AVX-512: 16 s8 -> 16 f32 per vpmovsxbd + vcvtdq2ps,
// then one FMA per row of x). Memory-bound at M = 1; near the f32 FMA peak from M = 8.
//
// Weight layout ("s8 panels"): columns are cut into panels of 64 (one cache line of s8 per k), each
// panel stored [K][64] contiguously: panels[p][k][j] = q[k, 64p + j], zero beyond N. A thread
// streams whole panels front to back, so every byte fetched is used; at M = 1 it takes 4 panels at
// a time and reads them in lockstep (4 sequential streams: one left the memory system idle).
#include <cstdint>

#include "kernels/tensor.hpp"

namespace tori::kernels {

constexpr int64_t kS8PanelCols = 64;       // one 64-byte cache line of s8 per panel row
constexpr int64_t kS8SmallBatchMax = 16;   // largest M the register-dequantising kernel takes
static_assert(kS8PanelCols * sizeof(int8_t) == 64, "an s8 panel row must be one cache line");

struct PackedWeight;

// q: [K, N] s8 -> [ceil(N/64), K, 64] s8.
Tensor pack_s8_panels(const Tensor& q);

// x: [M, K] f32 rows of stride ldx; y: [M, N] f32 rows of stride ldy; w.format == int8.
// Picks the AVX-512 kernel when the CPU has it, else gemm_s8_f32_ref. Any M works; matmul() uses it
// up to kInt8RegisterKernelMaxM rows (matmul.hpp), where dequantise + bf16 GEMM takes over.
void gemm_s8_f32(const float* x, int64_t ldx, int64_t M, const PackedWeight& w, float* y,
                 int64_t ldy, float alpha, bool accumulate);
// Plain loops over the same panels (portable fallback and the kernel's own yardstick).
void gemm_s8_f32_ref(const float* x, int64_t ldx, int64_t M, const PackedWeight& w, float* y,
                     int64_t ldy, float alpha, bool accumulate);

// Dequantise panels [p0, p0 + np) into a row-major [K, np*64] buffer (large-batch path):
//   _bf16: the integer q exactly (|q| <= 127 fits bf16's 8-bit significand); the scale is applied
//          after the matmul.
//   _f32 : q * scale[n] (f32 keeps 24 bits: the product is exact to 2^-24 relative).
void dequantize_s8_panels_bf16(const PackedWeight& w, int64_t p0, int64_t np, uint16_t* dst);
void dequantize_s8_panels_f32(const PackedWeight& w, int64_t p0, int64_t np, float* dst);

namespace detail {
// AVX-512 kernel (gemm_s8_f32_avx512.cpp, compiled with -mavx512*); call only if cpu_has_avx512().
void gemm_s8_f32_avx512(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t N,
                        const int8_t* panels, const float* scales, float* y, int64_t ldy,
                        float alpha, bool accumulate);
}  // namespace detail

}  // namespace tori::kernels
