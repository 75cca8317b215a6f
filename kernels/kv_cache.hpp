#pragma once
// KvCache: one layer's keys and values for this rank's slice of the batch (batch-sharded attention
// gives each rank B_local whole sequences; head-sharded attention gives it a subset of KV heads —
// both are just a smaller KvCache).
//
// Layout, f32 or bf16, per (sequence b, KV head g) one dense block, so decode streams it and every
// byte of a cache line is used:
//   V [B, K, T_pad, D]            position-major rows, as x @ W_v produces them
//   K [B, K, T_pad/64, D, 64]     tiles of 64 positions stored d-major ("K^T tiles"): the score
//                                 kernel loads 64 positions' d-th elements as four vectors and
//                                 FMAs them with a broadcast q[d], so Q K^T needs no horizontal
//                                 sums, and each tile is one contiguous stream (D x 256 bytes).
// T_pad = the slots (max_seq, or a window's capacity) rounded up to 64 (the kernel's block of
// positions); padding stays zero and is masked. Appending a token writes K rows of D. Lengths are
// per sequence (ragged batch).
//
// Sliding-window cache (a local layer's, window w > 0 with s sink positions): only the positions
// a later query can see are kept. Slots [0, s) hold positions [0, s) (the sinks) for good; slots
// [s, length) hold the most recent positions, contiguous and in order. When an append would
// overflow the capacity, the window part is compacted: the oldest positions are dropped and the
// w - 1 + L newest kept (L = the rows appended) moved to slot s on, so a step's queries still see
// all they may. The capacity (window_slots) leaves kWindowSlack slots beyond w - 1 + s, so decode
// compacts once per kWindowSlack steps (a copy of w - 1 positions: amortised below one append).
// Memory is O(s + w), not O(max_seq). The kernels see slots, not positions: length(b) is the slots
// in use, and the pattern sliding_window(w, s) on slots equals it on positions (a slot's distance
// to another within the window part is their distance in positions; sinks are slots < s). A
// contiguous window (rather than a ring that wraps) keeps every 64-slot K^T tile one stream, so
// attention and multigrain kernels read it unchanged.
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/tensor.hpp"

namespace tori::kernels {

constexpr int64_t kKvTile = 64;   // positions per K^T tile: four 64-byte f32 vectors per d
constexpr int64_t kKvBlock = 64;  // positions per attention block; T_pad is a multiple of this
static_assert(kKvBlock == kKvTile, "the AVX-512 block kernel reads one K^T tile per block");

// Slots beyond w - 1 + s a sliding-window cache keeps (compaction at most once per this many
// decode steps).
constexpr int64_t kWindowSlack = 64;
// Slots a cache of max_seq positions holds with a window w (0: none, max_seq) and s sinks.
int64_t window_slots(int64_t max_seq, int64_t window, int64_t sink);

class KvCache {
 public:
  KvCache() = default;
  // window = 0: every position up to max_seq; window > 0: a sliding-window cache (above).
  KvCache(int64_t batch, int64_t kv_heads, int64_t max_seq, int64_t d_head,
          DType dtype = DType::f32, int64_t window = 0, int64_t sink = 0);

  int64_t batch() const { return static_cast<int64_t>(len_.size()); }
  int64_t kv_heads() const { return kv_heads_; }
  int64_t max_seq() const { return max_seq_; }
  int64_t d_head() const { return d_head_; }
  DType dtype() const { return k_.dtype(); }
  // Slots in use by sequence b (what the kernels attend over; = positions() without a window).
  int64_t length(int64_t b) const { return len_.at(static_cast<size_t>(b)); }
  std::span<const int64_t> lengths() const { return len_; }
  // Positions sequence b has appended (slots in use + positions dropped by the window).
  int64_t positions(int64_t b) const { return len_.at(size_t(b)) + dropped_.at(size_t(b)); }
  int64_t window() const { return window_; }
  int64_t sink() const { return sink_; }
  int64_t slots() const { return slots_; }
  // The most new positions per sequence one step may append and still attend in place (its
  // queries seeing every position the window allows): slots - s - (w - 1); max_seq without a window.
  int64_t max_step() const;
  // A copy of this cache (same window) with room for `extra` more positions per sequence without
  // compacting: a step longer than max_step() attends against it (a long prefill chunk).
  KvCache widened(int64_t extra) const;

  // Appends L positions to sequence b: k_new, v_new are [L, K*D] (or [L, K, D]) f32 — the rows
  // x @ W_k / x @ W_v produce (after RoPE on k). Throws if the sequence would exceed max_seq
  // positions; a sliding-window cache keeps only the newest positions (above).
  void append(int64_t b, const Tensor& k_new, const Tensor& v_new);
  // Same from raw rows of stride ld floats (ld >= K*D), e.g. columns of a fused QKV projection.
  void append(int64_t b, const float* k_new, const float* v_new, int64_t L, int64_t ld);
  void clear(int64_t b) { len_.at(static_cast<size_t>(b)) = dropped_.at(static_cast<size_t>(b)) = 0; }
  void clear_all();

  int64_t padded_seq() const { return t_pad_; }
  const Tensor& k() const { return k_; }  // [B, K, T_pad/64, D, 64]
  const Tensor& v() const { return v_; }  // [B, K, T_pad, D]
  // Element offset of the (b, g) block in k() and v() (both hold T_pad * D elements per block).
  int64_t block_offset(int64_t b, int64_t g) const { return (b * kv_heads_ + g) * t_pad_ * d_head_; }
  // Element offsets of K[b, g, t, d] and V[b, g, t, d].
  int64_t k_offset(int64_t b, int64_t g, int64_t t, int64_t d) const {
    return block_offset(b, g) + (t / kKvTile) * d_head_ * kKvTile + d * kKvTile + t % kKvTile;
  }
  int64_t v_offset(int64_t b, int64_t g, int64_t t, int64_t d) const {
    return block_offset(b, g) + t * d_head_ + d;
  }
  // Bytes of K and V one attention pass over the first `positions` tokens of one sequence reads.
  int64_t bytes_for(int64_t positions) const {
    return 2 * positions * kv_heads_ * d_head_ * int64_t(dtype_size(dtype()));
  }

 private:
  // Drops the oldest `n` positions of sequence b's window part, moving the rest to slot sink_ on.
  void drop_oldest(int64_t b, int64_t n);
  void write(int64_t b, int64_t slot, const float* k_row, const float* v_row);

  int64_t kv_heads_ = 0, max_seq_ = 0, t_pad_ = 0, d_head_ = 0;
  int64_t window_ = 0, sink_ = 0, slots_ = 0;
  Tensor k_, v_;
  std::vector<int64_t> len_, dropped_;
};

}  // namespace tori::kernels
