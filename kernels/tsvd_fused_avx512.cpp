// AVX-512 small-batch TSVD matmul (see tsvd_fused.hpp). Compiled with -mavx512f/bw/vl/dq; only
// reached after cpu_has_avx512() returned true.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/tsvd_fused.hpp"

namespace tori::kernels::detail {

namespace {

constexpr int64_t kPanel = 64;   // output columns per work item: 4 zmm per row of x
constexpr int64_t kRows = 4;     // rows of x per register tile: 4 x 4 = 16 accumulators

// (The maskz forms with an all-ones mask are the plain instructions; they avoid GCC 12's false
// -Wmaybe-uninitialized on _mm512_undefined_*().)
inline __mmask16 lane_mask(int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1u);
}

// 16 columns of factor row `row` starting at column c (f32/bf16 row-major) or of panel p (s8).
template <FusedDtype DT>
inline __m512 load16(const FusedFactor& f, int64_t row, int64_t p, int64_t c, __mmask16 m) {
  if constexpr (DT == FusedDtype::f32) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(f.data) + row * f.cols + c);
  } else if constexpr (DT == FusedDtype::bf16) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(f.data) + row * f.cols + c);
    return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, _mm512_maskz_cvtepu16_epi32(0xFFFF, h), 16));
  } else {  // panels are zero-padded: no mask needed
    const int8_t* q = static_cast<const int8_t*>(f.data) + (p * f.rows + row) * kPanel + (c - p * kPanel);
    return _mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_maskz_cvtepi8_epi32(0xFFFF, _mm_loadu_si128(reinterpret_cast<const __m128i*>(q))));
  }
}

// acc[MR][64] += x[0..MR)[0..nrows) (row stride ldx) · f[row0 .. row0 + nrows)[panel p's columns]
template <FusedDtype DT, int MR>
inline void panel_tile(const float* x, int64_t ldx, const FusedFactor& f, int64_t row0, int64_t nrows, int64_t p,
                       const __mmask16 (&m)[4], __m512 (&c)[kRows][4]) {
  const int64_t c0 = p * kPanel;
  for (int64_t a = 0; a < nrows; ++a) {
    const int64_t row = row0 + a;
    const __m512 w0 = load16<DT>(f, row, p, c0, m[0]);
    const __m512 w1 = load16<DT>(f, row, p, c0 + 16, m[1]);
    const __m512 w2 = load16<DT>(f, row, p, c0 + 32, m[2]);
    const __m512 w3 = load16<DT>(f, row, p, c0 + 48, m[3]);
    for (int r = 0; r < MR; ++r) {
      const __m512 xb = _mm512_set1_ps(x[r * ldx + a]);
      c[r][0] = _mm512_fmadd_ps(xb, w0, c[r][0]);
      c[r][1] = _mm512_fmadd_ps(xb, w1, c[r][1]);
      c[r][2] = _mm512_fmadd_ps(xb, w2, c[r][2]);
      c[r][3] = _mm512_fmadd_ps(xb, w3, c[r][3]);
    }
  }
}

template <FusedDtype DT>
inline void rows_tile(int mr, const float* x, int64_t ldx, const FusedFactor& f, int64_t row0, int64_t nrows,
                      int64_t p, const __mmask16 (&m)[4], __m512 (&c)[kRows][4]) {
  switch (mr) {
    case 1: panel_tile<DT, 1>(x, ldx, f, row0, nrows, p, m, c); break;
    case 2: panel_tile<DT, 2>(x, ldx, f, row0, nrows, p, m, c); break;
    case 3: panel_tile<DT, 3>(x, ldx, f, row0, nrows, p, m, c); break;
    default: panel_tile<DT, 4>(x, ldx, f, row0, nrows, p, m, c); break;
  }
}

// out[r][c0 + ...] (row stride ldo) (=|+=) alpha · scale · c[r] for the item's valid columns.
inline void store_tile(int mr, __m512 (&c)[kRows][4], const float* scales, int64_t c0, const __mmask16 (&m)[4],
                       float alpha, bool accumulate, float* out, int64_t ldo) {
  for (int q = 0; q < 4; ++q) {
    if (!m[q]) continue;
    __m512 s = _mm512_set1_ps(alpha);
    if (scales) s = _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m[q], scales + c0 + 16 * q));
    for (int r = 0; r < mr; ++r) {
      float* dst = out + r * ldo + c0 + 16 * q;
      __m512 v = _mm512_mul_ps(s, c[r][q]);
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m[q], dst));
      _mm512_mask_storeu_ps(dst, m[q], v);
    }
  }
}

