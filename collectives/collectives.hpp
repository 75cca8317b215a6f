#pragma once
// Collectives: the moves a sharded layer makes between its kernels, named by what they do over
// which torus axes, with JAX semantics (jax.lax.all_gather(tiled=True), psum_scatter(tiled=True),
// psum, all_to_all, ppermute), on f32 and bf16 tensors:
//
//   all_gather(t, dim, axes)       [.., n, ..] -> [.., G·n, ..]: the group's tensors concatenated
//                                  along dim in shard-index order (torus_shape.hpp).
//   reduce_scatter(t, dim, axes)   [.., G·m, ..] -> [.., m, ..]: the sum over the group, of which
//                                  shard s keeps slice s of dim.
//   all_reduce(t, axes)            the sum over the group, everywhere.
//   all_to_all(t, split, concat, axes)
//                                  split `split` into G slices, send slice j to shard j, and
//                                  concatenate what arrives along `concat` in shard order.
//   ppermute(t, axis, shift)       the tensor of the rank `shift` steps back along `axis`
//                                  (i.e. each rank sends to its neighbour +shift), wrapping.
//
// G is the number of ranks along `axes`. Any dimension may be gathered, scattered or split
// (negative dims count from the end); a size that G must divide is checked with tori::divide and
// reported naming op, axes, dtype and shape. With G = 1 (or shift ≡ 0) the input is returned
// unchanged. Sums of bf16 accumulate in f32 (partial sums travel as f32) and round once at the
// end. all_gather, all_to_all and ppermute also move int8.
//
// Every collective has a start_*() form returning a Pending (progress_engine.hpp explains how it
// progresses); the input must not be modified until wait() returns. The algorithm (mpi, ring,
// bidir) is a run-time strategy (algorithm.hpp); results are identical across algorithms up to
// f32 summation order, and traffic is counted per axis (traffic.hpp).
#include <array>
#include <cstddef>
#include <memory>

#include "collectives/algorithm.hpp"
#include "collectives/link_model.hpp"
#include "collectives/axes.hpp"
#include "collectives/comm_timeline.hpp"
#include "collectives/progress_engine.hpp"
#include "collectives/shm_ring.hpp"
#include "collectives/torus.hpp"
#include "collectives/traffic.hpp"
#include "kernels/tensor.hpp"

namespace tori::collectives {

// Ring reductions receive and sum partial sums in pieces of this size: 256 KiB keeps the
// kReduceWindow pieces in flight inside a 1 MiB L2 cache, where the add finds them; at 2 ranks
// this makes ring reduce-scatter several times faster than unchunked (measured with
// `tori bench collectives --chunk-bytes`, docs/measurements/collectives.md).
inline constexpr size_t kDefaultChunkBytes = size_t{256} << 10;
// Ring data movement (all_gather, all_to_all, ppermute and all_reduce's gather half) sends each
// transfer as one message: splitting it costs a rendezvous per piece (about 5% at 2 ranks with
// 256 KiB pieces) and buys nothing without pipelining. 0 means whole transfers (in pieces of at
// most 1 GiB, under MPI's int count).
inline constexpr size_t kDefaultMessageBytes = 0;

struct CollectivesOptions {
  Algorithm algorithm = Algorithm::mpi;
  size_t chunk_bytes = kDefaultChunkBytes;      // reduction pieces (0: whole transfers)
  size_t message_bytes = kDefaultMessageBytes;  // data movement messages (0: whole transfers)
  bool progress_thread = true;  // used only when MPI provides MPI_THREAD_MULTIPLE
  LinkModel link{};             // interconnect emulation (link_model.hpp); off by default
  // ppermute between ring neighbours on one host through shared memory (shm_ring.hpp), sent and
  // received by the calling thread, instead of MPI messages on the progress thread; transfers
  // above shm_slot_bytes and rings spread over hosts use MPI either way.
  bool shm_ppermute = true;
  size_t shm_slot_bytes = ShmRing::kDefaultSlotBytes;
};

class Collectives {
 public:
  // Collective over the torus's ranks (duplicates its communicators, so collectives never mix
  // with other traffic on them). The torus must outlive this object.
  explicit Collectives(const Torus& torus, CollectivesOptions options = {});
  ~Collectives();
  Collectives(const Collectives&) = delete;
  Collectives& operator=(const Collectives&) = delete;

  const Torus& torus() const { return torus_; }
  Algorithm algorithm() const { return options_.algorithm; }
  // Takes effect for collectives started afterwards (all ranks must switch together).
  void set_algorithm(Algorithm a) { options_.algorithm = a; }
  const CollectivesOptions& options() const { return options_; }
  bool asynchronous() const { return engine_->threaded(); }

