#include "kernels/matmul.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu_features.hpp"
#include "kernels/flop_counter.hpp"
#include "kernels/gemm_s4_f32.hpp"
#include "kernels/gemm_s8_f32.hpp"
#include "kernels/onednn_matmul.hpp"
#include "kernels/openblas_matmul.hpp"
#include "kernels/tsvd.hpp"

namespace tori::kernels {

namespace {

// Per-thread scratch that only grows: activations converted to the weight's dtype, dequantised
// panels, panel outputs. Reused across calls, so steady-state decode allocates nothing.
struct Scratch {
  std::vector<float> x_f32, c;
  std::vector<uint16_t> x_bf16, w_bf16;
  std::vector<float> w_f32;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

template <typename V> auto* grow(V& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

TORI_SIMD_CLONES void f32_to_bf16(const float* src, uint16_t* dst, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, &src[i], 4);
    // Round to nearest even (NaN never reaches activations here; bf16::from_f32 handles it).
    u += 0x7fffu + ((u >> 16) & 1u);
    dst[i] = static_cast<uint16_t>(u >> 16);
  }
}

TORI_SIMD_CLONES void bf16_to_f32(const uint16_t* src, float* dst, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u = uint32_t(src[i]) << 16;
    std::memcpy(&dst[i], &u, 4);
  }
}

// y[:, n] (=|+=) alpha * s[n] * c[:, n] for one panel of columns.
TORI_SIMD_CLONES void scale_row(const float* c, const float* s, float alpha, float* y, int64_t n,
                                bool accumulate) {
  if (accumulate) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) y[j] += alpha * s[j] * c[j];
  } else {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) y[j] = alpha * s[j] * c[j];
  }
}

// Activation conversions, parallel in chunks (prefill activations reach tens of MiB).
constexpr int64_t kConvertChunk = 1 << 16;

const float* as_f32(const Tensor& x, int64_t numel) {
  if (x.dtype() == DType::f32) return x.data<float>();
  float* out = grow(scratch().x_f32, numel);
  const uint16_t* src = static_cast<const uint16_t*>(x.raw());
#pragma omp parallel for schedule(static) if (numel > kConvertChunk)
  for (int64_t i = 0; i < numel; i += kConvertChunk)
    bf16_to_f32(src + i, out + i, std::min(kConvertChunk, numel - i));
  return out;
}

const uint16_t* as_bf16(const Tensor& x, int64_t numel) {
  if (x.dtype() == DType::bf16) return static_cast<const uint16_t*>(x.raw());
  uint16_t* out = grow(scratch().x_bf16, numel);
  const float* src = x.data<float>();
#pragma omp parallel for schedule(static) if (numel > kConvertChunk)
  for (int64_t i = 0; i < numel; i += kConvertChunk)
    f32_to_bf16(src + i, out + i, std::min(kConvertChunk, numel - i));
  return out;
}

// Shapes: x [..., K] -> M; y [..., N] f32 (allocated if undefined).
int64_t prepare(const Tensor& x, int64_t K, int64_t N, Tensor& y, const Epilogue& ep,
                const char* what) {
  if (x.rank() < 1 || x.size(-1) != K || x.dtype() == DType::s8)
    throw Error(std::string(what) + ": x must be [..., " + std::to_string(K) + "] f32 or bf16, got " +
                std::string(dtype_name(x.dtype())) + " " + shape_str(x.shape()));
  const int64_t M = K ? x.numel() / K : 0;
  if (!y.defined()) {
    if (ep.accumulate)
      throw Error(std::string(what) + ": accumulate needs an existing output tensor");
    Shape s = x.shape();
    s.back() = N;
    y = Tensor::empty(s, DType::f32);
  }
  if (y.dtype() != DType::f32 || y.numel() != M * N || y.size(-1) != N)
    throw Error(std::string(what) + ": y must be f32 [" + std::to_string(M) + " rows, " +
                std::to_string(N) + "], got " + std::string(dtype_name(y.dtype())) + " " +
                shape_str(y.shape()));
  return M;
}

