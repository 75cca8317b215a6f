#pragma once
// int4 weight-only matmul: y[M, N] = alpha · (x[M, K] @ W[K, N]) (+ y) with W group-wise 4-bit
// (quantize.hpp: codes q 0..15, an f16 scale per group of kInt4Group rows and column, and an f16
// min in the Q4_1 form). The weights are half of int8's bytes, which is what decode (M small,
// memory-bound) is about.
//
// How (as llama.cpp multiplies its Q4 blocks, but with two s8 planes of activations): the
// activations are quantised on the fly per row and group of 32 (the weights' groups) to integers
// a = 254·hi + lo with hi, lo in [-127, 127] (hi = round(x / xs), xs = amax / 127; lo = the
// remainder in units u = xs / 254), so x = u·a to within u/2 = amax / 64516: 15 bits, where one s8
// plane (llama.cpp's Q8) would leave 1/254 of amax and flip greedy tokens of the reference. A
// group's dot product is then integer: t = 254·Σ q·hi + Σ q·lo, two vpdpbusd (u8 · s8, 4 products
// per 32-bit lane) per 16 columns and 4 rows of k, and
//   Q4_0 form: y += s·u·(t − 8·Σ a)          Q4_1 form: y += s·u·t + m·u·Σ a
// (|t| <= 32 · 15 · 32385 fits i32). The activation rounding is the one accuracy cost beyond the
// weights' own quantisation; verify's int4 tolerance states it (launch/cmd_verify).
//
// Weight layout ("s4 panels"): columns cut into panels of 64; each panel is a sequence of group
// blocks, one per group g of 32 rows, stored back to back so a thread streams a panel front to back:
//   8 k-quads × 128 bytes of codes: k-quad j holds rows 4j..4j+3 of the group; byte b of its first
//                64 bytes has (row 4j + b%4) of column b/4 in the low nibble and of column 16 + b/4
//                in the high nibble; the next 64 bytes the same for columns 32.. and 48..
//                (after "& 0x0F" and ">> 4" each 64-byte line is the VNNI order [16 columns][4 k])
//   64 f16 scales, then (Q4_1 form) 64 f16 mins.
// Zero beyond N (padding columns contribute 0). K must be a multiple of kInt4Group.
// Two kernels over the same integers: M = 1 (decode) keeps a panel's 64 sums in registers for all
// its groups; M > 1 tiles 2 rows x 64 columns with sweeps of 16 rows. Their rows agree bit for bit.
#include <cstdint>
#include <vector>

#include "kernels/quantize.hpp"
#include "kernels/tensor.hpp"

namespace tori::kernels {

constexpr int64_t kS4PanelCols = 64;
constexpr int64_t kS4QuadBytes = 128;                          // 4 rows x 64 columns x 4 bits
constexpr int64_t kS4CodeBytes = kInt4Group / 4 * kS4QuadBytes;  // one group's codes: 1 KiB
// Bytes of one (panel, group) block: codes, f16 scales, f16 mins (Q4_1 form).
constexpr int64_t s4_block_bytes(bool with_min) { return kS4CodeBytes + kS4PanelCols * 2 * (with_min ? 2 : 1); }

struct PackedWeight;

// QuantizedInt4 [K, N] -> panels [ceil(N/64), K/32, s4_block_bytes] as s8 bytes.
Tensor pack_s4_panels(const QuantizedInt4& q);
// The codes, scales and mins back from the panels (tests; RoundedWeights uses quantize.hpp).
QuantizedInt4 unpack_s4_panels(const PackedWeight& w);

// The activations as the kernels multiply them: per row and group of 32, x = unit · (254·hi + lo)
// (unit = amax / (127 · 254), 0 for an all-zero group), sum = Σ (254·hi + lo). Shared by the kernel
// and the reference so both see the same integers.
constexpr int32_t kS4LoPlanes = 254;  // weight of the high plane in units of the low one
struct QuantizedActivations {
  int64_t M = 0, K = 0;
  std::vector<int8_t> hi, lo;  // [M, K]
  std::vector<float> unit;     // [M, K / 32]
  std::vector<int32_t> sum;    // [M, K / 32]
};
void quantize_activations_s8(const float* x, int64_t ldx, int64_t M, int64_t K, QuantizedActivations& out);

// x: [M, K] f32 rows of stride ldx; y: [M, N] f32 rows of stride ldy; w.format int4 or int4_min.
// Picks the AVX-512 VNNI kernel when the CPU has it, else gemm_s4_f32_ref (the portable path).
void gemm_s4_f32(const float* x, int64_t ldx, int64_t M, const PackedWeight& w, float* y, int64_t ldy,
                 float alpha, bool accumulate);
// Plain loops over the same panels and the same quantised activations, f64 over groups.
void gemm_s4_f32_ref(const float* x, int64_t ldx, int64_t M, const PackedWeight& w, float* y, int64_t ldy,
                     float alpha, bool accumulate);

namespace detail {
// AVX-512 VNNI kernel (gemm_s4_f32_avx512.cpp); call only if cpu_has_avx512_vnni().
void gemm_s4_f32_vnni(const QuantizedActivations& xq, int64_t N, const int8_t* panels, bool with_min, float* y,
                      int64_t ldy, float alpha, bool accumulate);
}  // namespace detail

}  // namespace tori::kernels
