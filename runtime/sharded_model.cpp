#include "runtime/sharded_model.hpp"

#include "kernels/activations.hpp"

#include <algorithm>
#include <numeric>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "kernels/activations.hpp"
#include "kernels/columns.hpp"
#include "kernels/embedding.hpp"
#include "kernels/heap_policy.hpp"
#include "kernels/matmul.hpp"
#include "kernels/take.hpp"
#include "models/weight_names.hpp"
#include "runtime/active_batch.hpp"
#include "runtime/attention_layouts.hpp"
#include "runtime/chain_strategy.hpp"
#include "runtime/memory_estimate.hpp"
#include "runtime/padded_weights.hpp"
#include "runtime/sharded_norm.hpp"
#include "runtime/step_context.hpp"
#include "runtime/threads.hpp"
#include "runtime/token_log_probs.hpp"
#include "runtime/transformer_block.hpp"

namespace tori::runtime {

using collectives::Axes;
using kernels::Tensor;
using models::Box;

namespace {

// MemAvailable from /proc/meminfo (0 if unknown).
int64_t available_memory_bytes() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char key[64];
  long long kb = 0;
  int64_t out = 0;
  while (std::fscanf(f, "%63s %lld kB\n", key, &kb) == 2)
    if (std::string(key) == "MemAvailable:") out = int64_t(kb) * 1024;
  std::fclose(f);
  return out;
}

// Refuses, before allocating, a model whose share will not fit in what this host has free for
// each of its ranks (memory_estimate.hpp).
void require_memory(const models::ModelConfig& c, const models::ModelConfig& padded, const Plan& plan,
                    const Placement& pre, const Placement& dec, int64_t batch, const ShardOptions& opt,
                    const TsvdPricing* tsvd) {
  // The caches hold max_seq positions per sequence: the run's context (the commands set the
  // source's max_seq to what the run reaches, models/context_window.hpp).
  // The largest prefill step: a chunk of prompts of max_seq tokens (the handoff cache, if any, of
  // max_seq), and a decode step; f32 activations and gathered weights.
  const int64_t chunk = opt.prefill_chunk > 0 ? std::clamp<int64_t>(opt.prefill_chunk / batch, 1, c.max_seq) : c.max_seq;
  StepShape ps{.batch = batch, .tokens = chunk, .prompt = c.max_seq, .overlap = opt.overlap != collectives::Overlap::none};
  if (needs_cache_handoff(pre, dec)) ps.handoff = &dec;
  const MemoryEstimate m = estimate_memory(padded, pre, dec, opt.format, 4, c.max_seq, ps,
                                           StepShape{.batch = batch, .tokens = 1, .overlap = ps.overlap}, 4.0, tsvd);
  const int64_t avail = available_memory_bytes(), ranks = std::max(1, ranks_on_host(MPI_COMM_WORLD));
  auto gib = [](double b) { return std::to_string(b / double(int64_t(1) << 30)).substr(0, 6) + " GiB"; };
  if (avail > 0 && m.peak() > double(avail / ranks))
    throw InputError("model '" + c.name + "' with plan " + plan.str() + " needs " + gib(m.peak()) +
                     " per rank (weights and tables " + gib(m.weight_bytes) + " + KV cache " + gib(m.kv_bytes) +
                     " for " + std::to_string(dec.attn_batch_local) + " sequences x context " +
                     std::to_string(c.max_seq) + " positions + activations " + gib(m.activation_bytes) +
                     (m.load_bytes > m.total() ? "; while loading, the embedding's packing " + gib(m.load_bytes) : "") +
                     ") but this host has " + gib(double(avail)) + " available for its " + std::to_string(ranks) +
                     " rank(s): use more ranks, a smaller batch, a shorter context (prompt + --max-new-tokens; "
                     "serve: --context) or a smaller --prefill-chunk");
}

// Whether prefill must hand its K/V to decode's placement, agreed by every rank (any rank's
// placements differing is enough: the handoff's collectives involve them all).
bool agree_cache_handoff(collectives::Collectives& coll, const Placement& pre, const Placement& dec) {
  Tensor differs({1}, kernels::DType::f32);
  differs.set(0, needs_cache_handoff(pre, dec) ? 1.f : 0.f);
  return coll.all_reduce(differs, Axes::xyz).get(0) > 0;
}

// Row blocks [n_i, E] one under the other: [Σ n_i, E].
Tensor stack_rows(const std::vector<Tensor>& parts, int64_t E) {
  int64_t n = 0;
  for (const Tensor& t : parts) n += t.size(0);
  Tensor out = Tensor::empty({n, E}, kernels::DType::f32);
  int64_t at = 0;
  for (const Tensor& t : parts) {
    std::copy_n(t.data<float>(), t.numel(), out.data<float>() + at * E);
    at += t.size(0);
  }
  return out;
}

}  // namespace