void int8_large_batch_onednn(const Tensor& x, int64_t M, const PackedWeight& w, float* y,
                             const Epilogue& ep) {
  const int64_t K = w.k, N = w.n, P = (N + kS8PanelCols - 1) / kS8PanelCols;
  const int64_t group = kInt8DequantCols / kS8PanelCols;
  const uint16_t* xb = as_bf16(x, M * K);
  Scratch& s = scratch();
  uint16_t* wbuf = grow(s.w_bf16, K * group * kS8PanelCols);
  float* cbuf = grow(s.c, M * group * kS8PanelCols);
  const float* scales = w.scales.data<float>();
  for (int64_t p0 = 0; p0 < P; p0 += group) {
    const int64_t np = std::min(group, P - p0), nc = np * kS8PanelCols;
    const int64_t n0 = p0 * kS8PanelCols, nn = std::min(nc, N - n0);
    // [K, nc] bf16 (exact q) -> c[M, nc] = x @ q -> y[:, n0:n0+nn] (=|+=) scale * s[n] * c
    dequantize_s8_panels_bf16(w, p0, np, wbuf);
    detail::onednn_matmul_plain(xb, M, K, wbuf, nc, cbuf, DType::bf16);
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; ++m)
      scale_row(cbuf + m * nc, scales + n0, ep.scale, y + m * N + n0, nn, ep.accumulate);
  }
}

void int8_large_batch_openblas(const Tensor& x, int64_t M, const PackedWeight& w, float* y,
                               const Epilogue& ep) {
  const int64_t K = w.k, N = w.n, P = (N + kS8PanelCols - 1) / kS8PanelCols;
  const int64_t group = kInt8DequantCols / kS8PanelCols;
  const float* xf = as_f32(x, M * K);
  float* wbuf = grow(scratch().w_f32, K * group * kS8PanelCols);
  for (int64_t p0 = 0; p0 < P; p0 += group) {
    const int64_t np = std::min(group, P - p0), nc = np * kS8PanelCols;
    const int64_t n0 = p0 * kS8PanelCols, nn = std::min(nc, N - n0);
    // [K, nc] f32 = q * s -> y[:, n0:n0+nn] (=|+=) scale * x @ (q * s)
    dequantize_s8_panels_f32(w, p0, np, wbuf);
    detail::openblas_sgemm(xf, K, M, K, wbuf, nc, nn, y + n0, N, ep.scale, ep.accumulate);
  }
}

void plain_ref(const Tensor& x, int64_t M, const Tensor& w, float* y, const Epilogue& ep) {
  const int64_t K = w.size(0), N = w.size(1);
  const float* xf = as_f32(x, M * K);
  std::vector<float> wf;
  const float* W;
  if (w.dtype() == DType::f32) {
    W = w.data<float>();
  } else {
    wf.resize(size_t(K * N));
    bf16_to_f32(static_cast<const uint16_t*>(w.raw()), wf.data(), K * N);
    W = wf.data();
  }
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m) {
    std::vector<double> acc(size_t(N), 0.0);
    for (int64_t k = 0; k < K; ++k) {
      const double xv = xf[m * K + k];
      const float* row = W + k * N;
      for (int64_t n = 0; n < N; ++n) acc[size_t(n)] += xv * row[n];
    }
    for (int64_t n = 0; n < N; ++n) {
      const float v = float(double(ep.scale) * acc[size_t(n)]);
      y[m * N + n] = ep.accumulate ? y[m * N + n] + v : v;
    }
  }
}

}  // namespace

void matmul_strided(const float* x, int64_t ldx, int64_t M, const PackedWeight& w, float* y, int64_t ldy,
                    Epilogue ep) {
  if (!reads_in_place(w.format, w.backend) || !w.onednn || w.tsvd)
    throw Error("matmul_strided: f32 weights on the onednn backend only, got " + w.describe());
  if (ldx < w.k || ldy < w.n)
    throw Error("matmul_strided: row strides " + std::to_string(ldx) + ", " + std::to_string(ldy) +
                " below the rows' lengths " + std::to_string(w.k) + ", " + std::to_string(w.n));
  if (M == 0) return;
  count_matmul_flops(2 * uint64_t(M) * uint64_t(w.k) * uint64_t(w.n));
  detail::onednn_matmul_packed(x, M, *w.onednn, y, ep.scale, ep.accumulate, ldx, ldy);
}

