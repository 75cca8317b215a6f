#pragma once
// Torus: the MPI ranks arranged as a periodic X×Y×Z torus (one rank plays one chip). Built
// collectively from a world communicator; knows this rank's coordinates and holds one
// sub-communicator per axis set whose members are ordered by shard index (torus_shape.hpp), so
// rank r of comm(Axes::yz) is the rank whose (y, z) digits make shard r. All communicators return
// MPI errors (MPI_ERRORS_RETURN) for MPI_CHECK to turn into tori::Error.
#include <mpi.h>

#include <array>
#include <string_view>

#include "collectives/axes.hpp"
#include "collectives/torus_shape.hpp"

namespace tori::collectives {

class Torus {
 public:
  // Collective over `world`. Throws tori::InputError when shape.ranks() differs from its size.
  Torus(MPI_Comm world, TorusShape shape);
  // shape_flag is a --torus value: "" or "auto" (auto_torus_shape) or "XxYxZ".
  Torus(MPI_Comm world, std::string_view shape_flag);
  ~Torus();
  Torus(const Torus&) = delete;
  Torus& operator=(const Torus&) = delete;
  Torus(Torus&& o) noexcept;
  Torus& operator=(Torus&&) = delete;

  const TorusShape& shape() const { return shape_; }
  int rank() const { return rank_; }  // = rank_of(shape(), coords()) = rank in world and cart()
  int ranks() const { return shape_.ranks(); }
  Coords coords() const { return coords_; }
  int coord(Axis a) const { return coords_[a]; }

  // Ranks in my group along `axes`, and my shard index in it.
  int group_size(Axes axes) const { return shape_.group_size(axes); }
  int shard_index(Axes axes) const { return collectives::shard_index(shape_, coords_, axes); }
  // Rank (in world / cart()) of the neighbour `dir` (+1 / -1) steps along `axis`, wrapping.
  int neighbour(Axis axis, int dir) const;

  MPI_Comm cart() const { return cart_; }  // periodic Cartesian communicator, reorder off
  // Members of my group along `axes` (none: just me), ordered by shard index.
  MPI_Comm comm(Axes axes) const { return comms_[axes.bits()]; }

 private:
  void release() noexcept;
  TorusShape shape_;
  int rank_ = 0;
  Coords coords_;
  MPI_Comm cart_ = MPI_COMM_NULL;
  std::array<MPI_Comm, 8> comms_;  // indexed by Axes::bits()
};

}  // namespace tori::collectives
