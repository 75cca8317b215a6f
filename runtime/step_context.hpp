#pragma once
// StepContext: what every layer of one forward step (a prefill block or a decode step) needs to
// know — the phase's placement and its dataflow, the chain strategy, the decode placement (where
// the KV cache lives), the collectives, and per global sequence of the step its cached length
// before the step and how many new tokens it brings. A decode step on the active sequences only
// (active_batch.hpp) runs on a smaller batch whose sequence r is KV-cache sequence `sequence[r]`. Which layer and projection is running is passed explicitly
// (LayerRef), never kept here.
#include <vector>

#include "collectives/collectives.hpp"
#include "kernels/kv_cache.hpp"
#include "kernels/rope.hpp"
#include "models/config.hpp"
#include "runtime/chain_strategy.hpp"
#include "runtime/layer_shards.hpp"
#include "runtime/layout_dataflow.hpp"
#include "runtime/placement.hpp"
#include "runtime/weight_prefetch.hpp"

namespace tori::runtime {

struct StepContext {
  const models::ModelConfig& config;
  const Placement& pl;         // this phase's layout
  const LayoutDataflow& flow;  // its dataflow (layout_dataflow.hpp)
  const ChainStrategy& chains; // plain or looped chains (chain_strategy.hpp)
  const Placement& decode_pl;  // where the KV cache lives
  collectives::Collectives& coll;
  const kernels::RopeTable& rope;
  ShardOptions opt;
  bool prefill = false;
  int64_t L = 1;                // rows per sequence this step (prompts padded to the longest)
  std::vector<int64_t> start;   // per global sequence: tokens cached before this step
  std::vector<int64_t> n_new;   // per global sequence: new tokens this step (<= L)
  // Per global sequence of the step: the sequence of the decode placement's batch (where its KV
  // cache is) it is, -1 for padding; empty = the same index (the step runs the whole batch).
  std::vector<int64_t> sequence;
  std::vector<kernels::KvCache>* caches = nullptr;  // per layer, decode placement
  // A prefill in another placement than decode's: per layer, its own placement's cache of this
  // prefill's earlier chunks (attention_layouts.hpp), empty at the prefill's start.
  std::vector<kernels::KvCache>* handoff_caches = nullptr;
  WeightPrefetch* prefetch = nullptr;  // weight-gathered layouts: this step's weight all-gathers
  // Local layers' RoPE table (config.rope_theta_local), or null: every layer uses `rope`.
  const kernels::RopeTable* rope_local = nullptr;
};

}  // namespace tori::runtime
