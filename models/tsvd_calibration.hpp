#pragma once
// Calibration for activation-aware TSVD (docs/tsvd.md): the single-process reference model
// (reference_model.hpp) runs over a text, an InputHook captures the input of every compressed
// matrix, and ActivationStats accumulates what the factorisation needs:
//   fitting     per layer and input site, the Gram blocks G_i = X_iᵀ·X_i [T_k, T_k] of each row
//               block i of tiles (f64 sums, handed out as kernels::ActivationGram f32);
//   evaluation  (keep_rows) the inputs X [M, K] themselves, for the activation-weighted error
//               ‖X·(W − Ŵ)‖_F / ‖X·W‖_F on held-out tokens.
// The sites (MatmulInput): wq, wk, wv share the attention norm's output; w_in, w_gate the FFN
// norm's; wo reads the attention output, w_out the gated FFN hidden.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/tsvd.hpp"
#include "models/reference_model.hpp"
#include "models/weight_source.hpp"

namespace tori::models {

// The tokens of a calibration (or evaluation) text.
struct CalibrationText {
  std::string path;
  std::vector<int32_t> tokens;
  std::string tokenizer;  // the tokenizer's source, or "bytes" (a model without one)
  bool add_bos = false;   // each window starts with bos_id (the tokenizer asks for it)
  int32_t bos_id = -1;
};

// Reads `path` whole and tokenises it with the tokenizer of `model` (open_tokenizer: a Hugging
// Face directory or GGUF); a model without one (preset, model YAML: synthetic weights) reads the
// text's bytes as token ids modulo the vocabulary. InputError naming `flag` and the file when it
// cannot be read or holds no token.
CalibrationText read_calibration_text(const std::string& model, const ModelConfig& c, const std::string& path,
                                      const std::string& flag);

class ActivationStats {
 public:
  // block: the tile's rows T_k (every site's width must be a multiple); keep_rows: keep X too.
  ActivationStats(const ModelConfig& c, int64_t block, bool keep_rows);
  // One position's input of `site` in `layer` (the InputHook).
  void add(int64_t layer, MatmulInput site, const std::vector<float>& x);
  // For a compressed matrix "layers.<l>.<kind>": its input's Gram blocks (one per row block).
  kernels::ActivationGram gram(const std::string& matrix) const;
  // For a compressed matrix: its inputs X [M, K] f32 (keep_rows only).
  kernels::Tensor rows(const std::string& matrix) const;
  int64_t positions() const { return positions_; }  // per site
  int64_t bytes() const;                             // what the statistics hold

 private:
  struct Site {
    int64_t width = 0;
    std::vector<std::vector<double>> gram;  // per row block [T, T] (lower triangle accumulated)
    std::vector<float> rows;                // [M, width] when keep_rows
    int64_t count = 0;
  };
  const Site& site_of(const std::string& matrix) const;
  int64_t block_;
  bool keep_rows_;
  int64_t positions_ = 0;
  std::vector<Site> sites_;  // [layer · 4 + site]
};

struct CollectOptions {
  int64_t window = 0;      // tokens per reference run (a fresh KV cache each); 0 = the model's max_seq
  int64_t first = 0;       // the tokens used: [first, first + count)
  int64_t count = 0;
  bool keep_rows = false;
  std::string flag = "--calibration";  // named in errors (too few tokens, a bad window)
};

// InputError naming opt.flag when `text` has fewer than first + count tokens or the window is
// outside [2, max_seq]: what collect_activations checks first, callable before any pass runs.
void check_collect_options(const ModelConfig& c, const CalibrationText& text, const CollectOptions& opt);

// Runs the reference model on `weights` over the chosen tokens of `text`, window by window, and
// accumulates the inputs of every layer matrix. InputError naming opt.flag when the text has fewer
// than first + count tokens or the window is outside [2, max_seq].
ActivationStats collect_activations(const WeightSource& weights, const CalibrationText& text, int64_t block,
                                    const CollectOptions& opt);

}  // namespace tori::models
