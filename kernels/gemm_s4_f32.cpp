#include "kernels/gemm_s4_f32.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu_features.hpp"
#include "kernels/f16.hpp"
#include "kernels/packed_weight.hpp"

namespace tori::kernels {

namespace {


void check_s4(const PackedWeight& w, const char* what) {
  if (!is_int4(w.format) || !w.panels.defined())
    throw Error(std::string(what) + ": weight " + w.describe() + " is not int4 panels");
}

// Where code (k, j) of a panel lives: byte offset from the panel's start, and whether it is the
// high nibble (see the layout in gemm_s4_f32.hpp).
struct CodeAt {
  int64_t byte;
  bool high;
};
CodeAt code_at(int64_t k, int64_t j, int64_t block_bytes) {
  const int64_t g = k / kInt4Group, kk = k % kInt4Group, c = j % 32;
  return {g * block_bytes + (kk / 4) * kS4QuadBytes + (j / 32) * 64 + (c % 16) * 4 + kk % 4, c >= 16};
}

}  // namespace

Tensor pack_s4_panels(const QuantizedInt4& qw) {
  const int64_t K = qw.q.size(0), N = qw.q.size(1), G = K / kInt4Group, P = (N + kS4PanelCols - 1) / kS4PanelCols;
  if (K % kInt4Group != 0)
    throw Error("pack_s4_panels: K = " + std::to_string(K) + " is not a multiple of " + std::to_string(kInt4Group));
  const bool mn = qw.with_min();
  const int64_t bb = s4_block_bytes(mn);
  Tensor out({P, G, bb}, DType::s8);  // zero-filled: padding columns have code 0, scale 0, min 0
  uint8_t* dst = reinterpret_cast<uint8_t*>(out.data<int8_t>());
  const int8_t* q = qw.q.data<int8_t>();
  const float* S = qw.scales.data<float>();
  const float* Mn = mn ? qw.mins.data<float>() : nullptr;
  for (int64_t p = 0; p < P; ++p) {
    uint8_t* panel = dst + p * G * bb;
    const int64_t n0 = p * kS4PanelCols, nn = std::min(kS4PanelCols, N - n0);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < nn; ++j) {
        const CodeAt at = code_at(k, j, bb);
        const auto code = uint8_t(q[k * N + n0 + j] & 0x0F);
        panel[at.byte] |= at.high ? uint8_t(code << 4) : code;
      }
    for (int64_t g = 0; g < G; ++g)
      for (int64_t j = 0; j < nn; ++j) {
        const uint16_t s = float_to_half(S[g * N + n0 + j]);
        std::memcpy(panel + g * bb + kS4CodeBytes + j * 2, &s, 2);
        if (mn) {
          const uint16_t m = float_to_half(Mn[g * N + n0 + j]);
          std::memcpy(panel + g * bb + kS4CodeBytes + kS4PanelCols * 2 + j * 2, &m, 2);
        }
      }
  }
  return out;
}

QuantizedInt4 unpack_s4_panels(const PackedWeight& w) {
  check_s4(w, "unpack_s4_panels");
  const bool mn = w.format == WeightFormat::int4_min;
  const int64_t K = w.k, N = w.n, G = K / kInt4Group, bb = s4_block_bytes(mn);
  QuantizedInt4 out{Tensor::empty({K, N}, DType::s8), Tensor::empty({G, N}, DType::f32),
                    mn ? Tensor::empty({G, N}, DType::f32) : Tensor()};
  const uint8_t* src = reinterpret_cast<const uint8_t*>(w.panels.data<int8_t>());
  for (int64_t n = 0; n < N; ++n) {
    const uint8_t* panel = src + (n / kS4PanelCols) * G * bb;
    const int64_t j = n % kS4PanelCols;
    for (int64_t k = 0; k < K; ++k) {
      const CodeAt at = code_at(k, j, bb);
      out.q.data<int8_t>()[k * N + n] = int8_t(at.high ? panel[at.byte] >> 4 : panel[at.byte] & 0x0F);
    }
    for (int64_t g = 0; g < G; ++g) {
      uint16_t h;
      std::memcpy(&h, panel + g * bb + kS4CodeBytes + j * 2, 2);
      out.scales.data<float>()[g * N + n] = half_to_float(h);
      if (mn) {
        std::memcpy(&h, panel + g * bb + kS4CodeBytes + kS4PanelCols * 2 + j * 2, 2);
        out.mins.data<float>()[g * N + n] = half_to_float(h);
      }
    }
  }
  return out;
}

