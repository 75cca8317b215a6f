// AVX-512 attention block kernel (see attention_block.hpp). Compiled with -mavx512f/bw/vl/dq; only
// reached after cpu_has_avx512() returned true.
//   scores  S[r, 64 positions] = q_r . K^T: per d, 4 vectors of 16 positions from the K^T tile and
//           one broadcast q[r, d] per row -> 4 FMAs per row, 4 rows per register tile, no
//           horizontal sums.
//   softmax per row over the visible positions, running max/sum (flash-attention style).
//   PV      acc[r, :] += sum_t p[r, t] V[t, :]: per position, up to 8 vectors of V (128 of D) and a
//           broadcast p per row -> 2 rows x 8 vectors = 16 accumulators.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/attention_block.hpp"
#include "kernels/kv_cache.hpp"
#include "kernels/vec_math.hpp"

namespace tori::kernels::detail {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int kScoreRows = 4;  // rows per score register tile (4 rows x 4 vectors = 16 acc)
constexpr int kPvRows = 2;     // rows per PV register tile (2 rows x 8 vectors = 16 acc)
constexpr int kPvVectors = 8;  // D columns per PV pass: 8 x 16 = 128
// No software prefetch: K^T tiles and V rows are two sequential streams the hardware prefetcher
// follows; explicit next-block prefetches measured 10-30% slower on this machine.

inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const uint16_t* p) {
  const __m512i w = _mm512_maskz_cvtepu16_epi32(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, w, 16));
}
inline __m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load16(const uint16_t* p, __mmask16 m) {
  const __m512i w = _mm512_maskz_cvtepu16_epi32(0xFFFF, _mm256_maskz_loadu_epi16(m, p));
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, w, 16));
}

