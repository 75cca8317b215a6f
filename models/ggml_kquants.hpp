#pragma once
// The llama.cpp "k-quant" formats: 256-element super-blocks made of sub-blocks that each carry a
// small integer scale (and, for the asymmetric ones, a min), the integers themselves scaled by one
// or two f16 numbers per super-block. Decoders only (Tori reads these files, it does not write
// them); bit-exact with ggml's dequantize_row_q*_K and the `gguf` package's numpy dequantisers.
//
//   Q2_K (84 bytes): 16 bytes of (4-bit scale, 4-bit min) for 16 sub-blocks of 16 (scale in the low
//        nibble), 64 bytes of 2-bit q, f16 d, f16 dmin.
//                                       value = (d * scale_s) * q - (dmin * min_s),  q in 0..3
//   Q3_K (110 bytes): 32 bytes of high bits (hmask), 64 bytes of 2-bit low parts, 12 bytes of 6-bit
//        scales for 16 sub-blocks of 16 (stored + 32), f16 d.
//                                       value = (d * (scale_s - 32)) * (q - 4 * !high),  q in 0..3
//   Q4_K (144 bytes): f16 d, f16 dmin, 12 bytes of 6-bit (scale, min) pairs for 8 sub-blocks of 32,
//        128 bytes of nibbles.          value = (d * scale_s) * q - (dmin * min_s),  q in 0..15
//   Q5_K (176 bytes): as Q4_K, then 32 bytes of fifth bits (qh), then the 128 bytes of nibbles.
//                                       value = (d * scale_s) * q - (dmin * min_s),  q in 0..31
//   Q6_K (210 bytes): 128 bytes of low nibbles (ql), 64 bytes of 2-bit high parts (qh), 16 int8
//        scales for 16 sub-blocks of 16, f16 d.   value = (d * scale_s) * (q - 32),  q in 0..63
//
// The packing (element e of a super-block; s its sub-block):
//   Q2_K / Q3_K: the 64 bytes of 2-bit fields are two halves of 32 bytes; element h*128 + f of half
//     h is bits 2*(f / 32) and up of byte 32h + f % 32. s = e / 16. Q3_K's high bit of e is bit
//     e / 32 of hmask[e % 32] (a clear bit subtracts 4); its scale_s has its low 4 bits in byte s
//     (low nibble) for s < 8, byte s - 8 (high nibble) for s >= 8, and its high 2 bits in byte
//     8 + s % 4 at bit 2*(s / 4).
//   Q4_K / Q5_K: the 128 nibble bytes are 4 chunks of 32; element 64c + i (i < 32) is the low nibble
//     of byte 32c + i, element 64c + 32 + i its high nibble. s = e / 32. Q5_K's fifth bit of e is bit
//     s of qh[e % 32]. The 12 scale bytes hold scale_s and min_s (6 bits each): for s < 4 the low 6
//     bits of bytes s and s + 4; for s >= 4 the low nibble (scale) and high nibble (min) of byte
//     s + 4 give the low 4 bits, and the top 2 bits of bytes s - 4 (scale) and s (min) the high 2.
//   Q6_K: two halves of 128 elements, each with 64 ql bytes and 32 qh bytes. Element h*128 + e of
//     half h: low 4 bits from ql[64h + e % 64] (low nibble for e < 64, high nibble otherwise), high
//     2 bits from qh[32h + e % 32] bits 2*(e / 32) and up. s = (h*128 + e) / 16.
//
// The order of the float operations is the format's (a product of the two scales first, then the
// product with q, then the subtraction), so results are bit-identical to the reference decoders;
// this file is compiled with -ffp-contract=off so that no fused multiply-add changes a rounding.
#include <cstdint>

namespace tori::models {

constexpr int64_t kQK_K = 256;  // elements per k-quant super-block
constexpr int64_t kQ2KBytes = kQK_K / 16 + kQK_K / 4 + 2 + 2;
constexpr int64_t kQ3KBytes = kQK_K / 8 + kQK_K / 4 + 12 + 2;
constexpr int64_t kQ4KBytes = 2 + 2 + 12 + kQK_K / 2;
constexpr int64_t kQ5KBytes = 2 + 2 + 12 + kQK_K / 8 + kQK_K / 2;
constexpr int64_t kQ6KBytes = kQK_K / 2 + kQK_K / 4 + kQK_K / 16 + 2;

// Each decodes `n_blocks` consecutive super-blocks at `src` into n_blocks * 256 floats at `dst`.
void dequantize_q2_k(const unsigned char* src, int64_t n_blocks, float* dst);
void dequantize_q3_k(const unsigned char* src, int64_t n_blocks, float* dst);
void dequantize_q4_k(const unsigned char* src, int64_t n_blocks, float* dst);
void dequantize_q5_k(const unsigned char* src, int64_t n_blocks, float* dst);
void dequantize_q6_k(const unsigned char* src, int64_t n_blocks, float* dst);

}  // namespace tori::models
