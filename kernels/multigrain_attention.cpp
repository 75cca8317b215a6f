// Multigrain attention (see multigrain_attention.hpp and docs/multigrain.md).
//
// Work: a group is one (sequence b, KV head g, query block of the split); its rows are the block's
// tokens × the G = H/K query heads sharing g (row r = token (i - i0), head r % G), so each K/V byte
// a group reads serves every head of the group. A group's items are its coarse runs (GEMM tiles)
// and its fine layers (cut into chunks of kFineChunk positions); each item leaves a partial softmax
// (m, l, acc) per row. Items of a wave of groups run in one dynamic OpenMP loop — coarse and fine
// side by side on the threads — then each group's partials are merged:
//   M = max_c m_c,   out = Σ_c e^(m_c − M) acc_c / Σ_c e^(m_c − M) l_c.
// Waves bound the partials' memory (kWaveFloats).
#include "kernels/multigrain_attention.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/attention_block.hpp"
#include "kernels/cpu_features.hpp"
#include "kernels/flop_counter.hpp"
#include "kernels/onednn_matmul.hpp"
#include "kernels/openblas_matmul.hpp"
#include "kernels/vec_math.hpp"

namespace tori::kernels {

namespace {

using detail::kNegInf;

constexpr int64_t kFineChunk = 1024;      // positions per fine item (long global rows, decode)
constexpr int64_t kFineRows = 32;         // rows per block-kernel call (attention.cpp's kRowsPerItem)
constexpr int64_t kWaveFloats = 1 << 23;  // partials of one wave: 32 MiB

struct Seq {
  int64_t b, n, past;
  std::shared_ptr<const AttentionSplit> split;
};
struct GrainGroup {
  int64_t seq, g, block, first_item, n_items;
};
struct GrainItem {
  int64_t group;
  bool coarse;
  int64_t index;   // run or layer of the block
  int64_t t0, t1;  // fine: the chunk of positions
  int64_t part;    // offset of (m[R], l[R], acc[R, D]) in the wave's partials
};
struct Wave {
  int64_t g0, g1, floats;
};

// Per-thread buffers, sized for the largest group (R = 64 tokens × G rows).
struct Scratch {
  std::vector<float> q, kt, s, v, o, block;
  std::vector<int64_t> lo, hi;
  Scratch(int64_t R, int64_t D)
      : q(size_t(pad16(R) * D)), kt(size_t(D * kMaxRunKeys)), s(size_t(pad16(R) * kMaxRunKeys)),
        v(size_t(kMaxRunKeys * D)), o(size_t(pad16(R) * D)),
        block(size_t(detail::attend_block_scratch_floats(R, D))), lo(size_t(R)), hi(size_t(R)) {}
  static int64_t pad16(int64_t r) { return (r + 15) / 16 * 16; }
};

TORI_SIMD_CLONES void widen_bf16(const uint16_t* src, float* dst, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16::to_f32(src[i]);
}

// Row softmax of s[R, n] in place: m = max, p = e^(s − m) (exactly 0 where s = −inf), l = Σ p.
TORI_SIMD_CLONES void softmax_rows(float* s, int64_t R, int64_t n, float* m, float* l) {
  for (int64_t r = 0; r < R; ++r) {
    float* sr = s + r * n;
    float mx = kNegInf;
    for (int64_t t = 0; t < n; ++t) mx = std::max(mx, sr[t]);
    m[r] = mx;
    if (mx == kNegInf) {
      std::fill(sr, sr + n, 0.f);
      l[r] = 0;
      continue;
    }
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t t = 0; t < n; ++t) {
      const float p = sr[t] == kNegInf ? 0.f : exp_f32(sr[t] - mx);
      sr[t] = p;
      sum += p;
    }
    l[r] = sum;
  }
}

class Runner {
 public:
  Runner(const Tensor& q, const KvCache& cache, Tensor& out, std::vector<Seq> seqs, int64_t G, Backend backend)
      : q_(q), cache_(cache), out_(out), seqs_(std::move(seqs)), backend_(backend), G_(G), D_(q.size(3)), L_(q.size(1)),
        H_(q.size(2)), scale_(1.f / std::sqrt(float(q.size(3)))),
        avx512_(cpu_has_avx512() && !force_portable_attention()) {}

