#pragma once
// int8 weight-only quantisation, as in the paper: symmetric, one f32 scale per output channel
// (column n of a [K, N] weight), so W[k, n] ~= q[k, n] * scale[n] with q in [-127, 127].
// Activations stay f32/bf16; the scale is applied after the matmul (y[:, n] = scale[n] * (x @ q)[:, n]),
// which is what lets a sharded output projection apply it after its reduce-scatter.
#include <cstdint>

#include "kernels/tensor.hpp"

namespace tori::kernels {

struct QuantizedInt8 {
  Tensor q;       // [K, N] s8
  Tensor scales;  // [N] f32; 0 for an all-zero column
};

// How far the quantised weight is from the original (reported at pack time and by the benchmark).
struct QuantError {
  double max_abs = 0;  // max |w - q*s|
  double rms = 0;      // sqrt(mean (w - q*s)^2)
  double rel_rms = 0;  // rms / sqrt(mean w^2): the noise-to-signal ratio the matmul output inherits
};

// w: [K, N] f32 or bf16; scales from this block's own column maxima (layout-dependent when w is
// a shard: use the overload below with the whole weight's scales for sharded weights).
QuantizedInt8 quantize_int8(const Tensor& w);
// With given per-column scales [N] (e.g. int8_scales of the unsharded weight's column maxima, so
// every shard of a column quantises alike whatever the layout): q = clamp(round(w / scale)); a
// column with scale 0 quantises to 0.
QuantizedInt8 quantize_int8(const Tensor& w, const Tensor& scales);
// max_k |w[k, n]| per column: [N] f32.
Tensor column_amax(const Tensor& w);
// The symmetric int8 scales of column maxima: amax / 127 (0 for an all-zero column).
Tensor int8_scales(const Tensor& amax);
// [K, N] f32 with q * scale.
Tensor dequantize_int8(const QuantizedInt8& qw);
QuantError quantization_error(const Tensor& w, const QuantizedInt8& qw);

// int4 weight-only quantisation, group-wise along the input dimension K as in llama.cpp's Q4_0 and
// Q4_1 (GGUF): each column n's K rows are cut into groups of kInt4Group, and group g of column n
// has its own f16 scale s (and, in the Q4_1 form, an f16 min m); codes q are 0..15:
//   Q4_0 form (WeightFormat::int4)      w ~= s · (q − 8)     s = v / −8, v the group's value of
//                                                              largest |v|, so q = 0 at that value
//   Q4_1 form (WeightFormat::int4_min)  w ~= s · q + m       m = min, s = (max − min) / 15
// Why group-local: a group's codes depend on its 32 values only, so any shard or tile whose row
// range starts and ends on group boundaries quantises exactly as the whole weight does, on every
// layout, without the whole-column maxima int8 needs. And the quantiser is idempotent: quantising
// its own dequantised output gives back the same codes, scales and mins (the group's extreme
// values sit on codes 0 and 15 (or 0 for Q4_0), and s, m are f16). llama.cpp's reference Q4_0 and
// Q4_1 quantisers have the same property, so a GGUF Q4_0/Q4_1 tensor, read as f32 and quantised
// again, yields exactly the file's codes and f16 scales and mins (tests/models: the known-answer
// test against the gguf package).
constexpr int64_t kInt4Group = 32;

struct QuantizedInt4 {
  Tensor q;       // [K, N] s8 holding the codes 0..15
  Tensor scales;  // [K / kInt4Group, N] f32 (f16 values)
  Tensor mins;    // [K / kInt4Group, N] f32 (f16 values); undefined in the Q4_0 form
  bool with_min() const { return mins.defined(); }
};

// w: [K, N] f32 or bf16, K a multiple of kInt4Group (else tori::Error naming K and the group).
QuantizedInt4 quantize_int4(const Tensor& w, bool with_min);
// [K, N] f32 with s·(q − 8) or s·q + m (f32 arithmetic, as llama.cpp dequantises).
Tensor dequantize_int4(const QuantizedInt4& qw);
QuantError quantization_error(const Tensor& w, const QuantizedInt4& qw);

}  // namespace tori::kernels
