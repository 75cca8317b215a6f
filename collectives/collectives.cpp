#include "collectives/collectives.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#include <exception>
#include <string>

#include "collectives/layout.hpp"
#include "collectives/mpi_check.hpp"
#include "collectives/ring_plan.hpp"
#include "kernels/divide.hpp"

namespace tori::collectives {

using kernels::DType;
using kernels::Shape;
using kernels::Tensor;

namespace {

bool thread_multiple() {
  int level = MPI_THREAD_SINGLE;
  MPI_CHECK(MPI_Query_thread(&level));
  return level == MPI_THREAD_MULTIPLE;
}

// "all_gather over yz (4 ranks) on rank 3: bf16 tensor [2, 6, 3]": the start of every message.
std::string describe(std::string_view op, Axes axes, int group, int rank, const Tensor& t) {
  return std::string(op) + " over " + axes.str() + " (" + std::to_string(group) + " ranks) on rank " +
         std::to_string(rank) + ": " + std::string(kernels::dtype_name(t.dtype())) + " tensor " +
         kernels::shape_str(t.shape());
}

int normalize_dim(const Tensor& t, int dim, const std::string& context, const char* name) {
  int r = t.rank();
  if (dim < -r || dim >= r || r == 0)
    throw Error(context + ": " + name + " " + std::to_string(dim) + " out of range (allowed: " +
                (r == 0 ? std::string("none, the tensor is a scalar")
                        : std::to_string(-r) + ".." + std::to_string(r - 1)) + ")");
  return dim < 0 ? dim + r : dim;
}

void require_float(const Tensor& t, const std::string& context) {
  if (t.dtype() != DType::f32 && t.dtype() != DType::bf16)
    throw Error(context + ": sums need a floating-point dtype (allowed: f32, bf16)");
}

// The tensor a collective writes its result into: the caller's `out` after checking it, or a
// new one.
Tensor output_tensor(Tensor out, const Shape& shape, DType dt, const Tensor& in, const std::string& what) {
  if (!out.defined()) return Tensor::empty(shape, dt);
  if (out.shape() != shape || out.dtype() != dt)
    throw Error(what + ": out is " + std::string(kernels::dtype_name(out.dtype())) + " " +
                kernels::shape_str(out.shape()) + " (allowed: " + std::string(kernels::dtype_name(dt)) +
                " " + kernels::shape_str(shape) + ")");
  auto* a = static_cast<const std::byte*>(in.raw());
  auto* b = static_cast<const std::byte*>(out.raw());
  if (a < b + out.nbytes() && b < a + in.nbytes() && in.nbytes() > 0 && out.nbytes() > 0)
    throw Error(what + ": out overlaps the input (allowed: separate storage)");
  return out;
}

// A one-rank group returns its input unchanged, or copies it into the given `out`.
Tensor unchanged(const Tensor& t, Tensor out, const std::string& what) {
  if (!out.defined()) return t;
  out = output_tensor(out, t.shape(), t.dtype(), t, what);
  std::memcpy(out.raw(), t.raw(), t.nbytes());
  return out;
}

// The link a ppermute travels: its shift's direction round the ring.
LinkUse ppermute_link(int shift) { return shift < 0 ? LinkUse::backward : LinkUse::forward; }

// The receiving half of a shared-memory ppermute, completed by the thread that waits for it.
struct ShmReceive final : Pending::Direct {
  ShmRing* ring = nullptr;
  ShmRing::Ticket ticket;
  Tensor out;
  CommTimeline* timeline = nullptr;
  std::chrono::steady_clock::time_point issued, hold;
  bool poll() override { return ring->arrived(ticket); }
  void block() override { ring->wait_arrival(ticket); }
  Tensor finish() override {
    // Under way from issue until the sender's copy landed (or the link model's end, if later).
    timeline->add_busy(issued, std::max(ring->receive(ticket), hold));
    return out;
  }
};

}  // namespace

Collectives::Collectives(const Torus& torus, CollectivesOptions options)
    : torus_(torus), options_(options) {
  comms_.fill(MPI_COMM_NULL);
  for (uint8_t bits = 1; bits < 8; ++bits) {
    MPI_CHECK(MPI_Comm_dup(torus_.comm(Axes::from_bits(bits)), &comms_[bits]));
    MPI_CHECK(MPI_Comm_set_errhandler(comms_[bits], MPI_ERRORS_RETURN));
  }
  for (uint8_t bits = 0; bits < 8; ++bits) {
    Axes axes = Axes::from_bits(bits);
    Group& g = groups_[bits];
    g.axes = axes;
    g.comm = comms_[bits];
    g.size = torus_.group_size(axes);
    g.index = torus_.shard_index(axes);
    for (Axis a : axes.list())
      if (torus_.shape()[a] > 1)
        g.rings.push_back(RingLink{comms_[Axes(a).bits()], RingCoord{a, torus_.shape()[a], torus_.coord(a)}});
  }
  if (options_.shm_ppermute)
    for (Axis a : kAxes)
      if (torus_.shape()[a] > 1)
        shm_[size_t(a)] = std::make_unique<ShmRing>(
            RingLink{comms_[Axes(a).bits()], RingCoord{a, torus_.shape()[a], torus_.coord(a)}},
            options_.shm_slot_bytes);
  engine_ = std::make_unique<ProgressEngine>(options_.progress_thread && thread_multiple());
}

Collectives::~Collectives() {
  // Normally: finish queued collectives and join the progress thread. While unwinding from an
  // error on this rank: drop them, and if one is stuck in MPI, leave it (and its communicators)
  // alone so the rank can reach the ExitGuard, which aborts the job.
  const bool failing = std::uncaught_exceptions() > 0;
  if (failing)  // the shared-memory rings' teardown is collective, and the peers may never join it
    for (auto& r : shm_)
      if (r) r->abandon();
  if (!engine_->shutdown(failing)) {
    (void)engine_.release();
    return;
  }
  engine_.reset();
  for (auto& r : shm_) r.reset();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  for (MPI_Comm& c : comms_)
    if (c != MPI_COMM_NULL) MPI_Comm_free(&c);
}

ProgressEngine::Job Collectives::timed(ProgressEngine::Job job, Collective kind, LinkUse use, Hold hold) {
  if (options_.algorithm == Algorithm::bidir && kind != Collective::ppermute) use = LinkUse::both;
  // The modelled transfer starts when the collective is issued (its input exists), as a DMA
  // engine's would, not when the progress thread gets round to it: the emulation's own costs
  // (thread wake-up, the copy at memory speed) overlap the modelled time instead of adding to it.
  const auto issued = std::chrono::steady_clock::now();
  return [this, job = std::move(job), use, hold, issued]() mutable {
    using clock = std::chrono::steady_clock;
    // Jobs run one at a time and book their traffic into job_traffic_, so what it holds after
    // the job is this job's (shared-memory ppermutes, booked by the caller meanwhile, go straight
    // into traffic_); it is then added to traffic_.
    job_traffic_.reset();
    Tensor out = job();
    auto end = clock::now();
    AxisTraffic delta{};
    for (Collective c : kCollectives)
      for (Axis a : kAxes) {
        const Traffic t = job_traffic_.get(c, a);
        traffic_.add(c, a, t);
        delta[size_t(a)] += t;
      }
    if (options_.link.enabled()) {
      // The modelled links carry this collective's traffic from when it was issued, once they
      // are free; the result is released when both the real copy and the modelled transfer are
      // done.
      end = std::max(end, links_.reserve(options_.link, delta, use, issued).end);
    }
    *hold = end;
    timeline_.add_busy(issued, end);
    return out;
  };
}

Tensor Collectives::run(Prepared p, Collective kind, LinkUse use) {
  if (!p.job) return p.done;
  const auto t0 = std::chrono::steady_clock::now();
  auto hold = std::make_shared<std::chrono::steady_clock::time_point>();
  Tensor out = engine_->run(timed(std::move(p.job), kind, use, hold));
  sleep_held_until(&timeline_, *hold);
  timeline_.add_exposed(t0, std::chrono::steady_clock::now());
  return out;
}
Pending Collectives::start(Prepared p, Collective kind, LinkUse use) {
  if (!p.job) return Pending::ready_value(p.done);
  auto hold = std::make_shared<std::chrono::steady_clock::time_point>();
  Pending pending = engine_->submit(timed(std::move(p.job), kind, use, hold));
  pending.hold_until(hold);
  pending.count_wait_in(&timeline_);
  return pending;
}

// ---- all_gather: [.., n, ..] -> [.., G·n, ..] --------------------------------------------------
Collectives::Prepared Collectives::prepare_all_gather(const Tensor& t, int dim, Axes axes, Tensor out) {
  const Group& g = group(axes);
  std::string what = describe("all_gather", axes, g.size, torus_.rank(), t);
  int d = normalize_dim(t, dim, what, "dim");
  if (g.size == 1) return {unchanged(t, out, what), {}};
  Shape out_shape = t.shape();
  out_shape[static_cast<size_t>(d)] *= g.size;
  out = output_tensor(out, out_shape, t.dtype(), t, what);
  const AlgorithmImpl& impl = algorithm_impl(options_.algorithm);
  CallContext ctx = context(Collective::all_gather);
  return {{}, [t, d, out, &g, &impl, ctx]() mutable {
            DimView v = dim_view(out.shape(), d);
            const size_t esize = kernels::dtype_size(t.dtype());
            // Chunk-major buffer [G][t]: the output itself when dim is outermost (outer == 1).
            std::byte* buf = static_cast<std::byte*>(out.raw());
            if (v.outer > 1) buf = ctx.scratch->get(Scratch::unpack, out.nbytes());
            std::memcpy(buf + static_cast<size_t>(g.index) * t.nbytes(), t.raw(), t.nbytes());
            impl.all_gather(g, buf, t.numel(), esize, ctx);
            if (v.outer > 1) unpack_chunks(buf, v, g.size, esize, static_cast<std::byte*>(out.raw()));
            return out;
          }};
}

// ---- reduce_scatter: [.., G·m, ..] -> [.., m, ..], summed -------------------------------------
Collectives::Prepared Collectives::prepare_reduce_scatter(const Tensor& t, int dim, Axes axes, Tensor out) {
  const Group& g = group(axes);
  std::string what = describe("reduce_scatter", axes, g.size, torus_.rank(), t);
  require_float(t, what);
  int d = normalize_dim(t, dim, what, "dim");
  int64_t m = divide(t.size(d), g.size, what + ": dim " + std::to_string(d));
  if (g.size == 1) return {unchanged(t, out, what), {}};
  Shape out_shape = t.shape();
  out_shape[static_cast<size_t>(d)] = m;
  out = output_tensor(out, out_shape, t.dtype(), t, what);
  const AlgorithmImpl& impl = algorithm_impl(options_.algorithm);
  CallContext ctx = context(Collective::reduce_scatter);
  return {{}, [t, d, out, &g, &impl, ctx]() mutable {
            const int64_t n = t.numel(), chunk = n / g.size;
            DimView v = dim_view(t.shape(), d);
            // In: f32 summands in chunk-major order (the tensor itself for f32 with dim outermost).
            const float* in = nullptr;
            if (t.dtype() == DType::f32) {
              in = t.data<float>();
            } else {
              float* wide = ctx.scratch->get_as<float>(Scratch::wide, static_cast<size_t>(n));
              widen_bf16(t.data<kernels::bf16>(), wide, n);
              in = wide;
            }
            if (v.outer > 1) {
              std::byte* packed = ctx.scratch->get(Scratch::pack, static_cast<size_t>(n) * 4);
              pack_chunks(reinterpret_cast<const std::byte*>(in), v, g.size, 4, packed);
              in = reinterpret_cast<const float*>(packed);
            }
            // Out: [outer, m, inner] is exactly chunk `index` of the chunk-major order.
            if (t.dtype() == DType::f32) {
              impl.reduce_scatter(g, in, out.data<float>(), chunk, ctx);
            } else {
              float* sum = ctx.scratch->get_as<float>(Scratch::unpack, static_cast<size_t>(chunk));
              impl.reduce_scatter(g, in, sum, chunk, ctx);
              narrow_to_bf16(sum, out.data<kernels::bf16>(), chunk);
            }
            return out;
          }};
}

// ---- all_reduce: the group sum everywhere ---------------------------------------------------
Collectives::Prepared Collectives::prepare_all_reduce(const Tensor& t, Axes axes, Tensor out) {
  const Group& g = group(axes);
  std::string what = describe("all_reduce", axes, g.size, torus_.rank(), t);
  require_float(t, what);
  if (g.size == 1) return {unchanged(t, out, what), {}};
  out = output_tensor(out, t.shape(), t.dtype(), t, what);
  const AlgorithmImpl& impl = algorithm_impl(options_.algorithm);
  CallContext ctx = context(Collective::all_reduce);
  return {{}, [t, out, &g, &impl, ctx]() mutable {
            const int64_t n = t.numel();
            if (t.dtype() == DType::f32) {
              impl.all_reduce(g, t.data<float>(), out.data<float>(), n, ctx);
            } else {
              float* sum = ctx.scratch->get_as<float>(Scratch::wide, static_cast<size_t>(n));
              widen_bf16(t.data<kernels::bf16>(), sum, n);
              impl.all_reduce(g, sum, sum, n, ctx);
              narrow_to_bf16(sum, out.data<kernels::bf16>(), n);
            }
            return out;
          }};
}

// ---- all_to_all: split `split_dim` G ways, exchange, concatenate along `concat_dim` -----------
Collectives::Prepared Collectives::prepare_all_to_all(const Tensor& t, int split_dim,
                                                      int concat_dim, Axes axes, Tensor out) {
  const Group& g = group(axes);
  std::string what = describe("all_to_all", axes, g.size, torus_.rank(), t);
  int s = normalize_dim(t, split_dim, what, "split_dim");
  int c = normalize_dim(t, concat_dim, what, "concat_dim");
  int64_t m = divide(t.size(s), g.size, what + ": split_dim " + std::to_string(s));
  if (g.size == 1) return {unchanged(t, out, what), {}};
  Shape out_shape = t.shape();
  out_shape[static_cast<size_t>(s)] = m;
  out_shape[static_cast<size_t>(c)] *= g.size;
  out = output_tensor(out, out_shape, t.dtype(), t, what);
  const AlgorithmImpl& impl = algorithm_impl(options_.algorithm);
  CallContext ctx = context(Collective::all_to_all);
  return {{}, [t, s, c, out, &g, &impl, ctx]() mutable {
            const size_t esize = kernels::dtype_size(t.dtype());
            const size_t piece = t.nbytes() / static_cast<size_t>(g.size);
            // 1. Pieces for each destination, chunk-major (the tensor itself if split is outermost).
            DimView sv = dim_view(t.shape(), s);
            const std::byte* in = static_cast<const std::byte*>(t.raw());
            if (sv.outer > 1) {
              std::byte* packed = ctx.scratch->get(Scratch::pack, t.nbytes());
              pack_chunks(in, sv, g.size, esize, packed);
              in = packed;
            }
            // 2. Exchange: piece j from shard j, into the output itself if concat is outermost.
            DimView cv = dim_view(out.shape(), c);
            std::byte* dst = static_cast<std::byte*>(out.raw());
            if (cv.outer > 1) dst = ctx.scratch->get(Scratch::unpack, t.nbytes());
            impl.all_to_all(g, in, dst, piece, ctx);
            // 3. Concatenate the pieces along concat_dim in shard order.
            if (cv.outer > 1) unpack_chunks(dst, cv, g.size, esize, static_cast<std::byte*>(out.raw()));
            return out;
          }};
}

// ---- ppermute: the tensor of the rank `shift` steps back along `axis` -----------------------
Collectives::Prepared Collectives::prepare_ppermute(const Tensor& t, Axis axis, int shift, Tensor out) {
  const Group& g = group(Axes(axis));
  const int n = g.size;
  const int s = wrap(shift, n);
  std::string what = describe("ppermute", Axes(axis), n, torus_.rank(), t);
  if (n == 1 || s == 0) return {unchanged(t, out, what), {}};
  out = output_tensor(out, t.shape(), t.dtype(), t, what);
  const RingLink& ring = g.rings.front();
  const AlgorithmImpl& impl = algorithm_impl(options_.algorithm);
  CallContext ctx = context(Collective::ppermute);
  return {{}, [t, s, out, &ring, &impl, ctx]() mutable {
            impl.ppermute(ring, static_cast<const std::byte*>(t.raw()),
                          static_cast<std::byte*>(out.raw()), t.nbytes(), s, ctx);
            return out;
          }};
}

// ---- blocking and started forms ---------------------------------------------------------------
Tensor Collectives::all_gather(const Tensor& t, int dim, Axes axes, Tensor out) {
  return run(prepare_all_gather(t, dim, axes, std::move(out)), Collective::all_gather);
}
Tensor Collectives::reduce_scatter(const Tensor& t, int dim, Axes axes, Tensor out) {
  return run(prepare_reduce_scatter(t, dim, axes, std::move(out)), Collective::reduce_scatter);
}
Tensor Collectives::all_reduce(const Tensor& t, Axes axes, Tensor out) {
  return run(prepare_all_reduce(t, axes, std::move(out)), Collective::all_reduce);
}
Tensor Collectives::all_to_all(const Tensor& t, int split_dim, int concat_dim, Axes axes, Tensor out) {
  return run(prepare_all_to_all(t, split_dim, concat_dim, axes, std::move(out)), Collective::all_to_all);
}
Pending Collectives::start_shm_ppermute(const Tensor& t, Axis axis, int shift, Tensor& out, LinkUse use) {
  ShmRing* shm = shm_[size_t(axis)].get();
  const int n = group(Axes(axis)).size, s = wrap(shift, n);
  if (!shm || n == 1 || s == 0 || !shm->serves(t.nbytes(), s)) return {};
  out = output_tensor(out, t.shape(), t.dtype(), t, describe("ppermute", Axes(axis), n, torus_.rank(), t));
  const auto issued = std::chrono::steady_clock::now();
  const AxisTraffic traffic = ppermute_traffic(axis, t.nbytes());
  auto op = std::make_unique<ShmReceive>();
  op->ring = shm;
  op->ticket = shm->send(static_cast<const std::byte*>(t.raw()), out, t.nbytes(), s);
  traffic_.add(Collective::ppermute, traffic);
  op->out = out;
  op->timeline = &timeline_;
  op->issued = op->hold = issued;
  // The modelled link carries it from now, once free, as for every collective (timed()).
  if (options_.link.enabled()) op->hold = links_.reserve(options_.link, traffic, use, issued).end;
  const auto hold = op->hold;
  Pending p = Pending::direct(std::move(op));
  if (options_.link.enabled()) p.hold_until(std::make_shared<const std::chrono::steady_clock::time_point>(hold));
  p.count_wait_in(&timeline_);
  return p;
}

Tensor Collectives::ppermute(const Tensor& t, Axis axis, int shift, Tensor out) {
  if (Pending p = start_shm_ppermute(t, axis, shift, out, ppermute_link(shift));
      p.valid())
    return p.wait();
  return run(prepare_ppermute(t, axis, shift, std::move(out)), Collective::ppermute, ppermute_link(shift));
}

Pending Collectives::start_all_gather(const Tensor& t, int dim, Axes axes, Tensor out) {
  return start(prepare_all_gather(t, dim, axes, std::move(out)), Collective::all_gather);
}
Pending Collectives::start_reduce_scatter(const Tensor& t, int dim, Axes axes, Tensor out) {
  return start(prepare_reduce_scatter(t, dim, axes, std::move(out)), Collective::reduce_scatter);
}
Pending Collectives::start_all_reduce(const Tensor& t, Axes axes, Tensor out) {
  return start(prepare_all_reduce(t, axes, std::move(out)), Collective::all_reduce);
}
Pending Collectives::start_all_to_all(const Tensor& t, int split_dim, int concat_dim, Axes axes, Tensor out) {
  return start(prepare_all_to_all(t, split_dim, concat_dim, axes, std::move(out)), Collective::all_to_all);
}
Pending Collectives::start_ppermute(const Tensor& t, Axis axis, int shift, Tensor out) {
  if (Pending p = start_shm_ppermute(t, axis, shift, out, ppermute_link(shift));
      p.valid())
    return p;
  return start(prepare_ppermute(t, axis, shift, std::move(out)), Collective::ppermute, ppermute_link(shift));
}

}  // namespace tori::collectives
