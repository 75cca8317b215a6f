#pragma once
// TSVD checkpoints (kernels/tsvd.hpp; design in docs/tsvd.md). `tori compress` factors a model's
// decoder matrices once and writes DIR/:
//   tsvd.safetensors  per compressed matrix and tile (i, j): "<name>.u.<i>.<j>" [T_k, r] and
//                     "<name>.v.<i>.<j>" [r, T_n] (f32, bf16 or int8), e.g. "layers.3.w_in.u.0.2";
//                     int8 adds per-column f32 scales (factor ≈ q · scale[column]):
//                     "<name>.u_scale.<i>.<j>" [r] (U's columns: each belongs to one tile) and
//                     "<name>.v_scale.<j>" [T_n] (V's columns, shared by the tiles of column block j:
//                     the maxima over i, so they are the per-column scales of the stacked V̂_j that
//                     pack_tsvd builds, and packing the dequantised factors int8 gives back q)
//   tsvd.json         {"format": "tori-tsvd", "version": 1, "source_model", "seed", "model_name",
//                      "tile": [T_k, T_n], "method" (plain | activation-aware), "allocation"
//                      (uniform | global), "rule", "factor_dtype", "calibration" (activation-aware:
//                      text, tokenizer, tokens, window),
//                      "matrices": {"<name>": {"shape": [K, N], "ranks": [r per tile, row-major]}}}
//                     (the same JSON is in the safetensors header's __metadata__ "tori_tsvd")
// TsvdWeights serves the source model with every compressed matrix replaced by its factored
// product U·V per tile, box by box from the memory-mapped factors (a rank reads only the tiles its
// shard overlaps), so the reference and every sharded run execute the same compressed model.
// A checkpoint that does not match the model is refused, naming the tensor: another model, a
// matrix the model lacks or of another shape, a tile not dividing it, a missing or misshapen
// factor.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/tsvd.hpp"
#include "models/weight_source.hpp"

