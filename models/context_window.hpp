#pragma once
// ContextWindow: a weight source whose config allows at most `max_seq` positions per sequence (a
// server's --context, below the model's own context): the same weights, smaller KV caches.
#include <algorithm>

#include "models/weight_source.hpp"

namespace tori::models {

class ContextWindow : public WeightSource {
 public:
  ContextWindow(const WeightSource& source, int64_t max_seq) : source_(source), config_(source.config()) {
    config_.max_seq = std::min(config_.max_seq, max_seq);
  }
  const ModelConfig& config() const override { return config_; }
  kernels::Tensor read(const std::string& name, const Box& box) const override { return source_.read(name, box); }
  kernels::Tensor read_tied_unembedding() const override { return source_.read_tied_unembedding(); }

 private:
  const WeightSource& source_;
  ModelConfig config_;
};

}  // namespace tori::models
