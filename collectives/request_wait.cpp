#include "collectives/request_wait.hpp"

#include <algorithm>
#include <thread>

#include "collectives/mpi_check.hpp"

namespace tori::collectives {

void complete(MPI_Request* requests, int n) {
  if (n <= 0) return;
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto pause = std::chrono::microseconds(5);
  for (;;) {
    int done = 0;
    MPI_CHECK(MPI_Testall(n, requests, &done, MPI_STATUSES_IGNORE));
    if (done) return;
    if (clock::now() - start < kSpinPoll) continue;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, kMaxPoll);
  }
}

}  // namespace tori::collectives
