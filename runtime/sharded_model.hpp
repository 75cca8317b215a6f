#pragma once
// ShardedModel: the transformer run across the torus. Each rank materialises only its shards
// (placement.hpp) from a WeightSource, runs each phase in the plan's layout (ffn_layouts.hpp,
// attention_layouts.hpp), keeps its slice of the KV cache in the decode placement, and produces
// logits that every rank holds (so every rank samples the same token without a broadcast).
// A model whose heads, d_ff or vocab do not divide by the rank count runs padded with zero weights
// (padding.hpp, padded_weights.hpp): same logits, padded FLOPs; the padding is logged once.
// The interface mirrors models::ReferenceModel so the two can be compared step by step.
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "collectives/collectives.hpp"
#include "kernels/kv_cache.hpp"
#include "kernels/rope.hpp"
#include "models/reference_model.hpp"
#include "models/weight_source.hpp"
#include "runtime/layer_shards.hpp"
#include "runtime/layout_dataflow.hpp"
#include "runtime/placement.hpp"
#include "runtime/weight_prefetch.hpp"
#include "runtime/plan.hpp"

namespace tori::runtime {

class ShardedModel {
 public:
  // Collective over coll's torus. Throws InputError if the plan cannot run (placement.hpp).
  ShardedModel(const models::WeightSource& source, collectives::Collectives& coll, const Plan& plan,
               int64_t batch, ShardOptions opt = {});

  const models::ModelConfig& config() const { return config_; }              // the model's own
  const models::ModelConfig& shard_config() const { return shard_config_; }  // padded (padding.hpp)
  const Plan& plan() const { return plan_; }
  const Placement& placement(bool prefill) const { return prefill ? prefill_pl_ : decode_pl_; }
  int64_t batch() const { return batch_; }

  // Empties every sequence's KV cache.
  void reset();
  // Empties sequence b's KV cache (a slot freed for the next request: serve/); the others keep theirs.
  void reset(int64_t b);
  int64_t length(int64_t b) const { return lengths_.at(size_t(b)); }  // tokens cached for sequence b
  // Appends prompts[b] (one per sequence of the batch) to each sequence; returns per sequence the
  // logits of its last position [1, V], or of every position [L_b, V] when all_positions. Runs in
  // chunks of chunk_tokens() tokens per sequence (ShardOptions::prefill_chunk), the KV cache
  // filling chunk by chunk: the same logits as one step, activations bounded by the chunk. A
  // sequence given no tokens (empty prompts[b], not all empty) is idle: nothing is appended to its
  // cache, nothing it holds is read, and its entry is [0, V]; when the plan keeps the cache where it
  // is (prefill_continues()), only the rows of the sequences given tokens are computed, as in
  // decode (active_batch.hpp). Called again with the next pieces of
  // the prompts, it continues them (serve/'s chunked prefill), unless the plan hands prefill's K/V
  // over to decode's placement (prefill_continues() false: prefill then needs empty caches).
  // The logits are unembedded and gathered 64 rows at a time into the result (every rank holds
  // the result, but never a second [R, V] beside it).
  std::vector<kernels::Tensor> prefill(const std::vector<models::TokenIds>& prompts, bool all_positions = false);
  bool prefill_continues() const { return !handoff_; }
  // Appends prompts[b] as prefill() does and returns, per sequence, the log-probability the model
  // gives each next token of its prompt from position `first` on: log p(prompts[b][l + 1] |
  // prompts[b][0..l]) for l in [first, L_b - 1), L_b - 1 - first values (none if L_b - 1 <= first).
  // Only those rows are unembedded, and their logits stay vocabulary-sharded: each rank reduces
  // its block to a log-sum-exp and the target's logit (token_log_probs.hpp), no [R, V] gather.
  // Every rank returns the same values. Perplexity (launch/cmd_perplexity.cpp) scores with it.
  std::vector<std::vector<double>> prefill_log_probs(const std::vector<models::TokenIds>& prompts, int64_t first);
  // Tokens per sequence of one prefill step for prompts padded to L (ShardOptions::prefill_chunk).
  int64_t chunk_tokens(int64_t L) const;
  // One token per sequence; returns logits [B, V]. tokens[b] = kIdle: sequence b is skipped
  // (nothing appended, its row of the logits is zero); not all may be idle. Only the active
  // sequences' rows are computed (active_batch.hpp: per attention batch shard, padded to the
  // fullest shard), in the decode layout on that smaller batch, against the caches where they are.
  static constexpr int32_t kIdle = -1;
  kernels::Tensor decode(const models::TokenIds& tokens);

