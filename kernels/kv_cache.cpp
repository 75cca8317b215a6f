#include "kernels/kv_cache.hpp"

#include <algorithm>
#include <cstring>

namespace tori::kernels {

int64_t window_slots(int64_t max_seq, int64_t window, int64_t sink) {
  if (window <= 0) return max_seq;
  return std::min(max_seq, sink + window - 1 + kWindowSlack);
}

KvCache::KvCache(int64_t batch, int64_t kv_heads, int64_t max_seq, int64_t d_head, DType dtype, int64_t window,
                 int64_t sink)
    : kv_heads_(kv_heads), max_seq_(max_seq), d_head_(d_head), window_(window), sink_(sink) {
  if (batch < 0 || kv_heads <= 0 || max_seq < 0 || d_head <= 0 || dtype == DType::s8 || window < 0 || sink < 0)
    throw Error("KvCache: need batch >= 0, kv_heads >= 1, max_seq >= 0, d_head >= 1, window >= 0, sink >= 0 and "
                "dtype f32 or bf16; got batch = " + std::to_string(batch) + ", kv_heads = " +
                std::to_string(kv_heads) + ", max_seq = " + std::to_string(max_seq) +
                ", d_head = " + std::to_string(d_head) + ", window = " + std::to_string(window) +
                ", sink = " + std::to_string(sink) + ", dtype = " + std::string(dtype_name(dtype)));
  if (window_ == 0) sink_ = 0;
  slots_ = window_slots(max_seq, window_, sink_);
  t_pad_ = (slots_ + kKvBlock - 1) / kKvBlock * kKvBlock;
  k_ = Tensor({batch, kv_heads, t_pad_ / kKvTile, d_head, kKvTile}, dtype);
  v_ = Tensor({batch, kv_heads, t_pad_, d_head}, dtype);
  len_.assign(static_cast<size_t>(batch), 0);
  dropped_.assign(static_cast<size_t>(batch), 0);
}

void KvCache::clear_all() {
  std::fill(len_.begin(), len_.end(), 0);
  std::fill(dropped_.begin(), dropped_.end(), 0);
}

int64_t KvCache::max_step() const {
  return slots_ >= max_seq_ ? max_seq_ : slots_ - sink_ - (window_ - 1);
}

KvCache KvCache::widened(int64_t extra) const {
  KvCache w;
  w.kv_heads_ = kv_heads_, w.max_seq_ = max_seq_, w.d_head_ = d_head_, w.window_ = window_, w.sink_ = sink_;
  w.len_ = len_, w.dropped_ = dropped_;
  const int64_t used = len_.empty() ? 0 : *std::max_element(len_.begin(), len_.end());
  w.slots_ = used + std::max<int64_t>(extra, 0);
  w.t_pad_ = (w.slots_ + kKvBlock - 1) / kKvBlock * kKvBlock;
  const int64_t B = batch();
  w.k_ = Tensor({B, kv_heads_, w.t_pad_ / kKvTile, d_head_, kKvTile}, dtype());
  w.v_ = Tensor({B, kv_heads_, w.t_pad_, d_head_}, dtype());
  // Per (b, g): the used K^T tiles and V rows are a prefix of the block in both layouts.
  const size_t es = dtype_size(dtype());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < kv_heads_; ++g) {
      const int64_t tiles = (len_[size_t(b)] + kKvTile - 1) / kKvTile;
      std::memcpy(static_cast<std::byte*>(w.k_.raw()) + size_t(w.block_offset(b, g)) * es,
                  static_cast<const std::byte*>(k_.raw()) + size_t(block_offset(b, g)) * es,
                  size_t(tiles * kKvTile * d_head_) * es);
      std::memcpy(static_cast<std::byte*>(w.v_.raw()) + size_t(w.block_offset(b, g)) * es,
                  static_cast<const std::byte*>(v_.raw()) + size_t(block_offset(b, g)) * es,
                  size_t(len_[size_t(b)] * d_head_) * es);
    }
  return w;
}

