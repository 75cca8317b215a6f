#include "collectives/request_wait.hpp"

#include <sched.h>
#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "collectives/mpi_check.hpp"
#include "collectives/watchdog.hpp"

namespace tori::collectives {

namespace {
std::atomic<bool> g_spin_allowed{false};
std::atomic<int> g_blocked{0};  // threads inside an UrgentWait
std::mutex g_mutex;             // with g_wake: wakes sleeping pollers when a thread blocks
std::condition_variable g_wake;

bool urgent() { return g_blocked.load(std::memory_order_relaxed) > 0; }
bool spin_now() { return g_spin_allowed.load(std::memory_order_relaxed) && urgent(); }
}  // namespace

void set_spin_allowed(bool allowed) { g_spin_allowed = allowed; }
bool spin_allowed() { return g_spin_allowed; }

UrgentWait::UrgentWait() {
  if (g_blocked.fetch_add(1) == 0) {
    std::lock_guard lock(g_mutex);  // a poller between its check and its wait sees the change
    g_wake.notify_all();
  }
}

UrgentWait::~UrgentWait() { g_blocked.fetch_sub(1); }

void poll_until(const std::function<bool()>& done) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const watchdog::Wait wait(start);  // a peer that never answers ends the run (watchdog.hpp)
  auto pause = std::chrono::microseconds(5);
  std::optional<clock::time_point> urgent_since;  // when this poll loop first saw an urgent wait
  for (;;) {
    if (done()) return;
    const auto now = clock::now();
    wait.check(now);
    if (spin_now() || now - start < kSpinPoll) continue;
    // Oversubscribed: while urgent (for at most kYieldPoll of urgency), hand the core over and
    // poll again at once.
    if (!urgent()) {
      urgent_since.reset();
    } else {
      if (!urgent_since) urgent_since = now;
      if (now - *urgent_since < kYieldPoll) {
        sched_yield();
        continue;
      }
    }
    {
      std::unique_lock lock(g_mutex);
      g_wake.wait_for(lock, pause, [&] { return urgent() && (spin_now() || !urgent_since); });
    }
    pause = std::min(pause * 2, kMaxPoll);
  }
}

void complete(MPI_Request* requests, int n) {
  if (n <= 0) return;
  poll_until([&] {
    int done = 0;
    MPI_CHECK(MPI_Testall(n, requests, &done, MPI_STATUSES_IGNORE));
    return done != 0;
  });
}

void tighten_timer_slack() { prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL); }

}  // namespace tori::collectives
