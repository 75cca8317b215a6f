#include <mpi.h>

#include <catch2/catch.hpp>

#include "runtime/threads.hpp"

using namespace tori::runtime;

TEST_CASE("default threads split the host's cores between its ranks", "[threads]") {
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  // All ranks of a ctest run share this host.
  CHECK(ranks_on_host(MPI_COMM_WORLD) == world);
  int t = default_threads(MPI_COMM_WORLD);
  CHECK(t >= 1);
  CHECK(t == std::max(1, cores_on_host() / world));
  CHECK(apply_threads(3, MPI_COMM_WORLD) == 3);
  CHECK(apply_threads(0, MPI_COMM_WORLD) == t);
}
