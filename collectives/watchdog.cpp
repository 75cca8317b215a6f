#include "collectives/watchdog.hpp"

#include <ifaddrs.h>
#include <net/if.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

namespace tori::collectives::watchdog {

namespace {

// The watchdog thread wakes this often; a longer gap means the process was stopped.
constexpr auto kTick = std::chrono::milliseconds(500);
constexpr auto kFrozenGap = std::chrono::seconds(2);
// A verdict repeats its notices this often (datagrams may be dropped by a full link).
constexpr auto kResend = std::chrono::milliseconds(100);
constexpr int kMaxAddresses = 4;
// Probing while a wait is long: a ping to every rank of the other hosts this often; a wait counts
// as long for this long after its last poll reported it.
constexpr auto kPingEvery = std::chrono::milliseconds(250);
constexpr auto kProbeWhile = std::chrono::milliseconds(300);
constexpr auto kProbeTick = std::chrono::milliseconds(50);
// Datagram kinds other than a verdict's Cause.
constexpr int32_t kPing = 100;  // "answer me": sent while this rank waits long
constexpr int32_t kPong = 101;  // the answer, sent by the watchdog thread at once
constexpr int32_t kBye = 102;   // this rank leaves normally (stop()): no answers from it any more

std::atomic<bool> g_started{false};
std::atomic<int> g_waiting{0};                  // threads inside a Wait
std::atomic<Clock::rep> g_last_wait_start{0};   // when the most recent Wait began
std::atomic<bool> g_signalled{false};          // a SIGTERM arrived while waiting
std::atomic<bool> g_peer_aborted{false};       // a peer announced its own error (announce_abort)
std::atomic<int> g_request{-1};                 // a Cause a wait or the SIGTERM handler asks for
std::atomic<int64_t> g_fixed_ms{0};             // --timeout; 0 = automatic
std::atomic<Clock::rep> g_slowest_step{0};
std::atomic<Clock::rep> g_long_wait_at{0};      // when a wait last reported being long
std::atomic<bool> g_judges{false};             // a watchdog thread runs and there are peers to judge
std::atomic<bool> g_was_frozen{false};         // this process was stopped: it cannot judge others
pid_t g_parent = 0;                             // the daemon that started this rank (getppid at start)

// Where a rank hears notices: a UDP port on each of its host's IPv4 addresses. Notices travel
// outside MPI on purpose: Open MPI ends a process that sends to (or reconnects to) a dead peer.
struct Endpoint {
  uint32_t addr[kMaxAddresses] = {};  // network order
  uint16_t port = 0;                  // network order
  uint16_t n = 0;
};
struct Notice {
  uint64_t job = 0;  // rank 0's random number: this run's notices only
  int32_t rank = -1;
  int32_t cause = -1;
};

// Touched by start()/stop() and, under g_state, by the notice polls and the verdict.
std::mutex g_state;
int g_socket = -1;
int g_event = -1;  // eventfd: wakes the watchdog thread (a request, or stop)
std::thread g_thread;
uint64_t g_job = 0;
int g_rank = 0, g_size = 1;
std::vector<std::string> g_hosts;
std::vector<Endpoint> g_endpoints;
std::vector<bool> g_heard;
std::vector<Clock::time_point> g_answered;  // last datagram of any kind from each rank (probing)
std::vector<bool> g_departed;               // ranks that said bye
int g_first_cause = -1;  // the cause of the first notice received
Reporter g_reporter;

void wake() {
  const uint64_t one = 1;
  [[maybe_unused]] const auto n = write(g_event, &one, sizeof one);  // async-signal-safe
}

void request(Cause cause) {
  int none = -1;
  if (g_request.compare_exchange_strong(none, int(cause))) wake();
}

void on_sigterm(int sig) {
  // A second SIGTERM, or no watchdog thread to deliver a verdict: the default action. Otherwise a
  // verdict, wherever this rank is (in a collective, computing, or blocked in MPI outside the
  // collectives): mpirun's SIGTERM means a process or host of the job is gone, and the one line
  // must name it.
  if (!g_judges.load() || g_signalled.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  request(Cause::terminated);
}

// Records the notices that arrived; caller holds g_state.
void send_to(int p, int32_t kind);

void take_notices() {
  Notice n;
  while (recv(g_socket, &n, sizeof n, MSG_DONTWAIT) == ssize_t(sizeof n)) {
    if (n.job != g_job || n.rank < 0 || n.rank >= g_size) continue;
    g_answered[size_t(n.rank)] = Clock::now();
    if (n.cause == kPing) {
      send_to(n.rank, kPong);
      continue;
    }
    if (n.cause == kPong) continue;
    if (n.cause == kBye) {
      g_departed[size_t(n.rank)] = true;
      continue;
    }
    g_heard[size_t(n.rank)] = true;
    if (n.cause == int32_t(Cause::aborted)) {
      g_peer_aborted = true;
      continue;
    }
    if (g_first_cause < 0) g_first_cause = n.cause;
  }
}

// One datagram to every address of rank p; caller holds g_state (or runs at exit).
void send_to(int p, int32_t kind) {
  const Notice n{g_job, g_rank, kind};
  const Endpoint& e = g_endpoints[size_t(p)];
  for (int a = 0; a < e.n; ++a) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = e.port;
    to.sin_addr.s_addr = e.addr[a];
    sendto(g_socket, &n, sizeof n, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }
}

void send_notices(int32_t kind) {
  for (int p = 0; p < g_size; ++p)
    if (p != g_rank) send_to(p, kind);
}

void send_notices(Cause cause) { send_notices(int32_t(cause)); }

// This host's IPv4 addresses, loopback last (it reaches a peer only on the same host).
Endpoint my_endpoint(uint16_t port) {
  Endpoint e;
  e.port = port;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return e;
  std::vector<uint32_t> found, loop;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP)) continue;
    const uint32_t a = reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr;
    (i->ifa_flags & IFF_LOOPBACK ? loop : found).push_back(a);
  }
  freeifaddrs(list);
  found.insert(found.end(), loop.begin(), loop.end());
  for (uint32_t a : found)
    if (e.n < kMaxAddresses) e.addr[e.n++] = a;
  return e;
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string s;
  for (int r : ranks) s += (s.empty() ? "" : ", ") + std::to_string(r);
  return s;
}

