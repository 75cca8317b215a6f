#pragma once
// complete(): finishing MPI requests without spinning a core. MPI_Wait in Open MPI 4.1 polls in a
// busy loop; on a box with fewer cores than threads (a rank's computing thread plus its progress
// thread, or more ranks than cores) that loop takes the CPU from the very compute the collective
// should overlap with. complete() polls MPI_Testall (which also drives MPI's progress) for a short
// spin, then sleeps between polls with a growing interval, capped so a finished transfer is seen
// within about kMaxPoll.
#include <chrono>

#include <mpi.h>

namespace tori::collectives {

// Busy polling before the first sleep: covers a partner that is already there (a shared-memory
// transfer of a few KiB completes in microseconds).
inline constexpr std::chrono::microseconds kSpinPoll{20};
// Longest sleep between polls: small next to the transfers overlap is about (a link-model ring
// step is ≥ 0.1 ms in every configuration we bench), large enough to leave the core to compute.
inline constexpr std::chrono::microseconds kMaxPoll{100};

// Completes all n requests (MPI_REQUEST_NULL entries are fine); throws on an MPI error.
void complete(MPI_Request* requests, int n);
inline void complete(MPI_Request& request) { complete(&request, 1); }

}  // namespace tori::collectives
