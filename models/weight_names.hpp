#pragma once
// The canonical list of a model's tensors: names, full shapes and how the synthetic generator
// initialises them. Matrices are stored [in, out] so a layer computes x @ W, as in the paper
// (W_in is E x F, W_out is F x E). Every weight source (synthetic, checkpoint) speaks these names.
#include <string>
#include <vector>

#include "kernels/tensor.hpp"
#include "models/config.hpp"

namespace tori::models {

// How the synthetic generator fills a tensor: values uniform with unit variance times `scale`,
// plus `offset` (norm weights sit near 1).
struct TensorSpec {
  std::string name;
  kernels::Shape shape;
  float scale = 1.f;
  float offset = 0.f;
};

// Names of per-layer tensors: layer_tensor(3, "wq") == "layers.3.wq".
std::string layer_tensor(int64_t layer, const std::string& what);

// Every tensor of the model, in a fixed order:
//   embed [V, E]; unembed [E, V] (untied only); final_norm.weight/.bias [E];
//   per layer: attn_norm.weight/.bias, ffn_norm.weight/.bias (serial only) [E];
//   post_attn_norm.weight/.bias, post_ffn_norm.weight/.bias [E] (post_norms only);
//   q_norm.weight, k_norm.weight [D] (qk_norm only);
//   wq [E, H*D], wk [E, K*D], wv [E, K*D], wo [H*D, E];
//   w_in [E, F], w_gate [E, F] (SwiGLU and GeGLU), w_out [F, E].   (.bias only with LayerNorm)
std::vector<TensorSpec> model_tensors(const ModelConfig& c);
// The spec of one tensor by name; throws tori::Error if the model has no such tensor.
TensorSpec find_tensor(const ModelConfig& c, const std::string& name);

}  // namespace tori::models