namespace tori::models {

class SafetensorsFile;

struct TsvdCompressOptions {
  kernels::TileShape tile{0, 0};  // 0 = tsvd_default_tile (tori compress passes runtime::default_tsvd_tile)
  kernels::RankRule rule;
  std::string matrices = "all";   // all (wq, wk, wv, wo, w_in, w_gate, w_out) | ffn (w_in, w_gate, w_out)
  std::string factor_dtype = "f32";  // f32 | bf16 | int8 (per-column scales)
  std::string method = "plain";      // plain | activation-aware (needs calibration)
  std::string allocation = "uniform";  // uniform (the rule in every tile) | global (one budget, see below)
  bool compare_svd = false;       // also the error of one whole-matrix SVD at the same parameter count
  // activation-aware: per matrix the Gram blocks of its calibration inputs (ActivationStats::gram,
  // tsvd_calibration.hpp, with the tile's rows as block); recorded in tsvd.json as calibration_meta.
  std::function<kernels::ActivationGram(const std::string&)> calibration;
  std::string calibration_meta;   // JSON object text
  // Optional held-out inputs X [M, K] per matrix (ActivationStats::rows): each report then has the
  // activation-weighted errors.
  std::function<kernels::Tensor(const std::string&)> evaluation;
};

// Checks the options against the model and fills in the default tile: InputError naming the flag
// (--matrices, --factor-dtype, --method, --allocation, --tile, --ratio, --rank, --energy). Called by
// compress_tsvd; `tori compress` calls it first so that bad flags fail before a calibration pass.
void check_tsvd_options(const ModelConfig& c, TsvdCompressOptions& opt);

// Global rank allocation: one budget of Σ_tiles r_uniform rank units (each unit r·(T_k + T_n)
// parameters, the same for every tile), every tile starting at rank 1 and the rest given one at a
// time to the tile whose next singular value σ removes the most normalised error σ² / ‖W_m‖²
// (‖W_m‖² = Σ σ² over all tiles of its matrix m, in the whitened space when activation-aware),
// never past min(T_k, T_n) − 1. The singular values of a tile descend, so this greedy choice
// minimises Σ_m ‖W_m − Ŵ_m‖² / ‖W_m‖² (the sum of the matrices' squared relative errors) over all
// allocations of that budget. spectra: per matrix; returns per matrix its per-tile ranks.
std::vector<std::vector<int64_t>> allocate_global_ranks(const std::vector<kernels::TileSpectrum>& spectra,
                                                        int64_t uniform_rank);

// The compressed matrices of `matrices` (all | ffn; InputError naming --matrices otherwise).
std::vector<std::string> tsvd_matrix_names(const ModelConfig& c, const std::string& matrices);
// The largest square tile of 256, 192, 128, 96, 64, 48, 32 dividing every compressed matrix's
// sides; InputError naming --tile when none does.
// (The matrices alone: `tori compress` uses runtime::default_tsvd_tile, which also holds every
// layout's shards whole, padded heads included.)
int64_t tsvd_default_tile(const ModelConfig& c, const std::vector<std::string>& names);

struct TsvdMatrixReport {
  std::string name;
  int64_t k = 0, n = 0;
  int64_t rank_min = 0, rank_max = 0;
  int64_t params = 0;          // Σ r·(T_k + T_n)
  double rel_error = 0;        // ‖W − Ŵ‖_F / ‖W‖_F of the stored (rounded) factors
  double svd_rel_error = -1;   // one SVD of W at rank floor(params / (K + N)); -1 = not computed
  // With evaluation inputs X: ‖X·(W − Ŵ)‖_F / ‖X·W‖_F (-1 = not computed); and of the SVD above.
  double act_error = -1, svd_act_error = -1;
};

// Factors every matrix and writes the checkpoint; `source_model` and `seed` are recorded so that
// --model DIR reopens the source. Throws InputError for bad options (naming the flag).
std::vector<TsvdMatrixReport> compress_tsvd(const WeightSource& src, const std::string& source_model,
                                            uint64_t seed, const TsvdCompressOptions& opt,
                                            const std::string& out_dir);

// True if `path` is a directory holding tsvd.json.
bool is_tsvd_checkpoint(const std::string& path);

class TsvdWeights final : public WeightSource {
 public:
  // Validates the checkpoint in `dir` against base's model (InputError naming the tensor).
  TsvdWeights(std::unique_ptr<WeightSource> base, const std::string& dir);
  ~TsvdWeights() override;
  const ModelConfig& config() const override { return base_->config(); }
  kernels::Tensor read(const std::string& name, const Box& box) const override;
  // The factored execution's reading (runtime/layer_shards.hpp): the tile of a compressed matrix
  // (nullopt: dense), and the factors of a box of whole tiles straight from the mapped file, f32.
  std::optional<kernels::TileShape> factor_tile(const std::string& name) const override;
  std::optional<kernels::TsvdFactors> read_factors(const std::string& name, const Box& box) const override;
  int64_t factor_parameters(const std::string& name) const override;
  bool int8_factors(const std::string& name) const override { return factor_dtype_ == "int8" && find(name); }
  // The ranks of a compressed matrix (empty if `name` is dense).
  std::vector<int64_t> ranks(const std::string& name) const;
  kernels::TileShape tile() const { return tile_; }
  // f32 | bf16 | int8: how the factors are stored.
  const std::string& factor_dtype() const { return factor_dtype_; }
  // All factors of a compressed matrix, f32 as stored (int8: q · scale, with v_scale, which
  // pack_tsvd's int8 format quantises back to the same q and scales); Error if `name` is dense.
  // int8 in the parallel block: W_o and W_out are one output matmul [H·D + F, E], so their V scales
  // are both tensors' column maxima (v_scale), as the dense int8 run's (rounded_weights.hpp).
  kernels::TsvdFactors factors(const std::string& name) const;

 private:
  struct Matrix {
    int64_t k = 0, n = 0;
    std::vector<int64_t> ranks;
  };
  std::unique_ptr<WeightSource> base_;
  std::unique_ptr<SafetensorsFile> file_;
  kernels::TileShape tile_;
  std::vector<std::pair<std::string, Matrix>> matrices_;
  std::string factor_dtype_ = "f32";
  const Matrix* find(const std::string& name) const;
  // Factor 'u' or 'v' of tile (i, j) as f32 (dequantised when int8).
  kernels::Tensor read_factor(const std::string& name, char uv, int64_t i, int64_t j, int64_t rank) const;
  // int8: the V scales [T_n] an int8 run packs column block j of `name` with (see factors()).
  kernels::Tensor v_scale(const std::string& name, int64_t j) const;
  // Tile (i, j)'s factors appended to f (and its V scales when int8).
  void append_tile(kernels::TsvdFactors& f, const std::string& name, const Matrix& m, int64_t i, int64_t j) const;
};

// The source model a TSVD checkpoint directory names (its tokenizer is the checkpoint's).
std::string tsvd_source_model(const std::string& dir);
// open_model's reading of a TSVD checkpoint directory: the source model named in tsvd.json,
// wrapped.
std::unique_ptr<WeightSource> open_tsvd_checkpoint(const std::string& dir);

}  // namespace tori::models
