#pragma once
// Tiled SVD (TSVD) weights (the thesis summarised in docs/paper.md and docs/tsvd.md): a weight W [K, N]
// cut into tiles of T_k × T_n, each tile replaced by a rank-r product U [T_k, r] · V [r, T_n], and
// x·W computed as two thin products per tile.
//
//   decomposition  tsvd_decompose: one LAPACK SVD per tile (LAPACKE_sgesdd, OpenBLAS's LAPACK), the
//                  singular values split evenly (U·√S, √S·Vᵀ: both factors on the same scale, which
//                  int8 per-column quantisation wants). Rank per tile from a compression ratio
//                  (ratio = T_k·T_n / (r·(T_k + T_n)); square tiles: t·t / (r·2t)), an energy
//                  budget (the fewest singular values keeping that share of Σ s²), or given.
//                  Activation-aware (SVD-LLM): with the Gram matrix G = XᵀX of the inputs a tile's
//                  rows see, G + λI = L·Lᵀ (Cholesky), SVD of Lᵀ·W, truncate, U = L⁻ᵀ·U_r·√S: the
//                  truncation then minimises ‖X·(W − W')‖_F, the error of x·W, not of W.
//   packing        pack_tsvd: the U's of row block i side by side, Û_i [T_k, R_i] (R_i = Σ_j r_ij),
//                  and the V's of column block j stacked, V̂_j [R'_j, T_n] (R'_j = Σ_i r_ij), each a
//                  PackedWeight (f32 | bf16 | int8 with per-column scales; oneDNN | OpenBLAS | reference),
//                  packed as a dense weight of its shape: on oneDNN in its column panels of 64
//                  (narrow factors it packs otherwise stay row-major, multiplied in place); int8 as
//                  s8 panels.
//   small batch    M <= kTsvdFusedMaxM (decode): tsvd_fused.hpp, both stages in one OpenMP region on
//                  the packed factors where they lie (panels or rows), up to 4 panels per thread read
//                  in lockstep at M = 1, no GEMM calls, no copies.
//   matmul         tsvd_matmul: Z_i [M, R_i] = x[:, block i] · Û_i (one GEMM per row block), the
//                  columns of Z regrouped by column block, y[:, block j] = Z_j [M, R'_j] · V̂_j (one
//                  GEMM per column block, the sum over row blocks inside it). nK + nN GEMMs, whatever
//                  the number of tiles: the thin products stay GEMM-sized. Every GEMM runs on
//                  contiguous operands through kernels::matmul (x's column blocks, Z and y's column
//                  blocks copied, M·(K + ΣR + N) floats: oneDNN 2.6 runs row-strided operands on its
//                  slow reference matmul), on per-thread scratch that only grows.
//   yardstick      tsvd_matmul_ref: per tile (x_i·U_ij)·V_ij in f64 loops, from the unpacked factors.
// FLOPs: Σ_tiles 2·M·r·(T_k + T_n) (= dense / ratio), counted by the matmul counter as they run.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/matmul.hpp"
#include "kernels/packed_weight.hpp"
#include "kernels/tensor.hpp"

