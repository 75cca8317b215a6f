#include "models/config.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "kernels/error.hpp"

namespace tori::models {

// Defined in the generated presets.cpp (CMake embeds models/presets/*.yaml).
const std::map<std::string, std::string>& embedded_presets();

namespace {

const std::vector<std::string> kKeys = {
    "name",  "n_layers", "d_model", "n_heads", "n_kv_heads", "d_head",     "d_ff",
    "vocab", "max_seq",  "block",   "mlp",     "norm",       "rope_theta", "tied_embeddings",
    "norm_eps"};
// Keys a file may omit (Gemma 3's; the defaults give the Llama/PaLM block).
const std::vector<std::string> kOptionalKeys = {"qk_norm",      "post_norms",       "scale_embeddings",
                                                "query_scale",  "global_every",     "rope_theta_local",
                                                "sliding_window",  "sink_tokens"};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ", ";
    s += v[i];
  }
  return s;
}

[[noreturn]] void fail(const std::string& source, const std::string& key, const std::string& msg) {
  throw InputError(source + ": key '" + key + "': " + msg);
}

template <typename T>
T get(const YAML::Node& root, const std::string& source, const std::string& key, const char* kind) {
  YAML::Node n = root[key];
  if (!n) fail(source, key, std::string("missing (expected ") + kind + ")");
  if (!n.IsScalar()) fail(source, key, std::string("expected ") + kind);
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    fail(source, key, "'" + n.Scalar() + "' is not " + kind);
  }
}

int64_t get_int(const YAML::Node& root, const std::string& source, const std::string& key) {
  return get<int64_t>(root, source, key, "an integer");
}

template <typename E>
E get_enum(const YAML::Node& root, const std::string& source, const std::string& key,
           const std::vector<std::pair<std::string, E>>& choices) {
  std::string v = get<std::string>(root, source, key, "a string");
  std::vector<std::string> names;
  for (auto& [n, e] : choices) {
    if (n == v) return e;
    names.push_back(n);
  }
  fail(source, key, "'" + v + "' is not allowed (allowed: " + join(names) + ")");
}

}  // namespace

std::string to_string(Block b) { return b == Block::parallel ? "parallel" : "serial"; }
std::string to_string(Mlp m) { return m == Mlp::swiglu ? "swiglu" : m == Mlp::gelu ? "gelu" : "geglu"; }
std::string to_string(Norm n) { return n == Norm::rmsnorm ? "rmsnorm" : "layernorm"; }

int64_t ModelConfig::n_params() const {
  int64_t E = d_model, F = d_ff;
  int64_t attn = E * n_heads * d_head + 2 * E * n_kv_heads * d_head + n_heads * d_head * E;
  int64_t ffn = (mlp == Mlp::gelu ? 2 : 3) * E * F;
  int64_t norms_per_layer = (block == Block::serial ? 2 : 1) * (post_norms ? 2 : 1) * E * (norm == Norm::layernorm ? 2 : 1) +
                            (qk_norm ? 2 * d_head : 0);
  int64_t embed = vocab * E * (tied_embeddings ? 1 : 2);
  return n_layers * (attn + ffn + norms_per_layer) + embed + E * (norm == Norm::layernorm ? 2 : 1);
}

