#pragma once
// TorusShape and the pure coordinate maths of an X×Y×Z torus (no MPI; unit-tested alone).
//
// Rank order: a rank's world rank is the row-major index of its coordinates, z fastest:
//   rank = (x·Y + y)·Z + z          (MPI_Cart_create's order, with reorder off)
// Shard index along an axis set: the row-major index of the rank's coordinates restricted to the
// axes of the set, in x, y, z order (x most significant). For Axes::yz on a 2×4×2 torus the rank at
// (x, y, z) is shard y·2 + z of 8. This is the order in which all_gather concatenates,
// reduce_scatter hands out blocks and all_to_all splits and concatenates, and the member order of
// every axis sub-communicator; the sharding code relies on it.
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "collectives/axes.hpp"

namespace tori::collectives {

struct Coords {
  std::array<int, 3> c{0, 0, 0};
  int operator[](Axis a) const { return c[static_cast<int>(a)]; }
  int& operator[](Axis a) { return c[static_cast<int>(a)]; }
  bool operator==(const Coords&) const = default;
};

struct TorusShape {
  std::array<int, 3> dims{1, 1, 1};  // X, Y, Z

  int operator[](Axis a) const { return dims[static_cast<int>(a)]; }
  int ranks() const { return dims[0] * dims[1] * dims[2]; }
  // Number of ranks in one group along `axes` (1 for the empty set).
  int group_size(Axes axes) const;
  std::string str() const;  // "2x2x2"
  bool operator==(const TorusShape&) const = default;

  // Parses "XxYxZ" (each a positive integer). Throws tori::InputError naming `what`.
  static TorusShape parse(std::string_view s, std::string_view what = "--torus");
};

// The shape chosen for `ranks` when none is given. The paper's configurations are used as they are
// (8 → 2x2x2, 16 → 2x4x2, 32 → 4x2x4, 64 → 4x4x4, 128 → 8x4x4); any other count is factored
// by handing its prime factors, largest first, to the currently smallest axis (ties: x, then y,
// then z): 2 → 2x1x1, 3 → 3x1x1, 4 → 2x2x1, 6 → 3x2x1, 12 → 3x2x2.
TorusShape auto_torus_shape(int ranks);
// Every shape whose product is `ranks` (tests iterate over these), in lexicographic order.
std::vector<TorusShape> all_torus_shapes(int ranks);
// Parses a --torus value: "" or "auto" picks auto_torus_shape(ranks); otherwise XxYxZ, which must
// multiply to `ranks` (else tori::InputError naming both numbers).
TorusShape resolve_torus_shape(std::string_view flag, int ranks, std::string_view what = "--torus");

Coords coords_of(const TorusShape& shape, int rank);
int rank_of(const TorusShape& shape, Coords coords);
// This rank's index within its group along `axes` (see the header comment).
int shard_index(const TorusShape& shape, Coords coords, Axes axes);
// Coordinates of member `index` of the group along `axes` that contains `me` (inverse of
// shard_index: the axes outside the set keep my coordinates).
Coords member_coords(const TorusShape& shape, Coords me, Axes axes, int index);

}  // namespace tori::collectives
