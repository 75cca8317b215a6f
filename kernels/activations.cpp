#include "kernels/activations.hpp"

#include <cmath>

#include "kernels/cpu_features.hpp"
#include "kernels/row_checks.hpp"
#include "kernels/vec_math.hpp"

namespace tori::kernels {

namespace {

// Elements per parallel chunk: large enough to amortise the fork, small enough to split work.
constexpr int64_t kChunk = 1 << 14;

TORI_SIMD_CLONES void swiglu_span(const float* g, const float* u, float* o, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) o[i] = silu_f32(g[i]) * u[i];
}
TORI_SIMD_CLONES void gelu_span(const float* x, float* o, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) o[i] = gelu_f32(x[i]);
}
TORI_SIMD_CLONES void geglu_span(const float* g, const float* u, float* o, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) o[i] = gelu_tanh_f32(g[i]) * u[i];
}
TORI_SIMD_CLONES void add_span(const float* a, const float* b, float* o, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) o[i] = a[i] + b[i];
}

void same_shape(const Tensor& a, const Tensor& b, const char* op) {
  detail::rows_of(a, -1, op, "first operand");
  detail::rows_of(b, -1, op, "second operand");
  if (a.shape() != b.shape())
    throw Error(std::string(op) + ": operand shapes differ: " + shape_str(a.shape()) + " vs " +
                shape_str(b.shape()));
}

// One chunk (decode: a row or a few) runs on the calling thread: a parallel region costs the
// fork and join of the team for nothing.
template <typename F> void chunked(int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n > kChunk)
  for (int64_t c = 0; c < (n + kChunk - 1) / kChunk; ++c) {
    const int64_t i0 = c * kChunk;
    f(i0, std::min(kChunk, n - i0));
  }
}

// out = span(a, b) elementwise over same-shaped a and b, in parallel chunks.
template <typename Span> void elementwise2(const Tensor& a, const Tensor& b, Tensor& out, const char* op, Span span) {
  same_shape(a, b, op);
  detail::like(a, out, op);
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* o = out.data<float>();
  chunked(a.numel(), [&](int64_t i, int64_t n) { span(pa + i, pb + i, o + i, n); });
}

}  // namespace

void swiglu(const Tensor& gate, const Tensor& up, Tensor& out) { elementwise2(gate, up, out, "swiglu", swiglu_span); }

void ffn_activation_columns(FfnActivation kind, const Tensor& y, int64_t gate_col, int64_t up_col, int64_t width,
                            Tensor& z, int64_t out_col) {
  const char* op = "ffn_activation_columns";
  if (y.rank() != 2 || z.rank() != 2 || y.dtype() != DType::f32 || z.dtype() != DType::f32 || y.size(0) != z.size(0))
    throw Error(std::string(op) + ": y and z must be f32 matrices of the same rows, got " + shape_str(y.shape()) +
                " and " + shape_str(z.shape()));
  const int64_t M = y.size(0), Cy = y.size(1), Cz = z.size(1);
  const bool gated = kind != FfnActivation::gelu;
  if (width < 0 || up_col < 0 || up_col + width > Cy || (gated && (gate_col < 0 || gate_col + width > Cy)) ||
      out_col < 0 || out_col + width > Cz)
    throw Error(std::string(op) + ": column blocks of width " + std::to_string(width) + " at " +
                std::to_string(gate_col) + ", " + std::to_string(up_col) + " (of " + std::to_string(Cy) + ") -> " +
                std::to_string(out_col) + " (of " + std::to_string(Cz) + ") do not fit");
  const float* Y = y.data<float>();
  float* Z = z.data<float>();
#pragma omp parallel for schedule(static) if (M > 1 && M * width > kChunk)
  for (int64_t m = 0; m < M; ++m) {
    const float* up = Y + m * Cy + up_col;
    float* o = Z + m * Cz + out_col;
    if (kind == FfnActivation::swiglu)
      swiglu_span(Y + m * Cy + gate_col, up, o, width);
    else if (kind == FfnActivation::geglu)
      geglu_span(Y + m * Cy + gate_col, up, o, width);
    else
      gelu_span(up, o, width);
  }
}

void gelu(const Tensor& x, Tensor& out) {
  detail::rows_of(x, -1, "gelu", "x");
  detail::like(x, out, "gelu");
  const float* a = x.data<float>();
  float* o = out.data<float>();
  chunked(x.numel(), [&](int64_t i, int64_t n) { gelu_span(a + i, o + i, n); });
}

void geglu(const Tensor& gate, const Tensor& up, Tensor& out) { elementwise2(gate, up, out, "geglu", geglu_span); }

void add(const Tensor& a, const Tensor& b, Tensor& out) { elementwise2(a, b, out, "add", add_span); }

void scale(Tensor& x, float s) {
  detail::rows_of(x, -1, "scale", "x");
  float* p = x.data<float>();
  chunked(x.numel(), [&](int64_t i, int64_t n) {
#pragma omp simd
    for (int64_t k = i; k < i + n; ++k) p[k] *= s;
  });
}

void swiglu_ref(const Tensor& gate, const Tensor& up, Tensor& out) {
  same_shape(gate, up, "swiglu_ref");
  detail::like(gate, out, "swiglu_ref");
  for (int64_t i = 0; i < gate.numel(); ++i) {
    const double g = gate.data<float>()[i];
    out.data<float>()[i] = float(g / (1.0 + std::exp(-g)) * up.data<float>()[i]);
  }
}

void gelu_ref(const Tensor& x, Tensor& out) {
  detail::rows_of(x, -1, "gelu_ref", "x");
  detail::like(x, out, "gelu_ref");
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double v = x.data<float>()[i];
    out.data<float>()[i] = float(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));
  }
}

double gelu_tanh_ref(double g) {
  return 0.5 * g * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (g + 0.044715 * g * g * g)));
}

void geglu_ref(const Tensor& gate, const Tensor& up, Tensor& out) {
  same_shape(gate, up, "geglu_ref");
  detail::like(gate, out, "geglu_ref");
  for (int64_t i = 0; i < gate.numel(); ++i)
    out.data<float>()[i] = float(gelu_tanh_ref(gate.data<float>()[i]) * up.data<float>()[i]);
}

void add_ref(const Tensor& a, const Tensor& b, Tensor& out) {
  same_shape(a, b, "add_ref");
  detail::like(a, out, "add_ref");
  for (int64_t i = 0; i < a.numel(); ++i)
    out.data<float>()[i] = float(double(a.data<float>()[i]) + b.data<float>()[i]);
}

}  // namespace tori::kernels