ShardedModel::ShardedModel(const models::WeightSource& src, collectives::Collectives& coll, const Plan& plan,
                           int64_t batch, ShardOptions opt)
    : config_(src.config()),
      shard_config_(padded_config(config_, coll.torus().ranks())),
      coll_(coll),
      plan_(plan),
      batch_(batch),
      opt_(opt) {
  const auto& t = coll.torus();
  validate_phase(config_, t.shape(), plan.prefill, batch, "prefill");
  validate_phase(config_, t.shape(), plan.decode, batch, "decode");
  prefill_pl_ = make_placement(config_, t.shape(), t.coords(), plan.prefill, batch);
  decode_pl_ = make_placement(config_, t.shape(), t.coords(), plan.decode, batch);
  prefill_flow_ = layout_dataflow(prefill_pl_);
  decode_flow_ = layout_dataflow(decode_pl_);
  // TSVD checkpoints: f32 and bf16 runs hold the factors (layer_shards.hpp).
  const std::optional<TsvdPricing> tsvd = run_pricing(src, opt_.format);
  require_memory(config_, shard_config_, plan, prefill_pl_, decode_pl_, batch, opt_, tsvd ? &*tsvd : nullptr);
  if (decode_pl_.padding.any()) {
    // Once per padding, not once per model (verify builds one per plan).
    static std::string logged;
    if (logged != decode_pl_.padding.describe()) spdlog::info("{}", logged = decode_pl_.padding.describe());
  }
  // Transient load-time copies are mapped and returned when freed (kernels/heap_policy.hpp).
  const kernels::LoadingHeap loading;
  rope_.emplace(config_.max_seq, config_.d_head, config_.rope_theta);
  if (config_.global_every > 0) rope_local_.emplace(config_.max_seq, config_.d_head, config_.layer_rope_theta(0));
  handoff_ = agree_cache_handoff(coll, prefill_pl_, decode_pl_);
  // Each shard is cut from the padded model: zero weights in the padding, read box by box.
  const PaddedWeights padded(src, t.ranks());
  // The embedding first: packing the unembedding transposes the whole [V', E]-block table (a
  // transient as large as the table), which then does not coincide with the layers' packed weights.
  load_embedding(padded);
  load_layers(padded);
  reset();
  spdlog::debug("prefill {}; decode {}", prefill_pl_.describe(), decode_pl_.describe());
}

