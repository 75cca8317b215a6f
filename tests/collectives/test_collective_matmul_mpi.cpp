// Looped collective einsums equal the plain collective + matmul they replace, on every axis of the
// torus (whatever its size), one-way and bidirectional, for odd row counts and M = 1.
#include <mpi.h>

#include <catch2/catch.hpp>
#include <cmath>

#include "collectives/collective_matmul.hpp"
#include "kernels/columns.hpp"
#include "kernels/matmul.hpp"

using namespace tori::collectives;
using tori::kernels::Tensor;

namespace {
// The looped forms sum the same products in another order than plain collective + matmul: f32
// reordering of K = 5·G terms of magnitude ~1 stays far below 1e-5 relative.
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

TEST_CASE("all_gather_matmul and matmul_reduce_scatter equal their plain forms", "[collective_matmul]") {
  Torus torus(MPI_COMM_WORLD, "auto");
  Collectives coll(torus);
  const int rank = torus.rank();
  for (Axis axis : kAxes) {
    const int G = torus.shape()[axis];
    for (int64_t M : {int64_t(1), int64_t(3), int64_t(8)}) {
      for (bool bidir : {false, true}) {
        INFO("axis " << axis_name(axis) << " G " << G << " M " << M << " bidir " << bidir);
        const int64_t Kc = 5, K = Kc * G, Nc = 7, N = Nc * G;
        const Tensor W = filled(K, N, -1, 1);
        auto backend = tori::kernels::Backend::onednn;
        // all_gather(x, -1, axis) @ W with W's row blocks
        std::vector<tori::kernels::PackedWeight> rows;
        for (int j = 0; j < G; ++j) rows.push_back(tori::kernels::pack_weight(W.narrow0(j * Kc, Kc).clone(), tori::kernels::WeightFormat::f32, backend));
        Tensor x = filled(M, Kc, rank, 2);
        Tensor want;
        tori::kernels::matmul_ref(coll.all_gather(x, -1, Axes(axis)), W, want);
        Tensor got = all_gather_matmul(coll, x, axis, rows, bidir);
        CHECK(rel_err(got, want) < kReorderRelTol);
        // reduce_scatter(x @ W, -1, axis) with W's column blocks
        std::vector<tori::kernels::PackedWeight> blocks;
        for (int j = 0; j < G; ++j) blocks.push_back(tori::kernels::pack_weight(tori::kernels::slice_columns(W, j * Nc, Nc), tori::kernels::WeightFormat::f32, backend));
        Tensor xf = filled(M, K, rank, 3), full;
        tori::kernels::matmul_ref(xf, W, full);
        Tensor want_rs = coll.reduce_scatter(full, -1, Axes(axis));
        Tensor got_rs = matmul_reduce_scatter(coll, xf, axis, blocks, bidir);
        REQUIRE(got_rs.shape() == want_rs.shape());
        CHECK(rel_err(got_rs, want_rs) < kReorderRelTol);
      }
    }
  }
}

TEST_CASE("the looped forms send what a ring would, as ppermutes", "[collective_matmul]") {
  Torus torus(MPI_COMM_WORLD, "auto");
  Collectives coll(torus);
  const Axis axis = Axis::x;
  const int G = torus.shape()[axis];
  const int64_t M = 4, Kc = 3, N = 2 * G;
  std::vector<tori::kernels::PackedWeight> rows, blocks;
  for (int j = 0; j < G; ++j) {
    rows.push_back(tori::kernels::pack_weight(filled(Kc, N, -1, j), tori::kernels::WeightFormat::f32, tori::kernels::Backend::reference));
    blocks.push_back(tori::kernels::pack_weight(filled(Kc * G, 2, -1, j), tori::kernels::WeightFormat::f32, tori::kernels::Backend::reference));
  }
  coll.traffic().reset();
  all_gather_matmul(coll, filled(M, Kc, torus.rank(), 0), axis, rows, false);
  // G-1 transfers of my [M, Kc] chunk
  CHECK(coll.traffic().get(Collective::ppermute, axis).bytes == uint64_t((G - 1) * M * Kc * 4));
  CHECK(coll.traffic().get(Collective::ppermute, axis).messages == uint64_t(G - 1));
  coll.traffic().reset();
  matmul_reduce_scatter(coll, filled(M, Kc * G, torus.rank(), 0), axis, blocks, false);
  // G-1 transfers of an [M, N/G] partial sum
  CHECK(coll.traffic().get(Collective::ppermute, axis).bytes == uint64_t((G - 1) * M * 2 * 4));
  CHECK_THROWS_AS(parse_overlap("loopy"), tori::InputError);
  CHECK(parse_overlap("looped-bidir") == Overlap::looped_bidir);
}