  // Where this rank's time went (comm_timeline.hpp).
  CommTimeline& timeline() { return timeline_; }
  // Takes effect for collectives started afterwards (all ranks must switch together, with
  // nothing in flight): `tori bench overlap --balance` sets the link after measuring compute.
  void set_link(LinkModel link) {
    options_.link = link;
    links_.reset();
  }
  TrafficCounters& traffic() { return traffic_; }
  const TrafficCounters& traffic() const { return traffic_; }

  // `out` (optional): a tensor of exactly the result's shape and dtype, not overlapping t, to write
  // the result into (and return) instead of allocating one: steady-state loops reuse buffers.
  kernels::Tensor all_gather(const kernels::Tensor& t, int dim, Axes axes, kernels::Tensor out = {});
  kernels::Tensor reduce_scatter(const kernels::Tensor& t, int dim, Axes axes,
                                 kernels::Tensor out = {});
  kernels::Tensor all_reduce(const kernels::Tensor& t, Axes axes, kernels::Tensor out = {});
  kernels::Tensor all_to_all(const kernels::Tensor& t, int split_dim, int concat_dim, Axes axes,
                             kernels::Tensor out = {});
  kernels::Tensor ppermute(const kernels::Tensor& t, Axis axis, int shift, kernels::Tensor out = {});

  Pending start_all_gather(const kernels::Tensor& t, int dim, Axes axes, kernels::Tensor out = {});
  Pending start_reduce_scatter(const kernels::Tensor& t, int dim, Axes axes,
                               kernels::Tensor out = {});
  Pending start_all_reduce(const kernels::Tensor& t, Axes axes, kernels::Tensor out = {});
  Pending start_all_to_all(const kernels::Tensor& t, int split_dim, int concat_dim, Axes axes,
                           kernels::Tensor out = {});
  Pending start_ppermute(const kernels::Tensor& t, Axis axis, int shift, kernels::Tensor out = {});

  // ppermutes this rank has sent through shared memory (shm_ring.hpp), all axes (tests).
  uint64_t shm_ppermutes() const {
    uint64_t n = 0;
    for (const auto& r : shm_)
      if (r) n += r->sent();
    return n;
  }
  // The group a collective over `axes` runs in (tests, benchmarks).
  const Group& group(Axes axes) const { return groups_[axes.bits()]; }

 private:
  // A validated collective: either already done (one-rank group) or a job for the engine.
  struct Prepared {
    kernels::Tensor done;
    ProgressEngine::Job job;
  };
  Prepared prepare_all_gather(const kernels::Tensor& t, int dim, Axes axes, kernels::Tensor out);
  Prepared prepare_reduce_scatter(const kernels::Tensor& t, int dim, Axes axes,
                                  kernels::Tensor out);
  Prepared prepare_all_reduce(const kernels::Tensor& t, Axes axes, kernels::Tensor out);
  Prepared prepare_all_to_all(const kernels::Tensor& t, int split_dim, int concat_dim, Axes axes,
                              kernels::Tensor out);
  Prepared prepare_ppermute(const kernels::Tensor& t, Axis axis, int shift, kernels::Tensor out);
  // A ppermute through shm_ (sent now, received by the Pending's wait), or an invalid Pending
  // when shared memory does not serve it; `out` is the output (allocated if undefined).
  Pending start_shm_ppermute(const kernels::Tensor& t, Axis axis, int shift, kernels::Tensor& out, LinkUse use);
  kernels::Tensor run(Prepared p, Collective kind, LinkUse use = LinkUse::forward);
  Pending start(Prepared p, Collective kind, LinkUse use = LinkUse::forward);
  // Wraps a job with the timeline's busy span and the link model: the job reserves its links
  // (LinkClock) from the moment it is issued and writes into *hold when the modelled transfer ends.
  using Hold = std::shared_ptr<std::chrono::steady_clock::time_point>;
  ProgressEngine::Job timed(ProgressEngine::Job job, Collective kind, LinkUse use, Hold hold);
  CallContext context(Collective kind) {
    return {&job_traffic_, options_.chunk_bytes, options_.message_bytes, kind, &scratch_};
  }

  const Torus& torus_;
  CollectivesOptions options_;
  std::array<MPI_Comm, 8> comms_;  // duplicates of torus_.comm(axes), by Axes::bits()
  std::array<Group, 8> groups_;
  TrafficCounters traffic_;
  TrafficCounters job_traffic_;  // the running job's (jobs run one at a time), see timed()
  CommTimeline timeline_;
  LinkClock links_;
  Scratch scratch_;  // used only inside jobs, which run one at a time
  std::array<std::unique_ptr<ShmRing>, 3> shm_;  // per axis with more than one rank, if enabled
  std::unique_ptr<ProgressEngine> engine_;  // stopped first in ~Collectives, before comms_ go
};

}  // namespace tori::collectives
