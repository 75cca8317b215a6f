#include "runtime/padded_weights.hpp"

#include <functional>

#include "kernels/error.hpp"
#include "kernels/take.hpp"
#include "models/weight_names.hpp"
#include "runtime/factored_weights.hpp"

namespace tori::runtime {

using kernels::Tensor;
using models::Box;

namespace {

// Which dimension of a tensor is padded, and how a padded index along it maps to the real one
// (-1: padding, reads as zero).
struct PaddedDim {
  int dim = -1;  // -1: nothing padded
  std::function<int64_t(int64_t)> real;
};

PaddedDim padded_dim(const std::string& name, const Padding& p, int64_t D) {
  auto heads = [&p, D](int64_t i) {
    const int64_t h = p.real_head(i / D);
    return h < 0 ? int64_t(-1) : h * D + i % D;
  };
  auto kv_heads = [&p, D](int64_t i) {
    const int64_t k = p.real_kv_head(i / D);
    return k < 0 ? int64_t(-1) : k * D + i % D;
  };
  auto below = [](int64_t n) { return [n](int64_t i) { return i < n ? i : int64_t(-1); }; };
  if (name == "embed") return {0, below(p.vocab)};      // [V, E]
  if (name == "unembed") return {1, below(p.vocab)};    // [E, V]
  if (!name.starts_with("layers.")) return {};
  const std::string what = name.substr(name.find('.', 7) + 1);
  if (what == "wq") return {1, heads};                 // [E, H·D]
  if (what == "wo") return {0, heads};                 // [H·D, E]
  if (what == "wk" || what == "wv") return {1, kv_heads};  // [E, K·D]
  if (what == "w_in" || what == "w_gate") return {1, below(p.d_ff)};  // [E, F]
  if (what == "w_out") return {0, below(p.d_ff)};     // [F, E]
  return {};
}

}  // namespace

PaddedWeights::PaddedWeights(const models::WeightSource& real, int64_t shards)
    : real_(real), padding_(plan_padding(real.config(), shards)), config_(padded_config(real.config(), shards)) {}

namespace {

// The padded dimension's runs inside a box: [k, k + run) of the box maps to real indices
// [real, real + run), or to padding (real = -1).
struct Run {
  int64_t k = 0, run = 0, real = -1;
};
std::vector<Run> padded_runs(const PaddedDim& pd, int64_t first, int64_t len) {
  std::vector<Run> runs;
  for (int64_t k = 0; k < len;) {
    const int64_t r0 = pd.real(first + k);
    int64_t run = 1;
    if (r0 >= 0)
      while (k + run < len && pd.real(first + k + run) == r0 + run) ++run;
    else
      while (k + run < len && pd.real(first + k + run) < 0) ++run;
    runs.push_back({k, run, r0});
    k += run;
  }
  return runs;
}

}  // namespace

std::optional<kernels::TsvdFactors> PaddedWeights::read_factors(const std::string& name, const Box& box) const {
  const PaddedDim pd = padded_dim(name, padding_, config_.d_head);
  if (pd.dim < 0 || !padding_.any()) return real_.read_factors(name, box);
  const std::optional<kernels::TileShape> tile = real_.factor_tile(name);
  if (!tile) return real_.read_factors(name, box);  // throws: not factored
  const int d = pd.dim;
  const int64_t t = d == 0 ? tile->rows : tile->cols;
  std::vector<kernels::TsvdFactors> parts;
  for (const Run& r : padded_runs(pd, box.start[size_t(d)], box.size[size_t(d)])) {
    if (!whole_tiles(r.k, r.run, t)) return std::nullopt;
    Box part = box;
    part.size[size_t(d)] = r.run;
    if (r.real < 0) {
      if (!whole_tiles(0, box.size[size_t(1 - d)], d == 0 ? tile->cols : tile->rows)) return std::nullopt;
      parts.push_back(zero_factors(part.size[0], part.size[1], *tile));
      continue;
    }
    part.start[size_t(d)] = r.real;
    std::optional<kernels::TsvdFactors> f = real_.read_factors(name, part);
    if (!f) return std::nullopt;
    parts.push_back(std::move(*f));
  }
  return join_factors(parts, d);
}

Tensor PaddedWeights::read(const std::string& name, const Box& box) const {
  const PaddedDim pd = padded_dim(name, padding_, config_.d_head);
  if (pd.dim < 0 || !padding_.any()) return real_.read(name, box);
  const models::TensorSpec spec = models::find_tensor(config_, name);  // the padded shape
  if (box.start.size() != 2 || box.size.size() != 2)
    throw Error("shard of '" + name + "' has the wrong rank for " + kernels::shape_str(spec.shape));
  for (size_t d = 0; d < 2; ++d)
    if (box.start[d] < 0 || box.size[d] < 0 || box.start[d] + box.size[d] > spec.shape[d])
      throw Error("shard of '" + name + "' outside its padded shape " + kernels::shape_str(spec.shape));
  // [box rows, box cols], zero-filled; each run of padded indices mapping to consecutive real
  // indices along the padded dimension is one read of the real tensor.
  Tensor out(box.size, kernels::DType::f32);
  const int d = pd.dim;
  const int64_t first = box.start[size_t(d)], len = box.size[size_t(d)];
  for (const Run& r : padded_runs(pd, first, len))
    if (r.real >= 0) {
      Box part = box;
      part.start[size_t(d)] = r.real;
      part.size[size_t(d)] = r.run;
      kernels::put_block(out, d == 0 ? r.k : 0, d == 0 ? 0 : r.k, real_.read(name, part));
    }
  return out;
}

}  // namespace tori::runtime
