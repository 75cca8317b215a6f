#include "planning/spawn.hpp"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string_view>

#include "kernels/error.hpp"
#include "runtime/threads.hpp"

extern char** environ;

namespace tori::planning {

namespace {

bool job_variable(std::string_view name) {
  if (name.starts_with("OMPI_ALLOW_RUN_AS_ROOT")) return false;
  // Set by MPI_Init (singleton): the job's ess/orte/pmix selections.
  for (std::string_view p : {"OMPI_MCA_ess", "OMPI_MCA_orte_", "OMPI_MCA_pmix"})
    if (name.starts_with(p)) return true;
  if (name.starts_with("OMPI_MCA_")) return false;  // the user's settings
  for (std::string_view p : {"OMPI_", "PMIX_", "OPAL_", "PRTE_", "ORTE_"})
    if (name.starts_with(p)) return true;
  return false;
}

}  // namespace

std::string run_capture(const std::string& cmd) {
  std::string full = "env";
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    const std::string_view name = kv.substr(0, kv.find('='));
    if (job_variable(name)) full += " -u " + std::string(name);
  }
  full += " " + cmd + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(full.c_str(), "r"), pclose);
  if (!p) throw Error("cannot start `" + cmd + "`");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p.get())) out.append(buf, n);
  return out;
}

std::string self_exe() {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/self/exe", ec).string();
}

std::string mpirun_self(const std::string& mpirun, int ranks) {
  return mpirun + " -np " + std::to_string(ranks) + (ranks > runtime::cores_on_host() ? " --oversubscribe" : "") +
         " --bind-to none " + self_exe();
}

std::vector<nlohmann::json> json_records(const std::string& out, std::string_view bench) {
  std::vector<nlohmann::json> v;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] != '{') continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("bench", "") == bench) v.push_back(std::move(j));
  }
  return v;
}

}  // namespace tori::planning
