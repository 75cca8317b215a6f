#pragma once
// Matmul backends, chosen at run time (`--matmul onednn|openblas|reference|auto`):
//   onednn    f32, bf16 (AVX512-BF16 / AMX where the CPU has them) and int8 weight-only; weights
//             packed once into oneDNN's preferred blocked layout, primitives cached per shape.
//   openblas  f32 (sgemm) and int8 weight-only (dequantised panels + sgemm); no bf16.
//   reference naive loops with f64 accumulation: the yardstick in tests, slow.
// `auto` is the fastest available: onednn.
#include <cstdint>
#include <string>
#include <string_view>

namespace tori::kernels {

enum class Backend : uint8_t { onednn, openblas, reference };

std::string_view backend_name(Backend b);
Backend default_backend();
// Parses onednn|openblas|reference|auto; throws tori::InputError naming `flag`, the value and the
// allowed values.
Backend parse_matmul_backend(const std::string& s, const std::string& flag = "--matmul");

}  // namespace tori::kernels
