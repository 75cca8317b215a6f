#include "runtime/memory_estimate.hpp"

#include <algorithm>

#include "kernels/kv_cache.hpp"
#include "runtime/layout_dataflow.hpp"

namespace tori::runtime {

double weight_element_bytes(kernels::WeightFormat f) {
  switch (f) {
    case kernels::WeightFormat::f32: return 4;
    case kernels::WeightFormat::bf16: return 2;
    case kernels::WeightFormat::int8: return 1;
    // 4-bit codes plus an f16 scale (and an f16 min) per group of kInt4Group rows (gemm_s4_f32.hpp).
    case kernels::WeightFormat::int4: return 0.5 + 2.0 / double(kernels::kInt4Group);
    case kernels::WeightFormat::int4_min: return 0.5 + 4.0 / double(kernels::kInt4Group);
  }
  return 4;
}

std::vector<ProjectionUnits> projection_units(const models::ModelConfig& c, int64_t n) {
  const int64_t hd = c.n_heads * c.d_head / n, f = c.d_ff / n;
  const int64_t ffn_in = (c.mlp == models::Mlp::gelu ? 1 : 2) * f;
  if (c.block == models::Block::parallel) return {{true, true, true, hd + ffn_in, hd + f}};
  return {{true, true, false, hd, hd}, {false, false, true, ffn_in, f}};
}

double kv_bytes_per_position(const models::ModelConfig& c, const Placement& dec, int64_t kv_elem_bytes) {
  return double(dec.attn_batch_local) * double(dec.kv_heads.size()) * double(c.d_head) * 2.0 * double(kv_elem_bytes);
}

double kv_cache_bytes(const models::ModelConfig& c, const Placement& dec, int64_t kv_elem_bytes, int64_t context) {
  // Each layer's slots as KvCache allocates them: rounded up to whole blocks of kKvBlock positions.
  auto padded = [](int64_t slots) { return (slots + kernels::kKvBlock - 1) / kernels::kKvBlock * kernels::kKvBlock; };
  double slots = 0;
  for (int64_t l = 0; l < c.n_layers; ++l)
    slots += double(padded(c.windowed(l) ? kernels::window_slots(context, c.sliding_window, c.sink_tokens) : context));
  return kv_bytes_per_position(c, dec, kv_elem_bytes) * slots;
}

double activation_bytes(const models::ModelConfig& c, const Placement& pl, const StepShape& s) {
  if (s.batch <= 0) return 0;
  const LayoutDataflow flow = layout_dataflow(pl);
  const ProjectionDataflow& f = flow.projection;
  const auto& sh = pl.shape;
  auto grp = [&](Axes a) { return double(sh.group_size(a)); };
  auto made = [&](Axes a, double elems) { return grp(a) > 1 ? elems : 0.0; };  // a collective's new output
  const double n = double(sh.ranks()), B = double(s.batch), L = double(s.tokens), E = double(c.d_model);
  const double D = double(c.d_head), KD = double(c.n_kv_heads) * D, M = double(pl.batch_local) * L;
  const double El = double(pl.e_local), Ba = double(pl.attn_batch_local), Kl = double(pl.kv_heads.size());
  const double Ha = double(pl.heads.size()), U = double(pl.units.size());
  const bool multi_row = M > 1;  // a column all-gather / reduce-scatter of several rows packs in scratch

  // Embedding: [B·L, E] partial sums --RS(A) rows--> [B_l·L, E] --RS(R) columns--> [M, E_l], the
  // scratch then holding just the column reduce-scatter's packed input. The collectives' scratch
  // slots (pack, unpack) grow to the largest call of each and stay: the layers' moments count the
  // layers' (and the embedding's) largest, the last rows' moment everything's.
  const double embed_pack = made(flow.step.embed_cols, M * E);
  const double embed = B * L * E + made(flow.step.embed_rows, M * E) + made(flow.step.embed_cols, M * El) + embed_pack;
  double pack = embed_pack, unpack = 0;
  double elems = 0;  // the layers' largest moment, without the scratch
  double gathered = 0, gathered_one = 0;  // weight-gathered: every projection's, the largest one's
  const auto units = projection_units(c, sh.ranks());
  for (size_t i = 0; i < units.size(); ++i) {
    const ProjectionUnits& p = units[i];
    const WeightShapes w = multiplied_weights(pl, f, p.unit_in, p.unit_out);
    // The residual and the norms' outputs held by run_layer; serial blocks' second projection runs
    // with both norms' outputs and the first projection's output (`attn`, in scope to the layer's end).
    const double base = M * El * double(2 + 2 * i);
    const double x = made(f.in.gather, M * double(w.in_rows)), Pin = M * double(w.in_cols);
    const double y = grp(f.in.scatter) > 1 ? Pin / grp(f.in.scatter) : 0.0;  // else y is Pin itself
    const double y_held = y > 0 ? y : Pin, kv = p.with_kv ? M * 2 * KD : 0.0;
    const double kv_held = kv + made(f.kv_reduce, kv);
    const double input = base + x + Pin + y;
    const double kv_moment = base + x + y_held + kv_held;
    if (multi_row) unpack = std::max(unpack, x), pack = std::max(pack, y > 0 ? Pin : 0.0);
    // Middle: z [M, U·unit_out]; attention's copies (Q taken and cloned, K and V sliced, my sequences'
    // KV heads selected, all-to-all there and back with its head selections). The FFN's activation
    // reads y's columns and writes z's in place (kernels::ffn_activation_columns): nothing more.
    const double z = M * U * double(p.unit_out);
    double middle = 0;
    if (p.with_q) {
      const double Q = M * U * double(c.n_heads / sh.ranks()) * D;
      const bool a2a = grp(flow.attention.to_batch) > 1;
      double attn = 2 * Q + 2 * M * KD + 2 * Ba * L * Kl * D + Ba * L * Ha * D + (a2a ? 4 * Q : 0.0);
      if (a2a) pack = std::max(pack, Q), unpack = std::max(unpack, Q);
      // A local layer's step longer than its window cache takes in place attends against a widened
      // copy (kv_cache.hpp): the window's slots plus the step's, K and V.
      const int64_t win = c.sliding_window > 0 ? kernels::window_slots(c.max_seq, c.sliding_window, c.sink_tokens) : 0;
      bool local = false;
      for (int64_t l = 0; l < c.n_layers; ++l) local |= c.windowed(l);
      if (local && win < c.max_seq && s.tokens > win - c.sink_tokens - (c.sliding_window - 1)) {
        const double slots = double((win + s.tokens + kernels::kKvBlock - 1) / kernels::kKvBlock * kernels::kKvBlock);
        attn += 2 * Ba * Kl * slots * D;
      }
      if (s.handoff) {  // K and V cloned, all-gathered over S' then A, decode's rows selected
        const Placement& d = *s.handoff;
        attn += 2 * (Ba * L * KD * (1 + grp(flow.attention.handoff_rows)) + B * L * KD +
                     double(d.attn_batch_local) * L * double(d.kv_heads.size()) * D);
      }
      middle = std::max(middle, attn);
    }
    const double mid = base + y_held + kv_held + z + middle;
    // Output chain: z --AG(out.gather)--> @ W_out --> partial [M, out_cols] --RS(out.scatter)--> [M, E_l].
    const double zg = made(f.out.gather, M * double(w.out_rows)), Pout = M * double(w.out_cols);
    const double output = base + y_held + kv_held + z + zg + Pout + made(f.out.scatter, M * El);
    if (multi_row) unpack = std::max(unpack, zg), pack = std::max(pack, made(f.out.scatter, Pout));
    elems = std::max({elems, input, kv_moment, mid, output});
    if (grp(f.weight_gather) > 1 || grp(f.kv_weight_gather) > 1) {
      double one = made(f.weight_gather, double(w.in_rows) * double(w.in_cols) + double(w.out_rows) * double(w.out_cols));
      if (p.with_kv) one += made(f.kv_weight_gather, double(w.kv_rows) * 2 * KD);
      gathered += one;
      gathered_one = std::max(gathered_one, one);
    }
  }
  const double layers = elems + pack + unpack;
  // The step's last rows (each sequence's): the residual [M, E_l], its last rows and their norm
  // [B_l, E_l] --AG(R) columns--> [B_l, E] --AG(A) rows--> [B, E]; logits [B, V/n] --AG(xyz)--> [B, V].
  const double V = double(c.vocab), Bl = double(pl.batch_local);
  if (Bl > 1) unpack = std::max(unpack, made(flow.step.hidden_cols, Bl * E));
  if (B > 1) unpack = std::max(unpack, made(Axes::xyz, B * V));
  const double last = M * El + 2 * Bl * El + made(flow.step.hidden_cols, Bl * E) + made(flow.step.hidden_rows, B * E) +
                      B * V / n + made(Axes::xyz, B * V) + pack + unpack;
  // Gathered weights (all-gather outputs): one projection's at a time (the largest), every
  // projection of two layers with overlap; placed once more (a copy) when not f32.
  const double gathered_bytes =
      (s.overlap ? 2 * gathered : gathered_one) * s.gathered_bytes * (s.placed_copy && s.gathered_bytes < 4 ? 2 : 1);
  // A prefill handing its cache over keeps its own placement's K and V of the whole prompt, every
  // layer (f32, in KV-cache blocks of kKvBlock positions).
  double handoff_cache = 0;
  if (s.handoff) {
    const int64_t T = std::max(s.prompt, s.tokens), blocks = (T + kernels::kKvBlock - 1) / kernels::kKvBlock;
    handoff_cache = double(c.n_layers) * 2 * Ba * Kl * double(blocks * kernels::kKvBlock) * D * 4;
  }
  return std::max({embed, layers, last}) * s.act_bytes + gathered_bytes + handoff_cache;
}

double layer_weight_elems(const models::ModelConfig& c, const Placement& p, const TsvdPricing* tsvd) {
  const int64_t n = p.shape.ranks(), KD = c.n_kv_heads * c.d_head;
  if (!tsvd) {
    // Projection weights of one layer (all but W_kv, which every rank holds whole along its columns).
    const int64_t per_layer =
        (c.n_params() - c.vocab * c.d_model * (c.tied_embeddings ? 1 : 2)) / c.n_layers - 2 * c.d_model * KD;
    return double(per_layer / n + p.stored_e_rows * 2 * KD);
  }
  // The weights as layer_shards.cpp joins them: each factored when all its tensors are.
  const int64_t rows = p.stored_e_rows, U = int64_t(p.stored_units.size());
  const int64_t hd = c.n_heads * c.d_head / n, f = c.d_ff / n;
  using Kinds = std::vector<std::pair<std::string, int64_t>>;  // kind, columns (rows) held
  auto elems = [&](const Kinds& k) {
    std::vector<std::string> names;
    double dense = 0;
    for (const auto& [kind, cols] : k) names.push_back(kind), dense += double(rows) * double(cols);
    return tsvd->factored(names) ? tsvd->stored(rows, k) : dense;
  };
  Kinds ffn = {{"w_in", U * f}, {"w_out", U * f}};
  if (c.mlp != models::Mlp::gelu) ffn.push_back({"w_gate", U * f});
  Kinds attn = {{"wq", U * hd}, {"wo", U * hd}};
  const double kv = elems({{"wk", KD}, {"wv", KD}});
  if (c.block == models::Block::parallel) {  // one projection: q | w_in | w_gate and o | w_out
    attn.insert(attn.end(), ffn.begin(), ffn.end());
    return kv + elems(attn);
  }
  return kv + elems(attn) + elems(ffn);
}

MemoryEstimate estimate_memory(const models::ModelConfig& c, const Placement& pre, const Placement& dec,
                               kernels::WeightFormat weights, int64_t kv_elem_bytes, int64_t context,
                               const StepShape& prefill_step, const StepShape& decode_step, double plain_bytes,
                               const TsvdPricing* tsvd) {
  const int64_t n = pre.shape.ranks();
  auto storage_elems = [&](const Placement& p) { return double(c.n_layers) * layer_weight_elems(c, p, tsvd); };
  const bool gathered = !pre.batch_axes.empty() || !dec.batch_axes.empty();
  const bool two = storage_for(pre.plan.ffn) != storage_for(dec.plan.ffn);
  const double elems = storage_elems(dec) + (two ? storage_elems(pre) : 0);
  MemoryEstimate m;
  // The embedding block [V/n, E] in f32 (gathered from) and the unembedding [E, V/n] packed.
  const double block = double(c.vocab) * double(c.d_model) / double(n);
  const double table = 4.0 * block, packed = block * weight_element_bytes(kernels::unembedding_format(weights));
  // RoPE cos/sin tables [positions, D/2] each (a second one for local layers' base)
  const double rope = 4.0 * double(std::min(c.max_seq, context)) * double(c.d_head) * (c.global_every > 0 ? 2 : 1);
  m.weight_bytes = elems * weight_element_bytes(weights) + (gathered ? elems * plain_bytes : 0.0) + table + packed + rope;
  m.load_bytes = rope + table + table + packed;
  m.kv_bytes = kv_cache_bytes(c, dec, kv_elem_bytes, context);
  m.activation_bytes = std::max(activation_bytes(c, pre, prefill_step), activation_bytes(c, dec, decode_step));
  return m;
}

}  // namespace tori::runtime
