#include "collectives/mpi_check.hpp"

namespace tori::collectives {

void throw_mpi_error(int code, const char* call, const char* file, int line) {
  char msg[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  MPI_Error_string(code, msg, &len);
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  throw Error(std::string(call) + " failed on rank " + std::to_string(rank) + " at " + file + ":" +
              std::to_string(line) + ": " + std::string(msg, static_cast<size_t>(len)));
}

}  // namespace tori::collectives
