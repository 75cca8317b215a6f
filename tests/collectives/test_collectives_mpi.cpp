// Collectives under MPI: every collective × algorithm × axis set × dim × dtype on every torus
// shape listed below whose size is the world size, against exact expected values computed from
// rank-valued inputs (Megatron style); async results equal blocking ones; traffic counters equal
// the bytes the ring must send, written out here from first principles.
//
// Shapes: the curated list kShapes (filtered by world size). TORI_TEST_SHAPES=all in the
// environment runs every factorisation of the world size instead.
#include <mpi.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "collectives/collectives.hpp"
#include "kernels/error.hpp"

using namespace tori::collectives;
using tori::kernels::DType;
using tori::kernels::Shape;
using tori::kernels::Tensor;

namespace {

const char* const kShapes[] = {"1x1x1", "2x1x1", "1x2x1", "1x1x2", "3x1x1", "1x1x3", "2x2x1",
                               "1x4x1", "3x2x1", "1x2x3", "4x2x1", "2x2x2", "8x1x1"};

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

std::vector<TorusShape> shapes_under_test() {
  const int n = world_size();
  const char* env = std::getenv("TORI_TEST_SHAPES");
  if (env && std::string(env) == "all") return all_torus_shapes(n);
  std::vector<TorusShape> out;
  for (const char* s : kShapes) {
    TorusShape shape = TorusShape::parse(s);
    if (shape.ranks() == n) out.push_back(shape);
  }
  return out;
}

// Rank-valued inputs, exact in both dtypes and in every sum below: f32 carries rank and index;
// bf16 (8 significant bits) small integers whose sums over <= 8 ranks stay below 256.
float value(int rank, int64_t i, DType dt) {
  if (dt == DType::f32) return static_cast<float>(rank * 1000 + i);
  return static_cast<float>((rank * 7 + i * 3) % 32);
}

Tensor make_input(const Shape& shape, DType dt, int rank) {
  Tensor t = Tensor::empty(shape, dt);
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, value(rank, i, dt));
  return t;
}

std::vector<int64_t> unflatten(int64_t i, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = i % s[d];
    i /= s[d];
  }
  return idx;
}
int64_t flatten(const std::vector<int64_t>& idx, const Shape& s) {
  int64_t i = 0;
  for (size_t d = 0; d < s.size(); ++d) i = i * s[d] + idx[d];
  return i;
}

