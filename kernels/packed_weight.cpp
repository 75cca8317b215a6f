#include "kernels/packed_weight.hpp"

#include "kernels/columns.hpp"
#include "kernels/gemm_s4_f32.hpp"
#include "kernels/gemm_s8_f32.hpp"
#include "kernels/onednn_matmul.hpp"
#include "kernels/tsvd.hpp"

namespace tori::kernels {

std::string_view weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::f32: return "f32";
    case WeightFormat::bf16: return "bf16";
    case WeightFormat::int8: return "int8";
    case WeightFormat::int4: return "int4";
    case WeightFormat::int4_min: return "int4-min";
  }
  return "?";
}

int64_t k_granule(WeightFormat f) { return is_int4(f) ? kInt4Group : 1; }

WeightFormat parse_weight_format(const std::string& s, const std::string& flag) {
  if (s == "f32" || s == "float32") return WeightFormat::f32;
  if (s == "bf16" || s == "bfloat16") return WeightFormat::bf16;
  if (s == "int8" || s == "s8") return WeightFormat::int8;
  if (s == "int4" || s == "q4_0") return WeightFormat::int4;
  if (s == "int4-min" || s == "q4_1") return WeightFormat::int4_min;
  std::string allowed;  // kWeightFormatNames as a message lists values: "f32, bf16, ..."
  for (const char* c = kWeightFormatNames; *c; ++c) allowed += *c == '|' ? std::string(", ") : std::string(1, *c);
  throw InputError(flag + ": unknown weight format '" + s + "' (allowed: " + allowed + ")");
}

int64_t PackedWeight::weight_bytes() const {
  if (tsvd) return tsvd->weight_bytes();
  switch (format) {
    case WeightFormat::f32: return k * n * 4;
    case WeightFormat::bf16: return k * n * 2;
    case WeightFormat::int8: return k * n + n * 4;
    case WeightFormat::int4:
    case WeightFormat::int4_min: return panels.defined() ? int64_t(panels.nbytes()) : 0;
  }
  return 0;
}

std::string PackedWeight::describe() const {
  if (tsvd) return tsvd->describe();
  return shape_str({k, n}) + " " + std::string(weight_format_name(format)) + "/" +
         std::string(backend_name(backend));
}

PackedWeight pack_weight(const Tensor& w, WeightFormat fmt, Backend backend) {
  return pack_weight(w, fmt, backend, Tensor());
}

PackedWeight pack_tsvd_weight(const TsvdFactors& f, WeightFormat fmt, Backend backend) {
  PackedWeight p;
  p.format = fmt;
  p.backend = backend;
  p.k = f.k;
  p.n = f.n;
  p.tsvd = std::make_shared<const TsvdWeight>(pack_tsvd(f, fmt, backend));
  return p;
}

PackedWeight pack_weight(const Tensor& w, WeightFormat fmt, Backend backend, const Tensor& scales) {
  if (w.rank() != 2 || w.dtype() == DType::s8 || w.numel() == 0)
    throw Error("pack_weight: expected a non-empty [K, N] f32 or bf16 weight, got " +
                std::string(dtype_name(w.dtype())) + " " + shape_str(w.shape()));
  PackedWeight p;
  p.format = fmt;
  p.backend = backend;
  p.k = w.size(0);
  p.n = w.size(1);
  switch (fmt) {
    case WeightFormat::int8: {
      QuantizedInt8 q = scales.defined() ? quantize_int8(w, scales) : quantize_int8(w);
      p.quant_error = quantization_error(w, q);
      p.panels = pack_s8_panels(q.q);
      p.scales = q.scales;
      return p;
    }
    case WeightFormat::int4:
    case WeightFormat::int4_min: {
      if (p.k % kInt4Group != 0)
        throw Error("pack_weight: int4 needs K (rows) a multiple of the group size " + std::to_string(kInt4Group) +
                    ", got " + shape_str(w.shape()));
      QuantizedInt4 q = quantize_int4(w, fmt == WeightFormat::int4_min);
      p.quant_error = quantization_error(w, q);
      p.panels = pack_s4_panels(q);
      return p;
    }
    case WeightFormat::f32:
    case WeightFormat::bf16: {
      const DType dt = fmt == WeightFormat::f32 ? DType::f32 : DType::bf16;
      if (backend == Backend::onednn) {
        p.onednn = detail::onednn_pack_weight(w, dt);
      } else if (backend == Backend::openblas && dt == DType::bf16) {
        throw Error("--matmul openblas: weight format bf16 is not supported by OpenBLAS sgemm "
                    "(allowed with openblas: f32, int8; use --matmul onednn for bf16)");
      } else {
        p.plain = w.to(dt).clone();
      }
      return p;
    }
  }
  return p;
}

PackedWeight pack_weight_columns(const Tensor& w, WeightFormat fmt, Backend backend, const Tensor& scales, int64_t c0,
                                 int64_t n) {
  if (w.rank() != 2 || w.numel() == 0 || c0 < 0 || n <= 0 || c0 + n > w.size(1))
    throw Error("pack_weight_columns: columns [" + std::to_string(c0) + ", " + std::to_string(c0 + n) +
                ") of a non-empty [K, C] weight, got " + std::string(dtype_name(w.dtype())) + " " + shape_str(w.shape()));
  if (c0 == 0 && n == w.size(1)) return pack_weight(w, fmt, backend, scales);
  if (w.dtype() != DType::f32)
    throw Error("pack_weight_columns: a column block of a " + std::string(dtype_name(w.dtype())) +
                " weight (allowed: f32, or the whole weight)");
  return pack_weight(slice_columns(w, c0, n), fmt, backend, scales);
}

PackedWeight pack_transient_weight(const Tensor& w, WeightFormat fmt, Backend backend, const Tensor& scales,
                                   int64_t c0, int64_t n) {
  if (n < 0 && w.rank() == 2) n = w.size(1) - c0;
  if (!reads_in_place(fmt, backend) || w.dtype() != DType::f32)
    return pack_weight_columns(w, fmt, backend, scales, c0, n);
  PackedWeight p;
  p.format = fmt;
  p.backend = backend;
  p.k = w.size(0);
  p.n = n;
  p.onednn = detail::onednn_view_weight(w, c0, n);  // checks the columns
  return p;
}

}  // namespace tori::kernels