  // Traffic this rank sent per transformer layer (the layer loop's total / n_layers) in the last
  // forward step of each phase, per collective kind and axis.
  using LayerTraffic = std::array<collectives::AxisTraffic, collectives::kCollectives.size()>;
  const LayerTraffic& layer_traffic(bool prefill) const { return prefill ? prefill_traffic_ : decode_traffic_; }

  int64_t weight_bytes() const;  // this rank's stored weights
  int64_t cache_bytes() const;   // this rank's KV cache (allocated)

 private:
  // Runs ids [B·L] (row b·L + l = sequence b's token l, padded) through the model in placement
  // `pl`; returns the final-normed hidden state of every row, gathered [B·L, E], or with last_only
  // of each sequence's last real row (n_new[b] - 1), [B, E].
  // sequence: per row-sequence of the step, the sequence (slot) it is (a decode step on the active
  // sequences, in a smaller batch's placement `pl`); empty = the whole batch in order.
  // prefill: the step is a prefill step (its traffic, its weight prefetch, a handoff if any).
  kernels::Tensor forward(bool prefill, const Placement& pl, const LayoutDataflow& flow, const std::vector<int32_t>& ids,
                          int64_t L, const std::vector<int64_t>& n_new, bool last_only,
                          const std::vector<int64_t>& sequence = {});
  // The phase's layout on rows < B rows (active_batch.hpp), built on first use.
  const std::pair<Placement, LayoutDataflow>& active_phase(bool prefill, int64_t rows);
  kernels::Tensor logits(const kernels::Tensor& hidden);  // [R, E] -> [R, V]
  // prefill()'s steps: per sequence, the final-normed hidden rows of every new position [L_b, E],
  // or of its last one [1, E] ([0, E] for an idle sequence).
  std::vector<kernels::Tensor> prefill_hidden(const std::vector<models::TokenIds>& prompts, bool all_positions);
  void load_layers(const models::WeightSource& padded);     // each storage the phases use
  void agree_factor_gathers();  // weight-gathered TSVD: the gathers' lengths (layer_shards.hpp)
  void load_embedding(const models::WeightSource& padded);  // embedding, unembedding, final norm

  models::ModelConfig config_, shard_config_;
  collectives::Collectives& coll_;
  Plan plan_;
  int64_t batch_;
  ShardOptions opt_;
  Placement prefill_pl_, decode_pl_;
  LayoutDataflow prefill_flow_, decode_flow_;
  // Each phase's layout on B_a rows (ActiveBatch::rows < B), built on first use:
  // (prefill?, B_a) -> (placement, dataflow).
  std::map<std::pair<bool, int64_t>, std::pair<Placement, LayoutDataflow>> active_phases_;
  bool handoff_ = false;
  std::vector<LayerShard> layers_2d_, layers_1d_;  // by storage, loaded as the plan needs
  kernels::Tensor embed_;                          // [V'/n, E]: (padded) vocab block g
  kernels::PackedWeight unembed_;                  // [E, V'/n]
  kernels::Tensor final_norm_w_, final_norm_b_;
  std::optional<kernels::RopeTable> rope_;  // built after the memory check (max_seq x D/2 entries)
  std::optional<kernels::RopeTable> rope_local_;  // local layers' (config.rope_theta_local), if any
  std::vector<kernels::KvCache> caches_;  // per layer, decode placement
  std::vector<kernels::KvCache> handoff_caches_;  // per layer, during a prefill with a handoff
  std::vector<int64_t> lengths_;          // per global sequence
  LayerTraffic prefill_traffic_{}, decode_traffic_{};
  // Overlapped weight-gathered steps start the next step's layer-0 gathers during their last layer
  // (weights do not depend on the step's data); the next step of the same placement takes them,
  // a step of the other placement drops them (they complete unread).
  std::unique_ptr<WeightPrefetch> carried_;
  const Placement* carried_pl_ = nullptr;
};

}  // namespace tori::runtime
