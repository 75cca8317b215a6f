#pragma once
// OpenMP's wait policy when the host's cores are oversubscribed. libgomp reads OMP_WAIT_POLICY and
// GOMP_SPINCOUNT once, when it is loaded (before main), and by default spins ~300,000 times at every
// barrier and idle dock before it sleeps. When this host's ranks x threads exceed its cores, the
// thread a spinner waits for is often descheduled, and the spinner burns the time slice that thread
// needs (a 2-thread decode ran 10x slower: docs/measurements/gemma3.md). So tori, before anything
// else, decides the policy and, where it must change, re-executes itself once with it set:
//   - the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT: left alone;
//   - ranks on this host x threads per rank > cores, with >= 2 threads per rank: OMP_WAIT_POLICY=passive
//     (threads sleep at once; with 1 thread per rank OpenMP never waits, so nothing changes);
//   - otherwise libgomp's default (spinning is what a team on cores of its own wants); a passive
//     policy that tori itself set in a parent process (inherited, e.g. through `bench model`'s
//     mpirun) is removed again.
// The ranks on the host come from the launcher's environment (Open MPI: OMPI_COMM_WORLD_LOCAL_SIZE;
// MPICH/Hydra: MPI_LOCALNRANKS; none: 1), the threads from --threads in argv (absent or 0: cores /
// ranks, as runtime::apply_threads), the cores as runtime::cores_on_host. docs/launching.md.
#include <string>

namespace tori::launch {

// What settle_omp_wait_policy decided, for the log line.
struct WaitPolicyChoice {
  int ranks_on_host = 1, threads = 1, cores = 1;
  bool oversubscribed = false;
  std::string policy;  // the OMP_WAIT_POLICY libgomp runs with ("" = its default)
  std::string by;      // "user" (set in the environment), "tori" (set here) or "default"
};

// The decision alone, from the environment and argv (no side effects; tests and settle use it).
WaitPolicyChoice choose_omp_wait_policy(int argc, char** argv);
// Call first thing in main, before MPI_Init and before any thread starts: applies the choice,
// re-executing this program (same argv, same pid) when libgomp must read a different environment.
// Returns normally when no re-exec is needed (or when exec fails: then the policy stays as it was).
void settle_omp_wait_policy(int argc, char** argv);
// One debug line (rank 0) with the choice, after logging is set up.
void log_omp_wait_policy(int rank);

}  // namespace tori::launch