void ShardedModel::load_layers(const models::WeightSource& padded) {
  // Weight shards, for each storage a phase uses ("E_x F_yz" or "E F_xyz"); the plain copies are
  // kept only for weight-gathered layouts, which all-gather them every step.
  const std::pair<const Placement*, const LayoutDataflow*> phases[] = {{&prefill_pl_, &prefill_flow_},
                                                                        {&decode_pl_, &decode_flow_}};
  opt_.keep_plain = false;
  for (const auto& [pl, flow] : phases) opt_.keep_plain |= !flow->projection.weight_gather.empty();
  for (const auto& [pl, flow] : phases) {
    auto& layers = storage_for(pl->plan.ffn) == Storage::s2d ? layers_2d_ : layers_1d_;
    if (!layers.empty()) continue;
    // A weight-stationary layout on this storage multiplies the stored shards: packed whole for
    // plain chains, cut into tiles at load for looped ones (weight-gathered layouts cut what they
    // gather, every step).
    ShardOptions o = opt_;
    const ProjectionDataflow* stationary = nullptr;
    for (const auto& [other, other_flow] : phases)
      if (storage_for(other->plan.ffn) == storage_for(pl->plan.ffn) && other_flow->projection.weight_gather.empty())
        stationary = &other_flow->projection;
    o.pack = stationary && o.overlap == collectives::Overlap::none;
    if (stationary && o.overlap != collectives::Overlap::none) o.tiles_for = *stationary;
    for (int64_t l = 0; l < config_.n_layers; ++l) layers.push_back(load_layer_shard(padded, l, *pl, o));
  }
  if (opt_.keep_plain) agree_factor_gathers();
}

void ShardedModel::agree_factor_gathers() {
  // Weight-gathered TSVD weights: every member of a gather sends the same number of floats, the
  // largest flattened grid of any rank (per-tile ranks may differ between shards), agreed at load
  // by one all_gather of every factored weight's length.
  std::vector<int64_t*> lengths;
  for (auto* layers : {&layers_2d_, &layers_1d_})
    for (LayerShard& l : *layers) {
      if (l.w_kv_factors) lengths.push_back(&l.kv_floats);
      for (Projection& p : l.projections)
        if (p.w_in_factors) lengths.push_back(&p.in_floats), lengths.push_back(&p.out_floats);
    }
  if (lengths.empty()) return;  // every rank holds the same weights factored, or none
  // Each length as two exact f32 integers (high and low 2^20 parts), every rank's gathered.
  Tensor mine({1, 2 * int64_t(lengths.size())}, kernels::DType::f32);
  for (size_t i = 0; i < lengths.size(); ++i)
    mine.data<float>()[2 * i] = float(*lengths[i] >> 20), mine.data<float>()[2 * i + 1] = float(*lengths[i] & 0xFFFFF);
  const Tensor every = coll_.all_gather(mine, 0, Axes::xyz);
  const float* e = every.data<float>();
  for (size_t i = 0; i < lengths.size(); ++i)
    for (int64_t r = 0; r < every.size(0); ++r)
      *lengths[i] = std::max(*lengths[i], (int64_t(e[r * every.size(1) + 2 * int64_t(i)]) << 20) +
                                              int64_t(e[r * every.size(1) + 2 * int64_t(i) + 1]));
}

void ShardedModel::load_embedding(const models::WeightSource& padded) {
  // Embedding: vocab block g of [V', E]; unembedding [E, V'/n] (embed^T when tied).
  const auto& t = coll_.torus();
  const int64_t n = t.ranks(), g = t.shard_index(Axes::xyz), Vn = shard_config_.vocab / n, E = config_.d_model;
  embed_ = padded.read("embed", Box{{g * Vn, 0}, {Vn, E}});
  unembed_ = config_.tied_embeddings
                 ? kernels::pack_unembedding(embed_, kernels::unembedding_format(opt_.format), opt_.backend)
                 : kernels::pack_weight(padded.read("unembed", Box{{0, g * Vn}, {E, Vn}}),
                                        kernels::unembedding_format(opt_.format), opt_.backend);
  final_norm_w_ = padded.read_full("final_norm.weight");
  if (config_.norm == models::Norm::layernorm) final_norm_b_ = padded.read_full("final_norm.bias");
}

void ShardedModel::reset() {
  caches_.clear();
  for (int64_t l = 0; l < config_.n_layers; ++l)
    caches_.emplace_back(decode_pl_.attn_batch_local, static_cast<int64_t>(decode_pl_.kv_heads.size()),
                         config_.max_seq, config_.d_head, kernels::DType::f32,
                         config_.windowed(l) ? config_.sliding_window : 0, config_.sink_tokens);
  lengths_.assign(static_cast<size_t>(batch_), 0);
}

