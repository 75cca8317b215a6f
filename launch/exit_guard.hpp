#pragma once
// How a failing rank ends the job (docs/architecture.md "Conventions").
//
// Every rank runs the command body inside run_guarded(). When a rank catches an exception it joins
// a non-blocking agreement (MPI_Iallreduce on a communicator reserved for this at start-up):
//  - if every rank fails within the grace period (the usual case: bad flags, config or plan are
//    checked identically everywhere), rank 0 prints the message once and all ranks exit with the
//    same non-zero code after MPI_Finalize;
//  - if some rank does not join (a failure only it sees: a missing file on one host, an I/O error),
//    the failing rank prints its message with its rank and calls MPI_Abort, so nobody is left
//    waiting in a collective.
//
// A failure the rank does not see as an exception (a peer that died, stopped or became unreachable
// while this rank waits for it in a collective) is the watchdog's (collectives/watchdog.hpp): it
// ends the rank with kExitPeerLost after report_verdict() printed the one line on one rank.
#include <mpi.h>

#include <functional>

#include "collectives/watchdog.hpp"

namespace tori::launch {

constexpr int kExitInputError = 2;  // bad flag, key, file or value
constexpr int kExitFailure = 1;     // anything else that went wrong
constexpr int kExitPeerLost = collectives::watchdog::kExitPeerLost;  // a peer was lost or stalled (3)

// The watchdog's reporter: "tori: error: <line>" on stderr and, with --json, a record on stdout
// ({"aborted": true, "reason", "lost_ranks", "lost_hosts", "timeout_s", "message"}) so a reader of
// the records sees that the run did not complete and why.
void report_verdict(const collectives::watchdog::Verdict& v, bool json);

class ExitGuard {
 public:
  // Duplicates world for the agreement; call after MPI_Init.
  explicit ExitGuard(MPI_Comm world);
  ~ExitGuard();
  // Runs body; returns its exit code, or the agreed failure code. May not return (MPI_Abort).
  int run(const std::function<int()>& body);

 private:
  int fail(const char* message, int code);
  MPI_Comm world_;
  MPI_Comm agree_ = MPI_COMM_NULL;
  int rank_ = 0;
};

}  // namespace tori::launch
