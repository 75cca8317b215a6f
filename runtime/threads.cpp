#include "runtime/threads.hpp"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <thread>

#include <spdlog/spdlog.h>

#include "collectives/mpi_check.hpp"
#include "collectives/request_wait.hpp"

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
  // mpirun binds each rank to one core by default when it starts 1 or 2 ranks: n threads on one
  // core run several times slower than on n cores (palm-tiny decode, 1 rank, 2 threads: 1.7 ms
  // against 0.32 ms). Widening the mask here lets the threads spread, but OpenMP sized its idle
  // spinning from the mask when it loaded (it sleeps sooner when threads exceed cores), so the
  // binding is still worth fixing at the mpirun line.
  cpu_set_t set;
  CPU_ZERO(&set);
  const int cores = cores_on_host();
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) < std::min(n, cores)) {
    const int bound = CPU_COUNT(&set);
    CPU_ZERO(&set);
    for (int c = 0; c < cores && c < CPU_SETSIZE; ++c) CPU_SET(c, &set);
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    if (sched_setaffinity(0, sizeof(set), &set) == 0 && rank == 0)  // mpirun binds every rank alike: say it once
      spdlog::warn("threads: mpirun bound this rank to {} core(s) for {} threads; widened, but it runs best when "
                   "started with mpirun --bind-to none (or --map-by ppr:R:node:PE={}, or launch/tori-mpirun)",
                   bound, n, n);
  }
  // A rank blocked on a collective may spin on it when the host's ranks x threads fit its cores.
  collectives::set_spin_allowed(ranks_on_host(comm) * n <= cores);
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
  return n;
}

}  // namespace tori::runtime
