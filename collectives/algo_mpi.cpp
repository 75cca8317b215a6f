// MPI-native: each collective is one MPI call over the whole axis-set communicator, leaving the
// algorithm to the MPI library (Open MPI's tuned component picks ring, recursive doubling, ...).
// Members are ordered by shard index, so MPI's rank-order concatenation is ours. The nonblocking
// forms are used and completed with complete() (request_wait.hpp), which sleeps between polls
// instead of spinning a core the computing thread needs.
//
// Traffic: MPI hides what it sends, so these count what the one-way ring sends for the same call
// (ring_plan.hpp), booked per axis as the ring would (traffic.hpp).
#include <climits>
#include <string>

#include "collectives/algorithm.hpp"
#include "collectives/mpi_check.hpp"
#include "collectives/request_wait.hpp"

namespace tori::collectives {

namespace {


int mpi_count(size_t n, const char* op) {
  if (n > static_cast<size_t>(INT_MAX))
    throw Error(std::string(op) + " (mpi): " + std::to_string(n) +
                " elements per rank exceed MPI's int count (use --collectives ring or bidir)");
  return static_cast<int>(n);
}

void book(const CallContext& ctx, const AxisTraffic& t) {
  if (ctx.traffic) ctx.traffic->add(ctx.kind, t);
}

class MpiAlgorithm : public AlgorithmImpl {
 public:
  void all_gather(const Group& g, std::byte* buf, int64_t chunk, size_t elem_bytes,
                  const CallContext& ctx) const override {
    int count = mpi_count(static_cast<size_t>(chunk) * elem_bytes, "all_gather");
    MPI_Request r;
    MPI_CHECK(MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, count, MPI_BYTE, g.comm, &r));
    complete(r);
    book(ctx, all_gather_traffic(g.ring_coords(), chunk, elem_bytes, LaneSplit::one_way));
  }
  void reduce_scatter(const Group& g, const float* in, float* out, int64_t chunk,
                      const CallContext& ctx) const override {
    int count = mpi_count(static_cast<size_t>(chunk), "reduce_scatter");
    MPI_Request r;
    MPI_CHECK(MPI_Ireduce_scatter_block(in, out, count, MPI_FLOAT, MPI_SUM, g.comm, &r));
    complete(r);
    book(ctx, reduce_scatter_traffic(g.ring_coords(), chunk, LaneSplit::one_way));
  }
  void all_reduce(const Group& g, const float* in, float* out, int64_t n,
                  const CallContext& ctx) const override {
    int count = mpi_count(static_cast<size_t>(n), "all_reduce");
    MPI_Request r;
    MPI_CHECK(MPI_Iallreduce(in == out ? MPI_IN_PLACE : in, out, count, MPI_FLOAT, MPI_SUM, g.comm, &r));
    complete(r);
    book(ctx, all_reduce_traffic(g.ring_coords(), n, LaneSplit::one_way));
  }
  void all_to_all(const Group& g, const std::byte* in, std::byte* out, size_t piece_bytes,
                  const CallContext& ctx) const override {
    int count = mpi_count(piece_bytes, "all_to_all");
    MPI_Request r;
    MPI_CHECK(MPI_Ialltoall(in, count, MPI_BYTE, out, count, MPI_BYTE, g.comm, &r));
    complete(r);
    book(ctx, all_to_all_traffic(g.ring_coords(), static_cast<uint64_t>(g.size) * piece_bytes,
                                 LaneSplit::one_way));
  }
  void ppermute(const RingLink& ring, const std::byte* in, std::byte* out, size_t bytes, int shift,
                const CallContext& ctx) const override {
    const int n = ring.coord.size, me = ring.coord.index;
    int count = mpi_count(bytes, "ppermute");
    MPI_Request r[2];
    MPI_CHECK(MPI_Irecv(out, count, MPI_BYTE, wrap(me - shift, n), kTagPermute, ring.comm, &r[0]));
    MPI_CHECK(MPI_Isend(in, count, MPI_BYTE, wrap(me + shift, n), kTagPermute, ring.comm, &r[1]));
    complete(r, 2);
    book(ctx, ppermute_traffic(ring.coord.axis, bytes));
  }
};

}  // namespace

const AlgorithmImpl& mpi_algorithm() {
  static const MpiAlgorithm mpi;
  return mpi;
}

}  // namespace tori::collectives
