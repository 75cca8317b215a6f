// AVX-512 small-batch TSVD matmul (see tsvd_fused.hpp). Compiled with -mavx512f/bw/vl/dq; only
// reached after cpu_has_avx512() returned true.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/panel_sums_avx512.hpp"
#include "kernels/tsvd_fused.hpp"

namespace tori::kernels::detail {

namespace {

constexpr int64_t kPanel = 64;           // output columns per panel: 4 zmm per row of x
constexpr int64_t kRows = 4;             // rows of x per register tile (at most)
constexpr int64_t kMostPanels = 4;       // panels an item reads in lockstep at M = 1 (streams per thread)
constexpr int64_t kPrefetchBytes = 1024; // how far ahead of each panel stream lines are requested

using L = FusedLayout;

// (The maskz forms with an all-ones mask are the plain instructions; they avoid GCC 12's false
// -Wmaybe-uninitialized on _mm512_undefined_*().)
inline __mmask16 lane_mask(int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1u);
}

inline __m512 widen_bf16(__m256i h) {
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, _mm512_maskz_cvtepu16_epi32(0xFFFF, h), 16));
}

// The 64 columns of panel p in factor row `row`, as 4 x 16 f32 (zeros beyond the factor's columns).
template <L LT>
inline void load_row(const FusedFactor& f, int64_t row, int64_t p, __m512 (&w)[4]) {
  const int64_t c0 = p * kPanel;
  if constexpr (LT == L::rows_f32) {
    const float* src = static_cast<const float*>(f.data) + row * f.cols + c0;
    for (int t = 0; t < 4; ++t) w[t] = _mm512_maskz_loadu_ps(lane_mask(f.cols - c0 - 16 * t), src + 16 * t);
  } else if constexpr (LT == L::rows_bf16) {
    const uint16_t* src = static_cast<const uint16_t*>(f.data) + row * f.cols + c0;
    for (int t = 0; t < 4; ++t) w[t] = widen_bf16(_mm256_maskz_loadu_epi16(lane_mask(f.cols - c0 - 16 * t), src + 16 * t));
  } else if constexpr (LT == L::panels_f32) {
    const float* src = static_cast<const float*>(f.data) + p * f.panel_stride + row * kPanel;
    _mm_prefetch(reinterpret_cast<const char*>(src) + kPrefetchBytes, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(src) + kPrefetchBytes + 128, _MM_HINT_T0);
    for (int t = 0; t < 4; ++t) w[t] = _mm512_loadu_ps(src + 16 * t);
  } else if constexpr (LT == L::panels_bf16) {  // (row, c) at (row / 2) · 128 + 2c + row % 2
    const uint16_t* src = static_cast<const uint16_t*>(f.data) + p * f.panel_stride + (row / 2) * 2 * kPanel;
    if (row % 2 == 0) _mm_prefetch(reinterpret_cast<const char*>(src) + kPrefetchBytes, _MM_HINT_T0);
    else _mm_prefetch(reinterpret_cast<const char*>(src) + kPrefetchBytes + 128, _MM_HINT_T0);
    const __m512i odd_mask = _mm512_set1_epi32(int32_t(0xFFFF0000u));
    for (int t = 0; t < 4; ++t) {
      const __m512i pair = _mm512_loadu_si512(src + 32 * t);  // columns 16t .. 16t + 16 of both rows
      w[t] = _mm512_castsi512_ps(row % 2 == 0 ? _mm512_maskz_slli_epi32(0xFFFF, pair, 16) : _mm512_and_si512(pair, odd_mask));
    }
  } else {  // panels_s8
    const int8_t* q = static_cast<const int8_t*>(f.data) + p * f.panel_stride + row * kPanel;
    _mm_prefetch(reinterpret_cast<const char*>(q) + kPrefetchBytes, _MM_HINT_T0);
    for (int t = 0; t < 4; ++t)
      w[t] = _mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_maskz_cvtepi8_epi32(0xFFFF, _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * t))));
  }
}

// Rows [row0, row0 + nrows) of a factor against x[r][0 .. nrows) (row stride ldx): one term of an
// item's sum (stage 1 has one, stage 2 one per row block i).
struct FactorRows {
  const float* x;
  int64_t ldx, row0, nrows;
};