  void plan() {
    for (int64_t si = 0; si < int64_t(seqs_.size()); ++si)
      for (int64_t g = 0; g < cache_.kv_heads(); ++g)
        for (int64_t bi = 0; bi < int64_t(seqs_[size_t(si)].split->blocks.size()); ++bi) {
          const QueryBlock& qb = seqs_[size_t(si)].split->blocks[size_t(bi)];
          GrainGroup gr{si, g, bi, int64_t(items_.size()), 0};
          for (int64_t r = 0; r < int64_t(qb.runs.size()); ++r)
            items_.push_back({int64_t(groups_.size()), true, r, qb.runs[size_t(r)].k0, qb.runs[size_t(r)].k1, 0});
          for (int64_t li = 0; li < int64_t(qb.layers.size()); ++li) {
            const FineLayer& fl = qb.layers[size_t(li)];
            for (int64_t c = fl.t0; c < fl.t1; c += kFineChunk)
              items_.push_back({int64_t(groups_.size()), false, li, c, std::min(fl.t1, c + kFineChunk), 0});
          }
          gr.n_items = int64_t(items_.size()) - gr.first_item;
          groups_.push_back(gr);
        }
    // Waves of groups whose partials fit kWaveFloats (at least one group each).
    int64_t floats = 0, g0 = 0;
    for (int64_t gi = 0; gi < int64_t(groups_.size()); ++gi) {
      const int64_t per = rows(groups_[size_t(gi)]) * (D_ + 2);
      const int64_t need = per * groups_[size_t(gi)].n_items;
      if (gi > g0 && floats + need > kWaveFloats) {
        waves_.push_back({g0, gi, floats});
        g0 = gi;
        floats = 0;
      }
      for (int64_t it = 0; it < groups_[size_t(gi)].n_items; ++it) {
        items_[size_t(groups_[size_t(gi)].first_item + it)].part = floats;
        floats += per;
      }
    }
    if (g0 < int64_t(groups_.size())) waves_.push_back({g0, int64_t(groups_.size()), floats});
  }

  void run() {
    if (groups_.empty()) return;
    int64_t max_floats = 0;
    for (const Wave& w : waves_) max_floats = std::max(max_floats, w.floats);
    std::vector<float> parts(static_cast<size_t>(max_floats));
    const detail::OpenblasSerialScope serial;  // each item's GEMMs run on its own thread
#pragma omp parallel
    {
      // Each item's GEMMs run on its own thread: oneDNN sizes a primitive's work split by
      // omp_get_max_threads() when it is made (and caches it by that count), so it must read 1 here.
      const int outer = omp_get_max_threads();
      omp_set_num_threads(1);
      Scratch sc(kSplitQueryBlock * G_, D_);
      for (const Wave& w : waves_) {
        const int64_t i0 = groups_[size_t(w.g0)].first_item;
        const int64_t i1 = groups_[size_t(w.g1 - 1)].first_item + groups_[size_t(w.g1 - 1)].n_items;
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = i0; it < i1; ++it) {
          const GrainItem& item = items_[size_t(it)];
          float* part = parts.data() + item.part;
          if (item.coarse)
            run_coarse(item, sc, part);
          else
            run_fine(item, sc, part);
        }
#pragma omp for schedule(static)
        for (int64_t gi = w.g0; gi < w.g1; ++gi) merge(groups_[size_t(gi)], parts.data());
      }
      omp_set_num_threads(outer);
    }
  }

 private:
  const QueryBlock& block(const GrainGroup& gr) const {
    return seqs_[size_t(gr.seq)].split->blocks[size_t(gr.block)];
  }
  int64_t rows(const GrainGroup& gr) const {
    const QueryBlock& qb = block(gr);
    return (qb.i1 - qb.i0) * G_;
  }

