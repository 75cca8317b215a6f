#pragma once
// Token embedding and unembedding (PaLM ties them: logits = h @ embed^T).
//   embedding_gather: out[i, :] = embed[ids[i], :]; embed [V, E] f32 or bf16, out [M, E] f32.
//     `vocab_offset` lets a rank holding rows [offset, offset + V_local) of a vocab-sharded table
//     gather only its ids (rows for other ids are zero-filled, ready to be summed across ranks).
//   pack_unembedding: packs embed^T ([E, V]) once at load, so unembed() is an ordinary matmul
//     with any backend and weight format.
#include <cstdint>
#include <span>

#include "kernels/matmul.hpp"
#include "kernels/tensor.hpp"

namespace tori::kernels {

void embedding_gather(const Tensor& embed, std::span<const int32_t> ids, Tensor& out,
                      int64_t vocab_offset = 0, bool sharded = false);
void embedding_gather_ref(const Tensor& embed, std::span<const int32_t> ids, Tensor& out);

// embed: [V, E] -> PackedWeight of embed^T [E, V].
PackedWeight pack_unembedding(const Tensor& embed, WeightFormat fmt, Backend backend);
// logits [..., V] = h [..., E] @ embed^T.
void unembed(const Tensor& h, const PackedWeight& unembedding, Tensor& logits);

// [R, C] -> [C, R] (f32 or bf16), cache-blocked.
Tensor transpose2d(const Tensor& a);

}  // namespace tori::kernels
