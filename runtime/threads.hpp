#pragma once
// Per-rank compute threads. Default: cores on this host / ranks on this host, at least 1, so that
// several ranks on one box never oversubscribe its cores. Applied to oneDNN (OpenMP) and OpenBLAS.
#include <mpi.h>

namespace tori::runtime {

// Ranks sharing this rank's host (MPI_COMM_TYPE_SHARED) and cores this process may use.
int ranks_on_host(MPI_Comm comm);
int cores_on_host();
int default_threads(MPI_Comm comm);
// Sets the thread count for every backend; requested <= 0 means default_threads(comm).
int apply_threads(int requested, MPI_Comm comm);

}  // namespace tori::runtime
