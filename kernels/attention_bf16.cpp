// Prefill attention on bf16 GEMM tiles (attention.hpp: attention_bf16).
//
// Work: an item is one (sequence b, KV head g, block of Lq query tokens); its rows are the block's
// tokens × the G = H/K query heads sharing g (row r = token r / G, head r % G), Rp = Lq·G rows
// whatever the block's real length (a short last block's missing rows are zero, their output
// discarded), so every item's GEMMs have one M: with keys in chunks of 64·j ≤ kKeyChunk there are
// at most 2·kKeyChunk/64 oneDNN primitives per (Lq, G, D), created once and cached. Item (b, g, i0)
// visits the keys [0, past + i1) its last row sees, chunk by chunk, with the streaming softmax:
//   S   = Q_blk · K_cᵀ                       [Rp, w] f32  (Q pre-scaled by 1/√D; Q, K bf16)
//   S[r, t] = −inf where t > past + i_r       (the diagonal chunk only: causal)
//   m'  = max(m, max_t S),  P = bf16(e^(S − m')),  l = l·e^(m − m') + Σ_t P
//   acc = acc·e^(m − m') + P · V_c           [Rp, D] f32  (V bf16; oneDNN's sum post-op)
// and out = acc / l. K and V are converted to bf16 key rows [T64, D] once per (b, g) per call (the
// cache's K^T tiles transposed back), which every item of (b, g) then reads.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/attention_block.hpp"
#include "kernels/attention_bf16_rows.hpp"
#include "kernels/bf16.hpp"
#include "kernels/cpu_features.hpp"
#include "kernels/onednn_matmul.hpp"

namespace tori::kernels {

namespace {

using detail::kNegInf;

constexpr int64_t kKeyChunk = 256;   // keys per S tile: [Rp, 256] f32 + its bf16 P stay in L2
constexpr int64_t kRowsTarget = 256;  // rows (tokens × G) an item aims at

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Query tokens per item: kRowsTarget / G rounded to a power of two in [16, 256], and no more than
// the longest sequence's new tokens need (rounded up to a power of two too: few distinct M).
int64_t query_tokens_per_item(int64_t G, int64_t n_max) {
  int64_t lq = 16;
  while (lq * 2 * G <= kRowsTarget && lq < 256) lq *= 2;
  int64_t need = 16;
  while (need < n_max) need *= 2;
  return std::min(lq, need);
}

struct BlockItem {
  int64_t b, g, i0, i1, past, cost;
};

// K^T tile rows back into key rows, rounded to bf16: kr[t, d] = K[t / 64][d][t % 64], t < T.
TORI_SIMD_CLONES void key_rows_bf16(const float* k, int64_t T, int64_t D, uint16_t* kr) {
  for (int64_t t0 = 0; t0 < T; t0 += kKvTile) {
    const float* tile = k + (t0 / kKvTile) * D * kKvTile;
    const int64_t nt = std::min(kKvTile, T - t0);
    for (int64_t t = 0; t < nt; ++t)
      for (int64_t d = 0; d < D; ++d) kr[(t0 + t) * D + d] = bf16::from_f32(tile[d * kKvTile + t]);
  }
}

// acc[r, :] *= corr[r] for the rows whose corr is not 1.
TORI_SIMD_CLONES void rescale_rows(float* acc, const float* corr, int64_t rows, int64_t D) {
  for (int64_t r = 0; r < rows; ++r)
    if (corr[r] != 1.f) {
      float* a = acc + r * D;
      const float c = corr[r];
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) a[d] *= c;
    }
}

TORI_SIMD_CLONES void write_normalised_row(const float* a, float inv, int64_t D, float* dst) {
#pragma omp simd
  for (int64_t d = 0; d < D; ++d) dst[d] = a[d] * inv;
}

}  // namespace

// AMX CPUs have AVX512-BF16 too; the row loops need it (attention_bf16_avx512.cpp).
bool attention_bf16_available() { return cpu_has_avx512_bf16(); }

void attention_bf16(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new, Tensor& out) {
  const std::vector<int64_t> n = detail::attention_check(q, cache, n_new, out, "attention_bf16");
  const int64_t B = q.size(0), L = q.size(1), H = q.size(2), D = q.size(3);
  const int64_t Kh = cache.kv_heads(), G = H / Kh;
  const float scale = 1.f / std::sqrt(float(D));
  const float* Q = q.data<float>();
  float* O = out.data<float>();
  const int64_t n_max = detail::attention_count_and_clear_idle(q, cache, n, out);
  if (n_max == 0) return;

  const int64_t Lq = query_tokens_per_item(G, n_max), Rp = Lq * G;
  // Key rows in bf16 for every active (b, g): K and V [T64, D] each, T64 = length rounded up to 64.
  std::vector<int64_t> kv_off(static_cast<size_t>(B * Kh), -1);
  int64_t kv_total = 0;
  for (int64_t b = 0; b < B; ++b)
    if (n[size_t(b)] > 0)
      for (int64_t g = 0; g < Kh; ++g) {
        kv_off[size_t(b * Kh + g)] = kv_total;
        kv_total += 2 * round_up(cache.length(b), kKvBlock) * D;
      }
  std::vector<uint16_t> kv(static_cast<size_t>(kv_total));
  std::vector<BlockItem> items;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t nb = n[size_t(b)], past = cache.length(b) - nb;
    for (int64_t g = 0; g < Kh; ++g)
      for (int64_t i0 = 0; i0 < nb; i0 += Lq) {
        const int64_t i1 = std::min(nb, i0 + Lq);
        items.push_back({b, g, i0, i1, past, past + i1});
      }
  }
  // Longest first: the causal blocks' costs grow with i0, and dynamic scheduling then balances.
  std::stable_sort(items.begin(), items.end(), [](const BlockItem& x, const BlockItem& y) { return x.cost > y.cost; });
  const bool cache_bf16 = cache.dtype() == DType::bf16;
  const size_t esize = dtype_size(cache.dtype());

