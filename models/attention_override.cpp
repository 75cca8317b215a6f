#include "models/attention_override.hpp"

namespace tori::models {

namespace {

AttentionOverride g_override;

class OverriddenAttention final : public WeightSource {
 public:
  OverriddenAttention(std::unique_ptr<WeightSource> source, const AttentionOverride& o)
      : source_(std::move(source)), config_(source_->config()) {
    (void)o;
    apply_attention_override(config_);
  }
  const ModelConfig& config() const override { return config_; }
  kernels::Tensor read(const std::string& name, const Box& box) const override { return source_->read(name, box); }
  kernels::Tensor read_tied_unembedding() const override { return source_->read_tied_unembedding(); }

 private:
  std::unique_ptr<WeightSource> source_;
  ModelConfig config_;
};

}  // namespace

void apply_attention_override(ModelConfig& c) {
  if (g_override.sliding_window) c.sliding_window = *g_override.sliding_window;
  if (g_override.sink_tokens) c.sink_tokens = *g_override.sink_tokens;
  if (g_override.any())
    validate(c, "model '" + c.name + "' with the attention flags",
             {{"sliding_window", "--sliding-window"}, {"sink_tokens", "--sink-tokens"}});
}

void set_attention_override(const AttentionOverride& o) { g_override = o; }
const AttentionOverride& attention_override() { return g_override; }

std::unique_ptr<WeightSource> with_attention_override(std::unique_ptr<WeightSource> source) {
  if (!g_override.any()) return source;
  return std::make_unique<OverriddenAttention>(std::move(source), g_override);
}

}  // namespace tori::models
