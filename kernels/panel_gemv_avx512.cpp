// AVX-512 GEMV over oneDNN's packed weight panels (panel_gemv.hpp). Compiled with -mavx512f/bw/vl/dq
// and -mavx512bf16; the bf16 kernel is only reached after cpu_has_avx512_bf16(), the f32 one after
// cpu_has_avx512().
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/panel_gemv.hpp"
#include "kernels/panel_sums_avx512.hpp"

namespace tori::kernels::detail {

namespace {

constexpr int64_t kPanelsPerGrab = 4;    // panels a thread reads in lockstep (streams per thread)
constexpr int64_t kPrefetchBytes = 1024; // how far ahead of each stream the lines are requested

// out[NP][64] = x @ NP consecutive f32 panels (stride pd floats).
template <int NP>
void f32_panels(const float* x, int64_t K, const float* w, int64_t pd, float* out) {
  __m512 c[NP][4];
  for (int q = 0; q < NP; ++q)
    for (int j = 0; j < 4; ++j) c[q][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m512 xb = _mm512_set1_ps(x[k]);
    for (int q = 0; q < NP; ++q) {
      const float* row = w + q * pd + k * kGemvPanelCols;
      _mm_prefetch(reinterpret_cast<const char*>(row) + kPrefetchBytes, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(row) + kPrefetchBytes + 128, _MM_HINT_T0);
      for (int j = 0; j < 4; ++j) c[q][j] = _mm512_fmadd_ps(xb, _mm512_loadu_ps(row + 16 * j), c[q][j]);
    }
  }
  for (int q = 0; q < NP; ++q)
    for (int j = 0; j < 4; ++j) _mm512_store_ps(out + q * kGemvPanelCols + 16 * j, c[q][j]);
}

// out[NP][64] = x @ NP consecutive bf16 panels (stride pd elements): per pair of k, one vdpbf16ps
// per 16 columns with (x[k], x[k+1]) broadcast as one 32-bit lane.
template <int NP>
void bf16_panels(const uint16_t* x, int64_t K, const uint16_t* w, int64_t pd, float* out) {
  __m512 c[NP][4];
  for (int q = 0; q < NP; ++q)
    for (int j = 0; j < 4; ++j) c[q][j] = _mm512_setzero_ps();
  const int64_t pairs = K / 2;
  auto step = [&](int64_t t, uint32_t xp) {
    const __m512bh xb = (__m512bh)_mm512_set1_epi32(int32_t(xp));
    for (int q = 0; q < NP; ++q) {
      const uint16_t* row = w + q * pd + t * 2 * kGemvPanelCols;
      _mm_prefetch(reinterpret_cast<const char*>(row) + kPrefetchBytes, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(row) + kPrefetchBytes + 128, _MM_HINT_T0);
      for (int j = 0; j < 4; ++j)
        c[q][j] = _mm512_dpbf16_ps(c[q][j], xb, (__m512bh)_mm512_loadu_si512(row + 32 * j));
    }
  };
  for (int64_t t = 0; t < pairs; ++t) {
    uint32_t xp;
    std::memcpy(&xp, x + 2 * t, 4);
    step(t, xp);
  }
  if (K % 2) step(pairs, uint32_t(x[K - 1]));  // (x[K-1], 0): the weight's k = K row is zero padding
  for (int q = 0; q < NP; ++q)
    for (int j = 0; j < 4; ++j) _mm512_store_ps(out + q * kGemvPanelCols + 16 * j, c[q][j]);
}

template <typename X, typename W, typename Panels>
void run(const X* x, int64_t K, int64_t kp, const W* panels, int64_t N, float* y, float alpha, bool accumulate,
         Panels panels_fn) {
  const int64_t P = (N + kGemvPanelCols - 1) / kGemvPanelCols, pd = kp * kGemvPanelCols;
  const int64_t per_grab = panels_per_grab(P, kPanelsPerGrab);
  const int64_t grabs = (P + per_grab - 1) / per_grab;
  // Dynamic, 4 panels per grab: long sequential streams, and a thread that loses its core for a
  // while does not hold back the rest.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t g = 0; g < grabs; ++g) {
    alignas(64) float acc[kPanelsPerGrab * kGemvPanelCols];
    const int64_t p0 = g * per_grab, np = std::min(per_grab, P - p0);
    panels_fn(np, x, K, panels + p0 * pd, pd, acc);
    store_panel_sums(acc, p0, np, N, nullptr, alpha, accumulate, y);
  }
}

}  // namespace

void panel_gemv_f32_avx512(const float* x, int64_t K, int64_t kp, const float* panels, int64_t N, float* y,
                           float alpha, bool accumulate) {
  run(x, K, kp, panels, N, y, alpha, accumulate,
      [](int64_t np, const float* x, int64_t K, const float* w, int64_t pd, float* acc) {
        switch (np) {
          case 4: f32_panels<4>(x, K, w, pd, acc); break;
          case 3: f32_panels<3>(x, K, w, pd, acc); break;
          case 2: f32_panels<2>(x, K, w, pd, acc); break;
          default: f32_panels<1>(x, K, w, pd, acc); break;
        }
      });
}

void panel_gemv_bf16_avx512(const uint16_t* x, int64_t K, int64_t kp, const uint16_t* panels, int64_t N,
                            float* y, float alpha, bool accumulate) {
  run(x, K, kp, panels, N, y, alpha, accumulate,
      [](int64_t np, const uint16_t* x, int64_t K, const uint16_t* w, int64_t pd, float* acc) {
        switch (np) {
          case 4: bf16_panels<4>(x, K, w, pd, acc); break;
          case 3: bf16_panels<3>(x, K, w, pd, acc); break;
          case 2: bf16_panels<2>(x, K, w, pd, acc); break;
          default: bf16_panels<1>(x, K, w, pd, acc); break;
        }
      });
}

}  // namespace tori::kernels::detail
