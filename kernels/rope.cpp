#include "kernels/rope.hpp"

#include <cmath>

#include "kernels/cpu_features.hpp"

namespace tori::kernels {

namespace {

TORI_SIMD_CLONES void rope_head(float* x, const float* c, const float* s, int64_t half) {
#pragma omp simd
  for (int64_t i = 0; i < half; ++i) {
    const float x0 = x[i], x1 = x[i + half];
    x[i] = x0 * c[i] - x1 * s[i];
    x[i + half] = x0 * s[i] + x1 * c[i];
  }
}

// Returns X (elements per row) after checking x, positions and D.
int64_t check(const Tensor& x, std::span<const int64_t> positions, int64_t D, const char* op) {
  if (D <= 0 || D % 2)
    throw Error(std::string(op) + ": d_head must be even and positive, got " + std::to_string(D));
  const int64_t R = static_cast<int64_t>(positions.size());
  if (x.dtype() != DType::f32 || (R == 0 && x.numel() != 0) || (R && x.numel() % R) ||
      (R && (x.numel() / R) % D))
    throw Error(std::string(op) + ": x " + std::string(dtype_name(x.dtype())) + " " +
                shape_str(x.shape()) + " is not f32 rows of whole heads of D = " + std::to_string(D) +
                " for " + std::to_string(R) + " positions");
  return R ? x.numel() / R : 0;
}

}  // namespace

RopeTable::RopeTable(int64_t max_pos, int64_t d_head, double theta)
    : max_pos_(max_pos), d_head_(d_head) {
  if (d_head <= 0 || d_head % 2 || max_pos < 0)
    throw Error("RopeTable: d_head must be even and positive and max_pos >= 0, got d_head = " +
                std::to_string(d_head) + ", max_pos = " + std::to_string(max_pos));
  const int64_t half = d_head / 2;
  cos_.resize(size_t(max_pos * half));
  sin_.resize(size_t(max_pos * half));
  for (int64_t i = 0; i < half; ++i) {
    const double freq = std::pow(theta, -2.0 * double(i) / double(d_head));
    for (int64_t p = 0; p < max_pos; ++p) {
      cos_[size_t(p * half + i)] = float(std::cos(double(p) * freq));
      sin_[size_t(p * half + i)] = float(std::sin(double(p) * freq));
    }
  }
}

// Fewer values than this rotate on the calling thread (decode: one row of a few heads), sparing the
// team's fork and join.
constexpr int64_t kRopeSerialBelow = 1 << 14;

void rope(Tensor& x, std::span<const int64_t> positions, const RopeTable& table) {
  const int64_t D = table.d_head(), X = check(x, positions, D, "rope"), half = D / 2;
  const int64_t R = static_cast<int64_t>(positions.size());
  for (int64_t p : positions)
    if (p < 0 || p >= table.max_pos())
      throw Error("rope: position " + std::to_string(p) + " outside the table [0, " +
                  std::to_string(table.max_pos()) + ")");
  float* data = x.data<float>();
#pragma omp parallel for schedule(static) if (R * X >= kRopeSerialBelow)
  for (int64_t r = 0; r < R; ++r) {
    const float* c = table.cos_row(positions[size_t(r)]);
    const float* s = table.sin_row(positions[size_t(r)]);
    for (int64_t h = 0; h < X / D; ++h) rope_head(data + r * X + h * D, c, s, half);
  }
}

void rope_ref(Tensor& x, std::span<const int64_t> positions, int64_t D, double theta) {
  const int64_t X = check(x, positions, D, "rope_ref"), half = D / 2;
  float* data = x.data<float>();
  for (size_t r = 0; r < positions.size(); ++r)
    for (int64_t h = 0; h < X / D; ++h) {
      float* v = data + int64_t(r) * X + h * D;
      for (int64_t i = 0; i < half; ++i) {
        const double a = double(positions[r]) * std::pow(theta, -2.0 * double(i) / double(D));
        const double c = std::cos(a), s = std::sin(a), x0 = v[i], x1 = v[i + half];
        v[i] = float(x0 * c - x1 * s);
        v[i + half] = float(x0 * s + x1 * c);
      }
    }
}

}  // namespace tori::kernels
