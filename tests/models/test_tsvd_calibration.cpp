// Calibration for activation-aware TSVD (models/tsvd_calibration.hpp), global rank allocation and
// int8 factors (models/tsvd_checkpoint.hpp), on llama-tiny's synthetic weights.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "kernels/quantize.hpp"
#include "models/reference_model.hpp"
#include "models/synthetic_weights.hpp"
#include "models/tsvd_calibration.hpp"
#include "models/tsvd_checkpoint.hpp"
#include "models/weight_names.hpp"

using namespace tori::models;
using tori::kernels::DType;
using tori::kernels::Tensor;

namespace {

// Token ids from a fixed LCG (a model without a tokenizer: any ids are text).
CalibrationText lcg_text(int64_t n, int64_t vocab, uint64_t seed) {
  CalibrationText t;
  t.path = "lcg";
  t.tokenizer = "ids";
  for (int64_t i = 0; i < n; ++i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    t.tokens.push_back(int32_t((seed >> 33) % uint64_t(vocab)));
  }
  return t;
}

// llama-tiny with outlier input channels, as LLM activations have: every 8th channel of the
// attention and FFN norm weights 8x larger, the rest 0.5x.
class OutlierWeights final : public WeightSource {
 public:
  OutlierWeights() : base_(load_model_config("llama-tiny"), 7) {}
  const ModelConfig& config() const override { return base_.config(); }
  Tensor read(const std::string& name, const Box& box) const override {
    Tensor t = base_.read(name, box);
    const bool norm = name.find("attn_norm.weight") != std::string::npos || name.find("ffn_norm.weight") != std::string::npos;
    if (norm)
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] *= (box.start[0] + i) % 8 == 0 ? 8.f : 0.5f;
    return t;
  }

 private:
  SyntheticWeights base_;
};

std::string calib_dir(const std::string& what) {
  const auto d = std::filesystem::temp_directory_path() / ("tori-test-" + what + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(d);
  return d.string();
}

double sum_sq(const std::vector<TsvdMatrixReport>& rs, double TsvdMatrixReport::*field) {
  double s = 0;
  for (const auto& r : rs) s += (r.*field) * (r.*field);
  return s;
}

}  // namespace

TEST_CASE("calibration: the hook sees every matrix input and leaves the logits alone and the Gram blocks are XᵀX",
          "[tsvd][calibration]") {
  const SyntheticWeights w(load_model_config("llama-tiny"), 3);
  const ModelConfig& c = w.config();
  const CalibrationText text = lcg_text(40, c.vocab, 11);
  const TokenIds ids(text.tokens.begin(), text.tokens.end());
  ReferenceModel plain(w), hooked(w);
  std::map<std::pair<int64_t, int>, std::vector<std::vector<float>>> seen;
  hooked.set_input_hook([&](int64_t l, MatmulInput s, const std::vector<float>& x) { seen[{l, int(s)}].push_back(x); });
  plain.reset(1);
  hooked.reset(1);
  const Tensor a = plain.prefill({ids})[0], b = hooked.prefill({ids})[0];
  REQUIRE(a.numel() == b.numel());
  for (int64_t i = 0; i < a.numel(); ++i) REQUIRE(a.data<float>()[i] == b.data<float>()[i]);
  REQUIRE(seen.size() == size_t(c.n_layers * 4));
  CHECK(seen[{2, int(MatmulInput::ffn_hidden)}].size() == ids.size());
  CHECK(seen[{2, int(MatmulInput::ffn_hidden)}][0].size() == size_t(c.d_ff));

  // Two windows of 20 (a fresh KV cache each) see what two separate prefills see.
  CollectOptions co;
  co.window = 20;
  co.count = 40;
  co.keep_rows = true;
  const int64_t T = 64;
  const ActivationStats st = collect_activations(w, text, T, co);
  CHECK(st.positions() == 40);
  for (const std::string kind : {"wk", "wo", "w_gate", "w_out"}) {
    const std::string name = layer_tensor(1, kind);
    const Tensor x = st.rows(name);
    const auto g = st.gram(name);
    REQUIRE(int64_t(g.gram.size()) == x.size(1) / T);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < g.gram.size(); ++i)
      for (int64_t p = 0; p < T; ++p)
        for (int64_t q = 0; q < T; ++q) {
          double s = 0;
          for (int64_t m = 0; m < x.size(0); ++m)
            s += double(x.get(m * x.size(1) + int64_t(i) * T + p)) * x.get(m * x.size(1) + int64_t(i) * T + q);
          worst = std::max(worst, std::abs(s - g.gram[i].get(p * T + q)));
          scale = std::max(scale, std::abs(s));
        }
    INFO(name << ": max |G - XᵀX| " << worst << " of " << scale);
    CHECK(worst <= 1e-6 * scale);  // f64 sums handed out as f32: one rounding
  }
  // The first window's rows are the unwindowed run's first 20 positions.
  const Tensor x0 = st.rows(layer_tensor(3, "wq"));
  const auto& direct = seen[{3, int(MatmulInput::attention_in)}];
  for (int64_t m = 0; m < 20; ++m)
    for (int64_t e = 0; e < c.d_model; ++e) REQUIRE(x0.get(m * c.d_model + e) == direct[size_t(m)][size_t(e)]);
}

