#pragma once
// The watchdog on collective waits: what a rank does when a peer stops answering.
//
// Open MPI does not time out a peer that stops answering: a rank blocked in a collective with a
// stopped (SIGSTOP), unreachable (link down) or hung peer waits forever. And when a process or a
// whole host dies, mpirun ends the job with SIGTERM, but names the lost rank only for a process
// that died alone (a lost host shows as "ORTE was unable to reliably start one or more daemons").
// So every blocking wait of the collectives (poll_until in request_wait.hpp, the shared-memory
// ring's futex sleep) runs under a Wait, which knows when the wait began, and every rank runs a
// watchdog thread that sleeps in poll() on a UDP socket of its own:
//
//  - Hot path: each poll of a wait compares the wait's age with kLongWait (the poll loop reads the
//    clock anyway): no system call, no MPI call, no shared write. Entering and leaving a Wait is
//    one relaxed atomic add each.
//  - A wait older than the timeout, or a SIGTERM (mpirun ends the job after a process or host
//    died; wherever the rank is: in a collective, computing, or blocked in MPI outside the
//    collectives), asks the watchdog thread for a verdict (an eventfd write).
//  - Probing: while a wait is longer than kLongWait, the watchdog thread pings every rank of the
//    other hosts (UDP, every 250 ms), and every watchdog thread answers a ping at once. A host none
//    of whose ranks answered for kNoAnswer is unreachable (powered off, link down, every process on
//    it stopped): a verdict at once, without waiting for the timeout or for mpirun, which notices
//    a silent host only through its own TCP keepalive, after 4 to 30 s or never. A single silent
//    rank on a host that answers is a hung peer: the timeout judges it.
//  - Verdict: the thread sends a notice to every other rank's socket (addresses gathered at
//    start(); UDP, not MPI, because Open MPI ends a process that talks to a dead peer) and collects
//    theirs for kVerdictGrace. Every watchdog thread answers a notice at once by joining the
//    verdict, even while its rank computes or is stuck inside MPI. Ranks that did not answer are
//    the lost or stalled ones. The lowest answering rank prints ONE line naming them and their
//    hosts (hostnames gathered at start()) through the Reporter (text on stderr, a JSON record
//    with --json); every rank in the verdict then leaves at once with kExitPeerLost (_exit: no
//    destructor may wait on the dead peer, and no partial result is printed as if complete).
//  - A rank that Open MPI itself ends because a peer hung up (it exits without MPI_Finalize)
//    sends a notice on its way out (atexit), so it is not counted as lost; unless the daemon that
//    started it is gone (its parent changed): then it went down with its host and stays silent.
//  - A second SIGTERM, or a SIGTERM to a single-rank run, takes the default action.
//  - A rank that was itself stopped (its watchdog thread saw a gap in its own ticks) stays silent
//    from then on: it cannot tell who is missing.
//  - stop() says bye to every rank, so nobody probes a rank that finished normally. Before it,
//    barrier_asleep() meets every rank under probing: a host that freezes while the others
//    finish (they used to sit in MPI_Finalize, unwatched, for ever) is found there as anywhere else.
//
// Timeout: --timeout S (fixed), or automatic: max(kTimeoutFloor, kStepMultiple × the slowest
// generation step so far, note_step()). Measured figures: docs/measurements/cluster.md.
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace tori::collectives::watchdog {

using Clock = std::chrono::steady_clock;

// Exit status of every rank that leaves through a verdict (1: failure, 2: bad input).
constexpr int kExitPeerLost = 3;
// Waits shorter than this never leave the hot path.
inline constexpr std::chrono::milliseconds kLongWait{1000};
// How long a verdict collects answers. Below Open MPI's 1 s between its SIGTERM and SIGKILL
// (odls_base_sigkill_timeout), so a rank terminated by mpirun still reports before it is killed.
inline constexpr std::chrono::milliseconds kVerdictGrace{600};
// Automatic timeout: max(floor, multiple × slowest step). The floor covers what comes before the
// first step (prefill, a rank still loading its shards while the others wait in the first
// collective); the multiple, a step that is slow because the machine is busy.
inline constexpr std::chrono::seconds kTimeoutFloor{30};
inline constexpr int kStepMultiple = 10;
// Probing: a host whose ranks all stay silent this long is unreachable. Far above any scheduling
// delay of a watchdog thread (it only sleeps in poll()), far below the 10 s a failure may take.
inline constexpr std::chrono::seconds kNoAnswer{4};

enum class Cause {
  stalled,     // a wait outlived the timeout
  terminated,  // SIGTERM while waiting (mpirun ends the job: a process or a host died; or ^C)
  aborted,     // (notice only) the sender reported its own error and aborts the job: stay silent
  unreachable, // probing: every rank of another host stopped answering for kNoAnswer
};

// What the reporting rank prints.
struct Verdict {
  Cause cause = Cause::stalled;
  std::vector<int> missing;         // ranks that did not answer, ascending
  std::vector<std::string> hosts;   // hostname of every rank (index = rank)
  double timeout_s = 0;
  std::string line() const;         // the one line (without the "tori: error: " prefix)
  std::string reason() const;       // peer_stalled | peer_lost | host_unreachable | timeout_no_peer_missing | terminated
  std::vector<std::string> missing_hosts() const;  // their hosts, each once, ascending
};

using Reporter = std::function<void(const Verdict&)>;

// Collective over world: gathers every rank's hostname, duplicates world for the notices, posts
// their receives and installs the SIGTERM handler. The reporter runs on the reporting rank only.
void start(MPI_Comm world, Reporter reporter);
// Cancels the notice receives and frees the communicator (before MPI_Finalize). Not collective.
void stop();
bool started();
// A barrier of world that waits asleep (MPI_Ibarrier polled every 10 ms), so the waiting ranks leave
// the cores to one that works alone (rank 0's calibration or single-process reference), and every
// rank meets here at the end of a run (main, before stop()). After start(), the watchdog probes the
// other hosts during a long wait (a silent host: the unreachable verdict); there is no stall
// timeout: a peer may legitimately work alone for minutes.
void barrier_asleep(MPI_Comm world);
// This rank printed its own error and is about to MPI_Abort: tells the others' watchdogs to stay
// silent when mpirun terminates them (one line, the aborting rank's), then stop()s.
void announce_abort();
// Fixed timeout (--timeout); zero or negative: automatic.
void set_timeout(std::chrono::milliseconds t);
// The timeout in force now.
std::chrono::milliseconds timeout();
// A generation step took this long (feeds the automatic timeout).
void note_step(Clock::duration step);
// The hostname of a rank of world (start() gathered them); "?" before start().
const std::string& host_of(int rank);

namespace detail {
void long_wait(Clock::time_point since, Clock::time_point now);
void enter(Clock::time_point since);
void leave();
}  // namespace detail

// One blocking wait. check(now) on every poll.
class Wait {
 public:
  explicit Wait(Clock::time_point since = Clock::now()) : since_(since) { detail::enter(since); }
  ~Wait() { detail::leave(); }
  Wait(const Wait&) = delete;
  Wait& operator=(const Wait&) = delete;
  void check(Clock::time_point now) const {
    if (now - since_ >= kLongWait) [[unlikely]] detail::long_wait(since_, now);
  }

 private:
  Clock::time_point since_;
};

}  // namespace tori::collectives::watchdog