// Compares every element with expect(multi-index); reports the first mismatch.
template <typename F>
void check_tensor(const Tensor& out, const Shape& want_shape, DType dt, F expect) {
  REQUIRE(out.shape() == want_shape);
  REQUIRE(out.dtype() == dt);
  int64_t bad = 0;
  std::string first;
  for (int64_t i = 0; i < out.numel(); ++i) {
    float want = expect(unflatten(i, want_shape));
    if (out.get(i) != want) {
      if (bad++ == 0)
        first = "element " + std::to_string(i) + ": got " + std::to_string(out.get(i)) +
                ", want " + std::to_string(want);
    }
  }
  INFO(first);
  CHECK(bad == 0);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// World rank of member g of my group along `axes`.
int member_rank(const Torus& torus, Axes axes, int g) {
  return rank_of(torus.shape(), member_coords(torus.shape(), torus.coords(), axes, g));
}

// The axes of a set with more than one rank, x, y, z order, with their sizes.
std::vector<std::pair<Axis, int>> live_axes(const Torus& torus, Axes axes) {
  std::vector<std::pair<Axis, int>> out;
  for (Axis a : axes.list())
    if (torus.shape()[a] > 1) out.push_back({a, torus.shape()[a]});
  return out;
}

// Transfers one lane makes of a block of `len` elements: one unless empty.
uint64_t lane_msgs(int64_t len) { return len > 0 ? 1 : 0; }
uint64_t block_msgs(int64_t len, Algorithm algo) {
  if (algo == Algorithm::bidir) return lane_msgs(len / 2) + lane_msgs(len - len / 2);
  return lane_msgs(len);
}

// Expected traffic of all_gather / reduce_scatter: at the stage of axis a the ring moves G_a - 1
// blocks of (chunk × product of the sizes of the set's axes after a), in `elem` bytes each.
AxisTraffic expect_gather_scatter(const Torus& torus, Axes axes, int64_t chunk, size_t elem,
                                  Algorithm algo) {
  AxisTraffic t{};
  auto live = live_axes(torus, axes);
  for (size_t k = 0; k < live.size(); ++k) {
    int64_t block = chunk;
    for (size_t j = k + 1; j < live.size(); ++j) block *= live[j].second;
    int steps = live[k].second - 1;
    t[static_cast<size_t>(live[k].first)] = {static_cast<uint64_t>(steps * block) * elem,
                                             static_cast<uint64_t>(steps) * block_msgs(block, algo)};
  }
  return t;
}

// all_reduce of n elements: per axis (outermost first) the segment splits into G nearly equal
// parts; each lane sends every part but one in the reduce-scatter (my own part) and in the
// all-gather (the part of the neighbour it sends to), in f32.
AxisTraffic expect_all_reduce(const Torus& torus, Axes axes, int64_t n, Algorithm algo) {
  AxisTraffic t{};
  int64_t seg_off = 0, seg_len = n;
  for (auto [axis, G] : live_axes(torus, axes)) {
    const int me = torus.coord(axis);
    std::vector<int64_t> len(static_cast<size_t>(G));
    for (int g = 0; g < G; ++g) len[static_cast<size_t>(g)] = seg_len * (g + 1) / G - seg_len * g / G;
    Traffic& tt = t[static_cast<size_t>(axis)];
    auto lane = [&](auto part, int dir) {
      for (int g = 0; g < G; ++g) {
        int64_t l = part(len[static_cast<size_t>(g)]);
        if (g != me) tt += {static_cast<uint64_t>(l) * 4, lane_msgs(l)};                    // RS
        if (g != wrap(me + dir, G)) tt += {static_cast<uint64_t>(l) * 4, lane_msgs(l)};    // AG
      }
    };
    if (algo == Algorithm::bidir) {
      lane([](int64_t l) { return l / 2; }, +1);
      lane([](int64_t l) { return l - l / 2; }, -1);
    } else {
      lane([](int64_t l) { return l; }, +1);
    }
    seg_off += seg_len * me / G;
    seg_len = len[static_cast<size_t>(me)];
  }
  return t;
}

// all_to_all of `bytes` per rank: per axis, shares of bytes/G travel d steps for each
// destination d steps away (one way: d = 1..G-1; both ways: the shorter way round).
AxisTraffic expect_all_to_all(const Torus& torus, Axes axes, uint64_t bytes, Algorithm algo) {
  AxisTraffic t{};
  for (auto [axis, G] : live_axes(torus, axes)) {
    uint64_t share = bytes / static_cast<uint64_t>(G), hops = 0;
    int right = algo == Algorithm::bidir ? G / 2 : G - 1, left = G - 1 - right;
    for (int d = 1; d <= right; ++d) hops += static_cast<uint64_t>(d);
    for (int d = 1; d <= left; ++d) hops += static_cast<uint64_t>(d);
    if (share > 0)
      t[static_cast<size_t>(axis)] = {hops * share, static_cast<uint64_t>(right + left)};
  }
  return t;
}

void check_traffic(const TrafficCounters& c, Collective kind, const AxisTraffic& want) {
  for (Axis a : kAxes) {
    INFO("axis " << axis_name(a));
    CHECK(c.get(kind, a).bytes == want[static_cast<size_t>(a)].bytes);
    CHECK(c.get(kind, a).messages == want[static_cast<size_t>(a)].messages);
  }
  Traffic all = c.total(), mine = c.by_collective(kind);
  CHECK(all == mine);  // nothing booked under another kind
}

const Shape kBase{2, 3, 5};  // odd sizes; dims of 2, 3 and 5
const DType kDtypes[] = {DType::f32, DType::bf16};
const std::pair<int, int> kSplitConcat[] = {{0, 0}, {0, 2}, {1, 0}, {2, 1}, {-1, -1}};

// Runs `blocking` and `started` forms, checks they agree bit for bit, returns the blocking result.
template <typename Blocking, typename Started>
Tensor both_forms(Collectives& coll, Blocking blocking, Started started) {
  coll.traffic().reset();
  Tensor out = blocking();
  Traffic counted = coll.traffic().total();
  Pending p = started();
  Tensor async = p.wait();
  CHECK(same_bits(out, async));
  CHECK(coll.traffic().total().bytes == 2 * counted.bytes);  // the started form counts the same
  return out;
}

void run_matrix(const Torus& torus, Algorithm algo, size_t chunk_bytes) {
  Collectives coll(torus, CollectivesOptions{algo, chunk_bytes, chunk_bytes});
  const int me = torus.rank();
  for (Axes axes : Axes::all) {
    const int G = torus.group_size(axes), gme = torus.shard_index(axes);
    for (DType dt : kDtypes) {
      INFO("algo " << algorithm_name(algo) << " axes " << axes.str() << " (" << G << " ranks) dtype "
                   << tori::kernels::dtype_name(dt) << " chunk_bytes " << chunk_bytes);
      const size_t es = tori::kernels::dtype_size(dt);
      // all_gather along every dim.
      for (int d = 0; d < 3; ++d) {
        INFO("all_gather dim " << d);
        Tensor in = make_input(kBase, dt, me);
        Tensor out = both_forms(coll, [&] { return coll.all_gather(in, d, axes); },
                                [&] { return coll.start_all_gather(in, d, axes); });
        Shape want = kBase;
        want[static_cast<size_t>(d)] *= G;
        check_tensor(out, want, dt, [&](std::vector<int64_t> idx) {
          int g = static_cast<int>(idx[static_cast<size_t>(d)] / kBase[static_cast<size_t>(d)]);
          idx[static_cast<size_t>(d)] %= kBase[static_cast<size_t>(d)];
          return value(member_rank(torus, axes, g), flatten(idx, kBase), dt);
        });
        if (G == 1) CHECK(out.raw() == in.raw());  // returned unchanged
        coll.traffic().reset();
        coll.all_gather(in, d, axes);
        check_traffic(coll.traffic(), Collective::all_gather,
                      expect_gather_scatter(torus, axes, in.numel(), es, algo));
      }
      // reduce_scatter along every dim.
      for (int d = 0; d < 3; ++d) {
        INFO("reduce_scatter dim " << d);
        Shape in_shape = kBase;
        in_shape[static_cast<size_t>(d)] *= G;
        Tensor in = make_input(in_shape, dt, me);
        Tensor out = both_forms(coll, [&] { return coll.reduce_scatter(in, d, axes); },
                                [&] { return coll.start_reduce_scatter(in, d, axes); });
        check_tensor(out, kBase, dt, [&](std::vector<int64_t> idx) {
          idx[static_cast<size_t>(d)] += gme * kBase[static_cast<size_t>(d)];
          float s = 0;
          for (int g = 0; g < G; ++g) s += value(member_rank(torus, axes, g), flatten(idx, in_shape), dt);
          return s;
        });
        coll.traffic().reset();
        coll.reduce_scatter(in, d, axes);
        check_traffic(coll.traffic(), Collective::reduce_scatter,
                      expect_gather_scatter(torus, axes, out.numel(), 4, algo));
      }
      // all_reduce.
      {
        INFO("all_reduce");
        Tensor in = make_input(kBase, dt, me);
        Tensor out = both_forms(coll, [&] { return coll.all_reduce(in, axes); },
                                [&] { return coll.start_all_reduce(in, axes); });
        check_tensor(out, kBase, dt, [&](const std::vector<int64_t>& idx) {
          float s = 0;
          for (int g = 0; g < G; ++g) s += value(member_rank(torus, axes, g), flatten(idx, kBase), dt);
          return s;
        });
        coll.traffic().reset();
        coll.all_reduce(in, axes);
        check_traffic(coll.traffic(), Collective::all_reduce,
                      expect_all_reduce(torus, axes, in.numel(), algo));
      }
      // all_to_all over several (split, concat) pairs, including the same dim and negative dims.
      for (auto [s0, c0] : kSplitConcat) {
        const int s = s0 < 0 ? s0 + 3 : s0, c = c0 < 0 ? c0 + 3 : c0;
        INFO("all_to_all split " << s0 << " concat " << c0);
        Shape in_shape = kBase;
        in_shape[static_cast<size_t>(s)] *= G;
        Tensor in = make_input(in_shape, dt, me);
        Tensor out = both_forms(coll, [&] { return coll.all_to_all(in, s0, c0, axes); },
                                [&] { return coll.start_all_to_all(in, s0, c0, axes); });
        Shape piece = kBase, want = kBase;  // piece: split dim / G (= kBase)
        want[static_cast<size_t>(c)] *= G;
        check_tensor(out, want, dt, [&](std::vector<int64_t> idx) {
          int src = static_cast<int>(idx[static_cast<size_t>(c)] / piece[static_cast<size_t>(c)]);
          idx[static_cast<size_t>(c)] %= piece[static_cast<size_t>(c)];
          idx[static_cast<size_t>(s)] += gme * piece[static_cast<size_t>(s)];
          return value(member_rank(torus, axes, src), flatten(idx, in_shape), dt);
        });
        coll.traffic().reset();
        coll.all_to_all(in, s0, c0, axes);
        check_traffic(coll.traffic(), Collective::all_to_all,
                      expect_all_to_all(torus, axes, in.nbytes(), algo));
      }
    }
  }
  // ppermute along every axis, both directions and a longer shift.
  for (Axis axis : kAxes)
    for (int shift : {+1, -1, 2}) {
      INFO("ppermute axis " << axis_name(axis) << " shift " << shift);
      const int n = torus.shape()[axis];
      Tensor in = make_input({3, 7}, DType::f32, me);
      Tensor out = both_forms(coll, [&] { return coll.ppermute(in, axis, shift); },
                              [&] { return coll.start_ppermute(in, axis, shift); });
      Coords from = torus.coords();
      from[axis] = wrap(from[axis] - shift, n);
      int src = rank_of(torus.shape(), from);
      check_tensor(out, {3, 7}, DType::f32,
                   [&](const std::vector<int64_t>& idx) { return value(src, flatten(idx, {3, 7}), DType::f32); });
      coll.traffic().reset();
      coll.ppermute(in, axis, shift);
      AxisTraffic want{};
      if (wrap(shift, n) != 0) want[static_cast<size_t>(axis)] = {in.nbytes(), 1};
      check_traffic(coll.traffic(), Collective::ppermute, want);
    }
}

}  // namespace

