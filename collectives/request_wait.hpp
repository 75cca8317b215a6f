#pragma once
// complete(): finishing MPI requests without stealing a core that compute needs. MPI_Wait in
// Open MPI 4.1 polls in a busy loop; on a box with fewer cores than threads (a rank's computing
// thread plus its progress thread, or more ranks than cores) that loop takes the CPU from the very
// compute the collective should overlap with. So complete() polls MPI_Testall (which also drives
// MPI's progress) for a short spin, then sleeps between polls with a growing interval, capped so a
// finished transfer is seen within about kMaxPoll.
//
// Except when nobody is computing: while a thread of this process is blocked on a collective
// (UrgentWait: Pending::wait, a blocking collective on the caller's thread) its core is idle, and
// if the host's ranks × threads fit its cores (set_spin_allowed, from main) no other rank needs
// it either, so complete() spins: a sleep here wakes tens of µs late (a VM's timers), which on a
// decode step of a few hundred µs with a dozen collectives was most of the exposed communication.
// A poller asleep when a thread starts blocking is woken at once.
//
// When the host's ranks × threads exceed its cores (no spinning), a thread of this process
// blocked still means the wait is urgent: complete() then polls with sched_yield() between polls,
// for up to kYieldPoll, before it falls back to sleeping. A yield hands the core to whichever
// thread is runnable (another rank's compute, or the peer this transfer waits for) and returns
// at once when none is, whereas a sleeping poller saw each protocol step of a transfer (Open MPI
// advances shared-memory transfers only inside MPI calls, on both sides) up to kMaxPoll late, plus
// a wake-up. Measured (docs/measurements/overlap.md): 4 ranks on 2 cores, ws2d decode without a link model,
// 84-92 -> 59-77 ms per step with --overlap none and 117-134 -> 86-115 ms with looped. The cap
// (per request completion) keeps a rank that waits long (a peer running the single-process
// reference) from taking turns for seconds.
//
// tighten_timer_slack(): Linux lets a sleep of a normal thread end up to 50 µs late (timer slack)
// to batch wake-ups; the polls above and the link model's holds (link_model.hpp) want their sleeps
// on time, so main sets 1 µs for itself and every thread it starts afterwards.
#include <chrono>
#include <functional>

#include <mpi.h>

namespace tori::collectives {

// Busy polling before the first sleep: covers a partner that is already there (a shared-memory
// transfer of a few KiB completes in microseconds).
inline constexpr std::chrono::microseconds kSpinPoll{20};
// Longest sleep between polls: small next to the transfers overlap is about (a link-model ring
// step is ≥ 0.1 ms in every configuration we bench), large enough to leave the core to compute.
inline constexpr std::chrono::microseconds kMaxPoll{100};
// Longest yield-polling of an urgent wait on an oversubscribed host (above): a few ring steps of
// a decode layer, far below a wait for a peer doing something else entirely.
inline constexpr std::chrono::milliseconds kYieldPoll{5};

// Polls done() with the policy above (spin, yield when urgent and oversubscribed, else sleep
// between polls) until it returns true. done() must be cheap; it may throw.
void poll_until(const std::function<bool()>& done);

// Completes all n requests (MPI_REQUEST_NULL entries are fine); throws on an MPI error.
void complete(MPI_Request* requests, int n);
inline void complete(MPI_Request& request) { complete(&request, 1); }

// Whether complete() may spin while a thread is blocked (default false: always polite).
void set_spin_allowed(bool allowed);
bool spin_allowed();

// Marks, for its lifetime, that a thread of this process is blocked on a collective.
class UrgentWait {
 public:
  UrgentWait();
  ~UrgentWait();
  UrgentWait(const UrgentWait&) = delete;
  UrgentWait& operator=(const UrgentWait&) = delete;
};

// Sets the calling thread's timer slack to 1 µs (inherited by threads it creates later).
void tighten_timer_slack();

}  // namespace tori::collectives