void ShardedModel::reset(int64_t b) {
  if (b < 0 || b >= batch_) throw Error("reset: sequence " + std::to_string(b) + " outside batch " + std::to_string(batch_));
  // The cache lives in the decode placement: this rank holds sequences [offset, offset + local).
  const int64_t local = b - decode_pl_.attn_batch_offset;
  if (local >= 0 && local < decode_pl_.attn_batch_local)
    for (auto& c : caches_) c.clear(local);
  lengths_[size_t(b)] = 0;
}

int64_t ShardedModel::weight_bytes() const {
  int64_t b = static_cast<int64_t>(embed_.nbytes() + final_norm_w_.nbytes() + final_norm_b_.nbytes());
  b += unembed_.weight_bytes();  // packed, tied or not
  for (auto* layers : {&layers_2d_, &layers_1d_})
    for (auto& l : *layers) b += l.bytes();
  return b;
}

int64_t ShardedModel::cache_bytes() const {
  int64_t b = 0;
  for (auto& c : caches_) b += static_cast<int64_t>(c.k().nbytes() + c.v().nbytes());
  return b;
}

Tensor ShardedModel::forward(bool prefill, const Placement& pl, const LayoutDataflow& flow, const std::vector<int32_t>& ids,
                             int64_t L, const std::vector<int64_t>& n_new, bool last_only,
                             const std::vector<int64_t>& sequence) {
  const auto& t = coll_.torus();
  const int64_t Vn = shard_config_.vocab / t.ranks();
  // [B·L] ids --gather my vocab block, zeros elsewhere--> [B·L, E]{partial xyz}
  //   --reduce_scatter(batch axes) rows--> [B_l·L, E]{partial E axes} --reduce_scatter(E axes) columns--> [B_l·L, E_l]
  // The batch and E axes are disjoint and cover xyz (placement.hpp), so this is the sum over every
  // rank, of which each keeps just its residual slice (half an all-reduce's traffic, or less).
  // The phase's own placement: a step on the active sequences runs in a smaller batch's
  // placement, with the same weights (their gathers do not depend on the batch).
  const Placement& phase_pl = prefill ? prefill_pl_ : decode_pl_;
  Tensor resid;
  {  // the [B·L, E] partial sums are released before the layers
    Tensor emb;
    kernels::embedding_gather(embed_, ids, emb, t.shard_index(Axes::xyz) * Vn, true);
    resid = coll_.reduce_scatter(coll_.reduce_scatter(emb, 0, flow.step.embed_rows), 1, flow.step.embed_cols);
    if (config_.scale_embeddings) kernels::scale(resid, std::sqrt(float(config_.d_model)));  // Gemma: x sqrt(E)
  }

  const auto& layers = storage_for(pl.plan.ffn) == Storage::s2d ? layers_2d_ : layers_1d_;
  const bool overlap = opt_.overlap != collectives::Overlap::none;
  std::unique_ptr<WeightPrefetch> prefetch = carried_pl_ == &phase_pl ? std::move(carried_) : nullptr;
  carried_.reset();
  carried_pl_ = nullptr;
  if (!prefetch) prefetch = std::make_unique<WeightPrefetch>(coll_, phase_pl, layers, overlap);
  const bool carry = overlap && !flow.projection.weight_gather.empty() && config_.n_layers > 1;
  std::vector<int64_t> start = lengths_;  // per sequence of the step
  if (!sequence.empty()) {
    start.assign(sequence.size(), 0);
    for (size_t r = 0; r < sequence.size(); ++r)
      if (sequence[r] >= 0) start[r] = lengths_[size_t(sequence[r])];
  }
  StepContext s{shard_config_, pl, flow, chain_strategy(opt_.overlap, pl, flow.projection), decode_pl_, coll_, *rope_,
                opt_, prefill, L, std::move(start), n_new, sequence, &caches_, &handoff_caches_, prefetch.get()};
  s.rope_local = rope_local_ ? &*rope_local_ : nullptr;
  auto snapshot = [&] {
    LayerTraffic t{};
    for (size_t k = 0; k < collectives::kCollectives.size(); ++k)
      for (collectives::Axis a : collectives::kAxes)
        t[k][size_t(a)] = coll_.traffic().get(collectives::kCollectives[k], a);
    return t;
  };
  const LayerTraffic before = snapshot();
  for (int64_t l = 0; l < config_.n_layers; ++l) {
    if (carry && l == config_.n_layers - 1) {  // the next step's layer 0, behind this layer's own gathers
      prefetch->start_layer(l);
      carried_ = std::make_unique<WeightPrefetch>(coll_, phase_pl, layers, overlap);
      carried_pl_ = &phase_pl;
      carried_->start_layer(0);
    }
    run_layer(s, l, layers[size_t(l)], resid, s.prefill && handoff_);
  }
  const LayerTraffic after = snapshot();
  LayerTraffic& per_layer = s.prefill ? prefill_traffic_ : decode_traffic_;
  const uint64_t nl = static_cast<uint64_t>(config_.n_layers);
  for (size_t k = 0; k < per_layer.size(); ++k)
    for (size_t a = 0; a < 3; ++a)
      per_layer[k][a] = {(after[k][a].bytes - before[k][a].bytes) / nl,
                         (after[k][a].messages - before[k][a].messages) / nl};
  for (size_t b = 0; b < n_new.size(); ++b)
    if (n_new[b] > 0) lengths_[sequence.empty() ? b : size_t(sequence[b])] += n_new[b];

  // last_only: just each sequence's last position goes on (row n_new[b] - 1 of its L): [B_l, E_l].
  if (last_only && L > 1) {
    std::vector<int64_t> last;  // an idle sequence's (n_new 0) row 0: padding, never read
    for (int64_t b = 0; b < pl.batch_local; ++b)
      last.push_back(b * L + std::max<int64_t>(n_new[size_t(pl.batch_offset + b)] - 1, 0));
    resid = kernels::take_rows(resid, last);
  }
  // Final norm on my slice --all_gather(E axes), all_gather(batch axes)--> [B·L, E] (or [B, E])
  Tensor h = sharded_norm(coll_, flow.step.norm, config_, resid, pl.e_offset, final_norm_w_, final_norm_b_);
  h = coll_.all_gather(h, -1, flow.step.hidden_cols);
  h = coll_.all_gather(h, 0, flow.step.hidden_rows);
  return h;
}