namespace {

// One group of 32 activations -> its two s8 planes, unit and integer sum. Double arithmetic and
// nearbyint as written: the x86-64-v4 clone vectorises the divisions and rounds with vroundpd (no
// libm call), the same values as the default clone.
TORI_SIMD_CLONES void quantize_group(const float* xs, int8_t* hi, int8_t* lo, float* unit_out, int32_t* sum_out) {
  float amax = 0.f;
  for (int64_t i = 0; i < kInt4Group; ++i) amax = std::max(amax, std::fabs(xs[i]));
  const double step = double(amax) / 127.0, unit = step / kS4LoPlanes;
  int32_t sum = 0;
  for (int64_t i = 0; i < kInt4Group; ++i) {
    const double h = amax > 0.f ? std::clamp(std::nearbyint(xs[i] / step), -127.0, 127.0) : 0.0;
    const double l = amax > 0.f ? std::clamp(std::nearbyint((xs[i] - h * step) / unit), -127.0, 127.0) : 0.0;
    hi[i] = int8_t(h);
    lo[i] = int8_t(l);
    sum += kS4LoPlanes * int32_t(h) + int32_t(l);
  }
  *unit_out = float(unit);
  *sum_out = sum;
}

}  // namespace

void quantize_activations_s8(const float* x, int64_t ldx, int64_t M, int64_t K, QuantizedActivations& out) {
  if (K % kInt4Group != 0)
    throw Error("quantize_activations_s8: K = " + std::to_string(K) + " is not a multiple of " +
                std::to_string(kInt4Group));
  const int64_t G = K / kInt4Group;
  out.M = M;
  out.K = K;
  out.hi.resize(size_t(M * K));
  out.lo.resize(size_t(M * K));
  out.unit.resize(size_t(M * G));
  out.sum.resize(size_t(M * G));
  // Prefill quantises M x K values per matmul: over the threads (a serial pass left the other thread
  // spinning), in place for a single row (decode: 64-176 groups, less than a fork costs).
#pragma omp parallel for schedule(static) if (M * G >= 1024)
  for (int64_t mg = 0; mg < M * G; ++mg) {
    const int64_t m = mg / G, g = mg % G;
    quantize_group(x + m * ldx + g * kInt4Group, out.hi.data() + m * K + g * kInt4Group,
                   out.lo.data() + m * K + g * kInt4Group, out.unit.data() + mg, out.sum.data() + mg);
  }
}

void gemm_s4_f32_ref(const float* x, int64_t ldx, int64_t M, const PackedWeight& w, float* y, int64_t ldy,
                     float alpha, bool accumulate) {
  check_s4(w, "gemm_s4_f32_ref");
  const int64_t K = w.k, N = w.n, G = K / kInt4Group;
  QuantizedActivations xq;
  quantize_activations_s8(x, ldx, M, K, xq);
  const QuantizedInt4 qw = unpack_s4_panels(w);
  const int8_t* q = qw.q.data<int8_t>();
  const float* S = qw.scales.data<float>();
  const float* Mn = qw.with_min() ? qw.mins.data<float>() : nullptr;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t g = 0; g < G; ++g) {
        int64_t t = 0;
        for (int64_t i = 0; i < kInt4Group; ++i) {
          const size_t k = size_t(g * kInt4Group + i), mk = size_t(m * K) + k;
          t += int64_t(q[int64_t(k) * N + n]) * (int64_t(kS4LoPlanes) * xq.hi[mk] + xq.lo[mk]);
        }
        const double xs = xq.unit[size_t(m * G + g)], sum = xq.sum[size_t(m * G + g)];
        acc += Mn ? double(S[g * N + n]) * xs * double(t) + double(Mn[g * N + n]) * xs * sum
                  : double(S[g * N + n]) * xs * double(t - 8 * int64_t(sum));
      }
      const float v = float(double(alpha) * acc);
      y[m * ldy + n] = accumulate ? y[m * ldy + n] + v : v;
    }
}

void gemm_s4_f32(const float* x, int64_t ldx, int64_t M, const PackedWeight& w, float* y, int64_t ldy,
                 float alpha, bool accumulate) {
  check_s4(w, "gemm_s4_f32");
  if (!cpu_has_avx512_vnni()) return gemm_s4_f32_ref(x, ldx, M, w, y, ldy, alpha, accumulate);
  thread_local QuantizedActivations xq;  // grows once, then reused: decode allocates nothing
  quantize_activations_s8(x, ldx, M, w.k, xq);
  detail::gemm_s4_f32_vnni(xq, w.n, w.panels.data<int8_t>(), w.format == WeightFormat::int4_min, y, ldy, alpha,
                           accumulate);
}

}  // namespace tori::kernels