TEST_CASE("every collective, algorithm, axis set, dim and dtype gives the exact result", "[mpi]") {
  for (const TorusShape& shape : shapes_under_test()) {
    INFO("torus " << shape.str());
    Torus torus(MPI_COMM_WORLD, shape);
    for (Algorithm algo : kAlgorithms) {
      // Small odd pieces split every message and reduction into many.
      run_matrix(torus, algo, 44);
    }
  }
}

TEST_CASE("large tensors with default chunks agree across algorithms", "[mpi]") {
  const int64_t n = 3 * 70001;  // ~820 KiB f32 per rank: several 256 KiB chunks per transfer
  for (const TorusShape& shape : shapes_under_test()) {
    INFO("torus " << shape.str());
    Torus torus(MPI_COMM_WORLD, shape);
    for (Axes axes : {Axes::x, Axes::yz, Axes::xyz}) {
      const int G = torus.group_size(axes);
      Tensor in = make_input({G * n}, DType::f32, torus.rank());
      std::vector<Tensor> ag, rs, ar;
      for (Algorithm algo : kAlgorithms) {
        Collectives coll(torus, CollectivesOptions{algo});
        ag.push_back(coll.all_gather(in, 0, axes));
        rs.push_back(coll.reduce_scatter(in, 0, axes));
        ar.push_back(coll.all_reduce(in, axes));
      }
      INFO("axes " << axes.str());
      for (size_t i = 1; i < ag.size(); ++i) {
        CHECK(same_bits(ag[0], ag[i]));
        CHECK(same_bits(rs[0], rs[i]));  // integer-valued sums are exact in any order
        CHECK(same_bits(ar[0], ar[i]));
      }
      // Spot-check the gathered and reduced values.
      int64_t last = G * G * n - 1;
      CHECK(ag[0].get(last) == value(member_rank(torus, axes, G - 1), G * n - 1, DType::f32));
      float s = 0;
      for (int g = 0; g < G; ++g) s += value(member_rank(torus, axes, g), G * n - 1, DType::f32);
      CHECK(ar[0].get(G * n - 1) == s);
    }
  }
}

