#include "kernels/gemm_s8_f32.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu_features.hpp"
#include "kernels/packed_weight.hpp"

namespace tori::kernels {

namespace {

void check_s8(const PackedWeight& w, const char* what) {
  if (w.format != WeightFormat::int8 || !w.panels.defined())
    throw Error(std::string(what) + ": weight " + w.describe() + " is not int8 panels");
}

// One panel row (64 s8) -> bf16 bits of the exact integer values.
TORI_SIMD_CLONES void s8_row_to_bf16(const int8_t* src, uint16_t* dst, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    float f = float(src[j]);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    dst[j] = static_cast<uint16_t>(u >> 16);  // exact: |q| <= 127 needs 7 significand bits
  }
}

TORI_SIMD_CLONES void s8_row_to_f32(const int8_t* src, const float* scale, float* dst, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dst[j] = float(src[j]) * scale[j];
}

}  // namespace

Tensor pack_s8_panels(const Tensor& q) {
  if (q.rank() != 2 || q.dtype() != DType::s8)
    throw Error("pack_s8_panels: expected [K, N] int8, got " + std::string(dtype_name(q.dtype())) +
                " " + shape_str(q.shape()));
  const int64_t K = q.size(0), N = q.size(1), P = (N + kS8PanelCols - 1) / kS8PanelCols;
  Tensor out({P, K, kS8PanelCols}, DType::s8);  // zero-filled: padding columns contribute 0
  const int8_t* src = q.data<int8_t>();
  int8_t* dst = out.data<int8_t>();
  for (int64_t p = 0; p < P; ++p) {
    const int64_t n0 = p * kS8PanelCols, nn = std::min(kS8PanelCols, N - n0);
    for (int64_t k = 0; k < K; ++k)
      std::memcpy(dst + (p * K + k) * kS8PanelCols, src + k * N + n0, size_t(nn));
  }
  return out;
}

void gemm_s8_f32_ref(const float* x, int64_t ldx, int64_t M, const PackedWeight& w, float* y,
                     int64_t ldy, float alpha, bool accumulate) {
  check_s8(w, "gemm_s8_f32_ref");
  const int64_t K = w.k, N = w.n;
  const int8_t* panels = w.panels.data<int8_t>();
  const float* s = w.scales.data<float>();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      const int8_t* col = panels + (n / kS8PanelCols) * K * kS8PanelCols + n % kS8PanelCols;
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += double(x[m * ldx + k]) * col[k * kS8PanelCols];
      const float v = float(double(alpha) * s[n] * acc);
      y[m * ldy + n] = accumulate ? y[m * ldy + n] + v : v;
    }
}

void gemm_s8_f32(const float* x, int64_t ldx, int64_t M, const PackedWeight& w, float* y,
                 int64_t ldy, float alpha, bool accumulate) {
  check_s8(w, "gemm_s8_f32");
  if (cpu_has_avx512())
    detail::gemm_s8_f32_avx512(x, ldx, M, w.k, w.n, w.panels.data<int8_t>(), w.scales.data<float>(),
                               y, ldy, alpha, accumulate);
  else
    gemm_s8_f32_ref(x, ldx, M, w, y, ldy, alpha, accumulate);
}

void dequantize_s8_panels_bf16(const PackedWeight& w, int64_t p0, int64_t np, uint16_t* dst) {
  check_s8(w, "dequantize_s8_panels_bf16");
  const int64_t K = w.k, ld = np * kS8PanelCols;
  const int8_t* panels = w.panels.data<int8_t>();
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < K; ++k)
    for (int64_t p = 0; p < np; ++p)
      s8_row_to_bf16(panels + ((p0 + p) * K + k) * kS8PanelCols, dst + k * ld + p * kS8PanelCols,
                     kS8PanelCols);
}

void dequantize_s8_panels_f32(const PackedWeight& w, int64_t p0, int64_t np, float* dst) {
  check_s8(w, "dequantize_s8_panels_f32");
  const int64_t K = w.k, N = w.n, ld = np * kS8PanelCols;
  const int8_t* panels = w.panels.data<int8_t>();
  // Scales padded to whole panels (padding columns are all-zero q, so any scale works).
  std::vector<float> s(size_t(ld), 0.f);
  for (int64_t j = 0; j < ld && p0 * kS8PanelCols + j < N; ++j)
    s[size_t(j)] = w.scales.data<float>()[p0 * kS8PanelCols + j];
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < K; ++k)
    for (int64_t p = 0; p < np; ++p)
      s8_row_to_f32(panels + ((p0 + p) * K + k) * kS8PanelCols, s.data() + p * kS8PanelCols,
                    dst + k * ld + p * kS8PanelCols, kS8PanelCols);
}

}  // namespace tori::kernels
