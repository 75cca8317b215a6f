// `tori compress`: factors a model's decoder matrices by tiled SVD once and writes a TSVD
// checkpoint (models/tsvd_checkpoint.hpp) that --model DIR then runs; prints, per matrix, the
// ranks and the relative Frobenius error (and, with --compare-svd, that of one whole-matrix SVD
// at the same parameter count; with --eval-text, the activation-weighted errors on that text).
// --method activation-aware first runs the reference model over --calibration TEXT
// (models/tsvd_calibration.hpp) and whitens every tile by its inputs' Gram matrix.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <optional>

#include "kernels/error.hpp"
#include "kernels/record.hpp"
#include "launch/command.hpp"
#include "launch/defaults.hpp"
#include "models/hf_checkpoint.hpp"
#include "models/tsvd_calibration.hpp"
#include "models/tsvd_checkpoint.hpp"
#include "runtime/tsvd_tile.hpp"

namespace tori::launch {

namespace {
struct CompressOptions {
  std::string model;
  unsigned long long seed = kDefaultSeed;
  double ratio = 0;
  double energy = 0;
  int64_t rank = 0;
  int64_t tile = 0;
  std::string matrices = "all";
  std::string factor_dtype = "f32";
  std::string method = "plain";
  std::string allocation = "uniform";
  std::string calibration, eval_text;
  int64_t calibration_tokens = 2048, calibration_window = 0, eval_tokens = 512, eval_skip = -1;
  bool compare_svd = false;
  std::string out_dir;
};
}  // namespace

void add_compress_command(CLI::App& parent, Commands& out) {
  auto o = std::make_shared<CompressOptions>();
  CLI::App* app = parent.add_subcommand(
      "compress", "factor a model's decoder matrices by tiled SVD into a checkpoint that --model DIR runs");
  app->add_option("--model", o->model, "preset, model YAML, checkpoint directory or .gguf")->required();
  app->add_option("--seed", o->seed, "seed of synthetic weights")->capture_default_str();
  app->add_option("--ratio", o->ratio, "compression ratio per tile, >= 1: rank = T·T / (ratio·2T)");
  app->add_option("--energy", o->energy, "instead of --ratio: per tile the fewest singular values keeping this share of Σ s²");
  app->add_option("--rank", o->rank, "instead of --ratio: this rank in every tile (1 .. tile - 1)");
  app->add_option("--tile", o->tile, "square tile size (default: the largest of 256, 192, 128, 96, 64, 48, 32 dividing every matrix whose tiles "
                  "every layout's shards hold whole, padded heads included, on 1, 2, 4 and 8 ranks)");
  app->add_option("--matrices", o->matrices, "all (wq, wk, wv, wo, w_in, w_gate, w_out) | ffn (w_in, w_gate, w_out)")
      ->capture_default_str();
  app->add_option("--factor-dtype", o->factor_dtype, "f32 | bf16 | int8 (per-column f32 scales): how U and V are stored; --dtype int8 runs int8 "
                  "factors as stored (f32/bf16 factors: the product U·V quantised as a dense weight)")
      ->capture_default_str();
  app->add_option("--method", o->method,
                  "plain (SVD of each tile) | activation-aware (SVD of each tile whitened by its inputs' Gram "
                  "matrix on --calibration TEXT: minimises the error of x·W)")
      ->capture_default_str();
  app->add_option("--calibration", o->calibration,
                  "activation-aware: text file run through the reference model (the model's tokenizer; a "
                  "preset reads its bytes as token ids)");
  app->add_option("--calibration-tokens", o->calibration_tokens, "tokens of --calibration used (its first ones)")
      ->capture_default_str();
  app->add_option("--calibration-window", o->calibration_window,
                  "tokens per reference run over --calibration / --eval-text (default: the model's context)");
  app->add_option("--allocation", o->allocation,
                  "uniform (the rank of --ratio/--rank in every tile) | global (the same parameter budget, "
                  "ranks given to the tiles of all matrices where they remove the most relative error)")
      ->capture_default_str();
  app->add_option("--eval-text", o->eval_text,
                  "also report the activation-weighted error |X(W-W')|/|XW| per matrix on this text's inputs "
                  "(the same file as --calibration: the tokens after the calibration ones, held out)");
  app->add_option("--eval-tokens", o->eval_tokens, "tokens of --eval-text used")->capture_default_str();
  app->add_option("--eval-skip", o->eval_skip,
                  "tokens of --eval-text skipped first (default: --calibration-tokens when it is the --calibration "
                  "file, else 0); give the same value to compare methods on the same held-out tokens");
  app->add_flag("--compare-svd", o->compare_svd, "also report one whole-matrix SVD's error at the same parameter count");
  app->add_option("--out", o->out_dir, "output directory (tsvd.safetensors, tsvd.json)")->required();
  out.push_back({app, [o](const GlobalOptions& g) {
                   if ((o->ratio != 0) + (o->energy != 0) + (o->rank != 0) != 1)
                     throw InputError("compress: give exactly one of --ratio, --energy, --rank");
                   if (o->ratio != 0 && !(o->ratio >= 1))
                     throw InputError("--ratio: " + std::to_string(o->ratio) + " (allowed: a number >= 1; 1 = dense)");
                   if (o->energy != 0 && !(o->energy > 0 && o->energy <= 1))
                     throw InputError("--energy: " + std::to_string(o->energy) + " (allowed: a share in (0, 1])");
                   if (o->tile < 0) throw InputError("--tile: " + std::to_string(o->tile) + " (allowed: >= 1)");
                   models::TsvdCompressOptions c;
                   c.tile = {o->tile, o->tile};
                   c.rule = {o->ratio, o->energy, o->rank};
                   c.matrices = o->matrices;
                   c.factor_dtype = o->factor_dtype;
                   c.method = o->method;
                   c.allocation = o->allocation;
                   c.compare_svd = o->compare_svd;
                   const bool aware = o->method == "activation-aware";
                   if (aware && o->calibration.empty())
                     throw InputError("--method activation-aware: needs --calibration TEXT (a text file)");
                   if (!aware && !o->calibration.empty())
                     throw InputError("--calibration: only with --method activation-aware (allowed: --method "
                                      "activation-aware --calibration TEXT, or no --calibration)");
                   if (o->calibration_tokens < 1)
                     throw InputError("--calibration-tokens: " + std::to_string(o->calibration_tokens) + " (allowed: >= 1)");
                   if (o->eval_skip < -1)
                     throw InputError("--eval-skip: " + std::to_string(o->eval_skip) + " (allowed: >= 0)");
                   if (o->eval_tokens < 1)
                     throw InputError("--eval-tokens: " + std::to_string(o->eval_tokens) + " (allowed: >= 1)");
                   // A path is recorded absolute, so --model DIR works from anywhere.
                   std::error_code ec;
                   const std::string source = std::filesystem::exists(o->model, ec)
                                                  ? std::filesystem::absolute(o->model).string()
                                                  : o->model;
                   auto src = models::open_model(o->model, o->seed);
                   if (g.rank != 0) return 0;
                   if (c.tile.rows == 0) {  // the default: one whose tiles every layout's shards hold whole
                     const int64_t t = runtime::default_tsvd_tile(src->config(),
                                                                  models::tsvd_matrix_names(src->config(), c.matrices));
                     c.tile = {t, t};
                     spdlog::info("compress: tile {}x{} (the default: every layout's shards on 1..{} ranks hold whole tiles)",
                                  t, t, runtime::kTsvdTileMaxRanks);
                   }
                   models::check_tsvd_options(src->config(), c);  // every bad flag before the calibration pass
                   // Texts are read (and refused) before any reference run.
                   std::optional<models::CalibrationText> cal_text, eval_text;
                   if (aware) cal_text = models::read_calibration_text(o->model, src->config(), o->calibration, "--calibration");
                   if (!o->eval_text.empty())
                     eval_text = models::read_calibration_text(o->model, src->config(), o->eval_text, "--eval-text");
                   models::CollectOptions co, eo;
                   co.window = eo.window = o->calibration_window;
                   co.count = o->calibration_tokens;
                   const bool same = cal_text && eval_text && std::filesystem::equivalent(o->calibration, o->eval_text, ec);
                   eo.first = o->eval_skip >= 0 ? o->eval_skip : same ? o->calibration_tokens : 0;  // held out
                   eo.count = o->eval_tokens;
                   eo.keep_rows = true;
                   eo.flag = "--eval-text";
                   if (cal_text) models::check_collect_options(src->config(), *cal_text, co);
                   if (eval_text) models::check_collect_options(src->config(), *eval_text, eo);
                   std::optional<models::ActivationStats> cal_stats, eval_stats;
                   if (cal_text) {
                     cal_stats.emplace(models::collect_activations(*src, *cal_text, c.tile.rows, co));
                     c.calibration = [&](const std::string& m) { return cal_stats->gram(m); };
                     c.calibration_meta = nlohmann::json{{"text", std::filesystem::absolute(o->calibration).string()},
                                                         {"tokenizer", cal_text->tokenizer},
                                                         {"tokens", o->calibration_tokens},
                                                         {"window", o->calibration_window > 0 ? o->calibration_window
                                                                                              : src->config().max_seq}}
                                              .dump();
                   }
                   if (eval_text) {
                     eval_stats.emplace(models::collect_activations(*src, *eval_text, c.tile.rows, eo));
                     c.evaluation = [&](const std::string& m) { return eval_stats->rows(m); };
                   }
                   const auto reports = models::compress_tsvd(*src, source, o->seed, c, o->out_dir);
                   int64_t params = 0, dense = 0;
                   for (const auto& r : reports) {
                     params += r.params;
                     dense += r.k * r.n;
                     if (g.json) {
                       nlohmann::json rec = {{"bench", "compress"}, {"matrix", r.name}, {"k", r.k}, {"n", r.n},
                                             {"rank_min", r.rank_min}, {"rank_max", r.rank_max},
                                             {"params", r.params}, {"rel_error", r.rel_error}};
                       if (r.svd_rel_error >= 0) rec["svd_rel_error"] = r.svd_rel_error;
                       if (r.act_error >= 0) rec["act_error"] = r.act_error;
                       if (r.svd_act_error >= 0) rec["svd_act_error"] = r.svd_act_error;
                       kernels::emit(rec);
                     } else {
                       std::printf("%-22s [%5lld, %5lld] rank %lld..%lld  %6.2fx  rel. Frobenius error %.4f", r.name.c_str(),
                                   (long long)r.k, (long long)r.n, (long long)r.rank_min, (long long)r.rank_max,
                                   double(r.k * r.n) / double(r.params), r.rel_error);
                       if (r.svd_rel_error >= 0) std::printf("  (whole-matrix SVD %.4f)", r.svd_rel_error);
                       if (r.act_error >= 0) std::printf("  activation-weighted %.4f", r.act_error);
                       if (r.svd_act_error >= 0) std::printf("  (whole-matrix SVD %.4f)", r.svd_act_error);
                       std::printf("\n");
                     }
                   }
                   spdlog::info("compressed {} matrices of {}: {} of {} parameters ({:.2f}x); wrote {}", reports.size(),
                                src->config().name, params, dense, double(dense) / double(params), o->out_dir);
                   return 0;
                 }});
}

}  // namespace tori::launch
