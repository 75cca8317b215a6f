#pragma once
// Strided copies of row-major f32 matrices: the one place rows, column blocks and tiles are picked
// out of a matrix or placed into one (units of a fused projection, heads of an attention input,
// each sequence's last row, gathered weight blocks, looped-einsum tiles).
//   take_rows(x [R, C], rows)                  -> [|rows|, C]        out row i = x row rows[i]
//   take_columns(x [M, C], starts, w)          -> [M, |starts|·w]    columns [starts[k], +w) side by side
//   put_columns(dst [M, C], starts, w, t)      t [M, |starts|·w]'s blocks back to columns starts[k]
//   put_block(dst [R, C], row, col, src [r, c]) src at (row, col) of dst
// Every index is checked against the shapes; a bad one throws tori::Error naming the kernel.
#include <cstdint>
#include <vector>

#include "kernels/tensor.hpp"

namespace tori::kernels {

Tensor take_rows(const Tensor& x, const std::vector<int64_t>& rows);
Tensor take_columns(const Tensor& x, const std::vector<int64_t>& starts, int64_t width);
void put_columns(Tensor& dst, const std::vector<int64_t>& starts, int64_t width, const Tensor& t);
void put_block(Tensor& dst, int64_t row, int64_t col, const Tensor& src);

}  // namespace tori::kernels
