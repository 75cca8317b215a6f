// `tori dump-weights`: writes the full synthetic weights of a model, exactly as the Reference reads
// them, to DIR/weights.safetensors plus DIR/config.json, for independent implementations to load.
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "kernels/error.hpp"
#include "launch/command.hpp"
#include "launch/defaults.hpp"
#include "models/safetensors_writer.hpp"
#include "models/synthetic_weights.hpp"

namespace tori::launch {

namespace {

struct DumpOptions {
  std::string model = kDefaultModel;
  unsigned long long seed = kDefaultSeed;
  std::string out_dir;
};

int run_dump(const DumpOptions& o, const GlobalOptions& g) {
  models::ModelConfig c = models::load_model_config(o.model);
  if (g.rank != 0) return 0;
  std::filesystem::create_directories(o.out_dir);
  models::SyntheticWeights w(c, o.seed);
  models::NamedTensors tensors;
  for (auto& spec : models::model_tensors(c)) tensors.emplace_back(spec.name, w.read_full(spec.name));
  models::write_safetensors(o.out_dir + "/weights.safetensors", tensors,
                            {{"model", c.name}, {"seed", std::to_string(o.seed)}});
  nlohmann::json j = {{"name", c.name},
                      {"n_layers", c.n_layers},
                      {"d_model", c.d_model},
                      {"n_heads", c.n_heads},
                      {"n_kv_heads", c.n_kv_heads},
                      {"d_head", c.d_head},
                      {"d_ff", c.d_ff},
                      {"vocab", c.vocab},
                      {"max_seq", c.max_seq},
                      {"block", models::to_string(c.block)},
                      {"mlp", models::to_string(c.mlp)},
                      {"norm", models::to_string(c.norm)},
                      {"rope_theta", c.rope_theta},
                      {"tied_embeddings", c.tied_embeddings},
                      {"norm_eps", c.norm_eps},
                      {"seed", o.seed}};
  std::ofstream f(o.out_dir + "/config.json");
  if (!f) throw Error("cannot write '" + o.out_dir + "/config.json'");
  f << j.dump(2) << "\n";
  spdlog::info("wrote {} tensors of model {} (seed {}) to {}", tensors.size(), c.name, o.seed, o.out_dir);
  return 0;
}

}  // namespace

void add_dump_weights_command(CLI::App& parent, Commands& out) {
  auto o = std::make_shared<DumpOptions>();
  CLI::App* app = parent.add_subcommand(
      "dump-weights", "write the full synthetic weights (safetensors) and config (JSON) of a model");
  app->add_option("--model", o->model, "preset name or model YAML file")->capture_default_str();
  app->add_option("--seed", o->seed, "seed of the synthetic weights")->capture_default_str();
  app->add_option("--out", o->out_dir, "output directory")->required();
  out.push_back({app, [o](const GlobalOptions& g) { return run_dump(*o, g); }});
}

}  // namespace tori::launch