// s[r, 0..64) = q[r, :] . K[tb + 0..64, :] for MR rows.
template <int MR, typename KV>
inline void scores(const float* q, int64_t D, const KV* kt, float* s) {
  __m512 a[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < 4; ++j) a[r][j] = _mm512_setzero_ps();
  for (int64_t d = 0; d < D; ++d) {
    const KV* kd = kt + d * kKvTile;
    const __m512 k0 = load16(kd), k1 = load16(kd + 16), k2 = load16(kd + 32), k3 = load16(kd + 48);
    for (int r = 0; r < MR; ++r) {
      const __m512 qb = _mm512_set1_ps(q[r * D + d]);
      a[r][0] = _mm512_fmadd_ps(qb, k0, a[r][0]);
      a[r][1] = _mm512_fmadd_ps(qb, k1, a[r][1]);
      a[r][2] = _mm512_fmadd_ps(qb, k2, a[r][2]);
      a[r][3] = _mm512_fmadd_ps(qb, k3, a[r][3]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < 4; ++j) _mm512_storeu_ps(s + r * kKvBlock + j * 16, a[r][j]);
}

// acc[r, 0..16 NV) += sum_{t < nt} p[r, t] v[t, 0..16 NV), last vector masked.
template <int MR, int NV, typename KV>
inline void pv(const float* p, const KV* v, int64_t D, int64_t nt, float* acc, __mmask16 last) {
  __m512 a[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NV; ++c)
      a[r][c] = _mm512_maskz_loadu_ps(c == NV - 1 ? last : __mmask16(0xFFFF), acc + r * D + c * 16);
  for (int64_t t = 0; t < nt; ++t) {
    __m512 vv[NV];
    for (int c = 0; c < NV; ++c) vv[c] = load16(v + t * D + c * 16, c == NV - 1 ? last : __mmask16(0xFFFF));
    for (int r = 0; r < MR; ++r) {
      const __m512 pb = _mm512_set1_ps(p[r * kKvBlock + t]);
      for (int c = 0; c < NV; ++c) a[r][c] = _mm512_fmadd_ps(pb, vv[c], a[r][c]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NV; ++c)
      _mm512_mask_storeu_ps(acc + r * D + c * 16, c == NV - 1 ? last : __mmask16(0xFFFF), a[r][c]);
}

template <int MR, typename KV>
void pv_dispatch(int nv, const float* p, const KV* v, int64_t D, int64_t nt, float* acc,
                 __mmask16 last) {
  switch (nv) {
    case 1: pv<MR, 1>(p, v, D, nt, acc, last); break;
    case 2: pv<MR, 2>(p, v, D, nt, acc, last); break;
    case 3: pv<MR, 3>(p, v, D, nt, acc, last); break;
    case 4: pv<MR, 4>(p, v, D, nt, acc, last); break;
    case 5: pv<MR, 5>(p, v, D, nt, acc, last); break;
    case 6: pv<MR, 6>(p, v, D, nt, acc, last); break;
    case 7: pv<MR, 7>(p, v, D, nt, acc, last); break;
    default: pv<MR, 8>(p, v, D, nt, acc, last); break;
  }
}

template <typename KV>
void attend(const AttendBlockArgs& a) {
  if (a.t0 >= a.t1) return;
  const int64_t R = a.R, D = a.D;
  const KV* K = static_cast<const KV*>(a.k);
  const KV* V = static_cast<const KV*>(a.v);
  float* s = a.scratch;  // [R, 64] scores, then probabilities
  for (int64_t tb = a.t0; tb < a.t1; tb += kKvBlock) {
    if (a.lo && !block_visible(a, tb)) continue;
    const KV* kt = K + (tb / kKvTile) * D * kKvTile;
    // Scores for every row (positions beyond t1 or the row's causal limit are masked below).
    for (int64_t r0 = 0; r0 < R; r0 += kScoreRows) {
      const float* q = a.q + r0 * D;
      float* sr = s + r0 * kKvBlock;
      switch (std::min<int64_t>(kScoreRows, R - r0)) {
        case 1: scores<1>(q, D, kt, sr); break;
        case 2: scores<2>(q, D, kt, sr); break;
        case 3: scores<3>(q, D, kt, sr); break;
        default: scores<4>(q, D, kt, sr); break;
      }
    }
    // Streaming softmax per row; ne = visible positions of this row in the block.
    for (int64_t r = 0; r < R; ++r) {
      float* sr = s + r * kKvBlock;
      const int64_t ne = std::max<int64_t>(0, std::min({a.lim[r], a.t1, tb + kKvBlock}) - tb);
      const int64_t ns = a.lo ? std::clamp<int64_t>(a.lo[r] - tb, 0, ne) : 0;  // first visible
      if (ns == ne) {
        for (int64_t t = 0; t < kKvBlock; ++t) sr[t] = 0.f;
        continue;
      }
      float mb = kNegInf;
      for (int64_t t = ns; t < ne; ++t) mb = std::max(mb, sr[t]);
      const float m_new = std::max(a.m[r], mb);
      const float corr = a.m[r] == kNegInf ? 0.f : exp_f32(a.m[r] - m_new);
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t t = 0; t < kKvBlock; ++t) {
        const float p = t >= ns && t < ne ? exp_f32(sr[t] - m_new) : 0.f;
        sr[t] = p;
        sum += p;
      }
      a.l[r] = a.l[r] * corr + sum;
      a.m[r] = m_new;
      if (corr != 1.f) {
        float* acc = a.acc + r * D;
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) acc[d] *= corr;
      }
    }
    // PV for pairs of rows over the positions either row sees.
    const KV* vb = V + tb * D;
    for (int64_t r0 = 0; r0 < R; r0 += kPvRows) {
      const int64_t mr = std::min<int64_t>(kPvRows, R - r0);
      int64_t nt = 0;
      for (int64_t r = r0; r < r0 + mr; ++r)
        nt = std::max(nt, std::min({a.lim[r], a.t1, tb + kKvBlock}) - tb);
      if (nt <= 0) continue;
      for (int64_t d0 = 0; d0 < D; d0 += 16 * kPvVectors) {
        const int64_t cols = std::min<int64_t>(16 * kPvVectors, D - d0);
        const int nv = int((cols + 15) / 16);
        const int64_t rem = cols - 16 * (nv - 1);
        const __mmask16 last = rem == 16 ? __mmask16(0xFFFF) : __mmask16((1u << rem) - 1u);
        float* acc = a.acc + r0 * D + d0;
        if (mr == 2)
          pv_dispatch<2>(nv, s + r0 * kKvBlock, vb + d0, D, nt, acc, last);
        else
          pv_dispatch<1>(nv, s + r0 * kKvBlock, vb + d0, D, nt, acc, last);
      }
    }
  }
}

}  // namespace

void attend_block_avx512(const AttendBlockArgs& a) {
  if (a.bf16)
    attend<uint16_t>(a);
  else
    attend<float>(a);
}

}  // namespace tori::kernels::detail
