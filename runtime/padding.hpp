#pragma once
// Padding: zero weights that make a model's dimensions split evenly over the shards, as the paper
// does (PaLM 540B's 48 heads ran as 64 on 64 chips). Pure index maths (no MPI, unit-tested alone);
// padded_weights.hpp applies it to a WeightSource.
//
// Query heads are padded per KV group so the GQA mapping "query head h reads KV head h / G" still
// holds: K KV heads -> K' (>= K), G query heads per KV head -> G' (>= G), H' = K'·G' query heads.
// Real head h = k·G + r (r < G) becomes padded head k·G' + r; padded query heads (r >= G, or
// k >= K) have zero W_q columns and zero W_o rows, and padded KV heads (k >= K) zero W_k/W_v
// columns, read only by padded query heads. A padded head's output is multiplied by its zero W_o
// rows, so it adds exactly 0 and the model's result is unchanged. The choice is the smallest H'
// (then the smallest K') such that
//   - H' divides into the n head shards (placement.hpp: n blocks of H'/n heads), and
//   - every block of H'/n heads holds whole KV groups (K' divisible by n) or lies inside one
//     group (n divisible by K' and G' by n/K'), so each rank's heads share its KV heads evenly.
// d_ff (F) and vocab (V) are padded up to a multiple of n: zero W_in/W_gate columns and W_out rows
// give hidden units whose activation is silu(0)·0 = gelu(0) = 0; zero embedding rows are never
// looked up and the padded logits are cut off before anyone samples. d_model (E) is not padded
// (norms average over E): it must divide by n.
// Nothing is padded when the dimensions divide already.
#include <cstdint>
#include <string>

#include "models/config.hpp"

namespace tori::runtime {

struct Padding {
  int64_t shards = 1;                          // n: head / F / V shards (every rank)
  int64_t n_heads = 0, n_kv_heads = 0;         // the model's H, K
  int64_t padded_heads = 0, padded_kv_heads = 0;  // H', K'
  int64_t d_ff = 0, padded_d_ff = 0;           // F, F'
  int64_t vocab = 0, padded_vocab = 0;         // V, V'

  int64_t group() const { return n_heads / n_kv_heads; }                     // G
  int64_t padded_group() const { return padded_heads / padded_kv_heads; }   // G'
  bool pads_heads() const { return padded_heads != n_heads || padded_kv_heads != n_kv_heads; }
  bool any() const { return pads_heads() || padded_d_ff != d_ff || padded_vocab != vocab; }
  // Padded query head -> the model's head, or -1 for a padding head.
  int64_t real_head(int64_t padded) const;
  // Padded KV head -> the model's KV head, or -1.
  int64_t real_kv_head(int64_t padded) const { return padded < n_kv_heads ? padded : -1; }
  // The model's head h -> its padded index.
  int64_t padded_head(int64_t h) const { return h / group() * padded_group() + h % group(); }
  // "padding 9 query heads to 16 and 3 KV heads to 4 for 8 head shards: +78% attention FLOPs"
  // (and likewise d_ff and vocab); empty when nothing is padded.
  std::string describe() const;
};

// The smallest padding of c that splits over `shards` (see above).
Padding plan_padding(const models::ModelConfig& c, int64_t shards);

// c with H', K', F' and V': the model every rank's shards are cut from. Idempotent:
// padded_config(padded_config(c, n), n) == padded_config(c, n).
models::ModelConfig padded_config(const models::ModelConfig& c, int64_t shards);

}  // namespace tori::runtime