template <FusedDtype DT>
void run(const TsvdFusedWeight& w, const float* x, int64_t M, float* z, float* y, float alpha, bool accumulate) {
  const int64_t nK = w.nk, nN = w.nn;
  // Work items: stage 1 (i, p) over Û_i's panels, stage 2 (j, q) over V̂_j's (all T_n wide).
  std::vector<int64_t> z_off(static_cast<size_t>(nK)), first(static_cast<size_t>(nK) + 1, 0);
  int64_t zsum = 0;
  for (int64_t i = 0; i < nK; ++i) {
    z_off[size_t(i)] = zsum;
    zsum += M * w.u[i].cols;
    first[size_t(i) + 1] = first[size_t(i)] + (w.u[i].cols + kPanel - 1) / kPanel;
  }
  const int64_t items1 = first[size_t(nK)], per_block2 = (w.tn + kPanel - 1) / kPanel, items2 = nN * per_block2;
#pragma omp parallel
  {
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items1; ++it) {
      const int64_t i = int64_t(std::upper_bound(first.begin(), first.end(), it) - first.begin()) - 1;
      const int64_t p = it - first[size_t(i)];
      const FusedFactor& u = w.u[i];
      const int64_t c0 = p * kPanel;
      const __mmask16 m[4] = {lane_mask(u.cols - c0), lane_mask(u.cols - c0 - 16), lane_mask(u.cols - c0 - 32),
                              lane_mask(u.cols - c0 - 48)};
      float* zi = z + z_off[size_t(i)];
      for (int64_t m0 = 0; m0 < M; m0 += kRows) {
        const int mr = int(std::min(kRows, M - m0));
        __m512 c[kRows][4];
        for (auto& row : c)
          for (auto& v : row) v = _mm512_setzero_ps();
        rows_tile<DT>(mr, x + m0 * w.k + i * w.tk, w.k, u, 0, w.tk, p, m, c);
        store_tile(mr, c, u.scales, c0, m, 1.f, false, zi + m0 * u.cols, u.cols);
      }
    }  // implicit barrier: every Z_i complete
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items2; ++it) {
      const int64_t j = it / per_block2, q = it % per_block2;
      const FusedFactor& v = w.v[j];
      const int64_t c0 = q * kPanel;
      const __mmask16 m[4] = {lane_mask(w.tn - c0), lane_mask(w.tn - c0 - 16), lane_mask(w.tn - c0 - 32),
                              lane_mask(w.tn - c0 - 48)};
      for (int64_t m0 = 0; m0 < M; m0 += kRows) {
        const int mr = int(std::min(kRows, M - m0));
        __m512 c[kRows][4];
        for (auto& row : c)
          for (auto& e : row) e = _mm512_setzero_ps();
        for (int64_t i = 0; i < nK; ++i) {  // Σ_i Z_i[:, tile (i, j)] · V̂_j[tile (i, j)'s rows]
          const size_t t = size_t(i * nN + j);
          const int64_t Ri = w.u[i].cols;
          rows_tile<DT>(mr, z + z_off[size_t(i)] + m0 * Ri + w.u_col[t], Ri, v, w.v_row[t], w.ranks[t], q, m, c);
        }
        store_tile(mr, c, v.scales, c0, m, alpha, accumulate, y + m0 * w.n + j * w.tn, w.n);
      }
    }
  }
}

}  // namespace

void tsvd_fused_avx512(const TsvdFusedWeight& w, const float* x, int64_t M, float* z, float* y, float alpha,
                       bool accumulate) {
  switch (w.dtype) {
    case FusedDtype::f32: return run<FusedDtype::f32>(w, x, M, z, y, alpha, accumulate);
    case FusedDtype::bf16: return run<FusedDtype::bf16>(w, x, M, z, y, alpha, accumulate);
    case FusedDtype::s8: return run<FusedDtype::s8>(w, x, M, z, y, alpha, accumulate);
  }
}

}  // namespace tori::kernels::detail
