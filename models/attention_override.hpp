#pragma once
// The global flags --sliding-window W and --sink-tokens G: a sliding window (and attention sinks)
// laid over any model's own attention (models/config.hpp: with global_every = 0 every layer becomes
// local, StreamingLLM-style; a model with global layers keeps them). open_model applies it to every
// source it opens; errors name the flag.
#include <cstdint>
#include <memory>
#include <optional>

#include "models/weight_source.hpp"

namespace tori::models {

struct AttentionOverride {
  std::optional<int64_t> sliding_window;  // empty: the model's own
  std::optional<int64_t> sink_tokens;     // empty: the model's own
  bool any() const { return sliding_window || sink_tokens; }
};

// Set once by main from the global flags (every rank the same).
void set_attention_override(const AttentionOverride& o);
const AttentionOverride& attention_override();

// Applies the override to a config (validated, errors naming the flags).
void apply_attention_override(ModelConfig& c);
// `source` with the override applied to its config (validated, errors naming the flags); `source`
// itself when the override is empty.
std::unique_ptr<WeightSource> with_attention_override(std::unique_ptr<WeightSource> source);

}  // namespace tori::models
