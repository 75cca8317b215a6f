#include "runtime/generator.hpp"

#include <chrono>

#include "kernels/error.hpp"

namespace tori::runtime {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Generation generate_greedy(ShardedModel& model, const std::vector<models::TokenIds>& prompts, int64_t max_new,
                           bool keep_logits) {
  if (max_new < 1) throw InputError("--max-new-tokens must be >= 1, got " + std::to_string(max_new));
  const int64_t V = model.config().vocab, B = static_cast<int64_t>(prompts.size());
  Generation g;
  g.generated.resize(size_t(B));
  model.reset();
  auto t0 = std::chrono::steady_clock::now();
  auto last = model.prefill(prompts, false);
  g.prefill_s = seconds_since(t0);
  models::TokenIds next(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) g.generated[size_t(b)].push_back(next[size_t(b)] = models::argmax(last[size_t(b)].data<float>(), V));
  if (keep_logits) {
    kernels::Tensor first({B, V}, kernels::DType::f32);
    for (int64_t b = 0; b < B; ++b)
      std::copy(last[size_t(b)].data<float>(), last[size_t(b)].data<float>() + V, first.data<float>() + b * V);
    g.logits.push_back(first);
  }
  auto t1 = std::chrono::steady_clock::now();
  for (int64_t step = 1; step < max_new; ++step) {
    kernels::Tensor lg = model.decode(next);
    for (int64_t b = 0; b < B; ++b)
      g.generated[size_t(b)].push_back(next[size_t(b)] = models::argmax(lg.data<float>() + b * V, V));
    ++g.decode_steps;
    if (keep_logits) g.logits.push_back(lg);
  }
  g.decode_s = seconds_since(t1);
  return g;
}

Plan default_plan(const models::ModelConfig& c, const collectives::TorusShape& shape, int64_t batch) {
  auto fits = [&](const char* text) {
    try {
      validate_phase(c, shape, parse_phase_plan(text, "plan"), batch, "");
      return true;
    } catch (const InputError&) {
      return false;
    }
  };
  auto first = [&](std::initializer_list<const char*> prefs) -> const char* {
    for (const char* p : prefs)
      if (fits(p)) return p;
    return nullptr;
  };
  const char* decode = first({"ws2d/batch:xyz", "ws2d/batch:yz", "ws2d/batch:z", "ws2d/heads"});
  const char* prefill = first({"wg_xyz/batch:xyz", "ws2d/batch:xyz", "ws2d/heads"});
  if (!decode || !prefill)
    validate_phase(c, shape, parse_phase_plan("ws2d/heads", "plan"), batch, "default plan");  // throws the reason
  return parse_plan(std::string("prefill=") + prefill + ",decode=" + decode, "plan");
}

}  // namespace tori::runtime
