// Fast attention over a KvCache (see attention.hpp for the contract).
//
// Work is cut into items. An item is one (sequence b, KV head g, block of query tokens [i0, i1))
// against one chunk of cache positions [t0, t1). All G = H/K query heads of g are rows of the same
// item, so each K/V byte is read once per step however many heads share it (multiquery/grouped).
// Prefill items take all positions they can see (no merge); when there are too few items to keep
// every thread busy (decode: B·K small, T long) the positions are split into chunks whose partial
// softmaxes (max m, sum l, unnormalised acc) are merged afterwards, flash-decoding style.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/flop_counter.hpp"
#include "kernels/attention_block.hpp"
#include "kernels/cpu_features.hpp"
#include "kernels/vec_math.hpp"

namespace tori::kernels {

namespace {

using detail::kNegInf;

bool& portable_flag() {
  static bool f = false;
  return f;
}

constexpr int64_t kRowsPerItem = 32;     // query rows (tokens x heads of one group) per prefill item
constexpr int64_t kMinChunk = 256;       // shortest chunk of positions worth a separate work item
constexpr int64_t kItemsPerThread = 2;   // split positions until there are this many items/thread

struct Group {  // one (b, g, query block): the unit whose output rows are final after merging
  int64_t b, g, i0, i1, past, first_item, n_items;
};
struct Item {
  int64_t group, t0, t1, part;  // part: offset of this item's partials (m, l, acc) in the buffer
};

}  // namespace

void set_force_portable_attention(bool on) { portable_flag() = on; }
bool force_portable_attention() { return portable_flag(); }

namespace detail {

// Portable block kernel: gathers each block of 64 positions into row-major f32 K and V (undoing
// the K^T tiles), then one dot product per (row, position) and an axpy per position. The loops are
// plain C++ vectorised through TORI_SIMD_CLONES; the AVX-512 kernel is ~3x faster.
TORI_SIMD_CLONES void attend_block_portable(const AttendBlockArgs& a) {
  const int64_t R = a.R, D = a.D;
  float* s = a.scratch;
  float* K = s + R * kKvBlock;
  float* V = K + kKvBlock * D;
  for (int64_t tb = a.t0; tb < a.t1; tb += kKvBlock) {
    if (a.lo && !block_visible(a, tb)) continue;
    const int64_t nb = std::min(kKvBlock, a.t1 - tb);
    for (int64_t t = 0; t < nb; ++t)
      for (int64_t d = 0; d < D; ++d) {
        const int64_t ko = ((tb + t) / kKvTile) * D * kKvTile + d * kKvTile + (tb + t) % kKvTile;
        const int64_t vo = (tb + t) * D + d;
        if (a.bf16) {
          K[t * D + d] = bf16::to_f32(static_cast<const uint16_t*>(a.k)[ko]);
          V[t * D + d] = bf16::to_f32(static_cast<const uint16_t*>(a.v)[vo]);
        } else {
          K[t * D + d] = static_cast<const float*>(a.k)[ko];
          V[t * D + d] = static_cast<const float*>(a.v)[vo];
        }
      }
    for (int64_t r = 0; r < R; ++r) {
      const int64_t ne = std::min(a.lim[r], tb + nb) - tb;  // causal: visible positions in block
      const int64_t ns = a.lo ? std::max<int64_t>(0, a.lo[r] - tb) : 0;  // first visible
      if (ne <= ns) continue;
      const float* qr = a.q + r * D;
      float mb = kNegInf;
      for (int64_t t = ns; t < ne; ++t) {
        const float* kt = K + t * D;
        float dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t d = 0; d < D; ++d) dot += qr[d] * kt[d];
        s[t] = dot;
        mb = std::max(mb, dot);
      }
      const float m_new = std::max(a.m[r], mb);
      const float corr = a.m[r] == kNegInf ? 0.f : exp_f32(a.m[r] - m_new);
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t t = ns; t < ne; ++t) {
        const float p = exp_f32(s[t] - m_new);
        s[t] = p;
        sum += p;
      }
      a.l[r] = a.l[r] * corr + sum;
      a.m[r] = m_new;
      float* acc = a.acc + r * D;
      if (corr != 1.f) {
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) acc[d] *= corr;
      }
      for (int64_t t = ns; t < ne; ++t) {
        const float p = s[t];
        const float* vt = V + t * D;
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) acc[d] += p * vt[d];
      }
    }
  }
}

int64_t attention_count_and_clear_idle(const Tensor& q, const KvCache& cache, const std::vector<int64_t>& n,
                                       Tensor& out) {
  const int64_t B = q.size(0), L = q.size(1), H = q.size(2), D = q.size(3);
  float* O = out.data<float>();
  uint64_t visible = 0;
  int64_t n_max = 0;
  for (int64_t b = 0; b < B; ++b) {
    const uint64_t nb = uint64_t(n[size_t(b)]), past = uint64_t(cache.length(b)) - nb;
    visible += nb * past + nb * (nb + 1) / 2;
    n_max = std::max(n_max, n[size_t(b)]);
    if (n[size_t(b)] < L)
      std::memset(O + (b * L + n[size_t(b)]) * H * D, 0, size_t((L - n[size_t(b)]) * H * D) * sizeof(float));
  }
  count_attention_flops(4 * uint64_t(H) * uint64_t(D) * visible);
  return n_max;
}

}  // namespace detail

