#include "launch/wait_policy.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "runtime/threads.hpp"

namespace tori::launch {

namespace {

// Set beside OMP_WAIT_POLICY when tori chose it, so that a child process that inherits it knows it
// may change it; and the pid that re-executed itself, so that it never does so twice.
constexpr const char* kAutoVar = "TORI_OMP_WAIT_POLICY";
constexpr const char* kReexecVar = "TORI_OMP_WAIT_POLICY_REEXEC";

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

int env_int(const char* name) {
  const char* v = env(name);
  if (!v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return end && *end == '\0' && n > 0 && n < 1 << 20 ? int(n) : 0;
}

// --threads N or --threads=N anywhere before "--" (a global option; CLI11 lets it follow the
// subcommand too). A malformed value counts as absent: the parser reports it later.
int threads_in_argv(int argc, char** argv) {
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (std::strcmp(a, "--") == 0) break;
    const char* value = nullptr;
    if (std::strcmp(a, "--threads") == 0 && i + 1 < argc) value = argv[++i];
    else if (std::strncmp(a, "--threads=", 10) == 0) value = a + 10;
    if (!value) continue;
    char* end = nullptr;
    const long n = std::strtol(value, &end, 10);
    if (end && *end == '\0' && n >= 0 && n < 1 << 20) threads = int(n);
  }
  return threads;
}

WaitPolicyChoice g_choice;

}  // namespace

WaitPolicyChoice choose_omp_wait_policy(int argc, char** argv) {
  WaitPolicyChoice c;
  c.cores = runtime::cores_on_host();
  c.ranks_on_host = std::max({1, env_int("OMPI_COMM_WORLD_LOCAL_SIZE"), env_int("MPI_LOCALNRANKS")});
  const int requested = threads_in_argv(argc, argv);
  c.threads = requested > 0 ? requested : std::max(1, c.cores / c.ranks_on_host);
  c.oversubscribed = c.ranks_on_host * c.threads > c.cores;
  const char* policy = env("OMP_WAIT_POLICY");
  const char* mine = env(kAutoVar);
  const bool set_by_tori = policy && mine && std::strcmp(policy, mine) == 0 && !env("GOMP_SPINCOUNT");
  if ((policy || env("GOMP_SPINCOUNT")) && !set_by_tori) {
    c.policy = policy ? policy : "";
    c.by = "user";
  } else if (c.oversubscribed && c.threads >= 2) {
    c.policy = "passive";
    c.by = "tori";
  } else {
    c.by = "default";
  }
  return c;
}

void settle_omp_wait_policy(int argc, char** argv) {
  g_choice = choose_omp_wait_policy(argc, argv);
  const char* policy = env("OMP_WAIT_POLICY");
  const bool wants = g_choice.by == "tori";
  const bool has = policy && env(kAutoVar);  // a policy tori set (here before the exec, or in a parent)
  if (g_choice.by == "user" || wants == has) return;
  const std::string me = std::to_string(getpid());
  if (const char* done = env(kReexecVar); done && me == done) return;  // never twice
  if (wants) {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    setenv(kAutoVar, "passive", 1);
  } else {
    unsetenv("OMP_WAIT_POLICY");
    unsetenv(kAutoVar);
  }
  setenv(kReexecVar, me.c_str(), 1);
  execv("/proc/self/exe", argv);
  // exec failed (no /proc?): run on with the policy libgomp already has.
  g_choice.policy = policy ? policy : "";
  g_choice.by = "unchanged (re-exec failed)";
}

void log_omp_wait_policy(int rank) {
  if (rank != 0) return;
  const WaitPolicyChoice& c = g_choice;
  spdlog::debug("OpenMP wait policy: {} ({}; {} rank(s) on this host x {} thread(s) on {} core(s){})",
                c.policy.empty() ? "libgomp's default (spin, then sleep)" : c.policy, c.by, c.ranks_on_host, c.threads,
                c.cores, c.oversubscribed ? ": oversubscribed" : "");
}

}  // namespace tori::launch
