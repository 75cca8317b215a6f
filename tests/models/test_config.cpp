#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include "kernels/error.hpp"
#include "models/config.hpp"

using namespace tori::models;
using Catch::Contains;

TEST_CASE("every preset parses and round-trips through YAML", "[config]") {
  auto names = preset_names();
  for (const char* want : {"palm-tiny", "palm-8b", "palm-62b", "palm-540b", "llama-tiny"})
    CHECK(std::find(names.begin(), names.end(), want) != names.end());
  for (auto& n : names) {
    ModelConfig c = load_model_config(n);
    CHECK(c.name == n);
    ModelConfig back = parse_model_config(to_yaml(c), "round-trip");
    CHECK(to_yaml(back) == to_yaml(c));
  }
}

TEST_CASE("PaLM presets carry the paper's shapes", "[config]") {
  ModelConfig c = load_model_config("palm-540b");
  CHECK(c.n_layers == 118);
  CHECK(c.d_model == 18432);
  CHECK(c.d_ff == 73728);
  CHECK(c.n_heads == 48);
  CHECK(c.n_kv_heads == 1);
  CHECK(c.d_head == 256);
  CHECK(c.block == Block::parallel);
  // ~540B parameters
  CHECK(c.n_params() > 5.2e11);
  CHECK(c.n_params() < 5.6e11);
  ModelConfig l = load_model_config("llama-tiny");
  CHECK(l.block == Block::serial);
  CHECK(l.n_kv_heads > 1);
  CHECK(l.n_kv_heads < l.n_heads);
}

namespace {
std::string with(const std::string& key, const std::string& value) {
  std::string y = to_yaml(load_model_config("palm-tiny"));
  auto p = y.find(key + ":");
  auto e = y.find('\n', p);
  return y.substr(0, p) + key + ": " + value + y.substr(e);
}
}  // namespace

TEST_CASE("bad configs name the file, the key and what is allowed", "[config]") {
  CHECK_THROWS_WITH(parse_model_config(to_yaml(load_model_config("palm-tiny")) + "colour: blue\n", "m.yaml"),
                    Contains("m.yaml") && Contains("'colour'") && Contains("unknown key") && Contains("n_layers"));
  CHECK_THROWS_WITH(parse_model_config(with("n_layers", "-2"), "m.yaml"),
                    Contains("m.yaml") && Contains("'n_layers'") && Contains("positive"));
  CHECK_THROWS_WITH(parse_model_config(with("d_model", "250"), "m.yaml"),
                    Contains("'d_model'") && Contains("250") && Contains("n_heads = 8"));
  CHECK_THROWS_WITH(parse_model_config(with("n_kv_heads", "3"), "m.yaml"),
                    Contains("'n_kv_heads'") && Contains("divisor"));
  CHECK_THROWS_WITH(parse_model_config(with("block", "diagonal"), "m.yaml"),
                    Contains("'block'") && Contains("parallel, serial"));
  CHECK_THROWS_WITH(parse_model_config(with("d_ff", "big"), "m.yaml"),
                    Contains("'d_ff'") && Contains("not an integer"));
  CHECK_THROWS_WITH(parse_model_config(with("tied_embeddings", "maybe"), "m.yaml"),
                    Contains("'tied_embeddings'") && Contains("true or false"));
  std::string missing = with("vocab", "1");
  missing.erase(missing.find("vocab:"), std::string("vocab: 1\n").size());
  CHECK_THROWS_WITH(parse_model_config(missing, "m.yaml"), Contains("'vocab'") && Contains("missing"));
  CHECK_THROWS_WITH(parse_model_config("[1, 2", "m.yaml"), Contains("m.yaml") && Contains("YAML"));
  // Found by the model_yaml fuzz target: a key that is not a scalar was yaml-cpp's BadConversion.
  CHECK_THROWS_AS(parse_model_config("? [a]\n: 1\n", "m.yaml"), tori::InputError);
  CHECK_THROWS_WITH(parse_model_config(to_yaml(load_model_config("palm-tiny")) + "{x: 1}: 2\n", "m.yaml"),
                    Contains("m.yaml: line 16") && Contains("a key must be a plain string") && Contains("n_layers"));
  CHECK_THROWS_WITH(load_model_config("no-such-model"), Contains("palm-tiny") && Contains("presets"));
  CHECK_THROWS_WITH(load_model_config("/nonexistent/m.yaml"), Contains("does not exist"));
  CHECK_THROWS_AS(load_model_config("no-such-model"), tori::InputError);
}