void attention(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new, Tensor& out) {
  const std::vector<int64_t> n = detail::attention_check(q, cache, n_new, out, "attention");
  const int64_t B = q.size(0), L = q.size(1), H = q.size(2), D = q.size(3);
  const int64_t Kh = cache.kv_heads(), G = H / Kh;
  const float scale = 1.f / std::sqrt(float(D));
  const float* Q = q.data<float>();
  float* O = out.data<float>();
  const bool avx512 = cpu_has_avx512() && !force_portable_attention();
  detail::attention_count_and_clear_idle(q, cache, n, out);

  // Groups: (b, g, block of query tokens).
  const int64_t tokens_per_item = std::max<int64_t>(1, kRowsPerItem / G);
  std::vector<Group> groups;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < Kh; ++g)
      for (int64_t i0 = 0; i0 < n[size_t(b)]; i0 += tokens_per_item)
        groups.push_back({b, g, i0, std::min(n[size_t(b)], i0 + tokens_per_item),
                          cache.length(b) - n[size_t(b)], 0, 0});
  if (groups.empty()) return;

  // Items: split each group's visible positions into chunks when groups alone cannot fill the
  // threads (decode with few sequences and long caches).
  const int64_t threads = omp_get_max_threads();
  const int64_t target = kItemsPerThread * threads;
  const int64_t splits = std::max<int64_t>(1, (target + int64_t(groups.size()) - 1) / int64_t(groups.size()));
  std::vector<Item> items;
  int64_t part = 0;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    Group& gr = groups[gi];
    const int64_t T = gr.past + gr.i1;  // positions the last row sees
    int64_t chunk = std::max(kMinChunk, (T + splits - 1) / splits);
    chunk = (chunk + kKvBlock - 1) / kKvBlock * kKvBlock;  // blocks start on K^T tile groups
    const int64_t R = (gr.i1 - gr.i0) * G;
    gr.first_item = int64_t(items.size());
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
      items.push_back({int64_t(gi), t0, std::min(T, t0 + chunk), part});
      part += R * (D + 2);
    }
    gr.n_items = int64_t(items.size()) - gr.first_item;
  }
  std::vector<float> parts(static_cast<size_t>(part));

#pragma omp parallel
  {
    std::vector<float> qbuf(size_t(kRowsPerItem + G) * size_t(D));
    std::vector<float> scratch(size_t(detail::attend_block_scratch_floats(kRowsPerItem + G, D)));
    std::vector<int64_t> lim(size_t(kRowsPerItem + G));
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < int64_t(items.size()); ++it) {
      const Item& item = items[size_t(it)];
      const Group& gr = groups[size_t(item.group)];
      const int64_t R = (gr.i1 - gr.i0) * G;
      // [R, D] query rows of this group, pre-scaled; causal limit per row.
      for (int64_t i = gr.i0; i < gr.i1; ++i)
        for (int64_t hh = 0; hh < G; ++hh) {
          const int64_t r = (i - gr.i0) * G + hh;
          const float* src = Q + ((gr.b * L + i) * H + gr.g * G + hh) * D;
          for (int64_t d = 0; d < D; ++d) qbuf[size_t(r * D + d)] = src[d] * scale;
          lim[size_t(r)] = gr.past + i + 1;
        }
      float* m = parts.data() + item.part;
      float* l = m + R;
      float* acc = l + R;
      std::fill(m, m + R, kNegInf);
      std::fill(l, l + R + R * D, 0.f);
      detail::AttendBlockArgs args;
      args.q = qbuf.data();
      args.lim = lim.data();
      args.R = R;
      args.D = D;
      const int64_t base = cache.block_offset(gr.b, gr.g);
      args.bf16 = cache.dtype() == DType::bf16;
      args.k = static_cast<const std::byte*>(cache.k().raw()) + base * int64_t(dtype_size(cache.dtype()));
      args.v = static_cast<const std::byte*>(cache.v().raw()) + base * int64_t(dtype_size(cache.dtype()));
      args.t0 = item.t0;
      args.t1 = item.t1;
      args.m = m;
      args.l = l;
      args.acc = acc;
      args.scratch = scratch.data();
      if (avx512)
        detail::attend_block_avx512(args);
      else
        detail::attend_block_portable(args);
    }

    // Merge the chunks of each group: M = max m_c, out = sum acc_c e^(m_c - M) / sum l_c e^(m_c - M).
#pragma omp for schedule(static)
    for (int64_t gi = 0; gi < int64_t(groups.size()); ++gi) {
      const Group& gr = groups[size_t(gi)];
      const int64_t R = (gr.i1 - gr.i0) * G;
      for (int64_t r = 0; r < R; ++r) {  // a chunk entirely in this row's future has m = -inf
        const int64_t i = gr.i0 + r / G, hh = r % G;
        detail::merge_partials(
            gr.n_items, [&](int64_t c) { return parts.data() + items[size_t(gr.first_item + c)].part; }, R, r, D,
            O + ((gr.b * L + i) * H + gr.g * G + hh) * D);
      }
    }
  }
}

}  // namespace tori::kernels
