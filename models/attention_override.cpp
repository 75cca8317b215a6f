#include "models/attention_override.hpp"

namespace tori::models {

namespace {

AttentionOverride g_override;

// Owns the source it views (a ConfigView holds a reference).
class OverriddenAttention final : public ConfigView {
 public:
  explicit OverriddenAttention(std::unique_ptr<WeightSource> source) : ConfigView(*source), owned_(std::move(source)) {
    apply_attention_override(config_);
  }

 private:
  std::unique_ptr<WeightSource> owned_;
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
  return std::make_unique<OverriddenAttention>(std::move(source));
}

}  // namespace tori::models