// Tells every peer, collects their answers for kVerdictGrace, reports (lowest answering rank),
// leaves the process. Never returns.
[[noreturn]] void deliver(Cause cause, bool silent) {
  Verdict v;
  v.cause = cause;
  v.hosts = g_hosts;
  v.timeout_s = double(timeout().count()) / 1000.0;
  {
    std::lock_guard lock(g_state);
    g_heard[size_t(g_rank)] = true;
    const auto until = Clock::now() + kVerdictGrace;
    auto next_send = Clock::now();
    for (;;) {
      if (Clock::now() >= next_send) {
        send_notices(cause);  // again: a late joiner answers, and a datagram may be lost
        next_send += kResend;
      }
      take_notices();
      if (Clock::now() >= until) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    for (int p = 0; p < g_size; ++p)
      if (!g_heard[size_t(p)]) v.missing.push_back(p);
  }
  const int reporter = int(std::find(g_heard.begin(), g_heard.end(), true) - g_heard.begin());
  // A peer's abort notice may arrive after mpirun's SIGTERM started this verdict (the aborting rank
  // sends it just before MPI_Abort): heard during the grace above, it still silences this rank,
  // whose line would be a second one (launch:fails:missing_file_one_rank saw two, once).
  silent = silent || g_peer_aborted.load();
  if (!silent && reporter == g_rank && g_reporter) g_reporter(v);
  std::fflush(nullptr);
  _exit(kExitPeerLost);
}

// At exit while the watchdog runs: the process leaves without MPI_Finalize, which in Tori is Open
// MPI ending it because a peer hung up. Tells the others this rank was not the one lost (its
// notice counts as an answer) and that a peer is gone (they start their verdict now).
void on_exit_notice() {
  if (!g_started.load()) return;
  // The daemon that started this rank is gone (its host died, or the daemon did): this rank goes
  // down with its host and stays silent, so the others count it as lost.
  if (getppid() != g_parent) return;
  std::unique_lock lock(g_state, std::try_to_lock);
  if (lock.owns_lock() && g_socket >= 0) send_notices(Cause::terminated);
}

}  // namespace