TEST_CASE("activation-aware TSVD beats plain on held-out activation-weighted error (outlier channels)",
          "[tsvd][calibration]") {
  const OutlierWeights w;
  const ModelConfig& c = w.config();
  const CalibrationText text = lcg_text(768, c.vocab, 5);
  CollectOptions fit, eval;
  fit.window = eval.window = 128;
  fit.count = 512;
  eval.first = 512;  // held out
  eval.count = 256;
  eval.keep_rows = true;
  const ActivationStats cal = collect_activations(w, text, 64, fit);
  const ActivationStats held = collect_activations(w, text, 64, eval);
  TsvdCompressOptions opt;
  opt.rule.ratio = 2;
  opt.evaluation = [&](const std::string& m) { return held.rows(m); };
  const auto plain = compress_tsvd(w, "llama-tiny", 7, opt, calib_dir("plain"));
  opt.method = "activation-aware";
  opt.calibration = [&](const std::string& m) { return cal.gram(m); };
  const auto aware = compress_tsvd(w, "llama-tiny", 7, opt, calib_dir("aware"));
  REQUIRE(plain.size() == aware.size());
  int better = 0;
  for (size_t m = 0; m < plain.size(); ++m) {
    INFO(plain[m].name << ": plain " << plain[m].act_error << ", activation-aware " << aware[m].act_error);
    CHECK(aware[m].params == plain[m].params);
    CHECK(aware[m].act_error < plain[m].act_error);
    better += aware[m].act_error < 0.8 * plain[m].act_error;
    CHECK(aware[m].rel_error >= plain[m].rel_error);  // plain is optimal for ‖W − Ŵ‖ (Eckart–Young)
  }
  // The matrices reading the outlier channels (wq, wk, wv, w_in, w_gate: 5 of 7) gain the most.
  CHECK(better >= 5 * c.n_layers);

  // Missing statistics are refused by compress_tsvd itself, naming the flags.
  opt.calibration = nullptr;  // no statistics
  CHECK_THROWS_WITH(compress_tsvd(w, "llama-tiny", 7, opt, calib_dir("never")), Catch::Contains("needs --calibration"));
}

TEST_CASE("global rank allocation: the exact budget, less total relative error than uniform", "[tsvd][allocation]") {
  SECTION("known answer") {
    // Two matrices of one 4x4 tile each, budget 2 x rank 2 = 4 units; normalised gains:
    // A: σ² = 16, 9, 4, 1 of 30; B: 1, 1, 1, 1 of 4 (0.25 each). Start at rank 1, max rank 3:
    // A's second (0.30) first, then B's second (0.25); A's third (0.133) loses to nothing else.
    tori::kernels::TileSpectrum a, b;
    a.tile = b.tile = {4, 4};
    a.tiles_k = a.tiles_n = b.tiles_k = b.tiles_n = 1;
    a.s = {{4, 3, 2, 1}};
    b.s = {{1, 1, 1, 1}};
    const auto r = allocate_global_ranks({a, b}, 2);
    CHECK(r == std::vector<std::vector<int64_t>>{{2}, {2}});
    b.s = {{1, 0.1f, 0.1f, 0.1f}};  // B has nothing left to gain: A gets rank 3 (max), B stays at 1
    CHECK(allocate_global_ranks({a, b}, 2) == std::vector<std::vector<int64_t>>{{3}, {1}});
  }
  SECTION("llama-tiny") {
    const SyntheticWeights w(load_model_config("llama-tiny"), 9);
    TsvdCompressOptions opt;
    opt.rule.ratio = 4;
    const auto uniform = compress_tsvd(w, "llama-tiny", 9, opt, calib_dir("uniform"));
    opt.allocation = "global";
    const std::string dir = calib_dir("global");
    const auto global = compress_tsvd(w, "llama-tiny", 9, opt, dir);
    int64_t pu = 0, pg = 0;
    bool uneven = false;
    for (size_t m = 0; m < uniform.size(); ++m) {
      pu += uniform[m].params;
      pg += global[m].params;
      uneven = uneven || global[m].rank_min != global[m].rank_max || global[m].rank_min != uniform[m].rank_min;
      CHECK(global[m].rank_min >= 1);
      CHECK(global[m].rank_max <= 63);
    }
    CHECK(pg == pu);
    CHECK(uneven);
    const double eu = sum_sq(uniform, &TsvdMatrixReport::rel_error), eg = sum_sq(global, &TsvdMatrixReport::rel_error);
    INFO("Σ relative error²: uniform " << eu << ", global " << eg);
    CHECK(eg < 0.98 * eu);
    // The per-tile ranks are what the checkpoint holds.
    TsvdWeights tw(std::make_unique<SyntheticWeights>(load_model_config("llama-tiny"), 9), dir);
    const auto f = tw.factors("layers.0.w_out");
    CHECK(f.parameters() == global[6].params);
    CHECK(global[6].name == "layers.0.w_out");
  }
}

