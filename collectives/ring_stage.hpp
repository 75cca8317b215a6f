#pragma once
// Ring stage executors: carry out one stage of a ring plan (ring_plan.hpp) on one torus axis with
// nonblocking point-to-point messages between ring neighbours, and count what they send. Shared by
// the one-way and the bidirectional ring (they differ only in their plans' lanes).
//
// Data movement sends messages of at most CollectivesOptions::message_bytes; a reduction receives
// its partial sums in pieces of CollectivesOptions::chunk_bytes and adds each piece while it is
// hot in cache, with at most kReduceWindow pieces outstanding per lane.
#include <cstddef>

#include "collectives/algorithm.hpp"

namespace tori::collectives {

// Received partial-sum chunks outstanding per lane while the previous one is being summed: two lets
// MPI fill the next chunk during the add without letting received data run far ahead of the
// adder (and out of cache).
inline constexpr int kReduceWindow = 2;

// buf: the stage's blocks (elements of elem_bytes); on return every member's block is filled.
void run_all_gather_stage(const RingLink& ring, const Stage& stage, std::byte* buf,
                          size_t elem_bytes, const CallContext& ctx);

// src: my summands of every block; work: scratch with the same indexing (may equal src); final:
// where my fully summed block goes (may be work + my block's offset).
void run_reduce_scatter_stage(const RingLink& ring, const Stage& stage, const float* src,
                              float* work, float* final, const CallContext& ctx);

// in: `size` member shares of share_bytes (share j for member j); out: share j from member j.
void run_all_to_all_stage(const RingLink& ring, LaneSplit split, const std::byte* in,
                          std::byte* out, size_t share_bytes, const CallContext& ctx);

// out = in of member index - shift; one transfer to member index + shift.
void run_ppermute(const RingLink& ring, const std::byte* in, std::byte* out, size_t bytes,
                  int shift, const CallContext& ctx);

}  // namespace tori::collectives