TEST_CASE("Gemma 3's optional keys round-trip; attention patterns per layer", "[config]") {
  const std::string gemma =
      (std::filesystem::path(__FILE__).parent_path().parent_path() / "runtime/configs/gemma-tiny.yaml").string();
  ModelConfig c = load_model_config(gemma);
  CHECK(c.mlp == Mlp::geglu);
  CHECK((c.qk_norm && c.post_norms && c.scale_embeddings));
  CHECK(c.attention_scale() == 0.125);
  CHECK((c.is_local(0) && c.is_local(1) && !c.is_local(2) && c.is_local(3) && !c.is_local(5)));
  CHECK(c.layer_rope_theta(0) == 10000.0);
  CHECK(c.layer_rope_theta(2) == 1e6);
  CHECK(c.layer_pattern(0).describe() == "sliding_window(w=64)");
  CHECK(c.layer_pattern(2).describe() == "causal()");
  CHECK(to_yaml(parse_model_config(to_yaml(c), "again")) == to_yaml(c));
  // Without the keys: the Llama/PaLM block, every layer global, scale 1/sqrt(D).
  ModelConfig p = load_model_config("palm-tiny");
  CHECK((!p.qk_norm && !p.post_norms && !p.scale_embeddings && !p.is_local(0)));
  CHECK(p.layer_pattern(0).describe() == "causal()");
  CHECK(p.attention_scale() == 1.0 / std::sqrt(double(p.d_head)));
  CHECK(to_yaml(p).find("sliding_window") == std::string::npos);
  auto gemma_with = [&](const std::string& key, const std::string& value) {
    std::string y = to_yaml(c);
    auto at = y.find(key + ":");
    return y.substr(0, at) + key + ": " + value + y.substr(y.find('\n', at));
  };
  // max_seq past the window: the local layers attend within it.
  CHECK(parse_model_config(gemma_with("max_seq", "4096"), "g.yaml").max_seq == 4096);
  CHECK_THROWS_WITH(parse_model_config(gemma_with("block", "parallel"), "g.yaml"),
                    Contains("'post_norms'") && Contains("serial"));
  CHECK_THROWS_WITH(parse_model_config(gemma_with("mlp", "reglu"), "g.yaml"), Contains("geglu"));
  CHECK_THROWS_WITH(parse_model_config(gemma_with("sliding_window", "-1"), "g.yaml"), Contains("'sliding_window'"));
  CHECK_THROWS_WITH(parse_model_config(gemma_with("query_scale", "-0.5"), "g.yaml"), Contains("'query_scale'"));
  // Sinks: with a window, every layer local when global_every is 0 (StreamingLLM).
  const ModelConfig s = parse_model_config(to_yaml(p) + "sliding_window: 32\nsink_tokens: 4\n", "s.yaml");
  CHECK((s.is_local(0) && s.is_local(3) && s.windowed(3)));
  CHECK(s.layer_pattern(3).describe() == "sliding_window(w=32, global_first=4)");
  CHECK(to_yaml(parse_model_config(to_yaml(s), "again")) == to_yaml(s));
  CHECK_THROWS_WITH(parse_model_config(to_yaml(p) + "sink_tokens: 4\n", "s.yaml"),
                    Contains("s.yaml") && Contains("'sink_tokens'") && Contains("needs sliding_window > 0"));
  CHECK_THROWS_WITH(parse_model_config(to_yaml(p) + "sliding_window: 8\nsink_tokens: -2\n", "s.yaml"),
                    Contains("'sink_tokens'") && Contains(">= 0"));
  // A window without global layers on a model with global_every: those stay global.
  std::string all_global = gemma_with("max_seq", "65");
  all_global.replace(all_global.find("global_every: 3"), 15, "global_every: 1");
  CHECK(parse_model_config(all_global, "g.yaml").layer_pattern(0).describe() == "causal()");
}