TEST_CASE("int8 factors round-trip within half a quantisation step and pack back to the same int8",
          "[tsvd][int8]") {
  const ModelConfig c = load_model_config("llama-tiny");
  const SyntheticWeights w(c, 4);
  TsvdCompressOptions opt;
  opt.rule.ratio = 2;
  const std::string d32 = calib_dir("f32"), d8 = calib_dir("int8");
  const auto r32 = compress_tsvd(w, "llama-tiny", 4, opt, d32);
  opt.factor_dtype = "int8";
  const auto r8 = compress_tsvd(w, "llama-tiny", 4, opt, d8);
  TsvdWeights f32(std::make_unique<SyntheticWeights>(c, 4), d32), i8(std::make_unique<SyntheticWeights>(c, 4), d8);
  CHECK(i8.factor_dtype() == "int8");
  for (const std::string name : {"layers.1.wq", "layers.2.wk", "layers.3.w_out"}) {
    const auto a = f32.factors(name), b = i8.factors(name);
    REQUIRE(a.ranks == b.ranks);
    // Tolerance: |U8 - U| <= scale/2 = amax/254 per column of each tile's U; for V per column of
    // the column block (maxima over its tiles), plus f32 rounding of q·scale.
    for (int64_t j = 0; j < a.tiles_n(); ++j) {
      std::vector<float> vamax(size_t(a.tile.cols), 0.f);
      for (int64_t i = 0; i < a.tiles_k(); ++i) {
        const Tensor m = tori::kernels::column_amax(a.v[size_t(i * a.tiles_n() + j)]);
        for (int64_t col = 0; col < a.tile.cols; ++col) vamax[size_t(col)] = std::max(vamax[size_t(col)], m.get(col));
      }
      for (int64_t i = 0; i < a.tiles_k(); ++i) {
        const size_t t = size_t(i * a.tiles_n() + j);
        const Tensor uamax = tori::kernels::column_amax(a.u[t]);
        const int64_t r = a.ranks[t];
        for (int64_t p = 0; p < a.tile.rows; ++p)
          for (int64_t q = 0; q < r; ++q)
            REQUIRE(std::abs(a.u[t].get(p * r + q) - b.u[t].get(p * r + q)) <= uamax.get(q) / 254 * (1 + 1e-5));
        for (int64_t p = 0; p < r; ++p)
          for (int64_t q = 0; q < a.tile.cols; ++q)
            REQUIRE(std::abs(a.v[t].get(p * a.tile.cols + q) - b.v[t].get(p * a.tile.cols + q)) <=
                    vamax[size_t(q)] / 254 * (1 + 1e-5));
      }
      // Packing the dequantised V̂_j as int8 (its own column maxima) gives back the stored q:
      // re-quantising q·s lands on q again (an error of one step would be amax/127).
      Tensor stacked({a.tiles_k() * a.ranks[0], a.tile.cols}, DType::f32);
      for (int64_t i = 0; i < a.tiles_k(); ++i) {
        const Tensor& v = b.v[size_t(i * a.tiles_n() + j)];
        std::copy_n(v.data<float>(), v.numel(), stacked.data<float>() + i * v.numel());
      }
      const auto q = tori::kernels::quantize_int8(stacked);
      const Tensor back = tori::kernels::dequantize_int8(q);
      for (int64_t e = 0; e < back.numel(); ++e) REQUIRE(std::abs(back.get(e) - stacked.get(e)) <= 1e-6 * std::abs(stacked.get(e)));
    }
  }
  // The error the report states is the file's (what TsvdWeights reads back), and int8 adds little
  // to the truncation's.
  {
    const Tensor exact = w.read_full("layers.2.w_in"), back = i8.read_full("layers.2.w_in");
    double d = 0, n = 0;
    for (int64_t e = 0; e < exact.numel(); ++e) {
      d += std::pow(double(exact.get(e)) - back.get(e), 2);
      n += std::pow(double(exact.get(e)), 2);
    }
    REQUIRE(r8[4].name == "layers.0.w_in");
    CHECK(std::abs(std::sqrt(d / n) - r8[18].rel_error) <= 1e-5 * r8[18].rel_error);
    CHECK(r8[18].name == "layers.2.w_in");
  }
  for (size_t m = 0; m < r8.size(); ++m) {
    CHECK(r8[m].rel_error >= r32[m].rel_error * (1 - 1e-6));
    CHECK(r8[m].rel_error <= r32[m].rel_error * 1.05);
  }
}

