#pragma once
// PackedWeight: a [K, N] weight (our models store weights [in, out], y = x @ W) converted ONCE, at
// load time, into the storage its backend and format want, so that matmul() never repacks (a
// weight used for one step only may instead be a view where it lies: pack_transient_weight):
//   f32  / onednn    oneDNN's preferred blocked layout (format_tag::any, reordered once)
//   bf16 / onednn    same, bf16 elements
//   f32  / openblas  plain row-major f32 (what sgemm reads)
//   f32|bf16 / reference  plain row-major in that dtype
//   int8 / any       column panels [ceil(N/64), K, 64] of s8 (see gemm_s8_f32.hpp) + f32 scale per
//                    output channel; the panel layout serves the AVX-512 small-batch kernel and the
//                    dequantising large-batch path alike.
//   int4 / any       (Q4_0 form; int4_min: Q4_1 form, with mins) group-wise 4-bit codes with f16
//   int4_min / any   scales per 32 rows of K (quantize.hpp), in column panels of 64 with each group's
//                    codes and scales side by side (gemm_s4_f32.hpp); one kernel for every M.
//   tsvd             a tiled-SVD weight (tsvd.hpp): its packed factors in `tsvd` (format and
//                    backend are the factors'); matmul runs tsvd_matmul (pack_tsvd_weight).
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/backend.hpp"
#include "kernels/quantize.hpp"
#include "kernels/tensor.hpp"

namespace tori::kernels {

enum class WeightFormat : uint8_t { f32, bf16, int8, int4, int4_min };
// The formats `tori calibrate` measures and hardware profiles hold curves for (arrays indexed by
// format); the int4 forms are priced with int8's (priced_format) until the calibration measures them.
constexpr WeightFormat kWeightFormats[] = {WeightFormat::f32, WeightFormat::bf16, WeightFormat::int8};
inline WeightFormat priced_format(WeightFormat f) {
  return f == WeightFormat::int4 || f == WeightFormat::int4_min ? WeightFormat::int8 : f;
}
// The formats whose quantiser is group-local (quantize.hpp): no whole-column scales to carry, but
// every row range a shard or tile holds must start and end on a kInt4Group boundary.
inline bool is_int4(WeightFormat f) { return f == WeightFormat::int4 || f == WeightFormat::int4_min; }
// The format the logits matmul (the unembedding) is packed in: int8 for the int4 forms, as
// llama.cpp's 4-bit files keep output.weight at 6-8 bits (4 bits there visibly hurts text: SmolLM2's
// Q8_0 embedding rounded to int4-min answered "L'Étoile" for France's capital); else fmt itself.
inline WeightFormat unembedding_format(WeightFormat f) { return is_int4(f) ? WeightFormat::int8 : f; }
// Rows of K a packed block of this format must be a multiple of (1 for f32, bf16, int8).
int64_t k_granule(WeightFormat f);

std::string_view weight_format_name(WeightFormat f);
// Parses f32|bf16|int8|int4|int4-min; throws tori::InputError naming `flag` and the allowed values.
WeightFormat parse_weight_format(const std::string& s, const std::string& flag = "--weights");
// The names parse_weight_format takes, for --help texts.
inline constexpr const char* kWeightFormatNames = "f32|bf16|int8|int4|int4-min";

namespace detail {
struct OnednnWeight;  // oneDNN memory in the packed layout (onednn_matmul.hpp)
}
struct TsvdWeight;   // tsvd.hpp
struct TsvdFactors;  // tsvd.hpp

struct PackedWeight {
  WeightFormat format = WeightFormat::f32;
  Backend backend = Backend::reference;
  int64_t k = 0, n = 0;  // logical shape [K, N]

  Tensor plain;   // f32/bf16 [K, N] for openblas and reference
  Tensor panels;  // int8: [ceil(N/64), K, 64] s8, zero-padded columns; int4: s4 panels (gemm_s4_f32.hpp)
  Tensor scales;  // int8: [N] f32 per output channel (int4: inside the panels)
  std::shared_ptr<const detail::OnednnWeight> onednn;  // f32/bf16 on the onednn backend
  QuantError quant_error;  // int8/int4: error of the quantisation done at pack time
  std::shared_ptr<const TsvdWeight> tsvd;  // tsvd kind: the factors matmul multiplies (else null)

  bool defined() const { return k > 0 && n > 0; }
  // Bytes of weight data one matmul reads (the memory-bound cost of small-batch decode).
  int64_t weight_bytes() const;
  std::string describe() const;  // e.g. "[4096, 4096] int8/onednn"
};

// w: [K, N] f32 (or bf16). Throws tori::Error for a format the backend lacks (openblas + bf16).
PackedWeight pack_weight(const Tensor& w, WeightFormat fmt, Backend backend);
// Same, but int8 quantises with the given per-column scales [N] (quantize.hpp) instead of w's own
// column maxima: a shard or block of a weight passes its columns' scales over the WHOLE weight, so
// its packed values equal the same slice of the whole weight quantised, on any layout. f32/bf16
// ignore `scales`, and so do int4/int4_min, whose groups of 32 rows are quantised on their own
// (quantize.hpp); K must then be a multiple of 32 (else tori::Error).
PackedWeight pack_weight(const Tensor& w, WeightFormat fmt, Backend backend, const Tensor& scales);

// pack_weight of columns [c0, c0 + n) of w [K, C] (a copy of them unless that is all of w; a
// column block needs f32). scales: those of the n columns (int8), as for pack_weight.
PackedWeight pack_weight_columns(const Tensor& w, WeightFormat fmt, Backend backend, const Tensor& scales, int64_t c0,
                                 int64_t n);

// The tsvd kind: f's factors packed (pack_tsvd) in `fmt` on `backend`, as a PackedWeight [K, N]
// that matmul multiplies with tsvd_matmul, so every holder of packed weights (weight-stationary
// shards, looped-einsum tiles) runs factored weights unchanged.
PackedWeight pack_tsvd_weight(const TsvdFactors& f, WeightFormat fmt, Backend backend);

// Whether pack_transient_weight (and matmul_strided) read weights of this format and backend
// where they lie: f32 on oneDNN.
inline bool reads_in_place(WeightFormat fmt, Backend backend) { return fmt == WeightFormat::f32 && backend == Backend::onednn; }

// A weight used for ONE step (the weight-gathered layouts gather theirs every step): columns
// [c0, c0 + n) of w [K, C] (n = -1: to the end). f32 on oneDNN is read where it lies — a strided
// view that keeps w alive, multiplied by oneDNN's plain-layout matmul — because reordering into the
// packed layout costs more than the packed matmul then saves (docs/measurements/kernels.md "Weight-gathered weights").
// Every other format and backend packs a copy of those columns (pack_weight_columns; bf16 and
// int8 convert anyway).
PackedWeight pack_transient_weight(const Tensor& w, WeightFormat fmt, Backend backend, const Tensor& scales,
                                   int64_t c0 = 0, int64_t n = -1);

}  // namespace tori::kernels