void detail::enter(Clock::time_point since) {
  g_waiting.fetch_add(1, std::memory_order_relaxed);
  g_last_wait_start.store(since.time_since_epoch().count(), std::memory_order_relaxed);
}

void detail::leave() { g_waiting.fetch_sub(1, std::memory_order_relaxed); }

namespace {
// The watchdog thread probes while waits report being long; the first report wakes it.
void report_long_wait(Clock::time_point now) {
  const Clock::rep before = g_long_wait_at.exchange(now.time_since_epoch().count(), std::memory_order_relaxed);
  if (now - Clock::time_point(Clock::duration(before)) >= kProbeWhile) wake();
}
}  // namespace

void detail::long_wait(Clock::time_point since, Clock::time_point now) {
  if (!g_started.load(std::memory_order_acquire)) return;
  report_long_wait(now);
  const auto limit = timeout();
  if (limit.count() > 0 && now - since >= limit) request(Cause::stalled);  // the watchdog thread ends the process
}

namespace {

// Hosts (other than this rank's) whose every rank, not departed, sent nothing for kNoAnswer while
// this rank probed; caller holds g_state.
std::vector<std::string> unreachable_hosts(Clock::time_point now) {
  std::vector<std::string> out;
  for (const std::string& h : g_hosts) {
    if (h == g_hosts[size_t(g_rank)] || std::find(out.begin(), out.end(), h) != out.end()) continue;
    bool silent = false;
    for (int p = 0; p < g_size; ++p) {
      if (g_hosts[size_t(p)] != h || g_departed[size_t(p)]) continue;
      if (now - g_answered[size_t(p)] < kNoAnswer) {
        silent = false;
        break;
      }
      silent = true;
    }
    if (silent) out.push_back(h);
  }
  return out;
}

// The watchdog thread: sleeps in poll() on the notice socket and the eventfd, so that it answers
// a peer's notice (joining its verdict) even while this rank computes or is stuck inside MPI, and
// delivers the verdict a wait or the SIGTERM handler requested.
void watch_loop() {
  auto last_tick = Clock::now();
  bool probing = false;
  auto next_ping = last_tick;
  for (;;) {
    pollfd fds[2] = {{g_socket, POLLIN, 0}, {g_event, POLLIN, 0}};
    poll(fds, 2, int((probing ? kProbeTick : kTick).count()));
    const auto now = Clock::now();
    if (now - last_tick > kFrozenGap) g_was_frozen = true;  // this process was stopped meanwhile
    last_tick = now;
    if (!g_started.load()) return;
    if (fds[1].revents & POLLIN) {
      uint64_t n = 0;
      [[maybe_unused]] const auto r = read(g_event, &n, sizeof n);
    }
    int cause = g_request.load();
    if (cause < 0) {
      std::lock_guard lock(g_state);
      take_notices();
      cause = g_first_cause;  // a peer started a verdict: join it
      // Probing: while a wait of this rank is long, ping the ranks of the other hosts; a host
      // none of whose ranks answered for kNoAnswer is unreachable (dead, cut off, or every
      // process on it stopped). A single silent rank on a host that answers is a hung peer:
      // that is --timeout's to judge.
      const bool long_wait = now - Clock::time_point(Clock::duration(g_long_wait_at.load())) < kProbeWhile;
      if (long_wait && !g_was_frozen) {
        if (!probing) {
          std::fill(g_answered.begin(), g_answered.end(), now);
          next_ping = now;
        }
        if (now >= next_ping) {
          for (int p = 0; p < g_size; ++p)
            if (g_hosts[size_t(p)] != g_hosts[size_t(g_rank)] && !g_departed[size_t(p)]) send_to(p, kPing);
          next_ping = now + kPingEvery;
        }
        if (cause < 0 && probing && !unreachable_hosts(now).empty()) request(Cause::unreachable);
      }
      probing = long_wait;
      if (cause < 0) cause = g_request.load();
    }
    if (cause < 0) continue;
    deliver(Cause(cause), g_was_frozen.load() || g_peer_aborted.load());
  }
}

}  // namespace

