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

}  // namespace tori::kernels
