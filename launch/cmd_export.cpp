// `tori export`: writes a model's weights as a Hugging Face checkpoint (config.json +
// model.safetensors, or sharded with an index), so the whole checkpoint pipeline can be exercised
// without downloads. Llama-family (serial, RMSNorm, SwiGLU) and Falcon-7B-family (parallel,
// LayerNorm, GELU, multiquery) models only. Or, with --format gguf, as a llama.cpp GGUF (Llama
// family) carrying the source's tokenizer, or a placeholder vocabulary for synthetic weights.
#include <spdlog/spdlog.h>

#include "launch/command.hpp"
#include "launch/defaults.hpp"
#include <map>

#include "models/gguf_writer.hpp"
#include "models/hf_checkpoint.hpp"

namespace tori::launch {

namespace {
struct ExportOptions {
  std::string model = "llama-tiny";
  unsigned long long seed = kDefaultSeed;
  std::string out_dir;
  std::string dtype = "bf16";
  std::string format = "hf";
  double max_shard_mb = 0;
};
}  // namespace

void add_export_command(CLI::App& parent, Commands& out) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* app = parent.add_subcommand("export", "write a model as a Hugging Face checkpoint (Llama or Falcon layout)");
  app->add_option("--model", o->model, "preset name, model YAML file or checkpoint directory")->capture_default_str();
  app->add_option("--seed", o->seed, "seed of the synthetic weights")->capture_default_str();
  app->add_option("--out", o->out_dir, "output directory (hf) or .gguf file (gguf)")->required();
  app->add_option("--format", o->format, "hf (config.json + safetensors) | gguf (llama.cpp, Llama family, with the source's tokenizer or a placeholder vocabulary)")
      ->capture_default_str();
  app->add_option("--dtype", o->dtype, "hf: f32|f16|bf16; gguf: f32|f16|bf16|q8_0|q4_0|q4_1")->capture_default_str();
  app->add_option("--max-shard-mb", o->max_shard_mb, "split into files of at most this many MiB, with an index");
  out.push_back({app, [o](const GlobalOptions& g) {
                   auto src = models::open_model(o->model, o->seed);
                   models::hf_family_for(src->config());  // refuse unsupported models on every rank
                   if (o->format != "hf" && o->format != "gguf")
                     throw InputError("--format: '" + o->format + "' (allowed: hf, gguf)");
                   if (g.rank != 0) return 0;
                   if (o->format == "gguf") {
                     const std::map<std::string, models::GgmlType> types = {
                         {"f32", models::GgmlType::f32},   {"f16", models::GgmlType::f16},
                         {"bf16", models::GgmlType::bf16}, {"q8_0", models::GgmlType::q8_0},
                         {"q4_0", models::GgmlType::q4_0}, {"q4_1", models::GgmlType::q4_1}};
                     auto it = types.find(o->dtype);
                     if (it == types.end())
                       throw InputError("--dtype: '" + o->dtype + "' (allowed with --format gguf: f32, f16, bf16, q8_0, q4_0, q4_1)");
                     models::export_llama_gguf(*src, o->out_dir, it->second,
                                              models::gguf_tokenizer_metadata(o->model, src->config().vocab));
                   } else {
                     models::export_hf_checkpoint(*src, o->out_dir, o->dtype,
                                                  static_cast<int64_t>(o->max_shard_mb * (1 << 20)));
                   }
                   spdlog::info("exported {} ({}) to {}", src->config().name, o->dtype, o->out_dir);
                   return 0;
                 }});
}

}  // namespace tori::launch