TEST_CASE("two collectives in flight overlap compute and match blocking results", "[mpi][async]") {
  for (const TorusShape& shape : shapes_under_test()) {
    INFO("torus " << shape.str());
    Torus torus(MPI_COMM_WORLD, shape);
    for (Algorithm algo : kAlgorithms) {
      INFO("algo " << algorithm_name(algo));
      Collectives coll(torus, CollectivesOptions{algo});
      const int G = torus.group_size(Axes::xyz);
      Tensor a = make_input({64, G * 33}, DType::f32, torus.rank());
      Tensor b = make_input({G * 17, 9}, DType::bf16, torus.rank());
      Tensor want_a = coll.reduce_scatter(a, 1, Axes::xyz);
      Tensor want_b = coll.all_gather(b, 0, Axes::yz);
      Tensor want_c = coll.ppermute(a, Axis::x, 1);
      Pending pa = coll.start_reduce_scatter(a, 1, Axes::xyz);
      Pending pb = coll.start_all_gather(b, 0, Axes::yz);
      Pending pc = coll.start_ppermute(a, Axis::x, 1);
      // Compute while they run (the progress thread drives them).
      double acc = 0;
      for (int i = 0; i < 200000; ++i) acc += static_cast<double>(i % 7) * 0.5;
      CHECK(acc > 0);
      int polls = 0;
      while (!pb.ready()) ++polls;  // ready() never blocks; pb finishes without a wait()
      CHECK(same_bits(pc.wait(), want_c));  // waited out of order
      CHECK(same_bits(pb.wait(), want_b));
      CHECK(same_bits(pa.wait(), want_a));
      CHECK_THROWS_AS(pa.wait(), tori::Error);  // a handle is waited once
      // A blocking call after started ones queues behind them.
      Pending pd = coll.start_all_reduce(a, Axes::xy);
      Tensor e = coll.all_reduce(b, Axes::z);
      CHECK(same_bits(e, coll.all_reduce(b, Axes::z)));
      pd.wait();
    }
  }
}

