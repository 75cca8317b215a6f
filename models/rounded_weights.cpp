#include "models/rounded_weights.hpp"

#include <algorithm>

#include "kernels/columns.hpp"
#include "kernels/embedding.hpp"
#include "kernels/error.hpp"
#include "kernels/quantize.hpp"
#include "kernels/tsvd.hpp"
#include "models/weight_names.hpp"

namespace tori::models {

using kernels::Tensor;
using kernels::WeightFormat;

namespace {

// "layers.3.w_out" -> "w_out"; "" for tensors outside the layers.
std::string layer_part(const std::string& name) {
  if (!name.starts_with("layers.")) return "";
  const size_t dot = name.find('.', 7);
  return dot == std::string::npos ? "" : name.substr(dot + 1);
}

bool is_matmul_weight(const std::string& name) {
  const std::string w = layer_part(name);
  return name == "unembed" || w == "wq" || w == "wk" || w == "wv" || w == "wo" || w == "w_in" ||
         w == "w_gate" || w == "w_out";
}

Tensor round_bf16(const Tensor& w) { return w.to(kernels::DType::bf16).to(kernels::DType::f32); }

// q · scale for w [K, N] with the given scales [N].
Tensor round_int8(const Tensor& w, const Tensor& scales) {
  return kernels::dequantize_int8(kernels::quantize_int8(w, scales));
}

// w [K, N] through the group-wise 4-bit quantiser and back (every group of 32 rows on its own, so
// the whole tensor rounds as each shard of it does).
// `name`: the tensor, for the error when its K rows are not whole groups.
Tensor round_int4(const Tensor& w, WeightFormat fmt, const std::string& name) {
  if (w.size(0) % kernels::kInt4Group != 0)
    throw InputError("--dtype " + std::string(kernels::weight_format_name(fmt)) + ": tensor " + name + " " +
                     kernels::shape_str(w.shape()) + " has " + std::to_string(w.size(0)) +
                     " input rows, not whole groups of " + std::to_string(kernels::kInt4Group) +
                     " rows the 4-bit format quantises (allowed for this model: f32, bf16, int8)");
  return kernels::dequantize_int4(kernels::quantize_int4(w, fmt == WeightFormat::int4_min));
}

// Whether the sharded run multiplies `name`'s factors rather than a dense product
// (runtime/layer_shards.cpp: a weight runs factored when every tensor it joins is compressed:
// W_k | W_v; W_q with W_o; the FFN's; in the parallel block attention's and the FFN's together).
bool runs_factored(const WeightSource& src, const std::string& name, const std::string& part) {
  if (!src.factor_tile(name)) return false;
  const ModelConfig& c = src.config();
  const std::string prefix = name.substr(0, name.size() - part.size());
  std::vector<std::string> group;
  if (part == "wk" || part == "wv")
    group = {"wk", "wv"};
  else if (c.block == Block::parallel)
    group = {"wq", "wo", "w_in", "w_gate", "w_out"};
  else if (part == "wq" || part == "wo")
    group = {"wq", "wo"};
  else
    group = {"w_in", "w_gate", "w_out"};
  for (const std::string& g : group)
    if (!(g == "w_gate" && c.mlp == Mlp::gelu) && !src.factor_tile(prefix + g)) return false;
  return true;
}

// A factored weight as a bf16 or int8 run multiplies it: Σ U'·V' per tile with the factors as
// pack_tsvd holds them (kernels::tsvd_as_packed: bf16 element by element; int8 factors back to the
// stored q with U's and the whole weight's V scales), the same values in every layout's shards.
Tensor round_factors(const WeightSource& src, const std::string& name, WeightFormat fmt) {
  const kernels::Shape shape = find_tensor(src.config(), name).shape;
  return kernels::tsvd_as_packed(*src.read_factors(name, Box{{0, 0}, {shape[0], shape[1]}}), fmt).reconstruct();
}

Tensor cut(const Tensor& full, const Box& box) {
  if (box.start.size() != 2 || box.size.size() != 2)
    throw Error("rounded weights: box of rank " + std::to_string(box.start.size()) + " for a 2-D weight");
  return kernels::slice_columns(full.narrow0(box.start[0], box.size[0]), box.start[1], box.size[1]);
}

}  // namespace

RoundedWeights::RoundedWeights(const WeightSource& base, WeightFormat fmt) : base_(base), fmt_(fmt) {}

Tensor RoundedWeights::rounded_full(const std::string& name) const {
  const bool factored = runs_factored(base_, name, layer_part(name));
  if (factored && (fmt_ == WeightFormat::bf16 || (fmt_ == WeightFormat::int8 && base_.int8_factors(name))))
    return round_factors(base_, name, fmt_);
  Tensor w = base_.read_full(name);
  if (fmt_ == WeightFormat::bf16) return round_bf16(w);
  if (kernels::is_int4(fmt_) && name != "unembed") return round_int4(w, fmt_, name);
  Tensor amax = kernels::column_amax(w);
  const std::string part = layer_part(name);
  if (config().block == Block::parallel && (part == "wo" || part == "w_out")) {
    // One output matmul [H·D + F, E] in the parallel block: the column's max over both tensors.
    const std::string other = name.substr(0, name.size() - part.size()) + (part == "wo" ? "w_out" : "wo");
    Tensor a2 = kernels::column_amax(base_.read_full(other));
    for (int64_t n = 0; n < amax.numel(); ++n)
      amax.data<float>()[n] = std::max(amax.data<float>()[n], a2.data<float>()[n]);
  }
  return round_int8(w, kernels::int8_scales(amax));
}

Tensor RoundedWeights::read(const std::string& name, const Box& box) const {
  if (fmt_ == WeightFormat::f32 || !is_matmul_weight(name)) return base_.read(name, box);
  Tensor full = rounded_full(name);
  if (box.start == kernels::Shape(full.rank(), 0) && box.size == full.shape()) return full;
  return cut(full, box);
}

Tensor RoundedWeights::read_tied_unembedding() const {
  Tensor embed = base_.read_full("embed");  // [V, E]
  if (fmt_ == WeightFormat::f32) return embed;
  if (fmt_ == WeightFormat::bf16) return round_bf16(embed);
  // (The int4 forms pack the unembedding as int8: kernels::unembedding_format.)
  // The run packs embed^T [E, V]: one scale per vocabulary entry over all of E.
  Tensor t = kernels::transpose2d(embed);
  return kernels::transpose2d(round_int8(t, kernels::int8_scales(kernels::column_amax(t))));
}

}  // namespace tori::models
