#include "models/weight_names.hpp"

#include <cmath>

#include "kernels/error.hpp"

namespace tori::models {

std::string layer_tensor(int64_t layer, const std::string& what) {
  return "layers." + std::to_string(layer) + "." + what;
}

std::vector<TensorSpec> model_tensors(const ModelConfig& c) {
  const int64_t E = c.d_model, F = c.d_ff, V = c.vocab, HD = c.n_heads * c.d_head,
                KD = c.n_kv_heads * c.d_head;
  auto inv_sqrt = [](int64_t n) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(n))); };
  // Scales keep activations well-conditioned through 100+ layers: every projection maps unit-RMS
  // inputs to unit-RMS outputs (1/sqrt(fan_in)); norm weights are 1 +- 0.1, biases +- 0.1.
  // The embedding has RMS 1/sqrt(E), so with tied embeddings a token's own logit does not dominate
  // the (unit-RMS) contribution of the layers: greedy decoding follows the network, not an echo.
  const float kNormSpread = 0.1f;
  std::vector<TensorSpec> t;
  auto norm = [&](const std::string& base) {
    t.push_back({base + ".weight", {E}, kNormSpread, 1.f});
    if (c.norm == Norm::layernorm) t.push_back({base + ".bias", {E}, kNormSpread, 0.f});
  };
  t.push_back({"embed", {V, E}, inv_sqrt(E), 0.f});
  if (!c.tied_embeddings) t.push_back({"unembed", {E, V}, inv_sqrt(E), 0.f});
  norm("final_norm");
  for (int64_t l = 0; l < c.n_layers; ++l) {
    norm(layer_tensor(l, "attn_norm"));
    if (c.block == Block::serial) norm(layer_tensor(l, "ffn_norm"));
    if (c.post_norms) {
      norm(layer_tensor(l, "post_attn_norm"));
      norm(layer_tensor(l, "post_ffn_norm"));
    }
    if (c.qk_norm) {
      t.push_back({layer_tensor(l, "q_norm.weight"), {c.d_head}, kNormSpread, 1.f});
      t.push_back({layer_tensor(l, "k_norm.weight"), {c.d_head}, kNormSpread, 1.f});
    }
    t.push_back({layer_tensor(l, "wq"), {E, HD}, inv_sqrt(E), 0.f});
    t.push_back({layer_tensor(l, "wk"), {E, KD}, inv_sqrt(E), 0.f});
    t.push_back({layer_tensor(l, "wv"), {E, KD}, inv_sqrt(E), 0.f});
    t.push_back({layer_tensor(l, "wo"), {HD, E}, inv_sqrt(HD), 0.f});
    t.push_back({layer_tensor(l, "w_in"), {E, F}, inv_sqrt(E), 0.f});
    if (c.mlp != Mlp::gelu) t.push_back({layer_tensor(l, "w_gate"), {E, F}, inv_sqrt(E), 0.f});
    t.push_back({layer_tensor(l, "w_out"), {F, E}, inv_sqrt(F), 0.f});
  }
  return t;
}

TensorSpec find_tensor(const ModelConfig& c, const std::string& name) {
  for (auto& s : model_tensors(c))
    if (s.name == name) return s;
  throw Error("model '" + c.name + "' has no tensor named '" + name + "'");
}

}  // namespace tori::models
