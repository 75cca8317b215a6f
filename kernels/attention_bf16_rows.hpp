#pragma once
// Row loops of attention on bf16 tiles (internal to kernels/: attention_bf16.cpp), in AVX-512 +
// AVX512-BF16 (attention_bf16_avx512.cpp; callers check attention_bf16_available() first).
#include <cstdint>

namespace tori::kernels::detail {

// One row's step of the streaming softmax over a chunk of w scores s, of which the first lim are
// visible (lim <= 0: none): p[0, w) = bf16(e^(s − m')) (0 past lim), m' = max(m, max s[0, lim)),
// l = l·e^(m − m') + Σ p (the rounded weights, as P·V uses them); m updated. Returns e^(m − m')
// (0 when the row had seen nothing, 1 when this chunk shows it nothing).
float softmax_chunk_row_avx512(const float* s, int64_t lim, int64_t w, uint16_t* p, float* m, float* l);

// dst[i] = bf16(src[i] · scale), i < n (round to nearest even).
void round_rows_bf16_avx512(const float* src, int64_t n, float scale, uint16_t* dst);

}  // namespace tori::kernels::detail