#pragma omp parallel
  {
    // Transpose the K^T tiles back into key rows and round (or copy) to bf16; zero the rows past
    // the length (read by the last chunk, masked, but V must be finite).
#pragma omp for schedule(static) collapse(2)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t g = 0; g < Kh; ++g) {
        if (n[size_t(b)] == 0) continue;
        const int64_t T = cache.length(b), T64 = round_up(T, kKvBlock);
        uint16_t* kr = kv.data() + kv_off[size_t(b * Kh + g)];
        uint16_t* vr = kr + T64 * D;
        const int64_t base = cache.block_offset(b, g);
        const std::byte* ks = static_cast<const std::byte*>(cache.k().raw()) + base * int64_t(esize);
        const std::byte* vs = static_cast<const std::byte*>(cache.v().raw()) + base * int64_t(esize);
        if (cache_bf16) {
          const uint16_t* k16 = reinterpret_cast<const uint16_t*>(ks);
          for (int64_t t = 0; t < T; ++t)
            for (int64_t d = 0; d < D; ++d) kr[t * D + d] = k16[(t / kKvTile) * D * kKvTile + d * kKvTile + t % kKvTile];
          std::memcpy(vr, vs, size_t(T * D) * sizeof(uint16_t));
        } else {
          key_rows_bf16(reinterpret_cast<const float*>(ks), T, D, kr);
          detail::round_rows_bf16_avx512(reinterpret_cast<const float*>(vs), T * D, 1.f, vr);
        }
        std::memset(kr + T * D, 0, size_t((T64 - T) * D) * sizeof(uint16_t));
        std::memset(vr + T * D, 0, size_t((T64 - T) * D) * sizeof(uint16_t));
      }

    const size_t rows_d = static_cast<size_t>(Rp * D), rows_w = static_cast<size_t>(Rp * kKeyChunk),
                 rp = static_cast<size_t>(Rp);
    std::vector<uint16_t> qb(rows_d), p(rows_w);
    std::vector<float> s(rows_w), acc(rows_d), m(rp), l(rp), corr(rp);
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < int64_t(items.size()); ++it) {
      const BlockItem& item = items[size_t(it)];
      const int64_t rows = (item.i1 - item.i0) * G;
      const uint16_t* kr = kv.data() + kv_off[size_t(item.b * Kh + item.g)];
      const uint16_t* vr = kr + round_up(cache.length(item.b), kKvBlock) * D;
      for (int64_t r = 0; r < rows; ++r) {
        const float* src = Q + ((item.b * L + item.i0 + r / G) * H + item.g * G + r % G) * D;
        detail::round_rows_bf16_avx512(src, D, scale, qb.data() + r * D);
      }
      std::fill(qb.begin() + rows * D, qb.end(), uint16_t(0));
      std::fill(m.begin(), m.end(), kNegInf);
      std::fill(l.begin(), l.end(), 0.f);
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t t0 = 0; t0 < item.cost; t0 += kKeyChunk) {
        const int64_t w = std::min(kKeyChunk, round_up(item.cost - t0, kKvBlock));
        detail::onednn_matmul_plain(qb.data(), Rp, D, kr + t0 * D, w, s.data(), DType::bf16, /*w_transposed=*/true);
        for (int64_t r = 0; r < Rp; ++r) {
          // Row r (token i0 + r/G, at position past + i0 + r/G) sees keys t <= that position.
          const int64_t lim = r < rows ? std::min(w, item.past + item.i0 + r / G + 1 - t0) : 0;
          corr[size_t(r)] = detail::softmax_chunk_row_avx512(s.data() + r * w, lim, w, p.data() + r * w, &m[size_t(r)], &l[size_t(r)]);
        }
        if (t0 > 0) rescale_rows(acc.data(), corr.data(), rows, D);
        detail::onednn_matmul_plain(p.data(), Rp, w, vr + t0 * D, D, acc.data(), DType::bf16, false,
                                    /*accumulate=*/true);
      }
      for (int64_t r = 0; r < rows; ++r) {
        float* dst = O + ((item.b * L + item.i0 + r / G) * H + item.g * G + r % G) * D;
        const float inv = l[size_t(r)] > 0 ? 1.f / l[size_t(r)] : 0.f;
        write_normalised_row(acc.data() + r * D, inv, D, dst);
      }
    }
  }
}

}  // namespace tori::kernels
