#pragma once
// Element types of tensors: f32, bf16 (storage; arithmetic in f32) and s8 (int8 weights, with a
// separate per-output-channel f32 scale tensor).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tori::kernels {

enum class DType : uint8_t { f32, bf16, s8 };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::bf16: return 2;
    case DType::s8: return 1;
  }
  return 0;
}

std::string_view dtype_name(DType t);
// Parses "f32" | "bf16" | "int8"/"s8"; throws tori::InputError naming `what` (a flag or key).
DType parse_dtype(std::string_view s, std::string_view what = "dtype");

}  // namespace tori::kernels
