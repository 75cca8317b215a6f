#include "collectives/torus.hpp"

#include "collectives/mpi_check.hpp"

namespace tori::collectives {

namespace {
int world_size(MPI_Comm world) {
  int n = 0;
  MPI_CHECK(MPI_Comm_size(world, &n));
  return n;
}
}  // namespace

Torus::Torus(MPI_Comm world, std::string_view shape_flag)
    : Torus(world, resolve_torus_shape(shape_flag, world_size(world))) {}

Torus::Torus(MPI_Comm world, TorusShape shape) : shape_(shape) {
  comms_.fill(MPI_COMM_NULL);
  int n = world_size(world);
  if (shape_.ranks() != n)
    throw InputError("--torus: torus " + shape_.str() + " has " + std::to_string(shape_.ranks()) +
                     " chips but there are " + std::to_string(n) +
                     " MPI ranks (allowed: XxYxZ with X·Y·Z = " + std::to_string(n) + ", e.g. " +
                     auto_torus_shape(n).str() + ")");
  try {
    std::array<int, 3> periods{1, 1, 1};
    MPI_CHECK(MPI_Cart_create(world, 3, shape_.dims.data(), periods.data(), /*reorder=*/0, &cart_));
    MPI_CHECK(MPI_Comm_set_errhandler(cart_, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(cart_, &rank_));
    coords_ = coords_of(shape_, rank_);
    std::array<int, 3> mpi_coords{};
    MPI_CHECK(MPI_Cart_coords(cart_, rank_, 3, mpi_coords.data()));
    if (mpi_coords != coords_.c)
      throw Error("MPI_Cart_coords disagrees with Tori's row-major rank order on rank " +
                  std::to_string(rank_));
    // One split per axis set: colour = my position along the other axes, key = shard index.
    for (uint8_t bits = 0; bits < 8; ++bits) {
      Axes axes = Axes::from_bits(bits);
      int color = collectives::shard_index(shape_, coords_, axes.complement());
      MPI_CHECK(MPI_Comm_split(cart_, color, shard_index(axes), &comms_[bits]));
      MPI_CHECK(MPI_Comm_set_errhandler(comms_[bits], MPI_ERRORS_RETURN));
    }
  } catch (...) {
    release();
    throw;
  }
}

Torus::Torus(Torus&& o) noexcept
    : shape_(o.shape_), rank_(o.rank_), coords_(o.coords_), cart_(o.cart_), comms_(o.comms_) {
  o.cart_ = MPI_COMM_NULL;
  o.comms_.fill(MPI_COMM_NULL);
}

Torus::~Torus() { release(); }

void Torus::release() noexcept {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  for (MPI_Comm& c : comms_)
    if (c != MPI_COMM_NULL) MPI_Comm_free(&c);
  if (cart_ != MPI_COMM_NULL) MPI_Comm_free(&cart_);
}

int Torus::neighbour(Axis axis, int dir) const {
  Coords c = coords_;
  c[axis] = ((c[axis] + dir) % shape_[axis] + shape_[axis]) % shape_[axis];
  return rank_of(shape_, c);
}

}  // namespace tori::collectives
