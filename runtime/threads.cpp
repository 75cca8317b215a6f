#include "runtime/threads.hpp"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <thread>

#include "collectives/mpi_check.hpp"

extern "C" void openblas_set_num_threads(int);

namespace tori::runtime {

int ranks_on_host(MPI_Comm comm) {
  MPI_Comm local;
  MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local));
  int n = 1;
  MPI_Comm_size(local, &n);
  MPI_Comm_free(&local);
  return n;
}

int cores_on_host() {
  cpu_set_t set;
  CPU_ZERO(&set);
  // Count the whole machine's cores, not this process's binding (mpirun may bind each rank to one).
  unsigned hw = std::thread::hardware_concurrency();
  if (hw > 0) return static_cast<int>(hw);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return 1;
}

int default_threads(MPI_Comm comm) {
  return std::max(1, cores_on_host() / std::max(1, ranks_on_host(comm)));
}

int apply_threads(int requested, MPI_Comm comm) {
  int n = requested > 0 ? requested : default_threads(comm);
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
  return n;
}

}  // namespace tori::runtime
