// `tori presets`: lists the embedded model presets, or prints one as YAML.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "kernels/record.hpp"
#include "launch/command.hpp"
#include "models/config.hpp"

namespace tori::launch {

void add_presets_command(CLI::App& parent, Commands& out) {
  auto name = std::make_shared<std::string>();
  CLI::App* app = parent.add_subcommand("presets", "list the embedded model presets or print one");
  app->add_option("name", *name, "print this preset's YAML");
  out.push_back({app, [name](const GlobalOptions& g) {
                   if (g.rank != 0) return 0;
                   if (!name->empty()) {
                     std::fputs(models::preset_yaml(*name).c_str(), stdout);
                     return 0;
                   }
                   for (auto& n : models::preset_names()) {
                     models::ModelConfig c = models::load_model_config(n);
                     if (g.json)
                       kernels::emit({{"preset", n}, {"n_layers", c.n_layers}, {"d_model", c.d_model},
                                    {"n_heads", c.n_heads}, {"n_kv_heads", c.n_kv_heads}, {"d_ff", c.d_ff},
                                    {"vocab", c.vocab}, {"block", models::to_string(c.block)},
                                    {"params", c.n_params()}});
                     else
                       std::printf("%-12s %3lld layers  E=%-6lld H=%-3lld K=%-3lld F=%-6lld V=%-7lld %-8s %-6s %-9s %.3g params\n",
                                   n.c_str(), (long long)c.n_layers, (long long)c.d_model,
                                   (long long)c.n_heads, (long long)c.n_kv_heads, (long long)c.d_ff,
                                   (long long)c.vocab, models::to_string(c.block).c_str(),
                                   models::to_string(c.mlp).c_str(), models::to_string(c.norm).c_str(),
                                   double(c.n_params()));
                   }
                   return 0;
                 }});
}

}  // namespace tori::launch
