#include "kernels/quantize.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/f16.hpp"

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

namespace {

float to_f16(float v) { return half_to_float(float_to_half(v)); }

QuantError error_of(const Tensor& w_in, const Tensor& d) {
  check_2d(w_in, "quantization_error");
  Tensor w = w_in.to(DType::f32);
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

}  // namespace

QuantError quantization_error(const Tensor& w, const QuantizedInt8& qw) { return error_of(w, dequantize_int8(qw)); }
QuantError quantization_error(const Tensor& w, const QuantizedInt4& qw) { return error_of(w, dequantize_int4(qw)); }

QuantizedInt4 quantize_int4(const Tensor& w_in, bool with_min) {
  check_2d(w_in, "quantize_int4");
  const int64_t K = w_in.size(0), N = w_in.size(1), G = K / kInt4Group;
  if (K % kInt4Group != 0)
    throw Error("quantize_int4: K = " + std::to_string(K) + " rows is not a multiple of the int4 group size " +
                std::to_string(kInt4Group));
  Tensor wf = w_in.to(DType::f32);
  const float* W = wf.data<float>();
  QuantizedInt4 out{Tensor::empty({K, N}, DType::s8), Tensor::empty({G, N}, DType::f32),
                    with_min ? Tensor::empty({G, N}, DType::f32) : Tensor()};
  int8_t* q = out.q.data<int8_t>();
  float* S = out.scales.data<float>();
  float* Mn = with_min ? out.mins.data<float>() : nullptr;
  for (int64_t g = 0; g < G; ++g)
    for (int64_t n = 0; n < N; ++n) {
      const float* col = W + g * kInt4Group * N + n;
      int8_t* qc = q + g * kInt4Group * N + n;
      if (with_min) {
        float lo = col[0], hi = col[0];
        for (int64_t i = 1; i < kInt4Group; ++i) lo = std::min(lo, col[i * N]), hi = std::max(hi, col[i * N]);
        const float m = to_f16(lo), s = to_f16((hi - lo) / 15.f), inv = s != 0.f ? 1.f / s : 0.f;
        S[g * N + n] = s;
        Mn[g * N + n] = m;
        for (int64_t i = 0; i < kInt4Group; ++i)
          qc[i * N] = int8_t(std::clamp(std::nearbyint((col[i * N] - m) * inv), 0.f, 15.f));
      } else {
        float v = 0.f;  // the value of largest |v| (the first one, as llama.cpp)
        for (int64_t i = 0; i < kInt4Group; ++i)
          if (std::fabs(col[i * N]) > std::fabs(v)) v = col[i * N];
        const float s = to_f16(v / -8.f), inv = s != 0.f ? 1.f / s : 0.f;
        S[g * N + n] = s;
        for (int64_t i = 0; i < kInt4Group; ++i)
          qc[i * N] = int8_t(std::clamp(std::nearbyint(col[i * N] * inv) + 8.f, 0.f, 15.f));
      }
    }
  return out;
}

Tensor dequantize_int4(const QuantizedInt4& qw) {
  const int64_t K = qw.q.size(0), N = qw.q.size(1);
  Tensor w = Tensor::empty({K, N}, DType::f32);
  const int8_t* q = qw.q.data<int8_t>();
  const float* S = qw.scales.data<float>();
  const float* Mn = qw.with_min() ? qw.mins.data<float>() : nullptr;
  float* W = w.data<float>();
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) {
      const int64_t g = (k / kInt4Group) * N + n;
      W[k * N + n] = Mn ? float(q[k * N + n]) * S[g] + Mn[g] : float(q[k * N + n] - 8) * S[g];
    }
  return w;
}

}  // namespace tori::kernels