void KvCache::append(int64_t b, const Tensor& k_new, const Tensor& v_new) {
  const int64_t row = kv_heads_ * d_head_;
  for (const Tensor* t : {&k_new, &v_new})
    if (t->dtype() != DType::f32 || t->rank() < 1 || t->numel() % std::max<int64_t>(row, 1) ||
        t->shape() != k_new.shape())
      throw Error("KvCache::append: k and v must be f32 [L, " + std::to_string(kv_heads_) + " * " +
                  std::to_string(d_head_) + "] of equal shape, got " + shape_str(k_new.shape()) +
                  " and " + shape_str(v_new.shape()));
  append(b, k_new.data<float>(), v_new.data<float>(), k_new.numel() / row, row);
}

void KvCache::write(int64_t b, int64_t t, const float* k_row, const float* v_row) {
  const bool f32 = k_.dtype() == DType::f32;
  for (int64_t g = 0; g < kv_heads_; ++g) {
    const float* ks = k_row + g * d_head_;
    const float* vs = v_row + g * d_head_;
    for (int64_t d = 0; d < d_head_; ++d) {
      const int64_t ko = k_offset(b, g, t, d), vo = v_offset(b, g, t, d);
      if (f32) {
        k_.data<float>()[ko] = ks[d];
        v_.data<float>()[vo] = vs[d];
      } else {
        k_.data<bf16>()[ko].bits = bf16::from_f32(ks[d]);
        v_.data<bf16>()[vo].bits = bf16::from_f32(vs[d]);
      }
    }
  }
}

void KvCache::drop_oldest(int64_t b, int64_t n) {
  if (n <= 0) return;
  const int64_t keep = len_[size_t(b)] - sink_ - n;  // window positions that stay
  const size_t es = dtype_size(dtype());
  auto* kb = static_cast<std::byte*>(k_.raw());
  auto* vb = static_cast<std::byte*>(v_.raw());
  for (int64_t g = 0; g < kv_heads_; ++g) {
    // V rows are contiguous: one move. K^T tiles: element by element, ascending (the destination
    // slot is always below its source, so nothing is overwritten before it is read).
    std::memmove(vb + size_t(v_offset(b, g, sink_, 0)) * es, vb + size_t(v_offset(b, g, sink_ + n, 0)) * es,
                 size_t(keep * d_head_) * es);
    for (int64_t d = 0; d < d_head_; ++d)
      for (int64_t i = 0; i < keep; ++i)
        std::memcpy(kb + size_t(k_offset(b, g, sink_ + i, d)) * es, kb + size_t(k_offset(b, g, sink_ + n + i, d)) * es,
                    es);
  }
  len_[size_t(b)] -= n;
  dropped_[size_t(b)] += n;
}

void KvCache::append(int64_t b, const float* k_new, const float* v_new, int64_t L, int64_t ld) {
  if (b < 0 || b >= batch())
    throw Error("KvCache::append: sequence " + std::to_string(b) + " outside the batch of " +
                std::to_string(batch()));
  const int64_t p0 = positions(b);
  if (p0 + L > max_seq_)
    throw Error("KvCache::append: sequence " + std::to_string(b) + " would reach " +
                std::to_string(p0 + L) + " positions, more than max_seq = " + std::to_string(max_seq_));
  if (ld < kv_heads_ * d_head_)
    throw Error("KvCache::append: row stride " + std::to_string(ld) + " < K*D = " +
                std::to_string(kv_heads_ * d_head_));
  int64_t i = 0;
  // Sink positions (a window cache drops nothing before they are all in: slots_ > sink_).
  for (; i < L && p0 + i < sink_; ++i) write(b, len_[size_t(b)]++, k_new + i * ld, v_new + i * ld);
  const int64_t rest = L - i;
  if (len_[size_t(b)] + rest > slots_) {
    // Keep the w - 1 + rest newest window positions (all that fit when fewer), of which the rows
    // appended now are the newest.
    const int64_t target = std::min(slots_ - sink_, window_ - 1 + rest);
    const int64_t from_rows = std::min(rest, target), from_old = target - from_rows;
    drop_oldest(b, len_[size_t(b)] - sink_ - from_old);
    dropped_[size_t(b)] += rest - from_rows;  // rows older than the window's reach: never written
    i += rest - from_rows;
  }
  for (; i < L; ++i) write(b, len_[size_t(b)]++, k_new + i * ld, v_new + i * ld);
}

}  // namespace tori::kernels