void start(MPI_Comm world, Reporter reporter) {
  std::lock_guard lock(g_state);
  MPI_Comm_rank(world, &g_rank);
  MPI_Comm_size(world, &g_size);
  char name[MPI_MAX_PROCESSOR_NAME] = {0};
  int len = 0;
  MPI_Get_processor_name(name, &len);
  std::vector<char> all(size_t(g_size) * MPI_MAX_PROCESSOR_NAME, '\0');
  MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, world);
  g_hosts.clear();
  for (int r = 0; r < g_size; ++r) {
    const char* p = all.data() + size_t(r) * MPI_MAX_PROCESSOR_NAME;
    g_hosts.emplace_back(p, strnlen(p, MPI_MAX_PROCESSOR_NAME));
  }
  // The notice socket: any address, a port of the kernel's choosing; every rank learns every
  // other's addresses and port, and rank 0's job number.
  g_socket = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  socklen_t size = sizeof any;
  uint16_t port = 0;
  if (g_socket >= 0 && bind(g_socket, reinterpret_cast<const sockaddr*>(&any), sizeof any) == 0 &&
      getsockname(g_socket, reinterpret_cast<sockaddr*>(&any), &size) == 0)
    port = any.sin_port;
  const Endpoint mine = port ? my_endpoint(port) : Endpoint{};  // n = 0: nobody can reach us
  g_endpoints.assign(size_t(g_size), Endpoint{});
  MPI_Allgather(&mine, sizeof mine, MPI_BYTE, g_endpoints.data(), sizeof mine, MPI_BYTE, world);
  g_job = (uint64_t(std::random_device{}()) << 32) ^ uint64_t(Clock::now().time_since_epoch().count());
  MPI_Bcast(&g_job, 1, MPI_UINT64_T, 0, world);
  g_heard.assign(size_t(g_size), false);
  g_answered.assign(size_t(g_size), Clock::now());
  g_departed.assign(size_t(g_size), false);
  g_parent = getppid();
  g_first_cause = -1;
  g_reporter = std::move(reporter);
  g_request = -1;
  g_event = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  static std::once_flag at_exit;
  std::call_once(at_exit, [] { std::atexit(on_exit_notice); });
  struct sigaction sa {};
  sa.sa_handler = on_sigterm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  g_started.store(true, std::memory_order_release);
  if (g_socket >= 0 && g_event >= 0) g_thread = std::thread(watch_loop);
  g_judges = g_thread.joinable() && g_size > 1;
}

void stop() {
  if (g_started.load()) {
    std::lock_guard lock(g_state);
    if (g_socket >= 0) send_notices(kBye);  // no probe waits for this rank's answers any more
  }
  if (!g_started.exchange(false)) return;
  g_judges = false;
  if (g_thread.joinable()) {
    wake();
    if (std::this_thread::get_id() != g_thread.get_id()) g_thread.join();
    else g_thread.detach();
  }
  std::lock_guard lock(g_state);
  if (g_socket >= 0) close(g_socket);
  if (g_event >= 0) close(g_event);
  g_socket = g_event = -1;
  g_reporter = nullptr;
}

