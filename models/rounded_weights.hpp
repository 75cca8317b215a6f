#pragma once
// RoundedWeights: a WeightSource that serves each weight as a run with weight format `fmt` (--dtype)
// multiplies it, so the single-process reference (reference_model.hpp) can run the very model a
// bf16 or int8 run runs and a comparison measures sharding, not quantisation:
//   f32   unchanged
//   bf16  every matmul weight rounded to bf16, element by element; a TSVD weight the sharded run
//         multiplies factored (runtime/layer_shards.hpp) as Σ bf16(U)·bf16(V) per tile, its factors
//         rounded as pack_tsvd rounds them
//   int8  every matmul weight as q · scale, with one scale per output column over the WHOLE input
//         dimension K (kernels/quantize.hpp), the scales every rank packs with
//         (runtime/layer_shards.hpp). In the parallel block W_o and W_out are one output matmul
//         [H·D + F, E] with one scale per column, so both tensors use max of their columns' scales.
//         A TSVD weight with int8 factors the run multiplies factored: Σ U'·V' per tile, the factors
//         as pack_tsvd quantises them (kernels::tsvd_as_packed: the stored q and scales; in the
//         parallel block V's scales are W_o's and W_out's maxima, tsvd_checkpoint.hpp).
//   int4, int4_min  every matmul weight through the group-wise 4-bit quantiser (kernels/quantize.hpp),
//         groups of 32 along K; group-local, so the tensor rounds as every group-aligned shard does.
//         A GGUF Q4_0 / Q4_1 tensor comes back unchanged (the quantiser is exact on them).
//         The unembedding is int8 in these runs (kernels::unembedding_format), rounded as int8 here.
// Matmul weights are the layers' wq, wk, wv, wo, w_in, w_gate, w_out and the unembedding; norms and
// the embedding lookup stay f32 as in the sharded run. With tied embeddings the logits multiply
// the embedding rounded as an unembedding [E, V] (one scale per vocabulary entry):
// read_tied_unembedding().
#include "kernels/packed_weight.hpp"
#include "models/weight_source.hpp"

namespace tori::models {

class RoundedWeights final : public WeightSource {
 public:
  // `base` must outlive this object.
  RoundedWeights(const WeightSource& base, kernels::WeightFormat fmt);
  const ModelConfig& config() const override { return base_.config(); }
  kernels::Tensor read(const std::string& name, const Box& box) const override;
  kernels::Tensor read_tied_unembedding() const override;

 private:
  kernels::Tensor rounded_full(const std::string& name) const;
  const WeightSource& base_;
  kernels::WeightFormat fmt_;
};

}  // namespace tori::models