TEST_CASE("ppermute through shared memory equals ppermute through MPI", "[mpi][shm]") {
  // Sizes: odd, one element, exactly a slot, and above a slot (which goes through MPI even with
  // shared memory on). Each size runs several times in a row and several started at once (waited
  // in reverse order), so slots are reused while the peer lags.
  const int64_t slot = int64_t(ShmRing::kDefaultSlotBytes / 4);
  const std::vector<int64_t> sizes = {1, 17, 4099, slot, slot + 3, 300007, 5};
  for (const TorusShape& shape : shapes_under_test()) {
    INFO("torus " << shape.str());
    Torus torus(MPI_COMM_WORLD, shape);
    Collectives shm(torus, CollectivesOptions{});
    CollectivesOptions plain_opt;
    plain_opt.shm_ppermute = false;
    Collectives plain(torus, plain_opt);
    for (Axis axis : kAxes)
      for (int shift : {+1, -1, 2})
        for (int64_t n : sizes) {
          INFO("axis " << axis_name(axis) << " shift " << shift << " elements " << n);
          Tensor in = make_input({n}, DType::f32, torus.rank());
          Tensor want = plain.ppermute(in, axis, shift);
          const uint64_t before = shm.shm_ppermutes();
          for (int rep = 0; rep < 3; ++rep) CHECK(same_bits(shm.ppermute(in, axis, shift), want));
          std::vector<Pending> started;
          for (int k = 0; k < 5; ++k) started.push_back(shm.start_ppermute(in, axis, shift));
          for (auto p = started.rbegin(); p != started.rend(); ++p) CHECK(same_bits(p->wait(), want));
          shm.traffic().reset();
          shm.ppermute(in, axis, shift);
          AxisTraffic traffic{};
          if (wrap(shift, torus.shape()[axis]) != 0) traffic[size_t(axis)] = {in.nbytes(), 1};
          check_traffic(shm.traffic(), Collective::ppermute, traffic);
          // Every rank of this test shares one host: served by shared memory exactly when the
          // ring has two or more ranks, the shift is ±1 round it and the tensor fits a slot.
          const int g = torus.shape()[axis], s = wrap(shift, g);
          const bool served = g > 1 && (s == 1 || s == g - 1) && size_t(in.nbytes()) <= ShmRing::kDefaultSlotBytes;
          CHECK(shm.shm_ppermutes() - before == (served ? 9u : 0u));  // 3 + 5 + 1 above
          CHECK(plain.shm_ppermutes() == 0);
        }
    // Interleaved with other collectives on the same axis communicators (shared progress thread).
    Tensor a = make_input({4 * 1031}, DType::f32, torus.rank());
    Tensor want_p = plain.ppermute(a, Axis::x, 1), want_g = plain.all_gather(a, 0, Axes::xyz);
    Pending p1 = shm.start_ppermute(a, Axis::x, 1);
    Pending g1 = shm.start_all_gather(a, 0, Axes::xyz);
    Pending p2 = shm.start_ppermute(a, Axis::x, 1);
    CHECK(same_bits(g1.wait(), want_g));
    CHECK(same_bits(p2.wait(), want_p));
    CHECK(same_bits(p1.wait(), want_p));
    // More started transfers in one direction than slots: a clear error (on every rank alike), not
    // a hang; those started still complete, and the ring goes on.
    if (torus.shape()[Axis::x] > 1) {
      std::vector<Pending> started;
      for (int k = 0; k < ShmRing::kSlots; ++k) started.push_back(shm.start_ppermute(a, Axis::x, 1));
      CHECK_THROWS_WITH(shm.start_ppermute(a, Axis::x, 1), Catch::Contains("not yet waited in one direction"));
      for (Pending& p : started) CHECK(same_bits(p.wait(), want_p));
      CHECK(same_bits(shm.ppermute(a, Axis::x, 1), want_p));
    }
  }
}

