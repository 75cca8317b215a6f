// gathered_matmul (runtime/weight_prefetch.hpp): the weight-gathered layouts' product of
// activations with all-gathered weight blocks, block by block where they lie, equals the product
// with the blocks placed (as WeightPrefetch::take places them), for W_in's and W_out's
// arrangements over every member grid (x ranks × yz ranks) a torus of up to 8 gives.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "kernels/matmul.hpp"
#include "runtime/weight_prefetch.hpp"

using tori::kernels::DType;
using tori::kernels::Tensor;

namespace {

Tensor random_f32(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  Tensor t({rows, cols}, DType::f32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(gen);
  return t;
}

}  // namespace

TEST_CASE("gathered_matmul equals the matmul with the gathered blocks placed") {
  struct Grid { int members, nx; };
  for (const Grid& grid : {Grid{1, 1}, Grid{2, 2}, Grid{2, 1}, Grid{4, 2}, Grid{4, 1}, Grid{8, 2}})
    for (bool x_on_rows : {true, false}) {
      const int nj = grid.members / grid.nx;
      const int64_t r = 24, c = 20, M = 5;
      const int row_blocks = x_on_rows ? grid.nx : nj, col_blocks = x_on_rows ? nj : grid.nx;
      INFO("members " << grid.members << " nx " << grid.nx << " x_on_rows " << x_on_rows);
      const Tensor g = random_f32(grid.members * r, c, 7 + uint32_t(grid.members));
      Tensor placed({row_blocks * r, col_blocks * c}, DType::f32);
      for (int m = 0; m < grid.members; ++m) {
        const int xm = m / nj, jm = m % nj;
        const int rb = x_on_rows ? xm : jm, cb = x_on_rows ? jm : xm;
        for (int64_t i = 0; i < r; ++i)
          for (int64_t j = 0; j < c; ++j)
            placed.data<float>()[(rb * r + i) * col_blocks * c + cb * c + j] = g.data<float>()[(m * r + i) * c + j];
      }
      const Tensor x = random_f32(M, row_blocks * r, 3);
      Tensor want;
      tori::kernels::matmul_ref(x, placed, want);
      const Tensor got = tori::runtime::gathered_matmul(x, g, grid.members, grid.nx, x_on_rows);
      REQUIRE(got.shape() == want.shape());
      // f32 accumulation in another order than the f64 reference: K = 48 terms of |x w| <= 1.
      for (int64_t i = 0; i < got.numel(); ++i) CHECK(std::fabs(got.get(i) - want.get(i)) < 1e-4);
    }
  CHECK_THROWS_WITH(tori::runtime::gathered_matmul(random_f32(3, 7, 1), random_f32(8, 4, 2), 2, 2, true),
                    Catch::Contains("[M, 8]"));
}
