#pragma once
// Rotary position embedding, rotate-half convention (Hugging Face Llama/Falcon, and
// models/reference_model.cpp): for each D-sized head and i < D/2, the pair (x[i], x[i + D/2]) is
// rotated by angle pos * theta^(-2i/D).
// x is viewed as [R, X] with R = positions.size(): every D-sized head in row r uses positions[r]
// (so [B*L, H*D], [B, L, H, D] and [B, L, K*D] all work). In place.
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/tensor.hpp"

namespace tori::kernels {

// cos/sin of every (position, i), computed once in f64 at load time, so the per-token work is a
// vectorised multiply-add with no trigonometry.
class RopeTable {
 public:
  RopeTable(int64_t max_pos, int64_t d_head, double theta);
  int64_t max_pos() const { return max_pos_; }
  int64_t d_head() const { return d_head_; }
  const float* cos_row(int64_t pos) const { return cos_.data() + pos * (d_head_ / 2); }
  const float* sin_row(int64_t pos) const { return sin_.data() + pos * (d_head_ / 2); }

 private:
  int64_t max_pos_, d_head_;
  std::vector<float> cos_, sin_;  // [max_pos, D/2]
};

void rope(Tensor& x, std::span<const int64_t> positions, const RopeTable& table);
// f64 trigonometry per element, as the reference model.
void rope_ref(Tensor& x, std::span<const int64_t> positions, int64_t d_head, double theta);

}  // namespace tori::kernels
