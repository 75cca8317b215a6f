// The bidirectional ring: every stage of the ring plan moves the first half of each block
// clockwise (+1) and the second half counter-clockwise (-1) at the same time, so each link carries
// half the data in each direction and a stage takes about half as long on a full-duplex torus.
// all_to_all instead sends each piece the short way round (destinations up to size/2 steps right,
// the rest left), so no piece travels more than half the ring. ppermute has one destination and
// is the same as the one-way ring's.
#include "collectives/algo_ring_family.hpp"

namespace tori::collectives {

const AlgorithmImpl& bidir_algorithm() {
  static const RingFamilyAlgorithm bidir(LaneSplit::both_ways);
  return bidir;
}

}  // namespace tori::collectives
