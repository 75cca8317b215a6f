// The shared Catch2 v2 main of every non-MPI unit test executable.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
