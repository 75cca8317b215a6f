// Catch2 v2 main for MPI test executables. Every rank runs the same test cases in the same order
// (so collectives inside tests match up). Rank 0 reports normally; other ranks' reports are held
// back and printed, headed by the rank, only if that rank failed. The exit code is the verdict
// reduced over all ranks: the test fails if any rank failed.
#define CATCH_CONFIG_RUNNER
#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <iostream>
#include <sstream>

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int failed = 0;
  {
    Catch::Session session;
    int rc = session.applyCommandLine(argc, argv);
    if (rc != 0) {
      failed = 1;
    } else {
      std::ostringstream held;
      std::streambuf* original = nullptr;
      if (rank != 0) original = std::cout.rdbuf(held.rdbuf());
      failed = session.run() != 0;
      if (rank != 0) {
        std::cout.rdbuf(original);
        if (failed) std::cerr << "==== rank " << rank << " of " << size << " failed ====\n" << held.str() << std::flush;
      }
    }
  }
  int any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && any && !failed) std::cerr << "another rank failed (see its report above)\n";
  MPI_Finalize();
  return any ? 1 : 0;
}
