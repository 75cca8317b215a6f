#include "runtime/memory_estimate.hpp"

namespace tori::runtime {

double weight_element_bytes(kernels::WeightFormat f) {
  switch (f) {
    case kernels::WeightFormat::f32: return 4;
    case kernels::WeightFormat::bf16: return 2;
    case kernels::WeightFormat::int8: return 1;
  }
  return 4;
}

double kv_bytes_per_position(const models::ModelConfig& c, const Placement& dec, int64_t kv_elem_bytes) {
  return double(c.n_layers) * double(dec.attn_batch_local) * double(dec.kv_heads.size()) * double(c.d_head) * 2.0 *
         double(kv_elem_bytes);
}

MemoryEstimate estimate_memory(const models::ModelConfig& c, const Placement& pre, const Placement& dec,
                               kernels::WeightFormat weights, int64_t kv_elem_bytes, int64_t context) {
  const int64_t n = pre.shape.ranks(), KD = c.n_kv_heads * c.d_head;
  // Projection weights of one layer (all but W_kv, which every rank holds whole along its columns).
  const int64_t per_layer =
      (c.n_params() - c.vocab * c.d_model * (c.tied_embeddings ? 1 : 2)) / c.n_layers - 2 * c.d_model * KD;
  auto storage_elems = [&](const Placement& p) {
    return double(c.n_layers) * double(per_layer / n + p.stored_e_rows * 2 * KD);
  };
  const bool gathered = !pre.batch_axes.empty() || !dec.batch_axes.empty();
  const bool two = storage_for(pre.plan.ffn) != storage_for(dec.plan.ffn);
  const double elems = storage_elems(dec) + (two ? storage_elems(pre) : 0);
  MemoryEstimate m;
  m.weight_bytes = elems * weight_element_bytes(weights) + (gathered ? elems * 4.0 : 0.0) +
                   4.0 * double(c.vocab) * double(c.d_model) * (c.tied_embeddings ? 1 : 2) / double(n) +
                   4.0 * double(c.max_seq) * double(c.d_head);  // RoPE cos/sin table
  m.kv_bytes = kv_bytes_per_position(c, dec, kv_elem_bytes) * double(context);
  return m;
}

}  // namespace tori::runtime
