#include "launch/exit_guard.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

#include "kernels/error.hpp"
#include "kernels/record.hpp"

namespace tori::launch {

namespace {
// How long a failing rank waits for the others to report the same failure before it aborts the
// job. Identical input checks on all ranks finish within milliseconds of each other; 2 s is long
// enough for a loaded, oversubscribed machine and short enough to count as "promptly".
constexpr auto kAgreementGrace = std::chrono::milliseconds(2000);
}  // namespace

ExitGuard::ExitGuard(MPI_Comm world) : world_(world) {
  MPI_Comm_rank(world_, &rank_);
  MPI_Comm_dup(world_, &agree_);
}

ExitGuard::~ExitGuard() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && agree_ != MPI_COMM_NULL) MPI_Comm_free(&agree_);
}

int ExitGuard::run(const std::function<int()>& body) {
  try {
    return body();
  } catch (const CLI::ParseError& e) {
    // CLI11: --help is a "success" parse error; print it (or the usage error) on rank 0 only.
    if (e.get_exit_code() == 0) {
      return 0;
    }
    return fail(e.what(), kExitInputError);
  } catch (const InputError& e) {
    return fail(e.what(), kExitInputError);
  } catch (const std::exception& e) {
    return fail(e.what(), kExitFailure);
  }
}

void report_verdict(const collectives::watchdog::Verdict& v, bool json) {
  const std::string line = v.line();
  std::fprintf(stderr, "tori: error: %s\n", line.c_str());
  std::fflush(stderr);
  if (json)
    kernels::emit({{"aborted", true},
                   {"reason", v.reason()},
                   {"lost_ranks", v.missing},
                   {"lost_hosts", v.missing_hosts()},
                   {"timeout_s", v.timeout_s},
                   {"message", line}});
}

int ExitGuard::fail(const char* message, int code) {
  int mine = code, worst = 0;
  MPI_Request req;
  MPI_Iallreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, agree_, &req);
  auto deadline = std::chrono::steady_clock::now() + kAgreementGrace;
  int done = 0;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (done) {
    if (rank_ == 0) std::fprintf(stderr, "tori: error: %s\n", message);
    std::fflush(stderr);
    return worst;
  }
  // Not every rank failed: tell which rank saw what, then take the whole job down.
  std::fprintf(stderr, "tori: error on rank %d: %s\n", rank_, message);
  std::fflush(stderr);
  collectives::watchdog::announce_abort();  // the others' watchdogs stay silent: this line is the one
  MPI_Abort(world_, code);
  return code;
}

}  // namespace tori::launch