namespace tori::kernels {

struct TileShape {
  int64_t rows = 0, cols = 0;  // T_k × T_n
};

// How many singular values each tile keeps: exactly one of ratio (≥ 1), energy (0, 1] or rank.
struct RankRule {
  double ratio = 0;
  double energy = 0;
  int64_t rank = 0;
  std::string describe() const;  // "ratio 2", "energy 0.9", "rank 64"
};

// The rank that stores 1/ratio of a tile's numbers: floor(T_k·T_n / (ratio·(T_k + T_n))).
// Throws InputError (naming `flag`) for ratio < 1 or a rank outside [1, min(T_k, T_n)).
int64_t rank_for_ratio(TileShape t, double ratio, const std::string& flag = "--ratio");
// Checks a given rank: 1 ≤ r < min(T_k, T_n) (a rank at the tile size stores more than the tile).
void check_tile_rank(TileShape t, int64_t rank, const std::string& what);

// The factors of one weight, unpacked f32: what a checkpoint stores and the reference multiplies.
struct TsvdFactors {
  int64_t k = 0, n = 0;  // the weight's shape [K, N]
  TileShape tile;
  std::vector<int64_t> ranks;  // [nK · nN], tile (i, j) at i·nN + j
  std::vector<Tensor> u;       // per tile [T_k, r_ij] f32
  std::vector<Tensor> v;       // per tile [r_ij, T_n] f32
  // int8 factors (a checkpoint's --factor-dtype int8): per tile the per-column scales [T_n] f32 that
  // V's column block is packed with, the whole weight's (every row block's maximum, as stored), so
  // that a grid holding only some row blocks (a shard, a looped einsum's block, a gathered
  // arrangement) quantises q·s back to the stored q. Empty, or a tile's entry undefined (padding's
  // zero tiles): the column maxima of the V̂_j being packed.
  std::vector<Tensor> v_scale;
  int64_t tiles_k() const { return tile.rows ? k / tile.rows : 0; }
  int64_t tiles_n() const { return tile.cols ? n / tile.cols : 0; }
  int64_t rank(int64_t i, int64_t j) const { return ranks[size_t(i * tiles_n() + j)]; }
  int64_t parameters() const;  // Σ r·(T_k + T_n)
  Tensor reconstruct() const;  // Σ U·V per tile: [K, N] f32
};

// Per tile, the singular values of W's tile (or of Lᵀ·W's with activation statistics), descending:
// what rank choices (ratio, energy, a global budget) are made from.
struct TileSpectrum {
  TileShape tile;
  int64_t tiles_k = 0, tiles_n = 0;
  std::vector<std::vector<float>> s;  // [nK · nN] each min(T_k, T_n) values
};

// Input statistics for activation-aware factorisation: gram[i] = X_iᵀ·X_i [T_k, T_k] f32 over the
// calibration rows, X_i the columns of the input that row block i multiplies. Empty = plain TSVD.
struct ActivationGram {
  std::vector<Tensor> gram;  // nK entries [T_k, T_k] f32
};
// Relative damping added to the Gram diagonal before Cholesky (λ = kWhitenDamping · mean diag G):
// keeps L invertible when some inputs are (near) zero on the calibration text (a dead channel would
// otherwise make the Gram matrix singular and L⁻ᵀ blow up), while staying far below the energy of
// the channels that matter.
constexpr double kWhitenDamping = 1e-3;

// w [K, N] f32; tile must divide K and N (InputError naming `what` otherwise). ranks: per tile
// (nK·nN) or one for all. gram: per row block or empty.
TsvdFactors tsvd_decompose(const Tensor& w, TileShape tile, const std::vector<int64_t>& ranks,
                           const ActivationGram& gram = {}, const std::string& what = "weight");
// Singular values of every tile (the same whitening as tsvd_decompose).
TileSpectrum tsvd_spectrum(const Tensor& w, TileShape tile, const ActivationGram& gram = {},
                           const std::string& what = "weight");
// Per tile rank from the rule and the spectrum.
std::vector<int64_t> tsvd_ranks(const TileSpectrum& spec, const RankRule& rule);

// The packed form tsvd_matmul runs.
struct TsvdWeight {
  int64_t k = 0, n = 0;
  TileShape tile;
  std::vector<int64_t> ranks;          // [nK · nN]
  std::vector<PackedWeight> u_rows;    // nK: Û_i [T_k, R_i], tile (i, j)'s columns at u_col[i·nN + j]
  std::vector<PackedWeight> v_cols;    // nN: V̂_j [R'_j, T_n], tile (i, j)'s rows at v_row[i·nN + j]
  std::vector<int64_t> u_col, v_row;   // offsets inside Û_i / V̂_j
  int64_t total_rank = 0;              // Σ r_ij: the columns of Z
  int64_t tiles_k() const { return tile.rows ? k / tile.rows : 0; }
  int64_t tiles_n() const { return tile.cols ? n / tile.cols : 0; }
  bool defined() const { return k > 0 && n > 0; }
  int64_t weight_bytes() const;        // bytes of all packed factors one matmul reads
  std::string describe() const;        // "[576, 1536] tsvd 192x192 r 48 f32/onednn"
};

// int8: Û_i's per-column scales are its columns' maxima (each column belongs to one tile); V̂_j's
// are f.v_scale's where given (their maximum over the tiles of column block j), else its columns'.
TsvdWeight pack_tsvd(const TsvdFactors& f, WeightFormat fmt, Backend backend);
// V̂_j's int8 scales [T_n] as pack_tsvd takes them: the given v_scale's maximum over the tiles of
// column block j, a column without any falling back to V̂_j's own maximum / 127.
Tensor tsvd_v_scales(const TsvdFactors& f, int64_t j);
// The factors as pack_tsvd(f, fmt, ·) holds them, back in f32: bf16 each element rounded; int8
// q·scale (U per column, V with tsvd_v_scales); f32 as given. What the single-process reference
// multiplies for a run of that format (models/rounded_weights.hpp), so verify measures the sharding.
TsvdFactors tsvd_as_packed(const TsvdFactors& f, WeightFormat fmt);

// Largest M the small-batch kernel (tsvd_fused.hpp: both stages in one OpenMP region on the stored
// factors, no per-block GEMM calls, no operand copies) takes; larger M run the nK + nN GEMMs.
// Chosen by `tori bench kernels --kernels tsvd` (docs/measurements/tsvd.md).
constexpr int64_t kTsvdFusedMaxM = 16;
// Whether tsvd_matmul takes the small-batch kernel for M rows: M <= kTsvdFusedMaxM, a backend other
// than reference, and AVX-512.
bool tsvd_fused_applies(int64_t M, const TsvdWeight& w);
// How many of w's factors (Û_i and V̂_j) sit in oneDNN's column panels (read there by the
// small-batch kernel; the rest are row-major or s8 panels): for tests and benchmarks.
int64_t tsvd_factors_in_onednn_panels(const TsvdWeight& w);

// y [..., N] (=|+=) scale · x [..., K] @ (the TSVD weight); x f32 or bf16 (converted once).
void tsvd_matmul(const Tensor& x, const TsvdWeight& w, Tensor& y, Epilogue ep = {});
// The yardstick: per tile (x_i · U_ij) · V_ij with f64 accumulation, from the unpacked factors.
void tsvd_matmul_ref(const Tensor& x, const TsvdFactors& f, Tensor& y, Epilogue ep = {});

// What tsvd_matmul does: flops Σ 2·M·r·(T_k + T_n); weight bytes of the packed factors; activation
// bytes of x, y and Z (written, regrouped when it is, read).
KernelCost tsvd_matmul_cost(int64_t M, const TsvdWeight& w);

}  // namespace tori::kernels
