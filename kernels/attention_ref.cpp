// attention_ref and the shape checks shared with the fast kernel (attention.cpp).
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "kernels/attention.hpp"

namespace tori::kernels {

namespace detail {
std::vector<int64_t> attention_check(const Tensor& q, const KvCache& cache,
                                     std::span<const int64_t> n_new, Tensor& out, const char* op) {
  const std::string name(op);
  if (q.dtype() != DType::f32 || q.rank() != 4 || q.size(0) != cache.batch() ||
      q.size(3) != cache.d_head() || q.size(2) % cache.kv_heads() != 0)
    throw Error(name + ": q must be f32 [B = " + std::to_string(cache.batch()) + ", L, H, D = " +
                std::to_string(cache.d_head()) + "] with H a multiple of K = " +
                std::to_string(cache.kv_heads()) + ", got " + std::string(dtype_name(q.dtype())) +
                " " + shape_str(q.shape()));
  const int64_t B = q.size(0), L = q.size(1);
  std::vector<int64_t> n(static_cast<size_t>(B), L);
  if (!n_new.empty()) {
    if (static_cast<int64_t>(n_new.size()) != B)
      throw Error(name + ": " + std::to_string(n_new.size()) + " n_new entries for a batch of " +
                  std::to_string(B));
    for (int64_t b = 0; b < B; ++b) {
      const int64_t v = n_new[size_t(b)];
      if (v < 0 || v > L || v > cache.length(b))
        throw Error(name + ": sequence " + std::to_string(b) + " has n_new = " + std::to_string(v) +
                    ", allowed 0.." + std::to_string(std::min(L, cache.length(b))) +
                    " (L = " + std::to_string(L) + ", cached = " + std::to_string(cache.length(b)) +
                    "; append the new K/V first)");
      n[size_t(b)] = v;
    }
  } else {
    for (int64_t b = 0; b < B; ++b)
      if (cache.length(b) < L)
        throw Error(name + ": sequence " + std::to_string(b) + " holds " +
                    std::to_string(cache.length(b)) + " positions, fewer than L = " +
                    std::to_string(L) + " new ones (append the new K/V first)");
  }
  if (!out.defined()) out = Tensor::empty(q.shape(), DType::f32);
  if (out.dtype() != DType::f32 || out.shape() != q.shape())
    throw Error(name + ": out must be f32 " + shape_str(q.shape()) + ", got " +
                std::string(dtype_name(out.dtype())) + " " + shape_str(out.shape()));
  return n;
}
}  // namespace detail

namespace detail {
void attention_ref_masked(const Tensor& q, const KvCache& cache, const std::vector<int64_t>& n,
                          const std::function<bool(int64_t, int64_t)>& allowed, Tensor& out) {
  const int64_t B = q.size(0), L = q.size(1), H = q.size(2), D = q.size(3);
  const int64_t G = H / cache.kv_heads();
  const double scale = 1.0 / std::sqrt(double(D));
  const float* Q = q.data<float>();
  float* O = out.data<float>();
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < L; ++i) {
      if (i >= n[size_t(b)]) {
        std::fill(O + (b * L + i) * H * D, O + (b * L + i + 1) * H * D, 0.f);
        continue;
      }
      const int64_t p = cache.length(b) - n[size_t(b)] + i;  // the row's position: keys 0 .. p
      std::vector<char> seen(size_t(p + 1), 1);
      if (allowed)
        for (int64_t t = 0; t <= p; ++t) seen[size_t(t)] = allowed(p, t);
      std::vector<double> s(size_t(p + 1));
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / G;
        const float* qh = Q + ((b * L + i) * H + h) * D;
        double mx = -INFINITY;
        for (int64_t t = 0; t <= p; ++t) {
          if (!seen[size_t(t)]) continue;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += double(qh[d]) * cache.k().get(cache.k_offset(b, g, t, d));
          s[size_t(t)] = dot * scale;
          mx = std::max(mx, s[size_t(t)]);
        }
        double sum = 0;
        for (int64_t t = 0; t <= p; ++t) sum += (s[size_t(t)] = seen[size_t(t)] ? std::exp(s[size_t(t)] - mx) : 0.0);
        float* o = O + ((b * L + i) * H + h) * D;
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t t = 0; t <= p; ++t)
            if (seen[size_t(t)]) acc += s[size_t(t)] * cache.v().get(cache.v_offset(b, g, t, d));
          o[d] = float(acc / sum);
        }
      }
    }
}
}  // namespace detail

void attention_ref(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new,
                   Tensor& out) {
  const std::vector<int64_t> n = detail::attention_check(q, cache, n_new, out, "attention_ref");
  detail::attention_ref_masked(q, cache, n, {}, out);
}

KernelCost attention_cost(const Tensor& q, const KvCache& cache, std::span<const int64_t> n_new) {
  KernelCost c;
  const int64_t B = q.size(0), L = q.size(1), H = q.size(2), D = q.size(3);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t nb = n_new.empty() ? L : n_new[size_t(b)];
    if (nb == 0) continue;
    const int64_t past = cache.length(b) - nb;
    // visible positions summed over the new rows: sum_{i<nb} (past + i + 1)
    const double visible = double(nb) * double(past) + double(nb) * double(nb + 1) / 2.0;
    c.flops += 4.0 * double(H) * double(D) * visible;
    c.weight_bytes += double(cache.bytes_for(past + nb));
  }
  c.bytes = c.weight_bytes + 2.0 * 4.0 * double(q.numel());
  return c;
}

}  // namespace tori::kernels