  // The group's query rows [R, D], scaled by 1/sqrt(D).
  void load_q(const GrainGroup& gr, float* dst) const {
    const QueryBlock& qb = block(gr);
    const int64_t b = seqs_[size_t(gr.seq)].b;
    const float* Q = q_.data<float>();
    for (int64_t i = qb.i0; i < qb.i1; ++i)
      for (int64_t hh = 0; hh < G_; ++hh) {
        const float* src = Q + ((b * L_ + i) * H_ + gr.g * G_ + hh) * D_;
        float* d = dst + ((i - qb.i0) * G_ + hh) * D_;
        for (int64_t k = 0; k < D_; ++k) d[k] = src[k] * scale_;
      }
  }

  // S = Q · K^T over the run's keys, masked by the pattern if the run is; softmax; acc = P · V.
  void run_coarse(const GrainItem& item, Scratch& sc, float* part) const {
    const GrainGroup& gr = groups_[size_t(item.group)];
    const QueryBlock& qb = block(gr);
    const Seq& seq = seqs_[size_t(gr.seq)];
    const CoarseRun& run = qb.runs[size_t(item.index)];
    // GEMM shapes are padded (rows to 16, keys to 64) so that oneDNN makes few primitives: n keys
    // of the run, np computed (the padding's scores are set to -inf, so its probabilities are 0).
    const int64_t R = rows(gr), D = D_, n = run.k1 - run.k0;
    const int64_t Rp = (R + 15) / 16 * 16, np = (n + kKvTile - 1) / kKvTile * kKvTile;
    float* m = part;
    float* l = m + R;
    float* acc = l + R;
    load_q(gr, sc.q.data());
    std::fill(sc.q.data() + R * D, sc.q.data() + Rp * D, 0.f);
    const int64_t base = cache_.block_offset(seq.b, gr.g);
    const bool bf = cache_.dtype() == DType::bf16;
    // K^T [D, np]: the run's K^T tiles side by side (the cache's tiles are whole 64-key blocks).
    for (int64_t j = 0; j * kKvTile < np; ++j) {
      const int64_t w = kKvTile;
      const int64_t tile = base + (run.k0 / kKvTile + j) * D * kKvTile;
      for (int64_t d = 0; d < D; ++d) {
        float* dst = sc.kt.data() + d * np + j * kKvTile;
        if (bf)
          widen_bf16(static_cast<const uint16_t*>(cache_.k().raw()) + tile + d * kKvTile, dst, w);
        else
          std::memcpy(dst, cache_.k().data<float>() + tile + d * kKvTile, size_t(w) * sizeof(float));
      }
    }
    float* S = sc.s.data();
    gemm(sc.q.data(), Rp, D, sc.kt.data(), np, S);
    if (np > n)
      for (int64_t r = 0; r < R; ++r) std::fill(S + r * np + n, S + (r + 1) * np, kNegInf);
    if (run.masked) {
      const AttentionSplit& sp = *seq.split;
      for (int64_t i = qb.i0; i < qb.i1; ++i) {
        const int64_t row = qb.row_first + (i - qb.i0);
        int64_t t = run.k0;  // positions before the next span are masked
        auto mask_to = [&](int64_t e) {
          for (int64_t hh = 0; hh < G_; ++hh) {
            float* sr = S + ((i - qb.i0) * G_ + hh) * np;
            for (int64_t x = t; x < e; ++x) sr[x - run.k0] = kNegInf;
          }
        };
        for (int64_t k = sp.row_span_first[size_t(row)]; k < sp.row_span_first[size_t(row + 1)] && t < run.k1; ++k) {
          const auto [a, e] = sp.spans[size_t(k)];
          if (e <= t) continue;
          mask_to(std::min(a, run.k1));
          t = std::max(t, std::min(e, run.k1));
        }
        mask_to(run.k1);
      }
    }
    softmax_rows(S, R, np, m, l);
    std::fill(S + R * np, S + Rp * np, 0.f);
    // V rows [k0, k0 + np): within T_pad; rows past the run get probability 0.
    const float* V;
    if (bf) {
      widen_bf16(static_cast<const uint16_t*>(cache_.v().raw()) + base + run.k0 * D, sc.v.data(), np * D);
      V = sc.v.data();
    } else {
      V = cache_.v().data<float>() + base + run.k0 * D;
    }
    if (Rp == R) {
      gemm(S, Rp, np, V, D, acc);
    } else {
      gemm(S, Rp, np, V, D, sc.o.data());
      std::memcpy(acc, sc.o.data(), size_t(R * D) * sizeof(float));
    }
  }

