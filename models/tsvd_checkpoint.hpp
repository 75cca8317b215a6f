#pragma once
// TSVD checkpoints (kernels/tsvd.hpp; design in docs/tsvd.md). `tori compress` factors a model's
// decoder matrices once and writes DIR/:
//   tsvd.safetensors  per compressed matrix and tile (i, j): "<name>.u.<i>.<j>" [T_k, r] and
//                     "<name>.v.<i>.<j>" [r, T_n] (f32 or bf16), e.g. "layers.3.w_in.u.0.2"
//   tsvd.json         {"format": "tori-tsvd", "version": 1, "source_model", "seed", "model_name",
//                      "tile": [T_k, T_n], "method", "rule", "factor_dtype",
//                      "matrices": {"<name>": {"shape": [K, N], "ranks": [r per tile, row-major]}}}
//                     (the same JSON is in the safetensors header's __metadata__ "tori_tsvd")
// TsvdWeights serves the source model with every compressed matrix replaced by its factored
// product U·V per tile, box by box from the memory-mapped factors (a rank reads only the tiles its
// shard overlaps), so the reference and every sharded run execute the same compressed model.
// A checkpoint that does not match the model is refused, naming the tensor: another model, a
// matrix the model lacks or of another shape, a tile not dividing it, a missing or misshapen
// factor.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/tsvd.hpp"
#include "models/weight_source.hpp"

namespace tori::models {

class SafetensorsFile;

struct TsvdCompressOptions {
  kernels::TileShape tile{0, 0};  // 0 = the default: tsvd_default_tile
  kernels::RankRule rule;
  std::string matrices = "all";   // all (wq, wk, wv, wo, w_in, w_gate, w_out) | ffn (w_in, w_gate, w_out)
  std::string factor_dtype = "f32";  // f32 | bf16
  bool compare_svd = false;       // also the error of one whole-matrix SVD at the same parameter count
};

// The compressed matrices of `matrices` (all | ffn; InputError naming --matrices otherwise).
std::vector<std::string> tsvd_matrix_names(const ModelConfig& c, const std::string& matrices);
// The largest square tile of 256, 192, 128, 96, 64, 48, 32 dividing every compressed matrix's
// sides (so tile boundaries fall on shard boundaries for every split of those sides into 2^k parts
// down to the tile); InputError naming --tile when none does.
int64_t tsvd_default_tile(const ModelConfig& c, const std::vector<std::string>& names);

struct TsvdMatrixReport {
  std::string name;
  int64_t k = 0, n = 0;
  int64_t rank_min = 0, rank_max = 0;
  int64_t params = 0;          // Σ r·(T_k + T_n)
  double rel_error = 0;        // ‖W − Ŵ‖_F / ‖W‖_F of the stored (rounded) factors
  double svd_rel_error = -1;   // one SVD of W at rank floor(params / (K + N)); -1 = not computed
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
  // The ranks of a compressed matrix (empty if `name` is dense).
  std::vector<int64_t> ranks(const std::string& name) const;
  kernels::TileShape tile() const { return tile_; }

 private:
  struct Matrix {
    int64_t k = 0, n = 0;
    std::vector<int64_t> ranks;
  };
  std::unique_ptr<WeightSource> base_;
  std::unique_ptr<SafetensorsFile> file_;
  kernels::TileShape tile_;
  std::vector<std::pair<std::string, Matrix>> matrices_;
  const Matrix* find(const std::string& name) const;
};

// The source model a TSVD checkpoint directory names (its tokenizer is the checkpoint's).
std::string tsvd_source_model(const std::string& dir);
// open_model's reading of a TSVD checkpoint directory: the source model named in tsvd.json,
// wrapped.
std::unique_ptr<WeightSource> open_tsvd_checkpoint(const std::string& dir);

}  // namespace tori::models