// int8 factored runs (runtime/factored_weights.hpp runs_factors): a rank's grid holds only some row
// blocks of a weight, so V̂_j's own column maxima are smaller than the whole column block's; packed
// with the stored V scales (TsvdFactors::v_scale, read with the factors) the shard's q·s lands on
// the stored q again. Without them it would be quantised a second time (checked to differ).
TEST_CASE("int8 factors: a shard of row blocks packs back to the stored q with the stored V scales",
          "[tsvd][int8]") {
  const ModelConfig c = load_model_config("llama-tiny");
  TsvdCompressOptions opt;
  opt.rule.ratio = 2;
  opt.tile = {32, 32};
  opt.factor_dtype = "int8";
  const std::string dir = calib_dir("int8-shard");
  compress_tsvd(SyntheticWeights(c, 5), "llama-tiny", 5, opt, dir);
  const TsvdWeights tw(std::make_unique<SyntheticWeights>(c, 5), dir);
  const std::string name = "layers.1.w_out";  // [768, 256]: 24 x 8 tiles
  REQUIRE(tw.int8_factors(name));
  const auto whole = tw.factors(name);
  REQUIRE(whole.v_scale.size() == whole.ranks.size());
  const auto shard = *tw.read_factors(name, Box{{320, 64}, {96, 128}});  // row blocks 10..12, column blocks 2..5
  REQUIRE(shard.v_scale.size() == shard.ranks.size());
  const auto packed = tori::kernels::pack_tsvd(shard, tori::kernels::WeightFormat::int8, tori::kernels::Backend::openblas);
  const auto as_packed = tori::kernels::tsvd_as_packed(shard, tori::kernels::WeightFormat::int8);
  for (int64_t j = 0; j < shard.tiles_n(); ++j) {
    // V̂_j's scales are the stored ones of the whole column block (2 + j).
    const Tensor& want = whole.v_scale[size_t(2 + j)];
    for (int64_t col = 0; col < shard.tile.cols; ++col) REQUIRE(packed.v_cols[size_t(j)].scales.get(col) == want.get(col));
  }
  // The values the run multiplies are the stored q·s (to f32 rounding of q·s/s), U and V.
  for (size_t t = 0; t < shard.ranks.size(); ++t)
    for (const auto& [got, read] : {std::pair{&as_packed.u[t], &shard.u[t]}, std::pair{&as_packed.v[t], &shard.v[t]}})
      for (int64_t e = 0; e < read->numel(); ++e) REQUIRE(std::abs(got->get(e) - read->get(e)) <= 1e-6 * std::abs(read->get(e)));
  // Without the stored scales the shard's own maxima requantise V: some values move.
  auto unscaled = shard;
  unscaled.v_scale.clear();
  const auto requantised = tori::kernels::tsvd_as_packed(unscaled, tori::kernels::WeightFormat::int8);
  double moved = 0;
  for (size_t t = 0; t < shard.ranks.size(); ++t)
    for (int64_t e = 0; e < shard.v[t].numel(); ++e) moved = std::max(moved, double(std::abs(requantised.v[t].get(e) - shard.v[t].get(e))));
  CHECK(moved > 0);
  std::filesystem::remove_all(dir);
}
