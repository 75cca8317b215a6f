#pragma once
// Local data movement around a collective (no MPI): viewing a tensor as [outer, n, inner] around
// one dimension, packing the `parts` slices of that dimension into chunk-major order (the order
// the algorithms exchange, ring_plan.hpp) and back, transposing blocks, and widening bf16 to f32.
#include <cstddef>
#include <cstdint>

#include "kernels/tensor.hpp"

namespace tori::collectives {

// A tensor seen around dimension `dim`: [outer, n, inner] with n = size(dim).
struct DimView {
  int64_t outer = 1, n = 1, inner = 1;
};
DimView dim_view(const kernels::Shape& shape, int dim);

// [outer, parts·m, inner] -> [parts][outer, m, inner] (slice p of the dimension becomes chunk p).
void pack_chunks(const std::byte* src, DimView whole, int parts, size_t elem_bytes, std::byte* dst);
// The inverse: [parts][outer, m, inner] -> [outer, parts·m, inner].
void unpack_chunks(const std::byte* src, DimView whole, int parts, size_t elem_bytes, std::byte* dst);

// dst[j][i] = src[i][j] for units of unit_bytes; src is rows × cols units.
void transpose_blocks(const std::byte* src, int64_t rows, int64_t cols, size_t unit_bytes,
                      std::byte* dst);

void widen_bf16(const kernels::bf16* src, float* dst, int64_t n);
void narrow_to_bf16(const float* src, kernels::bf16* dst, int64_t n);

}  // namespace tori::collectives