Tensor ShardedModel::logits(const Tensor& hidden) {
  // [R, E] @ unembed [E, V'/n] -> [R, V'/n] --all_gather(xyz)--> [R, V'] -> the real V columns
  Tensor part;
  kernels::unembed(hidden, unembed_, part);
  Tensor all = coll_.all_gather(part, -1, decode_flow_.step.logits);
  return shard_config_.vocab == config_.vocab ? all : kernels::slice_columns(all, 0, config_.vocab);
}

std::vector<Tensor> ShardedModel::prefill_hidden(const std::vector<models::TokenIds>& prompts, bool all_positions) {
  if (static_cast<int64_t>(prompts.size()) != batch_)
    throw InputError("prefill: " + std::to_string(prompts.size()) + " prompts for a model built for batch " +
                     std::to_string(batch_));
  int64_t L = 0;
  for (size_t b = 0; b < prompts.size(); ++b) {
    L = std::max<int64_t>(L, static_cast<int64_t>(prompts[b].size()));
    if (lengths_[b] + static_cast<int64_t>(prompts[b].size()) > config_.max_seq)
      throw InputError("sequence " + std::to_string(b) + " would reach " +
                       std::to_string(lengths_[b] + static_cast<int64_t>(prompts[b].size())) +
                       " tokens, more than max_seq = " + std::to_string(config_.max_seq) + " of model '" +
                       config_.name + "'");
    for (int32_t id : prompts[b])
      if (id < 0 || id >= config_.vocab)
        throw InputError("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                         std::to_string(config_.vocab) + ") of model '" + config_.name + "'");
  }
  if (L == 0) throw InputError("prefill: every prompt is empty");
  // Chunk by chunk: tokens [c0, c0 + Lc) of every prompt, padded to Lc; a padded row is computed
  // but never cached or read, and a sequence whose prompt has ended brings no new tokens.
  const int64_t Lc = chunk_tokens(L), E = config_.d_model;
  handoff_caches_.clear();
  if (handoff_)  // the prefill placement's own cache of the chunks so far (attention_layouts.hpp)
    for (int64_t l = 0; l < config_.n_layers; ++l)
      handoff_caches_.emplace_back(prefill_pl_.attn_batch_local, static_cast<int64_t>(prefill_pl_.kv_heads.size()),
                                   L, config_.d_head);
  std::vector<std::vector<Tensor>> rows(static_cast<size_t>(batch_));  // per sequence, its hidden rows
  for (int64_t c0 = 0; c0 < L; c0 += Lc) {
    const int64_t Lk = std::min(Lc, L - c0);
    std::vector<int32_t> ids(static_cast<size_t>(batch_ * Lk), 0);
    std::vector<int64_t> n_new(static_cast<size_t>(batch_));
    for (int64_t b = 0; b < batch_; ++b) {
      const auto& p = prompts[size_t(b)];
      const int64_t nb = std::clamp<int64_t>(static_cast<int64_t>(p.size()) - c0, 0, Lk);
      std::copy(p.begin() + c0, p.begin() + c0 + nb, ids.begin() + b * Lk);
      n_new[size_t(b)] = nb;
    }
    // Only the rows sampling needs (each prompt's last, or all) go on to the unembedding; without
    // all_positions forward() keeps just the last ones from the final norm on.
    // With the cache kept in place, only the rows of the sequences given tokens in this chunk are
    // computed (active_batch.hpp, as in decode); a handoff's collectives need the whole batch.
    std::vector<bool> active(static_cast<size_t>(batch_));
    for (int64_t b = 0; b < batch_; ++b) active[size_t(b)] = n_new[size_t(b)] > 0;
    const ActiveBatch a = handoff_ ? ActiveBatch{} : active_batch(batch_, batch_ / decode_pl_.attn_batch_local, active);
    Tensor h;  // [B_s·Lk, E] or [B_s, E]: step row r is sequence step_seq[r] (-1: padding)
    std::vector<int64_t> step_seq(static_cast<size_t>(batch_));
    if (handoff_ || a.rows == batch_) {
      std::iota(step_seq.begin(), step_seq.end(), 0);
      h = forward(true, prefill_pl_, prefill_flow_, ids, Lk, n_new, !all_positions);
    } else {
      const auto& [pl, flow] = active_phase(true, a.rows);
      std::vector<int32_t> rows_ids(static_cast<size_t>(a.rows * Lk), 0);
      std::vector<int64_t> rows_new(static_cast<size_t>(a.rows), 0);
      for (int64_t r = 0; r < a.rows; ++r)
        if (const int64_t b = a.sequence[size_t(r)]; b >= 0) {
          std::copy_n(ids.begin() + b * Lk, Lk, rows_ids.begin() + r * Lk);
          rows_new[size_t(r)] = n_new[size_t(b)];
        }
      step_seq = a.sequence;
      h = forward(true, pl, flow, rows_ids, Lk, rows_new, !all_positions, a.sequence);
    }
    for (size_t r = 0; r < step_seq.size(); ++r) {
      const int64_t b = step_seq[r], nb = b >= 0 ? n_new[size_t(b)] : 0;
      if (all_positions && nb > 0) rows[size_t(b)].push_back(h.narrow0(int64_t(r) * Lk, nb));
      if (!all_positions && nb > 0 && c0 + nb == static_cast<int64_t>(prompts[size_t(b)].size()))
        rows[size_t(b)].push_back(h.narrow0(int64_t(r), 1));
    }
  }
  handoff_caches_.clear();
  // Each sequence's rows in order, one tensor: [n_b, E].
  std::vector<Tensor> out;
  for (const auto& r : rows) out.push_back(stack_rows(r, E));
  return out;
}

