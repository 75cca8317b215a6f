#pragma once
// ModelConfig: the shape of a decoder-only transformer, in the paper's letters. Loaded from a YAML
// preset embedded in the binary (models/presets/*.yaml) or from a user's YAML file. Every key is
// required, unknown keys are refused, and inconsistent values are errors naming file, key and the
// allowed values.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kernels/attention_pattern.hpp"

namespace tori::models {

enum class Block { parallel, serial };   // y = x + Attn(N(x)) + FFN(N(x))  |  two residual steps
enum class Mlp { swiglu, gelu, geglu };  // W_out(silu(x W_gate) * x W_in)  |  W_out(gelu(x W_in))
                                         //   |  W_out(gelu_tanh(x W_gate) * x W_in)  (Gemma's GeGLU)
enum class Norm { rmsnorm, layernorm };  // weight only                     |  weight and bias

struct ModelConfig {
  std::string name;
  int64_t n_layers = 0;
  int64_t d_model = 0;     // E
  int64_t n_heads = 0;     // H (query heads)
  int64_t n_kv_heads = 0;  // K: 1 = multiquery, H = multihead, in between = grouped
  int64_t d_head = 0;      // D
  int64_t d_ff = 0;        // F
  int64_t vocab = 0;       // V
  int64_t max_seq = 0;     // longest prompt + generation a sequence may reach
  Block block = Block::parallel;
  Mlp mlp = Mlp::swiglu;
  Norm norm = Norm::rmsnorm;
  double rope_theta = 10000.0;
  bool tied_embeddings = true;  // unembedding = embedding^T
  double norm_eps = 1e-6;
  // Gemma 3's additions (optional YAML keys; the defaults are the Llama/PaLM block above):
  bool qk_norm = false;           // RMSNorm over D of every query and key head (weights [D]) before RoPE
  bool post_norms = false;        // serial block: y' = x + N1'(Attn(N1(x))); y = y' + N2'(FFN(N2(y')))
  bool scale_embeddings = false;  // residual stream starts at embed[token] * sqrt(E)
  double query_scale = 0;         // softmax(q.k * query_scale); 0 = 1/sqrt(D)
  // Local/global layers (docs/multigrain.md "Patterns per layer"): with global_every = n > 0 layer l
  // is global when (l + 1) % n == 0 (Gemma 3: every 6th) and local otherwise; with global_every = 0
  // every layer is local if there is a sliding window (StreamingLLM-style), else global. A global
  // layer attends causally and uses rope_theta; a local layer uses rope_theta_local and, when
  // sliding_window = w > 0, attends to the w most recent positions (itself included) plus the first
  // sink_tokens positions (attention sinks, seen by every later query); its KV cache keeps only
  // those (kernels/kv_cache.hpp).
  int64_t global_every = 0;       // 0: no global layers when sliding_window > 0, else all global
  double rope_theta_local = 0;    // 0: rope_theta
  int64_t sliding_window = 0;     // 0: none (every layer causal)
  int64_t sink_tokens = 0;        // local layers' always-visible first positions (needs a window)

  bool is_local(int64_t layer) const {
    return global_every > 0 ? (layer + 1) % global_every != 0 : sliding_window > 0;
  }
  double layer_rope_theta(int64_t layer) const {
    return is_local(layer) && rope_theta_local > 0 ? rope_theta_local : rope_theta;
  }
  // The layer's attention pattern: sliding_window(w, sink_tokens) on a local layer with a window,
  // causal otherwise.
  kernels::AttentionPattern layer_pattern(int64_t layer) const;
  bool windowed(int64_t layer) const { return sliding_window > 0 && is_local(layer); }
  double attention_scale() const;  // query_scale, or 1/sqrt(D)

  int64_t group_size() const { return n_heads / n_kv_heads; }  // query heads per KV head
  // Parameter count (matmul weights + embeddings + norms).
  int64_t n_params() const;
};

std::string to_string(Block b);
std::string to_string(Mlp m);
std::string to_string(Norm n);

// Parses YAML text; `source` names the file (or "preset NAME") in error messages.
ModelConfig parse_model_config(const std::string& yaml_text, const std::string& source);
// `name_or_path`: a preset name (see preset_names()) or a path to a YAML file.
ModelConfig load_model_config(const std::string& name_or_path);
// Throws InputError naming `source` and the key when the config is inconsistent. `file_keys` maps
// a ModelConfig key (n_kv_heads) to the name the file gives it (config.json's num_key_value_heads,
// a GGUF's llama.attention.head_count_kv), so the message names the key the user can change.
void validate(const ModelConfig& c, const std::string& source,
              const std::map<std::string, std::string>& file_keys = {});
// YAML text that parses back to the same config (used by dumps and logs).
std::string to_yaml(const ModelConfig& c);

std::vector<std::string> preset_names();
// The embedded YAML text of a preset; throws InputError listing the presets if unknown.
const std::string& preset_yaml(const std::string& name);

}  // namespace tori::models
