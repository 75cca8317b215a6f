#pragma once
// The small-batch TSVD matmul (tsvd.hpp, tsvd_matmul at M <= kTsvdFusedMaxM): both thin products
// of a whole tiled-SVD weight in ONE OpenMP region, straight from the stacked factors, with no
// operand copies and no per-block GEMM calls. At decode (M = 1) a factored weight is a few KiB of
// activations against ~1/ratio of the dense weight's bytes, and nK + nN library GEMM calls (each
// a primitive lookup, a thread fork/join and operand copies) cost more than the bytes saved; here
// the weight costs two barriers.
//
//   stage 1   work item (row block i, panel p of 64 columns of Û_i):
//             Z_i[:, 64p .. 64p+64) = x[:, block i] · Û_i[:, 64p .. 64p+64)      (× the columns'
//             int8 scales)
//   barrier
//   stage 2   work item (column block j, panel q of 64 columns of V̂_j):
//             y[:, block j][64q ..] (=|+=) alpha · Σ_i Z_i[:, tile (i, j)'s columns] · V̂_j[tile
//             (i, j)'s rows, 64q ..]  (× the columns' int8 scales)
//
// Each item keeps its 64 output columns for up to 4 rows of x in 16 zmm accumulators and streams
// its factor rows once per 4 rows: memory-bound at M = 1 like the dense small-batch kernels. At M = 1
// an item takes up to 4 panels of one factor and reads them in lockstep (4 sequential streams per
// thread, as panel_gemv.hpp and the read-bandwidth measurement do); at M = 2, 2 panels.
// Factors are read where they lie (FusedLayout): oneDNN's packed column panels of 64 (f32
// BA16a64b, bf16 BA16a64b2a: each panel's rows one after the other, as panel_gemv.hpp describes),
// int8 s8 panels [ceil(cols/64), rows, 64] with per-column f32 scales (gemm_s8_f32.hpp), or
// row-major f32/bf16 (OpenBLAS, and oneDNN factors it did not pack in panels). bf16 is widened to
// f32 in registers; x stays f32 (the same arithmetic on every layout).
// Internal to kernels/: plain pointers only (the AVX-512 translation unit sees no inline code of
// other headers). Reached only after cpu_has_avx512() said yes.
#include <cstdint>

namespace tori::kernels::detail {

enum class FusedLayout : uint8_t { rows_f32, rows_bf16, panels_f32, panels_bf16, panels_s8 };

// One stacked factor [rows, cols] in `layout`. Panel layouts: panel p starts at element
// p · panel_stride (f32 and s8: row r of it at r · 64; bf16 pairs of rows interleaved: element
// (r, c) at (r / 2) · 128 + 2c + r % 2), columns beyond cols zero.
struct FusedFactor {
  FusedLayout layout = FusedLayout::rows_f32;
  const void* data = nullptr;
  const float* scales = nullptr;  // s8 only
  int64_t rows = 0, cols = 0;
  int64_t panel_stride = 0;       // panel layouts: elements from one panel to the next
};

struct TsvdFusedWeight {
  int64_t k = 0, n = 0, tk = 0, tn = 0, nk = 0, nn = 0;
  const FusedFactor* u = nullptr;  // nk: Û_i [T_k, R_i]
  const FusedFactor* v = nullptr;  // nn: V̂_j [R'_j, T_n]
  const int64_t* ranks = nullptr;  // per tile i·nn + j
  const int64_t* u_col = nullptr;  // tile's first column in Û_i
  const int64_t* v_row = nullptr;  // tile's first row in V̂_j
};

// x [M, K] f32 row-major; z scratch of M·Σ_i R_i floats (Z_i [M, R_i] one after the other);
// y [M, N] f32 row-major.
void tsvd_fused_avx512(const TsvdFusedWeight& w, const float* x, int64_t M, float* z, float* y, float alpha,
                       bool accumulate);

}  // namespace tori::kernels::detail
