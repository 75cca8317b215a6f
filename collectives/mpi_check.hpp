#pragma once
// MPI_CHECK(call): turns an MPI error code into a tori::Error carrying file:line, the call and
// MPI_Error_string. Communicators used by Tori have MPI_ERRORS_RETURN set so codes reach us.
#include <mpi.h>

#include <string>

#include "kernels/error.hpp"

namespace tori::collectives {

[[noreturn]] void throw_mpi_error(int code, const char* call, const char* file, int line);

}  // namespace tori::collectives

#define MPI_CHECK(call)                                                                 \
  do {                                                                                  \
    int tori_mpi_rc_ = (call);                                                          \
    if (tori_mpi_rc_ != MPI_SUCCESS)                                                    \
      ::tori::collectives::throw_mpi_error(tori_mpi_rc_, #call, __FILE__, __LINE__);    \
  } while (0)
