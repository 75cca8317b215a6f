#pragma once
// bfloat16 storage type: the top 16 bits of an IEEE f32. Conversion rounds to nearest even (as
// oneDNN and AMX do); NaN stays NaN. Arithmetic is always done in f32.
#include <cstdint>
#include <cstring>

namespace tori::kernels {

struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  explicit bf16(float f) : bits(from_f32(f)) {}
  explicit operator float() const { return to_f32(bits); }

  static uint16_t from_f32(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu))  // NaN: keep quiet NaN
      return static_cast<uint16_t>((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
    return static_cast<uint16_t>(u >> 16);
  }
  static float to_f32(uint16_t b) {
    uint32_t u = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};
static_assert(sizeof(bf16) == 2);

inline float round_to_bf16(float f) { return bf16::to_f32(bf16::from_f32(f)); }

}  // namespace tori::kernels
