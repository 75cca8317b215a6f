#pragma once
// The GGML tensor element types a GGUF file may hold, and the block codecs for the ones we read:
// F32, F16, BF16 (one element per "block") and the llama.cpp quantised formats
//   Q8_0: 32 elements = f16 scale d + 32 int8 q           value = q * d
//   Q4_0: 32 elements = f16 d + 16 bytes of nibbles       value = (q - 8) * d
//   Q4_1: 32 elements = f16 d + f16 m + 16 bytes          value = q * d + m
//   Q5_0: 32 elements = f16 d + u32 qh + 16 bytes         value = (q - 16) * d
//   Q5_1: 32 elements = f16 d + f16 m + u32 qh + 16 bytes value = q * d + m
// (nibbles: byte j holds element j in its low half and element j + 16 in its high half; the Q5
// types take element j's fifth bit from bit j of the little-endian u32 qh), and the 256-element
// k-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (models/ggml_kquants.hpp).
// dequantize() decodes a run of whole blocks to f32, bit-identical to ggml's dequantize_row_* (the
// operations in the format's order, compiled without FMA contraction); quantize() is the llama.cpp
// reference quantiser (quantize_row_*_ref) for F32/F16/BF16/Q8_0/Q4_0/Q4_1, used by the GGUF writer
// for tests and exports (Tori reads, but does not write, the Q5 and k-quant types).
#include <cstdint>
#include <string>

namespace tori::models {

enum class GgmlType : uint32_t {
  f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q2_k = 10, q3_k = 11, q4_k = 12, q5_k = 13, q6_k = 14, bf16 = 30,
};

// True for the types above (those we can decode).
bool ggml_type_supported(uint32_t t);
// "F32", "Q4_0", ...; also names the GGML types we do not decode ("Q4_K", ...), else "type N".
std::string ggml_type_name(uint32_t t);
// The supported type names, for error messages: "F32, F16, BF16, Q8_0, Q4_0, ...".
const char* ggml_supported_types();
// Elements per block (1 for F32/F16/BF16, 32 for Q4_0 ... Q8_0, 256 for the k-quants) and bytes
// per block.
int64_t ggml_block_elems(GgmlType t);
int64_t ggml_block_bytes(GgmlType t);

// Decodes `n_blocks` consecutive blocks starting at `src` into n_blocks * block_elems floats.
void ggml_dequantize(GgmlType t, const unsigned char* src, int64_t n_blocks, float* dst);
// Encodes n floats (a multiple of the block size) into n / block_elems blocks at `dst`; F32, F16,
// BF16, Q8_0, Q4_0 and Q4_1 only (tori::Error for the others).
void ggml_quantize(GgmlType t, const float* src, int64_t n, unsigned char* dst);

}  // namespace tori::models
