#include "runtime/attention_layouts.hpp"

#include <algorithm>

#include "kernels/columns.hpp"
#include "kernels/take.hpp"
#include "runtime/attention_kernel.hpp"

namespace tori::runtime {

using collectives::Axes;
using kernels::Tensor;

namespace {

// Heads `pick` (indices into the H axis) of x [R, H·D] (or [.., H, D]), side by side: [R, |pick|·D].
Tensor select_heads(const Tensor& x, int64_t H, int64_t D, const std::vector<int64_t>& pick) {
  std::vector<int64_t> starts;
  for (int64_t h : pick) starts.push_back(h * D);
  return kernels::take_columns(x.reshape({x.numel() / (H * D), H * D}), starts, D);
}

// For each head of `want`, its index in `have` (both list the same heads).
std::vector<int64_t> positions_in(const std::vector<int64_t>& want, const std::vector<int64_t>& have) {
  std::vector<int64_t> p;
  for (int64_t h : want) p.push_back(std::find(have.begin(), have.end(), h) - have.begin());
  return p;
}

// t's heads at `pos` (select_heads), or t itself when pos keeps every head in place (an all-to-all
// over a group of one rank): no copy.
Tensor in_head_order(const Tensor& t, int64_t H, int64_t D, const std::vector<int64_t>& pos) {
  bool identity = int64_t(pos.size()) == H;
  for (size_t i = 0; identity && i < pos.size(); ++i) identity = pos[i] == int64_t(i);
  return identity ? t : select_heads(t, H, D, pos);
}

// Appends the new rows of every sequence in [first, first + count) (global indices of the step) to
// `cache`, whose sequence 0 is global `cache_first`; step sequence gb is cache sequence
// sequence[gb] (identity when `sequence` is empty). k, v: [count·L, K_c·D] rows of those sequences.
void append_rows(kernels::KvCache& cache, int64_t cache_first, int64_t first, int64_t count, int64_t L,
                 const std::vector<int64_t>& n_new, const std::vector<int64_t>& sequence, const Tensor& k,
                 const Tensor& v) {
  const int64_t ld = k.size(1);
  for (int64_t b = 0; b < count; ++b) {
    const int64_t gb = first + b;
    if (n_new[size_t(gb)] > 0)
      cache.append((sequence.empty() ? gb : sequence[size_t(gb)]) - cache_first, k.data<float>() + b * L * ld,
                   v.data<float>() + b * L * ld, n_new[size_t(gb)], ld);
  }
}

// Attention of the step's sequences [first, first + B_a) against `cache` (sequence 0 = global
// cache_first). When the step runs only some sequences (StepContext::sequence), their query rows
// are placed at their cache sequences in a [B_c, L, H_a, D] block, the others idle (the kernel
// skips them: no FLOPs, no cache reads), and taken back: o [B_a, L, H_a, D], padding rows zero.
Tensor attend(const Tensor& q, const kernels::KvCache& cache, int64_t cache_first, int64_t first,
              const std::vector<int64_t>& n_new_all, const std::vector<int64_t>& sequence,
              const kernels::AttentionPattern& pattern, AttentionKernel kernel, bool bf16_tiles) {
  const int64_t Ba = q.size(0), row = q.numel() / std::max<int64_t>(Ba, 1);
  std::vector<int64_t> n_new(n_new_all.begin() + first, n_new_all.begin() + first + Ba);
  Tensor o;
  if (sequence.empty()) {
    attend_with_kernel(q, cache, n_new, pattern, kernel, o, bf16_tiles);
    return o;
  }
  const int64_t Bc = cache.batch();
  Tensor qc({Bc, q.size(1), q.size(2), q.size(3)}, kernels::DType::f32), oc;
  std::vector<int64_t> n_cache(static_cast<size_t>(Bc), 0), at(static_cast<size_t>(Ba), -1);
  for (int64_t b = 0; b < Ba; ++b) {
    if (n_new[size_t(b)] == 0) continue;  // padding, or (never in decode) a sequence without tokens
    at[size_t(b)] = sequence[size_t(first + b)] - cache_first;
    n_cache[size_t(at[size_t(b)])] = n_new[size_t(b)];
    std::copy_n(q.data<float>() + b * row, row, qc.data<float>() + at[size_t(b)] * row);
  }
  attend_with_kernel(qc, cache, n_cache, pattern, kernel, oc, bf16_tiles);
  o = Tensor({Ba, q.size(1), q.size(2), q.size(3)}, kernels::DType::f32);
  for (int64_t b = 0; b < Ba; ++b)
    if (at[size_t(b)] >= 0) std::copy_n(oc.data<float>() + at[size_t(b)] * row, row, o.data<float>() + b * row);
  return o;
}

}  // namespace

bool needs_cache_handoff(const Placement& p, const Placement& d) {
  return p.attn_batch_local != d.attn_batch_local || p.attn_batch_offset != d.attn_batch_offset ||
         p.kv_heads != d.kv_heads;
}

Tensor sharded_attention(StepContext& s, int64_t layer, const Tensor& q_in, const Tensor& kv, bool handoff) {
  const auto& c = s.config;
  const Placement& pl = s.pl;
  const int64_t Bl = q_in.size(0), L = q_in.size(1), Hl = q_in.size(2), D = c.d_head, K = c.n_kv_heads,
                KD = K * D;
  auto& coll = s.coll;

  // RoPE at each row's position: sequence b's row l sits at start[b] + l. Padded rows (l >= n_new,
  // never cached or read) take the last position in the table, which an idle sequence's could pass.
  std::vector<int64_t> pos;
  for (int64_t b = 0; b < Bl; ++b)
    for (int64_t l = 0; l < L; ++l) {
      const size_t gb = size_t(pl.batch_offset + b);
      pos.push_back(l < s.n_new[gb] ? s.start[gb] + l : std::min(s.start[gb], c.max_seq - 1));
    }
  const kernels::RopeTable& rope = s.rope_local && c.is_local(layer) ? *s.rope_local : s.rope;
  Tensor q = q_in.clone().reshape({Bl * L, Hl * D});
  kernels::rope(q, pos, rope);
  Tensor k_all = kernels::slice_columns(kv, 0, KD), v_all = kernels::slice_columns(kv, KD, KD);  // [B_l·L, K·D]
  kernels::rope(k_all, pos, rope);

  // Heads -> batch: [B_l, L, H_l, D] --all_to_all(split B, concat H, S')--> [B_l/|S'|, L, H_l·|S'|, D]
  const AttentionDataflow& f = s.flow.attention;
  const Axes S = f.to_batch;
  const int64_t Ba = pl.attn_batch_local, Ha = static_cast<int64_t>(pl.heads.size());
  Tensor qa = coll.all_to_all(q.reshape({Bl, L, Hl, D}), 0, 2, S);
  if (!S.empty()) qa = in_head_order(qa, Ha, D, positions_in(pl.heads, pl.a2a_heads)).reshape({Ba, L, Ha, D});
  // My attention sequences' rows of K and V, and the KV heads my query heads read.
  const int64_t row0 = (pl.attn_batch_offset - pl.batch_offset) * L;
  Tensor k_mine = k_all.narrow0(row0, Ba * L), v_mine = v_all.narrow0(row0, Ba * L);
  Tensor k_sel = select_heads(k_mine, K, D, pl.kv_heads), v_sel = select_heads(v_mine, K, D, pl.kv_heads);

  // Attend against the decode cache, or (prefill in another placement) the prefill's own one.
  kernels::KvCache* cache = &(*s.caches)[size_t(layer)];
  int64_t cache_first = s.decode_pl.attn_batch_offset;
  if (handoff) {
    cache = &s.handoff_caches->at(size_t(layer));
    cache_first = pl.attn_batch_offset;
    for (int64_t b = 0; b < Ba; ++b)  // it holds this prefill's chunks so far (an idle sequence: unread)
      if (s.n_new[size_t(pl.attn_batch_offset + b)] > 0 && s.start[size_t(pl.attn_batch_offset + b)] != cache->positions(b))
        throw Error("prefill in a placement other than decode's needs empty caches");
  }
  // A sliding-window cache takes a step of at most max_step() new positions in place; a longer one
  // (a long prefill chunk) attends against a widened copy, and the cache keeps the newest positions.
  const kernels::AttentionPattern pattern = c.layer_pattern(layer);
  int64_t longest = 0;
  for (int64_t b = 0; b < Ba; ++b) longest = std::max(longest, s.n_new[size_t(pl.attn_batch_offset + b)]);
  const bool bf16_tiles = bf16_attention_applies(s.opt.format, s.opt.backend);
  Tensor o;
  if (longest > cache->max_step()) {
    kernels::KvCache wide = cache->widened(longest);
    append_rows(wide, cache_first, pl.attn_batch_offset, Ba, L, s.n_new, s.sequence, k_sel, v_sel);
    o = attend(qa.reshape({Ba, L, Ha, D}), wide, cache_first, pl.attn_batch_offset, s.n_new, s.sequence, pattern,
               s.opt.attention_kernel, bf16_tiles);
    append_rows(*cache, cache_first, pl.attn_batch_offset, Ba, L, s.n_new, s.sequence, k_sel, v_sel);
  } else {
    append_rows(*cache, cache_first, pl.attn_batch_offset, Ba, L, s.n_new, s.sequence, k_sel, v_sel);
    o = attend(qa.reshape({Ba, L, Ha, D}), *cache, cache_first, pl.attn_batch_offset, s.n_new, s.sequence, pattern,
               s.opt.attention_kernel, bf16_tiles);
  }

  if (handoff) {
    // K/V of my attention sequences, every KV head --all_gather(S') then (A) over B--> [B·L, K·D]
    Tensor k_full = coll.all_gather(coll.all_gather(k_mine.clone(), 0, f.handoff_rows), 0, f.handoff_batch);
    Tensor v_full = coll.all_gather(coll.all_gather(v_mine.clone(), 0, f.handoff_rows), 0, f.handoff_batch);
    const Placement& d = s.decode_pl;
    Tensor kd = select_heads(k_full.narrow0(d.attn_batch_offset * L, d.attn_batch_local * L), K, D, d.kv_heads);
    Tensor vd = select_heads(v_full.narrow0(d.attn_batch_offset * L, d.attn_batch_local * L), K, D, d.kv_heads);
    append_rows((*s.caches)[size_t(layer)], d.attn_batch_offset, d.attn_batch_offset, d.attn_batch_local, L,
                s.n_new, {}, kd, vd);
  }

  // Batch -> heads: [B_l/|S'|, L, H_l·|S'|, D] --all_to_all(split H, concat B, S')--> [B_l, L, H_l, D]
  if (!S.empty()) o = in_head_order(o, Ha, D, positions_in(pl.a2a_heads, pl.heads)).reshape({Ba, L, Ha, D});
  return coll.all_to_all(o.reshape({Ba, L, Ha, D}), 2, 0, S);
}

}  // namespace tori::runtime
