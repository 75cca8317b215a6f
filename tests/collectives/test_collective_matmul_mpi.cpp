// Looped collective einsums equal the plain collective + matmul they replace, on every axis of the
// torus (whatever its size), gathering, scattering or both (2D), with 1 or 4 pieces per ring
// step, one-way and bidirectional, for an odd row count and M = 1.
#include <mpi.h>

#include <catch2/catch.hpp>
#include <cmath>

#include "collectives/collective_matmul.hpp"
#include "kernels/onednn_matmul.hpp"
#include "kernels/columns.hpp"
#include "kernels/matmul.hpp"

using namespace tori::collectives;
using tori::kernels::Tensor;

namespace {
// The looped forms sum the same products in another order than plain collective + matmul: f32
// reordering of K = 12·G terms of magnitude ~1 stays far below 1e-5 relative.
constexpr double kReorderRelTol = 1e-5;

// A value that depends on (rank or -1, tag, i, j) only: every rank builds the same W, and its own x.
float value(int rank, int tag, int64_t i, int64_t j) {
  return std::sin(0.37 * double(i) + 0.11 * double(j) + 1.3 * rank + 0.7 * tag);
}
Tensor filled(int64_t rows, int64_t cols, int rank, int tag) {
  Tensor t({rows, cols}, tori::kernels::DType::f32);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) t.data<float>()[i * cols + j] = value(rank, tag, i, j);
  return t;
}
double rel_err(const Tensor& a, const Tensor& b) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    num = std::max(num, double(std::abs(a.get(i) - b.get(i)))), den = std::max(den, double(std::abs(b.get(i))));
  return num / den;
}
}  // namespace

namespace {
const auto kF32 = tori::kernels::WeightFormat::f32;
const auto kOnednn = tori::kernels::Backend::onednn;
Tensor run(Collectives& coll, const Tensor& x, const EinsumWeights& w, bool bidir, Tensor* side = nullptr) {
  EinsumResult r = collective_einsum(coll, x, w, bidir);
  if (side) *side = r.side.wait();
  return r.y;
}
}  // namespace

TEST_CASE("the looped all-gather -> matmul and matmul -> reduce-scatter equal their plain forms", "[collective_matmul]") {
  Torus torus(MPI_COMM_WORLD, "auto");
  Collectives coll(torus);
  const int rank = torus.rank();
  for (Axis axis : kAxes) {
    const int G = torus.shape()[axis];
    for (int64_t M : {int64_t(1), int64_t(3)}) {
      for (int pieces : {1, 4}) {
        for (bool bidir : {false, true}) {
          INFO("axis " << axis_name(axis) << " G " << G << " M " << M << " pieces " << pieces << " bidir " << bidir);
          // Kc = 12 and Nc = 28 both divide into 1 and 4 pieces.
          const int64_t Kc = 12, K = Kc * G, Nc = 4 * 7, N = Nc * G;
          const Tensor W = filled(K, N, -1, 1), Ws = filled(K, 5, -1, 4);
          // all_gather(x, -1, axis) @ W, and @ W_side (all-reduced over no axes: complete)
          EinsumWeights ag = cut_einsum_weights(torus.shape(), Axes(axis), Axes::none, W, Ws, kF32, kOnednn, pieces);
          CHECK(ag.pieces == (G > 1 ? pieces : 1));
          Tensor x = filled(M, Kc, rank, 2), xg = coll.all_gather(x, -1, Axes(axis));
          Tensor want, want_side, got_side;
          tori::kernels::matmul_ref(xg, W, want);
          tori::kernels::matmul_ref(xg, Ws, want_side);
          Tensor got = run(coll, x, ag, bidir, &got_side);
          REQUIRE(got.shape() == want.shape());
          CHECK(rel_err(got, want) < kReorderRelTol);
          CHECK(rel_err(got_side, want_side) < kReorderRelTol);
          // reduce_scatter(x @ W, -1, axis)
          EinsumWeights rs = cut_einsum_weights(torus.shape(), Axes::none, Axes(axis), W, Tensor(), kF32, kOnednn, pieces);
          Tensor xf = filled(M, K, rank, 3), full;
          tori::kernels::matmul_ref(xf, W, full);
          Tensor want_rs = coll.reduce_scatter(full, -1, Axes(axis));
          Tensor got_rs = run(coll, xf, rs, bidir);
          REQUIRE(got_rs.shape() == want_rs.shape());
          CHECK(rel_err(got_rs, want_rs) < kReorderRelTol);
        }
      }
    }
  }
}

