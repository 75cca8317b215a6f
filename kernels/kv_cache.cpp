#include "kernels/kv_cache.hpp"

#include <algorithm>
#include <cstring>

namespace tori::kernels {

KvCache::KvCache(int64_t batch, int64_t kv_heads, int64_t max_seq, int64_t d_head, DType dtype)
    : kv_heads_(kv_heads), max_seq_(max_seq), d_head_(d_head) {
  if (batch < 0 || kv_heads <= 0 || max_seq < 0 || d_head <= 0 || dtype == DType::s8)
    throw Error("KvCache: need batch >= 0, kv_heads >= 1, max_seq >= 0, d_head >= 1 and dtype f32 "
                "or bf16; got batch = " + std::to_string(batch) + ", kv_heads = " +
                std::to_string(kv_heads) + ", max_seq = " + std::to_string(max_seq) +
                ", d_head = " + std::to_string(d_head) + ", dtype = " +
                std::string(dtype_name(dtype)));
  t_pad_ = (max_seq + kKvBlock - 1) / kKvBlock * kKvBlock;
  k_ = Tensor({batch, kv_heads, t_pad_ / kKvTile, d_head, kKvTile}, dtype);
  v_ = Tensor({batch, kv_heads, t_pad_, d_head}, dtype);
  len_.assign(static_cast<size_t>(batch), 0);
}

void KvCache::clear_all() { std::fill(len_.begin(), len_.end(), 0); }

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

void KvCache::append(int64_t b, const float* k_new, const float* v_new, int64_t L, int64_t ld) {
  if (b < 0 || b >= batch())
    throw Error("KvCache::append: sequence " + std::to_string(b) + " outside the batch of " +
                std::to_string(batch()));
  const int64_t t0 = len_[size_t(b)];
  if (t0 + L > max_seq_)
    throw Error("KvCache::append: sequence " + std::to_string(b) + " would reach " +
                std::to_string(t0 + L) + " positions, more than max_seq = " + std::to_string(max_seq_));
  if (ld < kv_heads_ * d_head_)
    throw Error("KvCache::append: row stride " + std::to_string(ld) + " < K*D = " +
                std::to_string(kv_heads_ * d_head_));
  const bool f32 = k_.dtype() == DType::f32;
  for (int64_t i = 0; i < L; ++i)
    for (int64_t g = 0; g < kv_heads_; ++g) {
      const float* ks = k_new + i * ld + g * d_head_;
      const float* vs = v_new + i * ld + g * d_head_;
      const int64_t t = t0 + i;
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
  len_[size_t(b)] = t0 + L;
}

}  // namespace tori::kernels