void matmul(const Tensor& x, const PackedWeight& w, Tensor& y, Epilogue ep) {
  if (!w.defined()) throw Error("matmul: weight is not packed");
  if (w.tsvd) return tsvd_matmul(x, *w.tsvd, y, ep);  // counts the FLOPs of its GEMMs
  const int64_t M = prepare(x, w.k, w.n, y, ep, "matmul");
  if (M == 0) return;
  float* Y = y.data<float>();
  const int64_t K = w.k, N = w.n;
  count_matmul_flops(2 * uint64_t(M) * uint64_t(K) * uint64_t(N));
  switch (w.format) {
    case WeightFormat::int8:
      if (w.backend == Backend::reference)
        gemm_s8_f32_ref(as_f32(x, M * K), K, M, w, Y, N, ep.scale, ep.accumulate);
      else if (M <= kInt8RegisterKernelMaxM)
        gemm_s8_f32(as_f32(x, M * K), K, M, w, Y, N, ep.scale, ep.accumulate);
      else if (w.backend == Backend::onednn)
        int8_large_batch_onednn(x, M, w, Y, ep);
      else
        int8_large_batch_openblas(x, M, w, Y, ep);
      return;
    case WeightFormat::int4:
    case WeightFormat::int4_min:
      // One kernel for every M (the VNNI GEMM on s8-quantised activations; docs/kernels.md "int4").
      if (w.backend == Backend::reference)
        gemm_s4_f32_ref(as_f32(x, M * K), K, M, w, Y, N, ep.scale, ep.accumulate);
      else
        gemm_s4_f32(as_f32(x, M * K), K, M, w, Y, N, ep.scale, ep.accumulate);
      return;
    case WeightFormat::f32:
      if (w.backend == Backend::onednn)
        detail::onednn_matmul_packed(as_f32(x, M * K), M, *w.onednn, Y, ep.scale, ep.accumulate);
      else if (w.backend == Backend::openblas)
        detail::openblas_sgemm(as_f32(x, M * K), K, M, K, w.plain.data<float>(), N, N, Y, N, ep.scale,
                               ep.accumulate);
      else
        plain_ref(x, M, w.plain, Y, ep);
      return;
    case WeightFormat::bf16:
      if (w.backend == Backend::onednn)
        detail::onednn_matmul_packed(as_bf16(x, M * K), M, *w.onednn, Y, ep.scale, ep.accumulate);
      else
        plain_ref(x, M, w.plain, Y, ep);
      return;
  }
}

bool matmul_uses_panel_gemv(const PackedWeight& w, int64_t M) {
  return M == 1 && !w.tsvd && w.backend == Backend::onednn && w.onednn &&
         (w.format == WeightFormat::f32 || w.format == WeightFormat::bf16) && detail::onednn_panel_gemv_applies(*w.onednn);
}

void matmul_ref(const Tensor& x, const Tensor& w, Tensor& y, Epilogue ep) {
  if (w.rank() != 2 || w.dtype() == DType::s8)
    throw Error("matmul_ref: w must be [K, N] f32 or bf16, got " + std::string(dtype_name(w.dtype())) +
                " " + shape_str(w.shape()));
  const int64_t M = prepare(x, w.size(0), w.size(1), y, ep, "matmul_ref");
  if (M) plain_ref(x, M, w, y.data<float>(), ep);
}

KernelCost matmul_cost(int64_t M, const PackedWeight& w) {
  if (w.tsvd) return tsvd_matmul_cost(M, *w.tsvd);
  KernelCost c;
  c.flops = 2.0 * double(M) * double(w.k) * double(w.n);
  c.weight_bytes = double(w.weight_bytes());
  c.bytes = c.weight_bytes + 4.0 * double(M) * double(w.k + w.n);
  return c;
}

}  // namespace tori::kernels
