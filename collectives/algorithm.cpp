#include "collectives/algorithm.hpp"

#include <string>

#include "kernels/error.hpp"

namespace tori::collectives {

std::string_view algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::mpi: return "mpi";
    case Algorithm::ring: return "ring";
    case Algorithm::bidir: return "bidir";
  }
  return "?";
}

Algorithm parse_algorithm(std::string_view s, std::string_view what) {
  for (Algorithm a : kAlgorithms)
    if (algorithm_name(a) == s) return a;
  throw InputError(std::string(what) + ": unknown collective algorithm '" + std::string(s) +
                   "' (allowed: mpi, ring, bidir)");
}

std::vector<RingCoord> Group::ring_coords() const {
  std::vector<RingCoord> out;
  for (const RingLink& r : rings) out.push_back(r.coord);
  return out;
}

const AlgorithmImpl& algorithm_impl(Algorithm a) {
  switch (a) {
    case Algorithm::mpi: return mpi_algorithm();
    case Algorithm::ring: return ring_algorithm();
    case Algorithm::bidir: return bidir_algorithm();
  }
  throw Error("unknown collective algorithm");
}

}  // namespace tori::collectives