// out[r][panels p0 .. p0 + NP] (row stride ldo, `cols` valid columns) (=|+=) alpha · scale ·
// Σ over the row runs x · f[those rows][those panels], for MR rows of x: the NP panels read in lockstep,
// one factor row at a time (the same order of sums on every layout), accumulators in registers.
template <L LT, int MR, int NP>
void item_tile(const FusedFactor& f, int64_t p0, const FactorRows* seg, int64_t nseg, float alpha, bool accumulate,
               int64_t cols, float* out, int64_t ldo) {
  __m512 c[MR][NP][4];
  for (int r = 0; r < MR; ++r)
    for (int q = 0; q < NP; ++q)
      for (int t = 0; t < 4; ++t) c[r][q][t] = _mm512_setzero_ps();
  for (int64_t s = 0; s < nseg; ++s) {
    const FactorRows& g = seg[s];
    for (int64_t a = 0; a < g.nrows; ++a) {
      for (int q = 0; q < NP; ++q) {
        __m512 w[4];
        load_row<LT>(f, g.row0 + a, p0 + q, w);
        for (int r = 0; r < MR; ++r) {
          const __m512 xb = _mm512_set1_ps(g.x[r * g.ldx + a]);
          for (int t = 0; t < 4; ++t) c[r][q][t] = _mm512_fmadd_ps(xb, w[t], c[r][q][t]);
        }
      }
    }
  }
  for (int r = 0; r < MR; ++r) {
    alignas(64) float acc[NP * kPanel];
    for (int q = 0; q < NP; ++q)
      for (int t = 0; t < 4; ++t) _mm512_store_ps(acc + q * kPanel + 16 * t, c[r][q][t]);
    store_panel_sums(acc, p0, NP, cols, f.scales, alpha, accumulate, out + r * ldo);
  }
}

template <L LT>
void item_rows(int mr, int np, const FusedFactor& f, int64_t p0, const FactorRows* seg, int64_t nseg, float alpha,
               bool accumulate, int64_t cols, float* out, int64_t ldo) {
  if (mr == 1) {
    switch (np) {
      case 4: return item_tile<LT, 1, 4>(f, p0, seg, nseg, alpha, accumulate, cols, out, ldo);
      case 3: return item_tile<LT, 1, 3>(f, p0, seg, nseg, alpha, accumulate, cols, out, ldo);
      case 2: return item_tile<LT, 1, 2>(f, p0, seg, nseg, alpha, accumulate, cols, out, ldo);
      default: return item_tile<LT, 1, 1>(f, p0, seg, nseg, alpha, accumulate, cols, out, ldo);
    }
  }
  if (mr == 2 && np == 2) return item_tile<LT, 2, 2>(f, p0, seg, nseg, alpha, accumulate, cols, out, ldo);
  if (mr == 2) return item_tile<LT, 2, 1>(f, p0, seg, nseg, alpha, accumulate, cols, out, ldo);
  if (mr == 3) return item_tile<LT, 3, 1>(f, p0, seg, nseg, alpha, accumulate, cols, out, ldo);
  return item_tile<LT, 4, 1>(f, p0, seg, nseg, alpha, accumulate, cols, out, ldo);
}

void item(int mr, int np, const FusedFactor& f, int64_t p0, const FactorRows* seg, int64_t nseg, float alpha,
          bool accumulate, int64_t cols, float* out, int64_t ldo) {
  switch (f.layout) {
    case L::rows_f32: return item_rows<L::rows_f32>(mr, np, f, p0, seg, nseg, alpha, accumulate, cols, out, ldo);
    case L::rows_bf16: return item_rows<L::rows_bf16>(mr, np, f, p0, seg, nseg, alpha, accumulate, cols, out, ldo);
    case L::panels_f32: return item_rows<L::panels_f32>(mr, np, f, p0, seg, nseg, alpha, accumulate, cols, out, ldo);
    case L::panels_bf16: return item_rows<L::panels_bf16>(mr, np, f, p0, seg, nseg, alpha, accumulate, cols, out, ldo);
    case L::panels_s8: return item_rows<L::panels_s8>(mr, np, f, p0, seg, nseg, alpha, accumulate, cols, out, ldo);
  }
}

