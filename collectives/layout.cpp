#include "collectives/layout.hpp"

#include <cstring>

namespace tori::collectives {

DimView dim_view(const kernels::Shape& shape, int dim) {
  DimView v;
  for (int d = 0; d < static_cast<int>(shape.size()); ++d) {
    if (d < dim) v.outer *= shape[static_cast<size_t>(d)];
    else if (d == dim) v.n = shape[static_cast<size_t>(d)];
    else v.inner *= shape[static_cast<size_t>(d)];
  }
  return v;
}

void pack_chunks(const std::byte* src, DimView whole, int parts, size_t elem_bytes, std::byte* dst) {
  const size_t slice = static_cast<size_t>(whole.n / parts * whole.inner) * elem_bytes;
  for (int p = 0; p < parts; ++p)
    for (int64_t o = 0; o < whole.outer; ++o)
      std::memcpy(dst + (static_cast<size_t>(p * whole.outer + o)) * slice,
                  src + (static_cast<size_t>(o * parts + p)) * slice, slice);
}

void unpack_chunks(const std::byte* src, DimView whole, int parts, size_t elem_bytes, std::byte* dst) {
  const size_t slice = static_cast<size_t>(whole.n / parts * whole.inner) * elem_bytes;
  for (int p = 0; p < parts; ++p)
    for (int64_t o = 0; o < whole.outer; ++o)
      std::memcpy(dst + (static_cast<size_t>(o * parts + p)) * slice,
                  src + (static_cast<size_t>(p * whole.outer + o)) * slice, slice);
}

void transpose_blocks(const std::byte* src, int64_t rows, int64_t cols, size_t unit_bytes,
                      std::byte* dst) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      std::memcpy(dst + static_cast<size_t>(j * rows + i) * unit_bytes,
                  src + static_cast<size_t>(i * cols + j) * unit_bytes, unit_bytes);
}

void widen_bf16(const kernels::bf16* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = kernels::bf16::to_f32(src[i].bits);
}

void narrow_to_bf16(const float* src, kernels::bf16* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i].bits = kernels::bf16::from_f32(src[i]);
}

}  // namespace tori::collectives
