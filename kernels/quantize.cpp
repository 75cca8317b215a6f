#include "kernels/quantize.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace tori::kernels {

namespace {
constexpr float kInt8Max = 127.f;  // symmetric range: -128 is never used, so -q is always valid

void check_2d(const Tensor& w, const char* what) {
  if (w.rank() != 2 || w.dtype() == DType::s8)
    throw Error(std::string(what) + ": expected a [K, N] f32 or bf16 weight, got " +
                std::string(dtype_name(w.dtype())) + " " + shape_str(w.shape()));
}
}  // namespace

Tensor column_amax(const Tensor& w_in) {
  check_2d(w_in, "column_amax");
  Tensor w = w_in.to(DType::f32);
  const int64_t K = w.size(0), N = w.size(1);
  const float* W = w.data<float>();
  Tensor out({N}, DType::f32);
  float* amax = out.data<float>();
  for (int64_t n = 0; n < N; ++n) amax[n] = 0.f;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) amax[n] = std::max(amax[n], std::fabs(W[k * N + n]));
  return out;
}

Tensor int8_scales(const Tensor& amax) {
  Tensor s({amax.numel()}, DType::f32);
  for (int64_t n = 0; n < amax.numel(); ++n) s.data<float>()[n] = amax.data<float>()[n] / kInt8Max;
  return s;
}

QuantizedInt8 quantize_int8(const Tensor& w, const Tensor& scales) {
  check_2d(w, "quantize_int8");
  const int64_t K = w.size(0), N = w.size(1);
  if (scales.dtype() != DType::f32 || scales.numel() != N)
    throw Error("quantize_int8: " + std::to_string(scales.numel()) + " scales for a " + shape_str(w.shape()) +
                " weight (need one f32 scale per column)");
  Tensor wf = w.to(DType::f32);
  const float* W = wf.data<float>();
  QuantizedInt8 out{Tensor::empty({K, N}, DType::s8), scales.clone().reshape({N})};
  const float* s = out.scales.data<float>();
  std::vector<float> inv(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) inv[size_t(n)] = s[n] > 0 ? 1.f / s[n] : 0.f;
  int8_t* q = out.q.data<int8_t>();
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) {
      float v = std::nearbyint(W[k * N + n] * inv[size_t(n)]);
      q[k * N + n] = static_cast<int8_t>(std::clamp(v, -kInt8Max, kInt8Max));
    }
  return out;
}

QuantizedInt8 quantize_int8(const Tensor& w) { return quantize_int8(w, int8_scales(column_amax(w))); }

Tensor dequantize_int8(const QuantizedInt8& qw) {
  const int64_t K = qw.q.size(0), N = qw.q.size(1);
  Tensor w = Tensor::empty({K, N}, DType::f32);
  const int8_t* q = qw.q.data<int8_t>();
  const float* s = qw.scales.data<float>();
  float* W = w.data<float>();
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) W[k * N + n] = float(q[k * N + n]) * s[n];
  return w;
}

QuantError quantization_error(const Tensor& w_in, const QuantizedInt8& qw) {
  check_2d(w_in, "quantization_error");
  Tensor w = w_in.to(DType::f32);
  Tensor d = dequantize_int8(qw);
  if (w.shape() != d.shape())
    throw Error("quantization_error: weight " + shape_str(w.shape()) + " vs quantised " +
                shape_str(d.shape()));
  const float* a = w.data<float>();
  const float* b = d.data<float>();
  double se = 0, sw = 0, mx = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    double e = double(a[i]) - double(b[i]);
    se += e * e;
    sw += double(a[i]) * a[i];
    mx = std::max(mx, std::fabs(e));
  }
  QuantError r;
  const double n = double(std::max<int64_t>(1, w.numel()));
  r.max_abs = mx;
  r.rms = std::sqrt(se / n);
  r.rel_rms = sw > 0 ? std::sqrt(se / sw) : 0.0;
  return r;
}

}  // namespace tori::kernels
