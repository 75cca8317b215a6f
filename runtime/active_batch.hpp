#pragma once
// ActiveBatch: the rows one decode step computes when only some sequences (slots) decode.
// The KV cache stays where the decode placement put it: attention batch shard j (of N_a = B /
// B_attn, in the order of Placement::attn_batch_offset) holds sequences [j·B_attn, (j+1)·B_attn).
// A step with active sequences a_j in shard j runs as a decode step of the same layout on a batch
// of B_a = N_a·M rows, M = max_j |a_j|: rows [j·M, (j+1)·M) are shard j's active sequences in
// ascending order, then idle padding rows. Every rank computes the same B_a from the same active
// set, so the collectives line up, and the all-to-all of batch-sharded attention delivers each row
// to the rank that holds its cache, because the batch-B_a placement's shard j is rows [j·M, (j+1)·M)
// (placement.hpp: the attention shards nest in the FFN's batch shards, both contiguous). With
// head-sharded or weight-stationary layouts N_a = 1 and B_a = the number of active sequences.
// Pure index maths (no MPI).
#include <cstdint>
#include <vector>

namespace tori::runtime {

struct ActiveBatch {
  int64_t rows = 0;              // B_a = shards · M
  std::vector<int64_t> sequence; // per row: the sequence (slot) it computes, or -1 (padding)
};

// batch: B; shards: N_a (divides B); active[b]: whether sequence b decodes this step (not all false).
ActiveBatch active_batch(int64_t batch, int64_t shards, const std::vector<bool>& active);

}  // namespace tori::runtime
