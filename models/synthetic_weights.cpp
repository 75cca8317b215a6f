#include "models/synthetic_weights.hpp"

#include <cmath>

#include "kernels/error.hpp"
#include "kernels/counter_hash.hpp"

namespace tori::models {

uint64_t tensor_name_hash(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : name) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return h;
}

float synthetic_unit(uint64_t seed, uint64_t name_hash, uint64_t index) {
  uint64_t bits = kernels::splitmix64(kernels::splitmix64(seed ^ kernels::splitmix64(name_hash)) + index);
  // 24 random bits -> u in [0, 1) exactly representable in f32; map to [-sqrt3, sqrt3).
  float u = static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);
  return (2.0f * u - 1.0f) * 1.7320508075688772f;
}

kernels::Tensor WeightSource::read_full(const std::string& name) const {
  return read(name, Box::full(find_tensor(config(), name).shape));
}

std::optional<kernels::TsvdFactors> WeightSource::read_factors(const std::string& name, const Box&) const {
  throw Error("tensor '" + name + "' is not factored in this weight source");
}

kernels::Tensor SyntheticWeights::read(const std::string& name, const Box& box) const {
  TensorSpec spec = find_tensor(config_, name);
  const auto& full = spec.shape;
  const size_t r = full.size();
  if (box.start.size() != r || box.size.size() != r)
    throw Error("shard of '" + name + "': box rank differs from tensor shape " + kernels::shape_str(full));
  for (size_t d = 0; d < r; ++d)
    if (box.start[d] < 0 || box.size[d] < 0 || box.start[d] + box.size[d] > full[d])
      throw Error("shard of '" + name + "': box start " + kernels::shape_str(box.start) + " size " +
                  kernels::shape_str(box.size) + " outside " + kernels::shape_str(full));
  kernels::Tensor out = kernels::Tensor::empty(box.size, kernels::DType::f32);
  float* o = out.data<float>();
  const uint64_t h = tensor_name_hash(name);
  // Row-major strides of the full tensor; iterate the box with an odometer over its indices.
  std::vector<int64_t> stride(r, 1);
  for (size_t d = r; d-- > 1;) stride[d - 1] = stride[d] * full[d];
  std::vector<int64_t> idx(r, 0);
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n; ++i) {
    int64_t flat = 0;
    for (size_t d = 0; d < r; ++d) flat += (box.start[d] + idx[d]) * stride[d];
    o[i] = spec.offset + spec.scale * synthetic_unit(seed_, h, static_cast<uint64_t>(flat));
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < box.size[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

}  // namespace tori::models