TEST_CASE("bad shapes, dims and dtypes are clear errors on every rank", "[mpi][errors]") {
  const int n = world_size();
  CHECK_THROWS_WITH(Torus(MPI_COMM_WORLD, TorusShape{{n + 1, 1, 1}}),
                    Catch::Contains("MPI ranks") && Catch::Contains("allowed"));
  CHECK_THROWS_AS(Torus(MPI_COMM_WORLD, "2x2"), tori::InputError);
  Torus torus(MPI_COMM_WORLD, "auto");
  CHECK(torus.shape() == auto_torus_shape(n));
  CHECK(torus.rank() == world_rank());
  int cart_rank = -1;
  MPI_Comm_rank(torus.comm(Axes::xyz), &cart_rank);
  CHECK(cart_rank == torus.shard_index(Axes::xyz));
  MPI_Errhandler eh;
  MPI_Comm_get_errhandler(torus.comm(Axes::x), &eh);
  CHECK(eh == MPI_ERRORS_RETURN);
  MPI_Errhandler_free(&eh);
  Collectives coll(torus);
  const int G = torus.group_size(Axes::xyz);
  Tensor t = make_input({2, 3}, DType::f32, 0);
  CHECK_THROWS_WITH(coll.all_gather(t, 2, Axes::x), Catch::Contains("dim 2 out of range") &&
                                                        Catch::Contains("allowed: -2..1"));
  CHECK_THROWS_WITH(coll.all_to_all(t, 0, -3, Axes::x), Catch::Contains("concat_dim"));
  Tensor s8 = Tensor({2, G}, DType::s8);
  CHECK_THROWS_WITH(coll.all_reduce(s8, Axes::xyz), Catch::Contains("allowed: f32, bf16"));
  if (G > 1) {
    Tensor odd = make_input({2, G + 1}, DType::bf16, 0);
    CHECK_THROWS_WITH(coll.reduce_scatter(odd, 1, Axes::xyz),
                      Catch::Contains("reduce_scatter over xyz") && Catch::Contains("bf16") &&
                          Catch::Contains("not divisible by " + std::to_string(G)));
    CHECK_THROWS_WITH(coll.all_to_all(odd, -1, 0, Axes::xyz), Catch::Contains("not divisible"));
  }
  // `out`: written into and returned; wrong shape, dtype or overlap is an error.
  Tensor x = make_input({2, 3 * G}, DType::f32, torus.rank());
  Tensor buf({2, 3 * G * G}, DType::f32);
  Tensor got = coll.all_gather(x, 1, Axes::xyz, buf);
  CHECK(got.raw() == buf.raw());
  CHECK(same_bits(got, coll.all_gather(x, 1, Axes::xyz)));
  Tensor rs_out({2, 3}, DType::f32);
  CHECK(coll.start_reduce_scatter(x, 1, Axes::xyz, rs_out).wait().raw() == rs_out.raw());
  CHECK(same_bits(rs_out, coll.reduce_scatter(x, 1, Axes::xyz)));
  CHECK_THROWS_WITH(coll.all_gather(x, 1, Axes::xyz, Tensor({2, 3}, DType::bf16)),
                    Catch::Contains("out is bf16 [2, 3]") && Catch::Contains("allowed: f32"));
  CHECK_THROWS_WITH(coll.all_reduce(x, Axes::xyz, x), Catch::Contains("overlaps"));
  Tensor copy({2, 3 * G}, DType::f32);
  CHECK(same_bits(coll.all_reduce(x, Axes::none, copy), x));  // one-rank group: copied into out
  CHECK(copy.raw() != x.raw());
  // int8 moves (all_gather) work.
  Tensor q = Tensor({3}, DType::s8);
  for (int i = 0; i < 3; ++i) q.set(i, static_cast<float>(torus.rank() - i));
  Tensor gq = coll.all_gather(q, 0, Axes::xyz);
  CHECK(gq.numel() == 3 * G);
  CHECK(gq.get(3 * G - 1) == static_cast<float>(member_rank(torus, Axes::xyz, G - 1) - 2));
}