std::vector<Tensor> ShardedModel::prefill(const std::vector<models::TokenIds>& prompts, bool all_positions) {
  const std::vector<Tensor> rows = prefill_hidden(prompts, all_positions);
  const int64_t E = config_.d_model, V = config_.vocab;
  // Every sequence's rows, in order: [R, E] -> logits [R, V], unembedded and gathered kLogitRows
  // rows at a time straight into each sequence's [n_b, V] (its last row, or all its rows; an idle
  // sequence [0, V]), so a long prompt's every position (Gemma 3: 1 MiB of logits a row) is never
  // held twice more as one [R, V] gather and its copy.
  constexpr int64_t kLogitRows = 64;
  const Tensor hidden = stack_rows(rows, E);
  std::vector<Tensor> out;
  std::vector<std::pair<int64_t, int64_t>> at;  // per row of `hidden`: (sequence, row in it)
  for (size_t b = 0; b < rows.size(); ++b) {
    out.emplace_back(std::vector<int64_t>{rows[b].size(0), V}, kernels::DType::f32);
    for (int64_t i = 0; i < rows[b].size(0); ++i) at.emplace_back(int64_t(b), i);
  }
  for (int64_t r0 = 0; r0 < hidden.size(0); r0 += kLogitRows) {
    const int64_t k = std::min(kLogitRows, hidden.size(0) - r0);
    const Tensor lg = logits(hidden.narrow0(r0, k));
    for (int64_t i = 0; i < k; ++i) {
      const auto [b, row] = at[size_t(r0 + i)];
      std::copy_n(lg.data<float>() + i * V, V, out[size_t(b)].data<float>() + row * V);
    }
  }
  return out;
}

