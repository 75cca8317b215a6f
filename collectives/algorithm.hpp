#pragma once
// Algorithm: how collectives move data, chosen at run time (--collectives mpi|ring|bidir) and
// never visible at a call site. Each algorithm lives in its own file:
//   algo_mpi.cpp    MPI-native: one MPI_Allgather / MPI_Reduce_scatter_block / MPI_Allreduce /
//                   MPI_Alltoall / MPI_Sendrecv over the whole axis-set communicator.
//   algo_ring.cpp   one-way ring over torus neighbours, axis by axis (ring_plan.hpp), nonblocking
//                   point-to-point in chunks (ring_stage.cpp).
//   algo_bidir.cpp  bidirectional ring: the same plan with every block halved, one half each way.
//
// The strategy interface works on chunk-major buffers (ring_plan.hpp); Collectives
// (collectives.hpp) packs tensors into them, validates shapes and runs the strategy.
#include <mpi.h>

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "collectives/axes.hpp"
#include "collectives/ring_plan.hpp"
#include "collectives/scratch.hpp"
#include "collectives/traffic.hpp"

namespace tori::collectives {

enum class Algorithm : uint8_t { mpi, ring, bidir };
inline constexpr std::array<Algorithm, 3> kAlgorithms{Algorithm::mpi, Algorithm::ring,
                                                      Algorithm::bidir};
std::string_view algorithm_name(Algorithm a);
// Parses "mpi" | "ring" | "bidir"; throws tori::InputError naming `what`.
Algorithm parse_algorithm(std::string_view s, std::string_view what = "--collectives");

// One ring of a group with its communicator (members in coordinate order along the axis).
struct RingLink {
  MPI_Comm comm = MPI_COMM_NULL;
  RingCoord coord;
};

// MPI tags of the point-to-point messages on a ring's communicator: to the right and left
// neighbour, and a permutation's shift.
inline constexpr int kTagRight = 11;
inline constexpr int kTagLeft = 12;
inline constexpr int kTagPermute = 13;

// The ranks a collective over `axes` runs among, as seen from this rank.
struct Group {
  Axes axes;
  MPI_Comm comm = MPI_COMM_NULL;  // all members; rank in it = shard index
  int size = 1;
  int index = 0;                  // my shard index
  std::vector<RingLink> rings;    // axes of the set with more than one member, x, y, z order
  std::vector<RingCoord> ring_coords() const;
};

// What a strategy needs besides the buffers: where to count, the ring reduction piece and message
// sizes (CollectivesOptions), which collective kind the traffic is booked under, and reusable
// temporaries.
struct CallContext {
  TrafficCounters* traffic = nullptr;
  size_t chunk_bytes = 0;    // reductions: receive-and-sum piece (0: whole transfers)
  size_t message_bytes = 0;  // data movement: message size (0: whole transfers)
  Collective kind = Collective::all_gather;
  Scratch* scratch = nullptr;  // required by the ring algorithms
};

class AlgorithmImpl {
 public:
  virtual ~AlgorithmImpl() = default;
  // buf: size·chunk elements of elem_bytes; my chunk (at my shard index) is filled in; on return
  // every chunk is.
  virtual void all_gather(const Group& g, std::byte* buf, int64_t chunk, size_t elem_bytes,
                          const CallContext& ctx) const = 0;
  // in: size·chunk f32 summands (chunk-major); out: chunk f32 = the sum over the group of my chunk.
  virtual void reduce_scatter(const Group& g, const float* in, float* out, int64_t chunk,
                              const CallContext& ctx) const = 0;
  // out = sum over the group of in (n elements each); out may equal in.
  virtual void all_reduce(const Group& g, const float* in, float* out, int64_t n,
                          const CallContext& ctx) const = 0;
  // in: size pieces of piece_bytes, piece j for member j; out: size pieces, piece j from member j.
  virtual void all_to_all(const Group& g, const std::byte* in, std::byte* out, size_t piece_bytes,
                          const CallContext& ctx) const = 0;
  // out on ring member i = in of member i - shift (shift already reduced mod size, not 0).
  virtual void ppermute(const RingLink& ring, const std::byte* in, std::byte* out, size_t bytes,
                        int shift, const CallContext& ctx) const = 0;
};

// The strategy objects (stateless singletons).
const AlgorithmImpl& algorithm_impl(Algorithm a);
const AlgorithmImpl& mpi_algorithm();
const AlgorithmImpl& ring_algorithm();
const AlgorithmImpl& bidir_algorithm();

}  // namespace tori::collectives