void announce_abort() {
  if (!g_started.load()) return;
  {
    std::lock_guard lock(g_state);
    if (g_socket >= 0) send_notices(Cause::aborted);
  }
  stop();
}

bool started() { return g_started.load(std::memory_order_acquire); }

void barrier_asleep(MPI_Comm world) {
  int size = 1;
  MPI_Comm_size(world, &size);
  if (size <= 1) return;
  const bool probing = g_started.load(std::memory_order_acquire) && g_size > 1;
  MPI_Request done;
  MPI_Ibarrier(world, &done);
  const auto since = Clock::now();
  for (int flag = 0;;) {
    MPI_Test(&done, &flag, MPI_STATUS_IGNORE);
    if (flag) return;
    const auto now = Clock::now();
    if (probing && now - since >= kLongWait) report_long_wait(now);  // probing only: no stall timeout
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void set_timeout(std::chrono::milliseconds t) { g_fixed_ms = std::max<int64_t>(0, t.count()); }

std::chrono::milliseconds timeout() {
  if (const int64_t fixed = g_fixed_ms.load(std::memory_order_relaxed); fixed > 0)
    return std::chrono::milliseconds(fixed);
  const auto step = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::duration(g_slowest_step.load()));
  return std::max<std::chrono::milliseconds>(kTimeoutFloor, step * kStepMultiple);
}

void note_step(Clock::duration step) {
  Clock::rep seen = g_slowest_step.load(std::memory_order_relaxed);
  while (step.count() > seen && !g_slowest_step.compare_exchange_weak(seen, step.count())) {
  }
}

const std::string& host_of(int rank) {
  static const std::string unknown = "?";
  return rank >= 0 && size_t(rank) < g_hosts.size() ? g_hosts[size_t(rank)] : unknown;
}

std::vector<std::string> Verdict::missing_hosts() const {
  std::vector<std::string> out;
  for (int r : missing) out.push_back(size_t(r) < hosts.size() ? hosts[size_t(r)] : "?");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string Verdict::reason() const {
  if (cause == Cause::terminated) return missing.empty() ? "terminated" : "peer_lost";
  if (cause == Cause::unreachable) return missing.empty() ? "unreachable_no_peer_missing" : "host_unreachable";
  return missing.empty() ? "timeout_no_peer_missing" : "peer_stalled";
}

std::string Verdict::line() const {
  char secs[32];
  std::snprintf(secs, sizeof secs, "%g s", timeout_s);
  if (missing.empty())
    return cause == Cause::stalled
               ? std::string("a collective waited longer than the timeout (") + secs +
                     ", --timeout) although every rank answers: a step slower than that? raise --timeout; run aborted"
               : std::string("terminated (SIGTERM from mpirun or the user) while every rank answers; run aborted");
  // Name whole hosts where every rank of a host is missing, single ranks otherwise.
  std::string who;
  for (const std::string& h : missing_hosts()) {
    std::vector<int> on, lost;
    for (size_t r = 0; r < hosts.size(); ++r)
      if (hosts[r] == h) on.push_back(int(r));
    for (int r : missing)
      if (hosts[size_t(r)] == h) lost.push_back(r);
    if (!who.empty()) who += "; ";
    who += lost == on && on.size() > 1 ? "host " + h + " (ranks " + rank_list(lost) + ")"
                                       : (lost.size() > 1 ? "ranks " : "rank ") + rank_list(lost) + " (host " + h + ")";
  }
  if (cause == Cause::stalled)
    return "lost " + who + ": no answer for " + secs + " (--timeout; a stopped, hung or unreachable peer); run aborted";
  if (cause == Cause::unreachable)
    return "lost " + who + ": no answer to the watchdog for " + std::to_string(kNoAnswer.count()) +
           " s (the host died, its link is down, or every process on it is stopped); run aborted";
  return "lost " + who + ": no answer while mpirun ends the job (the process died, or its host died or became unreachable); run aborted";
}

}  // namespace tori::collectives::watchdog
