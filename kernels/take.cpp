#include "kernels/take.hpp"

#include <cstring>
#include <string>

#include "kernels/error.hpp"

namespace tori::kernels {

namespace {

// Copies of at least this many floats split their rows over the OpenMP threads (a prefill's Q and
// FFN columns: megabytes, where one thread copying leaves the others waiting); smaller ones (decode)
// stay on the calling thread.
constexpr int64_t kParallelFloats = 1 << 16;

void check_matrix(const Tensor& x, const char* kernel, const char* what) {
  if (x.rank() != 2 || x.dtype() != DType::f32)
    throw Error(std::string(kernel) + ": " + what + " must be an f32 matrix, got " + shape_str(x.shape()) + " " +
                std::string(dtype_name(x.dtype())));
}

void check_range(int64_t first, int64_t len, int64_t size, const char* kernel, const char* what) {
  if (first < 0 || len < 0 || first + len > size)
    throw Error(std::string(kernel) + ": " + what + " [" + std::to_string(first) + ", " + std::to_string(first + len) +
                ") is outside [0, " + std::to_string(size) + ")");
}

}  // namespace

Tensor take_rows(const Tensor& x, const std::vector<int64_t>& rows) {
  check_matrix(x, "take_rows", "x");
  const int64_t R = x.size(0), C = x.size(1);
  Tensor out = Tensor::empty({int64_t(rows.size()), C}, DType::f32);
  for (size_t i = 0; i < rows.size(); ++i) {
    check_range(rows[i], 1, R, "take_rows", "row");
    std::memcpy(out.data<float>() + int64_t(i) * C, x.data<float>() + rows[i] * C, size_t(C) * sizeof(float));
  }
  return out;
}

Tensor take_columns(const Tensor& x, const std::vector<int64_t>& starts, int64_t w) {
  check_matrix(x, "take_columns", "x");
  const int64_t M = x.size(0), C = x.size(1), U = int64_t(starts.size());
  for (int64_t s : starts) check_range(s, w, C, "take_columns", "column block");
  Tensor out = Tensor::empty({M, U * w}, DType::f32);
#pragma omp parallel for schedule(static) if (M * U * w >= kParallelFloats)
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < U; ++k)
      std::memcpy(out.data<float>() + (m * U + k) * w, x.data<float>() + m * C + starts[size_t(k)],
                  size_t(w) * sizeof(float));
  return out;
}

void put_columns(Tensor& dst, const std::vector<int64_t>& starts, int64_t w, const Tensor& t) {
  check_matrix(dst, "put_columns", "dst");
  check_matrix(t, "put_columns", "t");
  const int64_t M = dst.size(0), C = dst.size(1), U = int64_t(starts.size());
  if (t.size(0) != M || t.size(1) != U * w)
    throw Error("put_columns: t is " + shape_str(t.shape()) + ", expected [" + std::to_string(M) + ", " +
                std::to_string(U * w) + "]");
  for (int64_t s : starts) check_range(s, w, C, "put_columns", "column block");
#pragma omp parallel for schedule(static) if (M * U * w >= kParallelFloats)
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < U; ++k)
      std::memcpy(dst.data<float>() + m * C + starts[size_t(k)], t.data<float>() + (m * U + k) * w,
                  size_t(w) * sizeof(float));
}

void put_block(Tensor& dst, int64_t row, int64_t col, const Tensor& src) {
  check_matrix(dst, "put_block", "dst");
  check_matrix(src, "put_block", "src");
  const int64_t r = src.size(0), c = src.size(1), C = dst.size(1);
  check_range(row, r, dst.size(0), "put_block", "rows");
  check_range(col, c, C, "put_block", "columns");
  if (c == C) {  // whole rows: one contiguous copy
    std::memcpy(dst.data<float>() + row * C, src.data<float>(), src.nbytes());
    return;
  }
  for (int64_t i = 0; i < r; ++i)
    std::memcpy(dst.data<float>() + (row + i) * C + col, src.data<float>() + i * c, size_t(c) * sizeof(float));
}

}  // namespace tori::kernels
