#pragma once
// The largest value of a per-rank figure over every rank of `comm` (the slowest rank's time, the
// largest memory): what results report for a sharded run.
#include <mpi.h>

namespace tori::collectives {

inline double max_over_ranks(double v, MPI_Comm comm = MPI_COMM_WORLD) {
  double out = v;
  MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, comm);
  return out;
}

}  // namespace tori::collectives