// One work item: panels [p0, p0 + np) of factor block `block`.
struct PanelItem {
  int64_t block, p0, np;
};

// Items over the factors' panels, np at most `most` per item, never spanning two factors.
void make_items(const FusedFactor* f, int64_t count, int64_t most, std::vector<PanelItem>& items) {
  items.clear();
  for (int64_t b = 0; b < count; ++b) {
    const int64_t P = (f[b].cols + kPanel - 1) / kPanel;
    for (int64_t p0 = 0; p0 < P; p0 += most) items.push_back({b, p0, std::min(most, P - p0)});
  }
}

// Panels per item: kMostPanels at M = 1 (fewer when that would leave a thread without an item),
// 2 at M = 2, 1 above (register budget: rows x panels x 4 accumulators <= 16).
int64_t panels_per_item(int64_t M, const FusedFactor* f, int64_t count) {
  if (M >= 3) return 1;
  int64_t P = 0;
  for (int64_t b = 0; b < count; ++b) P += (f[b].cols + kPanel - 1) / kPanel;
  return std::min<int64_t>(M == 1 ? kMostPanels : 2, panels_per_grab(P, kMostPanels));
}

}  // namespace

void tsvd_fused_avx512(const TsvdFusedWeight& w, const float* x, int64_t M, float* z, float* y, float alpha,
                       bool accumulate) {
  const int64_t nK = w.nk, nN = w.nn;
  thread_local std::vector<int64_t> z_off;
  thread_local std::vector<PanelItem> items1, items2;
  z_off.assign(size_t(nK), 0);
  int64_t zsum = 0;
  for (int64_t i = 0; i < nK; ++i) {
    z_off[size_t(i)] = zsum;
    zsum += M * w.u[i].cols;
  }
  make_items(w.u, nK, panels_per_item(M, w.u, nK), items1);
  make_items(w.v, nN, panels_per_item(M, w.v, nN), items2);
  const int64_t n1 = int64_t(items1.size()), n2 = int64_t(items2.size());
  const PanelItem* it1 = items1.data();
  const PanelItem* it2 = items2.data();
  const int64_t* zo = z_off.data();
#pragma omp parallel
  {
    thread_local std::vector<FactorRows> seg;
    seg.resize(size_t(std::max<int64_t>(nK, 1)));
    // Stage 1, item (i, panels): Z_i[:, panels] = x[:, block i] · Û_i[:, panels] (× int8 scales).
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < n1; ++it) {
      const PanelItem& t1 = it1[it];
      const FusedFactor& u = w.u[t1.block];
      for (int64_t m0 = 0; m0 < M; m0 += kRows) {
        const int mr = int(std::min(kRows, M - m0));
        seg[0] = {x + m0 * w.k + t1.block * w.tk, w.k, 0, w.tk};
        item(mr, int(t1.np), u, t1.p0, seg.data(), 1, 1.f, false, u.cols, z + zo[t1.block] + m0 * u.cols, u.cols);
      }
    }  // implicit barrier: every Z_i complete
    // Stage 2, item (j, panels): y[:, block j][panels] (=|+=) alpha · Σ_i Z_i[:, tile (i, j)'s
    // columns] · V̂_j[tile (i, j)'s rows, panels] (× int8 scales).
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < n2; ++it) {
      const PanelItem& t2 = it2[it];
      const int64_t j = t2.block;
      for (int64_t m0 = 0; m0 < M; m0 += kRows) {
        const int mr = int(std::min(kRows, M - m0));
        for (int64_t i = 0; i < nK; ++i) {
          const size_t t = size_t(i * nN + j);
          const int64_t Ri = w.u[i].cols;
          seg[size_t(i)] = {z + zo[i] + m0 * Ri + w.u_col[t], Ri, w.v_row[t], w.ranks[t]};
        }
        item(mr, int(t2.np), w.v[j], t2.p0, seg.data(), nK, alpha, accumulate, w.tn, y + m0 * w.n + j * w.tn, w.n);
      }
    }
  }
}

}  // namespace tori::kernels::detail