std::vector<std::vector<double>> ShardedModel::prefill_log_probs(const std::vector<models::TokenIds>& prompts,
                                                                 int64_t first) {
  if (first < 0) throw Error("prefill_log_probs: first position " + std::to_string(first) + " < 0");
  const std::vector<Tensor> rows = prefill_hidden(prompts, true);
  const int64_t E = config_.d_model;
  // The scored rows of every sequence, [R, E], and the token each predicts.
  int64_t R = 0;
  for (size_t b = 0; b < rows.size(); ++b) R += std::max<int64_t>(rows[b].size(0) - 1 - first, 0);
  std::vector<std::vector<double>> out(rows.size());
  if (R == 0) return out;  // the same on every rank: nothing to score
  Tensor picked = Tensor::empty({R, E}, kernels::DType::f32);
  std::vector<int32_t> targets;
  for (size_t b = 0; b < rows.size(); ++b)
    for (int64_t l = first; l + 1 < rows[b].size(0); ++l) {
      std::copy_n(rows[b].data<float>() + l * E, E, picked.data<float>() + int64_t(targets.size()) * E);
      targets.push_back(prompts[b][size_t(l + 1)]);
    }
  // [R, E] @ unembed [E, V'/n] -> [R, V'/n]: this rank's vocabulary block, reduced where it lives.
  Tensor part;
  kernels::unembed(picked, unembed_, part);
  const int64_t Vn = shard_config_.vocab / coll_.torus().ranks();
  const std::vector<double> lp = token_log_probs(coll_, decode_flow_.step.logits, part,
                                                 coll_.torus().shard_index(Axes::xyz) * Vn, config_.vocab, targets);
  size_t at = 0;
  for (size_t b = 0; b < rows.size(); ++b)
    for (int64_t l = first; l + 1 < rows[b].size(0); ++l) out[b].push_back(lp[at++]);
  return out;
}