  // y[M, N] = x[M, K] · w[K, N], all plain row-major f32, on this thread alone.
  void gemm(const float* x, int64_t M, int64_t K, const float* w, int64_t N, float* y) const {
    if (backend_ == Backend::openblas)
      detail::openblas_sgemm(x, K, M, K, w, N, N, y, N, 1.f, false);
    else
      detail::onednn_matmul_plain(x, M, K, w, N, y, DType::f32);
  }

  // The layer's [lo, hi) per row within positions [t0, t1), by the attention block kernel.
  void run_fine(const GrainItem& item, Scratch& sc, float* part) const {
    const GrainGroup& gr = groups_[size_t(item.group)];
    const QueryBlock& qb = block(gr);
    const Seq& seq = seqs_[size_t(gr.seq)];
    const FineLayer& fl = qb.layers[size_t(item.index)];
    const int64_t R = rows(gr);
    float* m = part;
    float* l = m + R;
    float* acc = l + R;
    std::fill(m, m + R, kNegInf);
    std::fill(l, l + R + R * D_, 0.f);
    load_q(gr, sc.q.data());
    const int64_t* bounds = seq.split->bounds.data() + fl.first;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t tok = r / G_;
      sc.lo[size_t(r)] = bounds[2 * tok];
      sc.hi[size_t(r)] = bounds[2 * tok + 1];
    }
    detail::AttendBlockArgs a;
    a.q = sc.q.data();
    a.lim = sc.hi.data();
    a.lo = sc.lo.data();
    a.R = R;
    a.D = D_;
    const int64_t base = cache_.block_offset(seq.b, gr.g) * int64_t(dtype_size(cache_.dtype()));
    a.bf16 = cache_.dtype() == DType::bf16;
    a.k = static_cast<const std::byte*>(cache_.k().raw()) + base;
    a.v = static_cast<const std::byte*>(cache_.v().raw()) + base;
    a.t0 = item.t0;
    a.t1 = item.t1;
    a.scratch = sc.block.data();
    // At most kFineRows rows per call, so that their queries, scores and accumulators stay in
    // cache (as attention's own items do: 64 tokens x 4 heads x D = 256 would be 256 KiB each).
    for (int64_t r0 = 0; r0 < R; r0 += kFineRows) {
      detail::AttendBlockArgs c = a;
      c.R = std::min(kFineRows, R - r0);
      c.q = sc.q.data() + r0 * D_;
      c.lim = sc.hi.data() + r0;
      c.lo = sc.lo.data() + r0;
      c.m = m + r0;
      c.l = l + r0;
      c.acc = acc + r0 * D_;
      if (avx512_)
        detail::attend_block_avx512(c);
      else
        detail::attend_block_portable(c);
    }
  }

  void merge(const GrainGroup& gr, const float* parts) const {
    const QueryBlock& qb = block(gr);
    const int64_t R = rows(gr), D = D_, b = seqs_[size_t(gr.seq)].b;
    float* O = out_.data<float>();
    for (int64_t r = 0; r < R; ++r) {
      const int64_t i = qb.i0 + r / G_, hh = r % G_;
      detail::merge_partials(
          gr.n_items, [&](int64_t c) { return parts + items_[size_t(gr.first_item + c)].part; }, R, r, D,
          O + ((b * L_ + i) * H_ + gr.g * G_ + hh) * D);
    }
  }

  const Tensor& q_;
  const KvCache& cache_;
  Tensor& out_;
  std::vector<Seq> seqs_;
  Backend backend_;
  int64_t G_, D_, L_, H_;
  float scale_;
  bool avx512_;
  std::vector<GrainGroup> groups_;
  std::vector<GrainItem> items_;
  std::vector<Wave> waves_;
};

