#pragma once
// Starting `mpirun` from inside a tori process (`tori calibrate`, `tori bench sweep`). tori itself is
// an MPI process (a singleton when not under mpirun), and Open MPI/PMIx leave variables in its
// environment (OMPI_*, PMIX_*, ...) that would make a child mpirun think it is part of this job;
// the child runs with them removed (OMPI_ALLOW_RUN_AS_ROOT* and the user's OMPI_MCA_* settings
// are kept; the ess/orte/pmix ones MPI_Init set are not).
#include <string>

namespace tori::bench {

// Runs `cmd` through the shell with stderr merged into stdout and the inherited MPI job variables
// removed; returns everything it printed. Throws tori::Error if it cannot be started.
std::string run_capture(const std::string& cmd);

}  // namespace tori::bench