TEST_CASE("the 2D looped einsum (gather one axis set, scatter the other) equals its plain form", "[collective_matmul]") {
  Torus torus(MPI_COMM_WORLD, "auto");
  Collectives coll(torus);
  const int rank = torus.rank();
  // ws2d's two projections: gather yz / scatter x (with a side weight all-reduced over x), and
  // gather x / scatter yz; plus gather xyz / scatter none and the reverse (ws1d).
  const std::pair<Axes, Axes> cases[] = {{Axes::yz, Axes::x}, {Axes::x, Axes::yz}, {Axes::xyz, Axes::none},
                                         {Axes::none, Axes::xyz}};
  for (auto [gather, scatter] : cases) {
    for (bool bidir : {false, true})
    for (bool transient : {false, true}) {  // transient: tiles are strided views of W (weight-gathered)
      INFO("gather " << gather.str() << " scatter " << scatter.str() << " bidir " << bidir << " transient " << transient);
      const int Gg = torus.group_size(gather), Gs = torus.group_size(scatter);
      const int64_t M = 5, K = 8 * Gg, N = 12 * Gs;
      const Tensor W = filled(K, N, -1, 7), Ws = filled(K, 3, -1, 8);
      EinsumWeights w = cut_einsum_weights(torus.shape(), gather, scatter, W, Ws, kF32, kOnednn, kEinsumPieces,
                                           Tensor(), Tensor(), transient);
      if (transient) CHECK(w.tiles.front().onednn->ld == N);  // read in place, not packed
      Tensor x = filled(M, K / Gg, rank, 9), full, side_full;
      tori::kernels::matmul_ref(coll.all_gather(x, -1, gather), W, full);
      tori::kernels::matmul_ref(coll.all_gather(x, -1, gather), Ws, side_full);
      Tensor want = coll.reduce_scatter(full, -1, scatter), want_side = coll.all_reduce(side_full, scatter), got_side;
      Tensor got = run(coll, x, w, bidir, &got_side);
      REQUIRE(got.shape() == want.shape());
      CHECK(rel_err(got, want) < kReorderRelTol);
      CHECK(rel_err(got_side, want_side) < kReorderRelTol);
    }
  }
}

TEST_CASE("the looped forms send what a ring would, as ppermutes, in pieces", "[collective_matmul]") {
  Torus torus(MPI_COMM_WORLD, "auto");
  Collectives coll(torus);
  const Axis axis = Axis::x;
  const int G = torus.shape()[axis];
  const int64_t M = 4, Kc = 6, Nc = 4;
  const Tensor W = filled(Kc * G, Nc * G, -1, 0);
  const auto ref = tori::kernels::Backend::reference;
  // at most 4 pieces: Kc = 6 cuts into 3 (the largest divisor <= 4), Nc = 4 into 4
  EinsumWeights ag = cut_einsum_weights(torus.shape(), Axes::x, Axes::none, W, Tensor(), kF32, ref, 4);
  EinsumWeights rs = cut_einsum_weights(torus.shape(), Axes::none, Axes::x, W, Tensor(), kF32, ref, 4);
  const uint64_t Pg = G > 1 ? 3 : 1, Ps = G > 1 ? 4 : 1;
  CHECK(ag.pieces == int(Pg));
  CHECK(rs.pieces == int(Ps));
  coll.traffic().reset();
  run(coll, filled(M, Kc, torus.rank(), 0), ag, false);
  // G-1 transfers of my [M, Kc] chunk, each in Pg pieces
  CHECK(coll.traffic().get(Collective::ppermute, axis).bytes == uint64_t((G - 1) * M * Kc * 4));
  CHECK(coll.traffic().get(Collective::ppermute, axis).messages == uint64_t(G - 1) * Pg);
  coll.traffic().reset();
  run(coll, filled(M, Kc * G, torus.rank(), 0), rs, false);
  // G-1 transfers of an [M, N/G] partial sum, each in Ps pieces
  CHECK(coll.traffic().get(Collective::ppermute, axis).bytes == uint64_t((G - 1) * M * Nc * 4));
  CHECK(coll.traffic().get(Collective::ppermute, axis).messages == uint64_t(G - 1) * Ps);
  CHECK_THROWS_AS(parse_overlap("loopy"), tori::InputError);
  CHECK(parse_overlap("looped-bidir") == Overlap::looped_bidir);
}
