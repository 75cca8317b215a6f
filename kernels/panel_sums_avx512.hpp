#pragma once
// Shared by the batch-1 kernels that read weight panels of 64 columns (gemm_s8_f32, the int4 decode
// kernel, panel_gemv; AVX-512 translation units only): how many panels a thread takes per grab, and
// the epilogue that writes a grab's column sums.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace tori::kernels::detail {

// Panels per grab: up to `most` (the streams a thread reads in lockstep), fewer when there are too
// few panels to give every thread one grab (a [576, 192] projection has 3 panels: one grab of 3
// would leave the second thread idle).
inline int64_t panels_per_grab(int64_t P, int64_t most) {
  const int64_t T = omp_get_max_threads();
  return std::clamp<int64_t>((P + T - 1) / T, 1, most);
}

// y[n0 .. n0 + 64·np) ∩ [0, N) (=|+=) alpha · scale[n] · acc[q][j] for panels p0 .. p0 + np of 64
// columns (n0 = 64·p0); scale null: 1.
inline void store_panel_sums(const float* acc, int64_t p0, int64_t np, int64_t N, const float* scale, float alpha,
                             bool accumulate, float* y) {
  const __m512 a = _mm512_set1_ps(alpha);
  for (int64_t q = 0; q < np; ++q) {
    const int64_t n0 = (p0 + q) * 64, nn = std::min<int64_t>(64, N - n0);
    for (int64_t j = 0; j < nn; j += 16) {
      const int64_t left = nn - j;
      const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
      const __m512 f = scale ? _mm512_mul_ps(a, _mm512_maskz_loadu_ps(mask, scale + n0 + j)) : a;
      __m512 v = _mm512_mul_ps(f, _mm512_load_ps(acc + q * 64 + j));  // (alpha · scale) · sum
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, y + n0 + j));
      _mm512_mask_storeu_ps(y + n0 + j, mask, v);
    }
  }
}

}  // namespace tori::kernels::detail