ModelConfig parse_model_config(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw InputError(source + ": not valid YAML: " + e.what());
  }
  if (!root.IsMap()) throw InputError(source + ": expected a mapping of model keys");
  std::vector<std::string> all_keys = kKeys;
  all_keys.insert(all_keys.end(), kOptionalKeys.begin(), kOptionalKeys.end());
  std::set<std::string> known(all_keys.begin(), all_keys.end()), seen;
  for (const auto& kv : root) {
    if (!kv.first.IsScalar())  // e.g. "? [a]": as<std::string>() would throw yaml-cpp's BadConversion
      throw InputError(source + ": line " + std::to_string(kv.first.Mark().line + 1) +
                       ": a key must be a plain string (allowed: " + join(all_keys) + ")");
    std::string k = kv.first.as<std::string>();
    if (!known.count(k)) fail(source, k, "unknown key (allowed: " + join(all_keys) + ")");
    // yaml-cpp keeps both entries of a repeated key and root[k] reads the first: refuse it.
    if (!seen.insert(k).second)
      fail(source, k, "given twice (line " + std::to_string(kv.first.Mark().line + 1) + ")");
  }
  ModelConfig c;
  c.name = get<std::string>(root, source, "name", "a string");
  // An empty name (`name:`, or a tag with no text such as `name: !x`) would be written back by
  // to_yaml() as a null: refuse it here, naming the key.
  if (c.name.empty()) fail(source, "name", "is empty (a model needs a name, e.g. name: my-model)");
  c.n_layers = get_int(root, source, "n_layers");
  c.d_model = get_int(root, source, "d_model");
  c.n_heads = get_int(root, source, "n_heads");
  c.n_kv_heads = get_int(root, source, "n_kv_heads");
  c.d_head = get_int(root, source, "d_head");
  c.d_ff = get_int(root, source, "d_ff");
  c.vocab = get_int(root, source, "vocab");
  c.max_seq = get_int(root, source, "max_seq");
  c.block = get_enum<Block>(root, source, "block", {{"parallel", Block::parallel}, {"serial", Block::serial}});
  c.mlp = get_enum<Mlp>(root, source, "mlp", {{"swiglu", Mlp::swiglu}, {"gelu", Mlp::gelu}, {"geglu", Mlp::geglu}});
  c.norm = get_enum<Norm>(root, source, "norm", {{"rmsnorm", Norm::rmsnorm}, {"layernorm", Norm::layernorm}});
  c.rope_theta = get<double>(root, source, "rope_theta", "a number");
  c.tied_embeddings = get<bool>(root, source, "tied_embeddings", "true or false");
  c.norm_eps = get<double>(root, source, "norm_eps", "a number");
  if (root["qk_norm"]) c.qk_norm = get<bool>(root, source, "qk_norm", "true or false");
  if (root["post_norms"]) c.post_norms = get<bool>(root, source, "post_norms", "true or false");
  if (root["scale_embeddings"]) c.scale_embeddings = get<bool>(root, source, "scale_embeddings", "true or false");
  if (root["query_scale"]) c.query_scale = get<double>(root, source, "query_scale", "a number");
  if (root["global_every"]) c.global_every = get_int(root, source, "global_every");
  if (root["rope_theta_local"]) c.rope_theta_local = get<double>(root, source, "rope_theta_local", "a number");
  if (root["sliding_window"]) c.sliding_window = get_int(root, source, "sliding_window");
  if (root["sink_tokens"]) c.sink_tokens = get_int(root, source, "sink_tokens");
  validate(c, source);
  return c;
}

void validate(const ModelConfig& c, const std::string& source, const std::map<std::string, std::string>& file_keys) {
  auto fail = [&](const std::string& key, const std::string& msg) {
    auto it = file_keys.find(key);
    models::fail(source, it == file_keys.end() ? key : it->second, msg);
  };
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) fail(key, std::to_string(v) + " must be a positive integer");
  };
  positive("n_layers", c.n_layers);
  positive("d_model", c.d_model);
  positive("n_heads", c.n_heads);
  positive("n_kv_heads", c.n_kv_heads);
  positive("d_head", c.d_head);
  positive("d_ff", c.d_ff);
  positive("vocab", c.vocab);
  positive("max_seq", c.max_seq);
  if (c.n_heads % c.n_kv_heads != 0)
    fail("n_kv_heads",
         "n_heads = " + std::to_string(c.n_heads) + " is not divisible by n_kv_heads = " +
             std::to_string(c.n_kv_heads) + " (allowed: a divisor of n_heads; 1 = multiquery)");
  if (c.d_model % c.n_heads != 0)
    fail("d_model",
         "d_model = " + std::to_string(c.d_model) + " is not divisible by n_heads = " +
             std::to_string(c.n_heads));
  if (c.d_head % 2 != 0)
    fail("d_head", std::to_string(c.d_head) + " must be even (RoPE rotates pairs)");
  auto number = [](double v) {
    std::ostringstream o;
    o << v;
    return o.str();
  };
  if (!(c.rope_theta > 0)) fail("rope_theta", number(c.rope_theta) + " must be > 0");
  if (!(c.norm_eps > 0) || c.norm_eps > 1e-1) fail("norm_eps", number(c.norm_eps) + " must be in (0, 0.1]");
  if (c.vocab > (int64_t(1) << 31)) fail("vocab", "must be < 2^31");
  if (c.query_scale < 0 || !std::isfinite(c.query_scale))
    fail("query_scale", number(c.query_scale) + " must be >= 0 (0 = 1/sqrt(d_head))");
  if (c.global_every < 0) fail("global_every", std::to_string(c.global_every) + " must be >= 0 (0 = every layer global)");
  if (c.rope_theta_local < 0 || !std::isfinite(c.rope_theta_local))
    fail("rope_theta_local", number(c.rope_theta_local) + " must be >= 0 (0 = rope_theta)");
  if (c.sliding_window < 0) fail("sliding_window", std::to_string(c.sliding_window) + " must be >= 0 (0 = none)");
  if (c.post_norms && c.block != Block::serial)
    fail("post_norms", "needs block: serial (the post-attention and post-FFN norms sit on two residual steps)");
  if (c.sink_tokens < 0) fail("sink_tokens", std::to_string(c.sink_tokens) + " must be >= 0 (0 = none)");
  if (c.sink_tokens > 0 && c.sliding_window == 0)
    fail("sink_tokens", std::to_string(c.sink_tokens) +
                            " needs sliding_window > 0 (sinks are the positions a local layer keeps besides its window)");
}

