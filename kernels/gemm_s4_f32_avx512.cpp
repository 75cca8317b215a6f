// AVX-512 VNNI int4 weight-only kernel (see gemm_s4_f32.hpp). Compiled with -mavx512f/bw/vnni and
// -mf16c; only reached after cpu_has_avx512_vnni() returned true.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/gemm_s4_f32.hpp"
#include "kernels/panel_sums_avx512.hpp"

namespace tori::kernels::detail {

namespace {

// (The maskz conversions with an all-ones mask are the plain instructions; they avoid GCC 12's
// false -Wmaybe-uninitialized on _mm512_undefined_ps().)
constexpr int64_t kRowsPerTile = 2;   // rows of x per register tile: 2 rows x 2 planes x 4 zmm of i32 sums
constexpr int64_t kRowsPerSweep = 16; // rows whose f32 sums (16 x 64 x 4 B = 4 KiB) stay in L1

// One group (32 rows of k) of one panel for MR rows: i32 dot products by vpdpbusd on both
// activation planes, t = 254·t_hi + t_lo, then
//   acc[r][j] += s[j]·u[r]·(t[r][j] − 8·Σa[r])      (Q4_0 form)
//   acc[r][j] += s[j]·u[r]·t[r][j] + m[j]·u[r]·Σa[r] (Q4_1 form)
template <int MR, bool kMin>
inline void group_tile(const uint8_t* block, const int8_t* qhi, const int8_t* qlo, int64_t K, const float* xs,
                       const int32_t* xsum, int64_t G, float* acc) {
  __m512i t[MR][4], tl[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < 4; ++j) t[r][j] = _mm512_setzero_si512(), tl[r][j] = _mm512_setzero_si512();
  const __m512i lo4 = _mm512_set1_epi8(0x0F);
  for (int64_t quad = 0; quad < kInt4Group / 4; ++quad) {
    const uint8_t* c = block + quad * kS4QuadBytes;
    const __m512i a = _mm512_loadu_si512(c), b = _mm512_loadu_si512(c + 64);
    const __m512i w0 = _mm512_and_si512(a, lo4), w1 = _mm512_and_si512(_mm512_srli_epi16(a, 4), lo4);
    const __m512i w2 = _mm512_and_si512(b, lo4), w3 = _mm512_and_si512(_mm512_srli_epi16(b, 4), lo4);
    for (int r = 0; r < MR; ++r) {
      int32_t h4, l4;
      std::memcpy(&h4, qhi + r * K + quad * 4, 4);
      std::memcpy(&l4, qlo + r * K + quad * 4, 4);
      const __m512i hb = _mm512_set1_epi32(h4), lb = _mm512_set1_epi32(l4);
      t[r][0] = _mm512_dpbusd_epi32(t[r][0], w0, hb);
      t[r][1] = _mm512_dpbusd_epi32(t[r][1], w1, hb);
      t[r][2] = _mm512_dpbusd_epi32(t[r][2], w2, hb);
      t[r][3] = _mm512_dpbusd_epi32(t[r][3], w3, hb);
      tl[r][0] = _mm512_dpbusd_epi32(tl[r][0], w0, lb);
      tl[r][1] = _mm512_dpbusd_epi32(tl[r][1], w1, lb);
      tl[r][2] = _mm512_dpbusd_epi32(tl[r][2], w2, lb);
      tl[r][3] = _mm512_dpbusd_epi32(tl[r][3], w3, lb);
    }
  }
  const __m512i planes = _mm512_set1_epi32(kS4LoPlanes);
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < 4; ++j) t[r][j] = _mm512_add_epi32(_mm512_mullo_epi32(t[r][j], planes), tl[r][j]);
  const uint8_t* sc = block + kS4CodeBytes;
  __m512 s[4], mn[4];
  for (int j = 0; j < 4; ++j) {
    s[j] = _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc + j * 32)));
    if constexpr (kMin)
      mn[j] = _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc + kS4PanelCols * 2 + j * 32)));
  }
  for (int r = 0; r < MR; ++r) {
    const __m512 f = _mm512_set1_ps(xs[r * G]);
    for (int j = 0; j < 4; ++j) {
      __m512 v = _mm512_loadu_ps(acc + r * kS4PanelCols + j * 16);
      if constexpr (kMin) {
        v = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, t[r][j]), _mm512_mul_ps(s[j], f), v);
        v = _mm512_fmadd_ps(mn[j], _mm512_set1_ps(xs[r * G] * float(xsum[r * G])), v);
      } else {
        const __m512i u = _mm512_sub_epi32(t[r][j], _mm512_set1_epi32(8 * xsum[r * G]));
        v = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, u), _mm512_mul_ps(s[j], f), v);
      }
      _mm512_storeu_ps(acc + r * kS4PanelCols + j * 16, v);
    }
  }
}

