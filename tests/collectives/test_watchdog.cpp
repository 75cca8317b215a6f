// The watchdog's verdict line (collectives/watchdog.hpp): what the reporting rank prints names the
// lost ranks with their hosts, and a whole host when every rank of it is lost.
#include <catch2/catch.hpp>

#include "collectives/watchdog.hpp"

using tori::collectives::watchdog::Cause;
using tori::collectives::watchdog::Verdict;

namespace {
Verdict verdict(Cause cause, std::vector<int> missing) {
  Verdict v;
  v.cause = cause;
  v.missing = std::move(missing);
  v.hosts = {"h0", "h0", "h1", "h1", "h2"};
  v.timeout_s = 5;
  return v;
}
}  // namespace

TEST_CASE("watchdog verdict: one rank of a host", "[watchdog]") {
  const Verdict v = verdict(Cause::stalled, {2});
  CHECK(v.line() == "lost rank 2 (host h1): no answer for 5 s (--timeout; a stopped, hung or unreachable peer); run aborted");
  CHECK(v.reason() == "peer_stalled");
  CHECK(v.missing_hosts() == std::vector<std::string>{"h1"});
}

TEST_CASE("watchdog verdict: a whole host, and a host's only rank", "[watchdog]") {
  const Verdict v = verdict(Cause::terminated, {2, 3, 4});
  CHECK(v.line().rfind("lost host h1 (ranks 2, 3); rank 4 (host h2): no answer while mpirun ends the job", 0) == 0);
  CHECK(v.reason() == "peer_lost");
  CHECK(v.missing_hosts() == std::vector<std::string>{"h1", "h2"});
}

TEST_CASE("watchdog verdict: an unreachable host", "[watchdog]") {
  const Verdict v = verdict(Cause::unreachable, {2, 3});
  CHECK(v.line() == "lost host h1 (ranks 2, 3): no answer to the watchdog for 4 s (the host died, its link is down, "
                    "or every process on it is stopped); run aborted");
  CHECK(v.reason() == "host_unreachable");
}

TEST_CASE("watchdog verdict: nobody missing", "[watchdog]") {
  CHECK(verdict(Cause::stalled, {}).reason() == "timeout_no_peer_missing");
  CHECK(verdict(Cause::stalled, {}).line().find("every rank answers") != std::string::npos);
  CHECK(verdict(Cause::terminated, {}).reason() == "terminated");
}

TEST_CASE("watchdog timeout: fixed, or the larger of the floor and 10 steps", "[watchdog]") {
  namespace wd = tori::collectives::watchdog;
  wd::set_timeout(std::chrono::milliseconds(0));
  CHECK(wd::timeout() == std::chrono::milliseconds(30000));
  wd::note_step(std::chrono::milliseconds(100));
  CHECK(wd::timeout() == std::chrono::milliseconds(30000));
  wd::note_step(std::chrono::milliseconds(4000));
  wd::note_step(std::chrono::milliseconds(200));  // the slowest step counts
  CHECK(wd::timeout() == std::chrono::milliseconds(40000));
  wd::set_timeout(std::chrono::milliseconds(2500));
  CHECK(wd::timeout() == std::chrono::milliseconds(2500));
  wd::set_timeout(std::chrono::milliseconds(0));
}
