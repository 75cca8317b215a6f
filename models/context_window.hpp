#pragma once
// ContextWindow: a weight source whose config allows at most `max_seq` positions per sequence (a
// server's --context, a run's prompt + new tokens, below the model's own context): the same
// weights, smaller KV caches.
#include <algorithm>

#include "models/weight_source.hpp"

namespace tori::models {

class ContextWindow : public ConfigView {
 public:
  ContextWindow(const WeightSource& source, int64_t max_seq) : ConfigView(source) {
    config_.max_seq = std::min(config_.max_seq, max_seq);
  }
};

}  // namespace tori::models