template <bool kMin>
void group_rows(int64_t mr, const uint8_t* block, const int8_t* qhi, const int8_t* qlo, int64_t K, const float* xs,
                const int32_t* xsum, int64_t G, float* acc) {
  switch (mr) {
    case 1: group_tile<1, kMin>(block, qhi, qlo, K, xs, xsum, G, acc); break;
    default: group_tile<2, kMin>(block, qhi, qlo, K, xs, xsum, G, acc); break;
  }
}

// The decode path (M = 1): one row of x against a whole panel with the panel's 64 f32 sums in
// registers from its first group to its last. Per k-quad, two 64-byte loads and two masks give the
// four VNNI operands: "& 0x0F" the low nibbles (columns 0-15, 32-47) and "& 0xF0" the high ones as
// 16·q (columns 16-31, 48-63, no shift: the 16 is taken out exactly by the f32 factor u/16), then
// eight vpdpbusd (4 column sets x 2 activation planes). Per group, the integer sums are combined
// (t = 254·t_hi + t_lo), converted once and scaled: s·u·(t − 8·Σa) (Q4_0; the 8·Σa subtracted in
// integers, 128·Σa for the 16·q sets) or s·u·t + m·u·Σa (Q4_1) — the same integers and the same
// f32 operations as the tiled kernel below, so both give the same y.
// A thread takes kS4DecodePanels panels at a time and walks them in lockstep, group by group,
// prefetching every line of each panel's next block: several sequential streams per thread, as the
// machine's read-bandwidth measurement reads. Measured on Sapphire Rapids (16384 x 16384, weights
// from memory, 1 thread): one panel with the first line 4 blocks ahead 0.69-0.72 of the read
// bandwidth; 2 panels 0.82-0.86; 4 panels 0.83-0.89; at 2 threads 4 panels 0.86-0.97.
constexpr int64_t kS4DecodePanels = 4;

template <int NP, bool kMin>
void decode_panels(const uint8_t* panel0, int64_t pd, int64_t G, const int8_t* qhi, const int8_t* qlo, const float* xs,
                   const int32_t* xsum, float* out) {
  constexpr int64_t bb = s4_block_bytes(kMin);
  const __m512i lo4 = _mm512_set1_epi8(0x0F), hi4 = _mm512_set1_epi8(char(0xF0));
  const __m512i planes = _mm512_set1_epi32(kS4LoPlanes);
  __m512 acc[NP][4];
  for (int q = 0; q < NP; ++q)
    for (int j = 0; j < 4; ++j) acc[q][j] = _mm512_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    const int8_t* h = qhi + g * kInt4Group;
    const int8_t* l = qlo + g * kInt4Group;
    const float u = xs[g];
    const __m512 f[2] = {_mm512_set1_ps(u), _mm512_set1_ps(u * (1.f / 16))};  // low, high (16·q) nibbles
    for (int q = 0; q < NP; ++q) {
      const uint8_t* block = panel0 + q * pd + g * bb;
      for (int64_t o = 0; o < bb; o += 64) _mm_prefetch(reinterpret_cast<const char*>(block + bb + o), _MM_HINT_T0);
      __m512i th[4], tl[4];
      for (int j = 0; j < 4; ++j) th[j] = _mm512_setzero_si512(), tl[j] = _mm512_setzero_si512();
      for (int64_t quad = 0; quad < kInt4Group / 4; ++quad) {
        const uint8_t* c = block + quad * kS4QuadBytes;
        const __m512i a = _mm512_loadu_si512(c), b = _mm512_loadu_si512(c + 64);
        const __m512i w[4] = {_mm512_and_si512(a, lo4), _mm512_and_si512(a, hi4), _mm512_and_si512(b, lo4),
                              _mm512_and_si512(b, hi4)};
        int32_t h4, l4;
        std::memcpy(&h4, h + quad * 4, 4);
        std::memcpy(&l4, l + quad * 4, 4);
        const __m512i hb = _mm512_set1_epi32(h4), lb = _mm512_set1_epi32(l4);
        for (int j = 0; j < 4; ++j) {
          th[j] = _mm512_dpbusd_epi32(th[j], w[j], hb);
          tl[j] = _mm512_dpbusd_epi32(tl[j], w[j], lb);
        }
      }
      const uint8_t* sc = block + kS4CodeBytes;
      for (int j = 0; j < 4; ++j) {
        __m512i t = _mm512_add_epi32(_mm512_mullo_epi32(th[j], planes), tl[j]);
        const __m512 s = _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc + j * 32)));
        if constexpr (kMin) {
          const __m512 m = _mm512_maskz_cvtph_ps(
              0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc + kS4PanelCols * 2 + j * 32)));
          acc[q][j] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, t), _mm512_mul_ps(s, f[j & 1]), acc[q][j]);
          acc[q][j] = _mm512_fmadd_ps(m, _mm512_set1_ps(u * float(xsum[g])), acc[q][j]);
        } else {
          t = _mm512_sub_epi32(t, _mm512_set1_epi32((j & 1 ? 128 : 8) * xsum[g]));
          acc[q][j] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, t), _mm512_mul_ps(s, f[j & 1]), acc[q][j]);
        }
      }
    }
  }
  for (int q = 0; q < NP; ++q)
    for (int j = 0; j < 4; ++j) _mm512_store_ps(out + q * kS4PanelCols + j * 16, acc[q][j]);
}

