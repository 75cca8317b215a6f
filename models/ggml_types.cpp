#include "models/ggml_types.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/bf16.hpp"
#include "kernels/error.hpp"
#include "models/f16.hpp"
#include "models/ggml_kquants.hpp"

namespace tori::models {

namespace {
constexpr int kQK = 32;  // elements per quantised block

uint16_t load16(const unsigned char* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
uint32_t load32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
void store16(unsigned char* p, uint16_t v) { std::memcpy(p, &v, 2); }
}  // namespace

bool ggml_type_supported(uint32_t t) {
  switch (GgmlType(t)) {
    case GgmlType::f32:
    case GgmlType::f16:
    case GgmlType::bf16:
    case GgmlType::q8_0:
    case GgmlType::q4_0:
    case GgmlType::q4_1:
    case GgmlType::q5_0:
    case GgmlType::q5_1:
    case GgmlType::q2_k:
    case GgmlType::q3_k:
    case GgmlType::q4_k:
    case GgmlType::q5_k:
    case GgmlType::q6_k: return true;
  }
  return false;
}

std::string ggml_type_name(uint32_t t) {
  static const char* names[] = {"F32",  "F16",  "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0",    "Q5_1",   "Q8_0",
                                "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K",    "IQ2_XXS", "IQ2_XS",
                                "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32",
                                "I64", "F64", "IQ1_M", "BF16"};
  if (t < sizeof(names) / sizeof(names[0])) return names[t];
  return "type " + std::to_string(t);
}

const char* ggml_supported_types() { return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K"; }

int64_t ggml_block_elems(GgmlType t) {
  switch (t) {
    case GgmlType::f32:
    case GgmlType::f16:
    case GgmlType::bf16: return 1;
    case GgmlType::q2_k:
    case GgmlType::q3_k:
    case GgmlType::q4_k:
    case GgmlType::q5_k:
    case GgmlType::q6_k: return kQK_K;
    default: return kQK;
  }
}

int64_t ggml_block_bytes(GgmlType t) {
  switch (t) {
    case GgmlType::f32: return 4;
    case GgmlType::f16:
    case GgmlType::bf16: return 2;
    case GgmlType::q8_0: return 2 + kQK;
    case GgmlType::q4_0: return 2 + kQK / 2;
    case GgmlType::q4_1: return 4 + kQK / 2;
    case GgmlType::q5_0: return 2 + 4 + kQK / 2;
    case GgmlType::q5_1: return 4 + 4 + kQK / 2;
    case GgmlType::q2_k: return kQ2KBytes;
    case GgmlType::q3_k: return kQ3KBytes;
    case GgmlType::q4_k: return kQ4KBytes;
    case GgmlType::q5_k: return kQ5KBytes;
    case GgmlType::q6_k: return kQ6KBytes;
  }
  throw Error("GGML type " + std::to_string(uint32_t(t)) + " has no block size");
}

void ggml_dequantize(GgmlType t, const unsigned char* src, int64_t n_blocks, float* dst) {
  switch (t) {
    case GgmlType::f32: std::memcpy(dst, src, size_t(n_blocks) * 4); return;
    case GgmlType::f16:
      for (int64_t i = 0; i < n_blocks; ++i) dst[i] = half_to_float(load16(src + 2 * i));
      return;
    case GgmlType::bf16:
      for (int64_t i = 0; i < n_blocks; ++i) dst[i] = kernels::bf16::to_f32(load16(src + 2 * i));
      return;
    case GgmlType::q8_0:
      for (int64_t b = 0; b < n_blocks; ++b, src += 2 + kQK, dst += kQK) {
        const float d = half_to_float(load16(src));
        for (int j = 0; j < kQK; ++j) dst[j] = float(int8_t(src[2 + j])) * d;
      }
      return;
    case GgmlType::q4_0:
      for (int64_t b = 0; b < n_blocks; ++b, src += 2 + kQK / 2, dst += kQK) {
        const float d = half_to_float(load16(src));
        for (int j = 0; j < kQK / 2; ++j) {
          dst[j] = float(int(src[2 + j] & 0x0f) - 8) * d;
          dst[j + kQK / 2] = float(int(src[2 + j] >> 4) - 8) * d;
        }
      }
      return;
    case GgmlType::q4_1:
      for (int64_t b = 0; b < n_blocks; ++b, src += 4 + kQK / 2, dst += kQK) {
        const float d = half_to_float(load16(src)), m = half_to_float(load16(src + 2));
        for (int j = 0; j < kQK / 2; ++j) {
          dst[j] = float(src[4 + j] & 0x0f) * d + m;
          dst[j + kQK / 2] = float(src[4 + j] >> 4) * d + m;
        }
      }
      return;
    case GgmlType::q5_0:
      for (int64_t b = 0; b < n_blocks; ++b, src += 6 + kQK / 2, dst += kQK) {
        const float d = half_to_float(load16(src));
        const uint32_t qh = load32(src + 2);
        for (int j = 0; j < kQK / 2; ++j) {
          const int q0 = (src[6 + j] & 0x0f) | int((qh >> j) & 1) << 4;
          const int q1 = (src[6 + j] >> 4) | int((qh >> (j + kQK / 2)) & 1) << 4;
          dst[j] = float(q0 - 16) * d;
          dst[j + kQK / 2] = float(q1 - 16) * d;
        }
      }
      return;
    case GgmlType::q5_1:
      for (int64_t b = 0; b < n_blocks; ++b, src += 8 + kQK / 2, dst += kQK) {
        const float d = half_to_float(load16(src)), m = half_to_float(load16(src + 2));
        const uint32_t qh = load32(src + 4);
        for (int j = 0; j < kQK / 2; ++j) {
          const int q0 = (src[8 + j] & 0x0f) | int((qh >> j) & 1) << 4;
          const int q1 = (src[8 + j] >> 4) | int((qh >> (j + kQK / 2)) & 1) << 4;
          dst[j] = float(q0) * d + m;
          dst[j + kQK / 2] = float(q1) * d + m;
        }
      }
      return;
    case GgmlType::q2_k: dequantize_q2_k(src, n_blocks, dst); return;
    case GgmlType::q3_k: dequantize_q3_k(src, n_blocks, dst); return;
    case GgmlType::q4_k: dequantize_q4_k(src, n_blocks, dst); return;
    case GgmlType::q5_k: dequantize_q5_k(src, n_blocks, dst); return;
    case GgmlType::q6_k: dequantize_q6_k(src, n_blocks, dst); return;
  }
  throw Error("cannot decode GGML type " + ggml_type_name(uint32_t(t)));
}

void ggml_quantize(GgmlType t, const float* src, int64_t n, unsigned char* dst) {
  const int64_t be = ggml_block_elems(t);
  if (n % be != 0)
    throw Error("cannot quantise " + std::to_string(n) + " values as " + ggml_type_name(uint32_t(t)) +
                ": not a multiple of the block size " + std::to_string(be));
  switch (t) {
    case GgmlType::f32: std::memcpy(dst, src, size_t(n) * 4); return;
    case GgmlType::f16:
      for (int64_t i = 0; i < n; ++i) store16(dst + 2 * i, float_to_half(src[i]));
      return;
    case GgmlType::bf16:
      for (int64_t i = 0; i < n; ++i) store16(dst + 2 * i, kernels::bf16::from_f32(src[i]));
      return;
    case GgmlType::q8_0:
      for (int64_t b = 0; b < n / kQK; ++b, src += kQK, dst += 2 + kQK) {
        float amax = 0.f;
        for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(src[j]));
        const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
        store16(dst, float_to_half(d));
        for (int j = 0; j < kQK; ++j) dst[2 + j] = static_cast<unsigned char>(int8_t(std::roundf(src[j] * id)));
      }
      return;
    case GgmlType::q4_0:
      for (int64_t b = 0; b < n / kQK; ++b, src += kQK, dst += 2 + kQK / 2) {
        float amax = 0.f, max = 0.f;  // the value of largest magnitude, with its sign
        for (int j = 0; j < kQK; ++j)
          if (std::fabs(src[j]) > amax) amax = std::fabs(src[j]), max = src[j];
        const float d = max / -8.f, id = d != 0.f ? 1.f / d : 0.f;
        store16(dst, float_to_half(d));
        for (int j = 0; j < kQK / 2; ++j) {
          const int q0 = std::min(15, int(int8_t(src[j] * id + 8.5f)));
          const int q1 = std::min(15, int(int8_t(src[j + kQK / 2] * id + 8.5f)));
          dst[2 + j] = static_cast<unsigned char>(q0 | q1 << 4);
        }
      }
      return;
    case GgmlType::q4_1:
      for (int64_t b = 0; b < n / kQK; ++b, src += kQK, dst += 4 + kQK / 2) {
        float lo = src[0], hi = src[0];
        for (int j = 1; j < kQK; ++j) lo = std::min(lo, src[j]), hi = std::max(hi, src[j]);
        const float d = (hi - lo) / 15.f, id = d != 0.f ? 1.f / d : 0.f;
        store16(dst, float_to_half(d));
        store16(dst + 2, float_to_half(lo));
        for (int j = 0; j < kQK / 2; ++j) {
          const int q0 = std::min(15, int(int8_t((src[j] - lo) * id + 0.5f)));
          const int q1 = std::min(15, int(int8_t((src[j + kQK / 2] - lo) * id + 0.5f)));
          dst[4 + j] = static_cast<unsigned char>(q0 | q1 << 4);
        }
      }
      return;
    default: break;  // the Q5 and k-quant types are read, never written
  }
  throw Error("cannot encode GGML type " + ggml_type_name(uint32_t(t)) + " (Tori writes F32, F16, BF16, Q8_0, Q4_0, Q4_1)");
}

}  // namespace tori::models