std::vector<Seq> sequences(const Tensor& q, const KvCache& cache, const std::vector<int64_t>& n,
                           const AttentionPattern& pattern, Grain grain) {
  std::vector<Seq> seqs;
  for (int64_t b = 0; b < q.size(0); ++b) {
    const int64_t nb = n[size_t(b)];
    if (nb == 0) continue;
    const int64_t T = cache.length(b);
    seqs.push_back({b, nb, T - nb, cached_split(pattern, nb, T, T - nb, grain)});
  }
  return seqs;
}

}  // namespace

void multigrain_attention(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new,
                          const AttentionPattern& pattern, Tensor& out, Grain grain, Backend gemm) {
  pattern.validate();
  if (gemm != Backend::onednn && gemm != Backend::openblas)
    throw Error("multigrain_attention: coarse tiles run on onednn or openblas, not " + std::string(backend_name(gemm)));
  const std::vector<int64_t> n = detail::attention_check(q, cache, n_new, out, "multigrain_attention");
  const int64_t B = q.size(0), L = q.size(1), H = q.size(2), D = q.size(3);
  std::vector<Seq> seqs = sequences(q, cache, n, pattern, grain);
  uint64_t allowed = 0;
  for (const Seq& s : seqs) allowed += uint64_t(s.split->allowed_pairs);
  count_attention_flops(4 * uint64_t(H) * uint64_t(D) * allowed);
  float* O = out.data<float>();
  for (int64_t b = 0; b < B; ++b)  // idle rows are zero
    if (n[size_t(b)] < L)
      std::memset(O + (b * L + n[size_t(b)]) * H * D, 0, size_t((L - n[size_t(b)]) * H * D) * sizeof(float));
  Runner runner(q, cache, out, std::move(seqs), H / cache.kv_heads(), gemm);
  runner.plan();
  runner.run();
}

void multigrain_attention_ref(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new,
                              const AttentionPattern& pattern, Tensor& out) {
  pattern.validate();
  const std::vector<int64_t> n = detail::attention_check(q, cache, n_new, out, "multigrain_attention_ref");
  detail::attention_ref_masked(q, cache, n, [&](int64_t p, int64_t k) { return pattern.allowed(p, k); }, out);
}

KernelCost multigrain_attention_cost(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new,
                                     const AttentionPattern& pattern) {
  KernelCost c;
  const int64_t L = q.size(1), H = q.size(2), D = q.size(3);
  for (int64_t b = 0; b < q.size(0); ++b) {
    const int64_t nb = n_new.empty() ? L : n_new[size_t(b)];
    if (nb == 0) continue;
    const int64_t T = cache.length(b);
    const auto sp = cached_split(pattern, nb, T, T - nb, Grain::multi);
    c.flops += 4.0 * double(H) * double(D) * double(sp->allowed_pairs);
    // keys any query sees: the union of the rows' spans
    std::vector<std::pair<int64_t, int64_t>> u(sp->spans);
    std::sort(u.begin(), u.end());
    int64_t seen = 0, end = 0;
    for (const auto& [a, e] : u) {
      if (e <= end) continue;
      seen += e - std::max(a, end);
      end = e;
    }
    c.weight_bytes += double(cache.bytes_for(seen));
  }
  c.bytes = c.weight_bytes + 2.0 * 4.0 * double(q.numel());
  return c;
}

double multigrain_assigned_flops(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new,
                                  const AttentionPattern& pattern, Grain grain) {
  double pairs = 0;
  const int64_t L = q.size(1);
  for (int64_t b = 0; b < q.size(0); ++b) {
    const int64_t nb = n_new.empty() ? L : n_new[size_t(b)];
    if (nb == 0) continue;
    const int64_t T = cache.length(b);
    const auto sp = cached_split(pattern, nb, T, T - nb, grain);
    pairs += double(sp->coarse_pairs + sp->fine_pairs);
  }
  return 4.0 * double(q.size(2)) * double(q.size(3)) * pairs;
}

}  // namespace tori::kernels