template <bool kMin>
void run_decode(const QuantizedActivations& xq, int64_t N, const int8_t* panels, float* y, float alpha,
                bool accumulate) {
  const int64_t G = xq.K / kInt4Group, P = (N + kS4PanelCols - 1) / kS4PanelCols;
  const int64_t NP = panels_per_grab(P, kS4DecodePanels);
  const int64_t groups = (P + NP - 1) / NP, pd = G * s4_block_bytes(kMin);
  const auto* base = reinterpret_cast<const uint8_t*>(panels);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t gi = 0; gi < groups; ++gi) {
    alignas(64) float acc[kS4DecodePanels * kS4PanelCols];
    const int64_t p0 = gi * NP, np = std::min(NP, P - p0);
    const uint8_t* panel = base + p0 * pd;
    const int8_t *hi = xq.hi.data(), *lo = xq.lo.data();
    const float* u = xq.unit.data();
    const int32_t* su = xq.sum.data();
    switch (np) {
      case 4: decode_panels<4, kMin>(panel, pd, G, hi, lo, u, su, acc); break;
      case 3: decode_panels<3, kMin>(panel, pd, G, hi, lo, u, su, acc); break;
      case 2: decode_panels<2, kMin>(panel, pd, G, hi, lo, u, su, acc); break;
      default: decode_panels<1, kMin>(panel, pd, G, hi, lo, u, su, acc); break;
    }
    store_panel_sums(acc, p0, np, N, nullptr, alpha, accumulate, y);
  }
}

template <bool kMin>
void run(const QuantizedActivations& xq, int64_t N, const int8_t* panels, float* y, int64_t ldy, float alpha,
         bool accumulate) {
  const int64_t M = xq.M, K = xq.K, G = K / kInt4Group, P = (N + kS4PanelCols - 1) / kS4PanelCols;
  const int64_t bb = s4_block_bytes(kMin);
  const auto* base = reinterpret_cast<const uint8_t*>(panels);
  // One panel (K/32 blocks, e.g. 110 KiB at K = 5632 in the Q4_1 form) per grab, dynamic: a long
  // sequential stream per thread; for many rows the panel stays in L2 while every sweep of 16 rows
  // re-reads it, so the weights come from memory once per call.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t p = 0; p < P; ++p) {
    const uint8_t* panel = base + p * G * bb;
    const int64_t n0 = p * kS4PanelCols, nn = std::min(kS4PanelCols, N - n0);
    alignas(64) float acc[kRowsPerSweep * kS4PanelCols];
    for (int64_t m0 = 0; m0 < M; m0 += kRowsPerSweep) {
      const int64_t mb = std::min(kRowsPerSweep, M - m0);
      std::memset(acc, 0, sizeof(float) * size_t(mb * kS4PanelCols));
      for (int64_t g = 0; g < G; ++g) {
        const uint8_t* block = panel + g * bb;
        _mm_prefetch(reinterpret_cast<const char*>(block + 2 * bb), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(block + 2 * bb + 512), _MM_HINT_T0);
        for (int64_t r0 = 0; r0 < mb; r0 += kRowsPerTile) {
          const int64_t m = m0 + r0;
          group_rows<kMin>(std::min(kRowsPerTile, mb - r0), block, xq.hi.data() + m * K + g * kInt4Group,
                           xq.lo.data() + m * K + g * kInt4Group, K, xq.unit.data() + m * G + g,
                           xq.sum.data() + m * G + g, G, acc + r0 * kS4PanelCols);
        }
      }
      const __m512 a = _mm512_set1_ps(alpha);
      for (int64_t r = 0; r < mb; ++r)
        for (int64_t j = 0; j < nn; j += 16) {
          const int64_t left = nn - j;
          const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
          __m512 v = _mm512_mul_ps(a, _mm512_load_ps(acc + r * kS4PanelCols + j));
          float* dst = y + (m0 + r) * ldy + n0 + j;
          if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, dst));
          _mm512_mask_storeu_ps(dst, mask, v);
        }
    }
  }
}

}  // namespace

void gemm_s4_f32_vnni(const QuantizedActivations& xq, int64_t N, const int8_t* panels, bool with_min, float* y,
                      int64_t ldy, float alpha, bool accumulate) {
  if (xq.M == 1) {
    if (with_min) run_decode<true>(xq, N, panels, y, alpha, accumulate);
    else run_decode<false>(xq, N, panels, y, alpha, accumulate);
    return;
  }
  if (with_min) run<true>(xq, N, panels, y, ldy, alpha, accumulate);
  else run<false>(xq, N, panels, y, ldy, alpha, accumulate);
}

}  // namespace tori::kernels::detail
