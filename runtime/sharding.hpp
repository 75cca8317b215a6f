#pragma once
// Sharding: the paper's notation for how a tensor is split over torus axes, as a value.
//   "BLE_xyz"        activation [B, L, E], E split over x, y and z
//   "E_x F_yz"       weight [E, F], E split over x, F over y and z
//   "BLF_yz {x}"     [B, L, F] split over yz, each chip holding a partial sum over x
// A dimension is one capital letter (B L E F H K D T V); its axes follow an underscore, in
// shard order (major to minor); every torus axis appears at most once. str() prints the canonical
// form: activations (leading B) run letters together with a space after each subscript that
// another letter follows ("B_xyz LE"); weights separate every dimension ("E F_xyz"); partial-sum
// axes go in braces.
#include <cstdint>
#include <string>
#include <vector>

namespace tori::runtime {

struct ShardedDim {
  char dim = 'B';
  std::string axes;  // "" (replicated), "x", "yz", "xyz", ...
  bool operator==(const ShardedDim&) const = default;
};

class Sharding {
 public:
  Sharding() = default;
  Sharding(std::vector<ShardedDim> dims, std::string partial = "");
  // Throws tori::Error quoting the text for malformed notation.
  static Sharding parse(const std::string& text);

  const std::vector<ShardedDim>& dims() const { return dims_; }
  const std::string& partial() const { return partial_; }
  // Axes of dimension `dim` ("" if replicated); throws if the tensor has no such dimension.
  const std::string& axes_of(char dim) const;
  std::string str() const;
  bool operator==(const Sharding&) const = default;

  // Size of each shard along every dimension, for full sizes `full` (one per dim) on a torus with
  // axis sizes {X, Y, Z}. Throws tori::Error naming the dim, its axes and both sizes when a dim
  // does not divide evenly.
  std::vector<int64_t> shard_shape(const std::vector<int64_t>& full, const int64_t torus_xyz[3]) const;

 private:
  std::vector<ShardedDim> dims_;
  std::string partial_;
};

// Product of the torus sizes of `axes` ("yz" on 2x4x2 -> 8).
int64_t axes_size(const std::string& axes, const int64_t torus_xyz[3]);

}  // namespace tori::runtime
