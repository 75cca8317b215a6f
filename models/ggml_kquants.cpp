#include "models/ggml_kquants.hpp"

#include <cstring>

#include "models/f16.hpp"

namespace tori::models {

namespace {

float load_half(const unsigned char* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return half_to_float(h);
}

// The 6-bit scale and min of each of the 8 sub-blocks of a Q4_K / Q5_K super-block, from its 12
// packed bytes (layout in the header).
void unpack_scales_mins(const unsigned char* s12, uint8_t scale[8], uint8_t min[8]) {
  for (int s = 0; s < 4; ++s) {
    scale[s] = s12[s] & 0x3f;
    min[s] = s12[s + 4] & 0x3f;
  }
  for (int s = 4; s < 8; ++s) {
    scale[s] = uint8_t((s12[s + 4] & 0x0f) | (s12[s - 4] >> 6) << 4);
    min[s] = uint8_t((s12[s + 4] >> 4) | (s12[s] >> 6) << 4);
  }
}

// Q4_K and Q5_K: identical but for the fifth bit, taken from qh when kHigh.
template <bool kHigh>
void dequantize_scaled_min(const unsigned char* src, int64_t n_blocks, float* dst) {
  constexpr int64_t kBytes = kHigh ? kQ5KBytes : kQ4KBytes;
  for (int64_t b = 0; b < n_blocks; ++b, src += kBytes, dst += kQK_K) {
    const float d = load_half(src), dmin = load_half(src + 2);
    uint8_t scale[8], min[8];
    unpack_scales_mins(src + 4, scale, min);
    const unsigned char* qh = src + 16;                         // Q5_K only: 32 bytes
    const unsigned char* qs = src + 16 + (kHigh ? kQK_K / 8 : 0);  // 128 bytes
    for (int c = 0; c < 4; ++c) {  // 4 chunks of 32 bytes = 64 elements = sub-blocks 2c, 2c + 1
      const int s0 = 2 * c, s1 = 2 * c + 1;
      const float d0 = d * float(scale[s0]), m0 = dmin * float(min[s0]);
      const float d1 = d * float(scale[s1]), m1 = dmin * float(min[s1]);
      const unsigned char* q = qs + 32 * c;
      float* y = dst + 64 * c;
      for (int i = 0; i < 32; ++i) {
        int lo = q[i] & 0x0f, hi = q[i] >> 4;
        if constexpr (kHigh) {
          lo |= ((qh[i] >> s0) & 1) << 4;
          hi |= ((qh[i] >> s1) & 1) << 4;
        }
        y[i] = d0 * float(lo) - m0;
        y[32 + i] = d1 * float(hi) - m1;
      }
    }
  }
}

}  // namespace

void dequantize_q2_k(const unsigned char* src, int64_t n_blocks, float* dst) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kQ2KBytes, dst += kQK_K) {
    const unsigned char* sc = src;                     // 16 bytes
    const unsigned char* qs = src + kQK_K / 16;        // 64 bytes
    const float d = load_half(src + kQK_K / 16 + kQK_K / 4), dmin = load_half(src + kQK_K / 16 + kQK_K / 4 + 2);
    for (int s = 0; s < 16; ++s) {  // sub-block s: elements 16s .. 16s + 15
      const int h = s / 8, k = (s % 8) / 2;  // half, 2-bit field
      const float dl = d * float(sc[s] & 0x0f), ml = dmin * float(sc[s] >> 4);
      const unsigned char* q = qs + 32 * h + 16 * (s % 2);
      for (int i = 0; i < 16; ++i) dst[16 * s + i] = dl * float((q[i] >> (2 * k)) & 3) - ml;
    }
  }
}

void dequantize_q3_k(const unsigned char* src, int64_t n_blocks, float* dst) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kQ3KBytes, dst += kQK_K) {
    const unsigned char* hmask = src;                  // 32 bytes
    const unsigned char* qs = src + kQK_K / 8;         // 64 bytes
    const unsigned char* sc = src + kQK_K / 8 + kQK_K / 4;  // 12 bytes
    const float d = load_half(src + kQK_K / 8 + kQK_K / 4 + 12);
    for (int s = 0; s < 16; ++s) {
      const int lo = s < 8 ? sc[s] & 0x0f : sc[s - 8] >> 4, hi = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
      const float dl = d * float((lo | hi << 4) - 32);
      const int h = s / 8, k = (s % 8) / 2, e0 = 16 * s;
      const unsigned char* q = qs + 32 * h + 16 * (s % 2);
      const unsigned char* m = hmask + e0 % 32;
      for (int i = 0; i < 16; ++i) {
        const int v = ((q[i] >> (2 * k)) & 3) - (((m[i] >> (e0 / 32)) & 1) ? 0 : 4);
        dst[e0 + i] = dl * float(v);
      }
    }
  }
}

void dequantize_q4_k(const unsigned char* src, int64_t n_blocks, float* dst) {
  dequantize_scaled_min<false>(src, n_blocks, dst);
}

void dequantize_q5_k(const unsigned char* src, int64_t n_blocks, float* dst) {
  dequantize_scaled_min<true>(src, n_blocks, dst);
}

void dequantize_q6_k(const unsigned char* src, int64_t n_blocks, float* dst) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kQ6KBytes, dst += kQK_K) {
    const unsigned char* ql_all = src;                              // 128 bytes
    const unsigned char* qh_all = src + kQK_K / 2;                  // 64 bytes
    const auto* sc = reinterpret_cast<const int8_t*>(src + kQK_K / 2 + kQK_K / 4);  // 16 int8
    const float d = load_half(src + kQK_K / 2 + kQK_K / 4 + kQK_K / 16);
    for (int h = 0; h < 2; ++h) {  // two halves of 128 elements
      const unsigned char* ql = ql_all + 64 * h;
      const unsigned char* qh = qh_all + 32 * h;
      float* y = dst + 128 * h;
      // Quarter k (32 elements) of the half: low bits from ql[(32k) % 64 + i], nibble k / 2; high
      // bits from qh[i] bits 2k, 2k + 1. Its two sub-blocks of 16 elements are 8h + 2k and + 1.
      for (int k = 0; k < 4; ++k) {
        const unsigned char* l = ql + 32 * (k & 1);
        const int nib = 4 * (k >> 1), sh = 2 * k;
        for (int j = 0; j < 2; ++j) {
          const float ds = d * float(sc[8 * h + 2 * k + j]);
          for (int i = 16 * j; i < 16 * j + 16; ++i) {
            const int q = (((l[i] >> nib) & 0x0f) | ((qh[i] >> sh) & 3) << 4) - 32;
            y[32 * k + i] = ds * float(q);
          }
        }
      }
    }
  }
}

}  // namespace tori::models