int64_t ShardedModel::chunk_tokens(int64_t L) const {
  if (opt_.prefill_chunk <= 0) return L;
  return std::clamp<int64_t>(opt_.prefill_chunk / batch_, 1, L);
}

const std::pair<Placement, LayoutDataflow>& ShardedModel::active_phase(bool prefill, int64_t rows) {
  auto it = active_phases_.find({prefill, rows});
  if (it == active_phases_.end()) {
    const auto& t = coll_.torus();
    Placement pl = make_placement(config_, t.shape(), t.coords(), prefill ? plan_.prefill : plan_.decode, rows);
    LayoutDataflow flow = layout_dataflow(pl);
    it = active_phases_.emplace(std::make_pair(prefill, rows), std::make_pair(std::move(pl), std::move(flow))).first;
  }
  return it->second;
}

Tensor ShardedModel::decode(const models::TokenIds& tokens) {
  if (static_cast<int64_t>(tokens.size()) != batch_)
    throw InputError("decode: " + std::to_string(tokens.size()) + " tokens for batch " + std::to_string(batch_));
  std::vector<int32_t> ids(tokens.begin(), tokens.end());
  std::vector<int64_t> n_new(static_cast<size_t>(batch_), 1);
  for (int64_t b = 0; b < batch_; ++b) {
    if (tokens[size_t(b)] == kIdle) {
      ids[size_t(b)] = 0, n_new[size_t(b)] = 0;  // a row of padding: computed, never cached or read
      continue;
    }
    if (tokens[size_t(b)] < 0 || tokens[size_t(b)] >= config_.vocab)
      throw InputError("decode: token id " + std::to_string(tokens[size_t(b)]) + " is outside the vocabulary [0, " +
                       std::to_string(config_.vocab) + ")");
    if (lengths_[size_t(b)] + 1 > config_.max_seq)
      throw InputError("sequence " + std::to_string(b) + " would exceed max_seq = " + std::to_string(config_.max_seq));
  }
  if (std::count(n_new.begin(), n_new.end(), 0) == batch_) throw InputError("decode: every sequence is idle");
  // Only the active sequences' rows are computed (active_batch.hpp), their caches where they are.
  std::vector<bool> active(static_cast<size_t>(batch_));
  for (int64_t b = 0; b < batch_; ++b) active[size_t(b)] = n_new[size_t(b)] > 0;
  const ActiveBatch a = active_batch(batch_, batch_ / decode_pl_.attn_batch_local, active);
  if (a.rows == batch_) {  // no row to save (every shard as full as the fullest): the whole batch
    Tensor lg = logits(forward(false, decode_pl_, decode_flow_, ids, 1, n_new, false));
    for (int64_t b = 0; b < batch_; ++b)
      if (n_new[size_t(b)] == 0) std::fill_n(lg.data<float>() + b * lg.size(1), lg.size(1), 0.f);
    return lg;
  }
  const auto& [pl, flow] = active_phase(false, a.rows);
  std::vector<int32_t> rows_ids(static_cast<size_t>(a.rows), 0);
  std::vector<int64_t> rows_new(static_cast<size_t>(a.rows), 0);
  for (int64_t r = 0; r < a.rows; ++r)
    if (const int64_t b = a.sequence[size_t(r)]; b >= 0) rows_ids[size_t(r)] = ids[size_t(b)], rows_new[size_t(r)] = 1;
  const Tensor lg = logits(forward(false, pl, flow, rows_ids, 1, rows_new, false, a.sequence));
  // [B_a, V] -> [B, V]: each active sequence's row; an idle sequence's row is zero.
  const int64_t V = lg.size(1);
  Tensor out({batch_, V}, kernels::DType::f32);
  for (int64_t r = 0; r < a.rows; ++r)
    if (const int64_t b = a.sequence[size_t(r)]; b >= 0)
      std::copy_n(lg.data<float>() + r * V, V, out.data<float>() + b * V);
  return out;
}

}  // namespace tori::runtime
