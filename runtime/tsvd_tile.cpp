#include "runtime/tsvd_tile.hpp"

#include <set>

#include "collectives/torus_shape.hpp"
#include "kernels/error.hpp"
#include "models/weight_names.hpp"
#include "runtime/factored_weights.hpp"
#include "runtime/layer_shards.hpp"
#include "runtime/padded_weights.hpp"
#include "runtime/placement.hpp"

namespace tori::runtime {

namespace {

constexpr int64_t kCandidates[] = {256, 192, 128, 96, 64, 48, 32};

// The model's shapes and no weights: dense reads are zeros, the compressed tensors claim tile t and
// hand out rank-1 zero factors for boxes of whole tiles (nullopt otherwise, as TsvdWeights does).
class TileProbe final : public models::WeightSource {
 public:
  TileProbe(const models::ModelConfig& c, const std::vector<std::string>& names, int64_t t)
      : config_(c), names_(names.begin(), names.end()), tile_{t, t} {}
  const models::ModelConfig& config() const override { return config_; }
  kernels::Tensor read(const std::string&, const models::Box& box) const override {
    return kernels::Tensor(box.size, kernels::DType::f32);
  }
  std::optional<kernels::TileShape> factor_tile(const std::string& name) const override {
    if (!names_.count(name)) return std::nullopt;
    return tile_;
  }
  std::optional<kernels::TsvdFactors> read_factors(const std::string& name, const models::Box& box) const override {
    if (!names_.count(name)) return WeightSource::read_factors(name, box);
    if (!whole_tiles(box.start[0], box.size[0], tile_.rows) || !whole_tiles(box.start[1], box.size[1], tile_.cols))
      return std::nullopt;
    return zero_factors(box.size[0], box.size[1], tile_);
  }

 private:
  models::ModelConfig config_;
  std::set<std::string> names_;
  kernels::TileShape tile_;
};

bool divides_all(const models::ModelConfig& c, const std::vector<std::string>& names, int64_t t) {
  for (const auto& n : names) {
    const kernels::Shape s = models::find_tensor(c, n).shape;
    if (s[0] % t || s[1] % t) return false;
  }
  return true;
}

}  // namespace

std::string tsvd_tile_refusal(const models::ModelConfig& c, const std::vector<std::string>& names, int64_t t,
                              int max_ranks) {
  std::vector<std::string> layer0;  // every layer has layer 0's shapes
  for (const auto& n : names)
    if (n.starts_with("layers.0.")) layer0.push_back(n);
  const TileProbe probe(c, layer0, t);
  ShardOptions opt;
  opt.pack = false;
  opt.keep_plain = false;
  for (int n = 1; n <= max_ranks; n *= 2) {
    const collectives::TorusShape shape = collectives::auto_torus_shape(n);
    const int64_t batch = n;  // batch layouts need a batch that splits
    std::vector<PhasePlan> plans;
    try {
      plans = valid_phase_plans(c, shape, batch);
    } catch (const InputError&) {
      continue;  // the model does not run on n ranks at all (e.g. E not divisible)
    }
    const PaddedWeights padded(probe, n);
    for (const PhasePlan& p : plans)
      for (int r = 0; r < n; ++r) {
        try {
          load_layer_shard(padded, 0, make_placement(c, shape, collectives::coords_of(shape, r), p, batch), opt);
        } catch (const InputError& e) {
          return e.what();
        }
      }
  }
  return "";
}

int64_t default_tsvd_tile(const models::ModelConfig& c, const std::vector<std::string>& names, int max_ranks) {
  std::string allowed, refusal;
  for (int64_t t : kCandidates) {
    if (!divides_all(c, names, t)) continue;
    const std::string why = tsvd_tile_refusal(c, names, t, max_ranks);
    if (why.empty()) return t;
    allowed += (allowed.empty() ? "" : ", ") + std::to_string(t);
    refusal = why;
  }
  if (allowed.empty())
    throw InputError("--tile: no tile of 256, 192, 128, 96, 64, 48 or 32 divides every compressed matrix of " +
                     c.name + "; give --tile");
  throw InputError("--tile: no default tile of model " + c.name + " runs every layout on 1.." +
                   std::to_string(max_ranks) + " ranks: with the smallest, " + refusal +
                   ". Give --tile (allowed, dividing every compressed matrix: " + allowed +
                   ") and run it on the ranks and plans it divides");
}

}  // namespace tori::runtime
