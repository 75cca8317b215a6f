#pragma once
// Starting `mpirun` from inside a tori process (calibration, `tori bench sweep`, --plan auto's
// first calibration). tori itself is an MPI process (a singleton when not under mpirun), and Open
// MPI/PMIx leave variables in its environment (OMPI_*, PMIX_*, ...) that would make a child mpirun
// think it is part of this job; the child runs with them removed (OMPI_ALLOW_RUN_AS_ROOT* and the
// user's OMPI_MCA_* settings are kept; the ess/orte/pmix ones MPI_Init set are not).
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tori::planning {

// Runs `cmd` through the shell with stderr merged into stdout and the inherited MPI job variables
// removed; returns everything it printed. Throws tori::Error if it cannot be started.
std::string run_capture(const std::string& cmd);

// The path of this tori binary (/proc/self/exe).
std::string self_exe();

// The start of a command line running this tori binary on `ranks` ranks of this host:
// `MPIRUN -np N [--oversubscribe] --bind-to none /path/to/tori`. --oversubscribe when the ranks
// exceed the cores; --bind-to none because mpirun's default for 1-2 ranks binds each to one core,
// where a rank's threads (and OpenMP's idle spinning) would share it (runtime/threads.cpp).
std::string mpirun_self(const std::string& mpirun, int ranks);

// The JSON-line records in `out` whose "bench" is `bench` (other lines are skipped).
std::vector<nlohmann::json> json_records(const std::string& out, std::string_view bench);

}  // namespace tori::planning