kernels::AttentionPattern ModelConfig::layer_pattern(int64_t layer) const {
  return windowed(layer) ? kernels::AttentionPattern::sliding_window(sliding_window, sink_tokens)
                         : kernels::AttentionPattern::causal();
}

double ModelConfig::attention_scale() const {
  return query_scale > 0 ? query_scale : 1.0 / std::sqrt(double(d_head));
}

std::string to_yaml(const ModelConfig& c) {
  std::ostringstream o;
  o.precision(17);
  o << "name: " << c.name << "\n"
    << "n_layers: " << c.n_layers << "\n"
    << "d_model: " << c.d_model << "\n"
    << "n_heads: " << c.n_heads << "\n"
    << "n_kv_heads: " << c.n_kv_heads << "\n"
    << "d_head: " << c.d_head << "\n"
    << "d_ff: " << c.d_ff << "\n"
    << "vocab: " << c.vocab << "\n"
    << "max_seq: " << c.max_seq << "\n"
    << "block: " << to_string(c.block) << "\n"
    << "mlp: " << to_string(c.mlp) << "\n"
    << "norm: " << to_string(c.norm) << "\n"
    << "rope_theta: " << c.rope_theta << "\n"
    << "tied_embeddings: " << (c.tied_embeddings ? "true" : "false") << "\n"
    << "norm_eps: " << c.norm_eps << "\n";
  if (c.qk_norm) o << "qk_norm: true\n";
  if (c.post_norms) o << "post_norms: true\n";
  if (c.scale_embeddings) o << "scale_embeddings: true\n";
  if (c.query_scale > 0) o << "query_scale: " << c.query_scale << "\n";
  if (c.global_every > 0) o << "global_every: " << c.global_every << "\n";
  if (c.rope_theta_local > 0) o << "rope_theta_local: " << c.rope_theta_local << "\n";
  if (c.sliding_window > 0) o << "sliding_window: " << c.sliding_window << "\n";
  if (c.sink_tokens > 0) o << "sink_tokens: " << c.sink_tokens << "\n";
  return o.str();
}

std::vector<std::string> preset_names() {
  std::vector<std::string> v;
  for (auto& [k, _] : embedded_presets()) v.push_back(k);
  return v;
}

const std::string& preset_yaml(const std::string& name) {
  auto& p = embedded_presets();
  auto it = p.find(name);
  if (it == p.end())
    throw InputError("--model: '" + name + "' is neither a preset nor an existing YAML file (presets: " +
                     join(preset_names()) + ")");
  return it->second;
}

ModelConfig load_model_config(const std::string& name_or_path) {
  namespace fs = std::filesystem;
  if (embedded_presets().count(name_or_path))
    return parse_model_config(preset_yaml(name_or_path), "preset " + name_or_path);
  bool looks_like_path = name_or_path.find('/') != std::string::npos ||
                         name_or_path.ends_with(".yaml") || name_or_path.ends_with(".yml");
  if (!looks_like_path || !fs::exists(name_or_path)) {
    if (looks_like_path) throw InputError("--model: file '" + name_or_path + "' does not exist");
    preset_yaml(name_or_path);  // throws with the list of presets
  }
  if (fs::is_directory(name_or_path))
    throw InputError("--model: '" + name_or_path +
                     "' is a directory without config.json (allowed: a Hugging Face checkpoint directory, a .gguf "
                     "file, a model YAML file or a preset)");
  std::ifstream in(name_or_path);
  if (!in) throw InputError("--model: cannot read '" + name_or_path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_model_config(ss.str(), name_or_path);
}

}  // namespace tori::models
