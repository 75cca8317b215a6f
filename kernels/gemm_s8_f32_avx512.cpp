// AVX-512 int8 weight-only kernel (see gemm_s8_f32.hpp). Compiled with -mavx512f/bw/vl/dq; only
// reached after cpu_has_avx512() returned true.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/gemm_s8_f32.hpp"
#include "kernels/panel_sums_avx512.hpp"

namespace tori::kernels::detail {

namespace {

constexpr int64_t kRowsPerGroup = 4;   // rows of x per register tile: 4 rows x 4 zmm = 16 accumulators
// M = 1: panels per thread read in lockstep, and rows of k prefetched ahead in each. One stream
// per thread read 0.67-0.80 of the machine's read bandwidth (1 and 2 threads, Sapphire Rapids,
// 16384 x 16384 s8 from memory); 2 streams 0.79-0.91, 4 streams 0.91-0.94, 8 no better.
constexpr int64_t kGemvPanels = 4;
constexpr int64_t kGemvPrefetchRows = 16;
constexpr int64_t kChunkK = 256;       // k per pass: 256 x 64 B = 16 KiB of panel stays in L1 while
                                       // each group of rows re-reads it

// 16 s8 -> 16 f32 (vpmovsxbd + vcvtdq2ps). The maskz forms with an all-ones mask are the same
// instructions; they avoid GCC 12's false -Wmaybe-uninitialized on _mm512_undefined_*().
inline __m512 s8x16_to_f32(const int8_t* p) {
  const __m512i i32 = _mm512_maskz_cvtepi8_epi32(0xFFFF, _mm_load_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm512_maskz_cvtepi32_ps(0xFFFF, i32);
}

// acc[MR][64] += x[0..MR)[k0..k1) @ panel[k0..k1)[64]
template <int MR>
inline void panel_tile(const float* x, int64_t ldx, const int8_t* panel, int64_t k0, int64_t k1,
                       float* acc) {
  __m512 c[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < 4; ++j) c[r][j] = _mm512_loadu_ps(acc + r * 64 + j * 16);
  for (int64_t k = k0; k < k1; ++k) {
    const int8_t* wr = panel + k * kS8PanelCols;
    _mm_prefetch(reinterpret_cast<const char*>(wr + 16 * kS8PanelCols), _MM_HINT_T0);
    const __m512 w0 = s8x16_to_f32(wr);
    const __m512 w1 = s8x16_to_f32(wr + 16);
    const __m512 w2 = s8x16_to_f32(wr + 32);
    const __m512 w3 = s8x16_to_f32(wr + 48);
    for (int r = 0; r < MR; ++r) {
      const __m512 xb = _mm512_set1_ps(x[r * ldx + k]);
      c[r][0] = _mm512_fmadd_ps(xb, w0, c[r][0]);
      c[r][1] = _mm512_fmadd_ps(xb, w1, c[r][1]);
      c[r][2] = _mm512_fmadd_ps(xb, w2, c[r][2]);
      c[r][3] = _mm512_fmadd_ps(xb, w3, c[r][3]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < 4; ++j) _mm512_storeu_ps(acc + r * 64 + j * 16, c[r][j]);
}

void panel_rows(const float* x, int64_t ldx, int64_t mr, const int8_t* panel, int64_t k0,
                int64_t k1, float* acc) {
  switch (mr) {
    case 1: panel_tile<1>(x, ldx, panel, k0, k1, acc); break;
    case 2: panel_tile<2>(x, ldx, panel, k0, k1, acc); break;
    case 3: panel_tile<3>(x, ldx, panel, k0, k1, acc); break;
    default: panel_tile<4>(x, ldx, panel, k0, k1, acc); break;
  }
}

// acc[NP][64] = x[0..K) @ NP consecutive panels (panel stride pd), in lockstep over k: NP sequential
// streams per thread and NP x 4 independent accumulators.
template <int NP>
inline void gemv_panels(const float* x, const int8_t* panel0, int64_t K, int64_t pd, float* out) {
  __m512 c[NP][4];
  for (int q = 0; q < NP; ++q)
    for (int j = 0; j < 4; ++j) c[q][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m512 xb = _mm512_set1_ps(x[k]);
    for (int q = 0; q < NP; ++q) {
      const int8_t* wr = panel0 + q * pd + k * kS8PanelCols;
      _mm_prefetch(reinterpret_cast<const char*>(wr + kGemvPrefetchRows * kS8PanelCols), _MM_HINT_T0);
      for (int j = 0; j < 4; ++j) c[q][j] = _mm512_fmadd_ps(xb, s8x16_to_f32(wr + 16 * j), c[q][j]);
    }
  }
  for (int q = 0; q < NP; ++q)
    for (int j = 0; j < 4; ++j) _mm512_store_ps(out + q * kS8PanelCols + j * 16, c[q][j]);
}

}  // namespace

void gemm_s8_f32_avx512(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t N,
                        const int8_t* panels, const float* scales, float* y, int64_t ldy,
                        float alpha, bool accumulate) {
  const int64_t P = (N + kS8PanelCols - 1) / kS8PanelCols;
  if (M == 1) {
    const int64_t NP = panels_per_grab(P, kGemvPanels), groups = (P + NP - 1) / NP;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t gi = 0; gi < groups; ++gi) {
      alignas(64) float acc[kGemvPanels * kS8PanelCols];
      const int64_t p0 = gi * NP, np = std::min(NP, P - p0);
      const int8_t* panel = panels + p0 * K * kS8PanelCols;
      switch (np) {
        case 4: gemv_panels<4>(x, panel, K, K * kS8PanelCols, acc); break;
        case 3: gemv_panels<3>(x, panel, K, K * kS8PanelCols, acc); break;
        case 2: gemv_panels<2>(x, panel, K, K * kS8PanelCols, acc); break;
        default: gemv_panels<1>(x, panel, K, K * kS8PanelCols, acc); break;
      }
      store_panel_sums(acc, p0, np, N, scales, alpha, accumulate, y);
    }
    return;
  }
  // Rows of x beyond kS8SmallBatchMax are handled in further sweeps over the weights.
  for (int64_t m_base = 0; m_base < M; m_base += kS8SmallBatchMax) {
    const int64_t mb = std::min(kS8SmallBatchMax, M - m_base);
    const float* xb = x + m_base * ldx;
    float* yb = y + m_base * ldy;
    // Dynamic, one panel (K x 64 bytes, e.g. 512 KiB at K = 8192) at a time: each grab is a long
    // sequential stream, and a thread that loses its core for a while does not hold back the rest.
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t p = 0; p < P; ++p) {
      alignas(64) float acc[kS8SmallBatchMax * kS8PanelCols];
      std::memset(acc, 0, sizeof(float) * size_t(mb * kS8PanelCols));
      const int8_t* panel = panels + p * K * kS8PanelCols;
      for (int64_t k0 = 0; k0 < K; k0 += kChunkK) {
        const int64_t k1 = std::min(K, k0 + kChunkK);
        for (int64_t m0 = 0; m0 < mb; m0 += kRowsPerGroup)
          panel_rows(xb + m0 * ldx, ldx, std::min(kRowsPerGroup, mb - m0), panel, k0, k1,
                     acc + m0 * kS8PanelCols);
      }
      // Epilogue: per-channel scale after the matmul, times alpha, stored or accumulated.
      const int64_t n0 = p * kS8PanelCols, nn = std::min(kS8PanelCols, N - n0);
      const __mmask16 tail_all = 0xFFFF;
      for (int64_t m = 0; m < mb; ++m) {
        for (int64_t j = 0; j < nn; j += 16) {
          const int64_t left = nn - j;
          const __mmask16 mask = left >= 16 ? tail_all : __mmask16((1u << left) - 1u);
          __m512 s = _mm512_mul_ps(_mm512_set1_ps(alpha), _mm512_maskz_loadu_ps(mask, scales + n0 + j));
          __m512 v = _mm512_mul_ps(s, _mm512_load_ps(acc + m * kS8PanelCols + j));
          float* dst = yb + m * ldy + n0 + j;
          if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, dst));
          _mm512_mask_storeu_ps(dst, mask, v);
        }
      }
    }
  }
}

}  // namespace tori::kernels::detail
